//! One vdispl device of one guest: its xenbus lifecycle around a [`Connection`].
//!
//! The daemon runs one [`Device`] per `backend/vdispl/<domid>/<dev>` in its own
//! thread and feeds it three kinds of wake-ups: xenstore changes
//! ([`Device::on_xenstore_change`]), event-channel ports
//! ([`Device::on_ports`]) and timer expiry ([`Device::on_timer`]). Every
//! decision about states is `crate::lifecycle::step`; this type carries it out.

use std::sync::Arc;

use xen::abi::displif::XENDISPL_FIELD_BE_VERSIONS;
use xen::abi::xenbus::XenbusState;
use xen::types::{DomId, EvtchnPort};

use crate::connection::{Connection, Fatal};
use crate::frontend_cfg::{self, SUPPORTED_VERSIONS};
use crate::lifecycle::{step, Phase, Step};
use crate::limits::Budget;
use crate::platform::{Platform, Xenstore};
use crate::settings::Settings;

/// Whether the device still exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Keep serving.
    Alive,
    /// The toolstack removed the backend directory: stop the thread.
    Gone,
}

/// One device.
pub struct Device {
    domid: DomId,
    name: String,
    backend_path: String,
    frontend_path: String,
    xs: Box<dyn Xenstore>,
    platform: Platform,
    settings: Arc<Settings>,
    budget: Arc<Budget>,
    phase: Phase,
    connection: Option<Connection>,
    sessions: u32,
}

impl Device {
    /// The device at `backend_path` (`.../backend/vdispl/<domid>/<name>`); reads
    /// and checks the `frontend` and `frontend-id` nodes.
    pub fn new(
        domid: DomId,
        name: &str,
        backend_path: &str,
        mut xs: Box<dyn Xenstore>,
        platform: Platform,
        settings: Arc<Settings>,
        budget: Arc<Budget>,
    ) -> Result<Device, String> {
        let read = |xs: &mut Box<dyn Xenstore>, node: &str| -> Result<String, String> {
            let path = format!("{backend_path}/{node}");
            xs.read(&path)
                .map_err(|e| format!("reading {path}: {e}"))?
                .ok_or_else(|| format!("{path} is missing"))
        };
        let frontend_path = read(&mut xs, "frontend")?;
        let frontend_id = read(&mut xs, "frontend-id")?;
        if frontend_id != domid.0.to_string() {
            return Err(format!(
                "{backend_path}/frontend-id is '{frontend_id}', expected {domid}"
            ));
        }
        let expected_prefix = format!("/local/domain/{domid}/");
        if !frontend_path.starts_with(&expected_prefix) || frontend_path.contains("..") {
            return Err(format!(
                "{backend_path}/frontend '{frontend_path}' is not under {expected_prefix}"
            ));
        }
        Ok(Device {
            domid,
            name: name.to_string(),
            backend_path: backend_path.to_string(),
            frontend_path,
            xs,
            platform,
            settings,
            budget,
            phase: Phase::AwaitingFrontend,
            connection: None,
            sessions: 0,
        })
    }

