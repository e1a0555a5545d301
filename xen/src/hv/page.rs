//! Identity-mapped guest pages seen as [`SharedPage`]s.

use core::sync::atomic::AtomicU32;

use crate::platform::SharedPage;
use crate::types::{Gfn, PAGE_SIZE};

/// A 4 KiB page at an identity-mapped guest frame, viewed as 1024 atomics.
///
/// Invariant: the frame is identity-mapped, backed (RAM or a Xen/foreign page
/// mapped there) and not accessed through non-atomic references for as long
/// as this value lives.
#[derive(Debug)]
pub struct IdentityPage {
    gfn: Gfn,
}

impl IdentityPage {
    /// View frame `gfn`.
    ///
    /// # Safety
    /// The frame must be identity-mapped and backed for the lifetime of the
    /// value, and all other accesses to it must be atomic (other domains and
    /// Xen count as atomic writers).
    pub const unsafe fn new_unchecked(gfn: Gfn) -> IdentityPage {
        IdentityPage { gfn }
    }

    /// The page's bytes as a raw pointer (for copying whole buffers).
    pub fn as_ptr(&self) -> *mut u8 {
        self.gfn.addr() as usize as *mut u8
    }
}

impl SharedPage for IdentityPage {
    fn words(&self) -> &[AtomicU32] {
        // SAFETY: per the invariant the page is live and only accessed
        // atomically; AtomicU32 has u32's size and alignment, and a page holds
        // PAGE_SIZE / 4 of them.
        unsafe {
            core::slice::from_raw_parts(self.gfn.addr() as usize as *const AtomicU32, PAGE_SIZE / 4)
        }
    }

    fn gfn(&self) -> Gfn {
        self.gfn
    }
}
