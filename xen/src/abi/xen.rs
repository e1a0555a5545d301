//! Core definitions from `xen/include/public/xen.h` (x86_64 flavour).
//!
//! Hypercall numbers, special domain ids, and the layout of the shared-info page
//! (`shared_info`, `vcpu_info`, `vcpu_time_info`) that the guest maps with
//! `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`. On x86_64 `xen_ulong_t` is
//! `u64` (`arch-x86/xen-x86_64.h`).

use core::mem::{offset_of, size_of};

/// `__HYPERVISOR_memory_op`.
pub const HYPERVISOR_MEMORY_OP: u32 = 12;
/// `__HYPERVISOR_set_timer_op`.
pub const HYPERVISOR_SET_TIMER_OP: u32 = 15;
/// `__HYPERVISOR_xen_version`.
pub const HYPERVISOR_XEN_VERSION: u32 = 17;
/// `__HYPERVISOR_console_io`.
pub const HYPERVISOR_CONSOLE_IO: u32 = 18;
/// `__HYPERVISOR_grant_table_op`.
pub const HYPERVISOR_GRANT_TABLE_OP: u32 = 20;
/// `__HYPERVISOR_vcpu_op`.
pub const HYPERVISOR_VCPU_OP: u32 = 24;
/// `__HYPERVISOR_sched_op`.
pub const HYPERVISOR_SCHED_OP: u32 = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const HYPERVISOR_EVENT_CHANNEL_OP: u32 = 32;
/// `__HYPERVISOR_hvm_op`.
pub const HYPERVISOR_HVM_OP: u32 = 34;

/// Size of one hypercall-page entry: hypercall `n` is at `page + n * 32`.
pub const HYPERCALL_ENTRY_SIZE: usize = 32;

/// `XENVER_version` (`version.h`): returns `major << 16 | minor`.
pub const XENVER_VERSION: u32 = 0;
/// `XENVER_extraversion` (`version.h`): fills a 16-byte string.
pub const XENVER_EXTRAVERSION: u32 = 1;
/// `XEN_EXTRAVERSION_LEN`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;

/// `XEN_PVCLOCK_TSC_STABLE_BIT` in [`VcpuTimeInfo::flags`].
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `XEN_PVCLOCK_GUEST_STOPPED` in [`VcpuTimeInfo::flags`].
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// `CONSOLEIO_write`: write a buffer to Xen's own console (debug builds / dom0).
pub const CONSOLEIO_WRITE: u32 = 0;

/// `VIRQ_TIMER`: timebase update and/or requested timeout.
pub const VIRQ_TIMER: u32 = 0;

/// `DOMID_FIRST_RESERVED`.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;
/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;
/// `DOMID_INVALID`.
pub const DOMID_INVALID: u16 = 0x7ff4;

/// `XEN_LEGACY_MAX_VCPUS` (`arch-x86/xen.h`): vcpu_info slots inside shared_info.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// Bits in one `xen_ulong_t` (64 on x86_64).
pub const XEN_ULONG_BITS: usize = 64;

/// `EVTCHN_2L_NR_CHANNELS` (`event_channel.h`): ports of the 2-level ABI (4096).
pub const EVTCHN_2L_NR_CHANNELS: usize = XEN_ULONG_BITS * XEN_ULONG_BITS;

/// `struct vcpu_time_info`: pvclock parameters, protected by `version` (odd = update
/// in progress).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Seqlock version: odd while Xen updates the record.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// TSC at the last update of the time values.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-ns multiplier (32.32 fixed point after shifting).
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta before multiplying (may be negative).
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    /// Padding.
    pub pad1: [u8; 2],
}

/// `struct arch_vcpu_info` (`arch-x86/xen-x86_64.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchVcpuInfo {
    /// Faulting address of a PV page fault.
    pub cr2: u64,
    /// Padding (keeps `vcpu_info` at 64 bytes).
    pub pad: u64,
}

/// `struct vcpu_info`: per-vCPU upcall state and time (64 bytes on x86).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Set by Xen when an event is pending for this vCPU.
    pub evtchn_upcall_pending: u8,
    /// Set by the guest to mask upcalls (x86 has `XEN_HAVE_PV_UPCALL_MASK`).
    pub evtchn_upcall_mask: u8,
    /// Selector of `shared_info.evtchn_pending` words with pending ports.
    pub evtchn_pending_sel: u64,
    /// Architecture part.
    pub arch: ArchVcpuInfo,
    /// pvclock.
    pub time: VcpuTimeInfo,
}

/// `struct arch_shared_info` (`arch-x86/xen.h`, 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchSharedInfo {
    /// PV only.
    pub max_pfn: u64,
    /// PV only.
    pub pfn_to_mfn_frame_list_list: u64,
    /// NMI reason bits.
    pub nmi_reason: u64,
    /// PV only.
    pub p2m_cr3: u64,
    /// PV only.
    pub p2m_vaddr: u64,
    /// PV only.
    pub p2m_generation: u64,
}

/// `struct shared_info`: the start-of-day shared page.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedInfo {
    /// Legacy per-vCPU info slots.
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// 2-level event-channel pending bitmap (one bit per port).
    pub evtchn_pending: [u64; XEN_ULONG_BITS],
    /// 2-level event-channel mask bitmap (one bit per port).
    pub evtchn_mask: [u64; XEN_ULONG_BITS],
    /// Wall-clock seqlock version.
    pub wc_version: u32,
    /// Wall-clock seconds (low 32 bits) since the epoch at system time 0.
    pub wc_sec: u32,
    /// Wall-clock nanoseconds.
    pub wc_nsec: u32,
    /// Wall-clock seconds, high 32 bits.
    pub wc_sec_hi: u32,
    /// Architecture part.
    pub arch: ArchSharedInfo,
}

/// Byte offset of `vcpu_info[0].time` in the shared-info page.
pub const SHARED_INFO_VCPU0_TIME_OFFSET: usize =
    offset_of!(SharedInfo, vcpu_info) + offset_of!(VcpuInfo, time);
/// Byte offset of `evtchn_pending` in the shared-info page.
pub const SHARED_INFO_EVTCHN_PENDING_OFFSET: usize = offset_of!(SharedInfo, evtchn_pending);
/// Byte offset of `evtchn_mask` in the shared-info page.
pub const SHARED_INFO_EVTCHN_MASK_OFFSET: usize = offset_of!(SharedInfo, evtchn_mask);
/// Byte offset of `wc_version` in the shared-info page.
pub const SHARED_INFO_WC_VERSION_OFFSET: usize = offset_of!(SharedInfo, wc_version);

const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);
const _: () = assert!(size_of::<VcpuInfo>() == 64);
const _: () = assert!(SHARED_INFO_EVTCHN_PENDING_OFFSET == 2048);
const _: () = assert!(SHARED_INFO_EVTCHN_MASK_OFFSET == 2560);
const _: () = assert!(size_of::<SharedInfo>() <= crate::types::PAGE_SIZE);
