//! Xenstore wire protocol (`xen/include/public/io/xs_wire.h`, `docs/misc/xenstore.txt`).
//!
//! Every message is a 16-byte [`XsdSockmsg`] header (little-endian on x86) followed
//! by `len` payload bytes, at most [`XENSTORE_PAYLOAD_MAX`]. The guest talks to
//! xenstored over [`XenstoreDomainInterface`], two 1 KiB byte rings in one page;
//! dom0 uses the same framing over `/dev/xen/xenbus`. The codec is in
//! [`crate::xenstore`].

use core::mem::{offset_of, size_of};

/// `enum xsd_sockmsg_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XsType {
    /// `XS_CONTROL` (alias `XS_DEBUG`).
    Control = 0,
    /// `XS_DIRECTORY`.
    Directory = 1,
    /// `XS_READ`.
    Read = 2,
    /// `XS_GET_PERMS`.
    GetPerms = 3,
    /// `XS_WATCH`.
    Watch = 4,
    /// `XS_UNWATCH`.
    Unwatch = 5,
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6,
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7,
    /// `XS_INTRODUCE`.
    Introduce = 8,
    /// `XS_RELEASE`.
    Release = 9,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10,
    /// `XS_WRITE`.
    Write = 11,
    /// `XS_MKDIR`.
    Mkdir = 12,
    /// `XS_RM`.
    Rm = 13,
    /// `XS_SET_PERMS`.
    SetPerms = 14,
    /// `XS_WATCH_EVENT`: asynchronous, not a reply.
    WatchEvent = 15,
    /// `XS_ERROR`: payload is an errno name such as `"ENOENT"`.
    Error = 16,
    /// `XS_IS_DOMAIN_INTRODUCED`.
    IsDomainIntroduced = 17,
    /// `XS_RESUME`.
    Resume = 18,
    /// `XS_SET_TARGET`.
    SetTarget = 19,
    /// `XS_RESET_WATCHES` (`XS_SET_TARGET + 2`; 20 was `XS_RESTRICT`).
    ResetWatches = 21,
    /// `XS_DIRECTORY_PART`.
    DirectoryPart = 22,
}

/// `XS_TYPE_COUNT`: number of valid types (one past the last).
pub const XS_TYPE_COUNT: u32 = 23;
/// `XS_INVALID`.
pub const XS_INVALID: u32 = 0xffff;

impl TryFrom<u32> for XsType {
    type Error = u32;
    /// Fails with the raw value for unknown (or removed, like 20) types.
    fn try_from(v: u32) -> Result<Self, u32> {
        Ok(match v {
            0 => XsType::Control,
            1 => XsType::Directory,
            2 => XsType::Read,
            3 => XsType::GetPerms,
            4 => XsType::Watch,
            5 => XsType::Unwatch,
            6 => XsType::TransactionStart,
            7 => XsType::TransactionEnd,
            8 => XsType::Introduce,
            9 => XsType::Release,
            10 => XsType::GetDomainPath,
            11 => XsType::Write,
            12 => XsType::Mkdir,
            13 => XsType::Rm,
            14 => XsType::SetPerms,
            15 => XsType::WatchEvent,
            16 => XsType::Error,
            17 => XsType::IsDomainIntroduced,
            18 => XsType::Resume,
            19 => XsType::SetTarget,
            21 => XsType::ResetWatches,
            22 => XsType::DirectoryPart,
            other => return Err(other),
        })
    }
}

/// `struct xsd_sockmsg`: the 16-byte message header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    /// `XS_*` ([`XsType`]).
    pub type_: u32,
    /// Request id, echoed in the reply.
    pub req_id: u32,
    /// Transaction id, 0 outside transactions.
    pub tx_id: u32,
    /// Payload length in bytes.
    pub len: u32,
}

/// Size of [`XsdSockmsg`] on the wire.
pub const XSD_SOCKMSG_SIZE: usize = size_of::<XsdSockmsg>();

