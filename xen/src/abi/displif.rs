//! Para-virtual display protocol (`xen/include/public/io/displif.h`).
//!
//! Mirrors the request/response/event packets (64 bytes each, little-endian) and
//! the event page, plus the xenstore field names and constants. Besides the
//! `#[repr(C)]` mirrors, [`Request`], [`Response`] and [`Event`] encode to and
//! decode from `[u8; 64]` with explicit field offsets (taken from the structs with
//! `offset_of!`), so packets can be copied word by word into a shared page of
//! atomics ([`packet_to_words`] / [`words_to_packet`]).
//!
//! Known errors in the header's ASCII diagrams (see the project dossier): the
//! `SET_CONFIG` `bpp` field is at offset 32 (the struct is right), and responses
//! carry `operation` at offset 2 (not reserved). We follow the structs.

use core::fmt;
use core::mem::{offset_of, size_of};

use super::ring::ring_size;
use crate::types::PAGE_SIZE;

/// `XENDISPL_PROTOCOL_VERSION`.
pub const XENDISPL_PROTOCOL_VERSION: &str = "2";
/// `XENDISPL_PROTOCOL_VERSION_INT`.
pub const XENDISPL_PROTOCOL_VERSION_INT: u32 = 2;

/// `XENDISPL_OP_DBUF_CREATE`.
pub const XENDISPL_OP_DBUF_CREATE: u8 = 0x10;
/// `XENDISPL_OP_DBUF_DESTROY`.
pub const XENDISPL_OP_DBUF_DESTROY: u8 = 0x11;
/// `XENDISPL_OP_FB_ATTACH`.
pub const XENDISPL_OP_FB_ATTACH: u8 = 0x12;
/// `XENDISPL_OP_FB_DETACH`.
pub const XENDISPL_OP_FB_DETACH: u8 = 0x13;
/// `XENDISPL_OP_SET_CONFIG`.
pub const XENDISPL_OP_SET_CONFIG: u8 = 0x14;
/// `XENDISPL_OP_PG_FLIP`.
pub const XENDISPL_OP_PG_FLIP: u8 = 0x15;
/// `XENDISPL_OP_GET_EDID` (protocol v2).
pub const XENDISPL_OP_GET_EDID: u8 = 0x16;

/// `XENDISPL_EVT_PG_FLIP`: frame-done event.
pub const XENDISPL_EVT_PG_FLIP: u8 = 0x00;

/// `XENDISPL_DRIVER_NAME`: the xenstore device class.
pub const XENDISPL_DRIVER_NAME: &str = "vdispl";
/// `XENDISPL_LIST_SEPARATOR` (in `versions`).
pub const XENDISPL_LIST_SEPARATOR: &str = ",";
/// `XENDISPL_RESOLUTION_SEPARATOR` (in `resolution`, `"<W>x<H>"`).
pub const XENDISPL_RESOLUTION_SEPARATOR: &str = "x";

/// `XENDISPL_FIELD_BE_VERSIONS`: backend's supported versions, e.g. `"1,2"`.
pub const XENDISPL_FIELD_BE_VERSIONS: &str = "versions";
/// `XENDISPL_FIELD_FE_VERSION`: version chosen by the frontend.
pub const XENDISPL_FIELD_FE_VERSION: &str = "version";
/// `XENDISPL_FIELD_REQ_RING_REF`.
pub const XENDISPL_FIELD_REQ_RING_REF: &str = "req-ring-ref";
/// `XENDISPL_FIELD_REQ_CHANNEL`.
pub const XENDISPL_FIELD_REQ_CHANNEL: &str = "req-event-channel";
/// `XENDISPL_FIELD_EVT_RING_REF`.
pub const XENDISPL_FIELD_EVT_RING_REF: &str = "evt-ring-ref";
/// `XENDISPL_FIELD_EVT_CHANNEL`.
pub const XENDISPL_FIELD_EVT_CHANNEL: &str = "evt-event-channel";
/// `XENDISPL_FIELD_RESOLUTION`.
pub const XENDISPL_FIELD_RESOLUTION: &str = "resolution";
/// `XENDISPL_FIELD_BE_ALLOC`.
pub const XENDISPL_FIELD_BE_ALLOC: &str = "be-alloc";
/// `XENDISPL_FIELD_UNIQUE_ID`.
pub const XENDISPL_FIELD_UNIQUE_ID: &str = "unique-id";

