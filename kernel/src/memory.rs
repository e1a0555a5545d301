//! Heap and page allocators, from the PVH memory plan.
//!
//! - The heap (`alloc`) is a `linked_list_allocator` over one contiguous piece
//!   of RAM chosen by [`pvdispl_kernel::memplan`].
//! - [`alloc_pages`] hands out zeroed, page-aligned, physically contiguous RAM
//!   runs ([`Pages`]) for grants, rings and framebuffers.
//! - [`alloc_window`] hands out unpopulated guest frames ([`WindowFrames`])
//!   where Xen pages (shared info, grant-table frames) and foreign grants are
//!   mapped.
//!
//! Both page pools are [`ExtentAllocator`]s behind spin locks (one vCPU,
//! interrupts off: the locks only guard against re-entrancy bugs).

use core::marker::PhantomData;
use core::sync::atomic::AtomicU32;

use spin::Mutex;

use linked_list_allocator::LockedHeap;
use pvdispl_kernel::extent::{ExtentAllocator, ExtentError};
use pvdispl_kernel::memplan::{MemoryPlan, PAGE_BYTES};
use xen::hv::page::IdentityPage;
use xen::platform::{PageRun, SharedPage};
use xen::types::Gfn;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Free-extent slots per pool.
const POOL_EXTENTS: usize = 64;

static FRAMES: Mutex<ExtentAllocator<POOL_EXTENTS>> = Mutex::new(ExtentAllocator::new());
static WINDOW: Mutex<ExtentAllocator<POOL_EXTENTS>> = Mutex::new(ExtentAllocator::new());

/// Set up heap and pools from `plan`.
///
/// # Safety
/// Call once. The plan's heap and frame ranges must be RAM that nothing else
/// uses (the plan excludes the image and boot data), identity-mapped, and the
/// window must be unpopulated guest frames.
pub unsafe fn init(plan: &MemoryPlan) {
    // SAFETY: per the caller the heap range is unused, identity-mapped RAM, and
    // this is the only initialisation.
    unsafe {
        HEAP.lock().init(
            plan.heap.start as usize as *mut u8,
            plan.heap.len() as usize,
        );
    }
    let mut frames = FRAMES.lock();
    for e in plan.frames.iter().flatten() {
        if let Err(err) = frames.free(e.start, e.len) {
            log::warn!(
                "frame pool: dropping {} pages at {:#x}: {err:?}",
                e.len,
                e.start
            );
        }
    }
    if let Some(w) = plan.mapping_window {
        if let Err(err) = WINDOW.lock().free(w.start, w.len) {
            log::warn!("mapping window unusable: {err:?}");
        }
    }
}

/// Free pages in the pool and the largest contiguous run.
pub fn frame_stats() -> (u64, u64) {
    let f = FRAMES.lock();
    (f.free_frames(), f.largest_free())
}

/// Free frames in the mapping window.
pub fn window_stats() -> u64 {
    WINDOW.lock().free_frames()
}

/// A zeroed, physically contiguous, identity-mapped run of RAM pages, freed on
/// drop. Invariant: `[start, start + nr_pages)` came from `FRAMES` and is owned
/// by this value alone.
#[derive(Debug)]
pub struct Pages {
    start: Gfn,
    nr_pages: usize,
}

impl Pages {
    /// The run as bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: per the invariant the run is identity-mapped RAM owned by
        // `self` alone; `&mut self` makes the borrow exclusive.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.start.addr() as usize as *mut u8,
                self.nr_pages * PAGE_BYTES as usize,
            )
        }
    }

    /// Give up byte access and share the pages (rings, event pages, gref
    /// directories) through atomic views only.
    pub fn into_shared(self) -> SharedPages {
        SharedPages(self)
    }
}

/// Pages that are (or may be) shared with another domain: only atomic word
/// views, no `&mut` bytes, so the peer's concurrent writes are sound.
#[derive(Debug)]
pub struct SharedPages(Pages);

impl SharedPages {
    /// Page `index` (`None` past the end).
    pub fn page(&self, index: usize) -> Option<PageView<'_>> {
        (index < self.0.nr_pages).then(|| PageView {
            // SAFETY: the frame is RAM owned by `self` (Pages invariant),
            // identity-mapped, and `SharedPages` never hands out non-atomic
            // access; the view borrows `self`, so the frame outlives it.
            page: unsafe { IdentityPage::new_unchecked(Gfn(self.0.start.0 + index as u64)) },
            _owner: PhantomData,
        })
    }
}

impl PageRun for SharedPages {
    fn gfn(&self, index: usize) -> Gfn {
        self.0.gfn(index)
    }
    fn nr_pages(&self) -> usize {
        self.0.nr_pages
    }
}

