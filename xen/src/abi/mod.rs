//! `#[repr(C)]` mirrors of Xen's public headers (`xen/include/public/**`).
//!
//! Every file cites the header it mirrors. Sizes and field offsets are checked at
//! compile time here and, against the real C headers, by `xen/tests/abi_layout.rs`.
//! Wire packets that live in shared memory (displif) also get explicit
//! little-endian encoders so they can be copied word by word into a page of atomics.

pub mod console;
pub mod displif;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hvm;
pub mod memory;
pub mod ring;
pub mod sched;
pub mod start_info;
pub mod vcpu;
pub mod xen;
pub mod xenbus;
pub mod xs_wire;