/// `XENDISPL_EDID_BLOCK_SIZE`.
pub const XENDISPL_EDID_BLOCK_SIZE: u32 = 128;
/// `XENDISPL_EDID_BLOCK_COUNT`.
pub const XENDISPL_EDID_BLOCK_COUNT: u32 = 256;
/// `XENDISPL_EDID_MAX_SIZE`: minimum EDID buffer size for `GET_EDID` (32 KiB).
pub const XENDISPL_EDID_MAX_SIZE: u32 = XENDISPL_EDID_BLOCK_SIZE * XENDISPL_EDID_BLOCK_COUNT;

/// `XENDISPL_DBUF_FLG_REQ_ALLOC`: the backend allocates the buffer (needs `be-alloc`).
pub const XENDISPL_DBUF_FLG_REQ_ALLOC: u32 = 1 << 0;

/// Size of every request, response and event packet.
pub const PACKET_SIZE: usize = 64;
/// Packet size in 32-bit words.
pub const PACKET_WORDS: usize = PACKET_SIZE / 4;
/// Offset of the operation-specific union in every packet.
pub const PACKET_OP_OFFSET: usize = 8;
/// Size of the operation-specific union.
pub const PACKET_OP_SIZE: usize = PACKET_SIZE - PACKET_OP_OFFSET;

/// `struct xendispl_dbuf_create_req`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbufCreateReq {
    /// Cookie naming the buffer (0 is invalid).
    pub dbuf_cookie: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per pixel.
    pub bpp: u32,
    /// Buffer size in bytes.
    pub buffer_sz: u32,
    /// `XENDISPL_DBUF_FLG_*`.
    pub flags: u32,
    /// First page of the gref directory.
    pub gref_directory: u32,
    /// Offset of the data in the buffer (v2; 0 in v1).
    pub data_ofs: u32,
}

/// `struct xendispl_dbuf_destroy_req`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbufDestroyReq {
    /// Buffer to destroy.
    pub dbuf_cookie: u64,
}

/// `struct xendispl_fb_attach_req`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FbAttachReq {
    /// Buffer to attach.
    pub dbuf_cookie: u64,
    /// New framebuffer cookie (0 is invalid).
    pub fb_cookie: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// DRM fourcc.
    pub pixel_format: u32,
}

/// `struct xendispl_fb_detach_req`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FbDetachReq {
    /// Framebuffer to detach.
    pub fb_cookie: u64,
}

/// `struct xendispl_set_config_req`. All zero means "reset / disable".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetConfigReq {
    /// Framebuffer to show.
    pub fb_cookie: u64,
    /// X of the visible area.
    pub x: u32,
    /// Y of the visible area.
    pub y: u32,
    /// Width of the visible area.
    pub width: u32,
    /// Height of the visible area.
    pub height: u32,
    /// Bits per pixel.
    pub bpp: u32,
}

/// `struct xendispl_page_flip_req`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageFlipReq {
    /// Framebuffer to show next.
    pub fb_cookie: u64,
}

/// `struct xendispl_get_edid_req` (v2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetEdidReq {
    /// Buffer size (at least [`XENDISPL_EDID_MAX_SIZE`]).
    pub buffer_sz: u32,
    /// First page of the gref directory of the EDID buffer.
    pub gref_directory: u32,
}

/// `struct xendispl_get_edid_resp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetEdidResp {
    /// Bytes of EDID written.
    pub edid_sz: u32,
}

/// `struct xendispl_pg_flip_evt`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PgFlipEvt {
    /// Framebuffer whose flip completed.
    pub fb_cookie: u64,
}

/// `struct xendispl_req` (the union is kept as raw bytes).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XendisplReq {
    /// Request id, echoed in the response.
    pub id: u16,
    /// `XENDISPL_OP_*`.
    pub operation: u8,
    /// Must be 0.
    pub reserved: [u8; 5],
    /// The `op` union.
    pub op: [u8; PACKET_OP_SIZE],
}

/// `struct xendispl_resp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XendisplResp {
    /// Id of the request answered.
    pub id: u16,
    /// Operation of the request answered.
    pub operation: u8,
    /// Must be 0.
    pub reserved: u8,
    /// 0 or `-XEN_Exx`.
    pub status: i32,
    /// The `op` union.
    pub op: [u8; PACKET_OP_SIZE],
}

/// `struct xendispl_evt`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XendisplEvt {
    /// Event id (runs 0, 1, 2, ... per connector).
    pub id: u16,
    /// `XENDISPL_EVT_*`.
    pub type_: u8,
    /// Must be 0.
    pub reserved: [u8; 5],
    /// The `op` union.
    pub op: [u8; PACKET_OP_SIZE],
}

