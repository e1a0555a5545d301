//! Toolstack control: `control/shutdown` (what `xl shutdown` / `xl reboot` write).
//!
//! At start we advertise `control/feature-poweroff` / `feature-reboot` and watch
//! `control/shutdown` (relative paths resolve under our `/local/domain/<id>`).
//! Whoever runs the main loop passes every xenstore watch event to
//! [`handle_watch_event`]; events for the shutdown token are consumed there and,
//! for `poweroff`/`reboot`, the request is acknowledged (the node is cleared, as
//! Linux does) and the domain shuts down with the matching reason.

use xen::xenstore::client::{TxId, WatchEvent, XenstoreTransport};

use crate::exit::{self, Outcome};
use crate::xen_core;

/// Path of the toolstack's request node.
pub const SHUTDOWN_PATH: &str = "control/shutdown";
/// Token of our watch on it.
pub const SHUTDOWN_TOKEN: &str = "pvdispl-control-shutdown";

/// What the toolstack asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `poweroff` (`xl shutdown`).
    Poweroff,
    /// `reboot` (`xl reboot`).
    Reboot,
}

/// Map the node's value to a request (`""`: none; unsupported values such as
/// `suspend` are logged and ignored). Callers that own the xenstore client
/// themselves (the frontend's store) read the node, call this, acknowledge by
/// writing `""`, then [`perform`].
pub fn parse_request(value: &str) -> Option<Request> {
    match value {
        "" => None,
        "poweroff" | "halt" => Some(Request::Poweroff),
        "reboot" => Some(Request::Reboot),
        other => {
            log::warn!("control/shutdown: `{other}` is not supported; ignored");
            None
        }
    }
}

/// Advertise the features and set the watch.
pub fn init() -> Result<(), xen::xenstore::client::XsClientError> {
    xen_core::with_xenstore(|xs| {
        for feature in ["control/feature-poweroff", "control/feature-reboot"] {
            if let Err(e) = xs.write(TxId::NONE, feature, b"1") {
                log::warn!("cannot advertise {feature}: {e}");
            }
        }
        xs.watch(SHUTDOWN_PATH, SHUTDOWN_TOKEN)
    })
    .unwrap_or(Ok(()))
}

/// Look at a watch event. Returns `None` if it was not ours (the caller
/// dispatches it elsewhere). For ours, reads the node and returns the request,
/// if any (`Some(None)`: ours, but nothing to do).
pub fn handle_watch_event(event: &WatchEvent) -> Option<Option<Request>> {
    if event.token != SHUTDOWN_TOKEN {
        return None;
    }
    let value = xen_core::with_xenstore(|xs| xs.try_read_string(TxId::NONE, SHUTDOWN_PATH))?;
    let request = match value {
        Ok(Some(v)) => parse_request(&v),
        Ok(None) => None,
        Err(e) => {
            log::warn!("reading control/shutdown: {e}");
            None
        }
    };
    if request.is_some() {
        // Acknowledge, so the toolstack knows the guest saw it.
        xen_core::with_xenstore(|xs| {
            if let Err(e) = xs.write(TxId::NONE, SHUTDOWN_PATH, b"") {
                log::warn!("acknowledging control/shutdown: {e}");
            }
        });
    }
    Some(request)
}

/// Carry out a request: never returns.
pub fn perform(request: Request) -> ! {
    match request {
        Request::Poweroff => {
            log::info!("control/shutdown: poweroff requested, powering off");
            exit::exit(Outcome::Success)
        }
        Request::Reboot => {
            log::info!("control/shutdown: reboot requested");
            if let Some(hv) = xen_core::hypervisor() {
                let e = hv.shutdown(xen::abi::sched::SHUTDOWN_REBOOT);
                log::error!("SCHEDOP_shutdown(reboot) failed: {e}");
            }
            exit::exit(Outcome::Failure)
        }
    }
}

/// How long one idle wait lasts before re-checking (ns).
const IDLE_WAIT_NS: u64 = 10_000_000_000;

/// Do nothing but serve `control/shutdown` until told to stop.
pub fn idle_until_shutdown() -> ! {
    log::info!("idle: waiting for control/shutdown");
    loop {
        let event = xen_core::with_xenstore(|xs| {
            let deadline = xs.transport().now_ns().saturating_add(IDLE_WAIT_NS);
            xs.wait_watch_event(deadline)
        });
        match event {
            Some(Ok(Some(event))) => match handle_watch_event(&event) {
                Some(Some(request)) => perform(request),
                Some(None) => {}
                None => log::debug!(
                    "idle: ignoring watch event {} ({})",
                    event.path,
                    event.token
                ),
            },
            Some(Ok(None)) => {}
            Some(Err(e)) => {
                log::error!("idle: xenstore failed: {e}");
                exit::exit(Outcome::Failure)
            }
            None => {
                log::error!("idle: no xenstore, cannot wait for shutdown");
                exit::exit(Outcome::Failure)
            }
        }
    }
}
