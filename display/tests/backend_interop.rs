//! Interop: this frontend against the real dom0 backend's protocol logic.
//!
//! The frontend (`xen_display`) and the backend (`pvdispl_backend::device`)
//! were written independently from `displif.h`; here they talk to each other
//! on the host through one shared fake "hypervisor": a xenstore map, guest
//! pages with a grant table (both directions, for `be-alloc`), and event
//! channels. Time is a fake clock the loop moves to the next deadline of
//! either side, like the two domains sleeping. The backend emulates a 60 Hz
//! display, validates every request (its conformance rules) and checksums
//! every frame; the checks below are the `flip` scenario's, on the host.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pvdispl_backend::device::Device;
use pvdispl_backend::limits::{Budget, Caps};
use pvdispl_backend::platform::{
    Allocated, EventChannel, GrantAllocator, GrantMapper, GrantMemory, OsError, Platform,
    Xenstore as BackendXenstore,
};
use pvdispl_backend::settings::Settings;
use xen::abi::xenbus::XenbusState;
use xen::platform::{Clock, EventChannels, GrantTable, PlatformError, SharedPage, WaitOutcome};
use xen::types::{DomId, EvtchnPort, Gfn, GrantRef};
use xen_display::frontend::{Env, Frontend, Options};
use xen_display::pages::{PageAllocator, PageUse};
use xen_display::pattern::{pattern_row, TestPattern};
use xen_display::store::{Store, StoreError, TxId};

const MS: u64 = 1_000_000;
const GUEST: DomId = DomId(3);
const FE: &str = "/local/domain/3/device/vdispl/0";
const BE: &str = "/local/domain/0/backend/vdispl/3/0";

type Mem = Arc<[AtomicU32]>;

fn new_mem() -> Mem {
    (0..1024).map(|_| AtomicU32::new(0)).collect()
}

/// Everything both domains share.
#[derive(Default)]
struct World {
    next_gfn: u64,
    slots: HashMap<u64, Arc<OnceLock<Mem>>>,
    live_pages: usize,
    next_ref: u32,
    grants: HashMap<u32, (Mem, u32)>,
    next_offered: u32,
    offered: HashMap<u32, Mem>,
    next_handle: u32,
    foreign: HashMap<u32, u64>,
    next_port: u32,
    fe_open: HashSet<u32>,
    fe_pending: HashSet<u32>,
    be_bound: HashMap<u32, u32>,
    be_pending: HashSet<u32>,
    xs: BTreeMap<String, String>,
}

type Shared = Arc<Mutex<World>>;

// ---- the guest's side ----------------------------------------------------------

struct Page {
    mem: Arc<OnceLock<Mem>>,
    gfn: Gfn,
    world: Shared,
}

impl Drop for Page {
    fn drop(&mut self) {
        let mut w = self.world.lock().unwrap();
        w.live_pages -= 1;
        w.slots.remove(&self.gfn.0);
    }
}

impl SharedPage for Page {
    fn words(&self) -> &[AtomicU32] {
        self.mem.get().expect("unmapped foreign slot touched")
    }
    fn gfn(&self) -> Gfn {
        self.gfn
    }
}

struct Guest(Shared);

impl PageAllocator for Guest {
    type Page = Page;
    fn alloc_page(&mut self, usage: PageUse) -> Result<Page, PlatformError> {
        let mut w = self.0.lock().unwrap();
        w.next_gfn += 1;
        let gfn = Gfn(0x10_0000 + w.next_gfn);
        let mem = Arc::new(OnceLock::new());
        if usage == PageUse::Granted {
            let _ = mem.set(new_mem());
        }
        w.slots.insert(gfn.0, mem.clone());
        w.live_pages += 1;
        Ok(Page {
            mem,
            gfn,
            world: self.0.clone(),
        })
    }
}

