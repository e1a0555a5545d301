//! pvclock: Xen system time from the TSC and `vcpu_time_info`.
//!
//! Xen publishes, per vCPU, a snapshot `(tsc_timestamp, system_time)` and a
//! scale `(tsc_to_system_mul, tsc_shift)`; the current system time is
//! `system_time + ((tsc - tsc_timestamp) << shift) * mul >> 32`, with a negative
//! shift meaning a right shift (`xen/include/public/xen.h`, `struct
//! vcpu_time_info`). The record is guarded by a seqlock: `version` is odd while
//! Xen rewrites it, and a read is consistent only if `version` was even and
//! unchanged around it.
//!
//! [`TimeRecord`] holds the math and is pure; [`read_consistent`] does the
//! seqlock over any record source, so it is host-tested with a fake that
//! changes under the reader.

use crate::abi::xen::VcpuTimeInfo;

/// One consistent copy of the time parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRecord {
    /// TSC at the snapshot.
    pub tsc_timestamp: u64,
    /// System time (ns) at the snapshot.
    pub system_time: u64,
    /// 32.32 multiplier.
    pub tsc_to_system_mul: u32,
    /// Binary shift applied to the TSC delta first.
    pub tsc_shift: i8,
}

impl TimeRecord {
    /// From the ABI structure.
    pub fn from_abi(info: &VcpuTimeInfo) -> Self {
        TimeRecord {
            tsc_timestamp: info.tsc_timestamp,
            system_time: info.system_time,
            tsc_to_system_mul: info.tsc_to_system_mul,
            tsc_shift: info.tsc_shift,
        }
    }

    /// Scale a TSC delta to nanoseconds.
    pub fn scale_delta(&self, delta: u64) -> u64 {
        let shifted = match self.tsc_shift {
            s if s >= 0 => delta.checked_shl(s as u32).unwrap_or(0),
            s => delta.checked_shr(u32::from(s.unsigned_abs())).unwrap_or(0),
        };
        ((u128::from(shifted) * u128::from(self.tsc_to_system_mul)) >> 32) as u64
    }

    /// System time (ns) at `tsc`, which may precede the snapshot (e.g. a TSC
    /// recorded at boot, before the first snapshot we read).
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        if tsc >= self.tsc_timestamp {
            self.system_time
                .wrapping_add(self.scale_delta(tsc - self.tsc_timestamp))
        } else {
            self.system_time
                .saturating_sub(self.scale_delta(self.tsc_timestamp - tsc))
        }
    }
}

/// Read a record consistently: `version()` and `record()` read the live
/// fields; retry until an even version is unchanged around the record read.
/// `tsc()` is sampled inside the critical section so the record and the TSC
/// belong together. Returns the record and the TSC.
pub fn read_consistent(
    version: impl Fn() -> u32,
    record: impl Fn() -> TimeRecord,
    tsc: impl Fn() -> u64,
) -> (TimeRecord, u64) {
    loop {
        let before = version();
        if before & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        // Order: the version read above before the record reads below.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        let r = record();
        let now = tsc();
        // Order: the record reads above before the version re-read below.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        if version() == before {
            return (r, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// A 2 GHz TSC: 0.5 ns per tick = mul 2^31, shift 0.
    fn two_ghz() -> TimeRecord {
        TimeRecord {
            tsc_timestamp: 1_000_000,
            system_time: 5_000_000_000,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 0,
        }
    }

    #[test]
    fn scales_forward_and_backward() {
        let r = two_ghz();
        assert_eq!(r.system_time_at(1_000_000), 5_000_000_000);
        assert_eq!(r.system_time_at(3_000_000), 5_001_000_000);
        assert_eq!(r.system_time_at(0), 4_999_500_000);
    }

    #[test]
    fn shifts() {
        // 3 GHz as Xen encodes it: shift -1, mul = 2^32 * 2/3 (tsc/2 * 2/3 ns).
        let r = TimeRecord {
            tsc_timestamp: 0,
            system_time: 0,
            tsc_to_system_mul: 0xAAAA_AAAB,
            tsc_shift: -1,
        };
        assert_eq!(r.system_time_at(3_000_000_000), 1_000_000_000);
        // 500 MHz: shift +1, mul 2^32 (2 ns per tick).
        let r = TimeRecord {
            tsc_to_system_mul: u32::MAX,
            tsc_shift: 1,
            ..r
        };
        assert_eq!(r.scale_delta(500_000_000), 999_999_999);
        // Large deltas do not overflow (u128 product).
        let r = TimeRecord {
            tsc_to_system_mul: u32::MAX,
            tsc_shift: 0,
            ..r
        };
        assert_eq!(r.scale_delta(u64::MAX), u64::MAX - (u64::MAX >> 32) - 1);
    }

    #[test]
    fn seqlock_retries_while_odd_or_changed() {
        // Sequence of versions seen: 3 (odd, retry), 4 then 6 (changed, retry), 6 and 6.
        let versions = [3u32, 4, 6, 6, 6];
        let index = Cell::new(0);
        let reads = Cell::new(0);
        let (record, tsc) = read_consistent(
            || {
                let v = versions[index.get()];
                index.set(index.get() + 1);
                v
            },
            || {
                reads.set(reads.get() + 1);
                TimeRecord {
                    system_time: reads.get(),
                    ..TimeRecord::default()
                }
            },
            || 42,
        );
        assert_eq!(record.system_time, 2);
        assert_eq!(tsc, 42);
        assert_eq!(index.get(), 5);
    }
}
