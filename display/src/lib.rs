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
pub mod edid;
pub mod framebuffer;
pub mod frontend;
pub mod pacing;
pub mod pages;
pub mod pattern;
pub mod shbuf;
pub mod state;
pub mod store;

#[cfg(test)]
mod frontend_tests;
#[cfg(test)]
mod sim_backend;
#[cfg(test)]
mod testing;

/// Something that draws frames: the built-in [`pattern::TestPattern`] or a demo
/// scene. Called once per frame with the connector index, the frame number
/// (0 for the first frame shown on a connector after it is configured, then 1,
/// 2, ... per flip, continuing across reconnects) and a packed framebuffer at
/// the connector's resolution. The framebuffer holds the previous contents of
/// the scratch buffer; a source must draw every pixel it wants defined.
pub trait FrameSource {
    /// Draw frame `frame` of connector `connector` into `fb`.
    fn render(&mut self, connector: usize, frame: u64, fb: &mut framebuffer::Framebuffer<'_>);
}