impl GrantTable for Guest {
    fn grant_access(&mut self, _: DomId, gfn: Gfn, _: bool) -> Result<GrantRef, PlatformError> {
        let mut w = self.0.lock().unwrap();
        let mem = w
            .slots
            .get(&gfn.0)
            .and_then(|s| s.get().cloned())
            .ok_or(PlatformError::Errno(-22))?;
        w.next_ref += 1;
        let r = 8 + w.next_ref;
        w.grants.insert(r, (mem, 0));
        Ok(GrantRef(r))
    }
    fn end_access(&mut self, gref: GrantRef) -> Result<(), PlatformError> {
        let mut w = self.0.lock().unwrap();
        match w.grants.get(&gref.0) {
            None => Err(PlatformError::NotHeld("grant")),
            Some((_, n)) if *n > 0 => Err(PlatformError::StillInUse(gref)),
            Some(_) => {
                w.grants.remove(&gref.0);
                Ok(())
            }
        }
    }
    fn map_foreign(&mut self, _: DomId, gref: GrantRef, gfn: Gfn) -> Result<u32, PlatformError> {
        let mut w = self.0.lock().unwrap();
        let mem = w
            .offered
            .get(&gref.0)
            .cloned()
            .ok_or(PlatformError::Errno(-22))?;
        let slot = w.slots.get(&gfn.0).ok_or(PlatformError::Errno(-22))?;
        slot.set(mem).map_err(|_| PlatformError::Errno(-16))?;
        w.next_handle += 1;
        let h = w.next_handle;
        w.foreign.insert(h, gfn.0);
        Ok(h)
    }
    fn unmap_foreign(&mut self, _: Gfn, handle: u32) -> Result<(), PlatformError> {
        let mut w = self.0.lock().unwrap();
        w.foreign
            .remove(&handle)
            .map(|_| ())
            .ok_or(PlatformError::NotHeld("mapping"))
    }
}

impl EventChannels for Guest {
    fn alloc_unbound(&mut self, _: DomId) -> Result<EvtchnPort, PlatformError> {
        let mut w = self.0.lock().unwrap();
        w.next_port += 1;
        let p = w.next_port;
        w.fe_open.insert(p);
        Ok(EvtchnPort(p))
    }
    fn bind_interdomain(&mut self, _: DomId, _: EvtchnPort) -> Result<EvtchnPort, PlatformError> {
        Err(PlatformError::Errno(-38))
    }
    fn send(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        let mut w = self.0.lock().unwrap();
        let local = w
            .be_bound
            .iter()
            .find(|(_, remote)| **remote == port.0)
            .map(|(l, _)| *l);
        if let Some(l) = local {
            w.be_pending.insert(l);
        }
        Ok(())
    }
    fn close(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        let mut w = self.0.lock().unwrap();
        w.fe_pending.remove(&port.0);
        w.fe_open
            .remove(&port.0)
            .then_some(())
            .ok_or(PlatformError::NotHeld("port"))
    }
    fn take_pending(&mut self, port: EvtchnPort) -> bool {
        self.0.lock().unwrap().fe_pending.remove(&port.0)
    }
    fn wait(&mut self, ports: &[EvtchnPort], _: Option<u64>) -> Result<WaitOutcome, PlatformError> {
        let w = self.0.lock().unwrap();
        Ok(if ports.iter().any(|p| w.fe_pending.contains(&p.0)) {
            WaitOutcome::Pending
        } else {
            WaitOutcome::DeadlinePassed
        })
    }
}

/// The guest's xenstore: a watch fires when the watched node's value changes.
struct GuestStore {
    world: Shared,
    watches: Vec<(String, String, Option<String>)>,
}

impl GuestStore {
    fn changed(&mut self, token: &str, take: bool) -> bool {
        let w = self.world.lock().unwrap();
        for (path, t, last) in &mut self.watches {
            if t == token {
                let now = w.xs.get(path.as_str()).cloned();
                if now != *last {
                    if take {
                        *last = now;
                    }
                    return true;
                }
            }
        }
        false
    }
}

impl Store for GuestStore {
    fn read(&mut self, _: TxId, path: &str) -> Result<Option<String>, StoreError> {
        Ok(self.world.lock().unwrap().xs.get(path).cloned())
    }
    fn write(&mut self, _: TxId, path: &str, value: &str) -> Result<(), StoreError> {
        self.world
            .lock()
            .unwrap()
            .xs
            .insert(path.into(), value.into());
        Ok(())
    }
    fn transaction_start(&mut self) -> Result<TxId, StoreError> {
        Ok(TxId(1))
    }
    fn transaction_end(&mut self, _: TxId, _: bool) -> Result<(), StoreError> {
        Ok(())
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        // Fires once at registration, as xenstored does.
        self.watches
            .push((path.into(), token.into(), Some("\0".into())));
        Ok(())
    }
    fn unwatch(&mut self, _: &str, token: &str) -> Result<(), StoreError> {
        self.watches.retain(|(_, t, _)| t != token);
        Ok(())
    }
    fn take_watch_event(&mut self, token: &str) -> Option<String> {
        self.changed(token, true).then(|| token.into())
    }
    fn has_watch_event(&mut self, token: &str) -> bool {
        self.changed(token, false)
    }
}

