//! `XenstoreClient` against the in-memory xenstored and against scripted,
//! misbehaving servers (wrong ids, garbage, silence).

use std::collections::VecDeque;

use xen::abi::xs_wire::{XsType, XsdSockmsg};
use xen::platform::{PlatformError, WaitOutcome};
use xen::types::DomId;
use xen::xenstore::client::TxId;
use xen::xenstore::fake::FakeXenstore;
use xen::xenstore::wire::XsWireError;
use xen::xenstore::{WatchEvent, XenstoreClient, XenstoreTransport, XsClientError, XsErrno};

const NO_TX: TxId = TxId::NONE;

#[test]
fn read_write_mkdir_rm_directory() {
    let store = FakeXenstore::new();
    let mut c = XenstoreClient::new(store.connect(DomId(3)));
    assert!(c.read(NO_TX, "/a/b").unwrap_err().is_enoent());
    c.write(NO_TX, "/a/b", b"hello").unwrap();
    assert_eq!(c.read(NO_TX, "/a/b").unwrap(), b"hello");
    assert_eq!(c.read_string(NO_TX, "/a/b").unwrap(), "hello");
    assert_eq!(c.try_read_string(NO_TX, "/a/zz").unwrap(), None);
    c.mkdir(NO_TX, "/a/dir").unwrap();
    assert_eq!(c.directory(NO_TX, "/a").unwrap(), vec!["b", "dir"]);
    c.rm(NO_TX, "/a").unwrap();
    assert!(c.directory(NO_TX, "/a").unwrap_err().is_enoent());
    // Relative paths live under the domain's home.
    c.write(NO_TX, "device/x", b"1").unwrap();
    assert_eq!(
        store.read_string("/local/domain/3/device/x").as_deref(),
        Some("1")
    );
    assert_eq!(c.get_domain_path(DomId(3)).unwrap(), "/local/domain/3");
    // Binary values survive.
    c.write(NO_TX, "/bin", &[0, 255, 0]).unwrap();
    assert_eq!(c.read(NO_TX, "/bin").unwrap(), [0, 255, 0]);
}

#[test]
fn watches_are_queued_separately_from_replies() {
    let store = FakeXenstore::new();
    let mut fe = XenstoreClient::new(store.connect(DomId(1)));
    let mut be = XenstoreClient::new(store.connect(DomId(0)));
    be.watch("/local/domain/1/device", "fe-watch").unwrap();
    // Initial firing (arrives after the reply).
    assert_eq!(be.take_watch_event(), None);
    assert_eq!(be.poll_watch_events().unwrap(), 1);
    assert_eq!(
        be.take_watch_event(),
        Some(WatchEvent {
            path: "/local/domain/1/device".into(),
            token: "fe-watch".into()
        })
    );
    fe.write(NO_TX, "/local/domain/1/device/vdispl/0/state", b"1")
        .unwrap();
    fe.write(NO_TX, "/local/domain/1/other", b"x").unwrap();
    // The backend's next request still gets its reply; the event waits in the queue.
    assert!(be.read(NO_TX, "/nothing").unwrap_err().is_enoent());
    assert!(be.pending_watch_events() >= 1);
    let mut paths = Vec::new();
    while let Some(e) = be.take_watch_event() {
        assert_eq!(e.token, "fe-watch");
        paths.push(e.path);
    }
    assert!(paths.contains(&"/local/domain/1/device/vdispl/0/state".to_string()));
    assert!(!paths.iter().any(|p| p.ends_with("/other")));
    // wait_watch_event picks up events without another request.
    fe.write(NO_TX, "/local/domain/1/device/vdispl/0/state", b"3")
        .unwrap();
    let deadline = be.transport().now_ns() + 1_000_000;
    let e = be.wait_watch_event(deadline).unwrap().unwrap();
    assert_eq!(e.path, "/local/domain/1/device/vdispl/0/state");
    // Nothing more: times out at the deadline (fake clock jumps there).
    let deadline = be.transport().now_ns() + 50_000_000;
    assert_eq!(be.wait_watch_event(deadline).unwrap(), None);
    assert_eq!(be.transport().now_ns(), deadline);
    be.unwatch("/local/domain/1/device", "fe-watch").unwrap();
    fe.write(NO_TX, "/local/domain/1/device/y", b"1").unwrap();
    assert_eq!(
        be.wait_watch_event(be.transport().now_ns() + 1).unwrap(),
        None
    );
    assert_eq!(
        be.unwatch("/local/domain/1/device", "fe-watch")
            .unwrap_err(),
        XsClientError::Xs(XsErrno::Enoent)
    );
}

