//! Carving the PVH memory map into heap, frame pool and a mapping window.
//!
//! Input: the `hvm_memmap_table_entry` list from start info (Xen's and QEMU's
//! maps differ; nothing here hard-codes either) and the ranges that must not be
//! reused: the kernel image (including `.bss`, page tables, stack), the start
//! info structure, the command line, the memory map array and any modules.
//!
//! Output ([`MemoryPlan`]):
//! - usable RAM: type-1 entries inside the identity-mapped `[1 MiB, 4 GiB)`,
//!   minus the reserved ranges, shrunk to whole pages. Below 1 MiB is skipped
//!   on purpose (real-mode structures on QEMU; a few pages are not worth it).
//!   Xen's special pages (xenstore, console, ...) are in a type-2 entry below
//!   4 GiB, so they are never RAM here;
//! - the heap: one contiguous piece of the largest usable region;
//! - the frame pool: everything else;
//! - the mapping window: the largest gap in `[1 MiB, MAPPING_WINDOW_LIMIT)`
//!   covered by no memory-map entry of any type. Those guest frames are
//!   unpopulated, so `XENMEM_add_to_physmap` (shared info, grant frames) and
//!   `GNTTABOP_map_grant_ref` (foreign buffers) can put Xen's pages there
//!   without giving up any RAM (the other choice, Linux's, replaces a RAM page
//!   and loses it to Xen). The limit keeps clear of the LAPIC/IOAPIC area.

use crate::extent::Extent;

/// Page size.
pub const PAGE_BYTES: u64 = 4096;
/// Lowest address used for heap, frames or mappings.
pub const LOW_LIMIT: u64 = 1 << 20;
/// End of the identity map built by `boot/`.
pub const IDENTITY_LIMIT: u64 = 1 << 32;
/// The mapping window stays below this (0xFEC0_0000 is the IOAPIC, 0xFEE0_0000
/// the LAPIC; keep a margin).
pub const MAPPING_WINDOW_LIMIT: u64 = 0xFC00_0000;
/// `XEN_HVM_MEMMAP_TYPE_RAM`.
pub const MEMMAP_TYPE_RAM: u32 = 1;

/// One memory-map entry (the fields of `hvm_memmap_table_entry` we use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `XEN_HVM_MEMMAP_TYPE_*`.
    pub kind: u32,
}

/// A byte range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// `[start, start + len)`, saturating at the top of the address space.
    pub const fn from_len(start: u64, len: u64) -> Range {
        Range {
            start,
            end: start.saturating_add(len),
        }
    }
    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// True if empty.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Most RAM regions a plan keeps (entries beyond are dropped, and reported).
pub const MAX_REGIONS: usize = 32;

/// The plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Heap bytes (page aligned).
    pub heap: Range,
    /// Frame pool extents in pages (what is left of usable RAM).
    pub frames: [Option<Extent>; MAX_REGIONS],
    /// Unpopulated guest frames for mappings, in pages.
    pub mapping_window: Option<Extent>,
    /// Usable RAM bytes in total (heap + frames).
    pub usable_bytes: u64,
    /// Regions that did not fit in `frames` (0 in any sane map).
    pub dropped_regions: usize,
}

/// Why no plan could be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// No usable RAM region is large enough for the heap.
    NoRoomForHeap {
        /// Bytes wanted.
        wanted: u64,
        /// The largest usable region.
        largest: u64,
    },
}

/// Heap size for `usable_bytes` of RAM: an eighth, clamped to [1 MiB, 32 MiB]
/// and whole pages. The rest goes to the frame pool (framebuffers, rings).
pub fn heap_bytes_for(usable_bytes: u64) -> u64 {
    let eighth = (usable_bytes / 8).clamp(1 << 20, 32 << 20);
    eighth & !(PAGE_BYTES - 1)
}