/// `struct xendispl_event_page`: header of the event page; events follow at
/// [`XENDISPL_IN_RING_OFFS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XendisplEventPage {
    /// Frontend's consumer index (free-running).
    pub in_cons: u32,
    /// Backend's producer index (free-running).
    pub in_prod: u32,
    /// Must be 0.
    pub reserved: [u8; 56],
}

/// `XENDISPL_EVENT_PAGE_SIZE`.
pub const XENDISPL_EVENT_PAGE_SIZE: usize = PAGE_SIZE;
/// `XENDISPL_IN_RING_OFFS`: byte offset of the first event in the event page.
pub const XENDISPL_IN_RING_OFFS: usize = size_of::<XendisplEventPage>();
/// `XENDISPL_IN_RING_SIZE`: bytes available for events.
pub const XENDISPL_IN_RING_SIZE: usize = XENDISPL_EVENT_PAGE_SIZE - XENDISPL_IN_RING_OFFS;
/// `XENDISPL_IN_RING_LEN`: event slots (63; not a power of two).
pub const XENDISPL_IN_RING_LEN: usize = XENDISPL_IN_RING_SIZE / size_of::<XendisplEvt>();
/// Byte offset of `in_cons` in the event page.
pub const XENDISPL_EVENT_PAGE_IN_CONS_OFFSET: usize = offset_of!(XendisplEventPage, in_cons);
/// Byte offset of `in_prod` in the event page.
pub const XENDISPL_EVENT_PAGE_IN_PROD_OFFSET: usize = offset_of!(XendisplEventPage, in_prod);

/// Slots of the one-page request ring (`__CONST_RING_SIZE(xen_displif, 4096)` = 32).
pub const XENDISPL_REQ_RING_SIZE: usize = ring_size(PAGE_SIZE, PACKET_SIZE);

/// Byte offset of `gref_dir_next_page` in a `struct xendispl_page_directory` page.
pub const XENDISPL_PGDIR_NEXT_OFFSET: usize = 0;
/// Byte offset of `gref[0]` in a `struct xendispl_page_directory` page.
pub const XENDISPL_PGDIR_GREFS_OFFSET: usize = 4;
/// Grant references per directory page: (4096 - 4) / 4 = 1023.
pub const XENDISPL_PGDIR_GREFS_PER_PAGE: usize = (PAGE_SIZE - XENDISPL_PGDIR_GREFS_OFFSET) / 4;

const _: () = assert!(size_of::<XendisplReq>() == PACKET_SIZE);
const _: () = assert!(size_of::<XendisplResp>() == PACKET_SIZE);
const _: () = assert!(size_of::<XendisplEvt>() == PACKET_SIZE);
const _: () = assert!(offset_of!(XendisplReq, op) == PACKET_OP_OFFSET);
const _: () = assert!(offset_of!(XendisplResp, op) == PACKET_OP_OFFSET);
const _: () = assert!(offset_of!(XendisplEvt, op) == PACKET_OP_OFFSET);
const _: () = assert!(size_of::<DbufCreateReq>() <= PACKET_OP_SIZE);
const _: () = assert!(size_of::<FbAttachReq>() <= PACKET_OP_SIZE);
const _: () = assert!(size_of::<SetConfigReq>() <= PACKET_OP_SIZE);
const _: () = assert!(XENDISPL_IN_RING_LEN == 63);
const _: () = assert!(XENDISPL_REQ_RING_SIZE == 32);
const _: () = assert!(XENDISPL_PGDIR_GREFS_PER_PAGE == 1023);
const _: () = assert!(offset_of!(SetConfigReq, bpp) + PACKET_OP_OFFSET == 32);

/// Offset of `id` in every packet.
pub const PACKET_ID_OFFSET: usize = offset_of!(XendisplReq, id);
/// Offset of `operation` (requests, responses) / `type` (events).
pub const PACKET_OPERATION_OFFSET: usize = offset_of!(XendisplReq, operation);
/// Offset of `status` in a response.
pub const RESP_STATUS_OFFSET: usize = offset_of!(XendisplResp, status);

/// A 64-byte packet as bytes.
pub type Packet = [u8; PACKET_SIZE];

/// Little-endian words of a packet, for storing into a page of `AtomicU32`.
pub fn packet_to_words(p: &Packet) -> [u32; PACKET_WORDS] {
    core::array::from_fn(|i| {
        u32::from_le_bytes([p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]])
    })
}

