//! The displif frontend device: a state machine the kernel drives with `poll`.
//!
//! One [`Frontend`] serves one `device/vdispl/<dev>` node. The kernel calls
//! [`Frontend::poll`] with the current time whenever one of
//! [`Frontend::ports`] (or the xenstore event channel) is pending or the
//! returned wake-up time has passed, and sleeps in between
//! (`EventChannels::wait(ports, Some(wake_at))`). `poll` never blocks: every
//! wait of the protocol is a deadline in the state machine, so tests drive it
//! with a fake clock.
//!
//! What `poll` does, following `xen/include/public/io/displif.h`:
//! - reads and validates the configuration ([`crate::config`]); a malformed
//!   one is logged and the device goes to Closed;
//! - follows the backend's `state` ([`crate::state::on_backend_state`]): on
//!   InitWait it negotiates the version, creates per connector a request ring,
//!   an event page and two event channels, publishes them in one xenstore
//!   transaction (retried on `EAGAIN`) and goes Initialised; on Connected it
//!   goes Connected and sets up the display; when the backend goes away or
//!   restarts it releases every grant, mapping and port and goes back to
//!   Initialising, ready to reconnect with new buffers;
//! - sets up each connector: `GET_EDID` (v2; a valid preferred mode overrides
//!   `resolution`), two display buffers (`DBUF_CREATE` + `FB_ATTACH` on
//!   connector 0's ring, frontend- or backend-allocated), `SET_CONFIG`;
//! - flips: double buffering per connector, `PG_FLIP` at absolute deadlines
//!   ([`crate::pacing`]), shifted once after the first frame-done so that
//!   flips lead the display's vblank ([`Options::vblank_lead_ns`]); a buffer
//!   is reused only after its frame-done event (or after the 3100 ms
//!   frame-done timeout); late frames are skipped and counted; due flips are
//!   sent before any drawing;
//! - keeps one request outstanding per ring, checks response ids and
//!   operations (mismatches are logged and ignored), bounds every request by
//!   3000 ms and checks the sequence of event ids (resynchronising on gaps);
//! - treats a backend that stops answering (a request timeout, three
//!   frame-done timeouts or three refused flips in a row), a corrupt ring or
//!   a failed setup request as lost: everything is released and the device
//!   goes back to Initialising (the backend sees a restart); after
//!   [`Options::max_failed_sessions`] failed setups in a row it closes;
//! - on [`Frontend::request_shutdown`]: `SET_CONFIG` reset on every
//!   connector, then `FB_DETACH` and `DBUF_DESTROY`, ends every grant,
//!   Closing, Closed (each step bounded).

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use xen::abi::displif::{
    DbufCreateReq, DbufDestroyReq, FbAttachReq, FbDetachReq, GetEdidReq, PageFlipReq, Request,
    Response, SetConfigReq, XENDISPL_DBUF_FLG_REQ_ALLOC, XENDISPL_EDID_MAX_SIZE,
    XENDISPL_FIELD_BE_VERSIONS, XENDISPL_FIELD_EVT_CHANNEL, XENDISPL_FIELD_EVT_RING_REF,
    XENDISPL_FIELD_FE_VERSION, XENDISPL_FIELD_REQ_CHANNEL, XENDISPL_FIELD_REQ_RING_REF,
};
use xen::abi::xenbus::XenbusState;
use xen::platform::{EventChannels, GrantTable, PlatformError, SharedPage};
use xen::types::{DomId, EvtchnPort};

use crate::channel::{ChannelError, EventRing, Received, ReceivedEvent, RequestRing};
use crate::config::{negotiate_version, parse_decimal_u32, ConfigError, DeviceConfig, Resolution};
use crate::edid::parse_preferred_mode;
use crate::pacing::{PaceDecision, Pacer, DEFAULT_RATE_HZ};
use crate::pages::{GrantedPage, PageAllocator, Reclaimer};
use crate::shbuf::SharedBuffer;
use crate::state::{on_backend_state, Step};
use crate::store::{Store, StoreError, TxId};
use crate::{FrameSource, FrameTarget};

/// `DRM_FORMAT_XRGB8888`: fourcc `'X' 'R' '2' '4'` (`drm_fourcc.h`).
pub const DRM_FORMAT_XRGB8888: u32 = u32::from_le_bytes(*b"XR24");

/// Bits per pixel of XRGB8888.
const BPP: u32 = 32;

/// Display buffers per connector by default (double buffering).
pub const DEFAULT_BUFFERS: usize = 2;
/// Most display buffers per connector (triple buffering).
pub const MAX_BUFFERS: usize = 3;

/// Frame-done timeouts in a row after which the backend is considered lost
/// and the connection is rebuilt.
const MAX_FRAME_DONE_TIMEOUTS_IN_A_ROW: u32 = 3;

/// A first frame-done later than this many periods after its flip is not
/// used to find the display's vblank phase.
const MAX_VBLANK_LOCK_PERIODS: u64 = 4;

/// Refused flips in a row after which the connection is rebuilt.
const MAX_FLIP_ERRORS_IN_A_ROW: u32 = 3;

/// Attempts at committing the publishing transaction before giving up.
const PUBLISH_ATTEMPTS: u32 = 16;

/// Nanoseconds per millisecond.
const NS_PER_MS: u64 = 1_000_000;

/// Tunables. The defaults are the protocol's (Linux `xen_drm_front.h`).
#[derive(Clone, Debug)]
pub struct Options {
    /// Flip rate (the `rate=` command-line option).
    pub rate_hz: u32,
    /// Bound on every request (`XEN_DRM_FRONT_WAIT_BACK_MS` = 3000 ms).
    pub request_timeout_ns: u64,
    /// Bound on a frame-done event after a flip (Linux: 3000 + 100 ms).
    pub frame_done_timeout_ns: u64,
    /// Bound on the backend letting go of our pages at shutdown.
    pub shutdown_timeout_ns: u64,
    /// Sessions in a row that may fail during setup before the device gives
    /// up and goes to Closed.
    pub max_failed_sessions: u32,
    /// Pause before retrying after a failed session.
    pub retry_delay_ns: u64,
    /// How often grants the backend still holds are retried.
    pub reclaim_interval_ns: u64,
    /// Lock the flip schedule onto the display's vblank: after the first
    /// frame-done, shift the deadlines once so that later frame-done events
    /// come this long after their flip (`None`: never shift). A display shows
    /// a flip at its next vblank, so a flip sent just after a vblank waits a
    /// whole period for its frame-done and leaves no time to draw the next
    /// frame; a flip sent shortly before one completes at once.
    pub vblank_lead_ns: Option<u64>,
    /// Completed flips per connector (over all sessions) after which it stops
    /// flipping (`None`: no limit); one flip is in flight at a time, so no
    /// connector overshoots. The `frames=` command-line option.
    pub flip_limit: Option<u64>,
    /// Display buffers per connector, 2 (double buffering: the next frame is
    /// drawn once the previous flip completed) or 3 (triple buffering: it is
    /// drawn while the previous flip is in flight). Other values are clamped.
    pub buffers: usize,
    /// Clock used only to measure drawing time for the statistics (`None`:
    /// not measured).
    pub stats_clock: Option<fn() -> u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_hz: DEFAULT_RATE_HZ,
            request_timeout_ns: 3000 * NS_PER_MS,
            frame_done_timeout_ns: 3100 * NS_PER_MS,
            shutdown_timeout_ns: 3000 * NS_PER_MS,
            max_failed_sessions: 5,
            retry_delay_ns: 1000 * NS_PER_MS,
            reclaim_interval_ns: 50 * NS_PER_MS,
            vblank_lead_ns: Some(4 * NS_PER_MS),
            flip_limit: None,
            buffers: DEFAULT_BUFFERS,
            stats_clock: None,
        }
    }
}

