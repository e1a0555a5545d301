//! Pure, host-tested logic of the pvdispl unikernel.
//!
//! The kernel binary (`main.rs`) is glue around hypercalls and raw memory; what
//! can be decided without touching hardware lives here so `cargo test -p
//! pvdispl-kernel --lib` runs it on the host:
//! - [`cmdline`]: the typed command line (`extra=` in the xl config),
//! - [`displayglue`]: the display loop's event-channel wrapper and `demo=` lookup,
//! - [`extent`]: a fixed-capacity allocator of page extents (RAM frames for
//!   grants, rings and framebuffers; free guest-physical frames for mappings),
//! - [`memplan`]: carving the PVH memory map into heap, frame pool and the
//!   unpopulated window where Xen pages get mapped.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod cmdline;
pub mod displayglue;
pub mod extent;
pub mod memplan;
