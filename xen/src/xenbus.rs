//! Xenbus helpers: device `state` nodes over a [`XenstoreClient`].
//!
//! Each end of a split driver publishes its [`XenbusState`] as a decimal string
//! in `<device path>/state` (`io/xenbus.h`). This module reads and switches
//! states and waits, with a deadline, for the other end to reach a state (a
//! xenstore watch plus re-reads, so no change is missed). It also parses the
//! decimal integers xenbus nodes carry (ring refs, ports, ids) strictly.

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::abi::xenbus::XenbusState;
use crate::xenstore::client::{TxId, XenstoreClient, XenstoreTransport, XsClientError};
use crate::xenstore::wire::parse_decimal_u32;

/// Serial number making [`wait_for_state`]'s watch tokens unique.
static WAIT_SERIAL: AtomicU32 = AtomicU32::new(0);

/// A xenbus-level failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XenbusError {
    /// The xenstore operation failed.
    Xenstore(XsClientError),
    /// A node does not hold what it should (path, value).
    BadValue(String, String),
    /// The device's state node does not exist (device gone).
    NoDevice(String),
    /// The other end did not reach the wanted state before the deadline.
    Timeout {
        /// State node watched.
        path: String,
        /// Last state seen.
        last: XenbusState,
    },
}

impl fmt::Display for XenbusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XenbusError::Xenstore(e) => write!(f, "{e}"),
            XenbusError::BadValue(p, v) => write!(f, "xenstore node {p} has bad value {v:?}"),
            XenbusError::NoDevice(p) => write!(f, "device {p} has no state node"),
            XenbusError::Timeout { path, last } => {
                write!(f, "timed out waiting on {path} (last state {last})")
            }
        }
    }
}

impl From<XsClientError> for XenbusError {
    fn from(e: XsClientError) -> Self {
        XenbusError::Xenstore(e)
    }
}

/// Parse a state value (`"4"`); strict decimal, known states only.
pub fn parse_state(value: &[u8]) -> Option<XenbusState> {
    let s = core::str::from_utf8(value).ok()?;
    XenbusState::try_from(parse_decimal_u32(s)?).ok()
}

/// `<dev_path>/state`.
pub fn state_path(dev_path: &str) -> String {
    format!("{dev_path}/state")
}

/// Read a node holding a decimal `u32` (ring refs, event channels, ids).
pub fn read_u32<T: XenstoreTransport>(
    xs: &mut XenstoreClient<T>,
    path: &str,
) -> Result<u32, XenbusError> {
    let v = xs.read(TxId::NONE, path)?;
    core::str::from_utf8(&v)
        .ok()
        .and_then(parse_decimal_u32)
        .ok_or_else(|| XenbusError::BadValue(path.into(), String::from_utf8_lossy(&v).into()))
}

/// Like [`read_u32`] but a missing node is `None`.
pub fn read_optional_u32<T: XenstoreTransport>(
    xs: &mut XenstoreClient<T>,
    path: &str,
) -> Result<Option<u32>, XenbusError> {
    match read_u32(xs, path) {
        Err(XenbusError::Xenstore(e)) if e.is_enoent() => Ok(None),
        other => other.map(Some),
    }
}

/// Read the state of the device at `dev_path`. A missing node reads as
/// [`XenbusState::Unknown`] (as Linux's `xenbus_read_driver_state`); a
/// malformed one is an error.
pub fn read_state<T: XenstoreTransport>(
    xs: &mut XenstoreClient<T>,
    dev_path: &str,
) -> Result<XenbusState, XenbusError> {
    let path = state_path(dev_path);
    match xs.read(TxId::NONE, &path) {
        Ok(v) => parse_state(&v)
            .ok_or_else(|| XenbusError::BadValue(path, String::from_utf8_lossy(&v).into())),
        Err(e) if e.is_enoent() => Ok(XenbusState::Unknown),
        Err(e) => Err(e.into()),
    }
}

/// Switch our device's state: in a transaction, check the state node exists
/// (the toolstack created it; if it is gone the device is being removed) and
/// write the new state (as Linux's `xenbus_switch_state`). Retries on `EAGAIN`.
pub fn switch_state<T: XenstoreTransport>(
    xs: &mut XenstoreClient<T>,
    dev_path: &str,
    state: XenbusState,
) -> Result<(), XenbusError> {
    let path = state_path(dev_path);
    let value = format!("{}", state as u32);
    let result = xs.transaction(
        crate::xenstore::client::DEFAULT_TRANSACTION_ATTEMPTS,
        |tx| {
            tx.read(&path)?;
            tx.write(&path, value.as_bytes())
        },
    );
    match result {
        Err(e) if e.is_enoent() => Err(XenbusError::NoDevice(dev_path.into())),
        other => Ok(other?),
    }
}