/// The platform the frontend acts through for the duration of one call.
pub struct Env<'a, P> {
    /// Event channels.
    pub evtchn: &'a mut dyn EventChannels,
    /// Grant table.
    pub gnttab: &'a mut dyn GrantTable,
    /// Page allocator.
    pub pages: &'a mut dyn PageAllocator<Page = P>,
    /// Xenstore.
    pub store: &'a mut dyn Store,
}

/// Why the device closed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrontendError {
    /// The frontend's configuration is malformed.
    Config(ConfigError),
    /// A node the toolstack must write is missing or malformed.
    Node {
        /// The node.
        path: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// Xenstore failed.
    Store(StoreError),
    /// Setup failed too many times in a row.
    TooManyFailures(u32),
}

impl fmt::Display for FrontendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrontendError::Config(e) => write!(f, "configuration: {e}"),
            FrontendError::Node { path, problem } => write!(f, "{path}: {problem}"),
            FrontendError::Store(e) => write!(f, "{e}"),
            FrontendError::TooManyFailures(n) => {
                write!(f, "display setup failed {n} times in a row")
            }
        }
    }
}

/// Per-connector counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectorStats {
    /// Current mode (after EDID).
    pub mode: Option<Resolution>,
    /// Whether the mode came from the backend's EDID.
    pub is_mode_from_edid: bool,
    /// Frames rendered.
    pub frames_rendered: u64,
    /// When the first flip completed (frame-done received), by the clock
    /// passed to `poll`.
    pub first_flip_done_ns: Option<u64>,
    /// `PG_FLIP` requests sent.
    pub flips_sent: u64,
    /// Frame number of the latest `PG_FLIP` sent (frame 0 is shown by
    /// `SET_CONFIG`; see [`crate::FrameSource`]).
    pub last_flipped_frame: Option<u64>,
    /// Flips completed by a frame-done event.
    pub flips_done: u64,
    /// Sum over flips completed by a frame-done event of the time from
    /// sending `PG_FLIP` to receiving its frame-done, ns.
    pub flip_latency_total_ns: u64,
    /// The longest such time, ns.
    pub flip_latency_max_ns: u64,
    /// Time spent drawing frames (by [`Options::stats_clock`]), ns.
    pub render_total_ns: u64,
    /// The longest time spent drawing one frame, ns.
    pub render_max_ns: u64,
    /// Flips the backend answered with an error.
    pub flip_errors: u64,
    /// Flips released by the frame-done timeout.
    pub frame_done_timeouts: u64,
    /// Deadlines skipped (late frames).
    pub skipped_deadlines: u64,
    /// Of those, deadlines skipped although a frame was ready: the loop woke
    /// more than half a period after the deadline (the guest was not run in
    /// time), as opposed to a frame-done or drawing that came too late.
    pub skipped_while_ready: u64,
    /// Events whose id broke the sequence 0, 1, 2, ...
    pub event_id_gaps: u64,
    /// Frame-done events for no flip in progress, duplicates, malformed events.
    pub unexpected_events: u64,
}

/// Device counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sessions published (1 + reconnects).
    pub sessions: u64,
    /// Sessions that reached flipping on every connector.
    pub sessions_running: u64,
    /// Backend departures handled (teardown + back to Initialising).
    pub disconnects: u64,
    /// Publishing transactions that had to be retried (`EAGAIN`).
    pub publish_retries: u64,
    /// Responses with a wrong id or operation, or with nothing outstanding.
    pub unexpected_responses: u64,
    /// Responses with non-zero reserved bytes.
    pub malformed_responses: u64,
    /// Requests the backend did not answer within the timeout.
    pub request_timeouts: u64,
    /// Requests the backend answered with an error status.
    pub request_errors: u64,
    /// Per connector.
    pub connectors: Vec<ConnectorStats>,
}

/// What the kernel should do after a [`Frontend::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollResult {
    /// Call `poll` again no later than this (absolute ns); `None` means only
    /// when a port or the xenstore watch fires.
    pub wake_at_ns: Option<u64>,
    /// The device is Closed: nothing more will happen.
    pub is_finished: bool,
}

/// What a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Edid,
    DbufCreate(usize),
    FbAttach(usize),
    SetConfig,
    Flip(usize),
    Reset,
    FbDetach(usize),
    DbufDestroy(usize),
}

/// A request waiting for (or occupying) a ring, for connector `conn`.
#[derive(Clone, Copy, Debug)]
struct Job {
    request: Request,
    conn: usize,
    purpose: Purpose,
}

/// How a request ended.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Answered(Response),
    TimedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BufState {
    /// May be drawn into.
    Free,
    /// Holds frame n, ready to flip.
    Ready(u64),
    /// Flip requested, frame-done pending.
    Flipping(u64),
    /// On screen.
    Shown(u64),
}

#[derive(Debug)]
struct DisplayBuffer<P> {
    shbuf: SharedBuffer<P>,
    dbuf_cookie: u64,
    fb_cookie: u64,
    is_created: bool,
    is_attached: bool,
    state: BufState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnStage {
    /// Published, backend not connected yet.
    Published,
    /// `GET_EDID` outstanding.
    Edid,
    /// Buffers being created and attached.
    Creating,
    /// `SET_CONFIG` outstanding.
    Configuring,
    /// Flipping.
    Running,
    /// Shutting down.
    Stopping,
}

#[derive(Clone, Copy, Debug)]
struct Flip {
    buf: usize,
    sent_at_ns: u64,
}

#[derive(Debug)]
struct InFlight {
    job: Job,
    deadline_ns: u64,
}

#[derive(Debug)]
struct Connector<P: SharedPage> {
    index: usize,
    configured: Resolution,
    mode: Resolution,
    ring: RequestRing<P>,
    req_port: EvtchnPort,
    events: EventRing<P>,
    evt_port: EvtchnPort,
    queue: VecDeque<Job>,
    in_flight: Option<InFlight>,
    expected_event_id: u16,
    frame_done_timeouts_in_a_row: u32,
    flip_errors_in_a_row: u32,
    edid: Option<SharedBuffer<P>>,
    buffers: Vec<DisplayBuffer<P>>,
    stage: ConnStage,
    is_configured: bool,
    pacer: Option<Pacer>,
    is_phase_locked: bool,
    flip: Option<Flip>,
    scratch: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ShutdownStage {
    /// `SET_CONFIG` resets in progress (connectors stop scanning out).
    Resets,
    /// `FB_DETACH`/`DBUF_DESTROY` in progress (after every reset, so no
    /// framebuffer is detached while a connector still shows it).
    Destroys,
    /// Waiting (bounded) for the backend to let go of the rings.
    AwaitBackend { deadline_ns: u64 },
}

#[derive(Debug)]
struct Session<P: SharedPage> {
    version: u32,
    connectors: Vec<Connector<P>>,
    /// Set when the session must be torn down (setup failed, backend silent).
    failure: Option<String>,
}

/// The frontend of one vdispl device.
pub struct Frontend<P: SharedPage> {
    device_path: String,
    options: Options,
    watch_token: String,
    front_state: XenbusState,
    backend_state: XenbusState,
    backend_path: String,
    backend_id: DomId,
    config: Option<DeviceConfig>,
    session: Option<Session<P>>,
    reclaim: Reclaimer<P>,
    next_reclaim_ns: u64,
    next_cookie: u64,
    next_frame: Vec<u64>,
    failed_sessions: u32,
    retry_at_ns: u64,
    is_started: bool,
    is_watching: bool,
    is_shutdown_requested: bool,
    shutdown: Option<ShutdownStage>,
    closed_at_ns: Option<u64>,
    error: Option<FrontendError>,
    stats: Stats,
}

impl<P: SharedPage> fmt::Debug for Frontend<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frontend")
            .field("device_path", &self.device_path)
            .field("front_state", &self.front_state)
            .field("backend_state", &self.backend_state)
            .finish_non_exhaustive()
    }
}

