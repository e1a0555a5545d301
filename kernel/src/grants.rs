//! The grant table and the foreign-mapping window, and their self-test.
//!
//! [`init`] reserves guest frames from the mapping window (see `memory`): room
//! for Xen's maximum number of grant-table frames, plus [`FOREIGN_WINDOW_FRAMES`]
//! frames where backend-allocated buffers are mapped with
//! `GNTTABOP_map_grant_ref` (two 1080p XRGB buffers need 4050).
//!
//! Frontend code uses [`with_grant_table`] (a `XenGrantTable`, which implements
//! `xen::platform::GrantTable`) and [`alloc_foreign_frames`] to get frames to
//! pass to `GrantTable::map_foreign`.

use alloc::format;
use alloc::string::{String, ToString};

use pvdispl_kernel::extent::{ExtentAllocator, ExtentError};
use spin::Mutex;
use xen::abi::grant_table::GTF_PERMIT_ACCESS;
use xen::gnttab::table::read_entry;
use xen::hv::gnttab::{FrameRange, XenGrantTable};
use xen::hv::page::IdentityPage;
use xen::platform::{GrantTable, PageRun, PlatformError, SharedPage};
use xen::types::{DomId, Gfn};

use crate::{memory, xen_core};

/// Frames reserved for foreign mappings (64 MiB).
pub const FOREIGN_WINDOW_FRAMES: usize = 16384;

static GNTTAB: Mutex<Option<XenGrantTable>> = Mutex::new(None);
static FOREIGN: Mutex<ExtentAllocator<64>> = Mutex::new(ExtentAllocator::new());

/// Map the grant table and reserve the foreign window.
pub fn init() -> Result<(), String> {
    let hv = xen_core::hypervisor().ok_or("not on Xen")?;
    let max_frames =
        XenGrantTable::frames_wanted(&hv).map_err(|e| format!("GNTTABOP_query_size: {e}"))?;
    let table_frames = memory::alloc_window(max_frames as usize)
        .map_err(|e| format!("no window room for {max_frames} grant frames: {e:?}"))?;
    let foreign = memory::alloc_window(FOREIGN_WINDOW_FRAMES)
        .map_err(|e| format!("no window room for the foreign window: {e:?}"))?;
    let table_range = FrameRange {
        start: table_frames.gfn(0),
        len: max_frames as u64,
    };
    let foreign_range = FrameRange {
        start: foreign.gfn(0),
        len: FOREIGN_WINDOW_FRAMES as u64,
    };
    // SAFETY: both ranges come from the mapping window (unpopulated frames
    // below 4 GiB, identity-mapped), are disjoint, and are leaked below so
    // they stay reserved for the table forever; foreign-window frames are only
    // handed out by `alloc_foreign_frames` for `map_foreign`.
    let table = unsafe { XenGrantTable::new(hv, table_range, foreign_range) }
        .map_err(|e| format!("mapping the grant table: {e}"))?;
    table_frames.leak();
    foreign.leak();
    FOREIGN
        .lock()
        .free(foreign_range.start.0, foreign_range.len)
        .map_err(|e| format!("foreign window: {e:?}"))?;
    log::info!(
        "grant table: {} of max {max_frames} frames mapped at {}, foreign window {} frames at {}",
        table.mapped_frames(),
        table_range.start,
        foreign_range.len,
        foreign_range.start
    );
    *GNTTAB.lock() = Some(table);
    Ok(())
}

/// Run `f` with the grant table; `None` before [`init`].
pub fn with_grant_table<R>(f: impl FnOnce(&mut XenGrantTable) -> R) -> Option<R> {
    GNTTAB.lock().as_mut().map(f)
}

/// Contiguous frames of the foreign window, returned on drop (unmap first).
#[derive(Debug)]
pub struct ForeignFrames {
    start: Gfn,
    nr_pages: usize,
}

impl PageRun for ForeignFrames {
    fn gfn(&self, index: usize) -> Gfn {
        assert!(index < self.nr_pages, "frame {index} of {}", self.nr_pages);
        Gfn(self.start.0 + index as u64)
    }
    fn nr_pages(&self) -> usize {
        self.nr_pages
    }
}

impl Drop for ForeignFrames {
    fn drop(&mut self) {
        if let Err(e) = FOREIGN.lock().free(self.start.0, self.nr_pages as u64) {
            log::error!("freeing foreign frames at {}: {e:?}", self.start);
        }
    }
}

/// Reserve `nr_pages` contiguous frames to map foreign grants at.
pub fn alloc_foreign_frames(nr_pages: usize) -> Result<ForeignFrames, ExtentError> {
    let start = FOREIGN.lock().alloc(nr_pages as u64, 1)?;
    Ok(ForeignFrames {
        start: Gfn(start),
        nr_pages,
    })
}

/// Byte `i` of the self-test pattern.
fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// Word `w` of the self-test pattern (little-endian bytes).
fn pattern_word(w: usize) -> u32 {
    u32::from_le_bytes([
        pattern_byte(4 * w),
        pattern_byte(4 * w + 1),
        pattern_byte(4 * w + 2),
        pattern_byte(4 * w + 3),
    ])
}