/// Build the plan.
pub fn plan(map: &[MapEntry], reserved: &[Range]) -> Result<MemoryPlan, PlanError> {
    let mut regions = [Range { start: 0, end: 0 }; MAX_REGIONS];
    let mut count = 0;
    let mut dropped = 0;
    for entry in map.iter().filter(|e| e.kind == MEMMAP_TYPE_RAM) {
        let ram = Range::from_len(entry.addr, entry.size);
        let clipped = Range {
            start: ram.start.max(LOW_LIMIT),
            end: ram.end.min(IDENTITY_LIMIT),
        };
        subtract_into(clipped, reserved, &mut regions, &mut count, &mut dropped);
    }
    let regions = &mut regions[..count];
    regions.sort_unstable_by_key(|r| r.start);
    let usable_bytes: u64 = regions.iter().map(|r| r.len()).sum();
    let heap_len = heap_bytes_for(usable_bytes);
    let largest = regions.iter().map(|r| r.len()).max().unwrap_or(0);
    let heap_index = regions
        .iter()
        .enumerate()
        .max_by_key(|(_, r)| r.len())
        .map(|(i, _)| i)
        .filter(|_| largest >= heap_len)
        .ok_or(PlanError::NoRoomForHeap {
            wanted: heap_len,
            largest,
        })?;
    let heap = Range::from_len(regions[heap_index].start, heap_len);
    regions[heap_index].start = heap.end;

    let mut frames = [None; MAX_REGIONS];
    for (slot, r) in frames
        .iter_mut()
        .zip(regions.iter().filter(|r| !r.is_empty()))
    {
        *slot = Some(Extent {
            start: r.start / PAGE_BYTES,
            len: r.len() / PAGE_BYTES,
        });
    }
    Ok(MemoryPlan {
        heap,
        frames,
        mapping_window: mapping_window(map),
        usable_bytes,
        dropped_regions: dropped,
    })
}

/// Add `range` minus every reserved range (shrunk to whole pages) to `out`.
fn subtract_into(
    range: Range,
    reserved: &[Range],
    out: &mut [Range; MAX_REGIONS],
    count: &mut usize,
    dropped: &mut usize,
) {
    let start = range.start.next_multiple_of(PAGE_BYTES);
    let end = range.end & !(PAGE_BYTES - 1);
    if start >= end {
        return;
    }
    // Find the first reserved range overlapping [start, end); recurse on both sides.
    let overlap = reserved
        .iter()
        .filter(|r| !r.is_empty() && r.start < end && r.end > start)
        .min_by_key(|r| r.start);
    match overlap {
        Some(r) => {
            let below = Range {
                start,
                end: r.start,
            };
            let above = Range { start: r.end, end };
            subtract_into(below, reserved, out, count, dropped);
            subtract_into(above, reserved, out, count, dropped);
        }
        None => {
            if *count < MAX_REGIONS {
                out[*count] = Range { start, end };
                *count += 1;
            } else {
                *dropped += 1;
            }
        }
    }
}

