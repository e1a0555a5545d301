//! displif grant-reference directories (`struct xendispl_page_directory`).
//!
//! A buffer of `buffer_sz` bytes is shared as `ceil(buffer_sz / 4096)` pages, one
//! grant reference each. The references are listed in a chain of directory
//! pages: each page holds `gref_dir_next_page` (the next directory page's
//! reference, 0 on the last page) and up to 1023 references. The frontend grants
//! the directory pages and passes the first one's reference in the request.
//! With `XENDISPL_DBUF_FLG_REQ_ALLOC` (be-alloc) the frontend writes only the
//! `next` links and the backend fills in the references of its own pages.
//!
//! Writers here take each directory page as `&[AtomicU32]`; [`DirectoryReader`]
//! validates a directory page by page as a backend maps it.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::abi::displif::{
    XENDISPL_PGDIR_GREFS_OFFSET, XENDISPL_PGDIR_GREFS_PER_PAGE, XENDISPL_PGDIR_NEXT_OFFSET,
};
use crate::types::{GrantRef, PAGE_SIZE};

/// Grant references (pages) needed for a buffer of `buffer_sz` bytes.
pub const fn grefs_for_buffer(buffer_sz: u64) -> u64 {
    buffer_sz.div_ceil(PAGE_SIZE as u64)
}

/// Directory pages needed to list `num_grefs` references (0 for 0).
pub const fn directory_pages(num_grefs: u64) -> u64 {
    num_grefs.div_ceil(XENDISPL_PGDIR_GREFS_PER_PAGE as u64)
}

/// Why a directory cannot be written or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryError {
    /// A directory page is shorter than one page.
    ShortPage(usize),
    /// The numbers of directory pages and references do not match.
    CountMismatch {
        /// Directory pages given.
        pages: usize,
        /// Pages needed for the references.
        needed: usize,
    },
    /// The chain ended (next = 0) before all references were listed.
    ChainTooShort {
        /// References still missing.
        missing: u64,
    },
    /// The last needed page links to another page.
    ChainTooLong(GrantRef),
    /// A listed buffer reference is 0 (invalid in displif).
    ZeroGref {
        /// Position of the reference in the buffer.
        index: u64,
    },
    /// A directory page links back to a page already visited.
    Loop(GrantRef),
    /// More pages were fed than the directory needs.
    AlreadyComplete,
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryError::ShortPage(n) => write!(f, "directory page has only {n} words"),
            DirectoryError::CountMismatch { pages, needed } => {
                write!(f, "{pages} directory pages given, {needed} needed")
            }
            DirectoryError::ChainTooShort { missing } => {
                write!(f, "directory ends with {missing} references missing")
            }
            DirectoryError::ChainTooLong(r) => {
                write!(f, "last directory page links to gref {r}")
            }
            DirectoryError::ZeroGref { index } => write!(f, "buffer gref #{index} is 0"),
            DirectoryError::Loop(r) => write!(f, "directory page gref {r} repeats"),
            DirectoryError::AlreadyComplete => f.write_str("directory already complete"),
        }
    }
}

fn check_page(words: &[AtomicU32]) -> Result<(), DirectoryError> {
    if words.len() * 4 < PAGE_SIZE {
        Err(DirectoryError::ShortPage(words.len()))
    } else {
        Ok(())
    }
}

const NEXT_WORD: usize = XENDISPL_PGDIR_NEXT_OFFSET / 4;
const FIRST_GREF_WORD: usize = XENDISPL_PGDIR_GREFS_OFFSET / 4;

/// Write one directory page: `next` link and `grefs` (at most 1023); the rest
/// of the page is zeroed.
pub fn fill_directory_page(
    words: &[AtomicU32],
    next: Option<GrantRef>,
    grefs: &[GrantRef],
) -> Result<(), DirectoryError> {
    check_page(words)?;
    if grefs.len() > XENDISPL_PGDIR_GREFS_PER_PAGE {
        return Err(DirectoryError::CountMismatch {
            pages: 1,
            needed: 2,
        });
    }
    words[NEXT_WORD].store(next.map_or(0, |r| r.0), Ordering::Relaxed);
    let slots = &words[FIRST_GREF_WORD..FIRST_GREF_WORD + XENDISPL_PGDIR_GREFS_PER_PAGE];
    for (i, w) in slots.iter().enumerate() {
        w.store(grefs.get(i).map_or(0, |r| r.0), Ordering::Relaxed);
    }
    Ok(())
}

