//! A xenstore client over a byte transport: requests, replies, watches, transactions.
//!
//! [`XenstoreClient`] sends one request at a time, matches the reply by request
//! id (stale replies to earlier, timed-out requests are dropped and counted),
//! turns `XS_ERROR` into [`XsClientError::Xs`], and queues `XS_WATCH_EVENT`s that
//! arrive meanwhile; they are taken separately with
//! [`XenstoreClient::take_watch_event`] / [`XenstoreClient::wait_watch_event`].
//! Every wait is bounded by a deadline on the transport's clock. Malformed
//! watch events are dropped and counted rather than failing the unrelated
//! request they arrived during; if sending a request times out half-way, its
//! remaining bytes go out before the next request, so xenstored's view of the
//! byte stream stays in frame.
//!
//! Transports: [`super::ring::RingTransport`] (the guest's xenstore page + event
//! channel) and, in the dom0 backend, `/dev/xen/xenbus`.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::wire::{self, Decoder, XsErrno, XsMessage, XsRequest, XsWireError};
use crate::abi::xs_wire::{XsType, XENSTORE_PAYLOAD_MAX, XSD_SOCKMSG_SIZE};
use crate::platform::{PlatformError, WaitOutcome};
use crate::types::DomId;

/// A byte stream to xenstored.
pub trait XenstoreTransport {
    /// Write as much of `bytes` as fits now; returns how many were taken (0 if
    /// full). Must not block.
    fn send(&mut self, bytes: &[u8]) -> Result<usize, PlatformError>;
    /// Read available bytes into `buf`; returns how many (0 if none). Must not block.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, PlatformError>;
    /// Block until the peer may have produced data or freed space, or until
    /// `deadline_ns` (on [`XenstoreTransport::now_ns`]'s clock) passes. Spurious
    /// wake-ups are allowed.
    fn wait(&mut self, deadline_ns: u64) -> Result<WaitOutcome, PlatformError>;
    /// Current time in nanoseconds (monotonic).
    fn now_ns(&self) -> u64;
}

/// A watch firing: the node that changed and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// Path that changed (may be below the watched path).
    pub path: String,
    /// Token given to [`XenstoreClient::watch`].
    pub token: String,
}

/// Why a xenstore operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsClientError {
    /// xenstored answered `XS_ERROR` with this errno.
    Xs(XsErrno),
    /// The request could not be encoded or a reply was malformed.
    Wire(XsWireError),
    /// The reply had the right id but an unexpected type.
    UnexpectedReply {
        /// Type we sent.
        sent: XsType,
        /// Type received.
        got: XsType,
    },
    /// No reply before the deadline.
    Timeout,
    /// The transport failed.
    Transport(PlatformError),
    /// A transaction kept failing with `EAGAIN`.
    TooManyRetries(u32),
}

impl XsClientError {
    /// Is this xenstored's `ENOENT` (node does not exist)?
    pub fn is_enoent(&self) -> bool {
        *self == XsClientError::Xs(XsErrno::Enoent)
    }
    /// Is this xenstored's `EAGAIN` (transaction conflict)?
    pub fn is_eagain(&self) -> bool {
        *self == XsClientError::Xs(XsErrno::Eagain)
    }
}

impl fmt::Display for XsClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsClientError::Xs(e) => write!(f, "xenstored: {e}"),
            XsClientError::Wire(e) => write!(f, "{e}"),
            XsClientError::UnexpectedReply { sent, got } => {
                write!(f, "xenstore reply of type {got:?} to {sent:?}")
            }
            XsClientError::Timeout => f.write_str("xenstore request timed out"),
            XsClientError::Transport(e) => write!(f, "xenstore transport: {e}"),
            XsClientError::TooManyRetries(n) => {
                write!(
                    f,
                    "xenstore transaction still conflicting after {n} attempts"
                )
            }
        }
    }
}

impl From<XsWireError> for XsClientError {
    fn from(e: XsWireError) -> Self {
        XsClientError::Wire(e)
    }
}

impl From<PlatformError> for XsClientError {
    fn from(e: PlatformError) -> Self {
        XsClientError::Transport(e)
    }
}

/// A transaction id; [`TxId::NONE`] outside transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxId(pub u32);

impl TxId {
    /// No transaction.
    pub const NONE: TxId = TxId(0);
}

/// Default time to wait for a reply (5 s).
pub const DEFAULT_REQUEST_TIMEOUT_NS: u64 = 5_000_000_000;
/// Most bytes taken from the transport per internal read (four maximal messages).
pub const PUMP_LIMIT_BYTES: usize = 4 * (XSD_SOCKMSG_SIZE + XENSTORE_PAYLOAD_MAX);

