//! The PV console ring page (`xen/include/public/io/console.h`).
//!
//! The guest finds it via `HVM_PARAM_CONSOLE_PFN` / `HVM_PARAM_CONSOLE_EVTCHN`.
//! The guest produces into `out` and consumes from `in`; indices are free-running
//! `u32`s masked by the array length (`MASK_XENCONS_IDX`).

use core::mem::{offset_of, size_of};

/// Size of the console input ring (`sizeof(in)`).
pub const XENCONS_IN_SIZE: usize = 1024;
/// Size of the console output ring (`sizeof(out)`).
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `struct xencons_interface`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenconsInterface {
    /// Input from the console (backend produces).
    pub in_: [u8; XENCONS_IN_SIZE],
    /// Output to the console (guest produces).
    pub out: [u8; XENCONS_OUT_SIZE],
    /// Guest's consumer index into `in_`.
    pub in_cons: u32,
    /// Backend's producer index into `in_`.
    pub in_prod: u32,
    /// Backend's consumer index into `out`.
    pub out_cons: u32,
    /// Guest's producer index into `out`.
    pub out_prod: u32,
}

/// Byte offset of `in_cons`.
pub const XENCONS_IN_CONS_OFFSET: usize = offset_of!(XenconsInterface, in_cons);
/// Byte offset of `in_prod`.
pub const XENCONS_IN_PROD_OFFSET: usize = offset_of!(XenconsInterface, in_prod);
/// Byte offset of `out_cons`.
pub const XENCONS_OUT_CONS_OFFSET: usize = offset_of!(XenconsInterface, out_cons);
/// Byte offset of `out_prod`.
pub const XENCONS_OUT_PROD_OFFSET: usize = offset_of!(XenconsInterface, out_prod);
/// Byte offset of `out`.
pub const XENCONS_OUT_OFFSET: usize = offset_of!(XenconsInterface, out);

const _: () = assert!(size_of::<XenconsInterface>() == 3088);
