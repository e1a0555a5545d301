//! The backend's [`Xenstore`] trait over the shared `xen::xenstore` client.
//!
//! In dom0 the transport is `/dev/xen/xenbus` (`crate::os::xenbus`); in tests
//! any [`XenstoreTransport`], e.g. `xen::xenstore::fake`'s in-memory xenstored.

use xen::xenstore::client::TxId;
use xen::xenstore::{WatchEvent, XenstoreClient, XenstoreTransport};

use crate::platform::{OsError, Xenstore};

/// A xenstore connection with watches.
pub struct XsConnection<T: XenstoreTransport> {
    client: XenstoreClient<T>,
}

impl<T: XenstoreTransport> XsConnection<T> {
    /// Wrap a transport.
    pub fn new(transport: T) -> XsConnection<T> {
        XsConnection {
            client: XenstoreClient::new(transport),
        }
    }

    /// Watch `path` (and below) with `token`.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), OsError> {
        self.client
            .watch(path, token)
            .map_err(|e| OsError::Xenstore(format!("watch {path}: {e}")))
    }

    /// Stop watching.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), OsError> {
        self.client
            .unwatch(path, token)
            .map_err(|e| OsError::Xenstore(format!("unwatch {path}: {e}")))
    }

    /// Next watch event, waiting at most until `deadline_ns` (transport clock).
    pub fn wait_watch_event(&mut self, deadline_ns: u64) -> Result<Option<WatchEvent>, OsError> {
        self.client
            .wait_watch_event(deadline_ns)
            .map_err(|e| OsError::Xenstore(e.to_string()))
    }

    /// A queued watch event (no I/O).
    pub fn take_watch_event(&mut self) -> Option<WatchEvent> {
        self.client.take_watch_event()
    }

    /// The transport (for its descriptor and clock).
    pub fn transport(&self) -> &T {
        self.client.transport()
    }
}

impl<T: XenstoreTransport> Xenstore for XsConnection<T> {
    fn read(&mut self, path: &str) -> Result<Option<String>, OsError> {
        self.client
            .try_read_string(TxId::NONE, path)
            .map_err(|e| OsError::Xenstore(format!("read {path}: {e}")))
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), OsError> {
        self.client
            .write(TxId::NONE, path, value.as_bytes())
            .map_err(|e| OsError::Xenstore(format!("write {path}: {e}")))
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, OsError> {
        match self.client.directory(TxId::NONE, path) {
            Ok(v) => Ok(v),
            Err(e) if e.is_enoent() => Ok(Vec::new()),
            Err(e) => Err(OsError::Xenstore(format!("directory {path}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen::types::DomId;
    use xen::xenstore::fake::FakeXenstore;

    #[test]
    fn reads_writes_lists_and_watches_through_the_real_codec() {
        let store = FakeXenstore::new();
        let mut xs = XsConnection::new(store.connect(DomId::DOM0));
        assert_eq!(
            xs.read("/local/domain/1/device/vdispl/0/state").unwrap(),
            None
        );
        xs.write("/local/domain/0/backend/vdispl/1/0/state", "2")
            .unwrap();
        xs.write("/local/domain/0/backend/vdispl/1/1/state", "1")
            .unwrap();
        assert_eq!(
            xs.read("/local/domain/0/backend/vdispl/1/0/state")
                .unwrap()
                .as_deref(),
            Some("2")
        );
        let mut devs = xs.directory("/local/domain/0/backend/vdispl/1").unwrap();
        devs.sort();
        assert_eq!(devs, ["0", "1"]);
        assert!(xs.directory("/nowhere").unwrap().is_empty());
        xs.watch("/local/domain/0/backend/vdispl", "root").unwrap();
        let first = xs.wait_watch_event(u64::MAX).unwrap().unwrap();
        assert_eq!(first.token, "root");
        xs.write("/local/domain/0/backend/vdispl/2/0/state", "1")
            .unwrap();
        let mut saw_change = false;
        while let Some(event) = xs.wait_watch_event(0).unwrap() {
            saw_change |= event.path == "/local/domain/0/backend/vdispl/2/0/state";
        }
        assert!(saw_change);
    }
}
