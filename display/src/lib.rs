//! displif (vdispl) frontend: protocol logic and framebuffer, no `unsafe`.
//!
//! The frontend of Xen's para-virtual display protocol
//! (`xen/include/public/io/displif.h`), written against the small platform
//! traits of `xen::platform` plus [`pages::PageAllocator`] and
//! [`store::Store`], so it runs on the host against fakes and in the unikernel
//! against hypercalls. [`frontend::Frontend`] is the entry point: a state
//! machine the kernel drives with `poll(now)`; [`driver::drive`] is the loop
//! around it.
//!
//! Kernel integration, in outline (`KernelPages` is the kernel's
//! [`pages::PageAllocator`]: single zeroed RAM pages for
//! [`pages::PageUse::Granted`], foreign-window frames for
//! [`pages::PageUse::ForeignMapSlot`], freed on drop):
//!
//! ```ignore
//! let mut store = ClientStore::new(XenstoreClient::new(ring_transport));
//! store.client_mut().watch("control/shutdown", "shutdown")?;
//! let options = Options { rate_hz: cmdline.rate, ..Options::default() };
//! let mut fe = Frontend::new("device/vdispl/0", options);
//! let mut env = Env { evtchn: &mut evtchn, gnttab: &mut gnttab, pages: &mut KernelPages, store: &mut store };
//! let config = LoopConfig { extra_ports: &[xenstore_port], hook_tokens: &["shutdown"] };
//! drive(&mut fe, &pvclock, &mut env, &config, &mut TestPattern, |fe, env, _now| {
//!     let flips = fe.stats().connectors.iter().map(|c| c.flips_done).min();
//!     if cmdline.frames.is_some_and(|n| flips >= Some(n)) {
//!         return Control::Shutdown;
//!     }
//!     match env.store.take_watch_event("shutdown") {
//!         Some(_) if matches!(env.store.read(TxId::NONE, "control/shutdown"), Ok(Some(v)) if v == "poweroff") => Control::Shutdown,
//!         _ => Control::Continue,
//!     }
//! })?;
//! log::info!("{:?}", fe.stats());
//! ```
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
