//! A simulated displif backend for host tests (test code only).
//!
//! It plays the dom0 side against the fakes of [`crate::testing`]: writes its
//! `state` and `versions`, maps the frontend's rings, event pages, gref
//! directories and buffers through [`FakeGnttab`]'s peer API, answers
//! requests, validates them like a strict backend, allocates buffers for
//! `be-alloc`, serves EDID, and emits frame-done events after a configurable
//! delay. [`Knobs`] make it misbehave: silence, wrong ids or operations,
//! error statuses, lost or re-numbered events, garbage EDID, restarts.
//! Every flip is recorded with a hash of the visible pixels so tests can
//! compare the frames against the pattern rendered on the host.

use std::collections::{HashMap, VecDeque};
use std::format;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use xen::abi::displif::{
    packet_to_words, words_to_packet, Event, Request, Response, XENDISPL_DBUF_FLG_REQ_ALLOC,
    XENDISPL_IN_RING_LEN,
};
use xen::abi::errno::{XEN_EEXIST, XEN_EINVAL, XEN_ENOENT};
use xen::abi::xenbus::XenbusState;
use xen::types::{EvtchnPort, GrantRef};

use crate::edid::build_base_block;
use crate::frontend::DRM_FORMAT_XRGB8888;
use crate::testing::{FakeEvtchn, FakeGnttab, MemStore, PageMem};

/// The backend's own (direct) view of xenstore: the in-memory [`MemStore`] or
/// `xen`'s wire-level `FakeXenstore`.
pub trait SimStore {
    /// Write a node (absolute path, or as the store resolves it).
    fn set(&self, path: &str, value: &str);
    /// Read a node.
    fn get(&self, path: &str) -> Option<String>;
    /// Remove a node.
    fn remove(&self, path: &str);
}

impl SimStore for MemStore {
    fn set(&self, path: &str, value: &str) {
        MemStore::set(self, path, value)
    }
    fn get(&self, path: &str) -> Option<String> {
        MemStore::get(self, path)
    }
    fn remove(&self, path: &str) {
        MemStore::remove(self, path)
    }
}

impl SimStore for xen::xenstore::fake::FakeXenstore {
    fn set(&self, path: &str, value: &str) {
        self.write(path, value.as_bytes())
    }
    fn get(&self, path: &str) -> Option<String> {
        self.read_string(path)
    }
    fn remove(&self, path: &str) {
        self.rm(path)
    }
}

/// FNV-1a over the visible pixels (little-endian bytes), row-major.
pub fn frame_hash(pixels: impl Iterator<Item = u32>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in pixels {
        for b in p.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// What the backend serves for `GET_EDID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdidMode {
    /// A valid EDID whose preferred mode is this.
    Valid(u16, u16),
    /// 128 bytes that fail the checksum.
    Garbage,
    /// Answer `GET_EDID` with `-EINVAL`.
    Refuse,
}

/// Misbehaviour switches.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Do not answer requests (they stay on the ring).
    pub is_silent: bool,
    /// Give the next response a wrong id (and send no correct one).
    pub wrong_id_once: bool,
    /// Give the next response a wrong operation (and send no correct one).
    pub wrong_op_once: bool,
    /// Answer operation `.0` with status `.1`, `.2` times.
    pub fail_op: Option<(u8, i32, usize)>,
    /// Drop the next N frame-done events.
    pub drop_frame_done: usize,
    /// Skip this many event ids before the next event (an id gap).
    pub event_id_jump: u16,
    /// Frame-done delay after the flip (when `vblank_period_ns` is `None`).
    pub frame_done_delay_ns: u64,
    /// Emulate a display: frame-done at the first vblank after the flip, on a
    /// grid of this period starting at `vblank_origin_ns`; one flip per vblank.
    pub vblank_period_ns: Option<u64>,
    /// Origin of the vblank grid.
    pub vblank_origin_ns: u64,
    /// EDID served.
    pub edid: EdidMode,
    /// Advertised `versions` (`None`: node absent).
    pub versions: Option<String>,
}

/// One recorded flip (or `SET_CONFIG` with a framebuffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlipRecord {
    /// Connector.
    pub conn: usize,
    /// Framebuffer shown.
    pub fb_cookie: u64,
    /// When the request was processed.
    pub at_ns: u64,
    /// Pixel (0, 0): the pattern's frame marker.
    pub marker: u32,
    /// [`frame_hash`] of the visible area.
    pub hash: u64,
    /// Buffer resolution.
    pub width: u32,
    /// Buffer resolution.
    pub height: u32,
    /// `true` for `SET_CONFIG`.
    pub is_set_config: bool,
}

