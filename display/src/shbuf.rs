//! Buffers shared through a displif page directory (display buffers, EDID).
//!
//! `struct xendispl_page_directory` (`xen/include/public/io/displif.h`) is a
//! chain of pages, each holding the grant of the next directory page
//! (`gref_dir_next_page`, 0 ends the chain) and up to 1023 grants of buffer
//! pages. A 1920x1080 XRGB8888 buffer has 2025 pages, so its directory is two
//! pages. With frontend allocation ([`SharedBuffer::new_granted`]) we allocate
//! and grant every page and fill the directory. With backend allocation
//! (`XENDISPL_DBUF_FLG_REQ_ALLOC`, [`SharedBuffer::new_backend_allocated`]) we
//! only grant the directory pages and chain them; after the backend's response
//! [`SharedBuffer::map_backend_pages`] reads the grants it wrote (each checked)
//! and maps them into our physmap with `GrantTable::map_foreign`.
//!
//! Pixels are addressed linearly: byte `b` of the buffer is in data page
//! `b / 4096`. [`SharedBuffer::write_words`] / [`SharedBuffer::read_bytes`]
//! copy into and out of the pages with that mapping.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::Ordering;

use xen::gnttab::directory::{
    directory_pages, grefs_for_buffer, write_directory, DirectoryError, DirectoryReader,
};
use xen::platform::{GrantTable, PlatformError, SharedPage};
use xen::types::{DomId, GrantRef, PAGE_SIZE};

use crate::pages::{ForeignPage, GrantedPage, PageAllocator, Reclaimer};

const WORDS_PER_PAGE: usize = PAGE_SIZE / 4;

/// Pages needed for `len_bytes` bytes.
pub fn data_pages_for(len_bytes: u32) -> usize {
    grefs_for_buffer(u64::from(len_bytes)) as usize
}

/// Directory pages needed for `nr_grefs` grants (at least one: even an empty
/// buffer is named by a directory page).
pub fn directory_pages_for(nr_grefs: usize) -> usize {
    (directory_pages(nr_grefs as u64) as usize).max(1)
}

/// Why a shared buffer could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShbufError {
    /// Allocating, granting or mapping failed.
    Platform(PlatformError),
    /// The directory the backend filled in is invalid (grant 0, chain
    /// changed, ...).
    Directory(DirectoryError),
}

impl From<PlatformError> for ShbufError {
    fn from(e: PlatformError) -> Self {
        ShbufError::Platform(e)
    }
}

impl fmt::Display for ShbufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShbufError::Platform(e) => write!(f, "{e}"),
            ShbufError::Directory(e) => write!(f, "backend's gref directory: {e}"),
        }
    }
}

#[derive(Debug)]
enum Data<P> {
    /// Our pages, granted to the backend.
    Granted(Vec<GrantedPage<P>>),
    /// The backend's pages, mapped by us.
    Foreign(Vec<ForeignPage<P>>),
}

/// A buffer shared through a page directory.
#[derive(Debug)]
pub struct SharedBuffer<P> {
    len_bytes: u32,
    directory: Vec<GrantedPage<P>>,
    data: Data<P>,
}