#[test]
fn transaction_commits_and_retries_on_eagain() {
    let store = FakeXenstore::new();
    let mut c = XenstoreClient::new(store.connect(DomId(1)));
    store.fail_next_commits(2);
    let mut attempts = 0;
    let v = c
        .transaction(5, |tx| {
            attempts += 1;
            tx.write("/t/ring-ref", b"8")?;
            tx.write("/t/port", b"9")?;
            Ok(42)
        })
        .unwrap();
    assert_eq!(v, 42);
    assert_eq!(attempts, 3);
    assert_eq!(store.read_string("/t/ring-ref").as_deref(), Some("8"));
    // Bounded.
    store.fail_next_commits(10);
    let e = c.transaction(3, |tx| tx.write("/t/x", b"1")).unwrap_err();
    assert_eq!(e, XsClientError::TooManyRetries(3));
    assert_eq!(store.read("/t/x"), None);
}

#[test]
fn transaction_conflict_from_concurrent_writer_and_abort_on_error() {
    let store = FakeXenstore::new();
    let mut c = XenstoreClient::new(store.connect(DomId(1)));
    let mut first = true;
    c.transaction(4, |tx| {
        let _ = tx.try_read_string("/c")?;
        if first {
            first = false;
            store.write("/c", b"other"); // concurrent change -> EAGAIN on commit
        }
        tx.write("/c", b"mine")
    })
    .unwrap();
    assert_eq!(store.read_string("/c").as_deref(), Some("mine"));
    // A non-EAGAIN error aborts: nothing written.
    let e = c
        .transaction(4, |tx| {
            tx.write("/d", b"1")?;
            tx.read("/missing")
        })
        .unwrap_err();
    assert!(e.is_enoent());
    assert_eq!(store.read("/d"), None);
}

/// A transport that plays back scripted server bytes and records what was sent.
struct Scripted {
    to_client: VecDeque<u8>,
    sent: Vec<u8>,
    now: u64,
    send_capacity: usize,
}

impl Scripted {
    fn new(server_bytes: Vec<u8>) -> Self {
        Scripted {
            to_client: server_bytes.into(),
            sent: Vec::new(),
            now: 0,
            send_capacity: usize::MAX,
        }
    }
}

