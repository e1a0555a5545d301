//! An in-memory xenstored for host tests of anything that talks xenstore.
//!
//! [`FakeXenstore`] holds the tree, transactions and a fake clock;
//! [`FakeXenstore::connect`] gives a [`FakeConnection`] (a
//! [`XenstoreTransport`]) per client, so a simulated frontend and backend can
//! share one store and see each other's writes and watches. It speaks the real
//! wire format through the real codec, so tests exercise the full stack.
//!
//! Semantics follow xenstored closely enough for protocol tests: writes and
//! mkdir create missing parents; rm is recursive and succeeds on a missing node
//! whose parent exists; relative paths are under `/local/domain/<domid>`;
//! watches fire once on registration and on every change at or below their path;
//! transactions work on a snapshot and fail with `EAGAIN` on commit if the store
//! changed meanwhile (or when forced with [`FakeXenstore::fail_next_commits`]).
//! Permissions are not modelled. `wait` advances the fake clock to the deadline
//! when nothing is pending, so timeouts are instant and deterministic.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::client::XenstoreTransport;
use super::wire::{self, Decoder, XsMessage};
use crate::abi::xs_wire::{XsType, XsdSockmsg};
use crate::platform::{PlatformError, WaitOutcome};
use crate::types::DomId;

type Tree = BTreeMap<String, Vec<u8>>;

struct Conn {
    domid: DomId,
    outbox: VecDeque<u8>,
    watches: Vec<(String, String)>,
}

struct State {
    tree: Tree,
    generation: u64,
    transactions: BTreeMap<u32, (Tree, u64, usize)>,
    next_tx: u32,
    fail_commits: u32,
    conns: Vec<Rc<RefCell<Conn>>>,
    requests: u64,
}

/// The shared store; cheap to clone (all clones are the same store).
#[derive(Clone)]
pub struct FakeXenstore {
    state: Rc<RefCell<State>>,
    clock: Rc<Cell<u64>>,
}

impl Default for FakeXenstore {
    fn default() -> Self {
        Self::new()
    }
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

fn is_at_or_below(path: &str, watched: &str) -> bool {
    path == watched
        || (path.starts_with(watched)
            && (watched.ends_with('/') || path.as_bytes().get(watched.len()) == Some(&b'/')))
}

fn insert_with_parents(tree: &mut Tree, path: &str, value: Option<&[u8]>) -> Vec<String> {
    let mut changed = Vec::new();
    let mut p = parent(path);
    while let Some(dir) = p {
        if !tree.contains_key(dir) {
            tree.insert(dir.to_string(), Vec::new());
            changed.push(dir.to_string());
        }
        p = parent(dir);
    }
    match value {
        Some(v) => {
            tree.insert(path.to_string(), v.to_vec());
            changed.push(path.to_string());
        }
        None => {
            if !tree.contains_key(path) {
                tree.insert(path.to_string(), Vec::new());
                changed.push(path.to_string());
            }
        }
    }
    changed
}

impl FakeXenstore {
    /// An empty store (only `/`), clock at 0.
    pub fn new() -> FakeXenstore {
        let mut tree = Tree::new();
        tree.insert("/".to_string(), Vec::new());
        FakeXenstore {
            state: Rc::new(RefCell::new(State {
                tree,
                generation: 0,
                transactions: BTreeMap::new(),
                next_tx: 1,
                fail_commits: 0,
                conns: Vec::new(),
                requests: 0,
            })),
            clock: Rc::new(Cell::new(0)),
        }
    }

    /// A new client connection for domain `domid`.
    pub fn connect(&self, domid: DomId) -> FakeConnection {
        let conn = Rc::new(RefCell::new(Conn {
            domid,
            outbox: VecDeque::new(),
            watches: Vec::new(),
        }));
        self.state.borrow_mut().conns.push(conn.clone());
        FakeConnection {
            store: self.clone(),
            conn,
            decoder: Decoder::new(),
        }
    }

    /// Current fake time.
    pub fn now_ns(&self) -> u64 {
        self.clock.get()
    }

    /// Move the fake clock forward.
    pub fn advance_ns(&self, ns: u64) {
        self.clock.set(self.clock.get().saturating_add(ns));
    }

    /// Set a node directly (as the toolstack would), firing watches.
    pub fn write(&self, path: &str, value: &[u8]) {
        let mut s = self.state.borrow_mut();
        let changed = insert_with_parents(&mut s.tree, path, Some(value));
        s.generation += 1;
        fire(&s, &changed);
    }

    /// Read a node directly.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.state.borrow().tree.get(path).cloned()
    }