/// Default attempts of [`XenstoreClient::transaction`].
pub const DEFAULT_TRANSACTION_ATTEMPTS: u32 = 16;

/// Request/reply client; see the module docs.
pub struct XenstoreClient<T: XenstoreTransport> {
    transport: T,
    decoder: Decoder,
    next_req_id: u32,
    watch_events: VecDeque<WatchEvent>,
    request_timeout_ns: u64,
    stale_replies: u64,
    malformed_watch_events: u64,
    /// Tail of a request whose sending timed out: it must reach xenstored
    /// before anything else, or the byte stream would be desynchronised.
    unsent: Vec<u8>,
}

impl<T: XenstoreTransport> XenstoreClient<T> {
    /// A client over `transport`.
    pub fn new(transport: T) -> Self {
        XenstoreClient {
            transport,
            decoder: Decoder::new(),
            next_req_id: 1,
            watch_events: VecDeque::new(),
            request_timeout_ns: DEFAULT_REQUEST_TIMEOUT_NS,
            stale_replies: 0,
            malformed_watch_events: 0,
            unsent: Vec::new(),
        }
    }

    /// Change the per-request reply timeout.
    pub fn set_request_timeout_ns(&mut self, timeout_ns: u64) {
        self.request_timeout_ns = timeout_ns;
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Replies dropped because their id belonged to an earlier request.
    pub fn stale_replies(&self) -> u64 {
        self.stale_replies
    }

    /// Watch events dropped because their payload was malformed.
    pub fn malformed_watch_events(&self) -> u64 {
        self.malformed_watch_events
    }

    /// Send `req` and wait for its reply payload.
    pub fn request(&mut self, tx: TxId, req: &XsRequest<'_>) -> Result<Vec<u8>, XsClientError> {
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1).max(1);
        let mut bytes = Vec::new();
        req.encode(req_id, tx.0, &mut bytes)?;
        let deadline = self
            .transport
            .now_ns()
            .saturating_add(self.request_timeout_ns);
        if !self.unsent.is_empty() {
            let earlier = core::mem::take(&mut self.unsent);
            self.send_all(&earlier, deadline)?;
        }
        self.send_all(&bytes, deadline)?;
        loop {
            let msg = self.next_message(deadline)?;
            if msg.req_id != req_id {
                self.stale_replies += 1;
                continue;
            }
            return match msg.msg_type {
                XsType::Error => Err(XsClientError::Xs(wire::parse_error(&msg.payload)?)),
                t if t == req.msg_type() => Ok(msg.payload),
                got => Err(XsClientError::UnexpectedReply {
                    sent: req.msg_type(),
                    got,
                }),
            };
        }
    }