fn in_transaction(
    store: &mut dyn Store,
    writes: &[(String, String)],
    retries: &mut u64,
) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tx = store.transaction_start()?;
        for (path, value) in writes {
            if let Err(e) = store.write(tx, path, value) {
                let _ = store.transaction_end(tx, false);
                return Err(e);
            }
        }
        match store.transaction_end(tx, true) {
            Err(StoreError::Again) if attempt < PUBLISH_ATTEMPTS => *retries += 1,
            other => return other,
        }
    }
}

impl<P: SharedPage> Frontend<P> {
    /// A frontend for `device_path` (e.g. `device/vdispl/0`). Nothing happens
    /// until the first [`Frontend::poll`].
    pub fn new(device_path: &str, options: Options) -> Frontend<P> {
        Frontend {
            device_path: device_path.into(),
            watch_token: format!("vdispl:{device_path}"),
            options,
            front_state: XenbusState::Unknown,
            backend_state: XenbusState::Unknown,
            backend_path: String::new(),
            backend_id: DomId::DOM0,
            config: None,
            session: None,
            reclaim: Reclaimer::default(),
            next_reclaim_ns: 0,
            next_cookie: 1,
            next_frame: Vec::new(),
            failed_sessions: 0,
            retry_at_ns: 0,
            is_started: false,
            is_watching: false,
            is_shutdown_requested: false,
            shutdown: None,
            closed_at_ns: None,
            error: None,
            stats: Stats::default(),
        }
    }

    /// Our xenbus state.
    pub fn state(&self) -> XenbusState {
        self.front_state
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Why the device closed, if it closed on an error.
    pub fn error(&self) -> Option<&FrontendError> {
        self.error.as_ref()
    }

    /// Pages whose grant or mapping the backend still holds.
    pub fn pages_held_by_backend(&self) -> usize {
        self.reclaim.pending()
    }

    /// Pages abandoned after an unexpected release failure.
    pub fn pages_abandoned(&self) -> usize {
        self.reclaim.abandoned()
    }

    /// The watch token the frontend registers on the backend's `state`.
    pub fn watch_token(&self) -> &str {
        &self.watch_token
    }

    /// Whether every connector is flipping.
    pub fn is_running(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.connectors.iter().all(|c| c.stage == ConnStage::Running))
    }

    /// Ports to wait on (besides xenstore's).
    pub fn ports(&self) -> Vec<EvtchnPort> {
        self.session
            .iter()
            .flat_map(|s| s.connectors.iter())
            .flat_map(|c| [c.req_port, c.evt_port])
            .collect()
    }

    /// Ask for an orderly shutdown (`xl shutdown`); `poll` carries it out and
    /// reports `is_finished` when done.
    pub fn request_shutdown(&mut self) {
        self.is_shutdown_requested = true;
    }

    /// Advance the state machine at time `now_ns`. See the module docs.
    pub fn poll(
        &mut self,
        now_ns: u64,
        env: &mut Env<'_, P>,
        source: &mut dyn FrameSource,
    ) -> PollResult {
        if !self.is_started {
            self.is_started = true;
            if let Err(e) = self.start(env) {
                self.fail_permanently(env, e);
            }
        }
        let mut is_backend_changed = false;
        while env.store.take_watch_event(&self.watch_token).is_some() {
            is_backend_changed = true;
        }
        if self.front_state != XenbusState::Closed {
            if is_backend_changed {
                self.backend_state = self.read_backend_state(env);
            }
            self.step(now_ns, env, source);
        }
        if now_ns >= self.next_reclaim_ns && self.reclaim.pending() > 0 {
            self.reclaim.retry(env.gnttab);
            self.next_reclaim_ns = now_ns.saturating_add(self.options.reclaim_interval_ns);
        }
        if self.front_state == XenbusState::Closed && self.closed_at_ns.is_none() {
            self.closed_at_ns = Some(now_ns);
        }
        // A closed device still gives back pages the backend held at the time,
        // for a bounded while.
        let is_finished = self.closed_at_ns.is_some_and(|t| {
            self.reclaim.pending() == 0
                || now_ns >= t.saturating_add(self.options.shutdown_timeout_ns)
        });
        PollResult {
            wake_at_ns: if is_finished {
                None
            } else {
                self.wake_at(now_ns)
            },
            is_finished,
        }
    }

    fn step(&mut self, now_ns: u64, env: &mut Env<'_, P>, source: &mut dyn FrameSource) {
        // Clear every port's pending bit, whatever the state: a kick we do not
        // act on now (e.g. before Connected) must not keep the kernel's wait
        // returning at once. The rings are read below regardless of the bits.
        for port in self.ports() {
            env.evtchn.take_pending(port);
        }
        if self.is_shutdown_requested && self.shutdown.is_none() {
            self.begin_shutdown(now_ns, env);
        }
        if matches!(
            self.shutdown,
            Some(ShutdownStage::Resets | ShutdownStage::Destroys)
        ) && self.backend_state != XenbusState::Connected
        {
            // The backend left: nobody will answer the shutdown requests.
            self.teardown(env);
            self.finish_shutdown(now_ns, env);
        }
        if self.shutdown.is_some() {
            self.step_shutdown(now_ns, env, source);
            return;
        }
        if now_ns >= self.retry_at_ns {
            match on_backend_state(self.front_state, self.backend_state) {
                Step::Stay => {}
                Step::Publish => self.publish(now_ns, env),
                Step::Connect => self.connect(env),
                Step::Disconnect => {
                    log::warn!(
                        "vdispl {}: backend {} while we are {}: reconnecting",
                        self.device_path,
                        self.backend_state,
                        self.front_state
                    );
                    self.stats.disconnects += 1;
                    self.teardown(env);
                    self.set_state(env, XenbusState::Initialising);
                }
            }
        }
        if self.front_state == XenbusState::Connected {
            self.service_rings(now_ns, env, source);
            self.check_failure(now_ns, env);
        }
    }

