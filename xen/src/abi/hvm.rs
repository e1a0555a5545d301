//! HVM parameters and operations (`xen/include/public/hvm/params.h`, `hvm/hvm_op.h`).

use core::mem::size_of;

/// `HVMOP_set_param`.
pub const HVMOP_SET_PARAM: u32 = 0;
/// `HVMOP_get_param`.
pub const HVMOP_GET_PARAM: u32 = 1;

/// `HVM_PARAM_CALLBACK_IRQ`: how event upcalls are delivered.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `HVM_PARAM_STORE_PFN`: frame of the xenstore ring page.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`: event channel of the xenstore ring.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_CONSOLE_PFN`: frame of the PV console page.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`: event channel of the PV console.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

/// `HVM_PARAM_CALLBACK_TYPE_VECTOR`: value is `(2 << 56) | vector`.
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;
/// Shift of the callback type in `HVM_PARAM_CALLBACK_IRQ`.
pub const HVM_PARAM_CALLBACK_TYPE_SHIFT: u32 = 56;

/// `struct xen_hvm_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenHvmParam {
    /// `DOMID_SELF`.
    pub domid: u16,
    /// Padding.
    pub pad: u16,
    /// `HVM_PARAM_*`.
    pub index: u32,
    /// In (set) / out (get).
    pub value: u64,
}

const _: () = assert!(size_of::<XenHvmParam>() == 16);