struct SimBuf {
    width: u32,
    height: u32,
    pages: Vec<Rc<PageMem>>,
    /// Frontend grants we mapped (to unmap), or our offered grants.
    grefs: Vec<GrantRef>,
    is_backend_allocated: bool,
}

struct SimConn {
    ring: Rc<PageMem>,
    ring_gref: GrantRef,
    evt: Rc<PageMem>,
    evt_gref: GrantRef,
    req_port: EvtchnPort,
    evt_port: EvtchnPort,
    req_cons: u32,
    rsp_prod: u32,
    evt_prod: u32,
    evt_id: u16,
    width: u32,
    height: u32,
    shown_fb: u64,
    /// Frames the display may be reading: the one on screen and flips not
    /// completed yet (framebuffer, hash when shown/flipped). The frontend must
    /// not write into any of them.
    in_use: Vec<(u64, u64)>,
}

/// The simulated backend.
pub struct SimBackend {
    store: Rc<dyn SimStore>,
    gnt: FakeGnttab,
    evt: FakeEvtchn,
    fe_path: String,
    be_path: String,
    /// Our state.
    pub state: XenbusState,
    /// Misbehaviour.
    pub knobs: Knobs,
    conns: Vec<SimConn>,
    bufs: HashMap<u64, SimBuf>,
    fbs: HashMap<u64, u64>,
    due_events: VecDeque<(u64, usize, u64)>,
    /// Every flip and configuration, in order.
    pub flips: Vec<FlipRecord>,
    /// Requests handled, by operation.
    pub requests: HashMap<u8, usize>,
    /// Every request handled, in order: (ring, operation).
    pub order: Vec<(usize, u8)>,
    /// Protocol violations seen (the strict-backend part).
    pub violations: Vec<String>,
    /// `version` the frontend wrote at the last connect.
    pub frontend_version: Option<String>,
    /// Times we connected.
    pub connects: usize,
    /// Notifications received on request channels.
    pub kicks: usize,
}

const NS_PER_MS: u64 = 1_000_000;

impl SimBackend {
    /// A backend at `be_path` for the frontend at `fe_path`.
    pub fn new(
        store: Rc<dyn SimStore>,
        gnt: &FakeGnttab,
        evt: &FakeEvtchn,
        fe_path: &str,
        be_path: &str,
    ) -> SimBackend {
        SimBackend {
            store,
            gnt: gnt.clone(),
            evt: evt.clone(),
            fe_path: fe_path.into(),
            be_path: be_path.into(),
            state: XenbusState::Initialising,
            knobs: Knobs {
                is_silent: false,
                wrong_id_once: false,
                wrong_op_once: false,
                fail_op: None,
                drop_frame_done: 0,
                event_id_jump: 0,
                frame_done_delay_ns: 2 * NS_PER_MS,
                vblank_period_ns: None,
                vblank_origin_ns: 0,
                edid: EdidMode::Refuse,
                versions: Some("1,2".into()),
            },
            conns: Vec::new(),
            bufs: HashMap::new(),
            fbs: HashMap::new(),
            due_events: VecDeque::new(),
            flips: Vec::new(),
            requests: HashMap::new(),
            order: Vec::new(),
            violations: Vec::new(),
            frontend_version: None,
            connects: 0,
            kicks: 0,
        }
    }

    fn set_state(&mut self, s: XenbusState) {
        self.state = s;
        self.store
            .set(&format!("{}/state", self.be_path), &format!("{}", s as u32));
    }

    fn fe_state(&self) -> XenbusState {
        self.store
            .get(&format!("{}/state", self.fe_path))
            .and_then(|v| v.parse::<u32>().ok())
            .and_then(|v| XenbusState::try_from(v).ok())
            .unwrap_or(XenbusState::Unknown)
    }

    fn fe_node(&self, rel: &str) -> Option<u32> {
        self.store
            .get(&format!("{}/{rel}", self.fe_path))
            .and_then(|v| v.parse().ok())
    }

    /// Flips of connector `conn` (not counting `SET_CONFIG`).
    pub fn flips_of(&self, conn: usize) -> Vec<&FlipRecord> {
        self.flips
            .iter()
            .filter(|f| f.conn == conn && !f.is_set_config)
            .collect()
    }

