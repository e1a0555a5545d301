//! Deterministic demo scenes for the pvdispl unikernel, drawn with embedded-graphics.
//!
//! Every scene is a pure function of the frame number, the target's resolution and a
//! [`SceneInput`] (configured frame rate and, for `stats`, the figures passed in): frame N renders
//! to the same pixels on the host and in the guest (`x86_64-unknown-none`). Only integer and
//! fixed-point arithmetic is used at run time; the sine table is computed by `const` evaluation,
//! which rustc performs with its own soft-float, so it is identical for every target.
//!
//! Entry points: [`Scene`] (`from_name`, `names`, `all`) and [`render`], which draws into any
//! `DrawTarget<Color = Rgb888>`. The frontend's `xen_display::framebuffer::Framebuffer` is the
//! target the fast paths are written for: per-pixel scenes emit whole rows through
//! `fill_contiguous`. [`checksum`] defines the frame checksum shared with the backend.
//! [`DemoSource`] adapts a scene to the frontend's `FrameSource` for the kernel.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
pub mod fixed;
mod pixel;
pub mod scene;
pub mod scenes;
pub mod shapes;
pub mod source;
pub mod text;

pub use checksum::{frame_crc32, render_crc32, FrameCrc32};
pub use scene::{render, FrameStats, Scene, SceneInput, UnknownScene};
pub use source::DemoSource;