/// Inverse of [`packet_to_words`].
pub fn words_to_packet(w: &[u32; PACKET_WORDS]) -> Packet {
    let mut p = [0u8; PACKET_SIZE];
    for (chunk, word) in p.chunks_exact_mut(4).zip(w.iter()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    p
}

/// Why a packet could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// The request's `operation` is not one of `XENDISPL_OP_*`.
    UnknownOperation(u8),
    /// The event's `type` is not one of `XENDISPL_EVT_*`.
    UnknownEventType(u8),
    /// A reserved byte (or one past the operation's struct) is not zero.
    ReservedNotZero {
        /// Byte offset in the packet of the first non-zero reserved byte.
        offset: usize,
    },
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::UnknownOperation(op) => write!(f, "unknown displif operation {op:#x}"),
            PacketError::UnknownEventType(t) => write!(f, "unknown displif event type {t:#x}"),
            PacketError::ReservedNotZero { offset } => {
                write!(f, "reserved byte at offset {offset} is not zero")
            }
        }
    }
}

fn put_u16(p: &mut Packet, off: usize, v: u16) {
    p[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(p: &mut Packet, off: usize, v: u32) {
    p[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(p: &mut Packet, off: usize, v: u64) {
    p[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u16(p: &Packet, off: usize) -> u16 {
    u16::from_le_bytes([p[off], p[off + 1]])
}
fn get_u32(p: &Packet, off: usize) -> u32 {
    u32::from_le_bytes([p[off], p[off + 1], p[off + 2], p[off + 3]])
}
fn get_u64(p: &Packet, off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[off..off + 8]);
    u64::from_le_bytes(b)
}

/// Offset of the first non-zero byte in `p[start..end]`.
fn first_nonzero(p: &Packet, start: usize, end: usize) -> Option<usize> {
    p[start..end]
        .iter()
        .position(|&b| b != 0)
        .map(|i| start + i)
}

/// Checks that `p[start..end]` is all zero.
fn check_zero(p: &Packet, start: usize, end: usize) -> Result<(), PacketError> {
    match first_nonzero(p, start, end) {
        Some(offset) => Err(PacketError::ReservedNotZero { offset }),
        None => Ok(()),
    }
}

/// Offset in a request packet of field `$field` of op struct `$ty`.
macro_rules! op_off {
    ($ty:ty, $field:ident) => {
        PACKET_OP_OFFSET + offset_of!($ty, $field)
    };
}

/// A typed displif request (the body of a `struct xendispl_req`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `XENDISPL_OP_DBUF_CREATE`.
    DbufCreate(DbufCreateReq),
    /// `XENDISPL_OP_DBUF_DESTROY`.
    DbufDestroy(DbufDestroyReq),
    /// `XENDISPL_OP_FB_ATTACH`.
    FbAttach(FbAttachReq),
    /// `XENDISPL_OP_FB_DETACH`.
    FbDetach(FbDetachReq),
    /// `XENDISPL_OP_SET_CONFIG`.
    SetConfig(SetConfigReq),
    /// `XENDISPL_OP_PG_FLIP`.
    PageFlip(PageFlipReq),
    /// `XENDISPL_OP_GET_EDID`.
    GetEdid(GetEdidReq),
}

impl Request {
    /// The `XENDISPL_OP_*` code.
    pub const fn operation(&self) -> u8 {
        match self {
            Request::DbufCreate(_) => XENDISPL_OP_DBUF_CREATE,
            Request::DbufDestroy(_) => XENDISPL_OP_DBUF_DESTROY,
            Request::FbAttach(_) => XENDISPL_OP_FB_ATTACH,
            Request::FbDetach(_) => XENDISPL_OP_FB_DETACH,
            Request::SetConfig(_) => XENDISPL_OP_SET_CONFIG,
            Request::PageFlip(_) => XENDISPL_OP_PG_FLIP,
            Request::GetEdid(_) => XENDISPL_OP_GET_EDID,
        }
    }

    /// Size of the operation's struct inside the `op` union (`None`: unknown
    /// operation); the union's bytes past it are reserved.
    pub const fn op_struct_size(operation: u8) -> Option<usize> {
        Some(match operation {
            XENDISPL_OP_DBUF_CREATE => size_of::<DbufCreateReq>(),
            XENDISPL_OP_DBUF_DESTROY => size_of::<DbufDestroyReq>(),
            XENDISPL_OP_FB_ATTACH => size_of::<FbAttachReq>(),
            XENDISPL_OP_FB_DETACH => size_of::<FbDetachReq>(),
            XENDISPL_OP_SET_CONFIG => size_of::<SetConfigReq>(),
            XENDISPL_OP_PG_FLIP => size_of::<PageFlipReq>(),
            XENDISPL_OP_GET_EDID => size_of::<GetEdidReq>(),
            _ => return None,
        })
    }

    /// Encode as a packet with request id `id`; reserved bytes are zero.
    pub fn encode(&self, id: u16) -> Packet {
        let mut p = [0u8; PACKET_SIZE];
        put_u16(&mut p, PACKET_ID_OFFSET, id);
        p[PACKET_OPERATION_OFFSET] = self.operation();
        match self {
            Request::DbufCreate(r) => {
                put_u64(&mut p, op_off!(DbufCreateReq, dbuf_cookie), r.dbuf_cookie);
                put_u32(&mut p, op_off!(DbufCreateReq, width), r.width);
                put_u32(&mut p, op_off!(DbufCreateReq, height), r.height);
                put_u32(&mut p, op_off!(DbufCreateReq, bpp), r.bpp);
                put_u32(&mut p, op_off!(DbufCreateReq, buffer_sz), r.buffer_sz);
                put_u32(&mut p, op_off!(DbufCreateReq, flags), r.flags);
                put_u32(
                    &mut p,
                    op_off!(DbufCreateReq, gref_directory),
                    r.gref_directory,
                );
                put_u32(&mut p, op_off!(DbufCreateReq, data_ofs), r.data_ofs);
            }
            Request::DbufDestroy(r) => {
                put_u64(&mut p, op_off!(DbufDestroyReq, dbuf_cookie), r.dbuf_cookie);
            }
            Request::FbAttach(r) => {
                put_u64(&mut p, op_off!(FbAttachReq, dbuf_cookie), r.dbuf_cookie);
                put_u64(&mut p, op_off!(FbAttachReq, fb_cookie), r.fb_cookie);
                put_u32(&mut p, op_off!(FbAttachReq, width), r.width);
                put_u32(&mut p, op_off!(FbAttachReq, height), r.height);
                put_u32(&mut p, op_off!(FbAttachReq, pixel_format), r.pixel_format);
            }
            Request::FbDetach(r) => {
                put_u64(&mut p, op_off!(FbDetachReq, fb_cookie), r.fb_cookie);
            }
            Request::SetConfig(r) => {
                put_u64(&mut p, op_off!(SetConfigReq, fb_cookie), r.fb_cookie);
                put_u32(&mut p, op_off!(SetConfigReq, x), r.x);
                put_u32(&mut p, op_off!(SetConfigReq, y), r.y);
                put_u32(&mut p, op_off!(SetConfigReq, width), r.width);
                put_u32(&mut p, op_off!(SetConfigReq, height), r.height);
                put_u32(&mut p, op_off!(SetConfigReq, bpp), r.bpp);
            }
            Request::PageFlip(r) => {
                put_u64(&mut p, op_off!(PageFlipReq, fb_cookie), r.fb_cookie);
            }
            Request::GetEdid(r) => {
                put_u32(&mut p, op_off!(GetEdidReq, buffer_sz), r.buffer_sz);
                put_u32(
                    &mut p,
                    op_off!(GetEdidReq, gref_directory),
                    r.gref_directory,
                );
            }
        }
        p
    }

    /// The `(id, operation)` header of any request packet, valid or not (a backend
    /// echoes both in its error response).
    pub fn header(p: &Packet) -> (u16, u8) {
        (get_u16(p, PACKET_ID_OFFSET), p[PACKET_OPERATION_OFFSET])
    }

    /// Decode a request packet into `(id, request)`.
    ///
    /// Strict: unknown operations and non-zero reserved bytes (header bytes 3..8
    /// and union bytes past the operation's struct) are errors. Field values are
    /// not validated (cookies, sizes: that is the backend's job).
    pub fn decode(p: &Packet) -> Result<(u16, Request), PacketError> {
        if let Some(offset) = Self::reserved_violation(p) {
            return Err(PacketError::ReservedNotZero { offset });
        }
        Self::decode_ignoring_reserved(p)
    }

    /// Offset of the first non-zero reserved byte of a request packet (header
    /// bytes 3..8, union bytes past the operation's struct), if any. `None` for
    /// unknown operations (they fail [`Request::decode`] anyway).
    ///
    /// Interoperability note: Linux's xen-front (`be_prepare_req` in
    /// `drivers/gpu/drm/xen/xen_drm_front.c`) does not clear a ring slot before
    /// reusing it; it only sets the fields of the new request. Bytes it does
    /// not set keep what the previous response in that slot left, notably that
    /// response's `status` at offsets 4..8 after an error. A backend that
    /// must work with Linux can log these instead of rejecting the request.
    pub fn reserved_violation(p: &Packet) -> Option<usize> {
        let (_, operation) = Self::header(p);
        let op_size = Self::op_struct_size(operation)?;
        first_nonzero(p, PACKET_OPERATION_OFFSET + 1, PACKET_OP_OFFSET)
            .or_else(|| first_nonzero(p, PACKET_OP_OFFSET + op_size, PACKET_SIZE))
    }

    /// Decode without the reserved-bytes check: only unknown operations fail.
    /// See [`Request::reserved_violation`] for why a backend may want this.
    pub fn decode_ignoring_reserved(p: &Packet) -> Result<(u16, Request), PacketError> {
        let (id, operation) = Self::header(p);
        let req = match operation {
            XENDISPL_OP_DBUF_CREATE => Request::DbufCreate(DbufCreateReq {
                dbuf_cookie: get_u64(p, op_off!(DbufCreateReq, dbuf_cookie)),
                width: get_u32(p, op_off!(DbufCreateReq, width)),
                height: get_u32(p, op_off!(DbufCreateReq, height)),
                bpp: get_u32(p, op_off!(DbufCreateReq, bpp)),
                buffer_sz: get_u32(p, op_off!(DbufCreateReq, buffer_sz)),
                flags: get_u32(p, op_off!(DbufCreateReq, flags)),
                gref_directory: get_u32(p, op_off!(DbufCreateReq, gref_directory)),
                data_ofs: get_u32(p, op_off!(DbufCreateReq, data_ofs)),
            }),
            XENDISPL_OP_DBUF_DESTROY => Request::DbufDestroy(DbufDestroyReq {
                dbuf_cookie: get_u64(p, op_off!(DbufDestroyReq, dbuf_cookie)),
            }),
            XENDISPL_OP_FB_ATTACH => Request::FbAttach(FbAttachReq {
                dbuf_cookie: get_u64(p, op_off!(FbAttachReq, dbuf_cookie)),
                fb_cookie: get_u64(p, op_off!(FbAttachReq, fb_cookie)),
                width: get_u32(p, op_off!(FbAttachReq, width)),
                height: get_u32(p, op_off!(FbAttachReq, height)),
                pixel_format: get_u32(p, op_off!(FbAttachReq, pixel_format)),
            }),
            XENDISPL_OP_FB_DETACH => Request::FbDetach(FbDetachReq {
                fb_cookie: get_u64(p, op_off!(FbDetachReq, fb_cookie)),
            }),
            XENDISPL_OP_SET_CONFIG => Request::SetConfig(SetConfigReq {
                fb_cookie: get_u64(p, op_off!(SetConfigReq, fb_cookie)),
                x: get_u32(p, op_off!(SetConfigReq, x)),
                y: get_u32(p, op_off!(SetConfigReq, y)),
                width: get_u32(p, op_off!(SetConfigReq, width)),
                height: get_u32(p, op_off!(SetConfigReq, height)),
                bpp: get_u32(p, op_off!(SetConfigReq, bpp)),
            }),
            XENDISPL_OP_PG_FLIP => Request::PageFlip(PageFlipReq {
                fb_cookie: get_u64(p, op_off!(PageFlipReq, fb_cookie)),
            }),
            XENDISPL_OP_GET_EDID => Request::GetEdid(GetEdidReq {
                buffer_sz: get_u32(p, op_off!(GetEdidReq, buffer_sz)),
                gref_directory: get_u32(p, op_off!(GetEdidReq, gref_directory)),
            }),
            other => return Err(PacketError::UnknownOperation(other)),
        };
        Ok((id, req))
    }
}

/// A typed displif response (`struct xendispl_resp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// Id of the request answered.
    pub id: u16,
    /// Operation of the request answered (backends must echo it).
    pub operation: u8,
    /// 0 or `-XEN_Exx`.
    pub status: i32,
    /// `get_edid.edid_sz` for `GET_EDID` responses; must be 0 otherwise.
    pub edid_sz: u32,
}

impl Response {
    /// Encode; `edid_sz` is only written for `XENDISPL_OP_GET_EDID` responses.
    pub fn encode(&self) -> Packet {
        let mut p = [0u8; PACKET_SIZE];
        put_u16(&mut p, PACKET_ID_OFFSET, self.id);
        p[PACKET_OPERATION_OFFSET] = self.operation;
        put_u32(&mut p, RESP_STATUS_OFFSET, self.status as u32);
        if self.operation == XENDISPL_OP_GET_EDID {
            put_u32(
                &mut p,
                PACKET_OP_OFFSET + offset_of!(GetEdidResp, edid_sz),
                self.edid_sz,
            );
        }
        p
    }

    /// Decode; reserved bytes must be zero (the union too, except `edid_sz` of
    /// a `GET_EDID` response). The operation is not checked against known codes.
    pub fn decode(p: &Packet) -> Result<Response, PacketError> {
        let operation = p[PACKET_OPERATION_OFFSET];
        check_zero(p, PACKET_OPERATION_OFFSET + 1, RESP_STATUS_OFFSET)?;
        let (edid_sz, tail) = if operation == XENDISPL_OP_GET_EDID {
            (
                get_u32(p, PACKET_OP_OFFSET + offset_of!(GetEdidResp, edid_sz)),
                PACKET_OP_OFFSET + size_of::<GetEdidResp>(),
            )
        } else {
            (0, PACKET_OP_OFFSET)
        };
        check_zero(p, tail, PACKET_SIZE)?;
        Ok(Response {
            id: get_u16(p, PACKET_ID_OFFSET),
            operation,
            status: get_u32(p, RESP_STATUS_OFFSET) as i32,
            edid_sz,
        })
    }
}

/// A typed displif event (`struct xendispl_evt`); only `XENDISPL_EVT_PG_FLIP` exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Event id (0, 1, 2, ... per connector since connect).
    pub id: u16,
    /// Framebuffer whose flip completed.
    pub fb_cookie: u64,
}

impl Event {
    /// Encode as an `XENDISPL_EVT_PG_FLIP` packet.
    pub fn encode(&self) -> Packet {
        let mut p = [0u8; PACKET_SIZE];
        put_u16(&mut p, PACKET_ID_OFFSET, self.id);
        p[PACKET_OPERATION_OFFSET] = XENDISPL_EVT_PG_FLIP;
        put_u64(
            &mut p,
            PACKET_OP_OFFSET + offset_of!(PgFlipEvt, fb_cookie),
            self.fb_cookie,
        );
        p
    }

    /// Decode; unknown types and non-zero reserved bytes are errors.
    pub fn decode(p: &Packet) -> Result<Event, PacketError> {
        let type_ = p[PACKET_OPERATION_OFFSET];
        if type_ != XENDISPL_EVT_PG_FLIP {
            return Err(PacketError::UnknownEventType(type_));
        }
        check_zero(p, PACKET_OPERATION_OFFSET + 1, PACKET_OP_OFFSET)?;
        check_zero(p, PACKET_OP_OFFSET + size_of::<PgFlipEvt>(), PACKET_SIZE)?;
        Ok(Event {
            id: get_u16(p, PACKET_ID_OFFSET),
            fb_cookie: get_u64(p, PACKET_OP_OFFSET + offset_of!(PgFlipEvt, fb_cookie)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbuf_create_offsets_match_dossier() {
        let r = Request::DbufCreate(DbufCreateReq {
            dbuf_cookie: 0x1122_3344_5566_7788,
            width: 1920,
            height: 1080,
            bpp: 32,
            buffer_sz: 1920 * 1080 * 4,
            flags: XENDISPL_DBUF_FLG_REQ_ALLOC,
            gref_directory: 77,
            data_ofs: 5,
        });
        let p = r.encode(0xbeef);
        assert_eq!(get_u16(&p, 0), 0xbeef);
        assert_eq!(p[2], 0x10);
        assert_eq!(get_u64(&p, 8), 0x1122_3344_5566_7788);
        assert_eq!(get_u32(&p, 16), 1920);
        assert_eq!(get_u32(&p, 20), 1080);
        assert_eq!(get_u32(&p, 24), 32);
        assert_eq!(get_u32(&p, 28), 1920 * 1080 * 4);
        assert_eq!(get_u32(&p, 32), 1);
        assert_eq!(get_u32(&p, 36), 77);
        assert_eq!(get_u32(&p, 40), 5);
        assert_eq!(Request::decode(&p), Ok((0xbeef, r)));
    }

    #[test]
    fn set_config_bpp_at_32_not_40() {
        let r = Request::SetConfig(SetConfigReq {
            fb_cookie: 9,
            x: 1,
            y: 2,
            width: 3,
            height: 4,
            bpp: 32,
        });
        let p = r.encode(1);
        assert_eq!(get_u32(&p, 32), 32);
        assert_eq!(&p[36..], &[0u8; 28]);
    }

    #[test]
    fn every_request_round_trips_and_rejects_reserved_bytes() {
        let reqs = [
            Request::DbufCreate(DbufCreateReq {
                dbuf_cookie: 1,
                ..Default::default()
            }),
            Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: 2 }),
            Request::FbAttach(FbAttachReq {
                dbuf_cookie: 1,
                fb_cookie: 3,
                width: 4,
                height: 5,
                pixel_format: 6,
            }),
            Request::FbDetach(FbDetachReq { fb_cookie: 3 }),
            Request::SetConfig(SetConfigReq::default()),
            Request::PageFlip(PageFlipReq { fb_cookie: 3 }),
            Request::GetEdid(GetEdidReq {
                buffer_sz: XENDISPL_EDID_MAX_SIZE,
                gref_directory: 9,
            }),
        ];
        for r in reqs {
            let p = r.encode(42);
            assert_eq!(Request::decode(&p), Ok((42, r)));
            let size = Request::op_struct_size(r.operation()).unwrap();
            for off in (3..8).chain(PACKET_OP_OFFSET + size..PACKET_SIZE) {
                let mut bad = p;
                bad[off] = 0x80;
                assert_eq!(
                    Request::decode(&bad),
                    Err(PacketError::ReservedNotZero { offset: off })
                );
            }
        }
    }

    #[test]
    fn stale_slot_bytes_can_be_tolerated() {
        // A PG_FLIP written Linux-style over a slot that held an error response
        // (status -22 at 4..8) and an older DBUF_CREATE tail.
        let mut p = Request::DbufCreate(DbufCreateReq {
            dbuf_cookie: 1,
            width: 64,
            ..Default::default()
        })
        .encode(1);
        p[4..8].copy_from_slice(&(-22i32).to_le_bytes());
        p[0..2].copy_from_slice(&9u16.to_le_bytes());
        p[2] = XENDISPL_OP_PG_FLIP;
        p[8..16].copy_from_slice(&5u64.to_le_bytes());
        assert_eq!(Request::reserved_violation(&p), Some(4));
        assert_eq!(
            Request::decode(&p),
            Err(PacketError::ReservedNotZero { offset: 4 })
        );
        assert_eq!(
            Request::decode_ignoring_reserved(&p),
            Ok((9, Request::PageFlip(PageFlipReq { fb_cookie: 5 })))
        );
        let clean = Request::PageFlip(PageFlipReq { fb_cookie: 5 }).encode(9);
        assert_eq!(Request::reserved_violation(&clean), None);
        p[2] = 0x42;
        assert_eq!(Request::reserved_violation(&p), None);
        assert_eq!(
            Request::decode_ignoring_reserved(&p),
            Err(PacketError::UnknownOperation(0x42))
        );
    }

    #[test]
    fn unknown_operations_are_errors() {
        for op in (0u8..=255).filter(|o| !(0x10..=0x16).contains(o)) {
            let mut p = [0u8; PACKET_SIZE];
            p[2] = op;
            assert_eq!(Request::decode(&p), Err(PacketError::UnknownOperation(op)));
            assert_eq!(Request::header(&p), (0, op));
        }
    }

    #[test]
    fn response_and_event_round_trip() {
        let r = Response {
            id: 7,
            operation: XENDISPL_OP_GET_EDID,
            status: 0,
            edid_sz: 256,
        };
        assert_eq!(Response::decode(&r.encode()), Ok(r));
        let r = Response {
            id: 8,
            operation: XENDISPL_OP_PG_FLIP,
            status: -22,
            edid_sz: 0,
        };
        let p = r.encode();
        assert_eq!(get_u32(&p, 4) as i32, -22);
        assert_eq!(Response::decode(&p), Ok(r));
        let mut bad = p;
        bad[8] = 1;
        assert_eq!(
            Response::decode(&bad),
            Err(PacketError::ReservedNotZero { offset: 8 })
        );
        let e = Event {
            id: 65535,
            fb_cookie: u64::MAX,
        };
        let p = e.encode();
        assert_eq!(Event::decode(&p), Ok(e));
        let mut bad = p;
        bad[2] = 1;
        assert_eq!(Event::decode(&bad), Err(PacketError::UnknownEventType(1)));
    }

    #[test]
    fn words_round_trip_little_endian() {
        let p: Packet = core::array::from_fn(|i| i as u8);
        let w = packet_to_words(&p);
        assert_eq!(w[0], 0x0302_0100);
        assert_eq!(words_to_packet(&w), p);
    }
}
