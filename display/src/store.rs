//! The xenstore operations the frontend needs, as a small trait.
//!
//! The frontend only reads and writes a handful of nodes, runs one transaction
//! per (re)connection and needs to learn when the backend's `state` node changes.
//! [`Store`] captures exactly that, so the protocol logic runs on the host against
//! an in-memory store and in the unikernel against `xen::xenstore`'s client (the
//! adapter lives next to the kernel glue). Paths are passed as given: relative
//! paths resolve against `/local/domain/<self>` as xenstored defines.

use alloc::string::String;
use core::fmt;

/// A transaction handle (`tx_id` of `xs_wire.h`); `0` is "no transaction".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxId(pub u32);

impl TxId {
    /// Outside any transaction.
    pub const NONE: TxId = TxId(0);
}

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
}
