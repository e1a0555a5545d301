//! The daemon: watch `backend/vdispl`, run one thread per device.
//!
//! The main thread watches `/local/domain/<self>/backend/vdispl` and starts a
//! thread for every `<domid>/<dev>` that appears. Each device thread has its own
//! xenstore connection, event-channel and grant devices, so one broken or slow
//! guest never blocks another; guests share nothing but the per-guest
//! [`Budget`]. A stop signal makes every thread close its connection (writing
//! its statistics) before the process exits.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xen::types::{DomId, EvtchnPort};

use crate::device::{Device, Liveness};
use crate::limits::Budget;
use crate::os::evtchn::Evtchn;
use crate::os::gntalloc::Gntalloc;
use crate::os::gntdev::Gntdev;
use crate::os::xenbus::XenbusDevice;
use crate::os::{poll, rusage, signals};
use crate::platform::{Allocated, GrantAllocator, OsError, Platform, Xenstore};
use crate::settings::Settings;
use crate::xs::XsConnection;

/// Longest sleep between checks of the stop flag.
const MAX_SLEEP: Duration = Duration::from_millis(200);

/// `Instant`-based monotonic clock.
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    /// A clock starting now.
    pub fn new() -> MonotonicClock {
        MonotonicClock(Instant::now())
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl xen::platform::Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Stands in for `/dev/xen/gntalloc` when it cannot be opened.
struct NoAllocator(String);

impl GrantAllocator for NoAllocator {
    fn alloc(&mut self, _domid: DomId, _nr_pages: usize) -> Result<Allocated, OsError> {
        Err(OsError::Protocol(format!(
            "/dev/xen/gntalloc unavailable: {}",
            self.0
        )))
    }
}

/// One xenstore connection shared by a device and its event loop (same thread).
struct SharedXs(Rc<RefCell<XsConnection<XenbusDevice>>>);

impl Xenstore for SharedXs {
    fn read(&mut self, path: &str) -> Result<Option<String>, OsError> {
        self.0.borrow_mut().read(path)
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), OsError> {
        self.0.borrow_mut().write(path, value)
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, OsError> {
        self.0.borrow_mut().directory(path)
    }
}

/// Run the daemon until a stop signal.
pub fn run(settings: Settings, domid_override: Option<u16>) -> Result<(), String> {
    let settings = Arc::new(settings);
    let mut xs = XsConnection::new(XenbusDevice::open().map_err(|e| e.to_string())?);
    let self_domid = match domid_override {
        Some(d) => d,
        None => xs
            .read("domid")
            .map_err(|e| format!("reading own domid: {e}"))?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    let root = format!("/local/domain/{self_domid}/backend/vdispl");
    xs.watch(&root, "vdispl-root").map_err(|e| e.to_string())?;
    log::info!(
        "pvdispl-backend: serving {root} (refresh {}, caps {:?}, capture to {})",
        settings.refresh,
        settings.caps,
        settings
            .out_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "nowhere (log only)".into())
    );
    let mut threads: BTreeMap<(u16, String), JoinHandle<()>> = BTreeMap::new();
    let mut budgets: HashMap<u16, Arc<Budget>> = HashMap::new();
    let mut rescan = true;
    while !signals::stop_requested() {
        if rescan {
            scan(&mut xs, &root, &settings, &mut threads, &mut budgets);
        }
        let deadline = xs.transport().now_ns_after(MAX_SLEEP);
        rescan = match xs.wait_watch_event(deadline) {
            Ok(Some(_)) => {
                while xs.take_watch_event().is_some() {}
                true
            }
            Ok(None) => false,
            Err(e) => return Err(format!("xenstore: {e}")),
        };
    }
    log::info!(
        "pvdispl-backend: stopping {} device thread(s)",
        threads.len()
    );
    for (_, handle) in threads {
        let _ = handle.join();
    }
    Ok(())
}

fn scan(
    xs: &mut XsConnection<XenbusDevice>,
    root: &str,
    settings: &Arc<Settings>,
    threads: &mut BTreeMap<(u16, String), JoinHandle<()>>,
    budgets: &mut HashMap<u16, Arc<Budget>>,
) {
    let mut present = Vec::new();
    let domids = xs.directory(root).unwrap_or_else(|e| {
        log::error!("listing {root}: {e}");
        Vec::new()
    });
    for domid_text in domids {
        let Ok(domid) = domid_text.parse::<u16>() else {
            log::warn!("{root}/{domid_text}: not a domain id, ignored");
            continue;
        };
        for device in xs.directory(&format!("{root}/{domid}")).unwrap_or_default() {
            present.push((domid, device));
        }
    }
    // Forget devices whose directory is gone (their threads have ended or will).
    let gone: Vec<_> = threads
        .keys()
        .filter(|k| !present.contains(k))
        .cloned()
        .collect();
    for key in gone {
        if let Some(handle) = threads.remove(&key) {
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                // Still shutting down; it notices the removal itself.
                threads.insert(key, handle);
            }
        }
    }
    for key in present {
        if threads.contains_key(&key) {
            continue;
        }
        let (domid, device) = key.clone();
        let backend_path = format!("{root}/{domid}/{device}");
        // The toolstack writes `frontend` with the rest of the backend nodes.
        if !matches!(xs.read(&format!("{backend_path}/frontend")), Ok(Some(_))) {
            continue;
        }
        let budget = Arc::clone(
            budgets
                .entry(domid)
                .or_insert_with(|| Budget::new(settings.caps)),
        );
        let settings = Arc::clone(settings);
        let spawned = std::thread::Builder::new()
            .name(format!("dom{domid}-{device}"))
            .spawn(move || run_device(DomId(domid), &device, &backend_path, settings, budget));
        match spawned {
            Ok(handle) => {
                threads.insert(key, handle);
            }
            Err(e) => log::error!("dom{domid}: cannot start a device thread: {e}"),
        }
    }
    budgets.retain(|domid, _| threads.keys().any(|(d, _)| d == domid));
}

fn run_device(
    domid: DomId,
    name: &str,
    backend_path: &str,
    settings: Arc<Settings>,
    budget: Arc<Budget>,
) {
    if let Err(e) = serve_device(domid, name, backend_path, settings, budget) {
        log::error!("dom{domid}/{name}: {e}");
    }
}

fn serve_device(
    domid: DomId,
    name: &str,
    backend_path: &str,
    settings: Arc<Settings>,
    budget: Arc<Budget>,
) -> Result<(), String> {
    let xs = Rc::new(RefCell::new(XsConnection::new(
        XenbusDevice::open().map_err(|e| e.to_string())?,
    )));
    let mut evtchn = Evtchn::open().map_err(|e| e.to_string())?;
    let evtchn_for_platform = evtchn.try_clone().map_err(|e| e.to_string())?;
    let allocator: Box<dyn GrantAllocator> = match Gntalloc::open() {
        Ok(g) => Box::new(g),
        Err(e) => {
            log::warn!("dom{domid}/{name}: {e}; be-alloc buffers will be refused");
            Box::new(NoAllocator(e.to_string()))
        }
    };
    let platform = Platform {
        mapper: Box::new(Gntdev::open().map_err(|e| e.to_string())?),
        allocator,
        evtchn: Box::new(evtchn_for_platform),
        clock: Box::new(MonotonicClock::new()),
        thread_cpu_ns: rusage::thread_cpu_ns,
    };
    let mut device = Device::new(
        domid,
        name,
        backend_path,
        Box::new(SharedXs(Rc::clone(&xs))),
        platform,
        settings,
        budget,
    )?;
    {
        let mut conn = xs.borrow_mut();
        conn.watch(device.frontend_path(), "frontend")
            .map_err(|e| e.to_string())?;
        conn.watch(backend_path, "backend")
            .map_err(|e| e.to_string())?;
    }
    device.start()?;
    let xs_fd = xs.borrow().transport().raw_fd();
    loop {
        if signals::stop_requested() {
            device.shutdown("backend stopping");
            return Ok(());
        }
        // Drain xenstore first: watch events may already be queued in the client.
        let mut changed = false;
        loop {
            let event = xs
                .borrow_mut()
                .wait_watch_event(0)
                .map_err(|e| e.to_string())?;
            match event {
                Some(_) => changed = true,
                None => break,
            }
        }
        if changed && device.on_xenstore_change() == Liveness::Gone {
            return Ok(());
        }
        device.on_timer();
        let timeout_ms = if device.has_backlog() {
            // Work left from the last turn: look at xenstore and the ports, do not sleep.
            0
        } else {
            let now = device.platform_mut().now_ns();
            let timeout = device
                .next_deadline_ns()
                .map(|deadline| Duration::from_nanos(deadline.saturating_sub(now)).min(MAX_SLEEP))
                .unwrap_or(MAX_SLEEP);
            // Round up to whole ms so a due event is not polled for repeatedly.
            timeout.as_nanos().div_ceil(1_000_000) as u64
        };
        let ready = poll::wait_readable(&[xs_fd, evtchn.raw_fd()], Some(timeout_ms))
            .map_err(|e| e.to_string())?;
        if ready[1] {
            let ports: Vec<EvtchnPort> = evtchn.take_pending().map_err(|e| e.to_string())?;
            device.on_ports(&ports);
            evtchn.unmask(&ports).map_err(|e| e.to_string())?;
        } else if device.has_backlog() {
            device.on_backlog();
        }
    }
}