    /// Simulate the backend process dying and a new one starting: every
    /// mapping is dropped, the state goes to Initialising.
    pub fn restart(&mut self) {
        self.disconnect();
        self.set_state(XenbusState::Initialising);
    }

    /// A backend process killed and restarted so fast that the frontend
    /// never sees its state change: the new instance finds the frontend
    /// Connected and attaches to the rings already published, knowing none
    /// of the frontend's buffers.
    pub fn restart_unnoticed(&mut self) {
        self.disconnect();
        if let Err(e) = self.connect() {
            self.violations.push(format!("reconnect: {e}"));
        }
        // Attach at the frontend's current ring positions.
        for c in &mut self.conns {
            c.req_cons = c.ring.get(0);
            c.rsp_prod = c.ring.get(2);
            c.evt_prod = c.evt.get(1);
        }
    }

    /// Like [`SimBackend::restart`], but the new instance goes straight to
    /// InitWait (as a backend that starts up while the frontend is still
    /// Connected does).
    pub fn restart_in_init_wait(&mut self) {
        self.disconnect();
        let versions = format!("{}/versions", self.be_path);
        if let Some(v) = &self.knobs.versions {
            self.store.set(&versions, v);
        }
        self.set_state(XenbusState::InitWait);
    }

    /// Next time something is due (a frame-done event).
    pub fn next_due(&self) -> Option<u64> {
        self.due_events.iter().map(|e| e.0).min()
    }

    fn disconnect(&mut self) {
        for (_, b) in self.bufs.drain() {
            for g in b.grefs {
                if b.is_backend_allocated {
                    self.gnt.peer_withdraw(g);
                } else {
                    self.gnt.peer_unmap(g);
                }
            }
        }
        self.fbs.clear();
        for c in self.conns.drain(..) {
            self.gnt.peer_unmap(c.ring_gref);
            self.gnt.peer_unmap(c.evt_gref);
        }
        self.due_events.clear();
    }

    fn connect(&mut self) -> Result<(), String> {
        self.frontend_version = self.store.get(&format!("{}/version", self.fe_path));
        let mut i = 0;
        while let Some(res) = self.store.get(&format!("{}/{i}/resolution", self.fe_path)) {
            let (w, h) = res.split_once('x').ok_or("resolution")?;
            let node = |n: &str| self.fe_node(&format!("{i}/{n}")).ok_or(format!("{i}/{n}"));
            let ring_gref = GrantRef(node("req-ring-ref")?);
            let evt_gref = GrantRef(node("evt-ring-ref")?);
            let req_port = EvtchnPort(node("req-event-channel")?);
            let evt_port = EvtchnPort(node("evt-event-channel")?);
            let ring = self.gnt.peer_map(ring_gref).ok_or("ring gref")?;
            let evt = self.gnt.peer_map(evt_gref).ok_or("evt gref")?;
            self.conns.push(SimConn {
                ring,
                ring_gref,
                evt,
                evt_gref,
                req_port,
                evt_port,
                req_cons: 0,
                rsp_prod: 0,
                evt_prod: 0,
                evt_id: 0,
                width: w.parse().map_err(|_| "w")?,
                height: h.parse().map_err(|_| "h")?,
                shown_fb: 0,
                in_use: Vec::new(),
            });
            i += 1;
        }
        self.connects += 1;
        Ok(())
    }

    /// Run the backend at time `now_ns`.
    pub fn step(&mut self, now_ns: u64) {
        let fe = self.fe_state();
        match self.state {
            XenbusState::Initialising | XenbusState::Closed => {
                let versions = format!("{}/versions", self.be_path);
                match &self.knobs.versions {
                    Some(v) => self.store.set(&versions, v),
                    None => self.store.remove(&versions),
                }
                self.set_state(XenbusState::InitWait);
            }
            XenbusState::InitWait => {
                if matches!(fe, XenbusState::Initialised | XenbusState::Connected) {
                    match self.connect() {
                        Ok(()) => self.set_state(XenbusState::Connected),
                        Err(e) => {
                            self.violations.push(format!("connect: {e}"));
                            self.disconnect();
                        }
                    }
                }
            }
            XenbusState::Connected => {
                if matches!(
                    fe,
                    XenbusState::Initialising | XenbusState::Closing | XenbusState::Closed
                ) {
                    self.disconnect();
                    self.set_state(XenbusState::Closed);
                    return;
                }
                let is_busy = self.due_events.iter().any(|e| e.0 <= now_ns)
                    || self.conns.iter().any(|c| c.ring.get(0) != c.req_cons);
                if is_busy {
                    // Before anything changes what is in use (checked when the
                    // frontend talks to us: a write is caught at its next
                    // request or frame-done, which always follow).
                    self.check_in_use();
                }
                for c in 0..self.conns.len() {
                    self.serve(c, now_ns);
                }
                self.emit_events(now_ns);
            }
            _ => {}
        }
    }