/// Write a whole directory: `pages[i]` is directory page i, granted to the
/// peer as `dir_grefs[i]`; `buffer_grefs` are listed in order. With be-alloc,
/// pass an empty `buffer_grefs` and `num_grefs`: only the links are written.
///
/// The caller must publish the pages (a release fence or the grant's own
/// barrier) before sending the request.
pub fn write_directory(
    pages: &[&[AtomicU32]],
    dir_grefs: &[GrantRef],
    buffer_grefs: &[GrantRef],
    num_grefs: u64,
) -> Result<(), DirectoryError> {
    let needed = directory_pages(num_grefs) as usize;
    if pages.len() != needed
        || dir_grefs.len() != needed
        || !(buffer_grefs.is_empty() || buffer_grefs.len() as u64 == num_grefs)
    {
        return Err(DirectoryError::CountMismatch {
            pages: pages.len().min(dir_grefs.len()),
            needed,
        });
    }
    for (i, page) in pages.iter().enumerate() {
        let next = dir_grefs.get(i + 1).copied();
        let start = (i * XENDISPL_PGDIR_GREFS_PER_PAGE).min(buffer_grefs.len());
        let end = (start + XENDISPL_PGDIR_GREFS_PER_PAGE).min(buffer_grefs.len());
        fill_directory_page(page, next, &buffer_grefs[start..end])?;
    }
    Ok(())
}

/// Backend side (be-alloc): write `grefs` into a directory page, keeping its
/// `next` link as the frontend wrote it.
pub fn fill_directory_page_grefs(
    words: &[AtomicU32],
    grefs: &[GrantRef],
) -> Result<(), DirectoryError> {
    check_page(words)?;
    let next = words[NEXT_WORD].load(Ordering::Relaxed);
    fill_directory_page(words, (next != 0).then_some(GrantRef(next)), grefs)
}

/// Reads a directory page by page, validating it, as a backend maps it.
///
/// Start with the request's `gref_directory` and the buffer's reference count;
/// map the page [`DirectoryReader::next_page`] names, [`DirectoryReader::feed`]
/// it, repeat until it returns `None`; then take [`DirectoryReader::into_grefs`].
/// With `expect_grefs = false` (be-alloc) only the chain is walked and the
/// page references are collected, to be filled by the backend.
#[derive(Debug, Clone)]
pub struct DirectoryReader {
    num_grefs: u64,
    expect_grefs: bool,
    next: Option<GrantRef>,
    dir_pages: Vec<GrantRef>,
    grefs: Vec<GrantRef>,
}

impl DirectoryReader {
    /// A reader for a directory starting at `first` listing `num_grefs` refs.
    pub fn new(first: GrantRef, num_grefs: u64, expect_grefs: bool) -> DirectoryReader {
        DirectoryReader {
            num_grefs,
            expect_grefs,
            next: (num_grefs > 0).then_some(first),
            dir_pages: Vec::new(),
            grefs: Vec::new(),
        }
    }

    /// The directory page to map next, or `None` when complete.
    pub fn next_page(&self) -> Option<GrantRef> {
        self.next
    }

    /// Directory pages visited so far (their grefs, in order).
    pub fn dir_pages(&self) -> &[GrantRef] {
        &self.dir_pages
    }

    /// Consume the contents of the page named by [`DirectoryReader::next_page`];
    /// returns the following page to map, or `None` when done.
    pub fn feed(&mut self, words: &[AtomicU32]) -> Result<Option<GrantRef>, DirectoryError> {
        check_page(words)?;
        let this = self.next.ok_or(DirectoryError::AlreadyComplete)?;
        if this.0 == 0 {
            return Err(DirectoryError::ZeroGref { index: 0 });
        }
        if self.dir_pages.contains(&this) {
            return Err(DirectoryError::Loop(this));
        }
        self.dir_pages.push(this);
        let listed = self.dir_pages.len() as u64 * XENDISPL_PGDIR_GREFS_PER_PAGE as u64;
        let on_this_page = if listed > self.num_grefs {
            (self.num_grefs % XENDISPL_PGDIR_GREFS_PER_PAGE as u64) as usize
        } else {
            XENDISPL_PGDIR_GREFS_PER_PAGE
        };
        if self.expect_grefs {
            for w in &words[FIRST_GREF_WORD..FIRST_GREF_WORD + on_this_page] {
                let r = w.load(Ordering::Relaxed);
                if r == 0 {
                    return Err(DirectoryError::ZeroGref {
                        index: self.grefs.len() as u64,
                    });
                }
                self.grefs.push(GrantRef(r));
            }
        }
        let next = words[NEXT_WORD].load(Ordering::Relaxed);
        let more = listed < self.num_grefs;
        self.next = match (more, next) {
            (true, 0) => {
                return Err(DirectoryError::ChainTooShort {
                    missing: self.num_grefs - listed,
                })
            }
            (true, n) => Some(GrantRef(n)),
            (false, 0) => None,
            (false, n) => return Err(DirectoryError::ChainTooLong(GrantRef(n))),
        };
        Ok(self.next)
    }

