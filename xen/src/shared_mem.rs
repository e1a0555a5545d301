//! Byte and packet access to shared pages viewed as `&[AtomicU32]`.
//!
//! [`crate::platform::SharedPage`] exposes a page as 1024 atomic words, so that
//! every access to memory the peer may write concurrently is atomic. Byte rings
//! (xenstore, console) and 64-byte packets (displif) are stored little-endian
//! inside those words. These helpers do the byte <-> word conversion with bounds
//! checks and no ordering of their own: callers place the barriers the ring
//! protocol needs (see [`crate::xenstore::ring`], [`crate::ring`]).
//!
//! Partial-word writes are read-modify-write of a whole word; that is only
//! correct when the caller is the sole writer of that region of the page (true
//! for every Xen ring: each data area has exactly one producer).
//!
//! [`MemPage`] is an in-memory page for host tests and for fakes in other crates.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::platform::SharedPage;
use crate::types::{Gfn, PAGE_SIZE};

/// Words in one page.
pub const PAGE_WORDS: usize = PAGE_SIZE / 4;

/// A byte range does not fit in the word slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// First byte requested.
    pub offset: usize,
    /// Bytes requested.
    pub len: usize,
    /// Bytes available.
    pub available: usize,
}

fn check(words: &[AtomicU32], offset: usize, len: usize) -> Result<(), OutOfBounds> {
    let available = words.len() * 4;
    match offset.checked_add(len) {
        Some(end) if end <= available => Ok(()),
        _ => Err(OutOfBounds {
            offset,
            len,
            available,
        }),
    }
}

/// Load the byte at `offset` (relaxed).
fn load_byte(words: &[AtomicU32], offset: usize) -> u8 {
    (words[offset / 4].load(Ordering::Relaxed) >> ((offset % 4) * 8)) as u8
}

/// Copy `dst.len()` bytes starting at byte `offset` of the page into `dst`
/// (relaxed loads).
pub fn read_bytes(words: &[AtomicU32], offset: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
    check(words, offset, dst.len())?;
    let mut i = 0;
    while i < dst.len() {
        let at = offset + i;
        if at % 4 == 0 && dst.len() - i >= 4 {
            let w = words[at / 4].load(Ordering::Relaxed).to_le_bytes();
            dst[i..i + 4].copy_from_slice(&w);
            i += 4;
        } else {
            dst[i] = load_byte(words, at);
            i += 1;
        }
    }
    Ok(())
}

/// Copy `src` to byte `offset` of the page (relaxed stores; partial words are
/// read-modify-written, so the caller must be the only writer of those words).
pub fn write_bytes(words: &[AtomicU32], offset: usize, src: &[u8]) -> Result<(), OutOfBounds> {
    check(words, offset, src.len())?;
    let mut i = 0;
    while i < src.len() {
        let at = offset + i;
        if at % 4 == 0 && src.len() - i >= 4 {
            let w = u32::from_le_bytes([src[i], src[i + 1], src[i + 2], src[i + 3]]);
            words[at / 4].store(w, Ordering::Relaxed);
            i += 4;
        } else {
            let word = &words[at / 4];
            let shift = (at % 4) * 8;
            let old = word.load(Ordering::Relaxed);
            let new = (old & !(0xff << shift)) | (u32::from(src[i]) << shift);
            word.store(new, Ordering::Relaxed);
            i += 1;
        }
    }
    Ok(())
}

/// Store `N` words at word index `word_index` (relaxed).
pub fn write_words<const N: usize>(
    words: &[AtomicU32],
    word_index: usize,
    src: &[u32; N],
) -> Result<(), OutOfBounds> {
    check(words, word_index.saturating_mul(4), N * 4)?;
    for (dst, v) in words[word_index..word_index + N].iter().zip(src) {
        dst.store(*v, Ordering::Relaxed);
    }
    Ok(())
}

/// Load `N` words from word index `word_index` (relaxed).
pub fn read_words<const N: usize>(
    words: &[AtomicU32],
    word_index: usize,
) -> Result<[u32; N], OutOfBounds> {
    check(words, word_index.saturating_mul(4), N * 4)?;
    Ok(core::array::from_fn(|i| {
        words[word_index + i].load(Ordering::Relaxed)
    }))
}

/// A zeroed, heap-allocated page with a made-up frame number: the in-memory
/// [`SharedPage`] for host tests and fakes.
pub struct MemPage {
    words: Box<[AtomicU32]>,
    gfn: Gfn,
}

impl MemPage {
    /// A zeroed page that reports frame `gfn`.
    pub fn new(gfn: Gfn) -> MemPage {
        MemPage {
            words: (0..PAGE_WORDS).map(|_| AtomicU32::new(0)).collect(),
            gfn,
        }
    }
}

impl core::fmt::Debug for MemPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemPage")
            .field("gfn", &self.gfn)
            .finish_non_exhaustive()
    }
}

impl SharedPage for MemPage {
    fn words(&self) -> &[AtomicU32] {
        &self.words
    }
    fn gfn(&self) -> Gfn {
        self.gfn
    }
}

/// A shared reference to a page is a page (lets a ring borrow a page that the
/// caller keeps owning, e.g. `FrontRing::init(&page, 64)`).
impl<P: SharedPage + ?Sized> SharedPage for &P {
    fn words(&self) -> &[AtomicU32] {
        (**self).words()
    }
    fn gfn(&self) -> Gfn {
        (**self).gfn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_at_every_alignment() {
        let page = MemPage::new(Gfn(1));
        let w = page.words();
        for off in 0..8 {
            for len in 0..12 {
                let src: Vec<u8> = (0..len).map(|i| (off * 16 + i + 1) as u8).collect();
                write_bytes(w, 100 + off, &src).unwrap();
                let mut dst = vec![0u8; len];
                read_bytes(w, 100 + off, &mut dst).unwrap();
                assert_eq!(dst, src);
            }
        }
    }

    #[test]
    fn partial_writes_keep_neighbouring_bytes() {
        let page = MemPage::new(Gfn(1));
        let w = page.words();
        w[0].store(0xaabb_ccdd, Ordering::Relaxed);
        write_bytes(w, 1, &[0x11, 0x22]).unwrap();
        assert_eq!(w[0].load(Ordering::Relaxed), 0xaa22_11dd);
    }

    #[test]
    fn out_of_bounds_is_an_error() {
        let page = MemPage::new(Gfn(1));
        let w = page.words();
        assert!(write_bytes(w, PAGE_SIZE - 1, &[1, 2]).is_err());
        assert!(read_bytes(w, usize::MAX, &mut [0u8; 1]).is_err());
        assert!(read_words::<16>(w, PAGE_WORDS - 15).is_err());
        assert!(read_words::<16>(w, PAGE_WORDS - 16).is_ok());
        assert!(write_words(w, usize::MAX / 2, &[0u32; 2]).is_err());
    }
}