// ---- dom0's side ----------------------------------------------------------------

struct Mapped {
    pages: Vec<Mem>,
    refs: Vec<u32>,
    world: Shared,
}

impl GrantMemory for Mapped {
    fn nr_pages(&self) -> usize {
        self.pages.len()
    }
    fn page(&self, index: usize) -> &[AtomicU32] {
        &self.pages[index]
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let mut w = self.world.lock().unwrap();
        for r in &self.refs {
            if let Some((_, n)) = w.grants.get_mut(r) {
                *n -= 1;
            }
        }
    }
}

struct Offered {
    pages: Vec<Mem>,
    refs: Vec<u32>,
    world: Shared,
}

impl GrantMemory for Offered {
    fn nr_pages(&self) -> usize {
        self.pages.len()
    }
    fn page(&self, index: usize) -> &[AtomicU32] {
        &self.pages[index]
    }
}

impl Drop for Offered {
    fn drop(&mut self) {
        let mut w = self.world.lock().unwrap();
        for r in &self.refs {
            w.offered.remove(r);
        }
    }
}

struct Dom0(Shared);

fn os_err(what: &'static str) -> OsError {
    OsError::Errno { what, errno: 22 }
}

impl GrantMapper for Dom0 {
    fn map(
        &mut self,
        _: DomId,
        refs: &[GrantRef],
        _: bool,
    ) -> Result<Box<dyn GrantMemory>, OsError> {
        let mut w = self.0.lock().unwrap();
        let mut pages = Vec::new();
        for r in refs {
            pages.push(w.grants.get(&r.0).ok_or(os_err("map"))?.0.clone());
        }
        for r in refs {
            if let Some((_, n)) = w.grants.get_mut(&r.0) {
                *n += 1;
            }
        }
        Ok(Box::new(Mapped {
            pages,
            refs: refs.iter().map(|r| r.0).collect(),
            world: self.0.clone(),
        }))
    }
}

impl GrantAllocator for Dom0 {
    fn alloc(&mut self, _: DomId, nr_pages: usize) -> Result<Allocated, OsError> {
        let mut w = self.0.lock().unwrap();
        let mut pages = Vec::new();
        let mut refs = Vec::new();
        for _ in 0..nr_pages {
            w.next_offered += 1;
            let r = 100_000 + w.next_offered;
            let mem = new_mem();
            w.offered.insert(r, mem.clone());
            pages.push(mem);
            refs.push(r);
        }
        Ok(Allocated {
            refs: refs.iter().map(|&r| GrantRef(r)).collect(),
            memory: Box::new(Offered {
                pages,
                refs,
                world: self.0.clone(),
            }),
        })
    }
}

impl EventChannel for Dom0 {
    fn bind(&mut self, _: DomId, remote: EvtchnPort) -> Result<EvtchnPort, OsError> {
        let mut w = self.0.lock().unwrap();
        if !w.fe_open.contains(&remote.0) {
            return Err(os_err("bind"));
        }
        let local = remote.0 + 1000;
        w.be_bound.insert(local, remote.0);
        Ok(EvtchnPort(local))
    }
    fn unbind(&mut self, port: EvtchnPort) -> Result<(), OsError> {
        let mut w = self.0.lock().unwrap();
        w.be_pending.remove(&port.0);
        w.be_bound
            .remove(&port.0)
            .map(|_| ())
            .ok_or(os_err("unbind"))
    }
    fn notify(&mut self, port: EvtchnPort) -> Result<(), OsError> {
        let mut w = self.0.lock().unwrap();
        let remote = *w.be_bound.get(&port.0).ok_or(os_err("notify"))?;
        if w.fe_open.contains(&remote) {
            w.fe_pending.insert(remote);
        }
        Ok(())
    }
}

struct Dom0Store(Shared);

