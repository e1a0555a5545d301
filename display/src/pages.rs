//! Page allocation, granted pages and reclaiming grants the peer still holds.
//!
//! The frontend needs page-aligned pages for its rings, event pages, gref
//! directories and frontend-allocated buffers, and (with `be-alloc`) empty
//! frames at which to map the backend's grants. [`PageAllocator`] is the only
//! platform interface this crate adds to `xen::platform`: the kernel implements
//! it over its frame allocator, tests over boxed arrays. A page is freed when
//! its handle is dropped.
//!
//! [`GrantedPage`] ties a page to the grant that shares it. Ending a grant can
//! fail while the backend still maps the page ([`PlatformError::StillInUse`]);
//! such a page must not be reused, so [`Reclaimer`] keeps it and retries later.
//! Every grant, foreign mapping and page the frontend ever holds ends in a
//! [`Reclaimer`] or is released directly, which is what the leak tests count.

use alloc::vec::Vec;

use xen::platform::{GrantTable, PlatformError, SharedPage};
use xen::types::{DomId, GrantRef};

/// What a page will be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageUse {
    /// Ordinary memory the frontend fills and grants to the backend.
    Granted,
    /// An unpopulated frame at which a foreign grant will be mapped
    /// (`be-alloc`); its contents are only meaningful while mapped.
    ForeignMapSlot,
}

/// Allocator of single pages. Dropping a page frees it.
pub trait PageAllocator {
    /// The page handle.
    type Page: SharedPage;
    /// Allocate one zeroed page for `usage`.
    fn alloc_page(&mut self, usage: PageUse) -> Result<Self::Page, PlatformError>;
}

/// A page shared with the backend through a grant we made.
#[derive(Debug)]
pub struct GrantedPage<P> {
    page: P,
    gref: GrantRef,
}

impl<P: SharedPage> GrantedPage<P> {
    /// Allocate a page and grant `domid` read-write access to it.
    pub fn new<A, G>(pages: &mut A, gnttab: &mut G, domid: DomId) -> Result<Self, PlatformError>
    where
        A: PageAllocator<Page = P> + ?Sized,
        G: GrantTable + ?Sized,
    {
        let page = pages.alloc_page(PageUse::Granted)?;
        // On failure the page is dropped, i.e. freed: nothing was shared yet.
        let gref = gnttab.grant_access(domid, page.gfn(), false)?;
        Ok(GrantedPage { page, gref })
    }

    /// Split into the page and its grant (the grant stays in force).
    pub(crate) fn into_parts(self) -> (P, GrantRef) {
        (self.page, self.gref)
    }

    /// Reassemble what [`GrantedPage::into_parts`] split.
    pub(crate) fn from_parts(page: P, gref: GrantRef) -> Self {
        GrantedPage { page, gref }
    }

    /// The grant reference.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }

    /// The page.
    pub fn page(&self) -> &P {
        &self.page
    }
}

/// A backend grant mapped into one of our frames.
#[derive(Debug)]
pub struct ForeignPage<P> {
    slot: P,
    handle: u32,
}

impl<P: SharedPage> ForeignPage<P> {
    /// Map `domid`'s grant `gref` into a newly allocated slot.
    pub fn map<A, G>(
        pages: &mut A,
        gnttab: &mut G,
        domid: DomId,
        gref: GrantRef,
    ) -> Result<Self, PlatformError>
    where
        A: PageAllocator<Page = P> + ?Sized,
        G: GrantTable + ?Sized,
    {
        let slot = pages.alloc_page(PageUse::ForeignMapSlot)?;
        let handle = gnttab.map_foreign(domid, gref, slot.gfn())?;
        Ok(ForeignPage { slot, handle })
    }

    /// The mapped page.
    pub fn page(&self) -> &P {
        &self.slot
    }
}

/// Something the frontend shared and must get back before freeing.
#[derive(Debug)]
enum Held<P> {
    Granted(GrantedPage<P>),
    Foreign(ForeignPage<P>),
}

/// Grants and mappings being given back; pages the peer still uses wait here.
#[derive(Debug)]
pub struct Reclaimer<P> {
    waiting: Vec<Held<P>>,
    /// Pages whose release failed for another reason than the peer's use:
    /// never retried and never freed (reusing them could expose memory).
    abandoned: Vec<Held<P>>,
}

impl<P> Default for Reclaimer<P> {
    fn default() -> Self {
        Reclaimer {
            waiting: Vec::new(),
            abandoned: Vec::new(),
        }
    }
}

impl<P: SharedPage> Reclaimer<P> {
    /// End the grant of `page` and free it, or keep it for a later retry if the
    /// peer still maps it.
    pub fn release_granted<G: GrantTable + ?Sized>(
        &mut self,
        gnttab: &mut G,
        page: GrantedPage<P>,
    ) {
        self.release(gnttab, Held::Granted(page));
    }

    /// Unmap a foreign page and free its slot (kept for a retry on failure).
    pub fn release_foreign<G: GrantTable + ?Sized>(
        &mut self,
        gnttab: &mut G,
        page: ForeignPage<P>,
    ) {
        self.release(gnttab, Held::Foreign(page));
    }

    /// Retry everything waiting; returns how many are still held.
    pub fn retry<G: GrantTable + ?Sized>(&mut self, gnttab: &mut G) -> usize {
        for held in core::mem::take(&mut self.waiting) {
            self.release(gnttab, held);
        }
        self.waiting.len()
    }

    /// Pages given up on (release failed with an unexpected error).
    pub fn abandoned(&self) -> usize {
        self.abandoned.len()
    }

    /// Pages still held because the peer has not let go of them.
    pub fn pending(&self) -> usize {
        self.waiting.len()
    }

    fn release<G: GrantTable + ?Sized>(&mut self, gnttab: &mut G, held: Held<P>) {
        let result = match &held {
            Held::Granted(g) => gnttab.end_access(g.gref),
            Held::Foreign(f) => gnttab.unmap_foreign(f.slot.gfn(), f.handle),
        };
        match result {
            // Dropping `held` frees the page.
            Ok(()) => {}
            Err(PlatformError::StillInUse(_)) => self.waiting.push(held),
            Err(e) => {
                log::error!("vdispl: releasing a shared page failed: {e}; page abandoned");
                self.abandoned.push(held);
            }
        }
    }
}
