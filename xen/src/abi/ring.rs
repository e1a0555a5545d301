//! Shared-ring header layout (`xen/include/public/io/ring.h`).
//!
//! `DEFINE_RING_TYPES` produces a `*_sring` of four `RING_IDX` (u32) indices, a
//! 4-byte private union, 44 bytes of padding, then the entry array starting at
//! byte 64. `__RING_SIZE` is the number of entries that fit, rounded down to a
//! power of two. The index math built on this lives in [`crate::ring`].

use core::mem::{offset_of, size_of};

/// The fixed header of every `*_sring` (the part before `ring[]`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SringHeader {
    /// Requests produced by the front end.
    pub req_prod: u32,
    /// The back end wants a notification when `req_prod` passes this.
    pub req_event: u32,
    /// Responses produced by the back end.
    pub rsp_prod: u32,
    /// The front end wants a notification when `rsp_prod` passes this.
    pub rsp_event: u32,
    /// `pvt` union (netif/tapif private bytes); zero for others.
    pub pvt: [u8; 4],
    /// `__pad[44]`.
    pub pad: [u8; 44],
}

/// Byte offset of `req_prod`.
pub const SRING_REQ_PROD_OFFSET: usize = offset_of!(SringHeader, req_prod);
/// Byte offset of `req_event`.
pub const SRING_REQ_EVENT_OFFSET: usize = offset_of!(SringHeader, req_event);
/// Byte offset of `rsp_prod`.
pub const SRING_RSP_PROD_OFFSET: usize = offset_of!(SringHeader, rsp_prod);
/// Byte offset of `rsp_event`.
pub const SRING_RSP_EVENT_OFFSET: usize = offset_of!(SringHeader, rsp_event);
/// Byte offset of `ring[0]` (`offsetof(struct x_sring, ring)`).
pub const SRING_ENTRIES_OFFSET: usize = size_of::<SringHeader>();

/// Largest power of two `<= x` (0 for 0): `__RD32` in `ring.h`.
pub const fn round_down_pow2(x: usize) -> usize {
    if x == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - x.leading_zeros())
    }
}

/// `__CONST_RING_SIZE`: entries in a ring of `ring_bytes` bytes whose union entry
/// (`max(sizeof(req), sizeof(rsp))`) is `entry_bytes` long.
///
/// Returns 0 if nothing fits (including `entry_bytes == 0`).
pub const fn ring_size(ring_bytes: usize, entry_bytes: usize) -> usize {
    if entry_bytes == 0 || ring_bytes <= SRING_ENTRIES_OFFSET {
        return 0;
    }
    round_down_pow2((ring_bytes - SRING_ENTRIES_OFFSET) / entry_bytes)
}

const _: () = assert!(SRING_ENTRIES_OFFSET == 64);
const _: () = assert!(ring_size(4096, 64) == 32);