    /// The buffer's references (complete once `next_page()` is `None`).
    pub fn into_grefs(self) -> Vec<GrantRef> {
        self.grefs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::SharedPage;
    use crate::shared_mem::MemPage;
    use crate::types::Gfn;

    #[test]
    fn counts_match_the_protocol() {
        assert_eq!(grefs_for_buffer(0), 0);
        assert_eq!(grefs_for_buffer(1), 1);
        assert_eq!(grefs_for_buffer(4096), 1);
        assert_eq!(grefs_for_buffer(4097), 2);
        // 1920x1080 XRGB8888: 2025 grefs, two directory pages (issue 5).
        let n = grefs_for_buffer(1920 * 1080 * 4);
        assert_eq!(n, 2025);
        assert_eq!(directory_pages(n), 2);
        assert_eq!(directory_pages(1023), 1);
        assert_eq!(directory_pages(1024), 2);
        assert_eq!(directory_pages(0), 0);
        // 4K double: 3840x2160x4 = 8100 pages -> 8 directory pages.
        assert_eq!(directory_pages(grefs_for_buffer(3840 * 2160 * 4)), 8);
        assert_eq!(grefs_for_buffer(u64::MAX), u64::MAX / 4096 + 1);
    }

    fn build(n: u64, with_grefs: bool) -> (Vec<MemPage>, Vec<GrantRef>, Vec<GrantRef>) {
        let pages: Vec<MemPage> = (0..directory_pages(n))
            .map(|i| MemPage::new(Gfn(i)))
            .collect();
        let dir: Vec<GrantRef> = (0..pages.len() as u32).map(|i| GrantRef(100 + i)).collect();
        let bufs: Vec<GrantRef> = (0..n as u32).map(|i| GrantRef(1000 + i)).collect();
        let views: Vec<&[AtomicU32]> = pages.iter().map(|p| p.words()).collect();
        write_directory(&views, &dir, if with_grefs { &bufs } else { &[] }, n).unwrap();
        (pages, dir, bufs)
    }

    fn read_all(
        pages: &[MemPage],
        dir: &[GrantRef],
        n: u64,
        expect: bool,
    ) -> Result<DirectoryReader, DirectoryError> {
        let mut r = DirectoryReader::new(dir.first().copied().unwrap_or(GrantRef(100)), n, expect);
        while let Some(next) = r.next_page() {
            let i = dir
                .iter()
                .position(|&d| d == next)
                .expect("link to a known page");
            r.feed(pages[i].words())?;
        }
        Ok(r)
    }

    #[test]
    fn write_then_read_round_trips() {
        for n in [1u64, 1022, 1023, 1024, 2025, 3069, 3070] {
            let (pages, dir, bufs) = build(n, true);
            let r = read_all(&pages, &dir, n, true).unwrap();
            assert_eq!(r.dir_pages(), &dir[..]);
            assert_eq!(r.into_grefs(), bufs, "n={n}");
        }
    }

    #[test]
    fn be_alloc_links_only_then_backend_fills() {
        let n = 2025;
        let (pages, dir, _) = build(n, false);
        let r = read_all(&pages, &dir, n, false).unwrap();
        assert_eq!(r.dir_pages(), &dir[..]);
        // Backend fills its refs, keeping the links; frontend-style read now works.
        let theirs: Vec<GrantRef> = (0..n as u32).map(|i| GrantRef(50_000 + i)).collect();
        for (i, p) in pages.iter().enumerate() {
            let chunk = &theirs[i * 1023..((i + 1) * 1023).min(theirs.len())];
            fill_directory_page_grefs(p.words(), chunk).unwrap();
        }
        assert_eq!(
            read_all(&pages, &dir, n, true).unwrap().into_grefs(),
            theirs
        );
    }

    #[test]
    fn malformed_directories_are_rejected() {
        let n = 2025;
        let (pages, dir, _) = build(n, true);
        // Chain cut short.
        pages[0].words()[0].store(0, Ordering::Relaxed);
        assert_eq!(
            read_all(&pages, &dir, n, true).err(),
            Some(DirectoryError::ChainTooShort { missing: n - 1023 })
        );
        // Loop back to itself.
        pages[0].words()[0].store(dir[0].0, Ordering::Relaxed);
        assert_eq!(
            read_all(&pages, &dir, n, true).err(),
            Some(DirectoryError::Loop(dir[0]))
        );
        pages[0].words()[0].store(dir[1].0, Ordering::Relaxed);
        // Last page links on.
        pages[1].words()[0].store(7, Ordering::Relaxed);
        assert_eq!(
            read_all(&pages, &dir, n, true).err(),
            Some(DirectoryError::ChainTooLong(GrantRef(7)))
        );
        pages[1].words()[0].store(0, Ordering::Relaxed);
        // A zero buffer gref.
        pages[1].words()[1 + 5].store(0, Ordering::Relaxed);
        assert_eq!(
            read_all(&pages, &dir, n, true).err(),
            Some(DirectoryError::ZeroGref { index: 1023 + 5 })
        );
        // Feeding after completion.
        let (pages, dir, _) = build(1, true);
        let mut r = read_all(&pages, &dir, 1, true).unwrap();
        assert_eq!(
            r.feed(pages[0].words()),
            Err(DirectoryError::AlreadyComplete)
        );
        // Count mismatches on write.
        let views: Vec<&[AtomicU32]> = pages.iter().map(|p| p.words()).collect();
        assert!(write_directory(&views, &dir, &[GrantRef(1)], 2000).is_err());
        let short: Vec<AtomicU32> = (0..3).map(|_| AtomicU32::new(0)).collect();
        assert_eq!(
            fill_directory_page(&short, None, &[]),
            Err(DirectoryError::ShortPage(3))
        );
    }
}
