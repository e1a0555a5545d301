//! Memory operations (`xen/include/public/memory.h`).

use core::mem::size_of;

/// `XENMEM_populate_physmap`: arg is [`XenMemoryReservation`].
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
/// `XENMEM_add_to_physmap`: arg is [`XenAddToPhysmap`].
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;

/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: `idx` is the grant-table frame number.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPSPACE_gmfn`.
pub const XENMAPSPACE_GMFN: u32 = 2;
/// `XENMAPSPACE_gmfn_range`.
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// `XENMAPSPACE_gmfn_foreign`.
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// `XENMAPIDX_grant_table_status`: or-ed into `idx` for v2 status frames.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

/// `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenAddToPhysmap {
    /// Domain whose physmap changes (`DOMID_SELF`).
    pub domid: u16,
    /// Number of pages for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index into the space.
    pub idx: u64,
    /// Guest frame where the page should appear.
    pub gpfn: u64,
}

const _: () = assert!(size_of::<XenAddToPhysmap>() == 24);

/// `struct xen_memory_reservation`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemoryReservation {
    /// Guest handle of an array of `xen_pfn_t` (IN: the frames to populate).
    pub extent_start: u64,
    /// Number of extents.
    pub nr_extents: u64,
    /// Each extent is 2^order pages.
    pub extent_order: u32,
    /// `XENMEMF_*`.
    pub mem_flags: u32,
    /// Domain (`DOMID_SELF`).
    pub domid: u16,
}

const _: () = assert!(size_of::<XenMemoryReservation>() == 32);