    /// Read a node directly as a string (lossy).
    pub fn read_string(&self, path: &str) -> Option<String> {
        self.read(path)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Remove a subtree directly, firing watches.
    pub fn rm(&self, path: &str) {
        let mut s = self.state.borrow_mut();
        let removed = remove_subtree(&mut s.tree, path);
        s.generation += 1;
        fire(&s, &removed);
    }

    /// Make the next `n` transaction commits fail with `EAGAIN`.
    pub fn fail_next_commits(&self, n: u32) {
        self.state.borrow_mut().fail_commits = n;
    }

    /// Requests handled so far.
    pub fn requests(&self) -> u64 {
        self.state.borrow().requests
    }

    /// All node paths, sorted (for assertions).
    pub fn paths(&self) -> Vec<String> {
        self.state.borrow().tree.keys().cloned().collect()
    }
}

fn remove_subtree(tree: &mut Tree, path: &str) -> Vec<String> {
    let doomed: Vec<String> = tree
        .keys()
        .filter(|k| is_at_or_below(k, path))
        .cloned()
        .collect();
    for k in &doomed {
        tree.remove(k);
    }
    doomed
}

fn fire(s: &State, changed: &[String]) {
    for conn in &s.conns {
        let mut c = conn.borrow_mut();
        let mut events = Vec::new();
        for path in changed {
            for (wpath, token) in &c.watches {
                if is_at_or_below(path, wpath) {
                    events.push((path.clone(), token.clone()));
                }
            }
        }
        for (path, token) in events {
            push_msg(
                &mut c.outbox,
                XsType::WatchEvent,
                0,
                0,
                &two_strings(&path, &token),
            );
        }
    }
}

fn two_strings(a: &str, b: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(a.as_bytes());
    v.push(0);
    v.extend_from_slice(b.as_bytes());
    v.push(0);
    v
}

fn push_msg(out: &mut VecDeque<u8>, t: XsType, req_id: u32, tx_id: u32, payload: &[u8]) {
    let h = XsdSockmsg {
        type_: t as u32,
        req_id,
        tx_id,
        len: payload.len() as u32,
    };
    out.extend(h.to_bytes());
    out.extend(payload.iter().copied());
}

/// One client's connection to a [`FakeXenstore`].
pub struct FakeConnection {
    store: FakeXenstore,
    conn: Rc<RefCell<Conn>>,
    decoder: Decoder,
}

impl FakeConnection {
    /// The store this connection talks to.
    pub fn store(&self) -> &FakeXenstore {
        &self.store
    }

    fn handle(&mut self, msg: XsMessage) {
        let domid = self.conn.borrow().domid;
        let result = {
            let mut s = self.store.state.borrow_mut();
            s.requests += 1;
            handle_request(&mut s, &self.conn, domid, &msg)
        };
        let mut c = self.conn.borrow_mut();
        match result {
            Ok(payload) => {
                push_msg(&mut c.outbox, msg.msg_type, msg.req_id, msg.tx_id, &payload);
                if msg.msg_type == XsType::Watch {
                    // xenstored fires a new watch once, right after the reply.
                    let event = msg.payload.clone();
                    push_msg(&mut c.outbox, XsType::WatchEvent, 0, 0, &event);
                }
            }
            Err(name) => {
                let mut p = name.as_bytes().to_vec();
                p.push(0);
                push_msg(&mut c.outbox, XsType::Error, msg.req_id, msg.tx_id, &p);
            }
        }
    }
}

fn absolute(domid: DomId, path: &[u8]) -> Result<String, &'static str> {
    let p = core::str::from_utf8(path).map_err(|_| "EINVAL")?;
    if p.is_empty() {
        return Err("EINVAL");
    }
    Ok(if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/local/domain/{}/{}", domid.0, p)
    })
}

const OK: &[u8] = b"OK\0";