impl BackendXenstore for Dom0Store {
    fn read(&mut self, path: &str) -> Result<Option<String>, OsError> {
        Ok(self.0.lock().unwrap().xs.get(path).cloned())
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), OsError> {
        self.0.lock().unwrap().xs.insert(path.into(), value.into());
        Ok(())
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, OsError> {
        let prefix = format!("{path}/");
        let w = self.0.lock().unwrap();
        let mut out: Vec<String> =
            w.xs.keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
                .collect();
        out.dedup();
        Ok(out)
    }
}

#[derive(Clone)]
struct FakeClock(Arc<AtomicU64>);

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn no_cpu() -> u64 {
    0
}

// ---- the rig ----------------------------------------------------------------------

struct Rig {
    world: Shared,
    clock: FakeClock,
    guest: Guest,
    store: GuestStore,
    fe: Frontend<Page>,
    device: Device,
    last_wake: Option<u64>,
}

fn new_device(world: &Shared, clock: &FakeClock) -> Device {
    let platform = Platform {
        mapper: Box::new(Dom0(world.clone())),
        allocator: Box::new(Dom0(world.clone())),
        evtchn: Box::new(Dom0(world.clone())),
        clock: Box::new(clock.clone()),
        thread_cpu_ns: no_cpu,
    };
    let mut device = Device::new(
        GUEST,
        "0",
        BE,
        Box::new(Dom0Store(world.clone())),
        platform,
        Arc::new(Settings::default()),
        Budget::new(Caps::default()),
    )
    .expect("device");
    device.start().expect("start");
    device
}

impl Rig {
    fn new(connectors: &[&str], is_be_alloc: bool) -> Rig {
        let world: Shared = Arc::default();
        {
            let mut w = world.lock().unwrap();
            let mut set = |k: &str, v: &str| w.xs.insert(k.into(), v.into());
            set(&format!("{BE}/frontend"), FE);
            set(&format!("{BE}/frontend-id"), "3");
            set(&format!("{BE}/state"), "1");
            set(&format!("{FE}/backend"), BE);
            set(&format!("{FE}/backend-id"), "0");
            set(&format!("{FE}/state"), "1");
            set(
                &format!("{FE}/be-alloc"),
                if is_be_alloc { "1" } else { "0" },
            );
            for (i, r) in connectors.iter().enumerate() {
                set(&format!("{FE}/{i}/resolution"), r);
                set(&format!("{FE}/{i}/unique-id"), &format!("conn{i}"));
            }
        }
        let clock = FakeClock(Arc::new(AtomicU64::new(1_000 * MS)));
        let device = new_device(&world, &clock);
        Rig {
            guest: Guest(world.clone()),
            store: GuestStore {
                world: world.clone(),
                watches: Vec::new(),
            },
            fe: Frontend::new(FE, Options::default()),
            world,
            clock,
            device,
            last_wake: None,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// One round of both domains; then time moves to the next deadline
    /// unless something is pending.
    fn iterate(&mut self) {
        let now = self.now();
        let mut guest2 = Guest(self.world.clone());
        let mut guest3 = Guest(self.world.clone());
        let mut env = Env {
            evtchn: &mut self.guest,
            gnttab: &mut guest2,
            pages: &mut guest3,
            store: &mut self.store,
        };
        self.last_wake = self.fe.poll(now, &mut env, &mut TestPattern).wake_at_ns;
        self.device.on_xenstore_change();
        let pending: Vec<EvtchnPort> = {
            let mut w = self.world.lock().unwrap();
            w.be_pending.drain().map(EvtchnPort).collect()
        };
        self.device.on_ports(&pending);
        self.device.on_timer();
        let is_busy = {
            let w = self.world.lock().unwrap();
            !w.fe_pending.is_empty() || !w.be_pending.is_empty()
        } || self.store.has_watch_event(self.fe.watch_token());
        if !is_busy {
            let next = [self.last_wake, self.device.next_deadline_ns()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + MS);
            self.clock.0.store(next.max(now), Ordering::SeqCst);
        }
    }

    fn run_until(&mut self, limit_ns: u64, mut done: impl FnMut(&Rig) -> bool) -> bool {
        let end = self.now() + limit_ns;
        let mut spins = 0;
        while self.now() < end {
            if done(self) {
                return true;
            }
            let before = self.now();
            self.iterate();
            spins = if self.now() == before { spins + 1 } else { 0 };
            assert!(spins < 10_000, "stuck at {}: {:?}", self.now(), self.fe);
        }
        done(self)
    }

    fn backend_flips(&self, c: usize) -> u64 {
        self.device
            .connection()
            .and_then(|conn| conn.stats(c))
            .map_or(0, |s| s.flips)
    }
}

/// CRC-32 of the pattern's frame `n` (the backend's checksum definition).
fn pattern_crc(n: u64, w: u32, h: u32) -> String {
    let mut crc = crc32fast::Hasher::new();
    let mut row = vec![0u32; w as usize];
    for y in 0..h {
        pattern_row(n, w, h, y, &mut row);
        for px in &row {
            crc.update(&px.to_le_bytes());
        }
    }
    format!("{:08x}", crc.finalize())
}

fn check_flipping(rig: &mut Rig, resolutions: &[(u32, u32)]) {
    assert!(
        rig.run_until(500 * MS, |r| r.fe.is_running()),
        "{:?}",
        rig.fe
    );
    let all_at = |r: &Rig, n: u64| (0..resolutions.len()).all(|c| r.backend_flips(c) >= n);
    assert!(rig.run_until(5_000 * MS, |r| all_at(r, 20)));
    let (t_a, f_a) = (rig.now(), rig.backend_flips(0));
    assert!(rig.run_until(5_000 * MS, |r| all_at(r, f_a + 120)));
    let (t_b, f_b) = (rig.now(), rig.backend_flips(0));
    // 60 Hz, measured by the backend's flip count against the clock.
    let mean = (t_b - t_a) as f64 / (f_b - f_a) as f64;
    assert!((mean - 16_666_667.0).abs() < 16_666_667.0 * 0.005, "{mean}");

    let conn = rig.device.connection().expect("connected");
    for (c, &(w, h)) in resolutions.iter().enumerate() {
        let s = conn.stats(c).expect("stats");
        assert!(s.errors_by_rule.is_empty(), "{:?}", s.errors_by_rule);
        assert_eq!(s.protocol_version, 2);
        assert_eq!(s.resolution, format!("{w}x{h}"));
        // The backend's checksum of the last frame it was given is the
        // host's rendering of the frame number the frontend flipped last.
        let fs = &rig.fe.stats().connectors[c];
        let frame = fs.last_flipped_frame.expect("flipped");
        let last = s.last_crc32.clone().expect("a frame");
        assert_eq!(last, pattern_crc(frame, w, h), "connector {c}");
        if rig.fe.stats().sessions == 1 {
            // First session: flip k shows frame k.
            assert_eq!(frame, s.flips);
        }
        // After the one-time phase lock no vblank is missed.
        assert!(s.missed_vblanks <= 1, "{}", s.missed_vblanks);
        assert_eq!(s.late_events, 0);
        let fs = &rig.fe.stats().connectors[c];
        assert!(fs.is_mode_from_edid, "the backend's EDID was used");
        assert_eq!((fs.skipped_deadlines, fs.event_id_gaps), (0, 0), "{fs:?}");
        assert_eq!((fs.frame_done_timeouts, fs.flip_errors), (0, 0), "{fs:?}");
    }
}

fn check_shutdown(rig: &mut Rig) {
    rig.fe.request_shutdown();
    let ok = rig.run_until(10_000 * MS, |r| r.fe.state() == XenbusState::Closed);
    assert!(ok, "{:?}", rig.fe);
    let w = rig.world.lock().unwrap();
    assert_eq!(w.grants.len(), 0, "grants left");
    assert_eq!(w.foreign.len(), 0, "foreign maps left");
    assert_eq!(w.fe_open.len(), 0, "ports left");
    assert_eq!(w.live_pages, 0, "pages left");
    assert_eq!(
        w.xs.get(&format!("{BE}/state")).map(String::as_str),
        Some("2")
    );
}

#[test]
fn two_connectors_flip_at_60hz_with_checksums_the_host_predicts() {
    let res = [(64, 48), (40, 30)];
    let mut rig = Rig::new(&["64x48", "40x30"], false);
    check_flipping(&mut rig, &res);
    check_shutdown(&mut rig);
}

#[test]
fn backend_allocated_buffers() {
    let res = [(64, 48), (48, 64)];
    let mut rig = Rig::new(&["64x48", "48x64"], true);
    check_flipping(&mut rig, &res);
    assert_eq!(rig.world.lock().unwrap().foreign.len(), 2 * 2 * 3);
    check_shutdown(&mut rig);
}

#[test]
fn backend_restart_mid_run() {
    let res = [(32, 32)];
    let mut rig = Rig::new(&["32x32"], false);
    check_flipping(&mut rig, &res);
    // The backend process dies: its mappings and bindings go with it, its
    // xenstore nodes stay. A new one starts and announces InitWait.
    let old = std::mem::replace(&mut rig.device, new_device(&rig.world, &rig.clock));
    drop(old);
    {
        let mut w = rig.world.lock().unwrap();
        w.be_bound.retain(|_, _| false);
        w.be_pending.clear();
    }
    assert!(rig.run_until(10_000 * MS, |r| r.fe.stats().sessions == 2
        && r.fe.is_running()));
    check_flipping(&mut rig, &res);
    check_shutdown(&mut rig);
}
