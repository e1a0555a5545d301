//! vCPU operations used by a PVH guest (`xen/include/public/vcpu.h`).

use core::mem::size_of;

/// `VCPUOP_set_singleshot_timer`: arm a one-shot timer (`VIRQ_TIMER`).
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
/// `VCPUOP_stop_singleshot_timer`.
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;
/// `VCPUOP_register_vcpu_time_memory_area`: arg is [`VcpuRegisterTimeMemoryArea`].
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u32 = 13;
/// `VCPU_SSHOTTMR_future`: fail with `-ETIME` if the deadline already passed.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// `struct vcpu_set_singleshot_timer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuSetSingleshotTimer {
    /// Absolute system time (pvclock ns).
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
}

const _: () = assert!(size_of::<VcpuSetSingleshotTimer>() == 16);

/// `struct vcpu_register_time_memory_area` (its `addr` union, as a guest address).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegisterTimeMemoryArea {
    /// Guest virtual address of a `vcpu_time_info`.
    pub addr: u64,
}

const _: () = assert!(size_of::<VcpuRegisterTimeMemoryArea>() == 8);
