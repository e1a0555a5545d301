//! Per-guest resource caps: buffers, mapped bytes and grant references.
//!
//! A guest may open several vdispl devices; all of them draw on one [`Budget`]
//! (shared by the device threads). Every mapping or allocation first takes a
//! [`Reservation`], which gives its share back when dropped, so teardown can
//! never leak budget. Hitting a cap is answered with an error status
//! (`cap-*` rules), never a crash.

use std::sync::{Arc, Mutex};

use crate::rules::Rule;

/// The caps (configurable on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Caps {
    /// Display buffers alive at once.
    pub max_buffers: u64,
    /// Bytes of guest or backend memory mapped at once (rings included).
    pub max_mapped_bytes: u64,
    /// Grant references mapped or allocated at once (directories and rings included).
    pub max_grant_refs: u64,
}

impl Default for Caps {
    /// Room for two 3840x2160 XRGB8888 connectors, double-buffered: 4 buffers of
    /// 8100 pages (31.6 MiB) each plus directories, rings and EDID buffers.
    fn default() -> Caps {
        Caps {
            max_buffers: 16,
            max_mapped_bytes: 160 << 20,
            max_grant_refs: 40_960,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Usage {
    buffers: u64,
    bytes: u64,
    grefs: u64,
}

/// One guest's budget.
#[derive(Debug)]
pub struct Budget {
    caps: Caps,
    usage: Mutex<Usage>,
}

impl Budget {
    /// A fresh budget with `caps`.
    pub fn new(caps: Caps) -> Arc<Budget> {
        Arc::new(Budget {
            caps,
            usage: Mutex::new(Usage::default()),
        })
    }

    /// Reserve `buffers`, `bytes` and `grefs`, or name the cap that would be exceeded.
    pub fn reserve(
        self: &Arc<Budget>,
        buffers: u64,
        bytes: u64,
        grefs: u64,
    ) -> Result<Reservation, Rule> {
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fits = |used: u64, more: u64, cap: u64| {
            used.checked_add(more).is_some_and(|total| total <= cap)
        };
        if !fits(usage.buffers, buffers, self.caps.max_buffers) {
            return Err(Rule::CapBuffers);
        }
        if !fits(usage.bytes, bytes, self.caps.max_mapped_bytes) {
            return Err(Rule::CapMappedBytes);
        }
        if !fits(usage.grefs, grefs, self.caps.max_grant_refs) {
            return Err(Rule::CapGrantRefs);
        }
        usage.buffers += buffers;
        usage.bytes += bytes;
        usage.grefs += grefs;
        Ok(Reservation {
            budget: Arc::clone(self),
            amount: Usage {
                buffers,
                bytes,
                grefs,
            },
        })
    }

    /// Current (buffers, bytes, grefs) in use.
    pub fn in_use(&self) -> (u64, u64, u64) {
        let u = *self
            .usage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (u.buffers, u.bytes, u.grefs)
    }
}

/// A share of a [`Budget`], returned on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    amount: Usage,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut usage = self
            .budget
            .usage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        usage.buffers -= self.amount.buffers;
        usage.bytes -= self.amount.bytes;
        usage.grefs -= self.amount.grefs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_enforced_and_released() {
        let budget = Budget::new(Caps {
            max_buffers: 2,
            max_mapped_bytes: 100,
            max_grant_refs: 10,
        });
        let a = budget.reserve(1, 60, 5).unwrap();
        assert_eq!(budget.reserve(1, 50, 1).unwrap_err(), Rule::CapMappedBytes);
        assert_eq!(budget.reserve(0, 10, 6).unwrap_err(), Rule::CapGrantRefs);
        let b = budget.reserve(1, 40, 5).unwrap();
        assert_eq!(budget.reserve(1, 0, 0).unwrap_err(), Rule::CapBuffers);
        assert_eq!(
            budget.reserve(0, u64::MAX, 0).unwrap_err(),
            Rule::CapMappedBytes
        );
        assert_eq!(budget.in_use(), (2, 100, 10));
        drop(a);
        drop(b);
        assert_eq!(budget.in_use(), (0, 0, 0));
    }

    #[test]
    fn default_fits_two_4k_double_buffered_connectors() {
        let budget = Budget::new(Caps::default());
        let pages = (3840u64 * 2160 * 4).div_ceil(4096);
        let dir_pages = pages.div_ceil(1023);
        let held: Vec<_> = (0..4)
            .map(|_| budget.reserve(1, pages * 4096, pages + dir_pages).unwrap())
            .collect();
        let rings: Vec<_> = (0..2)
            .map(|_| budget.reserve(0, 2 * 4096, 2).unwrap())
            .collect();
        assert_eq!(held.len() + rings.len(), 6);
    }
}
