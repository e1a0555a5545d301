//! Bring-up of the Xen core and access to its singletons.
//!
//! Order (see `kmain`): [`detect`] right after entry (CPUID + hypercall page),
//! then, once the memory plan exists, [`init`]: map shared info into the
//! mapping window, start pvclock, attach the PV console. Later stages (grant
//! table, xenstore) build on the accessors here.
//!
//! Frontend code gets its platform objects from here:
//! - [`hypervisor`]: the hypercall capability,
//! - [`clock`]: `&'static PvClock` (`xen::platform::Clock`),
//! - [`event_channels`]: a `XenEventChannels` (`xen::platform::EventChannels`);
//!   it holds no state of its own, so any number may exist,
//! - [`with_xenstore`]: the xenstore client over the ring (one, behind a lock).

use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, Once};
use xen::abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xen::hv::console::PvConsole;
use xen::hv::cpuid::{self, XenLeaves};
use xen::hv::evtchn::{PvClock, XenEventChannels};
use xen::hv::hypercall::Hypervisor;
use xen::hv::page::IdentityPage;
use xen::hv::shared_info::SharedInfo;
use xen::platform::{Clock, PlatformError};
use xen::types::{EvtchnPort, Gfn};
use xen::xenstore::client::XenstoreClient;
use xen::xenstore::ring::RingTransport;

use crate::memory;

static HYPERVISOR: Once<Hypervisor> = Once::new();
static SHARED_INFO: Once<SharedInfo> = Once::new();
static CLOCK: Once<PvClock> = Once::new();
static XENSTORE: Mutex<Option<Xenstore>> = Mutex::new(None);
static XENSTORE_PORT: Once<EvtchnPort> = Once::new();
/// Xen system time at PVH entry (from the entry TSC), ns.
static BOOT_SYSTEM_NS: AtomicU64 = AtomicU64::new(0);

/// Find Xen and install the hypercall page. `None` off Xen.
pub fn detect() -> Option<XenLeaves> {
    let leaves = cpuid::detect().ok()?;
    // SAFETY: `leaves` come from CPUID on this CPU, and boot/ identity-maps
    // the first 4 GiB, where the kernel image (and so the page) lives.
    let hv = unsafe { Hypervisor::install(leaves) };
    HYPERVISOR.call_once(|| hv);
    Some(leaves)
}

/// The hypercall capability, once [`detect`] found Xen.
pub fn hypervisor() -> Option<Hypervisor> {
    HYPERVISOR.get().copied()
}

/// The pvclock, once [`init`] mapped shared info.
pub fn clock() -> Option<&'static PvClock> {
    CLOCK.get()
}

/// The mapped shared-info page.
pub fn shared_info() -> Option<&'static SharedInfo> {
    SHARED_INFO.get()
}

/// Nanoseconds since PVH entry, by pvclock.
pub fn ns_since_boot() -> Option<u64> {
    let clock = CLOCK.get()?;
    Some(
        clock
            .now_ns()
            .saturating_sub(BOOT_SYSTEM_NS.load(Ordering::Relaxed)),
    )
}

/// Xen system time at PVH entry (the origin of [`ns_since_boot`]), ns.
pub fn boot_system_ns() -> u64 {
    BOOT_SYSTEM_NS.load(Ordering::Relaxed)
}

/// Convert a TSC value (e.g. one read before pvclock was up) to Xen system time.
pub fn tsc_to_system_ns(tsc: u64) -> Option<u64> {
    let (record, _) = SHARED_INFO.get()?.time();
    Some(record.system_time_at(tsc))
}

/// Event channels of this domain.
pub fn event_channels() -> Option<XenEventChannels> {
    Some(XenEventChannels::new(
        *HYPERVISOR.get()?,
        SHARED_INFO.get()?,
        CLOCK.get()?,
    ))
}

/// Why the Xen core could not come up.
#[derive(Debug)]
pub enum InitError {
    /// [`detect`] did not run or found no Xen.
    NotOnXen,
    /// No unpopulated frame for shared info.
    NoWindowFrame,
    /// A hypercall failed.
    Hypercall(&'static str, PlatformError),
    /// The toolstack gave no usable xenstore page or port.
    NoXenstore(u64, u64),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NotOnXen => write!(f, "not running on Xen"),
            InitError::NoWindowFrame => write!(f, "no free guest frame to map shared info at"),
            InitError::Hypercall(what, e) => write!(f, "{what}: {e}"),
            InitError::NoXenstore(pfn, port) => {
                write!(f, "no usable xenstore ring (pfn {pfn:#x}, port {port})")
            }
        }
    }
}