impl<P: SharedPage> SharedBuffer<P> {
    /// Grant `n` fresh pages to `domid`; on failure everything granted so far
    /// goes to `reclaim`.
    fn grant_pages<A, G>(
        n: usize,
        pages: &mut A,
        gnttab: &mut G,
        domid: DomId,
        reclaim: &mut Reclaimer<P>,
    ) -> Result<Vec<GrantedPage<P>>, PlatformError>
    where
        A: PageAllocator<Page = P> + ?Sized,
        G: GrantTable + ?Sized,
    {
        let mut out = Vec::new();
        if let Err(e) = out.try_reserve_exact(n) {
            log::error!("vdispl: cannot track {n} pages: {e}");
            return Err(PlatformError::Exhausted("heap"));
        }
        for _ in 0..n {
            match GrantedPage::new(pages, gnttab, domid) {
                Ok(p) => out.push(p),
                Err(e) => {
                    for p in out {
                        reclaim.release_granted(gnttab, p);
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Write the directory: chain links and (frontend allocation) the data
    /// pages' grants. `num_grefs` data pages are described.
    fn write_directory(
        directory: &[GrantedPage<P>],
        data: &[GrantedPage<P>],
        num_grefs: usize,
    ) -> Result<(), ShbufError> {
        let pages: Vec<&[core::sync::atomic::AtomicU32]> =
            directory.iter().map(|p| p.page().words()).collect();
        let dir_grefs: Vec<GrantRef> = directory.iter().map(GrantedPage::gref).collect();
        let grefs: Vec<GrantRef> = data.iter().map(GrantedPage::gref).collect();
        write_directory(&pages, &dir_grefs, &grefs, num_grefs as u64).map_err(ShbufError::Directory)
    }

    /// A frontend-allocated buffer of `len_bytes`: data pages and directory
    /// allocated, granted to `domid` and the directory filled in.
    pub fn new_granted<A, G>(
        len_bytes: u32,
        pages: &mut A,
        gnttab: &mut G,
        domid: DomId,
        reclaim: &mut Reclaimer<P>,
    ) -> Result<Self, ShbufError>
    where
        A: PageAllocator<Page = P> + ?Sized,
        G: GrantTable + ?Sized,
    {
        let nr_data = data_pages_for(len_bytes);
        let data = Self::grant_pages(nr_data, pages, gnttab, domid, reclaim)?;
        let directory =
            match Self::grant_pages(directory_pages_for(nr_data), pages, gnttab, domid, reclaim) {
                Ok(d) => d,
                Err(e) => {
                    for p in data {
                        reclaim.release_granted(gnttab, p);
                    }
                    return Err(e.into());
                }
            };
        let buffer = SharedBuffer {
            len_bytes,
            directory,
            data: Data::Granted(data),
        };
        let written = match &buffer.data {
            Data::Granted(d) => Self::write_directory(&buffer.directory, d, nr_data),
            Data::Foreign(_) => Ok(()),
        };
        if let Err(e) = written {
            buffer.release(gnttab, reclaim);
            return Err(e);
        }
        Ok(buffer)
    }

    /// A backend-allocated buffer of `len_bytes`: only the (chained, otherwise
    /// zero) directory is allocated and granted; the backend fills it in.
    pub fn new_backend_allocated<A, G>(
        len_bytes: u32,
        pages: &mut A,
        gnttab: &mut G,
        domid: DomId,
        reclaim: &mut Reclaimer<P>,
    ) -> Result<Self, ShbufError>
    where
        A: PageAllocator<Page = P> + ?Sized,
        G: GrantTable + ?Sized,
    {
        let nr_data = data_pages_for(len_bytes);
        let directory =
            Self::grant_pages(directory_pages_for(nr_data), pages, gnttab, domid, reclaim)?;
        let buffer = SharedBuffer {
            len_bytes,
            directory,
            data: Data::Foreign(Vec::new()),
        };
        if let Err(e) = Self::write_directory(&buffer.directory, &[], nr_data) {
            buffer.release(gnttab, reclaim);
            return Err(e);
        }
        Ok(buffer)
    }

    /// After a successful `DBUF_CREATE` with `REQ_ALLOC`: read the backend's
    /// grants from the directory and map them. On failure every mapping made
    /// so far is undone (through `reclaim`).
    pub fn map_backend_pages<A, G>(
        &mut self,
        pages: &mut A,
        gnttab: &mut G,
        domid: DomId,
        reclaim: &mut Reclaimer<P>,
    ) -> Result<(), ShbufError>
    where
        A: PageAllocator<Page = P> + ?Sized,
        G: GrantTable + ?Sized,
    {
        let nr_data = data_pages_for(self.len_bytes);
        // Validate what the backend wrote: every grant non-zero and the chain
        // of directory pages still the one we linked.
        let mut reader = DirectoryReader::new(self.directory_gref(), nr_data as u64, true);
        for (i, dir) in self.directory.iter().enumerate() {
            let next = reader
                .feed(dir.page().words())
                .map_err(ShbufError::Directory)?;
            let expected = self.directory.get(i + 1).map(GrantedPage::gref);
            if next != expected {
                return Err(ShbufError::Directory(match next {
                    Some(r) => DirectoryError::ChainTooLong(r),
                    None => DirectoryError::ChainTooShort { missing: 1 },
                }));
            }
        }
        let grefs = reader.into_grefs();
        let mut mapped = Vec::new();
        if mapped.try_reserve_exact(nr_data).is_err() {
            return Err(PlatformError::Exhausted("heap").into());
        }
        let mut result = Ok(());
        for gref in grefs {
            match ForeignPage::map(pages, gnttab, domid, gref) {
                Ok(p) => mapped.push(p),
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        if result.is_err() {
            for p in mapped {
                reclaim.release_foreign(gnttab, p);
            }
            return result;
        }
        self.data = Data::Foreign(mapped);
        Ok(())
    }

    /// Whether the data pages are present (always for frontend allocation;
    /// after [`SharedBuffer::map_backend_pages`] for backend allocation).
    pub fn has_data(&self) -> bool {
        match &self.data {
            Data::Granted(d) => !d.is_empty(),
            Data::Foreign(d) => !d.is_empty(),
        }
    }

    /// Grant of the first directory page (`gref_directory`).
    pub fn directory_gref(&self) -> GrantRef {
        // new_* always create at least one directory page.
        self.directory.first().map_or(GrantRef(0), |p| p.gref())
    }

    /// Buffer size in bytes.
    pub fn len_bytes(&self) -> u32 {
        self.len_bytes
    }

    /// Data pages, in order.
    fn data_page(&self, index: usize) -> Option<&P> {
        match &self.data {
            Data::Granted(d) => d.get(index).map(GrantedPage::page),
            Data::Foreign(d) => d.get(index).map(ForeignPage::page),
        }
    }

    /// Copy `src` (native-endian `u32`s, i.e. XRGB8888 pixels) to the buffer
    /// from its start; stops at the buffer's end. Returns words written.
    pub fn write_words(&self, src: &[u32]) -> usize {
        self.write_words_at(0, src)
    }

    /// Copy `src` to the buffer starting at word `offset_words`; stops at the
    /// buffer's end. Returns words written.
    pub fn write_words_at(&self, offset_words: usize, src: &[u32]) -> usize {
        let max_words = self.len_bytes as usize / 4;
        let end = offset_words.saturating_add(src.len()).min(max_words);
        let mut at = offset_words;
        while at < end {
            let (index, first) = (at / WORDS_PER_PAGE, at % WORDS_PER_PAGE);
            let Some(page) = self.data_page(index) else {
                break;
            };
            let n = (WORDS_PER_PAGE - first).min(end - at);
            let from = &src[at - offset_words..at - offset_words + n];
            for (dst, v) in page.words()[first..first + n].iter().zip(from) {
                dst.store(*v, Ordering::Relaxed);
            }
            at += n;
        }
        at.saturating_sub(offset_words)
    }

    /// Copy up to `dst.len()` bytes from the buffer's start; returns bytes read.
    pub fn read_bytes(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len_bytes as usize);
        for (index, chunk) in dst[..n].chunks_mut(PAGE_SIZE).enumerate() {
            let Some(page) = self.data_page(index) else {
                return index * PAGE_SIZE;
            };
            for (bytes, word) in chunk.chunks_mut(4).zip(page.words()) {
                let w = word.load(Ordering::Relaxed).to_le_bytes();
                bytes.copy_from_slice(&w[..bytes.len()]);
            }
        }
        n
    }

    /// Give everything back: unmap foreign pages, end every grant (pages the
    /// backend still maps wait in `reclaim`).
    pub fn release<G: GrantTable + ?Sized>(self, gnttab: &mut G, reclaim: &mut Reclaimer<P>) {
        match self.data {
            Data::Granted(d) => d
                .into_iter()
                .for_each(|p| reclaim.release_granted(gnttab, p)),
            Data::Foreign(d) => d
                .into_iter()
                .for_each(|p| reclaim.release_foreign(gnttab, p)),
        }
        for p in self.directory {
            reclaim.release_granted(gnttab, p);
        }
    }

    /// Only unmap the backend's pages (before `DBUF_DESTROY`, so the backend
    /// can free them); the directory stays granted until [`SharedBuffer::release`].
    pub fn unmap_foreign<G: GrantTable + ?Sized>(
        &mut self,
        gnttab: &mut G,
        reclaim: &mut Reclaimer<P>,
    ) {
        if let Data::Foreign(d) = &mut self.data {
            for p in core::mem::take(d) {
                reclaim.release_foreign(gnttab, p);
            }
        }
    }
}

impl<P: SharedPage> crate::PixelSink for SharedBuffer<P> {
    fn write_pixels(&self, offset: usize, pixels: &[u32]) {
        self.write_words_at(offset, pixels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeGnttab, FakePages, PageMem};
    use alloc::vec;

    #[test]
    fn page_counts() {
        assert_eq!(data_pages_for(1920 * 1080 * 4), 2025);
        assert_eq!(directory_pages_for(2025), 2);
        assert_eq!(directory_pages_for(1023), 1);
        assert_eq!(directory_pages_for(1024), 2);
        assert_eq!(directory_pages_for(0), 1);
        assert_eq!(data_pages_for(32768), 8);
        assert_eq!(data_pages_for(1), 1);
    }

    #[test]
    fn frontend_allocated_1080p_directory_is_two_chained_pages() {
        let mut pages = FakePages::default();
        let mut gnt = FakeGnttab::new(&pages);
        let mut reclaim = Reclaimer::default();
        let len = 1920 * 1080 * 4;
        let buf =
            SharedBuffer::new_granted(len, &mut pages, &mut gnt, DomId(0), &mut reclaim).unwrap();
        assert_eq!(pages.live(), 2025 + 2);
        assert_eq!(gnt.outstanding(), 2027);
        // Walk the directory as a backend would: through grants only.
        let mut dir = gnt.peer_map(buf.directory_gref()).unwrap();
        let mut dir_grefs = vec![buf.directory_gref()];
        let mut grefs = Vec::new();
        loop {
            for i in 0..1023 {
                if grefs.len() < 2025 {
                    grefs.push(dir.get(1 + i));
                }
            }
            let next = dir.get(0);
            if next == 0 {
                break;
            }
            dir_grefs.push(GrantRef(next));
            dir = gnt.peer_map(GrantRef(next)).unwrap();
        }
        assert_eq!(dir_grefs.len(), 2);
        assert_eq!(grefs.len(), 2025);
        assert!(grefs.iter().all(|&g| g != 0));
        // Pixels land in the right pages.
        let px: Vec<u32> = (0..len / 4).collect();
        assert_eq!(buf.write_words(&px), px.len());
        // An unaligned span across a page boundary.
        assert_eq!(buf.write_words_at(1020, &[9; 10]), 10);
        assert_eq!(buf.write_words_at(len as usize / 4 - 3, &[9; 10]), 3);
        assert_eq!(buf.write_words_at(len as usize, &[9; 10]), 0);
        let last = gnt.peer_map(GrantRef(grefs[2024])).unwrap();
        assert_eq!(last.get(0), 2024 * 1024);
        gnt.peer_unmap(dir_grefs[0]);
        gnt.peer_unmap(GrantRef(grefs[2024]));
        buf.release(&mut gnt, &mut reclaim);
        // The second directory page is still mapped by the "backend": kept.
        assert_eq!(reclaim.pending(), 1);
        assert_eq!((gnt.outstanding(), pages.live()), (1, 1));
        assert_eq!(reclaim.retry(&mut gnt), 1);
        gnt.peer_unmap(dir_grefs[1]);
        assert_eq!(reclaim.retry(&mut gnt), 0);
        assert_eq!((gnt.outstanding(), pages.live()), (0, 0));
    }

    #[test]
    fn backend_allocated_buffer_maps_backend_grants() {
        let mut pages = FakePages::default();
        let mut gnt = FakeGnttab::new(&pages);
        let mut reclaim = Reclaimer::default();
        let len = 3 * 4096 - 100;
        let mut buf =
            SharedBuffer::new_backend_allocated(len, &mut pages, &mut gnt, DomId(0), &mut reclaim)
                .unwrap();
        assert!(!buf.has_data());
        assert_eq!(pages.live(), 1);
        // Backend fills in the directory with its own pages.
        let dir = gnt.peer_map(buf.directory_gref()).unwrap();
        let backend: Vec<_> = (0..3).map(|_| PageMem::new()).collect();
        for (i, m) in backend.iter().enumerate() {
            dir.set(1 + i, gnt.peer_offer(m.clone()).0);
        }
        gnt.peer_unmap(buf.directory_gref());
        buf.map_backend_pages(&mut pages, &mut gnt, DomId(0), &mut reclaim)
            .unwrap();
        assert_eq!(gnt.foreign_mapped(), 3);
        buf.write_words(&[7; 3 * 1024]);
        assert_eq!(backend[2].get(0), 7);
        assert_eq!(backend[2].get(1024 - 26), 7);
        assert_eq!(backend[2].get(1024 - 25), 0, "stops at len_bytes");
        buf.release(&mut gnt, &mut reclaim);
        assert_eq!(reclaim.pending(), 0);
        assert_eq!(gnt.foreign_mapped(), 0);
        assert_eq!(gnt.outstanding(), 0);
        assert_eq!(pages.live(), 0);
    }

    #[test]
    fn zero_grant_from_backend_is_an_error_and_leaks_nothing() {
        let mut pages = FakePages::default();
        let mut gnt = FakeGnttab::new(&pages);
        let mut reclaim = Reclaimer::default();
        let mut buf =
            SharedBuffer::new_backend_allocated(8192, &mut pages, &mut gnt, DomId(0), &mut reclaim)
                .unwrap();
        let dir = gnt.peer_map(buf.directory_gref()).unwrap();
        dir.set(1, gnt.peer_offer(PageMem::new()).0);
        gnt.peer_unmap(buf.directory_gref());
        assert_eq!(
            buf.map_backend_pages(&mut pages, &mut gnt, DomId(0), &mut reclaim),
            Err(ShbufError::Directory(DirectoryError::ZeroGref { index: 1 }))
        );
        assert_eq!(gnt.foreign_mapped(), 0);
        buf.release(&mut gnt, &mut reclaim);
        assert_eq!((gnt.outstanding(), pages.live()), (0, 0));
    }

    #[test]
    fn backend_rewriting_the_directory_chain_is_rejected() {
        let mut pages = FakePages::default();
        let mut gnt = FakeGnttab::new(&pages);
        let mut reclaim = Reclaimer::default();
        // 1024 pages: two directory pages.
        let mut buf = SharedBuffer::new_backend_allocated(
            1024 * 4096,
            &mut pages,
            &mut gnt,
            DomId(0),
            &mut reclaim,
        )
        .unwrap();
        let dir = gnt.peer_map(buf.directory_gref()).unwrap();
        let second = GrantRef(dir.get(0));
        assert_ne!(second.0, 0);
        let mem = PageMem::new();
        for i in 0..1023 {
            dir.set(1 + i, gnt.peer_offer(mem.clone()).0);
        }
        // Point the chain back at the first page.
        dir.set(0, buf.directory_gref().0);
        gnt.peer_unmap(buf.directory_gref());
        assert!(matches!(
            buf.map_backend_pages(&mut pages, &mut gnt, DomId(0), &mut reclaim),
            Err(ShbufError::Directory(_))
        ));
        assert_eq!(gnt.foreign_mapped(), 0);
        buf.release(&mut gnt, &mut reclaim);
        assert_eq!((gnt.outstanding(), pages.live()), (0, 0));
    }

    #[test]
    fn allocation_failure_midway_releases_everything() {
        let mut pages = FakePages::default();
        let mut gnt = FakeGnttab::new(&pages);
        let mut reclaim = Reclaimer::default();
        pages.set_limit(Some(5));
        let r = SharedBuffer::new_granted(8 * 4096, &mut pages, &mut gnt, DomId(0), &mut reclaim);
        assert!(matches!(
            r,
            Err(ShbufError::Platform(PlatformError::Exhausted(_)))
        ));
        assert_eq!(
            (gnt.outstanding(), pages.live(), reclaim.pending()),
            (0, 0, 0)
        );
    }
}
