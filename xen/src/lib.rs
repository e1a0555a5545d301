//! Xen PVH guest core: ABI mirrors, xenstore codec, rings, grants, events.
//!
//! Pure protocol logic is host-tested; hypercalls live behind small traits.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod abi;
pub mod evtchn;
pub mod gnttab;
pub mod hv;
pub mod platform;
pub mod ring;
pub mod shared_mem;
pub mod types;
pub mod xenbus;
pub mod xenstore;
