//! [`GrantTable`] for the guest: grant table v1 mapped into our physmap.
//!
//! The table's frames are mapped with `XENMEM_add_to_physmap(XENMAPSPACE_grant_table, i)`
//! at consecutive unpopulated guest frames the caller reserves for up to
//! `max_nr_frames` (from `GNTTABOP_query_size`), so the table is one contiguous
//! run of atomic words. It starts with a few frames and grows (asking Xen to
//! map the next frame index, which extends the table) when references run out.
//! Entry writes and revokes are `crate::gnttab::table`'s; reference
//! bookkeeping is `crate::gnttab::GrantRefAllocator`'s (never hands out the
//! toolstack's reserved references).
//!
//! Foreign grants (backend-allocated buffers) are mapped with
//! `GNTTABOP_map_grant_ref(GNTMAP_host_map)` where `host_addr` is a guest
//! physical address: for an auto-translated (PVH) guest that puts the foreign
//! page into our physmap at that frame. Only frames of the foreign-mapping
//! window given at construction are accepted, so a safe call can never replace
//! RAM that Rust code uses.

use core::sync::atomic::AtomicU32;

use crate::abi::grant_table::{GNTMAP_READONLY, GRANT_ENTRIES_V1_PER_PAGE};
use crate::abi::memory::XENMAPSPACE_GRANT_TABLE;
use crate::gnttab::table;
use crate::gnttab::GrantRefAllocator;
use crate::hv::hypercall::Hypervisor;
use crate::platform::{GrantTable, PlatformError};
use crate::types::{DomId, Gfn, GrantRef, PAGE_SIZE};

/// Frames mapped at start.
pub const INITIAL_FRAMES: u32 = 4;

/// A range of guest frames `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRange {
    /// First frame.
    pub start: Gfn,
    /// Number of frames.
    pub len: u64,
}

impl FrameRange {
    fn contains(&self, gfn: Gfn) -> bool {
        gfn.0 >= self.start.0 && gfn.0 - self.start.0 < self.len
    }
}

/// The guest's grant table.
///
/// Invariant: frames `table_frames.start .. + mapped_frames` are identity-mapped
/// and hold Xen's grant-table frames; nothing else uses `table_frames`.
#[derive(Debug)]
pub struct XenGrantTable {
    hv: Hypervisor,
    table_frames: FrameRange,
    mapped_frames: u32,
    refs: GrantRefAllocator,
    foreign_window: FrameRange,
}

impl XenGrantTable {
    /// Map the table. `table_frames` receives the table (its length bounds
    /// growth, see [`XenGrantTable::frames_wanted`]); foreign grants may later
    /// be mapped into `foreign_window` only.
    ///
    /// # Safety
    /// Both ranges must be unpopulated (or otherwise unused), identity-mapped
    /// guest frames reserved for this table for the rest of the program, and
    /// must not overlap each other; nothing may access `foreign_window` except
    /// through mappings made here.
    pub unsafe fn new(
        hv: Hypervisor,
        table_frames: FrameRange,
        foreign_window: FrameRange,
    ) -> Result<XenGrantTable, PlatformError> {
        let (_, max) = hv.gnttab_query_size()?;
        let limit = u64::from(max).min(table_frames.len);
        if limit == 0 {
            return Err(PlatformError::Exhausted("grant-table frames"));
        }
        let mut table = XenGrantTable {
            hv,
            table_frames: FrameRange {
                start: table_frames.start,
                len: limit,
            },
            mapped_frames: 0,
            refs: GrantRefAllocator::new(0),
            foreign_window,
        };
        table.grow_to(INITIAL_FRAMES.min(limit as u32))?;
        Ok(table)
    }

    /// How many frames to reserve for the table, given Xen's maximum
    /// (`GNTTABOP_query_size`).
    pub fn frames_wanted(hv: &Hypervisor) -> Result<u32, PlatformError> {
        Ok(hv.gnttab_query_size()?.1)
    }