    fn start(&mut self, env: &mut Env<'_, P>) -> Result<(), FrontendError> {
        let dev = self.device_path.clone();
        let read = |store: &mut dyn Store, path: &str| {
            store
                .read(TxId::NONE, path)
                .map_err(FrontendError::Store)?
                .ok_or(FrontendError::Node {
                    path: path.into(),
                    problem: "missing",
                })
        };
        self.backend_path = read(env.store, &format!("{dev}/backend"))?;
        let id_path = format!("{dev}/backend-id");
        let id = read(env.store, &id_path)?;
        self.backend_id = parse_decimal_u32(&id)
            .ok()
            .and_then(|v| u16::try_from(v).ok())
            .map(DomId)
            .ok_or(FrontendError::Node {
                path: id_path,
                problem: "not a domain id",
            })?;
        let config = DeviceConfig::read(env.store, &dev).map_err(FrontendError::Config)?;
        self.next_frame = alloc::vec![0; config.connectors.len()];
        self.stats.connectors = alloc::vec![ConnectorStats::default(); config.connectors.len()];
        log::info!(
            "vdispl {dev}: backend {} (dom {}), be-alloc {}, {} connector(s): {}",
            self.backend_path,
            self.backend_id,
            config.is_be_alloc,
            config.connectors.len(),
            config
                .connectors
                .iter()
                .map(|c| format!("{}", c.resolution))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.config = Some(config);
        env.store
            .watch(&format!("{}/state", self.backend_path), &self.watch_token)
            .map_err(FrontendError::Store)?;
        self.is_watching = true;
        self.backend_state = self.read_backend_state(env);
        self.set_state(env, XenbusState::Initialising);
        Ok(())
    }

    fn read_backend_state(&self, env: &mut Env<'_, P>) -> XenbusState {
        let path = format!("{}/state", self.backend_path);
        match env.store.read(TxId::NONE, &path) {
            Ok(None) => XenbusState::Unknown,
            Ok(Some(v)) => match parse_decimal_u32(&v).map(XenbusState::try_from) {
                Ok(Ok(s)) => s,
                _ => {
                    log::warn!("vdispl: {path} = {v:?} is not a xenbus state");
                    XenbusState::Unknown
                }
            },
            Err(e) => {
                log::warn!("vdispl: reading {path}: {e}");
                self.backend_state
            }
        }
    }

    fn set_state(&mut self, env: &mut Env<'_, P>, state: XenbusState) {
        self.front_state = state;
        let path = format!("{}/state", self.device_path);
        if let Err(e) = env
            .store
            .write(TxId::NONE, &path, &format!("{}", u32::from(state)))
        {
            log::error!("vdispl: writing {path}: {e}");
        }
    }

    fn fail_permanently(&mut self, env: &mut Env<'_, P>, error: FrontendError) {
        log::error!("vdispl {}: {error}; device closed", self.device_path);
        self.teardown(env);
        self.error = Some(error);
        self.set_state(env, XenbusState::Closed);
        self.unwatch(env);
    }

    fn unwatch(&mut self, env: &mut Env<'_, P>) {
        if !core::mem::take(&mut self.is_watching) {
            return;
        }
        let path = format!("{}/state", self.backend_path);
        if let Err(e) = env.store.unwatch(&path, &self.watch_token) {
            log::warn!("vdispl: unwatch {path}: {e}");
        }
    }

    /// A session failed during setup or the backend went silent: tear down,
    /// go back to Initialising (the backend sees a restart) and retry later.
    fn fail_session(&mut self, now_ns: u64, env: &mut Env<'_, P>, why: &str) {
        self.failed_sessions += 1;
        log::error!(
            "vdispl {}: {why}; resetting the connection (failure {} of {})",
            self.device_path,
            self.failed_sessions,
            self.options.max_failed_sessions
        );
        if self.failed_sessions >= self.options.max_failed_sessions {
            let n = self.failed_sessions;
            self.fail_permanently(env, FrontendError::TooManyFailures(n));
            return;
        }
        self.teardown(env);
        self.set_state(env, XenbusState::Initialising);
        self.retry_at_ns = now_ns.saturating_add(self.options.retry_delay_ns);
    }

    fn check_failure(&mut self, now_ns: u64, env: &mut Env<'_, P>) {
        if let Some(why) = self.session.as_mut().and_then(|s| s.failure.take()) {
            self.fail_session(now_ns, env, &why);
        }
    }

    // ---- publishing ------------------------------------------------------

    fn publish(&mut self, now_ns: u64, env: &mut Env<'_, P>) {
        let versions_path = format!("{}/{XENDISPL_FIELD_BE_VERSIONS}", self.backend_path);
        let versions = match env.store.read(TxId::NONE, &versions_path) {
            Ok(v) => v,
            Err(e) => {
                return self.fail_session(now_ns, env, &format!("reading {versions_path}: {e}"))
            }
        };
        let version = match negotiate_version(versions.as_deref()) {
            Ok(v) => v,
            Err(e) => return self.fail_permanently(env, FrontendError::Config(e)),
        };
        let session = match self.create_session(version, env) {
            Ok(s) => s,
            Err(e) => {
                return self.fail_session(now_ns, env, &format!("creating channels: {e}"));
            }
        };
        let dev = &self.device_path;
        let mut writes = Vec::new();
        for c in &session.connectors {
            let i = c.index;
            for (field, value) in [
                (XENDISPL_FIELD_REQ_RING_REF, c.ring.gref().0),
                (XENDISPL_FIELD_REQ_CHANNEL, c.req_port.0),
                (XENDISPL_FIELD_EVT_RING_REF, c.events.gref().0),
                (XENDISPL_FIELD_EVT_CHANNEL, c.evt_port.0),
            ] {
                writes.push((format!("{dev}/{i}/{field}"), format!("{value}")));
            }
        }
        writes.push((
            format!("{dev}/{XENDISPL_FIELD_FE_VERSION}"),
            format!("{version}"),
        ));
        writes.push((
            format!("{dev}/state"),
            format!("{}", u32::from(XenbusState::Initialised)),
        ));
        self.session = Some(session);
        match in_transaction(env.store, &writes, &mut self.stats.publish_retries) {
            Ok(()) => {
                self.front_state = XenbusState::Initialised;
                self.stats.sessions += 1;
                log::info!(
                    "vdispl {}: published protocol version {version}, Initialised",
                    self.device_path
                );
            }
            // Nothing was published; the backend never saw this session.
            Err(e) => self.fail_session(now_ns, env, &format!("publishing: {e}")),
        }
    }

    fn create_session(
        &mut self,
        version: u32,
        env: &mut Env<'_, P>,
    ) -> Result<Session<P>, PlatformError> {
        let mut session = Session {
            version,
            connectors: Vec::new(),
            failure: None,
        };
        let resolutions: Vec<Resolution> = self
            .config
            .iter()
            .flat_map(|c| c.connectors.iter().map(|c| c.resolution))
            .collect();
        for (index, resolution) in resolutions.into_iter().enumerate() {
            match self.create_connector(index, resolution, env) {
                Ok(c) => session.connectors.push(c),
                Err(e) => {
                    Self::release_session(session, env, &mut self.reclaim);
                    return Err(e);
                }
            }
        }
        Ok(session)
    }

    fn create_connector(
        &mut self,
        index: usize,
        resolution: Resolution,
        env: &mut Env<'_, P>,
    ) -> Result<Connector<P>, PlatformError> {
        let domid = self.backend_id;
        let reclaim = &mut self.reclaim;
        let channel_error = |e: ChannelError| {
            log::error!("vdispl: connector {index}: {e}");
            PlatformError::NotHeld("a 4 KiB page")
        };
        let ring_page = GrantedPage::new(env.pages, env.gnttab, domid)?;
        // The page is granted but not yet published: nobody maps it yet.
        let ring = RequestRing::init(ring_page).map_err(|(page, e)| {
            if let Some(page) = page {
                reclaim.release_granted(env.gnttab, page);
            }
            channel_error(e)
        })?;
        let release_ring =
            |reclaim: &mut Reclaimer<P>, gnttab: &mut dyn GrantTable, ring: RequestRing<P>| {
                reclaim.release_granted(gnttab, ring.into_page());
            };
        let evt_page = match GrantedPage::new(env.pages, env.gnttab, domid) {
            Ok(p) => p,
            Err(e) => {
                release_ring(reclaim, env.gnttab, ring);
                return Err(e);
            }
        };
        let events = match EventRing::init(evt_page) {
            Ok(ev) => ev,
            Err((page, e)) => {
                if let Some(page) = page {
                    reclaim.release_granted(env.gnttab, page);
                }
                release_ring(reclaim, env.gnttab, ring);
                return Err(channel_error(e));
            }
        };
        let ports =
            env.evtchn
                .alloc_unbound(domid)
                .and_then(|req| match env.evtchn.alloc_unbound(domid) {
                    Ok(evt) => Ok((req, evt)),
                    Err(e) => {
                        let _ = env.evtchn.close(req);
                        Err(e)
                    }
                });
        let (req_port, evt_port) = match ports {
            Ok(p) => p,
            Err(e) => {
                release_ring(reclaim, env.gnttab, ring);
                reclaim.release_granted(env.gnttab, events.into_page());
                return Err(e);
            }
        };
        Ok(Connector {
            index,
            configured: resolution,
            mode: resolution,
            ring,
            req_port,
            events,
            evt_port,
            queue: VecDeque::new(),
            in_flight: None,
            expected_event_id: 0,
            frame_done_timeouts_in_a_row: 0,
            flip_errors_in_a_row: 0,
            edid: None,
            buffers: Vec::new(),
            stage: ConnStage::Published,
            is_configured: false,
            pacer: None,
            is_phase_locked: false,
            flip: None,
            scratch: Vec::new(),
        })
    }

    // ---- teardown ----------------------------------------------------------

    fn release_session(session: Session<P>, env: &mut Env<'_, P>, reclaim: &mut Reclaimer<P>) {
        for c in session.connectors {
            if let Some(edid) = c.edid {
                edid.release(env.gnttab, reclaim);
            }
            for b in c.buffers {
                b.shbuf.release(env.gnttab, reclaim);
            }
            for port in [c.req_port, c.evt_port] {
                if let Err(e) = env.evtchn.close(port) {
                    log::warn!("vdispl: closing port {port}: {e}");
                }
            }
            reclaim.release_granted(env.gnttab, c.ring.into_page());
            reclaim.release_granted(env.gnttab, c.events.into_page());
        }
    }

    /// Release everything of the current session (no requests: the backend is
    /// gone or we give up on it).
    fn teardown(&mut self, env: &mut Env<'_, P>) {
        if let Some(session) = self.session.take() {
            // Frames rendered but never sent are drawn again after reconnecting,
            // so the frame sequence the backend sees has no holes.
            for conn in &session.connectors {
                let unsent = conn.buffers.iter().filter_map(|b| match b.state {
                    BufState::Ready(n) => Some(n),
                    _ => None,
                });
                if let (Some(n), Some(next)) = (unsent.min(), self.next_frame.get_mut(conn.index)) {
                    *next = (*next).min(n);
                }
            }
            Self::release_session(session, env, &mut self.reclaim);
        }
    }

    // ---- connecting ----------------------------------------------------------

    fn connect(&mut self, env: &mut Env<'_, P>) {
        self.set_state(env, XenbusState::Connected);
        log::info!("vdispl {}: backend connected", self.device_path);
        let (count, version) = self
            .session
            .as_ref()
            .map_or((0, 0), |s| (s.connectors.len(), s.version));
        for c in 0..count {
            if version >= 2 {
                self.request_edid(c, env);
            } else {
                self.create_buffers(c, env);
            }
        }
    }

    fn request_edid(&mut self, c: usize, env: &mut Env<'_, P>) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let domid = self.backend_id;
        let conn = &mut session.connectors[c];
        let edid = SharedBuffer::new_granted(
            XENDISPL_EDID_MAX_SIZE,
            env.pages,
            env.gnttab,
            domid,
            &mut self.reclaim,
        );
        match edid {
            Ok(buf) => {
                conn.queue.push_back(Job {
                    request: Request::GetEdid(GetEdidReq {
                        buffer_sz: XENDISPL_EDID_MAX_SIZE,
                        gref_directory: buf.directory_gref().0,
                    }),
                    conn: c,
                    purpose: Purpose::Edid,
                });
                conn.edid = Some(buf);
                conn.stage = ConnStage::Edid;
            }
            Err(e) => {
                log::warn!("vdispl: connector {c}: no EDID buffer ({e}); using resolution");
                self.create_buffers(c, env);
            }
        }
    }

    fn create_buffers(&mut self, c: usize, env: &mut Env<'_, P>) {
        let buffers_per_connector = self.buffers_per_connector();
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let is_be_alloc = self.config.as_ref().is_some_and(|cfg| cfg.is_be_alloc);
        let domid = self.backend_id;
        let mode = session.connectors[c].mode;
        session.connectors[c].stage = ConnStage::Creating;
        let Some(len) = mode.buffer_size_bytes() else {
            session.failure = Some(format!("connector {c}: mode {mode} too large"));
            return;
        };
        for b in 0..buffers_per_connector {
            let shbuf = if is_be_alloc {
                SharedBuffer::new_backend_allocated(
                    len,
                    env.pages,
                    env.gnttab,
                    domid,
                    &mut self.reclaim,
                )
            } else {
                SharedBuffer::new_granted(len, env.pages, env.gnttab, domid, &mut self.reclaim)
            };
            let shbuf = match shbuf {
                Ok(s) => s,
                Err(e) => {
                    session.failure = Some(format!("connector {c}: buffer of {mode}: {e}"));
                    return;
                }
            };
            let dbuf_cookie = self.next_cookie;
            let fb_cookie = self.next_cookie + 1;
            self.next_cookie += 2;
            let create = Request::DbufCreate(DbufCreateReq {
                dbuf_cookie,
                width: mode.width,
                height: mode.height,
                bpp: BPP,
                buffer_sz: len,
                flags: if is_be_alloc {
                    XENDISPL_DBUF_FLG_REQ_ALLOC
                } else {
                    0
                },
                gref_directory: shbuf.directory_gref().0,
                data_ofs: 0,
            });
            let attach = Request::FbAttach(FbAttachReq {
                dbuf_cookie,
                fb_cookie,
                width: mode.width,
                height: mode.height,
                pixel_format: DRM_FORMAT_XRGB8888,
            });
            session.connectors[c].buffers.push(DisplayBuffer {
                shbuf,
                dbuf_cookie,
                fb_cookie,
                is_created: false,
                is_attached: false,
                state: BufState::Free,
            });
            // Buffers and framebuffers are created over connector 0's ring.
            let ring0 = &mut session.connectors[0].queue;
            ring0.push_back(Job {
                request: create,
                conn: c,
                purpose: Purpose::DbufCreate(b),
            });
            ring0.push_back(Job {
                request: attach,
                conn: c,
                purpose: Purpose::FbAttach(b),
            });
        }
    }

    // ---- the running device ----------------------------------------------------

    fn service_rings(&mut self, now_ns: u64, env: &mut Env<'_, P>, source: &mut dyn FrameSource) {
        let mut done: Vec<(Job, Outcome)> = Vec::new();
        let Some(session) = self.session.as_mut() else {
            return;
        };
        for conn in session.connectors.iter_mut() {
            let stats = &mut self.stats;
            let mut matched = None;
            let r = conn.ring.take_responses(|r| match r {
                Received::Matched(resp) => matched = Some(resp),
                Received::Unexpected(resp) => {
                    stats.unexpected_responses += 1;
                    log::warn!(
                        "vdispl: connector {}: ignoring response id {} op {:#x} status {} \
                             (outstanding: {:?})",
                        conn.index,
                        resp.id,
                        resp.operation,
                        resp.status,
                        conn.in_flight.as_ref().map(|f| f.job.request.operation())
                    );
                }
                Received::Malformed(e) => {
                    stats.malformed_responses += 1;
                    log::warn!("vdispl: connector {}: malformed response: {e}", conn.index);
                }
            });
            if let Err(e) = r {
                session.failure = Some(format!("connector {}: request ring: {e}", conn.index));
                return;
            }
            if let Some(resp) = matched {
                if let Some(f) = conn.in_flight.take() {
                    done.push((f.job, Outcome::Answered(resp)));
                }
            } else if let Some(f) = &conn.in_flight {
                if now_ns >= f.deadline_ns {
                    self.stats.request_timeouts += 1;
                    conn.ring.abandon();
                    if let Some(f) = conn.in_flight.take() {
                        done.push((f.job, Outcome::TimedOut));
                    }
                }
            }
        }
        for (job, outcome) in done {
            self.complete(job, outcome, now_ns, env, source);
        }
        self.take_events(now_ns);
        self.pace(now_ns, env, source);
        self.dispatch(now_ns, env);
    }

    fn take_events(&mut self, now_ns: u64) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let timeout = self.options.frame_done_timeout_ns;
        let vblank_lead = self.options.vblank_lead_ns;
        for conn in session.connectors.iter_mut() {
            let stats = &mut self.stats.connectors[conn.index];
            let mut frame_done = Vec::new();
            let r = conn.events.take_events(|e| match e {
                ReceivedEvent::FrameDone(ev) => frame_done.push(ev),
                ReceivedEvent::Malformed(e) => {
                    stats.unexpected_events += 1;
                    log::warn!("vdispl: connector {}: malformed event: {e}", conn.index);
                }
            });
            if let Err(e) = r {
                session.failure = Some(format!("connector {}: event page: {e}", conn.index));
                return;
            }
            for ev in frame_done {
                if ev.id != conn.expected_event_id {
                    // Resynchronise on the backend's numbering rather than
                    // ignore events (Linux ignores every event after a gap,
                    // and a restarted backend starts again at 0).
                    stats.event_id_gaps += 1;
                    log::warn!(
                        "vdispl: connector {}: event id {} where {} was expected",
                        conn.index,
                        ev.id,
                        conn.expected_event_id
                    );
                }
                conn.expected_event_id = ev.id.wrapping_add(1);
                match conn.flip {
                    Some(f) if conn.buffers[f.buf].fb_cookie == ev.fb_cookie => {
                        conn.frame_done_timeouts_in_a_row = 0;
                        let latency = now_ns.saturating_sub(f.sent_at_ns);
                        stats.flip_latency_total_ns += latency;
                        stats.flip_latency_max_ns = stats.flip_latency_max_ns.max(latency);
                        if let Some(lead) = vblank_lead {
                            Self::lock_phase(conn, f, lead, now_ns);
                        }
                        Self::complete_flip(conn, stats, now_ns);
                    }
                    _ => {
                        stats.unexpected_events += 1;
                        log::warn!(
                            "vdispl: connector {}: frame-done for fb {} with no flip of it",
                            conn.index,
                            ev.fb_cookie
                        );
                    }
                }
            }
            if let Some(f) = conn.flip {
                if now_ns.saturating_sub(f.sent_at_ns) >= timeout {
                    stats.frame_done_timeouts += 1;
                    conn.frame_done_timeouts_in_a_row += 1;
                    log::warn!(
                        "vdispl: connector {}: frame done timed out, releasing",
                        conn.index
                    );
                    Self::complete_flip(conn, stats, now_ns);
                    if conn.frame_done_timeouts_in_a_row >= MAX_FRAME_DONE_TIMEOUTS_IN_A_ROW {
                        session.failure = Some(format!(
                            "connector {}: no frame-done for {} flips in a row",
                            conn.index, conn.frame_done_timeouts_in_a_row
                        ));
                        return;
                    }
                }
            }
        }
    }

