//! The conformance rules a frontend's requests are checked against.
//!
//! Each rule has a stable name (used in logs and in `stats.json` under
//! `errors_by_rule`) and the displif status the request is answered with
//! (`-XEN_Exx`, `xen/include/public/errno.h`). Sources: `io/displif.h` for the
//! protocol rules, the backend's own limits for the `cap-*` rules.
//!
//! A [`Warning`] is a frontend deviation the backend tolerates: the request is
//! served normally, and the deviation is counted under `warnings_by_rule`.

use core::fmt;

use xen::abi::errno::{
    XEN_EBUSY, XEN_EEXIST, XEN_EFAULT, XEN_EINVAL, XEN_ENOENT, XEN_ENOMEM, XEN_EOPNOTSUPP,
};

/// A broken rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// "Display buffers's cookie of value 0 is treated as invalid" (and fb cookies).
    CookieZero,
    /// A dbuf or fb cookie already in use.
    DuplicateCookie,
    /// A dbuf or fb cookie that does not exist.
    UnknownCookie,
    /// "All reserved fields ... must be 0" (header, union tail, flags).
    ReservedNotZero,
    /// Not one of the `XENDISPL_OP_*` codes.
    UnknownOperation,
    /// `GET_EDID` before protocol v2 was negotiated.
    NeedsVersion2,
    /// A non-connector-specific request not on connector 0's ring.
    WrongRing,
    /// Width, height or bpp zero where a size is needed.
    ZeroSize,
    /// `bpp` not 8, 16, 24 or 32 (or not matching the pixel format).
    BadBpp,
    /// `buffer_sz` (minus `data_ofs`) smaller than the pixels need.
    BufferTooSmall,
    /// Sizes whose arithmetic overflows, or a buffer above any sane size.
    BufferSizeOverflow,
    /// The gref directory's length does not match `ceil(buffer_sz / 4096)`.
    GrefCountMismatch,
    /// Grant reference 0 in a directory ("treated as invalid").
    GrefZero,
    /// A frontend grant could not be mapped.
    GrantMapFailed,
    /// `XENDISPL_DBUF_FLG_REQ_ALLOC` without `be-alloc` = 1, or with `data_ofs`.
    BackendAllocNotAllowed,
    /// Backend allocation (gntalloc) failed.
    BackendAllocFailed,
    /// `FB_ATTACH` with a fourcc the backend does not support.
    UnsupportedPixelFormat,
    /// `SET_CONFIG` x/y/width/height outside the connector's resolution.
    OutsideConnector,
    /// The visible area is larger than the framebuffer.
    OutsideFramebuffer,
    /// Destroying a dbuf that still has framebuffers attached.
    BufferInUse,
    /// `PG_FLIP` on a connector without a configuration.
    NotConfigured,
    /// `GET_EDID` buffer below `XENDISPL_EDID_MAX_SIZE`.
    EdidBufferTooSmall,
    /// The connector's resolution cannot be described by an EDID block.
    EdidUnrepresentable,
    /// Per-guest cap on the number of buffers.
    CapBuffers,
    /// Per-guest cap on mapped bytes.
    CapMappedBytes,
    /// Per-guest cap on grant references.
    CapGrantRefs,
}

impl Rule {
    /// The rule's stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::CookieZero => "cookie-zero",
            Rule::DuplicateCookie => "duplicate-cookie",
            Rule::UnknownCookie => "unknown-cookie",
            Rule::ReservedNotZero => "reserved-not-zero",
            Rule::UnknownOperation => "unknown-operation",
            Rule::NeedsVersion2 => "needs-protocol-v2",
            Rule::WrongRing => "wrong-ring",
            Rule::ZeroSize => "zero-size",
            Rule::BadBpp => "bad-bpp",
            Rule::BufferTooSmall => "buffer-too-small",
            Rule::BufferSizeOverflow => "buffer-size-overflow",
            Rule::GrefCountMismatch => "gref-count-mismatch",
            Rule::GrefZero => "gref-zero",
            Rule::GrantMapFailed => "grant-map-failed",
            Rule::BackendAllocNotAllowed => "be-alloc-not-allowed",
            Rule::BackendAllocFailed => "be-alloc-failed",
            Rule::UnsupportedPixelFormat => "unsupported-pixel-format",
            Rule::OutsideConnector => "outside-connector",
            Rule::OutsideFramebuffer => "outside-framebuffer",
            Rule::BufferInUse => "buffer-in-use",
            Rule::NotConfigured => "not-configured",
            Rule::EdidBufferTooSmall => "edid-buffer-too-small",
            Rule::EdidUnrepresentable => "edid-unrepresentable",
            Rule::CapBuffers => "cap-buffers",
            Rule::CapMappedBytes => "cap-mapped-bytes",
            Rule::CapGrantRefs => "cap-grant-refs",
        }
    }

    /// The response status (`-XEN_Exx`).
    pub const fn status(self) -> i32 {
        -match self {
            Rule::DuplicateCookie => XEN_EEXIST,
            Rule::UnknownCookie => XEN_ENOENT,
            Rule::NeedsVersion2 => XEN_EOPNOTSUPP,
            Rule::GrantMapFailed => XEN_EFAULT,
            Rule::BufferInUse => XEN_EBUSY,
            Rule::BackendAllocFailed
            | Rule::CapBuffers
            | Rule::CapMappedBytes
            | Rule::CapGrantRefs => XEN_ENOMEM,
            _ => XEN_EINVAL,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule broken by one request, with details for the log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What exactly was wrong.
    pub detail: String,
}

impl Violation {
    /// A violation of `rule` described by `detail`.
    pub fn new(rule: Rule, detail: impl Into<String>) -> Violation {
        Violation {
            rule,
            detail: detail.into(),
        }
    }
}

/// A tolerated deviation: the request is served, the deviation counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Warning {
    /// Non-zero reserved bytes that are exactly the bytes of the backend's own
    /// previous response in the same ring slot (a frontend reusing slots
    /// without clearing them, as Linux's xen-front does; `crate::reserved`).
    StaleSlotBytes,
}

impl Warning {
    /// The warning's stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Warning::StaleSlotBytes => "stale-slot-bytes",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