/// The largest gap below [`MAPPING_WINDOW_LIMIT`] covered by no entry of any type.
fn mapping_window(map: &[MapEntry]) -> Option<Extent> {
    let mut best: Option<Range> = None;
    let mut candidate_start = LOW_LIMIT;
    loop {
        // Push the candidate start past every entry that covers it.
        let mut moved = true;
        while moved {
            moved = false;
            for e in map {
                let r = Range::from_len(e.addr, e.size);
                if r.start <= candidate_start && r.end > candidate_start {
                    candidate_start = r.end;
                    moved = true;
                }
            }
        }
        if candidate_start >= MAPPING_WINDOW_LIMIT {
            break;
        }
        let gap_end = map
            .iter()
            .map(|e| e.addr)
            .filter(|&a| a > candidate_start)
            .min()
            .unwrap_or(MAPPING_WINDOW_LIMIT)
            .min(MAPPING_WINDOW_LIMIT);
        let gap = Range {
            start: candidate_start.next_multiple_of(PAGE_BYTES),
            end: gap_end & !(PAGE_BYTES - 1),
        };
        if !gap.is_empty() && best.is_none_or(|b| gap.len() > b.len()) {
            best = Some(gap);
        }
        candidate_start = gap_end;
    }
    best.map(|r| Extent {
        start: r.start / PAGE_BYTES,
        len: r.len() / PAGE_BYTES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// The map Xen gives a 64 MiB PVH guest (observed, see notes).
    fn xen_64mib() -> [MapEntry; 3] {
        [
            MapEntry {
                addr: 0,
                size: 64 * MIB,
                kind: 1,
            },
            MapEntry {
                addr: 0xfc00_0000,
                size: 0x8040,
                kind: 3,
            },
            MapEntry {
                addr: 0xfeff_8000,
                size: 0x8000,
                kind: 2,
            },
        ]
    }

    #[test]
    fn xen_map_reserves_image_and_start_info() {
        let image = Range {
            start: MIB,
            end: MIB + 600 * 1024,
        };
        let start_info = Range::from_len(0x3ff_f000, 0x100);
        let plan = plan(&xen_64mib(), &[image, start_info]).unwrap();
        // Usable: [image end, 0x3fff000) ; start info page excluded.
        let usable = 0x3ff_f000 - (MIB + 600 * 1024);
        assert_eq!(plan.usable_bytes, usable);
        assert_eq!(
            plan.heap,
            Range::from_len(image.end, heap_bytes_for(usable))
        );
        let frames: u64 = plan.frames.iter().flatten().map(|e| e.len).sum();
        assert_eq!(frames * PAGE_BYTES + plan.heap.len(), usable);
        for e in plan.frames.iter().flatten() {
            let r = Range::from_len(e.start * PAGE_BYTES, e.len * PAGE_BYTES);
            for bad in [image, start_info, plan.heap] {
                assert!(
                    r.end <= bad.start || r.start >= bad.end,
                    "{r:?} overlaps {bad:?}"
                );
            }
        }
        assert_eq!(
            plan.mapping_window,
            Some(Extent {
                start: 64 * MIB / PAGE_BYTES,
                len: (0xfc00_0000 - 64 * MIB) / PAGE_BYTES
            })
        );
    }

    #[test]
    fn qemu_map_skips_low_memory_and_holes() {
        let map = [
            MapEntry {
                addr: 0,
                size: 0x9fc00,
                kind: 1,
            },
            MapEntry {
                addr: 0x9fc00,
                size: 0x400,
                kind: 2,
            },
            MapEntry {
                addr: 0xf0000,
                size: 0x10000,
                kind: 2,
            },
            MapEntry {
                addr: MIB,
                size: 127 * MIB - 0x20000,
                kind: 1,
            },
            MapEntry {
                addr: 128 * MIB - 0x20000,
                size: 0x20000,
                kind: 2,
            },
            MapEntry {
                addr: 0xfffc_0000,
                size: 0x4_0000,
                kind: 2,
            },
        ];
        let plan = plan(
            &map,
            &[Range {
                start: MIB,
                end: 2 * MIB,
            }],
        )
        .unwrap();
        assert_eq!(plan.usable_bytes, 126 * MIB - 0x20000);
        assert_eq!(plan.heap.start, 2 * MIB);
        assert_eq!(plan.heap.len(), heap_bytes_for(plan.usable_bytes));
        assert_eq!(plan.mapping_window.unwrap().start, 128 * MIB / PAGE_BYTES);
    }

    #[test]
    fn ram_above_4gib_and_unaligned_edges_are_dropped() {
        let map = [
            MapEntry {
                addr: MIB + 123,
                size: 16 * MIB,
                kind: 1,
            },
            MapEntry {
                addr: 1 << 32,
                size: 1 << 30,
                kind: 1,
            },
        ];
        let plan = plan(&map, &[]).unwrap();
        assert_eq!(plan.heap.start, MIB + PAGE_BYTES);
        assert_eq!(plan.usable_bytes, 16 * MIB - PAGE_BYTES);
    }

    #[test]
    fn tiny_memory_is_an_error() {
        let map = [MapEntry {
            addr: MIB,
            size: 512 * 1024,
            kind: 1,
        }];
        assert!(matches!(
            plan(&map, &[]),
            Err(PlanError::NoRoomForHeap { .. })
        ));
        assert!(matches!(
            plan(&[], &[]),
            Err(PlanError::NoRoomForHeap { .. })
        ));
    }

    #[test]
    fn heap_size_policy() {
        assert_eq!(heap_bytes_for(4 * MIB), MIB);
        assert_eq!(heap_bytes_for(64 * MIB), 8 * MIB);
        assert_eq!(heap_bytes_for(4096 * MIB), 32 * MIB);
    }
}
