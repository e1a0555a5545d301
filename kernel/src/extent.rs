//! A fixed-capacity allocator of page extents.
//!
//! Used twice by the kernel: for RAM frames (grant pages, rings, framebuffers —
//! which need long contiguous runs: a 1080p XRGB8888 buffer is 2025 pages) and
//! for free guest-physical frame numbers outside RAM where Xen pages (shared
//! info, grant-table frames, foreign grants) get mapped.
//!
//! It keeps a sorted array of disjoint, non-adjacent free extents (no heap, so it
//! works before the heap exists). Allocation is first fit at the lowest address
//! that satisfies the alignment; freeing merges with neighbours and rejects
//! double frees (any overlap with a free extent).

/// A run of page frames `[start, start + len)` in units of pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First frame number.
    pub start: u64,
    /// Number of frames (never 0 inside the allocator).
    pub len: u64,
}

impl Extent {
    /// One past the last frame.
    pub const fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// Why an extent operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentError {
    /// No free run of the requested size and alignment.
    OutOfFrames,
    /// The free list is full (too fragmented) and cannot split further.
    TooFragmented,
    /// Freed frames overlap frames that are already free.
    DoubleFree,
    /// A zero-length request, a zero alignment, or an overflowing range.
    BadRequest,
}

/// Free-extent list with room for `N` extents.
#[derive(Debug)]
pub struct ExtentAllocator<const N: usize> {
    free: [Extent; N],
    count: usize,
}

impl<const N: usize> Default for ExtentAllocator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ExtentAllocator<N> {
    /// An allocator with nothing free.
    pub const fn new() -> Self {
        ExtentAllocator {
            free: [Extent { start: 0, len: 0 }; N],
            count: 0,
        }
    }

    /// The free extents, sorted by address.
    pub fn free_extents(&self) -> &[Extent] {
        &self.free[..self.count]
    }

    /// Total free frames.
    pub fn free_frames(&self) -> u64 {
        self.free_extents().iter().map(|e| e.len).sum()
    }

    /// Longest free run.
    pub fn largest_free(&self) -> u64 {
        self.free_extents().iter().map(|e| e.len).max().unwrap_or(0)
    }

    /// Allocate `len` contiguous frames whose first frame is a multiple of
    /// `align` (in frames). Returns the first frame.
    pub fn alloc(&mut self, len: u64, align: u64) -> Result<u64, ExtentError> {
        if len == 0 || align == 0 {
            return Err(ExtentError::BadRequest);
        }
        for i in 0..self.count {
            let e = self.free[i];
            let start = match e.start.checked_next_multiple_of(align) {
                Some(s) => s,
                None => continue,
            };
            let Some(end) = start.checked_add(len) else {
                continue;
            };
            if end > e.end() {
                continue;
            }
            let head = Extent {
                start: e.start,
                len: start - e.start,
            };
            let tail = Extent {
                start: end,
                len: e.end() - end,
            };
            match (head.len > 0, tail.len > 0) {
                (false, false) => self.remove(i),
                (true, false) => self.free[i] = head,
                (false, true) => self.free[i] = tail,
                (true, true) => {
                    if self.count == N {
                        // Cannot split this one; a later extent may fit without splitting.
                        continue;
                    }
                    self.free[i] = head;
                    self.insert(i + 1, tail);
                }
            }
            return Ok(start);
        }
        Err(ExtentError::OutOfFrames)
    }

    /// Return `[start, start + len)` to the free list (also used to seed it).
    pub fn free(&mut self, start: u64, len: u64) -> Result<(), ExtentError> {
        if len == 0 {
            return Err(ExtentError::BadRequest);
        }
        let end = start.checked_add(len).ok_or(ExtentError::BadRequest)?;
        // Index of the first free extent starting at or after `start`.
        let i = self.free_extents().partition_point(|e| e.start < start);
        let merges_prev = if i > 0 {
            let prev = self.free[i - 1];
            if prev.end() > start {
                return Err(ExtentError::DoubleFree);
            }
            prev.end() == start
        } else {
            false
        };
        let merges_next = if i < self.count {
            let next = self.free[i];
            if next.start < end {
                return Err(ExtentError::DoubleFree);
            }
            next.start == end
        } else {
            false
        };
        match (merges_prev, merges_next) {
            (true, true) => {
                self.free[i - 1].len += len + self.free[i].len;
                self.remove(i);
            }
            (true, false) => self.free[i - 1].len += len,
            (false, true) => {
                self.free[i].start = start;
                self.free[i].len += len;
            }
            (false, false) => {
                if self.count == N {
                    return Err(ExtentError::TooFragmented);
                }
                self.insert(i, Extent { start, len });
            }
        }
        Ok(())
    }

