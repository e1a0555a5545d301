//! displif (vdispl) frontend: protocol logic and framebuffer, no `unsafe`.
//!
//! The frontend of Xen's para-virtual display protocol
//! (`xen/include/public/io/displif.h`), written against the small platform
//! traits of `xen::platform` plus [`pages::PageAllocator`] and
//! [`store::Store`], so it runs on the host against fakes and in the unikernel
//! against hypercalls. [`frontend::Frontend`] is the entry point: a state
//! machine the kernel drives with `poll(now)`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod channel;
pub mod config;
pub mod driver;
pub mod edid;
pub mod framebuffer;
pub mod frontend;
pub mod pacing;
pub mod pages;
pub mod pattern;
pub mod shbuf;
pub mod source;
pub mod state;
pub mod store;

pub(crate) use source::PixelSink;
pub use source::{FrameSource, FrameTarget};

#[cfg(test)]
mod frontend_tests;
#[cfg(test)]
mod sim_backend;
#[cfg(test)]
mod testing;