/// One page of [`SharedPages`], borrowed.
#[derive(Debug)]
pub struct PageView<'a> {
    page: IdentityPage,
    _owner: PhantomData<&'a SharedPages>,
}

impl SharedPage for PageView<'_> {
    fn words(&self) -> &[AtomicU32] {
        self.page.words()
    }
    fn gfn(&self) -> Gfn {
        self.page.gfn()
    }
}

impl PageRun for Pages {
    fn gfn(&self, index: usize) -> Gfn {
        assert!(
            index < self.nr_pages,
            "page {index} of a {}-page run",
            self.nr_pages
        );
        Gfn(self.start.0 + index as u64)
    }
    fn nr_pages(&self) -> usize {
        self.nr_pages
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if let Err(e) = FRAMES.lock().free(self.start.0, self.nr_pages as u64) {
            log::error!("freeing {} pages at {}: {e:?}", self.nr_pages, self.start);
        }
    }
}

/// Allocate `nr_pages` zeroed contiguous pages.
pub fn alloc_pages(nr_pages: usize) -> Result<Pages, ExtentError> {
    let start = FRAMES.lock().alloc(nr_pages as u64, 1)?;
    let mut pages = Pages {
        start: Gfn(start),
        nr_pages,
    };
    pages.as_mut_slice().fill(0);
    Ok(pages)
}

/// Unpopulated guest frames reserved for mappings; returned to the window on
/// drop (the caller must have unmapped whatever it put there).
#[derive(Debug)]
pub struct WindowFrames {
    start: Gfn,
    nr_pages: usize,
}

impl WindowFrames {
    /// Frame `index`.
    pub fn gfn(&self, index: usize) -> Gfn {
        assert!(index < self.nr_pages, "frame {index} of {}", self.nr_pages);
        Gfn(self.start.0 + index as u64)
    }
    /// Keep the frames reserved forever (for permanent mappings).
    pub fn leak(self) -> Gfn {
        let start = self.start;
        core::mem::forget(self);
        start
    }
}

impl Drop for WindowFrames {
    fn drop(&mut self) {
        if let Err(e) = WINDOW.lock().free(self.start.0, self.nr_pages as u64) {
            log::error!("freeing window frames at {}: {e:?}", self.start);
        }
    }
}

/// Reserve `nr_pages` contiguous unpopulated frames.
pub fn alloc_window(nr_pages: usize) -> Result<WindowFrames, ExtentError> {
    let start = WINDOW.lock().alloc(nr_pages as u64, 1)?;
    Ok(WindowFrames {
        start: Gfn(start),
        nr_pages,
    })
}

/// Who keeps an [`OwnedPage`]'s frame reserved.
#[derive(Debug)]
enum PageOwner {
    /// A RAM page from the pool (granted to a peer).
    Ram(SharedPages),
    /// A foreign-window frame (a peer's grant gets mapped there).
    ForeignSlot(crate::grants::ForeignFrames),
}

/// One owned page shared with another domain, seen through atomics: either RAM
/// we grant, or a foreign-window frame where a peer's grant is mapped (its
/// words read as all-ones while nothing is mapped). Freed on drop.
#[derive(Debug)]
pub struct OwnedPage {
    view: IdentityPage,
    owner: PageOwner,
}

impl OwnedPage {
    /// A zeroed RAM page.
    pub fn ram() -> Result<OwnedPage, ExtentError> {
        let pages = alloc_pages(1)?.into_shared();
        // SAFETY: the frame is RAM owned by `pages`, which this value keeps
        // alive as long as the view; `SharedPages` only allows atomic access.
        let view = unsafe { IdentityPage::new_unchecked(pages.gfn(0)) };
        Ok(OwnedPage {
            view,
            owner: PageOwner::Ram(pages),
        })
    }

    /// A foreign-window frame to map a peer's grant at.
    pub fn foreign_slot() -> Result<OwnedPage, ExtentError> {
        let frames = crate::grants::alloc_foreign_frames(1)?;
        // SAFETY: the frame is reserved by `frames` (kept alive with the view)
        // and only ever accessed atomically; while unmapped it is unpopulated
        // and reads as all-ones under Xen, which is harmless.
        let view = unsafe { IdentityPage::new_unchecked(frames.gfn(0)) };
        Ok(OwnedPage {
            view,
            owner: PageOwner::ForeignSlot(frames),
        })
    }
}

impl SharedPage for OwnedPage {
    fn words(&self) -> &[AtomicU32] {
        self.view.words()
    }
    fn gfn(&self) -> Gfn {
        match &self.owner {
            PageOwner::Ram(pages) => pages.gfn(0),
            PageOwner::ForeignSlot(frames) => frames.gfn(0),
        }
    }
}