/// Map shared info, start pvclock (time origin = PVH entry), attach the PV
/// console to the log.
pub fn init(entry_tsc: u64) -> Result<(), InitError> {
    let hv = hypervisor().ok_or(InitError::NotOnXen)?;
    let frame = memory::alloc_window(1).map_err(|_| InitError::NoWindowFrame)?;
    // SAFETY: the frame comes from the mapping window (unpopulated, identity-
    // mapped below 4 GiB) and is leaked below, so nothing else ever uses it.
    let shared = unsafe { SharedInfo::map(&hv, frame.gfn(0)) }
        .map_err(|e| InitError::Hypercall("XENMEM_add_to_physmap(shared_info)", e))?;
    frame.leak();
    let shared = SHARED_INFO.call_once(|| shared);
    let (record, _) = shared.time();
    BOOT_SYSTEM_NS.store(record.system_time_at(entry_tsc), Ordering::Relaxed);
    CLOCK.call_once(|| PvClock::new(shared));
    let refresh = shared.time_refresh();
    log::info!(
        "pvclock: secondary time area {}, record current after {} read(s)",
        if refresh.is_area_registered {
            "registered"
        } else {
            "refused"
        },
        refresh.reads
    );

    // SAFETY: the console page is one of Xen's special pages below 4 GiB
    // (identity-mapped by boot/), used by nothing but this console.
    match unsafe { PvConsole::from_hvm_params(hv, shared) } {
        Ok(console) => crate::console::attach_pv_console(console),
        Err(e) => log::warn!("no PV console: {e}"),
    }
    init_xenstore(hv)
}

/// The xenstore client type of this kernel.
pub type Xenstore = XenstoreClient<RingTransport<IdentityPage, XenEventChannels, &'static PvClock>>;

fn init_xenstore(hv: Hypervisor) -> Result<(), InitError> {
    let pfn = hv
        .hvm_get_param(HVM_PARAM_STORE_PFN)
        .map_err(|e| InitError::Hypercall("HVMOP_get_param(STORE_PFN)", e))?;
    let port = hv
        .hvm_get_param(HVM_PARAM_STORE_EVTCHN)
        .map_err(|e| InitError::Hypercall("HVMOP_get_param(STORE_EVTCHN)", e))?;
    // The page must be below 4 GiB (identity map); port 0 is never valid.
    if pfn == 0 || pfn >= 1 << 20 || port == 0 || port > u64::from(u32::MAX) {
        return Err(InitError::NoXenstore(pfn, port));
    }
    let port = EvtchnPort(port as u32);
    let evtchn = event_channels().ok_or(InitError::NotOnXen)?;
    evtchn.adopt(port);
    // SAFETY: the xenstore page is one of Xen's special pages below 4 GiB,
    // identity-mapped by boot/ and used by nothing but this transport; the
    // only other writer is xenstored, through the ring protocol's atomics.
    let page = unsafe { IdentityPage::new_unchecked(Gfn(pfn)) };
    let clock = CLOCK.get().ok_or(InitError::NotOnXen)?;
    let transport = RingTransport::new(page, evtchn, clock, port)
        .map_err(|e| InitError::Hypercall("xenstore ring", e.into()))?;
    *XENSTORE.lock() = Some(XenstoreClient::new(transport));
    XENSTORE_PORT.call_once(|| port);
    Ok(())
}

/// The xenstore ring's event channel: include it in an
/// `EventChannels::wait` set to wake up for watch events.
pub fn xenstore_port() -> Option<EvtchnPort> {
    XENSTORE_PORT.get().copied()
}

/// Run `f` with the xenstore client; `None` if xenstore is not up or the
/// client is taken (see [`take_xenstore`]).
pub fn with_xenstore<R>(f: impl FnOnce(&mut Xenstore) -> R) -> Option<R> {
    XENSTORE.lock().as_mut().map(f)
}

/// Take the xenstore client out, for code that needs to own it for a long
/// time (the display frontend's `ClientStore`). While it is out,
/// [`with_xenstore`] returns `None`; hand it back with [`give_back_xenstore`].
pub fn take_xenstore() -> Option<Xenstore> {
    XENSTORE.lock().take()
}

/// Return a client taken with [`take_xenstore`].
pub fn give_back_xenstore(client: Xenstore) {
    *XENSTORE.lock() = Some(client);
}
