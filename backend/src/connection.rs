//! One connected frontend: its connectors' rings, its buffers, and every request.
//!
//! [`Connection::open`] maps each connector's request ring and event page and
//! binds their event channels; [`Connection::on_port`] consumes requests,
//! validates them against the displif rules (`crate::rules`), executes them and
//! answers each with `id` and `operation` echoed and `status` 0 or `-errno`;
//! [`Connection::on_timer`] publishes frame-done events when their vblank comes
//! (`crate::pacing`), waiting — never dropping — when the event page is full.
//! [`Connection::close`] unbinds and unmaps everything and writes the capture
//! and statistics files. Buffers belong to the device, not to a connector
//! (`DBUF_*`/`FB_*` travel on connector 0's ring; `io/displif.h`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use xen::abi::displif::{DbufCreateReq, FbAttachReq, GetEdidReq, SetConfigReq};
use xen::abi::displif::{
    Event, PacketError, Request, Response, XENDISPL_DBUF_FLG_REQ_ALLOC, XENDISPL_EDID_MAX_SIZE,
    XENDISPL_OP_DBUF_CREATE, XENDISPL_OP_DBUF_DESTROY, XENDISPL_OP_FB_ATTACH,
    XENDISPL_OP_FB_DETACH, XENDISPL_OP_GET_EDID, XENDISPL_OP_PG_FLIP, XENDISPL_OP_SET_CONFIG,
    XENDISPL_PGDIR_GREFS_OFFSET, XENDISPL_PGDIR_GREFS_PER_PAGE, XENDISPL_PGDIR_NEXT_OFFSET,
};
use xen::types::{DomId, EvtchnPort, GrantRef, PAGE_SIZE};

use crate::capture::{FrameView, Recorder};
use crate::frontend_cfg::{ConnectorConfig, FrontendConfig};
use crate::limits::{Budget, Reservation};
use crate::pacing::Pacer;
use crate::pixel::PixelFormat;
use crate::platform::{read_u32, write_words, GrantMemory, Platform};
use crate::reserved::{self, Reserved};
use crate::rings::{EventRing, Push, RequestRing, RingCorruption};
use crate::rules::{Rule, Violation, Warning};
use crate::settings::Settings;
use crate::stats::{ConnectorStats, Summary};

/// Largest buffer accepted at all (`buffer_sz` is a u32; this keeps arithmetic and
/// single gntdev calls sane): 512 MiB.
pub const MAX_BUFFER_BYTES: u64 = 512 << 20;
/// Largest EDID buffer accepted (the protocol asks for at least 32 KiB).
pub const MAX_EDID_BUFFER_BYTES: u32 = 1 << 20;
/// A frame-done event sent more than this after its vblank counts as late.
pub const LATE_THRESHOLD_NS: u64 = 2_000_000;

/// Name of a request operation, for logs.
pub fn operation_name(operation: u8) -> &'static str {
    match operation {
        XENDISPL_OP_DBUF_CREATE => "DBUF_CREATE",
        XENDISPL_OP_DBUF_DESTROY => "DBUF_DESTROY",
        XENDISPL_OP_FB_ATTACH => "FB_ATTACH",
        XENDISPL_OP_FB_DETACH => "FB_DETACH",
        XENDISPL_OP_SET_CONFIG => "SET_CONFIG",
        XENDISPL_OP_PG_FLIP => "PG_FLIP",
        XENDISPL_OP_GET_EDID => "GET_EDID",
        _ => "unknown",
    }
}

/// Data grefs of a page directory and (when kept) its mapped pages.
type Directory = (Vec<GrantRef>, Vec<Box<dyn GrantMemory>>);

/// A display buffer.
struct Dbuf {
    /// 0 for a buffer created without geometry (PRIME import; known at FB_ATTACH).
    width: u32,
    height: u32,
    bpp: u32,
    buffer_sz: u32,
    data_ofs: u32,
    memory: Box<dyn GrantMemory>,
    is_backend_allocated: bool,
    nr_framebuffers: u32,
    _reservation: Reservation,
}

impl Dbuf {
    fn has_geometry(&self) -> bool {
        self.width != 0
    }

    fn pitch(&self) -> u64 {
        (u64::from(self.width) * u64::from(self.bpp)).div_ceil(8)
    }
}

/// A framebuffer (a dbuf with a pixel format).
#[derive(Clone, Copy)]
struct Framebuffer {
    dbuf_cookie: u64,
    width: u32,
    height: u32,
    format: PixelFormat,
    pitch: u64,
}

/// What a connector shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scanout {
    fb_cookie: u64,
    width: u32,
    height: u32,
}

/// A frame that became visible and is captured later (see [`Connection::serve_and_capture`]).
#[derive(Clone, Copy)]
struct PendingCapture {
    kind: &'static str,
    arrival_ns: u64,
}

/// A frame-done event waiting for its vblank or for space in the event page.
struct PendingEvent {
    fb_cookie: u64,
    due_ns: u64,
}

struct Connector {
    config: ConnectorConfig,
    requests: RequestRing,
    events: EventRing,
    req_port: EvtchnPort,
    evt_port: EvtchnPort,
    scanout: Option<Scanout>,
    pacer: Pacer,
    next_event_id: u16,
    pending: VecDeque<PendingEvent>,
    stalled_since: Option<u64>,
    next_frame: u64,
    /// The frame shown since the last SET_CONFIG/PG_FLIP, not yet captured.
    pending_capture: Option<PendingCapture>,
    last_flip_ns: Option<u64>,
    flip_intervals: Vec<u64>,
    flip_service_ns: Vec<u64>,
    capture_ns: Vec<u64>,
    stats: ConnectorStats,
    recorder: Recorder,
    _reservation: Reservation,
}

fn frame_view<'a>(
    framebuffers: &BTreeMap<u64, Framebuffer>,
    dbufs: &'a BTreeMap<u64, Dbuf>,
    scanout: Scanout,
) -> Option<FrameView<'a>> {
    let fb = framebuffers.get(&scanout.fb_cookie)?;
    let dbuf = dbufs.get(&fb.dbuf_cookie)?;
    Some(FrameView {
        memory: dbuf.memory.as_ref(),
        data_ofs: dbuf.data_ofs as usize,
        pitch: fb.pitch as usize,
        format: fb.format,
        width: scanout.width,
        height: scanout.height,
    })
}