    fn serve(&mut self, c: usize, now_ns: u64) {
        self.kicks += self.evt.peer_take_sent(self.conns[c].req_port);
        if self.knobs.is_silent {
            return;
        }
        loop {
            let conn = &self.conns[c];
            let req_prod = conn.ring.get(0);
            if conn.req_cons == req_prod {
                break;
            }
            let slot = (conn.req_cons % 32) as usize;
            let words: [u32; 16] = core::array::from_fn(|i| conn.ring.get(16 + slot * 16 + i));
            let packet = words_to_packet(&words);
            self.conns[c].req_cons += 1;
            // RING_FINAL_CHECK_FOR_REQUESTS: ask for a kick at the next request.
            let req_cons = self.conns[c].req_cons;
            self.conns[c].ring.set(1, req_cons + 1);
            let (id, op) = Request::header(&packet);
            let (status, edid_sz) = match Request::decode(&packet) {
                Ok((_, req)) => self.handle(c, req, now_ns),
                Err(e) => {
                    self.violations.push(format!("request: {e}"));
                    (-XEN_EINVAL, 0)
                }
            };
            *self.requests.entry(op).or_default() += 1;
            self.order.push((c, op));
            let mut status = status;
            if let Some((fop, fstatus, n)) = self.knobs.fail_op {
                if fop == op && n > 0 {
                    status = fstatus;
                    self.knobs.fail_op = (n > 1).then_some((fop, fstatus, n - 1));
                }
            }
            let edid_sz = if op == xen::abi::displif::XENDISPL_OP_GET_EDID {
                edid_sz
            } else {
                0
            };
            let mut r = Response {
                id,
                operation: op,
                status,
                edid_sz,
            };
            if std::mem::take(&mut self.knobs.wrong_id_once) {
                r.id = id.wrapping_add(7);
            }
            if std::mem::take(&mut self.knobs.wrong_op_once) {
                r.operation = op ^ 1;
                r.edid_sz = 0;
            }
            self.respond(c, r);
        }
    }

    fn respond(&mut self, c: usize, r: Response) {
        let conn = &mut self.conns[c];
        let slot = (conn.rsp_prod % 32) as usize;
        for (i, w) in packet_to_words(&r.encode()).into_iter().enumerate() {
            conn.ring.set(16 + slot * 16 + i, w);
        }
        conn.rsp_prod += 1;
        conn.ring.set(2, conn.rsp_prod);
        self.evt.peer_notify(conn.req_port);
    }

    fn read_directory(
        &self,
        first: GrantRef,
        n: usize,
    ) -> Result<(Vec<Rc<PageMem>>, Vec<GrantRef>), String> {
        let mut dirs = Vec::new();
        let mut dir_grefs = Vec::new();
        let mut g = first;
        let nr_dirs = n.div_ceil(1023).max(1);
        for _ in 0..nr_dirs {
            let page = self
                .gnt
                .peer_map(g)
                .ok_or(format!("directory gref {g} not granted"))?;
            dir_grefs.push(g);
            g = GrantRef(page.get(0));
            dirs.push(page);
        }
        Ok((dirs, dir_grefs))
    }

    fn unmap_all(&self, grefs: &[GrantRef]) {
        for g in grefs {
            self.gnt.peer_unmap(*g);
        }
    }