/// Self-test: grant a page to dom0 read-only and check the entry, then revoke;
/// grant it to ourselves and map that grant like a foreign one
/// (`GNTTABOP_map_grant_ref` into the foreign window), see the page's contents
/// through the mapping, see revocation refused while mapped, unmap, revoke.
///
/// Mapping one's own grant makes Xen move the frame (the page leaves its old
/// guest frame: `p2m_add_page` drops the previous mapping of a page the domain
/// owns), so afterwards the old frame is repopulated with
/// `XENMEM_populate_physmap` before the page goes back to the pool. A real
/// foreign grant (the backend's) does not have this effect.
pub fn selftest() -> Result<String, String> {
    use core::sync::atomic::Ordering;
    let hv = xen_core::hypervisor().ok_or("not on Xen")?;
    let me = DomId(hv.leaves().domid.ok_or("no domid")?);
    let mut page = memory::alloc_pages(1).map_err(|e| format!("alloc page: {e:?}"))?;
    for (i, b) in page.as_mut_slice().iter_mut().enumerate() {
        *b = pattern_byte(i);
    }
    let page = page.into_shared();
    let gfn = page.gfn(0);
    let slot = memory::OwnedPage::foreign_slot().map_err(|e| format!("foreign slot: {e:?}"))?;
    let target = slot.gfn();
    let spare = memory::OwnedPage::ram().map_err(|e| format!("owned page: {e:?}"))?;
    if spare.words().iter().any(|w| w.load(Ordering::Relaxed) != 0) {
        return Err("a fresh owned page is not zeroed".to_string());
    }
    let result = with_grant_table(|gt| {
        let in_use_before = gt.refs_in_use();
        // Read-only grant to dom0, checked in the table, then revoked.
        let r0 = gt
            .grant_access(DomId::DOM0, gfn, true)
            .map_err(|e| format!("grant to dom0: {e}"))?;
        let e = read_entry(gt.table(), r0).map_err(|e| e.to_string())?;
        if e.domid != 0 || u64::from(e.frame) != gfn.0 || e.flags & GTF_PERMIT_ACCESS == 0 {
            return Err(format!("entry {r0} reads {e:?}"));
        }
        gt.end_access(r0)
            .map_err(|e| format!("end_access({r0}): {e}"))?;
        if read_entry(gt.table(), r0).map_err(|e| e.to_string())?.flags != 0 {
            return Err(format!("entry {r0} still has flags after end_access"));
        }
        // Read-write grant to ourselves, mapped through GNTTABOP_map_grant_ref.
        let r1 = gt
            .grant_access(me, gfn, false)
            .map_err(|e| format!("grant to self: {e}"))?;
        let handle = gt
            .map_foreign(me, r1, target)
            .map_err(|e| format!("map_grant_ref({r1}) at {target}: {e}"))?;
        // SAFETY: `target` now holds the granted page (mapped just above) and
        // is only read through atomics until it is unmapped below.
        let mapped = unsafe { IdentityPage::new_unchecked(target) };
        let mismatch = mapped
            .words()
            .iter()
            .enumerate()
            .find(|(w, word)| word.load(Ordering::Relaxed) != pattern_word(*w))
            .map(|(w, word)| (w, word.load(Ordering::Relaxed)));
        let busy = gt.end_access(r1);
        let unmapped = gt.unmap_foreign(target, handle);
        if let Some((w, seen)) = mismatch {
            return Err(format!(
                "mapped grant differs at word {w}: {seen:#x}, expected {:#x}",
                pattern_word(w)
            ));
        }
        if busy != Err(PlatformError::StillInUse(r1)) {
            return Err(format!(
                "end_access while mapped gave {busy:?}, expected StillInUse"
            ));
        }
        unmapped.map_err(|e| format!("unmap_grant_ref: {e}"))?;
        gt.end_access(r1)
            .map_err(|e| format!("end_access({r1}) after unmap: {e}"))?;
        if gt.refs_in_use() != in_use_before {
            return Err(format!("{} refs leaked", gt.refs_in_use() - in_use_before));
        }
        Ok(format!(
            "refs {r0} (dom0, ro) and {r1} (self, mapped at {target}) granted and ended"
        ))
    })
    .unwrap_or_else(|| Err("grant table not initialised".to_string()));

    // Put the test page's frame back if Xen moved it (see above).
    let view = page.page(0).ok_or("page view")?;
    let is_unpopulated = view.words()[0].load(Ordering::Relaxed) == u32::MAX
        && view.words()[1].load(Ordering::Relaxed) == u32::MAX;
    if is_unpopulated {
        // SAFETY: the frame reads as all-ones: nothing is mapped there any
        // more (Xen moved the page on the self-mapping); it is ours (the test
        // page) and nothing else uses it.
        if let Err(e) = unsafe { hv.populate_physmap(gfn) } {
            // Never return a hole to the pool.
            core::mem::forget(page);
            return Err(format!("repopulating frame {gfn}: {e}"));
        }
    }
    result.map(|detail| {
        if is_unpopulated {
            format!("{detail}; frame {gfn} repopulated")
        } else {
            detail
        }
    })
}
