//! The shared-info page: pvclock, wall clock and 2-level event bits.
//!
//! Mapped by [`SharedInfo::map`] with `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`
//! at a frame the caller picks. Every field is read and written with atomic or
//! volatile accesses because Xen updates the page concurrently: the event
//! bitmaps are `xen_ulong_t` words Xen sets with locked bit operations, so we
//! use `AtomicU64` on the same words; the time records are read under their
//! seqlocks.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::abi::memory::XENMAPSPACE_SHARED_INFO;
use crate::abi::xen::{
    SharedInfo as SharedInfoAbi, VcpuTimeInfo, SHARED_INFO_EVTCHN_MASK_OFFSET,
    SHARED_INFO_EVTCHN_PENDING_OFFSET, SHARED_INFO_VCPU0_TIME_OFFSET,
    SHARED_INFO_WC_VERSION_OFFSET, XEN_ULONG_BITS,
};
use crate::evtchn;
use crate::hv::hypercall::Hypervisor;
use crate::hv::pvclock::{read_consistent, TimeRecord};
use crate::platform::PlatformError;
use crate::types::{EvtchnPort, Gfn};

/// The secondary `vcpu_time_info` Xen keeps up to date (see
/// [`SharedInfo::refresh_time`]); registering it is what forces a refresh.
#[repr(C, align(64))]
struct SecondaryTime(core::cell::UnsafeCell<VcpuTimeInfo>);

// SAFETY: Rust code never accesses the contents; only Xen writes them.
unsafe impl Sync for SecondaryTime {}

static SECONDARY_TIME: SecondaryTime = SecondaryTime(core::cell::UnsafeCell::new(VcpuTimeInfo {
    version: 0,
    pad0: 0,
    tsc_timestamp: 0,
    system_time: 0,
    tsc_to_system_mul: 0,
    tsc_shift: 0,
    flags: 0,
    pad1: [0; 2],
}));

/// How often [`SharedInfo::refresh_time`] re-reads (yielding in between)
/// before giving up; Xen updates the record at least once a second.
const TIME_REFRESH_ATTEMPTS: u32 = 100_000;

/// The mapped shared-info page.
///
/// Invariant: `base` is the identity-mapped address of a page that Xen's
/// shared info occupies for the rest of the program.
#[derive(Debug)]
pub struct SharedInfo {
    base: usize,
    time_refresh: TimeRefresh,
}

/// How the time record was made current when the page was mapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRefresh {
    /// Whether Xen accepted the secondary time area (forcing a refresh).
    pub is_area_registered: bool,
    /// Reads (with a yield between them) until the record was current; 1 if
    /// it was current at once.
    pub reads: u32,
}

