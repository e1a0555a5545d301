//! The small traits the hypervisor sits behind.
//!
//! Protocol logic (xenstore client, displif frontend, rings) is written against
//! these traits, so it runs on the host against fakes and in the unikernel against
//! real hypercalls (`kernel/` implements them). The dom0 backend implements the
//! ones it needs over `/dev/xen/*`.
//!
//! Shared memory is exposed as `&[AtomicU32]` views: every access to memory the
//! other end may write concurrently is an atomic (never a plain `&mut`), which is
//! both sound and testable with an in-memory page.

use core::fmt;
use core::sync::atomic::AtomicU32;

use crate::types::{DomId, EvtchnPort, Gfn, GrantRef};

/// An error from a hypercall or a platform operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// The hypervisor (or dom0 device) returned this negative errno.
    Errno(i32),
    /// A resource we manage ourselves ran out (grant refs, pages, ports).
    Exhausted(&'static str),
    /// The operation was asked of something we do not hold (unknown ref, port).
    NotHeld(&'static str),
    /// A grant could not be revoked because the other end still maps it.
    StillInUse(GrantRef),
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Errno(e) => write!(f, "hypervisor error {e}"),
            PlatformError::Exhausted(what) => write!(f, "out of {what}"),
            PlatformError::NotHeld(what) => write!(f, "not held: {what}"),
            PlatformError::StillInUse(r) => write!(f, "grant {r} still mapped by the peer"),
        }
    }
}

/// Monotonic time since boot in nanoseconds (pvclock in the guest).
pub trait Clock {
    /// Nanoseconds since an arbitrary fixed origin; never goes backwards.
    fn now_ns(&self) -> u64;
}

/// Why a [`EventChannels::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// At least one of the ports is pending (its pending bit is NOT cleared).
    Pending,
    /// The deadline passed first.
    DeadlinePassed,
}

/// Event channels of the local domain.
pub trait EventChannels {
    /// Allocate an unbound port that `remote` may bind to.
    fn alloc_unbound(&mut self, remote: DomId) -> Result<EvtchnPort, PlatformError>;
    /// Bind a local port to `remote`'s port.
    fn bind_interdomain(
        &mut self,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, PlatformError>;
    /// Notify the other end.
    fn send(&mut self, port: EvtchnPort) -> Result<(), PlatformError>;
    /// Close a port.
    fn close(&mut self, port: EvtchnPort) -> Result<(), PlatformError>;
    /// Test and clear the port's pending bit.
    fn take_pending(&mut self, port: EvtchnPort) -> bool;
    /// Block until one of `ports` is pending or `deadline_ns` (by [`Clock`]) passes.
    /// `None` waits without a deadline.
    fn wait(
        &mut self,
        ports: &[EvtchnPort],
        deadline_ns: Option<u64>,
    ) -> Result<WaitOutcome, PlatformError>;
}

/// A page-aligned, exclusively owned run of guest pages.
pub trait PageRun {
    /// Frame number of page `index` in the run.
    fn gfn(&self, index: usize) -> Gfn;
    /// Number of pages.
    fn nr_pages(&self) -> usize;
}

/// Grant table v1 of the local domain (granting side and foreign mapping).
pub trait GrantTable {
    /// Let `domid` access frame `gfn` (read-only if `is_readonly`).
    fn grant_access(
        &mut self,
        domid: DomId,
        gfn: Gfn,
        is_readonly: bool,
    ) -> Result<GrantRef, PlatformError>;
    /// Revoke a grant made by [`GrantTable::grant_access`] and free the reference.
    /// Fails with [`PlatformError::StillInUse`] if the peer still maps it.
    fn end_access(&mut self, gref: GrantRef) -> Result<(), PlatformError>;
    /// Map `domid`'s grant `gref` at our frame `gfn`; returns a handle for unmapping.
    fn map_foreign(&mut self, domid: DomId, gref: GrantRef, gfn: Gfn)
        -> Result<u32, PlatformError>;
    /// Undo a [`GrantTable::map_foreign`].
    fn unmap_foreign(&mut self, gfn: Gfn, handle: u32) -> Result<(), PlatformError>;
}

/// A view of one shared 4 KiB page as 1024 atomics (ring pages, event pages,
/// gref directories). Implemented over real memory in the guest and the backend,
/// over a boxed array in tests.
pub trait SharedPage {
    /// The page's words.
    fn words(&self) -> &[AtomicU32];
    /// Its frame number (what gets granted).
    fn gfn(&self) -> Gfn;
}