impl XsdSockmsg {
    /// Little-endian wire bytes.
    pub fn to_bytes(&self) -> [u8; XSD_SOCKMSG_SIZE] {
        let mut b = [0u8; XSD_SOCKMSG_SIZE];
        b[0..4].copy_from_slice(&self.type_.to_le_bytes());
        b[4..8].copy_from_slice(&self.req_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.tx_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Parse little-endian wire bytes (no validation of the values).
    pub fn from_bytes(b: &[u8; XSD_SOCKMSG_SIZE]) -> XsdSockmsg {
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        XsdSockmsg {
            type_: w(0),
            req_id: w(4),
            tx_id: w(8),
            len: w(12),
        }
    }
}

/// `XS_WATCH_PATH`: index of the path in a watch event payload.
pub const XS_WATCH_PATH: usize = 0;
/// `XS_WATCH_TOKEN`: index of the token in a watch event payload.
pub const XS_WATCH_TOKEN: usize = 1;

/// `XENSTORE_PAYLOAD_MAX`: longest payload either side may send.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// `XENSTORE_RING_SIZE`: bytes in each of the request and response rings.
pub const XENSTORE_RING_SIZE: usize = 1024;

/// `MASK_XENSTORE_IDX`.
pub const fn mask_xenstore_idx(idx: u32) -> usize {
    (idx as usize) & (XENSTORE_RING_SIZE - 1)
}

/// `struct xenstore_domain_interface`: the guest's xenstore page.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenstoreDomainInterface {
    /// Requests to xenstored (guest produces).
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events (xenstored produces).
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// xenstored's consumer index into `req`.
    pub req_cons: u32,
    /// Guest's producer index into `req`.
    pub req_prod: u32,
    /// Guest's consumer index into `rsp`.
    pub rsp_cons: u32,
    /// xenstored's producer index into `rsp`.
    pub rsp_prod: u32,
    /// `XENSTORE_SERVER_FEATURE_*` bitmap.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
}

/// Byte offset of `req` in the xenstore page.
pub const XS_IF_REQ_OFFSET: usize = offset_of!(XenstoreDomainInterface, req);
/// Byte offset of `rsp`.
pub const XS_IF_RSP_OFFSET: usize = offset_of!(XenstoreDomainInterface, rsp);
/// Byte offset of `req_cons`.
pub const XS_IF_REQ_CONS_OFFSET: usize = offset_of!(XenstoreDomainInterface, req_cons);
/// Byte offset of `req_prod`.
pub const XS_IF_REQ_PROD_OFFSET: usize = offset_of!(XenstoreDomainInterface, req_prod);
/// Byte offset of `rsp_cons`.
pub const XS_IF_RSP_CONS_OFFSET: usize = offset_of!(XenstoreDomainInterface, rsp_cons);
/// Byte offset of `rsp_prod`.
pub const XS_IF_RSP_PROD_OFFSET: usize = offset_of!(XenstoreDomainInterface, rsp_prod);
/// Byte offset of `server_features`.
pub const XS_IF_SERVER_FEATURES_OFFSET: usize =
    offset_of!(XenstoreDomainInterface, server_features);
/// Byte offset of `connection`.
pub const XS_IF_CONNECTION_OFFSET: usize = offset_of!(XenstoreDomainInterface, connection);
/// Byte offset of `error`.
pub const XS_IF_ERROR_OFFSET: usize = offset_of!(XenstoreDomainInterface, error);

/// `XENSTORE_SERVER_FEATURE_RECONNECTION`.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `XENSTORE_CONNECTED`.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`.
pub const XENSTORE_RECONNECT: u32 = 1;
/// `XENSTORE_ERROR_NONE`.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`.
pub const XENSTORE_ERROR_PROTO: u32 = 3;

/// `XS_WRITE_NONE` (legacy write-flag strings).
pub const XS_WRITE_NONE: &str = "NONE";
/// `XS_WRITE_CREATE`.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `XS_WRITE_CREATE_EXCL`.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// The `xsd_errors` table, in the header's order: errno value and name.
/// xenstored sends the name as the payload of an `XS_ERROR` reply.
pub const XSD_ERRORS: [(i32, &str); 16] = [
    (22, "EINVAL"),
    (13, "EACCES"),
    (17, "EEXIST"),
    (21, "EISDIR"),
    (2, "ENOENT"),
    (12, "ENOMEM"),
    (28, "ENOSPC"),
    (5, "EIO"),
    (39, "ENOTEMPTY"),
    (38, "ENOSYS"),
    (30, "EROFS"),
    (16, "EBUSY"),
    (11, "EAGAIN"),
    (106, "EISCONN"),
    (7, "E2BIG"),
    (1, "EPERM"),
];

const _: () = assert!(XSD_SOCKMSG_SIZE == 16);
const _: () = assert!(XS_IF_REQ_CONS_OFFSET == 2048);
const _: () = assert!(size_of::<XenstoreDomainInterface>() == 2076);