    /// After the first frame-done of a connector: the display showed the flip
    /// sent at `flip.sent_at_ns` at a vblank just before `now_ns`. Shift the
    /// schedule once so that flips go out `lead_ns` before the display's
    /// vblanks.
    fn lock_phase(conn: &mut Connector<P>, flip: Flip, lead_ns: u64, now_ns: u64) {
        if conn.is_phase_locked {
            return;
        }
        conn.is_phase_locked = true;
        let Some(pacer) = conn.pacer.as_mut() else {
            return;
        };
        let period = pacer.period_ns();
        let latency = now_ns.saturating_sub(flip.sent_at_ns);
        // A display shows a flip at a vblank, possibly several periods later
        // when flips queue; a frame-done much later than that is not paced by
        // a display (or was delayed): leave the phase alone.
        if latency > MAX_VBLANK_LOCK_PERIODS * period || lead_ns >= period {
            return;
        }
        let shift = (latency + period - lead_ns) % period;
        pacer.delay_by(shift);
        log::info!(
            "vdispl: connector {}: frame-done {} us after the flip; deadlines moved {} us \
             later to lead the display's vblank by {} us",
            conn.index,
            latency / 1000,
            shift / 1000,
            lead_ns / 1000
        );
    }

    fn complete_flip(conn: &mut Connector<P>, stats: &mut ConnectorStats, now_ns: u64) {
        let Some(f) = conn.flip.take() else {
            return;
        };
        for b in conn.buffers.iter_mut() {
            if matches!(b.state, BufState::Shown(_)) {
                b.state = BufState::Free;
            }
        }
        if let BufState::Flipping(n) = conn.buffers[f.buf].state {
            conn.buffers[f.buf].state = BufState::Shown(n);
        }
        stats.flips_done += 1;
        stats.first_flip_done_ns.get_or_insert(now_ns);
    }