    /// Frames mapped so far.
    pub fn mapped_frames(&self) -> u32 {
        self.mapped_frames
    }

    /// References in use (for leak checks).
    pub fn refs_in_use(&self) -> u32 {
        self.refs.in_use()
    }

    fn grow_to(&mut self, frames: u32) -> Result<(), PlatformError> {
        while self.mapped_frames < frames {
            let index = self.mapped_frames;
            let gfn = Gfn(self.table_frames.start.0 + u64::from(index));
            // SAFETY: `gfn` is inside `table_frames` (frames <= len, checked by
            // callers), reserved for the table by the constructor's contract.
            unsafe {
                self.hv
                    .add_to_physmap(XENMAPSPACE_GRANT_TABLE, u64::from(index), gfn)
            }?;
            self.mapped_frames += 1;
            self.refs
                .grow(self.mapped_frames * GRANT_ENTRIES_V1_PER_PAGE as u32)?;
        }
        Ok(())
    }

    /// The mapped table as words.
    pub fn table(&self) -> &[AtomicU32] {
        // SAFETY: per the invariant the first `mapped_frames` frames of
        // `table_frames` are mapped, identity-mapped and used only through
        // atomics (Xen updates GTF_reading/writing concurrently).
        unsafe {
            core::slice::from_raw_parts(
                self.table_frames.start.addr() as usize as *const AtomicU32,
                self.mapped_frames as usize * PAGE_SIZE / 4,
            )
        }
    }

    fn alloc_ref(&mut self) -> Result<GrantRef, PlatformError> {
        match self.refs.alloc() {
            Ok(r) => Ok(r),
            Err(PlatformError::Exhausted(_))
                if u64::from(self.mapped_frames) < self.table_frames.len =>
            {
                self.grow_to(self.mapped_frames + 1)?;
                self.refs.alloc()
            }
            Err(e) => Err(e),
        }
    }
}

impl GrantTable for XenGrantTable {
    fn grant_access(
        &mut self,
        domid: DomId,
        gfn: Gfn,
        is_readonly: bool,
    ) -> Result<GrantRef, PlatformError> {
        let r = self.alloc_ref()?;
        if let Err(e) = table::grant_access(self.table(), r, domid, gfn, is_readonly) {
            self.refs.free(r)?;
            return Err(e);
        }
        Ok(r)
    }

    fn end_access(&mut self, gref: GrantRef) -> Result<(), PlatformError> {
        if !self.refs.is_allocated(gref) {
            return Err(PlatformError::NotHeld("grant reference"));
        }
        table::end_access(self.table(), gref)?;
        self.refs.free(gref)
    }

    fn map_foreign(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        gfn: Gfn,
    ) -> Result<u32, PlatformError> {
        self.map_foreign_with(domid, gref, gfn, false)
    }

    fn unmap_foreign(&mut self, gfn: Gfn, handle: u32) -> Result<(), PlatformError> {
        if !self.foreign_window.contains(gfn) {
            return Err(PlatformError::NotHeld(
                "frame outside the foreign-mapping window",
            ));
        }
        // SAFETY: the frame is in the foreign window, which no Rust object uses
        // except through atomic views whose owners unmap only when done (the
        // constructor's contract).
        unsafe { self.hv.gnttab_unmap_grant_ref(gfn, handle) }
    }
}

impl XenGrantTable {
    /// [`GrantTable::map_foreign`] with a read-only option.
    pub fn map_foreign_with(
        &mut self,
        domid: DomId,
        gref: GrantRef,
        gfn: Gfn,
        is_readonly: bool,
    ) -> Result<u32, PlatformError> {
        if !self.foreign_window.contains(gfn) {
            return Err(PlatformError::NotHeld(
                "frame outside the foreign-mapping window",
            ));
        }
        let flags = if is_readonly { GNTMAP_READONLY } else { 0 };
        // SAFETY: the frame is in the foreign window, reserved for such
        // mappings by the constructor's contract.
        unsafe { self.hv.gnttab_map_grant_ref(domid, gref, gfn, flags) }
    }
}
