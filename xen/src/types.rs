//! Newtypes for Xen identifiers and addresses, shared by every layer.
//!
//! Using distinct types for domain ids, grant references, event-channel ports and
//! frame numbers keeps them from being mixed up at call sites.

use core::fmt;

/// Size of a Xen page (`XEN_PAGE_SIZE`, 4 KiB on x86).
pub const PAGE_SIZE: usize = 4096;

/// A domain id (`domid_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomId(pub u16);

impl DomId {
    /// `DOMID_SELF` from `xen.h`.
    pub const SELF: DomId = DomId(0x7ff0);
    /// Domain 0.
    pub const DOM0: DomId = DomId(0);
}

/// A grant reference (`grant_ref_t`). Reference 0 is never valid in displif.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantRef(pub u32);

/// An event-channel port (`evtchn_port_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvtchnPort(pub u32);

/// A guest frame number (guest-physical address >> 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gfn(pub u64);

impl Gfn {
    /// The frame containing guest-physical address `addr`.
    pub const fn containing(addr: u64) -> Gfn {
        Gfn(addr >> 12)
    }
    /// Guest-physical address of the frame's first byte.
    pub const fn addr(self) -> u64 {
        self.0 << 12
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(DomId, GrantRef, EvtchnPort);

impl fmt::Display for Gfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