    fn handle(&mut self, c: usize, req: Request, now_ns: u64) -> (i32, u32) {
        match req {
            Request::DbufCreate(r) => {
                if self.bufs.contains_key(&r.dbuf_cookie) || r.dbuf_cookie == 0 {
                    self.violations
                        .push(format!("duplicate dbuf {}", r.dbuf_cookie));
                    return (-XEN_EEXIST, 0);
                }
                if c != 0 {
                    self.violations.push("DBUF_CREATE not on ring 0".into());
                }
                if r.bpp != 32
                    || u64::from(r.buffer_sz) < u64::from(r.width) * u64::from(r.height) * 4
                {
                    self.violations.push("DBUF_CREATE size".into());
                    return (-XEN_EINVAL, 0);
                }
                let n = (r.buffer_sz as usize).div_ceil(4096);
                let (dirs, dir_grefs) = match self.read_directory(GrantRef(r.gref_directory), n) {
                    Ok(d) => d,
                    Err(e) => {
                        self.violations.push(e);
                        return (-XEN_EINVAL, 0);
                    }
                };
                let is_backend_allocated = r.flags & XENDISPL_DBUF_FLG_REQ_ALLOC != 0;
                let mut pages = Vec::new();
                let mut grefs = Vec::new();
                for i in 0..n {
                    let (dir, slot) = (&dirs[i / 1023], 1 + i % 1023);
                    if is_backend_allocated {
                        let mem = PageMem::new();
                        let g = self.gnt.peer_offer(mem.clone());
                        dir.set(slot, g.0);
                        pages.push(mem);
                        grefs.push(g);
                    } else {
                        let g = GrantRef(dir.get(slot));
                        let Some(mem) = self.gnt.peer_map(g) else {
                            self.violations.push(format!("buffer gref {g} not granted"));
                            self.unmap_all(&grefs);
                            self.unmap_all(&dir_grefs);
                            return (-XEN_EINVAL, 0);
                        };
                        pages.push(mem);
                        grefs.push(g);
                    }
                }
                self.unmap_all(&dir_grefs);
                self.bufs.insert(
                    r.dbuf_cookie,
                    SimBuf {
                        width: r.width,
                        height: r.height,
                        pages,
                        grefs,
                        is_backend_allocated,
                    },
                );
                (0, 0)
            }
            Request::DbufDestroy(r) => match self.bufs.remove(&r.dbuf_cookie) {
                Some(b) => {
                    for g in b.grefs {
                        if b.is_backend_allocated {
                            self.gnt.peer_withdraw(g);
                        } else {
                            self.gnt.peer_unmap(g);
                        }
                    }
                    (0, 0)
                }
                None => (-XEN_ENOENT, 0),
            },
            Request::FbAttach(r) => {
                if !self.bufs.contains_key(&r.dbuf_cookie) {
                    return (-XEN_ENOENT, 0);
                }
                if r.pixel_format != DRM_FORMAT_XRGB8888
                    || self.fbs.contains_key(&r.fb_cookie)
                    || r.fb_cookie == 0
                {
                    self.violations.push("FB_ATTACH".into());
                    return (-XEN_EINVAL, 0);
                }
                self.fbs.insert(r.fb_cookie, r.dbuf_cookie);
                (0, 0)
            }
            Request::FbDetach(r) => match self.fbs.remove(&r.fb_cookie) {
                Some(_) => {
                    for conn in &mut self.conns {
                        conn.in_use.retain(|(fb, _)| *fb != r.fb_cookie);
                    }
                    (0, 0)
                }
                None => (-XEN_ENOENT, 0),
            },
            Request::SetConfig(r) => {
                if r.fb_cookie == 0 {
                    self.conns[c].shown_fb = 0;
                    self.conns[c].in_use.clear();
                    return (0, 0);
                }
                let conn = &self.conns[c];
                if r.x + r.width > conn.width || r.y + r.height > conn.height {
                    self.violations.push(format!(
                        "SET_CONFIG {}x{} outside {}x{}",
                        r.width, r.height, conn.width, conn.height
                    ));
                }
                match self.record(c, r.fb_cookie, now_ns, true) {
                    true => (0, 0),
                    false => (-XEN_ENOENT, 0),
                }
            }
            Request::PageFlip(r) => {
                if !self.record(c, r.fb_cookie, now_ns, false) {
                    return (-XEN_ENOENT, 0);
                }
                let due = match self.knobs.vblank_period_ns {
                    None => now_ns + self.knobs.frame_done_delay_ns,
                    Some(period) => {
                        let origin = self.knobs.vblank_origin_ns;
                        let k = now_ns.saturating_sub(origin) / period + 1;
                        let mut vblank = origin + k * period;
                        // One flip per vblank.
                        while self.due_events.iter().any(|e| e.1 == c && e.0 == vblank) {
                            vblank += period;
                        }
                        vblank
                    }
                };
                self.due_events.push_back((due, c, r.fb_cookie));
                (0, 0)
            }
            Request::GetEdid(r) => {
                let block = match self.knobs.edid {
                    EdidMode::Refuse => return (-XEN_EINVAL, 0),
                    EdidMode::Valid(w, h) => build_base_block(w, h),
                    EdidMode::Garbage => [0x5a; 128],
                };
                let n = (r.buffer_sz as usize).div_ceil(4096);
                let Ok((dirs, dir_grefs)) = self.read_directory(GrantRef(r.gref_directory), n)
                else {
                    return (-XEN_EINVAL, 0);
                };
                let g = GrantRef(dirs[0].get(1));
                self.unmap_all(&dir_grefs);
                let Some(page) = self.gnt.peer_map(g) else {
                    return (-XEN_EINVAL, 0);
                };
                for (i, chunk) in block.chunks(4).enumerate() {
                    page.set(
                        i,
                        u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                    );
                }
                self.gnt.peer_unmap(g);
                (0, 128)
            }
        }
    }