impl XenstoreTransport for Scripted {
    fn send(&mut self, bytes: &[u8]) -> Result<usize, PlatformError> {
        let n = bytes.len().min(self.send_capacity);
        self.send_capacity -= n;
        self.sent.extend_from_slice(&bytes[..n]);
        Ok(n)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, PlatformError> {
        // Dribble: at most 3 bytes per call, to exercise incremental decoding.
        let n = buf.len().min(self.to_client.len()).min(3);
        for b in buf.iter_mut().take(n) {
            *b = self.to_client.pop_front().unwrap();
        }
        Ok(n)
    }
    fn wait(&mut self, deadline_ns: u64) -> Result<WaitOutcome, PlatformError> {
        if !self.to_client.is_empty() {
            self.now += 1; // a wake-up still takes time
            return Ok(WaitOutcome::Pending);
        }
        self.now = self.now.max(deadline_ns);
        Ok(WaitOutcome::DeadlinePassed)
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
}

fn msg(t: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = XsdSockmsg {
        type_: t,
        req_id,
        tx_id: 0,
        len: payload.len() as u32,
    }
    .to_bytes()
    .to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn stale_replies_are_skipped_and_errors_typed() {
    // Request ids start at 1. Server sends a stale reply (id 77), a watch event,
    // then the real reply; then an XS_ERROR for request 2.
    let mut script = msg(XsType::Read as u32, 77, b"old");
    script.extend(msg(XsType::WatchEvent as u32, 0, b"/w\0tk\0"));
    script.extend(msg(XsType::Read as u32, 1, b"fresh"));
    script.extend(msg(XsType::Error as u32, 2, b"EACCES\0"));
    script.extend(msg(XsType::Read as u32, 3, b"wrong type"));
    let mut c = XenstoreClient::new(Scripted::new(script));
    assert_eq!(c.read(NO_TX, "/x").unwrap(), b"fresh");
    assert_eq!(c.stale_replies(), 1);
    assert_eq!(c.take_watch_event().unwrap().token, "tk");
    assert_eq!(
        c.write(NO_TX, "/x", b"v").unwrap_err(),
        XsClientError::Xs(XsErrno::Eacces)
    );
    assert_eq!(
        c.mkdir(NO_TX, "/x").unwrap_err(),
        XsClientError::UnexpectedReply {
            sent: XsType::Mkdir,
            got: XsType::Read
        }
    );
    // The first request on the wire is a well-formed READ with id 1.
    let h = XsdSockmsg::from_bytes(c.transport().sent[..16].try_into().unwrap());
    assert_eq!((h.type_, h.req_id, h.len), (XsType::Read as u32, 1, 3));
}

#[test]
fn silence_times_out_and_garbage_is_an_error() {
    let mut c = XenstoreClient::new(Scripted::new(Vec::new()));
    c.set_request_timeout_ns(1_000);
    assert_eq!(c.read(NO_TX, "/x").unwrap_err(), XsClientError::Timeout);

    let mut bad = msg(XsType::Read as u32, 1, b"");
    bad[12..16].copy_from_slice(&100_000u32.to_le_bytes());
    let mut c = XenstoreClient::new(Scripted::new(bad));
    assert_eq!(
        c.read(NO_TX, "/x").unwrap_err(),
        XsClientError::Wire(XsWireError::PayloadTooLong(100_000))
    );

    let mut c = XenstoreClient::new(Scripted::new(msg(99, 1, b"")));
    assert_eq!(
        c.read(NO_TX, "/x").unwrap_err(),
        XsClientError::Wire(XsWireError::UnknownType(99))
    );

    // Truncated frame then silence: timeout, not a panic.
    let mut t = msg(XsType::Read as u32, 1, b"abcdef");
    t.truncate(19);
    let mut c = XenstoreClient::new(Scripted::new(t));
    assert_eq!(c.read(NO_TX, "/x").unwrap_err(), XsClientError::Timeout);

    // Malformed payloads of typed replies.
    let mut c = XenstoreClient::new(Scripted::new(msg(XsType::Directory as u32, 1, b"a\0b")));
    assert_eq!(
        c.directory(NO_TX, "/x").unwrap_err(),
        XsClientError::Wire(XsWireError::MissingNul)
    );
    let mut c = XenstoreClient::new(Scripted::new(msg(
        XsType::TransactionStart as u32,
        1,
        b"0\0",
    )));
    assert!(matches!(
        c.transaction_start().unwrap_err(),
        XsClientError::Wire(_)
    ));
    let mut c = XenstoreClient::new(Scripted::new(msg(XsType::Error as u32, 1, b"ENOENT")));
    assert!(matches!(
        c.read(NO_TX, "/x").unwrap_err(),
        XsClientError::Wire(_)
    ));
}

#[test]
fn full_send_side_times_out() {
    let mut t = Scripted::new(Vec::new());
    t.send_capacity = 0;
    let mut c = XenstoreClient::new(t);
    c.set_request_timeout_ns(10);
    assert_eq!(
        c.write(NO_TX, "/x", b"1").unwrap_err(),
        XsClientError::Timeout
    );
}

/// Random replies from a hostile server: every call returns (Ok or Err), none panics.
#[test]
fn fuzzed_server_never_panics() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let mut script = Vec::new();
        for _ in 0..(next() % 4) {
            let t = (next() % 25) as u32;
            let id = (next() % 3) as u32;
            let len = (next() % 24) as usize;
            let payload: Vec<u8> = (0..len).map(|_| (next() % 4) as u8 * 0x21).collect();
            let mut m = msg(t, id, &payload);
            if next() % 5 == 0 {
                let cut = (next() as usize) % m.len();
                m.truncate(cut);
            }
            script.extend(m);
        }
        let mut c = XenstoreClient::new(Scripted::new(script));
        c.set_request_timeout_ns(5);
        let _ = c.directory(NO_TX, "/a");
        let _ = c.transaction_start();
        let _ = c.wait_watch_event(100);
        let _ = c.get_domain_path(DomId(1));
    }
}

/// A server that never stops sending watch events (and never replies): the
/// client still gives up at its deadline instead of spinning forever.
struct Flood {
    frame: Vec<u8>,
    pos: usize,
    now: u64,
}

impl XenstoreTransport for Flood {
    fn send(&mut self, bytes: &[u8]) -> Result<usize, PlatformError> {
        Ok(bytes.len())
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, PlatformError> {
        self.now += 1_000; // time passes while we read
        let mut n = 0;
        while n < buf.len() {
            buf[n] = self.frame[self.pos];
            self.pos = (self.pos + 1) % self.frame.len();
            n += 1;
        }
        Ok(n)
    }
    fn wait(&mut self, _: u64) -> Result<WaitOutcome, PlatformError> {
        Ok(WaitOutcome::Pending)
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
}

#[test]
fn endless_data_without_reply_still_times_out() {
    let flood = Flood {
        frame: msg(XsType::WatchEvent as u32, 0, b"/a\0t\0"),
        pos: 0,
        now: 0,
    };
    let mut c = XenstoreClient::new(flood);
    c.set_request_timeout_ns(1_000_000);
    assert_eq!(c.read(NO_TX, "/x").unwrap_err(), XsClientError::Timeout);
    assert!(c.pending_watch_events() > 0);
    let deadline = c.transport().now_ns() + 100_000;
    assert!(c
        .wait_watch_event_matching(deadline, |e| e.token == "other")
        .unwrap()
        .is_none());
}

#[test]
fn half_sent_request_is_completed_before_the_next() {
    let mut t = Scripted::new(msg(XsType::Read as u32, 2, b"v"));
    t.send_capacity = 10; // the first request stalls after 10 of its 20 bytes
    let mut c = XenstoreClient::new(t);
    c.set_request_timeout_ns(10);
    assert_eq!(c.read(NO_TX, "/abc").unwrap_err(), XsClientError::Timeout);
    c.transport_mut().send_capacity = usize::MAX;
    assert_eq!(c.read(NO_TX, "/x").unwrap(), b"v");
    let mut first = Vec::new();
    xen::xenstore::XsRequest::Read { path: "/abc" }
        .encode(1, 0, &mut first)
        .unwrap();
    let mut second = Vec::new();
    xen::xenstore::XsRequest::Read { path: "/x" }
        .encode(2, 0, &mut second)
        .unwrap();
    assert_eq!(c.transport().sent, [first, second].concat());
}

#[test]
fn malformed_watch_event_is_dropped_not_fatal() {
    let mut script = msg(XsType::WatchEvent as u32, 0, b"only-path\0");
    script.extend(msg(XsType::Read as u32, 1, b"ok"));
    let mut c = XenstoreClient::new(Scripted::new(script));
    assert_eq!(c.read(NO_TX, "/x").unwrap(), b"ok");
    assert_eq!(c.malformed_watch_events(), 1);
    assert_eq!(c.take_watch_event(), None);
}

/// A transport whose wait always claims "pending" but never delivers data.
struct Spurious {
    now: u64,
}

impl XenstoreTransport for Spurious {
    fn send(&mut self, bytes: &[u8]) -> Result<usize, PlatformError> {
        Ok(bytes.len())
    }
    fn recv(&mut self, _: &mut [u8]) -> Result<usize, PlatformError> {
        Ok(0)
    }
    fn wait(&mut self, _: u64) -> Result<WaitOutcome, PlatformError> {
        self.now += 1_000;
        Ok(WaitOutcome::Pending)
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
}

#[test]
fn spurious_wakeups_do_not_extend_deadlines() {
    let mut c = XenstoreClient::new(Spurious { now: 0 });
    c.set_request_timeout_ns(1_000_000);
    assert_eq!(c.read(NO_TX, "/x").unwrap_err(), XsClientError::Timeout);
    assert!(c.transport().now_ns() <= 1_001_000);
    assert_eq!(
        c.wait_watch_event(c.transport().now_ns() + 50_000).unwrap(),
        None
    );
}