    fn render(
        conn: &mut Connector<P>,
        b: usize,
        frame: u64,
        source: &mut dyn FrameSource,
        stats: &mut ConnectorStats,
        clock: Option<fn() -> u64>,
    ) {
        let started = clock.map(|now| now());
        let (w, h) = (conn.mode.width, conn.mode.height);
        let mut target = FrameTarget::new(w, h, &mut conn.scratch, &conn.buffers[b].shbuf);
        source.render(conn.index, frame, &mut target);
        target.finish();
        conn.buffers[b].state = BufState::Ready(frame);
        stats.frames_rendered += 1;
        if let (Some(now), Some(started)) = (clock, started) {
            let took = now().saturating_sub(started);
            stats.render_total_ns += took;
            stats.render_max_ns = stats.render_max_ns.max(took);
        }
    }

    /// Flip every connector whose deadline has come. With `is_final` unset
    /// only connectors with a frame ready are considered (a deadline is not
    /// given up before the frames that can still be drawn in this poll are);
    /// with it set, deadlines nobody was ready for are skipped and counted.
    fn flip_due(&mut self, now_ns: u64, is_final: bool) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        for conn in session.connectors.iter_mut() {
            if conn.stage != ConnStage::Running {
                continue;
            }
            let stats = &mut self.stats.connectors[conn.index];
            if self
                .options
                .flip_limit
                .is_some_and(|n| stats.flips_done >= n)
            {
                continue;
            }
            let ready = conn
                .buffers
                .iter()
                .position(|b| matches!(b.state, BufState::Ready(_)));
            let is_ready = conn.flip.is_none() && ready.is_some();
            let Some(pacer) = conn.pacer.as_mut() else {
                continue;
            };
            if !is_ready && !is_final {
                continue;
            }
            let skipped_before = pacer.skipped();
            let decision = pacer.decide(now_ns, is_ready);
            let skipped = pacer.skipped() - skipped_before;
            stats.skipped_deadlines += skipped;
            if is_ready && !is_final {
                // The frame was ready before this poll: the loop itself woke
                // too late (in the final pass it was only just drawn).
                stats.skipped_while_ready += skipped;
            }
            if let (PaceDecision::Flip { .. }, Some(b), true) = (decision, ready, is_ready) {
                let buf = &mut conn.buffers[b];
                if let BufState::Ready(n) = buf.state {
                    buf.state = BufState::Flipping(n);
                    stats.last_flipped_frame = Some(n);
                }
                conn.queue.push_back(Job {
                    request: Request::PageFlip(PageFlipReq {
                        fb_cookie: buf.fb_cookie,
                    }),
                    conn: conn.index,
                    purpose: Purpose::Flip(b),
                });
                conn.flip = Some(Flip {
                    buf: b,
                    sent_at_ns: now_ns,
                });
                stats.flips_sent += 1;
            }
        }
    }

    /// Draw the next frame into every connector's free buffer, once the
    /// previous flip has completed (so the buffer is not on screen).
    fn render_free(&mut self, source: &mut dyn FrameSource) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        for conn in session.connectors.iter_mut() {
            let has_ready = conn
                .buffers
                .iter()
                .any(|b| matches!(b.state, BufState::Ready(_)));
            // Frames that will still be shown: those done and the one in flight.
            let committed =
                self.stats.connectors[conn.index].flips_done + u64::from(conn.flip.is_some());
            let is_limit_reached = self.options.flip_limit.is_some_and(|n| committed >= n);
            // A free buffer exists while a flip is in flight only with three
            // buffers (with two, one is shown and the other is being flipped).
            if conn.stage != ConnStage::Running || has_ready || is_limit_reached {
                continue;
            }
            if let Some(b) = conn.buffers.iter().position(|b| b.state == BufState::Free) {
                let frame = self.next_frame[conn.index];
                self.next_frame[conn.index] += 1;
                Self::render(
                    conn,
                    b,
                    frame,
                    source,
                    &mut self.stats.connectors[conn.index],
                    self.options.stats_clock,
                );
            }
        }
    }

    /// Pacing: flips that are due go out before any drawing, so one
    /// connector's rendering never delays another's flip.
    fn pace(&mut self, now_ns: u64, env: &mut Env<'_, P>, source: &mut dyn FrameSource) {
        self.flip_due(now_ns, false);
        self.dispatch(now_ns, env);
        self.render_free(source);
        self.flip_due(now_ns, true);
    }

    /// Send the next queued request on every idle ring.
    fn dispatch(&mut self, now_ns: u64, env: &mut Env<'_, P>) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let timeout = self.options.request_timeout_ns;
        for conn in session.connectors.iter_mut() {
            if conn.in_flight.is_some() {
                continue;
            }
            let Some(job) = conn.queue.pop_front() else {
                continue;
            };
            let Some((_, notify)) = conn.ring.push(&job.request) else {
                // Only refused while a request is outstanding, excluded above.
                conn.queue.push_front(job);
                continue;
            };
            if notify {
                if let Err(e) = env.evtchn.send(conn.req_port) {
                    log::warn!("vdispl: connector {}: notify: {e}", conn.index);
                }
            }
            conn.in_flight = Some(InFlight {
                job,
                deadline_ns: now_ns.saturating_add(timeout),
            });
        }
    }

    fn complete(
        &mut self,
        job: Job,
        outcome: Outcome,
        now_ns: u64,
        env: &mut Env<'_, P>,
        source: &mut dyn FrameSource,
    ) {
        let status = match outcome {
            Outcome::Answered(r) => Ok(r),
            Outcome::TimedOut => Err("no response"),
        };
        let op = job.request.operation();
        match status {
            Ok(r) if r.status != 0 => {
                self.stats.request_errors += 1;
                log::warn!(
                    "vdispl: connector {}: request {op:#x} failed with status {}",
                    job.conn,
                    r.status
                );
            }
            Err(why) => log::error!(
                "vdispl: connector {}: request {op:#x}: {why} within {} ms",
                job.conn,
                self.options.request_timeout_ns / NS_PER_MS
            ),
            Ok(_) => {}
        }
        let is_ok = matches!(status, Ok(r) if r.status == 0);
        let is_stopping = self.shutdown.is_some();
        let buffers_per_connector = self.buffers_per_connector();
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let c = job.conn;
        let is_setup = matches!(
            job.purpose,
            Purpose::DbufCreate(_) | Purpose::FbAttach(_) | Purpose::SetConfig
        );
        if is_setup && !is_ok {
            // While stopping, a refused setup request only means less to undo;
            // silence still ends the conversation.
            if !is_stopping || matches!(outcome, Outcome::TimedOut) {
                session.failure = Some(format!("connector {c}: setup request {op:#x} failed"));
            }
            return;
        }
        match job.purpose {
            Purpose::Edid => {
                let conn = &mut session.connectors[c];
                let mut mode = None;
                if let (Ok(r), Some(buf)) = (status, conn.edid.as_ref()) {
                    if r.status == 0 {
                        let len = (r.edid_sz.min(buf.len_bytes())) as usize;
                        let mut bytes = alloc::vec![0u8; len];
                        buf.read_bytes(&mut bytes);
                        match parse_preferred_mode(&bytes) {
                            Ok(m) => mode = Some(m.resolution),
                            Err(e) => log::warn!(
                                "vdispl: connector {c}: EDID of {} bytes rejected: {e}",
                                r.edid_sz
                            ),
                        }
                    }
                }
                if let Some(buf) = conn.edid.take() {
                    buf.release(env.gnttab, &mut self.reclaim);
                }
                if is_stopping {
                    return;
                }
                let stats = &mut self.stats.connectors[c];
                stats.is_mode_from_edid = mode.is_some();
                conn.mode = mode.unwrap_or(conn.configured);
                stats.mode = Some(conn.mode);
                log::info!(
                    "vdispl: connector {c}: mode {} ({})",
                    conn.mode,
                    if mode.is_some() { "EDID" } else { "resolution" }
                );
                self.create_buffers(c, env);
            }
            Purpose::DbufCreate(b) => {
                let domid = self.backend_id;
                let buf = &mut session.connectors[c].buffers[b];
                buf.is_created = true;
                if !buf.shbuf.has_data() {
                    if let Err(e) =
                        buf.shbuf
                            .map_backend_pages(env.pages, env.gnttab, domid, &mut self.reclaim)
                    {
                        session.failure =
                            Some(format!("connector {c}: mapping backend buffer: {e}"));
                    }
                }
            }
            Purpose::FbAttach(b) => {
                let conn = &mut session.connectors[c];
                conn.buffers[b].is_attached = true;
                if !is_stopping
                    && conn.buffers.len() == buffers_per_connector
                    && conn.buffers.iter().all(|b| b.is_attached)
                {
                    let frame = self.next_frame[c];
                    self.next_frame[c] += 1;
                    Self::render(
                        conn,
                        0,
                        frame,
                        source,
                        &mut self.stats.connectors[c],
                        self.options.stats_clock,
                    );
                    conn.queue.push_back(Job {
                        request: Request::SetConfig(SetConfigReq {
                            fb_cookie: conn.buffers[0].fb_cookie,
                            x: 0,
                            y: 0,
                            width: conn.mode.width,
                            height: conn.mode.height,
                            bpp: BPP,
                        }),
                        conn: c,
                        purpose: Purpose::SetConfig,
                    });
                    conn.stage = ConnStage::Configuring;
                }
            }
            Purpose::SetConfig => {
                let conn = &mut session.connectors[c];
                conn.is_configured = true;
                if is_stopping {
                    // begin_shutdown queued no reset for it: do it now.
                    conn.queue.push_back(Job {
                        request: Request::SetConfig(SetConfigReq::default()),
                        conn: c,
                        purpose: Purpose::Reset,
                    });
                    return;
                }
                if let BufState::Ready(n) = conn.buffers[0].state {
                    conn.buffers[0].state = BufState::Shown(n);
                }
                conn.stage = ConnStage::Running;
                // Deadline 0 is now: the first flip goes out one period later
                // at the earliest (the first frame is already on screen).
                conn.pacer = Pacer::try_new(now_ns, self.options.rate_hz)
                    .or_else(|| {
                        log::warn!(
                            "vdispl: rate {} Hz out of range, using {DEFAULT_RATE_HZ} Hz",
                            self.options.rate_hz
                        );
                        Pacer::try_new(now_ns, DEFAULT_RATE_HZ)
                    })
                    .map(|p| p.starting_at(1));
                self.stats.connectors[c].mode = Some(conn.mode);
                log::info!(
                    "vdispl: connector {c}: flipping at {} Hz",
                    self.options.rate_hz
                );
                if session
                    .connectors
                    .iter()
                    .all(|c| c.stage == ConnStage::Running)
                {
                    self.failed_sessions = 0;
                    self.stats.sessions_running += 1;
                }
            }
            Purpose::Flip(b) => {
                if matches!(outcome, Outcome::TimedOut) {
                    session.failure = Some(format!("connector {c}: backend stopped answering"));
                    return;
                }
                let conn = &mut session.connectors[c];
                if is_ok {
                    conn.flip_errors_in_a_row = 0;
                } else {
                    self.stats.connectors[c].flip_errors += 1;
                    conn.flip_errors_in_a_row += 1;
                    if conn.flip.is_some_and(|f| f.buf == b) {
                        conn.flip = None;
                        if let BufState::Flipping(n) = conn.buffers[b].state {
                            conn.buffers[b].state = BufState::Ready(n);
                        }
                    }
                    // A backend that keeps refusing our framebuffers has lost
                    // them (e.g. it restarted and reattached to our rings).
                    if conn.flip_errors_in_a_row >= MAX_FLIP_ERRORS_IN_A_ROW {
                        session.failure = Some(format!(
                            "connector {c}: {} flips in a row refused",
                            conn.flip_errors_in_a_row
                        ));
                    }
                }
            }
            Purpose::Reset | Purpose::FbDetach(_) | Purpose::DbufDestroy(_) => {
                if matches!(outcome, Outcome::TimedOut) {
                    // The backend is not answering: drop the rest of the
                    // shutdown conversation.
                    for conn in session.connectors.iter_mut() {
                        conn.queue.clear();
                    }
                    session.failure = Some(format!("connector {c}: no answer while shutting down"));
                }
                let conn = &mut session.connectors[c];
                match job.purpose {
                    Purpose::FbDetach(b) => conn.buffers[b].is_attached = false,
                    Purpose::DbufDestroy(b) => conn.buffers[b].is_created = false,
                    _ => conn.is_configured = false,
                }
            }
        }
    }

    // ---- shutdown -------------------------------------------------------------

    fn begin_shutdown(&mut self, now_ns: u64, env: &mut Env<'_, P>) {
        log::info!("vdispl {}: shutting down", self.device_path);
        let is_connected = self.front_state == XenbusState::Connected;
        let Some(session) = self.session.as_mut().filter(|_| is_connected) else {
            self.teardown(env);
            self.finish_shutdown(now_ns, env);
            return;
        };
        for c in 0..session.connectors.len() {
            let conn = &mut session.connectors[c];
            conn.stage = ConnStage::Stopping;
            conn.flip = None;
            conn.queue
                .retain(|j| !matches!(j.purpose, Purpose::Flip(_)));
            if conn.is_configured {
                conn.queue.push_back(Job {
                    request: Request::SetConfig(SetConfigReq::default()),
                    conn: c,
                    purpose: Purpose::Reset,
                });
            }
        }
        self.shutdown = Some(ShutdownStage::Resets);
    }

    /// Queue `FB_DETACH` and `DBUF_DESTROY` for every buffer (connector 0's
    /// ring), unmapping backend-allocated pages first so the backend can free
    /// them (Linux does the same).
    fn queue_destroys(&mut self, env: &mut Env<'_, P>) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        for c in 0..session.connectors.len() {
            for b in 0..session.connectors[c].buffers.len() {
                let buf = &mut session.connectors[c].buffers[b];
                let (fb_cookie, dbuf_cookie) = (buf.fb_cookie, buf.dbuf_cookie);
                let (is_attached, is_created) = (buf.is_attached, buf.is_created);
                buf.shbuf.unmap_foreign(env.gnttab, &mut self.reclaim);
                let ring0 = &mut session.connectors[0].queue;
                if is_attached {
                    ring0.push_back(Job {
                        request: Request::FbDetach(FbDetachReq { fb_cookie }),
                        conn: c,
                        purpose: Purpose::FbDetach(b),
                    });
                }
                if is_created {
                    ring0.push_back(Job {
                        request: Request::DbufDestroy(DbufDestroyReq { dbuf_cookie }),
                        conn: c,
                        purpose: Purpose::DbufDestroy(b),
                    });
                }
            }
        }
    }

    fn step_shutdown(&mut self, now_ns: u64, env: &mut Env<'_, P>, source: &mut dyn FrameSource) {
        match self.shutdown {
            Some(stage @ (ShutdownStage::Resets | ShutdownStage::Destroys)) => {
                self.service_rings(now_ns, env, source);
                let is_idle = |s: &Option<Session<P>>| {
                    s.as_ref().is_none_or(|s| {
                        s.failure.is_some()
                            || s.connectors
                                .iter()
                                .all(|c| c.queue.is_empty() && c.in_flight.is_none())
                    })
                };
                if !is_idle(&self.session) {
                    return;
                }
                let has_failed = self.session.as_ref().is_none_or(|s| s.failure.is_some());
                if stage == ShutdownStage::Resets && !has_failed {
                    self.queue_destroys(env);
                    self.shutdown = Some(ShutdownStage::Destroys);
                    self.dispatch(now_ns, env);
                    if !is_idle(&self.session) {
                        return;
                    }
                }
                self.teardown(env);
                self.finish_shutdown(now_ns, env);
            }
            Some(ShutdownStage::AwaitBackend { deadline_ns }) => {
                let is_released = self.reclaim.retry(env.gnttab) == 0;
                if is_released || now_ns >= deadline_ns {
                    if !is_released {
                        log::error!(
                            "vdispl {}: backend still maps {} of our pages; they stay granted",
                            self.device_path,
                            self.reclaim.pending()
                        );
                    }
                    self.set_state(env, XenbusState::Closed);
                    self.unwatch(env);
                    log::info!("vdispl {}: closed", self.device_path);
                }
            }
            None => {}
        }
    }

    fn finish_shutdown(&mut self, now_ns: u64, env: &mut Env<'_, P>) {
        self.set_state(env, XenbusState::Closing);
        self.shutdown = Some(ShutdownStage::AwaitBackend {
            deadline_ns: now_ns.saturating_add(self.options.shutdown_timeout_ns),
        });
    }

    // ---- timing -----------------------------------------------------------------

    /// Display buffers per connector ([`Options::buffers`] clamped to 2..=3).
    fn buffers_per_connector(&self) -> usize {
        self.options.buffers.clamp(DEFAULT_BUFFERS, MAX_BUFFERS)
    }

    fn wake_at(&self, now_ns: u64) -> Option<u64> {
        let mut wake: Option<u64> = None;
        let mut at = |t: u64| wake = Some(wake.map_or(t, |w| w.min(t)));
        if self.retry_at_ns > now_ns {
            at(self.retry_at_ns);
        }
        if self.reclaim.pending() > 0 {
            at(self.next_reclaim_ns.max(now_ns));
        }
        if let Some(ShutdownStage::AwaitBackend { deadline_ns }) = self.shutdown {
            at(deadline_ns);
        }
        for conn in self.session.iter().flat_map(|s| s.connectors.iter()) {
            if let Some(f) = &conn.in_flight {
                at(f.deadline_ns);
            }
            if let Some(f) = conn.flip {
                at(f.sent_at_ns
                    .saturating_add(self.options.frame_done_timeout_ns));
            }
            let is_limit_reached = self
                .options
                .flip_limit
                .is_some_and(|n| self.stats.connectors[conn.index].flips_done >= n);
            if conn.stage == ConnStage::Running && !is_limit_reached {
                if let Some(p) = &conn.pacer {
                    at(p.next_wake_ns(now_ns));
                }
            }
        }
        wake
    }
}