    /// The frontend's xenstore directory (to watch).
    pub fn frontend_path(&self) -> &str {
        &self.frontend_path
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The live connection (tests).
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// Mutable access to the platform (tests, the event loop).
    pub fn platform_mut(&mut self) -> &mut Platform {
        &mut self.platform
    }

    fn log_prefix(&self) -> String {
        format!("dom{}/{}", self.domid, self.name)
    }

    fn set_state(&mut self, state: XenbusState) -> Result<(), String> {
        // Never recreate a directory the toolstack is removing.
        let frontend_node = format!("{}/frontend", self.backend_path);
        if matches!(self.xs.read(&frontend_node), Ok(None)) {
            log::info!(
                "{}: backend directory gone; not publishing {state}",
                self.log_prefix()
            );
            return Ok(());
        }
        let path = format!("{}/state", self.backend_path);
        self.xs
            .write(&path, &u32::from(state).to_string())
            .map_err(|e| format!("writing {path}: {e}"))?;
        log::info!("{}: backend state -> {state}", self.log_prefix());
        Ok(())
    }

    /// Announce the versions and go to InitWait.
    pub fn start(&mut self) -> Result<(), String> {
        let path = format!("{}/{XENDISPL_FIELD_BE_VERSIONS}", self.backend_path);
        self.xs
            .write(&path, SUPPORTED_VERSIONS)
            .map_err(|e| format!("writing {path}: {e}"))?;
        self.phase = Phase::AwaitingFrontend;
        self.set_state(XenbusState::InitWait)
    }

    fn frontend_state(&mut self) -> XenbusState {
        let path = format!("{}/state", self.frontend_path);
        match self.xs.read(&path) {
            Ok(Some(v)) => v
                .parse::<u32>()
                .ok()
                .and_then(|n| XenbusState::try_from(n).ok())
                .unwrap_or_else(|| {
                    log::warn!(
                        "{}: {path} = '{v}' is not a xenbus state; treating as Unknown",
                        self.log_prefix()
                    );
                    XenbusState::Unknown
                }),
            Ok(None) => XenbusState::Unknown,
            Err(e) => {
                log::warn!("{}: reading {path}: {e}", self.log_prefix());
                XenbusState::Unknown
            }
        }
    }

    /// Something under the watched paths changed.
    pub fn on_xenstore_change(&mut self) -> Liveness {
        let backend_state = format!("{}/frontend", self.backend_path);
        if matches!(self.xs.read(&backend_state), Ok(None)) {
            self.shutdown("backend directory removed");
            return Liveness::Gone;
        }
        let frontend = self.frontend_state();
        match step(self.phase, frontend) {
            Step::Stay => {}
            Step::Connect => self.connect(),
            Step::Disconnect => {
                log::info!(
                    "{}: frontend is {frontend}: disconnecting",
                    self.log_prefix()
                );
                self.drop_connection(&format!("frontend {}", frontend.name()));
                self.enter_init_wait();
            }
            Step::Reset => {
                log::info!(
                    "{}: frontend is {frontend}: ready for a new connection",
                    self.log_prefix()
                );
                self.enter_init_wait();
            }
        }
        Liveness::Alive
    }

    fn enter_init_wait(&mut self) {
        self.phase = Phase::AwaitingFrontend;
        if let Err(e) = self.set_state(XenbusState::InitWait) {
            log::error!("{}: {e}", self.log_prefix());
        }
    }

    fn fail(&mut self, why: &str) {
        log::error!("{}: {why}", self.log_prefix());
        self.phase = Phase::Failed;
        if let Err(e) = self.set_state(XenbusState::Closed) {
            log::error!("{}: {e}", self.log_prefix());
        }
    }

    fn connect(&mut self) {
        let config = match frontend_cfg::read(self.xs.as_mut(), &self.frontend_path) {
            Ok(c) => c,
            Err(e) => return self.fail(&format!("bad frontend configuration: {e}")),
        };
        let session = self.sessions;
        match Connection::open(
            self.domid,
            &self.name,
            session,
            &config,
            Arc::clone(&self.settings),
            Arc::clone(&self.budget),
            &mut self.platform,
        ) {
            Ok(connection) => {
                self.sessions += 1;
                self.connection = Some(connection);
                self.phase = Phase::Connected;
                if let Err(e) = self.set_state(XenbusState::Connected) {
                    self.drop_connection("could not publish Connected");
                    self.fail(&e);
                }
            }
            Err(e) => self.fail(&format!("connecting: {e}")),
        }
    }

    fn drop_connection(&mut self, reason: &str) {
        if let Some(connection) = self.connection.take() {
            connection.close(&mut self.platform, reason);
        }
    }

    /// Local ports this device listens on.
    pub fn ports(&self) -> Vec<EvtchnPort> {
        self.connection
            .as_ref()
            .map(|c| c.ports())
            .unwrap_or_default()
    }

    /// Event channels fired.
    pub fn on_ports(&mut self, ports: &[EvtchnPort]) {
        for &port in ports {
            self.with_connection(|c, platform| c.on_port(port, platform));
        }
        // Every ring is served and every due event is out: now the checksums.
        self.on_backlog();
    }

    /// Whether requests or shown frames are left for the loop's next turn
    /// (the work per call is bounded; no kick comes for what was left).
    pub fn has_backlog(&self) -> bool {
        self.connection.as_ref().is_some_and(|c| c.has_backlog())
    }

    /// Serve queued requests and checksum shown frames (a bounded amount).
    pub fn on_backlog(&mut self) {
        self.with_connection(Connection::serve_and_capture);
    }

    /// Timer expired (or any wake-up): publish due events.
    pub fn on_timer(&mut self) {
        self.with_connection(Connection::on_timer);
    }

    /// Run `work` on the connection, if any; a fatal error disconnects the
    /// frontend (recorded in its stats, backend state Closing).
    fn with_connection(
        &mut self,
        work: impl FnOnce(&mut Connection, &mut Platform) -> Result<(), Fatal>,
    ) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        if let Err(fatal) = work(connection, &mut self.platform) {
            connection.record_fatal(&fatal);
            self.drop_connection(&fatal.to_string());
            self.fail(&format!("disconnecting the frontend: {fatal}"));
        }
    }

    /// When [`Device::on_timer`] next has work.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let now = self.platform.now_ns();
        self.connection
            .as_ref()
            .and_then(|c| c.next_deadline_ns(now))
    }

    /// Tear down and tell the frontend the backend is gone (best effort).
    pub fn shutdown(&mut self, reason: &str) {
        self.drop_connection(reason);
        log::info!("{}: stopping ({reason})", self.log_prefix());
        let path = format!("{}/state", self.backend_path);
        if matches!(
            self.xs.read(&format!("{}/frontend", self.backend_path)),
            Ok(Some(_))
        ) {
            let _ = self
                .xs
                .write(&path, &u32::from(XenbusState::Closed).to_string());
        }
    }
}
