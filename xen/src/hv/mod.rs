//! The hypervisor layer: hypercalls and the real platform implementations.
//!
//! This is the only part of the `xen` crate with inline assembly or raw
//! pointers. It assumes what the pvdispl unikernel guarantees: a single vCPU
//! running with interrupts off, and guest-physical memory below 4 GiB
//! identity-mapped (so a guest frame's address is also its virtual address).
//! Protocol code never calls into here directly; it sees the traits in
//! [`crate::platform`], which these types implement:
//!
//! - [`cpuid`]: find Xen's CPUID leaves (signature, version, our domid),
//! - [`hypercall`]: the hypercall page and one safe wrapper per operation,
//! - [`pvclock`]: `vcpu_time_info` math (pure) and the seqlock read,
//! - [`shared_info`]: the mapped shared-info page (time, wall clock, event bits),
//! - [`evtchn`]: [`crate::platform::EventChannels`] over 2-level event channels
//!   and `SCHEDOP_poll`,
//! - [`gnttab`]: [`crate::platform::GrantTable`] over the mapped v1 table,
//! - [`console`]: the PV console ring (`xl console`),
//! - [`page`]: identity-mapped pages as [`crate::platform::SharedPage`].

pub mod console;
pub mod cpuid;
pub mod evtchn;
pub mod gnttab;
pub mod hypercall;
pub mod page;
pub mod pvclock;
pub mod shared_info;