    fn remove(&mut self, i: usize) {
        self.free.copy_within(i + 1..self.count, i);
        self.count -= 1;
    }

    fn insert(&mut self, i: usize, e: Extent) {
        self.free.copy_within(i..self.count, i + 1);
        self.free[i] = e;
        self.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> ExtentAllocator<8> {
        let mut a = ExtentAllocator::new();
        a.free(0x100, 0x100).unwrap();
        a.free(0x1000, 0x4000).unwrap();
        a
    }

    #[test]
    fn first_fit_and_alignment() {
        let mut a = seeded();
        assert_eq!(a.alloc(0x10, 1), Ok(0x100));
        // 0x200-page run does not fit in the first extent: comes from the second.
        assert_eq!(a.alloc(0x200, 1), Ok(0x1000));
        assert_eq!(a.alloc(1, 0x400), Ok(0x1400));
        assert_eq!(
            a.free_extents(),
            &[
                Extent {
                    start: 0x110,
                    len: 0xf0
                },
                Extent {
                    start: 0x1200,
                    len: 0x200
                },
                Extent {
                    start: 0x1401,
                    len: 0x3bff
                },
            ]
        );
        assert_eq!(a.free_frames(), 0xf0 + 0x200 + 0x3bff);
    }

    #[test]
    fn two_1080p_buffers_fit_in_a_64mib_pool() {
        let mut a = ExtentAllocator::<8>::new();
        a.free(0x200, 0x3000).unwrap(); // ~48 MiB
        let fb_pages = (1920u64 * 1080 * 4).div_ceil(4096);
        let a0 = a.alloc(fb_pages, 1).unwrap();
        let a1 = a.alloc(fb_pages, 1).unwrap();
        assert_eq!(a1, a0 + fb_pages);
    }

    #[test]
    fn free_merges_and_rejects_double_free() {
        let mut a = seeded();
        let x = a.alloc(4, 1).unwrap();
        let y = a.alloc(4, 1).unwrap();
        let z = a.alloc(4, 1).unwrap();
        a.free(y, 4).unwrap();
        assert_eq!(a.free(y, 4), Err(ExtentError::DoubleFree));
        assert_eq!(a.free(y + 2, 4), Err(ExtentError::DoubleFree));
        a.free(x, 4).unwrap();
        a.free(z, 4).unwrap();
        assert_eq!(a.free_extents(), seeded().free_extents());
        assert_eq!(a.free(0x150, 1), Err(ExtentError::DoubleFree));
    }

    #[test]
    fn exhaustion_and_bad_requests() {
        let mut a = seeded();
        assert_eq!(a.alloc(0x4001, 1), Err(ExtentError::OutOfFrames));
        assert_eq!(a.alloc(0, 1), Err(ExtentError::BadRequest));
        assert_eq!(a.alloc(1, 0), Err(ExtentError::BadRequest));
        assert_eq!(a.free(u64::MAX, 2), Err(ExtentError::BadRequest));
        assert_eq!(a.alloc(0x4000, 1), Ok(0x1000));
        assert_eq!(a.alloc(0x100, 1), Ok(0x100));
        assert_eq!(a.alloc(1, 1), Err(ExtentError::OutOfFrames));
    }

    #[test]
    fn full_list_reports_fragmentation() {
        let mut a = ExtentAllocator::<2>::new();
        a.free(1, 9).unwrap();
        a.free(20, 10).unwrap();
        assert_eq!(a.free(40, 1), Err(ExtentError::TooFragmented));
        // Splitting the first extent in the middle needs a third slot.
        assert_eq!(a.alloc(1, 4), Ok(20));
        assert_eq!(a.free_extents()[1], Extent { start: 21, len: 9 });
    }
}
