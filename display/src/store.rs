//! The xenstore operations the frontend needs, as a small trait.
//!
//! The frontend only reads and writes a handful of nodes, runs one transaction
//! per (re)connection and needs to learn when the backend's `state` node changes.
//! [`Store`] captures exactly that, so the protocol logic runs on the host against
//! an in-memory store and in the unikernel against `xen::xenstore`'s client (the
//! adapter is [`ClientStore`]). Paths are passed as given: relative paths
//! resolve against `/local/domain/<self>` as xenstored defines.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use core::fmt;

use xen::xenstore::{WatchEvent, XenstoreClient, XenstoreTransport, XsClientError};

pub use xen::xenstore::client::TxId;

/// Why a xenstore operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The transaction conflicted with another writer (`EAGAIN`): start it again.
    Again,
    /// Any other error reply from xenstored, by its `xs_wire.h` name (`EACCES`, ...).
    Xenstored(String),
    /// The transport failed (ring broken, timeout, malformed reply).
    Transport(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Again => f.write_str("transaction conflict (EAGAIN)"),
            StoreError::Xenstored(e) => write!(f, "xenstored error {e}"),
            StoreError::Transport(e) => write!(f, "xenstore transport: {e}"),
        }
    }
}

/// Xenstore access for the frontend.
pub trait Store {
    /// Read a node; `Ok(None)` when it does not exist (`ENOENT`).
    fn read(&mut self, tx: TxId, path: &str) -> Result<Option<String>, StoreError>;
    /// Write (create or replace) a node.
    fn write(&mut self, tx: TxId, path: &str, value: &str) -> Result<(), StoreError>;
    /// Start a transaction.
    fn transaction_start(&mut self) -> Result<TxId, StoreError>;
    /// End a transaction, committing it if `is_commit`. A conflicting commit
    /// returns [`StoreError::Again`] and nothing of it is applied.
    fn transaction_end(&mut self, tx: TxId, is_commit: bool) -> Result<(), StoreError>;
    /// Register a watch on `path` (fires once at registration, as xenstored does).
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
    /// Remove a watch.
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
    /// Take one pending watch event carrying `token`, if any has fired since the
    /// last call (events for other tokens are left for their owners). Returns the
    /// path that fired.
    fn take_watch_event(&mut self, token: &str) -> Option<String>;
    /// Whether an event carrying `token` is waiting (already received from
    /// xenstored, so its event channel will not fire again for it).
    fn has_watch_event(&mut self, token: &str) -> bool;
}

impl From<XsClientError> for StoreError {
    fn from(e: XsClientError) -> Self {
        match e {
            e if e.is_eagain() => StoreError::Again,
            XsClientError::Xs(errno) => StoreError::Xenstored(errno.to_string()),
            other => StoreError::Transport(other.to_string()),
        }
    }
}

/// [`Store`] over `xen::xenstore`'s client (the guest's xenstore ring, or
/// `FakeXenstore` in tests).
///
/// The client has one queue of watch events for every token; this adapter
/// drains it and keeps events for tokens nobody asked about yet, so several
/// users (the frontend's backend-state watch, the kernel's `control/shutdown`
/// watch) can each take their own with [`Store::take_watch_event`].
pub struct ClientStore<T: XenstoreTransport> {
    client: XenstoreClient<T>,
    events: VecDeque<WatchEvent>,
}

impl<T: XenstoreTransport> ClientStore<T> {
    /// Wrap a client.
    pub fn new(client: XenstoreClient<T>) -> Self {
        ClientStore {
            client,
            events: VecDeque::new(),
        }
    }

    /// Give the client back (e.g. to the kernel, once the display is done).
    /// Watch events queued here but not yet taken are dropped.
    pub fn into_client(self) -> XenstoreClient<T> {
        self.client
    }

    /// The client, for operations outside [`Store`].
    pub fn client_mut(&mut self) -> &mut XenstoreClient<T> {
        &mut self.client
    }

    fn collect_events(&mut self) {
        if let Err(e) = self.client.poll_watch_events() {
            log::warn!("xenstore: polling watch events: {e}");
        }
        while let Some(e) = self.client.take_watch_event() {
            self.events.push_back(e);
        }
    }

    /// Watch events queued here and in the client, for any token.
    pub fn pending_watch_events(&self) -> usize {
        self.events.len() + self.client.pending_watch_events()
    }
}

impl<T: XenstoreTransport> fmt::Debug for ClientStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientStore")
            .field("queued_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl<T: XenstoreTransport> Store for ClientStore<T> {
    fn read(&mut self, tx: TxId, path: &str) -> Result<Option<String>, StoreError> {
        Ok(self.client.try_read_string(tx, path)?)
    }
    fn write(&mut self, tx: TxId, path: &str, value: &str) -> Result<(), StoreError> {
        Ok(self.client.write(tx, path, value.as_bytes())?)
    }
    fn transaction_start(&mut self) -> Result<TxId, StoreError> {
        Ok(self.client.transaction_start()?)
    }
    fn transaction_end(&mut self, tx: TxId, is_commit: bool) -> Result<(), StoreError> {
        Ok(self.client.transaction_end(tx, is_commit)?)
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        Ok(self.client.watch(path, token)?)
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.events.retain(|e| e.token != token);
        Ok(self.client.unwatch(path, token)?)
    }
    fn take_watch_event(&mut self, token: &str) -> Option<String> {
        self.collect_events();
        let i = self.events.iter().position(|e| e.token == token)?;
        self.events.remove(i).map(|e| e.path)
    }
    fn has_watch_event(&mut self, token: &str) -> bool {
        self.collect_events();
        self.events.iter().any(|e| e.token == token)
    }
}
