//! Grant tables, version 1 (`xen/include/public/grant_table.h`).
//!
//! The granting side writes [`GrantEntryV1`] entries in its own table (frames mapped
//! with `XENMAPSPACE_grant_table`); the mapping side calls
//! `GNTTABOP_map_grant_ref` with [`GnttabMapGrantRef`].

use core::mem::{offset_of, size_of};

/// `GNTTAB_NR_RESERVED_ENTRIES`: refs 0..8 are reserved for the toolstack
/// (console = 0, xenstore = 1); a guest allocator must never hand them out.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `GNTTAB_RESERVED_CONSOLE`.
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`.
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

/// `GTF_invalid`.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: the entry grants access to `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer`.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_transitive`.
pub const GTF_TRANSITIVE: u16 = 3;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: the peer may only map read-only.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: set by Xen while the peer has the frame mapped/in use for reading.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: set by Xen while the peer has the frame mapped writable.
pub const GTF_WRITING: u16 = 1 << 4;

/// `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
/// `GNTTABOP_setup_table`.
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
/// `GNTTABOP_query_size`.
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
/// `GNTTABOP_set_version`.
pub const GNTTABOP_SET_VERSION: u32 = 8;
/// `GNTTABOP_get_version`.
pub const GNTTABOP_GET_VERSION: u32 = 10;

/// `GNTMAP_device_map`.
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// `GNTMAP_host_map`: map at `host_addr` (a guest-physical address for HVM/PVH).
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`.
pub const GNTMAP_READONLY: u32 = 1 << 2;

/// `GNTST_okay`.
pub const GNTST_OKAY: i16 = 0;
/// `GNTST_general_error`.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// `GNTST_bad_domain`.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// `GNTST_bad_gntref`.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// `GNTST_bad_handle`.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// `GNTST_bad_virt_addr`.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// `GNTST_permission_denied`.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// `GNTST_bad_page`.
pub const GNTST_BAD_PAGE: i16 = -9;
/// `GNTST_eagain`.
pub const GNTST_EAGAIN: i16 = -12;
/// `GNTST_no_space`.
pub const GNTST_NO_SPACE: i16 = -13;

/// `struct grant_entry_v1`: 8 bytes, 512 per page.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain being granted access.
    pub domid: u16,
    /// The frame being granted.
    pub frame: u32,
}

/// Byte offset of `flags` in [`GrantEntryV1`].
pub const GRANT_ENTRY_V1_FLAGS_OFFSET: usize = offset_of!(GrantEntryV1, flags);
/// Byte offset of `domid` in [`GrantEntryV1`].
pub const GRANT_ENTRY_V1_DOMID_OFFSET: usize = offset_of!(GrantEntryV1, domid);
/// Byte offset of `frame` in [`GrantEntryV1`].
pub const GRANT_ENTRY_V1_FRAME_OFFSET: usize = offset_of!(GrantEntryV1, frame);
/// v1 entries per 4 KiB grant-table frame.
pub const GRANT_ENTRIES_V1_PER_PAGE: usize = crate::types::PAGE_SIZE / size_of::<GrantEntryV1>();

/// `struct gnttab_map_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabMapGrantRef {
    /// IN: where to map (guest-physical address for HVM/PVH with `GNTMAP_host_map`).
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: the granter's reference.
    pub ref_: u32,
    /// IN: the granting domain.
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle for unmapping.
    pub handle: u32,
    /// OUT: device bus address (device maps).
    pub dev_bus_addr: u64,
}

/// `struct gnttab_unmap_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapGrantRef {
    /// IN: the address given at map time (0 = ignore).
    pub host_addr: u64,
    /// IN: device bus address (0 = ignore).
    pub dev_bus_addr: u64,
    /// IN: handle from the map.
    pub handle: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

/// `struct gnttab_query_size`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabQuerySize {
    /// IN: `DOMID_SELF`.
    pub dom: u16,
    /// OUT: current number of frames.
    pub nr_frames: u32,
    /// OUT: maximum number of frames.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
}

const _: () = assert!(size_of::<GrantEntryV1>() == 8);
const _: () = assert!(size_of::<GnttabMapGrantRef>() == 32);
const _: () = assert!(size_of::<GnttabUnmapGrantRef>() == 24);