/// Why a connection must end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// The frontend corrupted a shared ring.
    Corruption {
        /// Connector whose page is corrupt.
        connector: u32,
        /// What was seen.
        what: RingCorruption,
    },
    /// The host failed us (event channel notify etc.).
    Host(String),
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fatal::Corruption { connector, what } => {
                write!(f, "connector {connector}: rule {}: {what}", what.rule())
            }
            Fatal::Host(e) => write!(f, "host error: {e}"),
        }
    }
}

/// Outcome of one successful request.
#[derive(Default)]
struct Done {
    edid_sz: u32,
}

/// A connected frontend.
pub struct Connection {
    domid: DomId,
    device: String,
    version: u32,
    is_be_alloc: bool,
    started_ns: u64,
    connectors: Vec<Connector>,
    dbufs: BTreeMap<u64, Dbuf>,
    framebuffers: BTreeMap<u64, Framebuffer>,
    budget: Arc<Budget>,
    settings: Arc<Settings>,
    /// The `stale-slot-bytes` warning was logged on this connection.
    stale_slot_logged: bool,
}

impl Connection {
    /// Map every connector's pages and bind its channels. On error everything
    /// already set up is released again.
    pub fn open(
        domid: DomId,
        device: &str,
        session: u32,
        config: &FrontendConfig,
        settings: Arc<Settings>,
        budget: Arc<Budget>,
        platform: &mut Platform,
    ) -> Result<Connection, String> {
        let started_ns = platform.now_ns();
        let mut connection = Connection {
            domid,
            device: device.to_string(),
            version: config.version,
            is_be_alloc: config.be_alloc,
            started_ns,
            connectors: Vec::new(),
            dbufs: BTreeMap::new(),
            framebuffers: BTreeMap::new(),
            budget,
            settings,
            stale_slot_logged: false,
        };
        for cc in &config.connectors {
            match connection.open_connector(cc, session, platform) {
                Ok(c) => connection.connectors.push(c),
                Err(e) => {
                    connection.close(platform, "connect failed");
                    return Err(format!("connector {}: {e}", cc.index));
                }
            }
        }
        log::info!(
            "dom{}/{}: connected, protocol v{}, be-alloc {}, {} connector(s): {}",
            domid,
            device,
            config.version,
            if config.be_alloc { "on" } else { "off" },
            config.connectors.len(),
            config
                .connectors
                .iter()
                .map(|c| format!("{}:{}x{} '{}'", c.index, c.width, c.height, c.unique_id))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(connection)
    }

    fn open_connector(
        &self,
        cc: &ConnectorConfig,
        session: u32,
        platform: &mut Platform,
    ) -> Result<Connector, String> {
        let reservation = self
            .budget
            .reserve(0, 2 * PAGE_SIZE as u64, 2)
            .map_err(|rule| format!("ring pages: cap {rule}"))?;
        let req_page = platform
            .mapper
            .map(self.domid, &[cc.req_ring_ref], true)
            .map_err(|e| format!("mapping req-ring-ref {}: {e}", cc.req_ring_ref))?;
        let evt_page = platform
            .mapper
            .map(self.domid, &[cc.evt_ring_ref], true)
            .map_err(|e| format!("mapping evt-ring-ref {}: {e}", cc.evt_ring_ref))?;
        let events = EventRing::attach(evt_page).map_err(|e| format!("event page: {e}"))?;
        match events.unconsumed() {
            Ok(0) => {}
            Ok(n) => log::warn!(
                "dom{}/{}/c{}: event page starts with {n} unread entries before in_prod {}; \
                 continuing after them, never overwriting them",
                self.domid,
                self.device,
                cc.index,
                events.in_prod()
            ),
            Err(e) => return Err(format!("event page: {e}")),
        }
        let requests = RequestRing::attach(req_page);
        let req_port = platform
            .evtchn
            .bind(self.domid, cc.req_port)
            .map_err(|e| format!("binding req-event-channel {}: {e}", cc.req_port))?;
        let evt_port = match platform.evtchn.bind(self.domid, cc.evt_port) {
            Ok(p) => p,
            Err(e) => {
                let _ = platform.evtchn.unbind(req_port);
                return Err(format!("binding evt-event-channel {}: {e}", cc.evt_port));
            }
        };
        let stats = ConnectorStats {
            domid: self.domid.0,
            device: self.device.clone(),
            connector: cc.index,
            unique_id: cc.unique_id.clone(),
            resolution: format!("{}x{}", cc.width, cc.height),
            refresh: self.settings.refresh.to_string(),
            protocol_version: self.version,
            ..ConnectorStats::default()
        };
        let policy = self
            .settings
            .capture_policy(self.domid.0, &self.device, cc.index, session);
        Ok(Connector {
            config: cc.clone(),
            requests,
            events,
            req_port,
            evt_port,
            scanout: None,
            pacer: Pacer::new(self.settings.refresh, self.started_ns),
            next_event_id: 0,
            pending: VecDeque::new(),
            stalled_since: None,
            next_frame: 0,
            pending_capture: None,
            last_flip_ns: None,
            flip_intervals: Vec::new(),
            flip_service_ns: Vec::new(),
            capture_ns: Vec::new(),
            stats,
            recorder: Recorder::new(policy),
            _reservation: reservation,
        })
    }

    /// Local ports to wait on.
    pub fn ports(&self) -> Vec<EvtchnPort> {
        self.connectors
            .iter()
            .flat_map(|c| [c.req_port, c.evt_port])
            .collect()
    }

    /// The earliest time [`Connection::on_timer`] has work (a stalled event page
    /// is re-checked every `event_retry_ns` after `now_ns`).
    pub fn next_deadline_ns(&self, now_ns: u64) -> Option<u64> {
        self.connectors
            .iter()
            .filter_map(|c| match c.stalled_since {
                Some(_) => Some(now_ns + self.settings.event_retry_ns),
                None => c.pending.front().map(|e| e.due_ns),
            })
            .min()
    }

    /// Whether some connector waits for space in its event page.
    pub fn is_stalled(&self) -> bool {
        self.connectors.iter().any(|c| c.stalled_since.is_some())
    }

    /// `port` fired: serve the requests of the connector it belongs to.
    pub fn on_port(&mut self, port: EvtchnPort, platform: &mut Platform) -> Result<(), Fatal> {
        let Some(index) = self.connectors.iter().position(|c| c.req_port == port) else {
            // The event channel of an event page: the frontend consumed events.
            if let Some(index) = self.connectors.iter().position(|c| c.evt_port == port) {
                return self.flush_events(index, platform);
            }
            return Ok(());
        };
        self.serve_counted(index, platform)
    }

    fn serve_counted(&mut self, index: usize, platform: &mut Platform) -> Result<(), Fatal> {
        let cpu_before = (platform.thread_cpu_ns)();
        let result = self.serve_ring(index, platform);
        self.connectors[index].stats.cpu_ns +=
            (platform.thread_cpu_ns)().saturating_sub(cpu_before);
        result
    }

    /// Capture the frames shown but not yet captured, one connector at a
    /// time; before each, serve any ring the frontend put requests on
    /// meanwhile (its kick is still pending, but need not wait behind a
    /// checksum). Called once the fired ports have been served.
    pub fn serve_and_capture(&mut self, platform: &mut Platform) -> Result<(), Fatal> {
        for _ in 0..self.settings.max_capture_rounds.max(1) {
            for index in 0..self.connectors.len() {
                if self.connectors[index].requests.has_requests() {
                    self.serve_counted(index, platform)?;
                }
            }
            let Some(index) = self
                .connectors
                .iter()
                .position(|c| c.pending_capture.is_some())
            else {
                return Ok(());
            };
            self.capture_connector(index, platform);
        }
        // Still more: left for the loop's next turn (`has_backlog`).
        Ok(())
    }

    /// Publish due frame-done events on every connector.
    pub fn on_timer(&mut self, platform: &mut Platform) -> Result<(), Fatal> {
        for index in 0..self.connectors.len() {
            if self.connectors[index].pending.is_empty() {
                // Nothing to publish: no CPU-time reads either.
                continue;
            }
            let cpu_before = (platform.thread_cpu_ns)();
            let result = self.flush_events(index, platform);
            self.connectors[index].stats.cpu_ns +=
                (platform.thread_cpu_ns)().saturating_sub(cpu_before);
            result?;
        }
        Ok(())
    }

    fn serve_ring(&mut self, index: usize, platform: &mut Platform) -> Result<(), Fatal> {
        let corrupt = |what| Fatal::Corruption {
            connector: index as u32,
            what,
        };
        let mut served = 0;
        loop {
            while let Some(taken) = self.connectors[index]
                .requests
                .take_request()
                .map_err(corrupt)?
            {
                let arrival_ns = platform.now_ns();
                let packet = taken.packet;
                let (id, operation) = Request::header(&packet);
                let decoded = match reserved::check(&packet, taken.previous_response.as_ref()) {
                    Reserved::NotZero { offset } => Err(PacketError::ReservedNotZero { offset }),
                    Reserved::StaleSlot { offsets } => {
                        self.note_stale_slot(index, id, operation, &offsets);
                        Request::decode_ignoring_reserved(&packet)
                    }
                    Reserved::Clean => Request::decode_ignoring_reserved(&packet),
                };
                let result = match decoded {
                    Err(PacketError::UnknownOperation(op)) => Err(Violation::new(
                        Rule::UnknownOperation,
                        format!("operation {op:#x}"),
                    )),
                    Err(PacketError::ReservedNotZero { offset }) => Err(Violation::new(
                        Rule::ReservedNotZero,
                        format!("reserved byte {offset} is not zero"),
                    )),
                    Err(other) => Err(Violation::new(Rule::ReservedNotZero, other.to_string())),
                    Ok((_, request)) => {
                        // What is on screen is captured before a request can
                        // change or free it.
                        match request {
                            Request::PageFlip(_) | Request::SetConfig(_) => {
                                self.capture_connector(index, platform)
                            }
                            Request::FbDetach(_) | Request::DbufDestroy(_) => {
                                self.capture_pending(platform)
                            }
                            _ => {}
                        }
                        let result = self.execute(index, request, arrival_ns, platform);
                        if operation == XENDISPL_OP_PG_FLIP && result.is_ok() {
                            self.connectors[index]
                                .flip_service_ns
                                .push(platform.now_ns().saturating_sub(arrival_ns));
                        }
                        result
                    }
                };
                let connector = &mut self.connectors[index];
                connector.stats.requests += 1;
                let (status, edid_sz) = match result {
                    Ok(done) => (0, done.edid_sz),
                    Err(v) => {
                        *connector
                            .stats
                            .errors_by_rule
                            .entry(v.rule.name())
                            .or_insert(0) += 1;
                        log::warn!(
                            "dom{}/{}/c{}: {} id {}: rule {}: {} -> status {}",
                            self.domid,
                            self.device,
                            index,
                            operation_name(operation),
                            id,
                            v.rule,
                            v.detail,
                            v.rule.status()
                        );
                        (v.rule.status(), 0)
                    }
                };
                connector.requests.push_response(
                    &Response {
                        id,
                        operation,
                        status,
                        edid_sz,
                    }
                    .encode(),
                );
                let notify = connector.requests.publish_responses().notify;
                // The response is published first; a due frame-done (refresh off)
                // follows at once, and both are in shared memory before either
                // kick, so the frontend woken by one finds the other too (one
                // wake-up instead of two: each costs milliseconds under TCG).
                self.flush_events(index, platform)?;
                if notify {
                    platform
                        .evtchn
                        .notify(self.connectors[index].req_port)
                        .map_err(|e| Fatal::Host(format!("notify req channel: {e}")))?;
                }
                served += 1;
                if served >= self.settings.max_requests_per_serve.max(1) {
                    // A frontend that never stops producing must not keep this
                    // thread from its other work (xenstore, stop): the rest is
                    // backlog (`has_backlog`), served on the loop's next turn.
                    return Ok(());
                }
            }
            if !self.connectors[index]
                .requests
                .final_check_for_requests()
                .map_err(corrupt)?
            {
                return Ok(());
            }
        }
    }

    /// Whether requests or shown frames wait (after `max_requests_per_serve`
    /// requests or `max_capture_rounds` rounds (`Settings`) the backend returns to its
    /// loop; the frontend will not kick again for requests already queued,
    /// so the loop must come back by itself: [`Connection::serve_and_capture`]).
    pub fn has_backlog(&self) -> bool {
        self.connectors
            .iter()
            .any(|c| c.requests.has_requests() || c.pending_capture.is_some())
    }

    /// Count (and log once per connection) a request accepted although its
    /// reserved bytes are our previous response's stale bytes.
    fn note_stale_slot(&mut self, index: usize, id: u16, operation: u8, offsets: &[usize]) {
        let warning = Warning::StaleSlotBytes;
        *self.connectors[index]
            .stats
            .warnings_by_rule
            .entry(warning.name())
            .or_insert(0) += 1;
        let line = format!(
            "dom{}/{}/c{index}: {} id {id}: rule {warning} (warning): reserved bytes {offsets:?} \
             still hold our previous response in this ring slot; request accepted",
            self.domid,
            self.device,
            operation_name(operation),
        );
        if self.stale_slot_logged {
            log::debug!("{line}");
        } else {
            self.stale_slot_logged = true;
            log::warn!("{line} (logged once per connection; counted in warnings_by_rule)");
        }
    }

    fn flush_events(&mut self, index: usize, platform: &mut Platform) -> Result<(), Fatal> {
        if self.connectors[index].pending.is_empty() {
            // No clock read (a system call, ~55 us in a PV dom0 under TCG):
            // this runs after every request.
            return Ok(());
        }
        let now = platform.now_ns();
        let domid = self.domid;
        let connector = &mut self.connectors[index];
        let mut sent = false;
        while let Some(event) = connector.pending.front() {
            if event.due_ns > now {
                break;
            }
            let packet = Event {
                id: connector.next_event_id,
                fb_cookie: event.fb_cookie,
            }
            .encode();
            let pushed = connector
                .events
                .push(&packet)
                .map_err(|what| Fatal::Corruption {
                    connector: index as u32,
                    what,
                })?;
            if pushed != Push::Written {
                if connector.stalled_since.is_none() {
                    connector.stalled_since = Some(now);
                    connector.stats.event_page_stalls += 1;
                    let why = if pushed == Push::Full {
                        "event page full"
                    } else {
                        connector.stats.event_wrap_stalls += 1;
                        "next event slot unread across the u32 index wrap"
                    };
                    log::warn!(
                        "dom{}/{}/c{}: {why}, holding frame-done {} until the frontend consumes",
                        domid,
                        self.device,
                        index,
                        connector.next_event_id
                    );
                }
                break;
            }
            if let Some(since) = connector.stalled_since.take() {
                connector.stats.event_stall_ns += now - since;
            }
            if now.saturating_sub(event.due_ns) > LATE_THRESHOLD_NS {
                connector.stats.late_events += 1;
            }
            connector.next_event_id = connector.next_event_id.wrapping_add(1);
            connector.stats.frame_done_sent += 1;
            connector.pending.pop_front();
            sent = true;
        }
        if sent {
            platform
                .evtchn
                .notify(connector.evt_port)
                .map_err(|e| Fatal::Host(format!("notify evt channel: {e}")))?;
        }
        Ok(())
    }

    fn execute(
        &mut self,
        index: usize,
        request: Request,
        arrival_ns: u64,
        platform: &mut Platform,
    ) -> Result<Done, Violation> {
        let on_ring_0 = |what: &str| {
            if index == 0 {
                Ok(())
            } else {
                Err(Violation::new(
                    Rule::WrongRing,
                    format!("{what} must be sent on connector 0's ring, came on {index}"),
                ))
            }
        };
        match request {
            Request::DbufCreate(r) => {
                on_ring_0("DBUF_CREATE")?;
                let done = self.dbuf_create(&r, platform)?;
                let stats = &mut self.connectors[index].stats;
                stats.dbufs_created += 1;
                if r.flags & XENDISPL_DBUF_FLG_REQ_ALLOC != 0 {
                    stats.dbufs_backend_allocated += 1;
                }
                Ok(done)
            }
            Request::DbufDestroy(r) => {
                on_ring_0("DBUF_DESTROY")?;
                self.dbuf_destroy(r.dbuf_cookie)
            }
            Request::FbAttach(r) => {
                on_ring_0("FB_ATTACH")?;
                self.fb_attach(&r)
            }
            Request::FbDetach(r) => {
                on_ring_0("FB_DETACH")?;
                self.fb_detach(r.fb_cookie)
            }
            Request::SetConfig(r) => self.set_config(index, &r, arrival_ns),
            Request::PageFlip(r) => self.page_flip(index, r.fb_cookie, arrival_ns),
            Request::GetEdid(r) => self.get_edid(index, &r, platform),
        }
    }

    /// Walk a page directory of `nr_grefs` entries starting at `first`; returns the
    /// data grefs and, if `keep_pages`, the mapped directory pages.
    fn read_directory(
        &self,
        first: u32,
        nr_grefs: usize,
        keep_pages: bool,
        platform: &mut Platform,
    ) -> Result<Directory, Violation> {
        if first == 0 {
            return Err(Violation::new(Rule::GrefZero, "gref_directory is 0"));
        }
        let nr_pages = nr_grefs.div_ceil(XENDISPL_PGDIR_GREFS_PER_PAGE);
        let mut refs = Vec::with_capacity(nr_grefs);
        let mut pages = Vec::new();
        let mut current = first;
        for page_index in 0..nr_pages {
            let page = platform
                .mapper
                .map(self.domid, &[GrantRef(current)], keep_pages)
                .map_err(|e| {
                    Violation::new(
                        Rule::GrantMapFailed,
                        format!("directory page {page_index} (gref {current}): {e}"),
                    )
                })?;
            let word = |offset: usize| read_u32(page.as_ref(), offset).unwrap_or(0);
            let next = word(XENDISPL_PGDIR_NEXT_OFFSET);
            let in_page = (nr_grefs - refs.len()).min(XENDISPL_PGDIR_GREFS_PER_PAGE);
            if !keep_pages {
                for i in 0..in_page {
                    let gref = word(XENDISPL_PGDIR_GREFS_OFFSET + 4 * i);
                    if gref == 0 {
                        return Err(Violation::new(
                            Rule::GrefZero,
                            format!(
                                "directory entry {} of the {nr_grefs} buffer_sz needs is 0",
                                refs.len()
                            ),
                        ));
                    }
                    refs.push(GrantRef(gref));
                }
            } else {
                refs.extend(std::iter::repeat_n(GrantRef(0), in_page));
            }
            let is_last = page_index + 1 == nr_pages;
            if is_last && next != 0 {
                return Err(Violation::new(
                    Rule::GrefCountMismatch,
                    format!("directory continues (next {next}) after the {nr_pages} page(s) {nr_grefs} grants need"),
                ));
            }
            if !is_last && next == 0 {
                return Err(Violation::new(
                    Rule::GrefCountMismatch,
                    format!(
                        "directory ends after {} page(s); {nr_grefs} grants need {nr_pages}",
                        page_index + 1
                    ),
                ));
            }
            if keep_pages {
                pages.push(page);
            }
            current = next;
        }
        Ok((refs, pages))
    }

    fn dbuf_create(
        &mut self,
        r: &DbufCreateReq,
        platform: &mut Platform,
    ) -> Result<Done, Violation> {
        if r.dbuf_cookie == 0 {
            return Err(Violation::new(Rule::CookieZero, "dbuf_cookie is 0"));
        }
        if r.flags & !XENDISPL_DBUF_FLG_REQ_ALLOC != 0 {
            return Err(Violation::new(
                Rule::ReservedNotZero,
                format!("unknown flags {:#x}", r.flags),
            ));
        }
        if self.version < 2 && r.data_ofs != 0 {
            return Err(Violation::new(
                Rule::ReservedNotZero,
                "data_ofs is reserved in protocol v1",
            ));
        }
        if self.dbufs.contains_key(&r.dbuf_cookie) {
            return Err(Violation::new(
                Rule::DuplicateCookie,
                format!("dbuf {:#x} exists", r.dbuf_cookie),
            ));
        }
        let is_req_alloc = r.flags & XENDISPL_DBUF_FLG_REQ_ALLOC != 0;
        if r.buffer_sz == 0 {
            return Err(Violation::new(Rule::ZeroSize, "buffer_sz is 0"));
        }
        if u64::from(r.buffer_sz) > MAX_BUFFER_BYTES {
            return Err(Violation::new(
                Rule::BufferSizeOverflow,
                format!("buffer_sz {} > {MAX_BUFFER_BYTES}", r.buffer_sz),
            ));
        }
        if r.data_ofs >= r.buffer_sz {
            return Err(Violation::new(
                Rule::BufferTooSmall,
                format!("data_ofs {} >= buffer_sz {}", r.data_ofs, r.buffer_sz),
            ));
        }
        let has_geometry = !(r.width == 0 && r.height == 0 && r.bpp == 0);
        if has_geometry {
            if r.width == 0 || r.height == 0 {
                return Err(Violation::new(
                    Rule::ZeroSize,
                    format!("{}x{}", r.width, r.height),
                ));
            }
            if ![8, 16, 24, 32].contains(&r.bpp) {
                return Err(Violation::new(Rule::BadBpp, format!("bpp {}", r.bpp)));
            }
            let pitch = (u64::from(r.width) * u64::from(r.bpp)).div_ceil(8);
            let need = pitch
                .checked_mul(u64::from(r.height))
                .and_then(|n| n.checked_add(u64::from(r.data_ofs)))
                .ok_or_else(|| {
                    Violation::new(Rule::BufferSizeOverflow, "size arithmetic overflows")
                })?;
            if need > u64::from(r.buffer_sz) {
                return Err(Violation::new(
                    Rule::BufferTooSmall,
                    format!(
                        "{}x{}x{}bpp at data_ofs {} needs {need} bytes, buffer_sz is {}",
                        r.width, r.height, r.bpp, r.data_ofs, r.buffer_sz
                    ),
                ));
            }
        } else if is_req_alloc {
            return Err(Violation::new(
                Rule::ZeroSize,
                "REQ_ALLOC needs width, height and bpp",
            ));
        }
        if is_req_alloc && !self.is_be_alloc {
            return Err(Violation::new(
                Rule::BackendAllocNotAllowed,
                "REQ_ALLOC without be-alloc = 1",
            ));
        }
        if is_req_alloc && r.data_ofs != 0 {
            return Err(Violation::new(
                Rule::BackendAllocNotAllowed,
                "REQ_ALLOC with data_ofs != 0",
            ));
        }
        let nr_grefs = (r.buffer_sz as usize).div_ceil(PAGE_SIZE);
        let reservation = self
            .budget
            .reserve(1, (nr_grefs * PAGE_SIZE) as u64, nr_grefs as u64)
            .map_err(|rule| {
                let (b, m, g) = self.budget.in_use();
                Violation::new(rule, format!("{nr_grefs} pages requested; guest holds {b} buffers, {m} bytes, {g} grants"))
            })?;
        let (refs, directory) =
            self.read_directory(r.gref_directory, nr_grefs, is_req_alloc, platform)?;
        let memory = if is_req_alloc {
            let allocated = platform
                .allocator
                .alloc(self.domid, nr_grefs)
                .map_err(|e| {
                    Violation::new(Rule::BackendAllocFailed, format!("{nr_grefs} pages: {e}"))
                })?;
            for (i, gref) in allocated.refs.iter().enumerate() {
                let page = &directory[i / XENDISPL_PGDIR_GREFS_PER_PAGE];
                let offset = XENDISPL_PGDIR_GREFS_OFFSET + 4 * (i % XENDISPL_PGDIR_GREFS_PER_PAGE);
                write_words(page.as_ref(), offset, &gref.0.to_le_bytes()).map_err(|_| {
                    Violation::new(Rule::BackendAllocFailed, "directory write out of range")
                })?;
            }
            allocated.memory
        } else {
            platform.mapper.map(self.domid, &refs, false).map_err(|e| {
                Violation::new(
                    Rule::GrantMapFailed,
                    format!("{} buffer grants: {e}", refs.len()),
                )
            })?
        };
        drop(directory);
        self.dbufs.insert(
            r.dbuf_cookie,
            Dbuf {
                width: r.width,
                height: r.height,
                bpp: r.bpp,
                buffer_sz: r.buffer_sz,
                data_ofs: r.data_ofs,
                memory,
                is_backend_allocated: is_req_alloc,
                nr_framebuffers: 0,
                _reservation: reservation,
            },
        );
        log::debug!(
            "dom{}/{}: dbuf {:#x} {}x{}x{} {} bytes ({})",
            self.domid,
            self.device,
            r.dbuf_cookie,
            r.width,
            r.height,
            r.bpp,
            r.buffer_sz,
            if is_req_alloc {
                "backend-allocated"
            } else {
                "frontend grants"
            }
        );
        Ok(Done::default())
    }

    fn dbuf_destroy(&mut self, cookie: u64) -> Result<Done, Violation> {
        if cookie == 0 {
            return Err(Violation::new(Rule::CookieZero, "dbuf_cookie is 0"));
        }
        let dbuf = self
            .dbufs
            .get(&cookie)
            .ok_or_else(|| Violation::new(Rule::UnknownCookie, format!("dbuf {cookie:#x}")))?;
        if dbuf.nr_framebuffers > 0 {
            return Err(Violation::new(
                Rule::BufferInUse,
                format!(
                    "dbuf {cookie:#x} still has {} framebuffer(s) attached",
                    dbuf.nr_framebuffers
                ),
            ));
        }
        let dbuf = self.dbufs.remove(&cookie);
        if let Some(d) = &dbuf {
            log::debug!(
                "dom{}/{}: dbuf {cookie:#x} destroyed (backend-allocated: {})",
                self.domid,
                self.device,
                d.is_backend_allocated
            );
        }
        Ok(Done::default())
    }

    fn fb_attach(&mut self, r: &FbAttachReq) -> Result<Done, Violation> {
        if r.fb_cookie == 0 || r.dbuf_cookie == 0 {
            return Err(Violation::new(
                Rule::CookieZero,
                format!("dbuf {:#x}, fb {:#x}", r.dbuf_cookie, r.fb_cookie),
            ));
        }
        if self.framebuffers.contains_key(&r.fb_cookie) {
            return Err(Violation::new(
                Rule::DuplicateCookie,
                format!("fb {:#x} exists", r.fb_cookie),
            ));
        }
        let dbuf = self.dbufs.get_mut(&r.dbuf_cookie).ok_or_else(|| {
            Violation::new(Rule::UnknownCookie, format!("dbuf {:#x}", r.dbuf_cookie))
        })?;
        let format = PixelFormat::from_fourcc(r.pixel_format).ok_or_else(|| {
            let text: String = r
                .pixel_format
                .to_le_bytes()
                .iter()
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
                .collect();
            Violation::new(
                Rule::UnsupportedPixelFormat,
                format!("fourcc {:#010x} '{text}'", r.pixel_format),
            )
        })?;
        if r.width == 0 || r.height == 0 {
            return Err(Violation::new(
                Rule::ZeroSize,
                format!("{}x{}", r.width, r.height),
            ));
        }
        let pitch = if dbuf.has_geometry() {
            if format.bpp() != dbuf.bpp {
                return Err(Violation::new(
                    Rule::BadBpp,
                    format!("format has {} bpp, dbuf {}", format.bpp(), dbuf.bpp),
                ));
            }
            if r.width > dbuf.width || r.height > dbuf.height {
                return Err(Violation::new(
                    Rule::BufferTooSmall,
                    format!(
                        "fb {}x{} on a {}x{} dbuf",
                        r.width, r.height, dbuf.width, dbuf.height
                    ),
                ));
            }
            dbuf.pitch()
        } else {
            u64::from(r.width) * format.bytes_per_pixel() as u64
        };
        let need = u64::from(dbuf.data_ofs)
            + pitch * u64::from(r.height - 1)
            + u64::from(r.width) * format.bytes_per_pixel() as u64;
        if need > u64::from(dbuf.buffer_sz) {
            return Err(Violation::new(
                Rule::BufferTooSmall,
                format!("fb needs {need} bytes, buffer_sz is {}", dbuf.buffer_sz),
            ));
        }
        dbuf.nr_framebuffers += 1;
        self.framebuffers.insert(
            r.fb_cookie,
            Framebuffer {
                dbuf_cookie: r.dbuf_cookie,
                width: r.width,
                height: r.height,
                format,
                pitch,
            },
        );
        Ok(Done::default())
    }

    fn fb_detach(&mut self, cookie: u64) -> Result<Done, Violation> {
        if cookie == 0 {
            return Err(Violation::new(Rule::CookieZero, "fb_cookie is 0"));
        }
        if !self.framebuffers.contains_key(&cookie) {
            return Err(Violation::new(
                Rule::UnknownCookie,
                format!("fb {cookie:#x}"),
            ));
        }
        for index in 0..self.connectors.len() {
            if self.connectors[index]
                .scanout
                .is_some_and(|s| s.fb_cookie == cookie)
            {
                log::warn!(
                    "dom{}/{}/c{index}: fb {cookie:#x} detached while shown; connector blanked",
                    self.domid,
                    self.device
                );
                self.snapshot_final(index);
                self.connectors[index].scanout = None;
            }
        }
        if let Some(fb) = self.framebuffers.remove(&cookie) {
            if let Some(dbuf) = self.dbufs.get_mut(&fb.dbuf_cookie) {
                dbuf.nr_framebuffers -= 1;
            }
        }
        Ok(Done::default())
    }

    /// Write `final.png` of what connector `index` shows now (if asked for).
    fn snapshot_final(&mut self, index: usize) {
        let Connection {
            connectors,
            framebuffers,
            dbufs,
            ..
        } = self;
        let connector = &mut connectors[index];
        let view = connector
            .scanout
            .and_then(|s| frame_view(framebuffers, dbufs, s));
        connector.recorder.on_end(view.as_ref());
    }

    fn set_config(
        &mut self,
        index: usize,
        r: &SetConfigReq,
        arrival_ns: u64,
    ) -> Result<Done, Violation> {
        if *r == SetConfigReq::default() {
            self.snapshot_final(index);
            let connector = &mut self.connectors[index];
            connector.scanout = None;
            connector.stats.set_configs += 1;
            log::info!(
                "dom{}/{}/c{index}: display disabled (SET_CONFIG reset)",
                self.domid,
                self.device
            );
            return Ok(Done::default());
        }
        if r.fb_cookie == 0 {
            return Err(Violation::new(
                Rule::CookieZero,
                "fb_cookie is 0 but other fields are not (not a reset)",
            ));
        }
        let fb = *self
            .framebuffers
            .get(&r.fb_cookie)
            .ok_or_else(|| Violation::new(Rule::UnknownCookie, format!("fb {:#x}", r.fb_cookie)))?;
        if r.width == 0 || r.height == 0 {
            return Err(Violation::new(
                Rule::ZeroSize,
                format!("{}x{}", r.width, r.height),
            ));
        }
        let cc = &self.connectors[index].config;
        if u64::from(r.x) + u64::from(r.width) > u64::from(cc.width)
            || u64::from(r.y) + u64::from(r.height) > u64::from(cc.height)
        {
            return Err(Violation::new(
                Rule::OutsideConnector,
                format!(
                    "{}x{}+{}+{} on a {}x{} connector",
                    r.width, r.height, r.x, r.y, cc.width, cc.height
                ),
            ));
        }
        if r.bpp != fb.format.bpp() {
            return Err(Violation::new(
                Rule::BadBpp,
                format!(
                    "bpp {} but fb {:#x} has {}",
                    r.bpp,
                    r.fb_cookie,
                    fb.format.bpp()
                ),
            ));
        }
        if r.width > fb.width || r.height > fb.height {
            return Err(Violation::new(
                Rule::OutsideFramebuffer,
                format!(
                    "{}x{} visible, fb {:#x} is {}x{}",
                    r.width, r.height, r.fb_cookie, fb.width, fb.height
                ),
            ));
        }
        let scanout = Scanout {
            fb_cookie: r.fb_cookie,
            width: r.width,
            height: r.height,
        };
        self.connectors[index].scanout = Some(scanout);
        self.connectors[index].stats.set_configs += 1;
        self.defer_capture(index, "config", arrival_ns);
        Ok(Done::default())
    }

    fn page_flip(&mut self, index: usize, cookie: u64, arrival_ns: u64) -> Result<Done, Violation> {
        if cookie == 0 {
            return Err(Violation::new(Rule::CookieZero, "fb_cookie is 0"));
        }
        let fb = *self
            .framebuffers
            .get(&cookie)
            .ok_or_else(|| Violation::new(Rule::UnknownCookie, format!("fb {cookie:#x}")))?;
        let connector = &mut self.connectors[index];
        let Some(scanout) = connector.scanout else {
            return Err(Violation::new(
                Rule::NotConfigured,
                "PG_FLIP before SET_CONFIG",
            ));
        };
        if fb.width < scanout.width || fb.height < scanout.height {
            return Err(Violation::new(
                Rule::OutsideFramebuffer,
                format!(
                    "fb {cookie:#x} is {}x{}, visible area {}x{}",
                    fb.width, fb.height, scanout.width, scanout.height
                ),
            ));
        }
        connector.scanout = Some(Scanout {
            fb_cookie: cookie,
            ..scanout
        });
        connector.stats.flips += 1;
        if let Some(last) = connector.last_flip_ns.replace(arrival_ns) {
            connector
                .flip_intervals
                .push(arrival_ns.saturating_sub(last));
        }
        let due = connector.pacer.schedule(arrival_ns);
        connector.stats.missed_vblanks += due.missed_vblanks;
        connector.pending.push_back(PendingEvent {
            fb_cookie: cookie,
            due_ns: due.at_ns,
        });
        self.defer_capture(index, "flip", arrival_ns);
        Ok(Done::default())
    }

    fn get_edid(
        &mut self,
        index: usize,
        r: &GetEdidReq,
        platform: &mut Platform,
    ) -> Result<Done, Violation> {
        if self.version < 2 {
            return Err(Violation::new(
                Rule::NeedsVersion2,
                "GET_EDID is a protocol v2 request; v1 was negotiated",
            ));
        }
        if r.buffer_sz < XENDISPL_EDID_MAX_SIZE {
            return Err(Violation::new(
                Rule::EdidBufferTooSmall,
                format!("buffer_sz {} < {XENDISPL_EDID_MAX_SIZE}", r.buffer_sz),
            ));
        }
        if r.buffer_sz > MAX_EDID_BUFFER_BYTES {
            return Err(Violation::new(
                Rule::BufferSizeOverflow,
                format!("buffer_sz {} > {MAX_EDID_BUFFER_BYTES}", r.buffer_sz),
            ));
        }
        let cc = &self.connectors[index].config;
        let edid = crate::edid::build(
            cc.width,
            cc.height,
            self.settings.refresh.whole_hz(),
            &cc.unique_id,
        )
        .map_err(|_| {
            Violation::new(
                Rule::EdidUnrepresentable,
                format!("{}x{}", cc.width, cc.height),
            )
        })?;
        let nr_grefs = (r.buffer_sz as usize).div_ceil(PAGE_SIZE);
        let _reservation = self
            .budget
            .reserve(0, (nr_grefs * PAGE_SIZE) as u64, nr_grefs as u64)
            .map_err(|rule| Violation::new(rule, format!("EDID buffer of {nr_grefs} pages")))?;
        let (refs, _) = self.read_directory(r.gref_directory, nr_grefs, false, platform)?;
        let memory = platform
            .mapper
            .map(self.domid, &refs[..1], true)
            .map_err(|e| Violation::new(Rule::GrantMapFailed, format!("EDID buffer: {e}")))?;
        write_words(memory.as_ref(), 0, &edid)
            .map_err(|_| Violation::new(Rule::GrantMapFailed, "EDID buffer too small"))?;
        log::info!(
            "dom{}/{}/c{index}: EDID for {}x{} returned",
            self.domid,
            self.device,
            cc.width,
            cc.height
        );
        Ok(Done {
            edid_sz: edid.len() as u32,
        })
    }

    /// Note that connector `index` shows a new frame. It is captured by
    /// [`Connection::serve_and_capture`] once every ring has been served, or
    /// before the next request that could change or free it, whichever comes
    /// first: so frame-done events and other connectors' responses do not wait
    /// for checksums, and the checksum overlaps the frontend drawing its next
    /// frame into the other buffer (the one that just left the screen).
    fn defer_capture(&mut self, index: usize, kind: &'static str, arrival_ns: u64) {
        let connector = &mut self.connectors[index];
        debug_assert!(connector.pending_capture.is_none());
        connector.pending_capture = Some(PendingCapture { kind, arrival_ns });
    }

    /// Capture every connector's frame that is shown but not yet captured.
    fn capture_pending(&mut self, platform: &mut Platform) {
        for index in 0..self.connectors.len() {
            self.capture_connector(index, platform);
        }
    }

    fn capture_connector(&mut self, index: usize, platform: &mut Platform) {
        let Some(pending) = self.connectors[index].pending_capture.take() else {
            return;
        };
        let (cpu_before, wall_before) = ((platform.thread_cpu_ns)(), platform.now_ns());
        let has_image = self.record_frame(index, pending.kind, pending.arrival_ns);
        let cpu = (platform.thread_cpu_ns)().saturating_sub(cpu_before);
        let connector = &mut self.connectors[index];
        connector.stats.cpu_ns += cpu;
        if !has_image {
            connector
                .capture_ns
                .push(platform.now_ns().saturating_sub(wall_before));
            connector.stats.plain_captures += 1;
            connector.stats.plain_capture_cpu_ns += cpu;
        }
    }

    /// Checksum (and maybe snapshot) what connector `index` shows; returns
    /// whether an image was taken of it.
    fn record_frame(&mut self, index: usize, kind: &'static str, arrival_ns: u64) -> bool {
        let Connection {
            connectors,
            framebuffers,
            dbufs,
            domid,
            device,
            started_ns,
            settings,
            ..
        } = self;
        let connector = &mut connectors[index];
        let Some(scanout) = connector.scanout else {
            return false;
        };
        let Some(view) = frame_view(framebuffers, dbufs, scanout) else {
            return false;
        };
        let frame = connector.next_frame;
        let since_start = arrival_ns.saturating_sub(*started_ns);
        let result =
            connector
                .recorder
                .on_frame(frame, kind, since_start, scanout.fb_cookie, &view);
        connector.next_frame += 1;
        connector.stats.frames += 1;
        let has_image = result.as_ref().is_ok_and(|r| r.has_image);
        match result {
            Ok(record) => {
                connector.stats.last_crc32 = Some(format!("{:08x}", record.crc32));
                let line = format!(
                    "dom{domid}/{device}/c{index}: frame {frame} {kind} fb {:#x} {}x{} at {:.3} ms crc32 {:08x}",
                    scanout.fb_cookie,
                    scanout.width,
                    scanout.height,
                    since_start as f64 / 1e6,
                    record.crc32
                );
                if settings.log_frames {
                    log::info!("{line}");
                } else {
                    log::debug!("{line}");
                }
            }
            Err(_) => {
                log::error!("dom{domid}/{device}/c{index}: frame {frame} lies outside its buffer")
            }
        }
        has_image
    }

    /// Release everything and write the capture/statistics files.
    pub fn close(mut self, platform: &mut Platform, reason: &str) {
        let now = platform.now_ns();
        {
            let Connection {
                connectors,
                framebuffers,
                dbufs,
                ..
            } = &mut self;
            for connector in connectors.iter_mut() {
                let view = connector
                    .scanout
                    .and_then(|s| frame_view(framebuffers, dbufs, s));
                connector.recorder.on_end(view.as_ref());
            }
        }
        for connector in &mut self.connectors {
            connector.recorder.finish();
            let stats = &mut connector.stats;
            stats.connected_ns = now.saturating_sub(self.started_ns);
            stats.flip_interval = Summary::of(&connector.flip_intervals);
            stats.flip_service = Summary::of(&connector.flip_service_ns);
            stats.capture = Summary::of(&connector.capture_ns);
            stats.cpu_ns_per_flip = (stats.flips > 0).then(|| stats.cpu_ns / stats.flips);
            stats.capture_cpu_ns = (stats.plain_captures > 0)
                .then(|| stats.plain_capture_cpu_ns / stats.plain_captures);
            stats.ended_by = reason.to_string();
            if !connector.pending.is_empty() {
                log::info!(
                    "dom{}/{}/c{}: {} frame-done event(s) not sent: connection ended",
                    self.domid,
                    self.device,
                    connector.config.index,
                    connector.pending.len()
                );
            }
            let json = serde_json::to_string_pretty(&stats).unwrap_or_default();
            log::info!(
                "dom{}/{}/c{}: closed ({reason}): {} frames, {} flips, {} frame-done, {} stalls, errors {:?}, warnings {:?}, cpu/flip {:?} ns ({:?} ns per flip request without snapshot)",
                self.domid,
                self.device,
                connector.config.index,
                stats.frames,
                stats.flips,
                stats.frame_done_sent,
                stats.event_page_stalls,
                stats.errors_by_rule,
                stats.warnings_by_rule,
                stats.cpu_ns_per_flip,
                stats.capture_cpu_ns
            );
            if let Some(dir) = connector.recorder.dir() {
                if let Err(e) = std::fs::write(dir.join("stats.json"), json + "\n") {
                    log::error!("writing {}/stats.json: {e}", dir.display());
                }
            }
            for port in [connector.req_port, connector.evt_port] {
                if let Err(e) = platform.evtchn.unbind(port) {
                    log::error!("unbinding port {port}: {e}");
                }
            }
        }
        // Dropping the maps unmaps every buffer and ring and returns the budget.
        self.framebuffers.clear();
        self.dbufs.clear();
        self.connectors.clear();
    }

    /// Count a fatal rule violation in its connector's statistics (before [`Connection::close`]).
    pub fn record_fatal(&mut self, fatal: &Fatal) {
        if let Fatal::Corruption { connector, what } = fatal {
            if let Some(c) = self.connectors.get_mut(*connector as usize) {
                *c.stats.errors_by_rule.entry(what.rule()).or_insert(0) += 1;
            }
        }
    }

    /// Statistics so far (tests, logs).
    pub fn stats(&self, connector: usize) -> Option<&ConnectorStats> {
        self.connectors.get(connector).map(|c| &c.stats)
    }
}