impl SharedInfo {
    /// Map shared info at `gfn`.
    ///
    /// # Safety
    /// `gfn` must be identity-mapped and used by nothing else, now or later
    /// (an unpopulated frame reserved for this, or a RAM page given up for it).
    pub unsafe fn map(hv: &Hypervisor, gfn: Gfn) -> Result<SharedInfo, PlatformError> {
        // SAFETY: the caller guarantees the frame is ours to replace.
        unsafe { hv.add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, gfn) }?;
        let mut shared = SharedInfo {
            base: gfn.addr() as usize,
            time_refresh: TimeRefresh::default(),
        };
        shared.time_refresh = shared.refresh_time(hv)?;
        Ok(shared)
    }

    /// Make vCPU 0's time record current.
    ///
    /// The record in a freshly mapped page can be stale: Xen rewrites it at
    /// context switches and once a second, and a TSC offset set while the
    /// domain was built may not be reflected yet (seen on real Xen 4.17: a
    /// `tsc_timestamp` far ahead of the guest's TSC, i.e. time "before boot").
    /// Registering a secondary time area makes Xen refresh both copies at
    /// once. If that is refused, wait (yielding) for a regular update.
    #[cfg(target_arch = "x86_64")]
    fn refresh_time(&self, hv: &Hypervisor) -> Result<TimeRefresh, PlatformError> {
        // SAFETY: the area is a static owned by this module, 32 bytes inside
        // one 64-byte-aligned block (never crosses a page), written only by Xen
        // and never read by Rust code.
        let registered = unsafe { hv.vcpu_register_time_memory_area(0, SECONDARY_TIME.0.get()) };
        for reads in 1..=TIME_REFRESH_ATTEMPTS {
            let (record, tsc) = self.time();
            if record.tsc_timestamp <= tsc && record.tsc_to_system_mul != 0 {
                return Ok(TimeRefresh {
                    is_area_registered: registered.is_ok(),
                    reads,
                });
            }
            hv.yield_now();
        }
        registered?;
        Err(PlatformError::NotHeld("a current pvclock record"))
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn refresh_time(&self, _hv: &Hypervisor) -> Result<TimeRefresh, PlatformError> {
        Ok(TimeRefresh::default())
    }

    /// How the time record was made current at mapping time.
    pub fn time_refresh(&self) -> TimeRefresh {
        self.time_refresh
    }

    /// The frame the page is mapped at.
    pub fn gfn(&self) -> Gfn {
        Gfn::containing(self.base as u64)
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= size_of::<SharedInfoAbi>());
        // SAFETY: the invariant makes `base` a live page for 'static; `offset`
        // is an aligned in-page field offset from the ABI constants, and
        // AtomicU32 has u32's layout. Xen writes concurrently, hence atomic.
        unsafe { &*((self.base + offset) as *const AtomicU32) }
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= size_of::<SharedInfoAbi>());
        // SAFETY: as in `u32_at`, for an 8-aligned 8-byte field.
        unsafe { &*((self.base + offset) as *const AtomicU64) }
    }

    /// vCPU 0's pvclock record, read consistently, with the TSC read inside it.
    #[cfg(target_arch = "x86_64")]
    pub fn time(&self) -> (TimeRecord, u64) {
        let base = SHARED_INFO_VCPU0_TIME_OFFSET;
        let version = || {
            self.u32_at(base + offset_of!(VcpuTimeInfo, version))
                .load(Ordering::Relaxed)
        };
        let record = || {
            let word = |field: usize| self.u64_at(base + field).load(Ordering::Relaxed);
            let scale = word(offset_of!(VcpuTimeInfo, tsc_to_system_mul));
            TimeRecord {
                tsc_timestamp: word(offset_of!(VcpuTimeInfo, tsc_timestamp)),
                system_time: word(offset_of!(VcpuTimeInfo, system_time)),
                // `tsc_to_system_mul` (u32) then `tsc_shift` (i8) share one
                // little-endian 64-bit word.
                tsc_to_system_mul: scale as u32,
                tsc_shift: (scale >> 32) as u8 as i8,
            }
        };
        read_consistent(version, record, rdtsc)
    }

    /// Current Xen system time in ns (the clock `SCHEDOP_poll` timeouts use).
    #[cfg(target_arch = "x86_64")]
    pub fn system_time_ns(&self) -> u64 {
        let (record, tsc) = self.time();
        record.system_time_at(tsc)
    }

    /// Wall-clock time (seconds and nanoseconds since the Unix epoch) at system
    /// time 0, read under the `wc_version` seqlock.
    pub fn wall_clock_base(&self) -> (u64, u32) {
        let field = |offset: usize| self.u32_at(offset).load(Ordering::Relaxed);
        loop {
            let before = field(SHARED_INFO_WC_VERSION_OFFSET);
            // Order: the version read before the field reads.
            core::sync::atomic::fence(Ordering::Acquire);
            let sec = u64::from(field(offset_of!(SharedInfoAbi, wc_sec)));
            let hi = u64::from(field(offset_of!(SharedInfoAbi, wc_sec_hi)));
            let nsec = field(offset_of!(SharedInfoAbi, wc_nsec));
            // Order: the field reads before the version re-read.
            core::sync::atomic::fence(Ordering::Acquire);
            if before & 1 == 0 && field(SHARED_INFO_WC_VERSION_OFFSET) == before {
                return (sec | hi << 32, nsec);
            }
            core::hint::spin_loop();
        }
    }

    /// A 64-word event bitmap of the page as atomics.
    fn bitmap(&self, offset: usize) -> &[AtomicU64] {
        debug_assert!(offset + XEN_ULONG_BITS * 8 <= size_of::<SharedInfoAbi>());
        // SAFETY: the invariant makes `base` a live page; `offset` is the
        // 8-aligned offset of a `xen_ulong_t[64]` array inside it (ABI
        // constant), AtomicU64 has u64's layout, and Xen writes concurrently.
        unsafe {
            core::slice::from_raw_parts((self.base + offset) as *const AtomicU64, XEN_ULONG_BITS)
        }
    }

    /// Whether `port` is pending.
    pub fn is_pending(&self, port: EvtchnPort) -> bool {
        evtchn::test_bit(self.bitmap(SHARED_INFO_EVTCHN_PENDING_OFFSET), port)
    }

    /// Test and clear `port`'s pending bit.
    pub fn take_pending(&self, port: EvtchnPort) -> bool {
        evtchn::test_and_clear_bit(self.bitmap(SHARED_INFO_EVTCHN_PENDING_OFFSET), port)
    }

    /// Set `port`'s mask bit (no upcall for it; `SCHEDOP_poll` still wakes).
    pub fn mask(&self, port: EvtchnPort) {
        evtchn::test_and_set_bit(self.bitmap(SHARED_INFO_EVTCHN_MASK_OFFSET), port);
    }
}

/// Read the TSC.
#[cfg(target_arch = "x86_64")]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects; CR4.TSD is clear (Xen PVH guests and
    // our boot code never set it), so it does not fault at CPL 0 anyway.
    unsafe { core::arch::x86_64::_rdtsc() }
}
