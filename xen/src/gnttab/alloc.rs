//! A grant-reference allocator (pure; no locking, no interrupt masking).
//!
//! References `0..GNTTAB_NR_RESERVED_ENTRIES` (console = 0, xenstore = 1, ...)
//! belong to the toolstack and are never handed out; displif additionally treats
//! reference 0 as invalid. Freed references are reused LIFO. Double frees and
//! frees of references never handed out are errors, not silent corruption.

use alloc::vec::Vec;

use crate::abi::grant_table::GNTTAB_NR_RESERVED_ENTRIES;
use crate::platform::PlatformError;
use crate::types::GrantRef;

/// Hands out grant references in `GNTTAB_NR_RESERVED_ENTRIES..capacity`.
#[derive(Debug, Clone)]
pub struct GrantRefAllocator {
    capacity: u32,
    /// Next never-used reference (everything from here to `capacity` is free).
    next_fresh: u32,
    /// Freed references, reused last-in first-out.
    free: Vec<u32>,
    /// One bit per reference below `next_fresh`: set = allocated.
    allocated: Vec<u64>,
}

impl GrantRefAllocator {
    /// An allocator for a table of `capacity` entries (512 per v1 frame).
    pub fn new(capacity: u32) -> GrantRefAllocator {
        GrantRefAllocator {
            capacity,
            next_fresh: GNTTAB_NR_RESERVED_ENTRIES,
            free: Vec::new(),
            allocated: Vec::new(),
        }
    }

    /// Table size in entries.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Grow the table (after mapping more grant frames). Shrinking is refused.
    pub fn grow(&mut self, new_capacity: u32) -> Result<(), PlatformError> {
        if new_capacity < self.capacity {
            return Err(PlatformError::NotHeld("grant table cannot shrink"));
        }
        self.capacity = new_capacity;
        Ok(())
    }

    /// References that can still be allocated.
    pub fn available(&self) -> u32 {
        self.capacity.saturating_sub(self.next_fresh) + self.free.len() as u32
    }

    /// References currently allocated.
    pub fn in_use(&self) -> u32 {
        self.next_fresh.saturating_sub(GNTTAB_NR_RESERVED_ENTRIES) - self.free.len() as u32
    }

    fn bit(r: u32) -> (usize, u64) {
        ((r / 64) as usize, 1u64 << (r % 64))
    }

    /// Whether `r` is currently allocated by this allocator.
    pub fn is_allocated(&self, r: GrantRef) -> bool {
        let (w, b) = Self::bit(r.0);
        self.allocated.get(w).is_some_and(|x| x & b != 0)
    }

    fn mark(&mut self, r: u32, on: bool) {
        let (w, b) = Self::bit(r);
        if self.allocated.len() <= w {
            self.allocated.resize(w + 1, 0);
        }
        if on {
            self.allocated[w] |= b;
        } else {
            self.allocated[w] &= !b;
        }
    }

    /// Allocate one reference.
    pub fn alloc(&mut self) -> Result<GrantRef, PlatformError> {
        let r = if let Some(r) = self.free.pop() {
            r
        } else if self.next_fresh < self.capacity {
            self.next_fresh += 1;
            self.next_fresh - 1
        } else {
            return Err(PlatformError::Exhausted("grant references"));
        };
        self.mark(r, true);
        Ok(GrantRef(r))
    }

    /// Allocate `n` references, all or nothing.
    pub fn alloc_many(&mut self, n: usize) -> Result<Vec<GrantRef>, PlatformError> {
        if n > self.available() as usize {
            return Err(PlatformError::Exhausted("grant references"));
        }
        (0..n).map(|_| self.alloc()).collect()
    }

    /// Return a reference. Reserved, never-allocated and already-free references
    /// are refused.
    pub fn free(&mut self, r: GrantRef) -> Result<(), PlatformError> {
        if r.0 < GNTTAB_NR_RESERVED_ENTRIES || !self.is_allocated(r) {
            return Err(PlatformError::NotHeld("grant reference"));
        }
        self.mark(r.0, false);
        self.free.push(r.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn never_hands_out_reserved_refs_and_exhausts_cleanly() {
        let mut a = GrantRefAllocator::new(512);
        let mut seen = HashSet::new();
        while let Ok(r) = a.alloc() {
            assert!(r.0 >= GNTTAB_NR_RESERVED_ENTRIES && r.0 < 512);
            assert!(seen.insert(r.0), "duplicate {r}");
        }
        assert_eq!(seen.len(), 512 - 8);
        assert_eq!(a.available(), 0);
        assert_eq!(a.in_use(), 504);
        assert_eq!(a.alloc(), Err(PlatformError::Exhausted("grant references")));
    }

    #[test]
    fn free_reuse_and_misuse() {
        let mut a = GrantRefAllocator::new(16);
        let r = a.alloc().unwrap();
        assert_eq!(r, GrantRef(8));
        a.free(r).unwrap();
        assert_eq!(a.free(r), Err(PlatformError::NotHeld("grant reference")));
        assert!(a.free(GrantRef(0)).is_err());
        assert!(a.free(GrantRef(1)).is_err());
        assert!(a.free(GrantRef(15)).is_err()); // never handed out
        assert!(a.free(GrantRef(u32::MAX)).is_err());
        assert_eq!(a.alloc().unwrap(), r); // reused
    }

    #[test]
    fn alloc_many_is_all_or_nothing_and_grow_works() {
        let mut a = GrantRefAllocator::new(20);
        assert!(a.alloc_many(13).is_err());
        assert_eq!(a.available(), 12);
        let v = a.alloc_many(12).unwrap();
        assert_eq!(v.len(), 12);
        a.grow(30).unwrap();
        assert!(a.grow(10).is_err());
        assert_eq!(a.alloc().unwrap(), GrantRef(20));
        for r in v {
            a.free(r).unwrap();
        }
        assert_eq!(a.in_use(), 1);
        assert_eq!(a.available(), 12 + 9);
    }

    #[test]
    fn capacity_below_reserved_is_empty() {
        let mut a = GrantRefAllocator::new(4);
        assert_eq!(a.available(), 0);
        assert!(a.alloc().is_err());
    }
}