fn handle_request(
    s: &mut State,
    conn: &Rc<RefCell<Conn>>,
    domid: DomId,
    msg: &XsMessage,
) -> Result<Vec<u8>, &'static str> {
    let strings = |n: usize| -> Result<Vec<&[u8]>, &'static str> {
        let v = wire::split_strings(&msg.payload).map_err(|_| "EINVAL")?;
        if v.len() == n {
            Ok(v)
        } else {
            Err("EINVAL")
        }
    };
    let tx = msg.tx_id;
    if tx != 0 && !s.transactions.contains_key(&tx) {
        return Err("ENOENT");
    }
    // Mutations go to the transaction's snapshot or the live tree.
    macro_rules! tree {
        () => {
            if tx != 0 {
                &mut s.transactions.get_mut(&tx).expect("checked above").0
            } else {
                &mut s.tree
            }
        };
    }
    match msg.msg_type {
        XsType::Read => {
            let path = absolute(domid, strings(1)?[0])?;
            tree!().get(&path).cloned().ok_or("ENOENT")
        }
        XsType::Directory => {
            let path = absolute(domid, strings(1)?[0])?;
            let t = tree!();
            if !t.contains_key(&path) {
                return Err("ENOENT");
            }
            let prefix = if path == "/" {
                "/".to_string()
            } else {
                format!("{path}/")
            };
            let mut out = Vec::new();
            for k in t.keys() {
                if let Some(rest) = k.strip_prefix(&prefix) {
                    if !rest.is_empty() && !rest.contains('/') {
                        out.extend_from_slice(rest.as_bytes());
                        out.push(0);
                    }
                }
            }
            Ok(out)
        }
        XsType::Write => {
            let nul = msg.payload.iter().position(|&b| b == 0).ok_or("EINVAL")?;
            let path = absolute(domid, &msg.payload[..nul])?;
            let value = &msg.payload[nul + 1..];
            let changed = insert_with_parents(tree!(), &path, Some(value));
            if tx == 0 {
                s.generation += 1;
                fire(s, &changed);
            }
            Ok(OK.to_vec())
        }
        XsType::Mkdir => {
            let path = absolute(domid, strings(1)?[0])?;
            let changed = insert_with_parents(tree!(), &path, None);
            if tx == 0 && !changed.is_empty() {
                s.generation += 1;
                fire(s, &changed);
            }
            Ok(OK.to_vec())
        }
        XsType::Rm => {
            let path = absolute(domid, strings(1)?[0])?;
            let t = tree!();
            if !t.contains_key(&path) {
                return match parent(&path) {
                    Some(p) if t.contains_key(p) => Ok(OK.to_vec()),
                    _ => Err("ENOENT"),
                };
            }
            let removed = remove_subtree(t, &path);
            if tx == 0 {
                s.generation += 1;
                fire(s, &removed);
            }
            Ok(OK.to_vec())
        }
        XsType::GetDomainPath => {
            let id = core::str::from_utf8(strings(1)?[0]).map_err(|_| "EINVAL")?;
            let id = wire::parse_decimal_u32(id).ok_or("EINVAL")?;
            let mut p = format!("/local/domain/{id}").into_bytes();
            p.push(0);
            Ok(p)
        }
        XsType::Watch | XsType::Unwatch => {
            let v = strings(2)?;
            let path = absolute(domid, v[0])?;
            let token = core::str::from_utf8(v[1])
                .map_err(|_| "EINVAL")?
                .to_string();
            let mut c = conn.borrow_mut();
            if msg.msg_type == XsType::Watch {
                if c.watches.iter().any(|(p, t)| *p == path && *t == token) {
                    return Err("EEXIST");
                }
                c.watches.push((path, token));
                return Ok(OK.to_vec());
            }
            let before = c.watches.len();
            c.watches.retain(|(p, t)| !(*p == path && *t == token));
            if c.watches.len() == before {
                return Err("ENOENT");
            }
            Ok(OK.to_vec())
        }
        XsType::TransactionStart => {
            if tx != 0 {
                return Err("EBUSY");
            }
            let id = s.next_tx;
            s.next_tx += 1;
            let snapshot = (s.tree.clone(), s.generation, 0);
            s.transactions.insert(id, snapshot);
            let mut p = id.to_string().into_bytes();
            p.push(0);
            Ok(p)
        }
        XsType::TransactionEnd => {
            let commit = match strings(1)?[0] {
                b"T" => true,
                b"F" => false,
                _ => return Err("EINVAL"),
            };
            let (snap, gen, _) = s.transactions.remove(&tx).ok_or("ENOENT")?;
            if !commit {
                return Ok(OK.to_vec());
            }
            if s.fail_commits > 0 {
                s.fail_commits -= 1;
                return Err("EAGAIN");
            }
            if gen != s.generation {
                return Err("EAGAIN");
            }
            let changed: Vec<String> = snap
                .iter()
                .filter(|(k, v)| s.tree.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .chain(s.tree.keys().filter(|k| !snap.contains_key(*k)).cloned())
                .collect();
            s.tree = snap;
            if !changed.is_empty() {
                s.generation += 1;
                fire(s, &changed);
            }
            Ok(OK.to_vec())
        }
        _ => Err("ENOSYS"),
    }
}

impl XenstoreTransport for FakeConnection {
    fn send(&mut self, bytes: &[u8]) -> Result<usize, PlatformError> {
        self.decoder.push(bytes);
        loop {
            match self.decoder.next_message() {
                Ok(Some(msg)) => self.handle(msg),
                Ok(None) => break,
                Err(_) => return Err(PlatformError::Errno(-crate::abi::errno::XEN_EINVAL)),
            }
        }
        Ok(bytes.len())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, PlatformError> {
        let mut c = self.conn.borrow_mut();
        let n = buf.len().min(c.outbox.len());
        for (dst, src) in buf.iter_mut().zip(c.outbox.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }

    fn wait(&mut self, deadline_ns: u64) -> Result<WaitOutcome, PlatformError> {
        if !self.conn.borrow().outbox.is_empty() {
            return Ok(WaitOutcome::Pending);
        }
        if self.store.clock.get() < deadline_ns {
            self.store.clock.set(deadline_ns);
        }
        Ok(WaitOutcome::DeadlinePassed)
    }

    fn now_ns(&self) -> u64 {
        self.store.clock.get()
    }
}