    /// Send all of `bytes`; on timeout (or a transport error) after part of
    /// them went out, the rest is kept in `self.unsent` for the next request.
    fn send_all(&mut self, mut bytes: &[u8], deadline: u64) -> Result<(), XsClientError> {
        let total = bytes.len();
        while !bytes.is_empty() {
            let step = match self.transport.send(bytes) {
                Ok(0) => self.wait_for_send_space(deadline).map(|()| 0),
                Ok(n) => Ok(n.min(bytes.len())),
                Err(e) => Err(e.into()),
            };
            match step {
                Ok(n) => bytes = &bytes[n..],
                Err(e) => {
                    if bytes.len() < total {
                        self.unsent = bytes.to_vec();
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The transport took nothing: read what the peer sent meanwhile (it may
    /// be waiting for us to make room), then sleep until it may have
    /// consumed, bounded by `deadline` even if wake-ups keep coming.
    fn wait_for_send_space(&mut self, deadline: u64) -> Result<(), XsClientError> {
        self.pump()?;
        if self.transport.now_ns() > deadline
            || self.transport.wait(deadline)? == WaitOutcome::DeadlinePassed
        {
            return Err(XsClientError::Timeout);
        }
        Ok(())
    }

    /// Pull bytes from the transport into the decoder without blocking, at
    /// most [`PUMP_LIMIT_BYTES`] per call (a peer that never stops sending
    /// cannot make us buffer without bound). Returns whether any arrived.
    fn pump(&mut self) -> Result<bool, XsClientError> {
        let mut buf = [0u8; 512];
        let mut total = 0;
        while total < PUMP_LIMIT_BYTES {
            let n = self.transport.recv(&mut buf)?.min(buf.len());
            if n == 0 {
                break;
            }
            self.decoder.push(&buf[..n]);
            total += n;
        }
        Ok(total > 0)
    }

    /// Next non-watch message, queueing watch events; bounded by `deadline`.
    fn next_message(&mut self, deadline: u64) -> Result<XsMessage, XsClientError> {
        loop {
            while let Some(msg) = self.decoder.next_message()? {
                if msg.msg_type == XsType::WatchEvent {
                    self.queue_watch_event(&msg.payload);
                } else {
                    return Ok(msg);
                }
            }
            if self.pump()? {
                // Data keeps coming but none of it is our reply: still bounded.
                if self.transport.now_ns() > deadline {
                    return Err(XsClientError::Timeout);
                }
                continue;
            }
            // Spurious wake-ups do not extend the wait past the deadline.
            if self.transport.wait(deadline)? == WaitOutcome::DeadlinePassed
                || self.transport.now_ns() > deadline
            {
                // One last look: data may have raced with the deadline.
                if !self.pump()? {
                    return Err(XsClientError::Timeout);
                }
            }
        }
    }

    /// Read a node's value.
    pub fn read(&mut self, tx: TxId, path: &str) -> Result<Vec<u8>, XsClientError> {
        self.request(tx, &XsRequest::Read { path })
    }

    /// Read a node as UTF-8.
    pub fn read_string(&mut self, tx: TxId, path: &str) -> Result<String, XsClientError> {
        let v = self.read(tx, path)?;
        String::from_utf8(v).map_err(|_| XsClientError::Wire(XsWireError::NotUtf8))
    }

    /// Read a node if it exists (`ENOENT` -> `None`).
    pub fn try_read_string(
        &mut self,
        tx: TxId,
        path: &str,
    ) -> Result<Option<String>, XsClientError> {
        match self.read_string(tx, path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_enoent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write a node (creating it and missing parents).
    pub fn write(&mut self, tx: TxId, path: &str, value: &[u8]) -> Result<(), XsClientError> {
        let r = self.request(tx, &XsRequest::Write { path, value })?;
        Ok(wire::parse_ok(&r)?)
    }

    /// Create a directory node.
    pub fn mkdir(&mut self, tx: TxId, path: &str) -> Result<(), XsClientError> {
        let r = self.request(tx, &XsRequest::Mkdir { path })?;
        Ok(wire::parse_ok(&r)?)
    }

    /// Remove a node and its children.
    pub fn rm(&mut self, tx: TxId, path: &str) -> Result<(), XsClientError> {
        let r = self.request(tx, &XsRequest::Rm { path })?;
        Ok(wire::parse_ok(&r)?)
    }

    /// List a node's children.
    pub fn directory(&mut self, tx: TxId, path: &str) -> Result<Vec<String>, XsClientError> {
        let r = self.request(tx, &XsRequest::Directory { path })?;
        Ok(wire::parse_directory(&r)?)
    }

    /// `/local/domain/<domid>`, as xenstored reports it.
    pub fn get_domain_path(&mut self, domid: DomId) -> Result<String, XsClientError> {
        let r = self.request(TxId::NONE, &XsRequest::GetDomainPath { domid })?;
        Ok(String::from(wire::parse_single_string(&r)?))
    }

    /// Watch `path` (and its subtree). xenstored fires the watch once right away.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsClientError> {
        let r = self.request(TxId::NONE, &XsRequest::Watch { path, token })?;
        Ok(wire::parse_ok(&r)?)
    }

    /// Remove a watch. Events already queued for it are dropped too.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsClientError> {
        let r = self.request(TxId::NONE, &XsRequest::Unwatch { path, token })?;
        self.watch_events.retain(|e| e.token != token);
        Ok(wire::parse_ok(&r)?)
    }

    /// A queued watch event, if any (does not touch the transport).
    pub fn take_watch_event(&mut self) -> Option<WatchEvent> {
        self.watch_events.pop_front()
    }

    /// Move any watch events already readable from the transport into the
    /// queue, without blocking; returns the queue length.
    pub fn poll_watch_events(&mut self) -> Result<usize, XsClientError> {
        self.pump()?;
        self.queue_decoded()?;
        Ok(self.watch_events.len())
    }

    /// Queue a watch event; a malformed one is dropped and counted (it must not
    /// fail the unrelated request during which it arrived).
    fn queue_watch_event(&mut self, payload: &[u8]) {
        match wire::parse_watch_event(payload) {
            Ok((path, token)) => self.watch_events.push_back(WatchEvent { path, token }),
            Err(_) => self.malformed_watch_events += 1,
        }
    }

    /// Drain the decoder: watch events are queued, anything else is stale.
    fn queue_decoded(&mut self) -> Result<(), XsClientError> {
        while let Some(msg) = self.decoder.next_message()? {
            if msg.msg_type == XsType::WatchEvent {
                self.queue_watch_event(&msg.payload);
            } else {
                self.stale_replies += 1;
            }
        }
        Ok(())
    }

    /// Number of queued watch events.
    pub fn pending_watch_events(&self) -> usize {
        self.watch_events.len()
    }

    /// Wait for a watch event until `deadline_ns`; `Ok(None)` if none came.
    ///
    /// Replies arriving here (none should: requests are synchronous) are stale
    /// and dropped.
    pub fn wait_watch_event(
        &mut self,
        deadline_ns: u64,
    ) -> Result<Option<WatchEvent>, XsClientError> {
        self.wait_watch_event_matching(deadline_ns, |_| true)
    }

    /// Wait until `deadline_ns` for a watch event accepted by `wanted` (e.g. a
    /// given token) and return it; other events stay queued, in order.
    pub fn wait_watch_event_matching(
        &mut self,
        deadline_ns: u64,
        mut wanted: impl FnMut(&WatchEvent) -> bool,
    ) -> Result<Option<WatchEvent>, XsClientError> {
        loop {
            self.queue_decoded()?;
            if let Some(i) = self.watch_events.iter().position(&mut wanted) {
                return Ok(self.watch_events.remove(i));
            }
            if self.pump()? {
                if self.transport.now_ns() > deadline_ns {
                    self.queue_decoded()?;
                    return Ok(self
                        .watch_events
                        .iter()
                        .position(&mut wanted)
                        .and_then(|i| self.watch_events.remove(i)));
                }
                continue;
            }
            let is_late = self.transport.wait(deadline_ns)? == WaitOutcome::DeadlinePassed
                || self.transport.now_ns() > deadline_ns;
            if is_late && !self.pump()? {
                return Ok(None);
            }
        }
    }

    /// Start a transaction.
    pub fn transaction_start(&mut self) -> Result<TxId, XsClientError> {
        let r = self.request(TxId::NONE, &XsRequest::TransactionStart)?;
        Ok(TxId(wire::parse_tx_id(&r)?))
    }

    /// End a transaction (commit or abort). A commit may fail with `EAGAIN`.
    pub fn transaction_end(&mut self, tx: TxId, commit: bool) -> Result<(), XsClientError> {
        let r = self.request(tx, &XsRequest::TransactionEnd { commit })?;
        Ok(wire::parse_ok(&r)?)
    }

    /// Run `f` in a transaction, retrying the whole transaction when the commit
    /// (or an operation inside) fails with `EAGAIN`, at most `max_attempts` times.
    /// If `f` fails with another error the transaction is aborted and the error
    /// returned.
    pub fn transaction<R>(
        &mut self,
        max_attempts: u32,
        mut f: impl FnMut(&mut Tx<'_, T>) -> Result<R, XsClientError>,
    ) -> Result<R, XsClientError> {
        for _ in 0..max_attempts {
            let id = self.transaction_start()?;
            let result = f(&mut Tx { client: self, id });
            match result {
                Ok(v) => match self.transaction_end(id, true) {
                    Ok(()) => return Ok(v),
                    Err(e) if e.is_eagain() => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    // Abort; the transaction's own error is the one to report.
                    let _ = self.transaction_end(id, false);
                    if !e.is_eagain() {
                        return Err(e);
                    }
                }
            }
        }
        Err(XsClientError::TooManyRetries(max_attempts))
    }
}

/// Operations inside a transaction started by [`XenstoreClient::transaction`].
pub struct Tx<'a, T: XenstoreTransport> {
    client: &'a mut XenstoreClient<T>,
    id: TxId,
}

impl<T: XenstoreTransport> Tx<'_, T> {
    /// The transaction id.
    pub fn id(&self) -> TxId {
        self.id
    }
    /// [`XenstoreClient::read`] in this transaction.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsClientError> {
        self.client.read(self.id, path)
    }
    /// [`XenstoreClient::read_string`] in this transaction.
    pub fn read_string(&mut self, path: &str) -> Result<String, XsClientError> {
        self.client.read_string(self.id, path)
    }
    /// [`XenstoreClient::try_read_string`] in this transaction.
    pub fn try_read_string(&mut self, path: &str) -> Result<Option<String>, XsClientError> {
        self.client.try_read_string(self.id, path)
    }
    /// [`XenstoreClient::write`] in this transaction.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsClientError> {
        self.client.write(self.id, path, value)
    }
    /// [`XenstoreClient::mkdir`] in this transaction.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsClientError> {
        self.client.mkdir(self.id, path)
    }
    /// [`XenstoreClient::rm`] in this transaction.
    pub fn rm(&mut self, path: &str) -> Result<(), XsClientError> {
        self.client.rm(self.id, path)
    }
    /// [`XenstoreClient::directory`] in this transaction.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsClientError> {
        self.client.directory(self.id, path)
    }
}