/// Wait until the state of the device at `dev_path` satisfies `wanted`, or
/// `deadline_ns` (transport clock) passes. Returns the state reached.
///
/// Uses a private watch on the state node; watch events for other tokens stay
/// queued in the client.
pub fn wait_for_state<T: XenstoreTransport>(
    xs: &mut XenstoreClient<T>,
    dev_path: &str,
    deadline_ns: u64,
    mut wanted: impl FnMut(XenbusState) -> bool,
) -> Result<XenbusState, XenbusError> {
    let path = state_path(dev_path);
    // Unique per call, so a watch left behind by a failed unwatch cannot make
    // the next wait fail with EEXIST.
    let serial = WAIT_SERIAL.fetch_add(1, Ordering::Relaxed);
    let token = format!("xenbus-wait:{serial}:{path}");
    xs.watch(&path, &token)?;
    let result = (|| loop {
        let state = read_state(xs, dev_path)?;
        if wanted(state) {
            return Ok(state);
        }
        let event = xs.wait_watch_event_matching(deadline_ns, |e| e.token == token)?;
        if event.is_none() {
            // Deadline: one final read so a change racing the deadline counts.
            let last = read_state(xs, dev_path)?;
            return if wanted(last) {
                Ok(last)
            } else {
                Err(XenbusError::Timeout {
                    path: path.clone(),
                    last,
                })
            };
        }
    })();
    // Best effort: the result matters more than a failed unwatch.
    let _ = xs.unwatch(&path, &token);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::DomId;
    use crate::xenstore::fake::FakeXenstore;

    const DEV: &str = "/local/domain/1/device/vdispl/0";
    const BE: &str = "/local/domain/0/backend/vdispl/1/0";

    #[test]
    fn parse_states_strictly() {
        for s in XenbusState::ALL {
            assert_eq!(parse_state(format!("{}", s as u32).as_bytes()), Some(s));
        }
        for bad in [
            &b""[..],
            b"9",
            b"-1",
            b"4 ",
            b"04x",
            b"\xff",
            b"99999999999",
        ] {
            assert_eq!(parse_state(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn read_and_switch_state() {
        let store = FakeXenstore::new();
        let mut xs = XenstoreClient::new(store.connect(DomId(1)));
        assert_eq!(read_state(&mut xs, DEV).unwrap(), XenbusState::Unknown);
        assert_eq!(
            switch_state(&mut xs, DEV, XenbusState::Initialised),
            Err(XenbusError::NoDevice(DEV.into()))
        );
        store.write(&format!("{DEV}/state"), b"1");
        switch_state(&mut xs, DEV, XenbusState::Initialised).unwrap();
        assert_eq!(
            store.read_string(&format!("{DEV}/state")).as_deref(),
            Some("3")
        );
        assert_eq!(read_state(&mut xs, DEV).unwrap(), XenbusState::Initialised);
        store.write(&format!("{DEV}/state"), b"banana");
        assert!(matches!(
            read_state(&mut xs, DEV),
            Err(XenbusError::BadValue(..))
        ));
        store.write("/n", b"4294967295");
        assert_eq!(read_u32(&mut xs, "/n").unwrap(), u32::MAX);
        store.write("/n", b"4294967296");
        assert!(read_u32(&mut xs, "/n").is_err());
        assert_eq!(read_optional_u32(&mut xs, "/missing").unwrap(), None);
    }

    #[test]
    fn wait_for_state_sees_change_or_times_out() {
        let store = FakeXenstore::new();
        let mut xs = XenstoreClient::new(store.connect(DomId(1)));
        store.write(&format!("{BE}/state"), b"2");
        // Already there.
        let s = wait_for_state(&mut xs, BE, 1_000, |s| s == XenbusState::InitWait).unwrap();
        assert_eq!(s, XenbusState::InitWait);
        // Not reached: times out at the deadline with the last state.
        let deadline = store.now_ns() + 3_000_000_000;
        let e = wait_for_state(&mut xs, BE, deadline, |s| s == XenbusState::Connected).unwrap_err();
        assert_eq!(
            e,
            XenbusError::Timeout {
                path: format!("{BE}/state"),
                last: XenbusState::InitWait
            }
        );
        assert_eq!(store.now_ns(), deadline);
        // An unrelated watch's events survive a wait.
        xs.watch("/other", "keep").unwrap();
        store.write(&format!("{BE}/state"), b"4");
        let s = wait_for_state(&mut xs, BE, store.now_ns() + 10, |s| {
            s == XenbusState::Connected
        })
        .unwrap();
        assert_eq!(s, XenbusState::Connected);
        xs.poll_watch_events().unwrap();
        let mut tokens = Vec::new();
        while let Some(e) = xs.take_watch_event() {
            tokens.push(e.token);
        }
        assert!(tokens.iter().any(|t| t == "keep"));
        assert!(tokens.iter().all(|t| t == "keep"), "{tokens:?}");
    }
}