    fn record(&mut self, c: usize, fb_cookie: u64, now_ns: u64, is_set_config: bool) -> bool {
        let Some(b) = self.fbs.get(&fb_cookie).and_then(|d| self.bufs.get(d)) else {
            return false;
        };
        let n = (b.width * b.height) as usize;
        let pixels = (0..n).map(|i| b.pages[i / 1024].get(i % 1024));
        let hash = frame_hash(pixels);
        self.flips.push(FlipRecord {
            conn: c,
            fb_cookie,
            at_ns: now_ns,
            marker: b.pages[0].get(0),
            hash,
            width: b.width,
            height: b.height,
            is_set_config,
        });
        let conn = &mut self.conns[c];
        conn.shown_fb = fb_cookie;
        if is_set_config {
            // Shown at once, alone.
            conn.in_use.clear();
        }
        conn.in_use.push((fb_cookie, hash));
        true
    }

    fn fb_hash(&self, fb_cookie: u64) -> Option<u64> {
        let b = self.fbs.get(&fb_cookie).and_then(|d| self.bufs.get(d))?;
        let n = (b.width * b.height) as usize;
        Some(frame_hash((0..n).map(|i| b.pages[i / 1024].get(i % 1024))))
    }

    /// Record a violation for every framebuffer the frontend changed while
    /// the display may be reading it (on screen, or flipped to and its
    /// frame-done not sent yet).
    fn check_in_use(&mut self) {
        for c in 0..self.conns.len() {
            for i in 0..self.conns[c].in_use.len() {
                let (fb, hash) = self.conns[c].in_use[i];
                let Some(now) = self.fb_hash(fb) else {
                    continue;
                };
                if now != hash {
                    self.violations.push(format!(
                        "connector {c}: fb {fb:#x} written while the display may read it"
                    ));
                    self.conns[c].in_use[i].1 = now;
                }
            }
        }
    }

    fn emit_events(&mut self, now_ns: u64) {
        let mut keep = VecDeque::new();
        while let Some((due, c, fb)) = self.due_events.pop_front() {
            if due > now_ns {
                keep.push_back((due, c, fb));
                continue;
            }
            if self.knobs.drop_frame_done > 0 {
                self.knobs.drop_frame_done -= 1;
                continue;
            }
            let conn = &mut self.conns[c];
            // The flip of `fb` is complete: frames shown before it are free.
            if let Some(last) = conn.in_use.iter().rposition(|(f, _)| *f == fb) {
                conn.in_use.drain(..last);
            }
            conn.evt_id = conn
                .evt_id
                .wrapping_add(std::mem::take(&mut self.knobs.event_id_jump));
            let e = Event {
                id: conn.evt_id,
                fb_cookie: fb,
            };
            conn.evt_id = conn.evt_id.wrapping_add(1);
            let in_cons = conn.evt.get(0);
            if conn.evt_prod.wrapping_sub(in_cons) >= XENDISPL_IN_RING_LEN as u32 {
                self.violations.push("event page full".into());
                keep.push_back((due, c, fb));
                continue;
            }
            let slot = (conn.evt_prod % XENDISPL_IN_RING_LEN as u32) as usize;
            for (i, w) in packet_to_words(&e.encode()).into_iter().enumerate() {
                conn.evt.set(16 + slot * 16 + i, w);
            }
            conn.evt_prod += 1;
            conn.evt.set(1, conn.evt_prod);
            self.evt.peer_notify(conn.evt_port);
        }
        self.due_events = keep;
    }
}
