//! Test fakes: in-memory xenstore, pages, grant table and event channels.
//!
//! Each fake is a cheap handle around shared state, so a test gives the
//! frontend `&mut` handles while the simulated backend (in `frontend::tests`)
//! holds clones and plays the peer: it maps granted pages, offers its own
//! grants (`be-alloc`), notifies ports and writes its xenstore nodes. Every fake
//! counts what is outstanding (pages, grants, foreign maps, ports) so tests can
//! prove nothing leaks across reconnects.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::{Rc, Weak};
use std::string::{String, ToString};
use std::sync::atomic::{AtomicU32, Ordering};
use std::vec::Vec;

use xen::platform::{EventChannels, GrantTable, PlatformError, SharedPage, WaitOutcome};
use xen::types::{DomId, EvtchnPort, Gfn, GrantRef};

use crate::pages::{PageAllocator, PageUse};
use crate::store::{Store, StoreError, TxId};

/// One page of memory.
pub struct PageMem(pub [AtomicU32; 1024]);

impl PageMem {
    /// A zeroed page.
    pub fn new() -> Rc<PageMem> {
        Rc::new(PageMem([const { AtomicU32::new(0) }; 1024]))
    }
    /// Word `i`.
    pub fn get(&self, i: usize) -> u32 {
        self.0[i].load(Ordering::SeqCst)
    }
    /// Set word `i`.
    pub fn set(&self, i: usize, v: u32) {
        self.0[i].store(v, Ordering::SeqCst)
    }
}

type Cellmem = Rc<OnceCell<Rc<PageMem>>>;

/// A page handed out by [`FakePages`]; a foreign-map slot has no memory until
/// [`FakeGnttab`] maps a grant at it.
pub struct FakePage {
    mem: Cellmem,
    gfn: Gfn,
    live: Rc<Cell<usize>>,
}

impl std::fmt::Debug for FakePage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FakePage({:#x})", self.gfn.0)
    }
}

impl Drop for FakePage {
    fn drop(&mut self) {
        self.live.set(self.live.get() - 1);
    }
}

impl SharedPage for FakePage {
    fn words(&self) -> &[AtomicU32] {
        &self
            .mem
            .get()
            .expect("frontend touched a foreign-map slot that is not mapped")
            .0
    }
    fn gfn(&self) -> Gfn {
        self.gfn
    }
}

#[derive(Default)]
struct PagesInner {
    next_gfn: u64,
    registry: HashMap<Gfn, Weak<OnceCell<Rc<PageMem>>>>,
    limit: Option<usize>,
}

/// Page allocator fake; counts live pages.
#[derive(Clone, Default)]
pub struct FakePages {
    inner: Rc<RefCell<PagesInner>>,
    live: Rc<Cell<usize>>,
}

impl FakePages {
    /// Pages allocated and not yet dropped.
    pub fn live(&self) -> usize {
        self.live.get()
    }
    /// Fail allocations once `limit` pages are live.
    pub fn set_limit(&self, limit: Option<usize>) {
        self.inner.borrow_mut().limit = limit;
    }
    fn cell(&self, gfn: Gfn) -> Option<Cellmem> {
        self.inner
            .borrow()
            .registry
            .get(&gfn)
            .and_then(Weak::upgrade)
    }
}

impl PageAllocator for FakePages {
    type Page = FakePage;
    fn alloc_page(&mut self, usage: PageUse) -> Result<FakePage, PlatformError> {
        let mut inner = self.inner.borrow_mut();
        if inner.limit.is_some_and(|l| self.live.get() >= l) {
            return Err(PlatformError::Exhausted("pages"));
        }
        inner.next_gfn += 1;
        let gfn = Gfn(0x1000 + inner.next_gfn);
        let mem: Cellmem = Rc::new(OnceCell::new());
        if usage == PageUse::Granted {
            let _ = mem.set(PageMem::new());
        }
        inner.registry.insert(gfn, Rc::downgrade(&mem));
        self.live.set(self.live.get() + 1);
        Ok(FakePage {
            mem,
            gfn,
            live: self.live.clone(),
        })
    }
}

struct Grant {
    gfn: Gfn,
    peer_maps: usize,
}

#[derive(Default)]
struct GntInner {
    next_ref: u32,
    grants: HashMap<GrantRef, Grant>,
    offered: HashMap<GrantRef, Rc<PageMem>>,
    next_handle: u32,
    mapped: HashMap<u32, (Gfn, GrantRef)>,
}

/// Grant table fake (both our grants and the peer's offered grants).
#[derive(Clone)]
pub struct FakeGnttab {
    inner: Rc<RefCell<GntInner>>,
    pages: FakePages,
}

impl FakeGnttab {
    /// A grant table whose frames come from `pages`.
    pub fn new(pages: &FakePages) -> FakeGnttab {
        FakeGnttab {
            inner: Rc::new(RefCell::new(GntInner {
                next_ref: 8,
                next_handle: 1,
                ..Default::default()
            })),
            pages: pages.clone(),
        }
    }
    /// Our grants not yet ended.
    pub fn outstanding(&self) -> usize {
        self.inner.borrow().grants.len()
    }
    /// Peer grants currently mapped by us.
    pub fn foreign_mapped(&self) -> usize {
        self.inner.borrow().mapped.len()
    }
    /// Peer side: map our grant `gref`; `None` if it is not granted.
    pub fn peer_map(&self, gref: GrantRef) -> Option<Rc<PageMem>> {
        let mut inner = self.inner.borrow_mut();
        let g = inner.grants.get_mut(&gref)?;
        let mem = self.pages.cell(g.gfn)?.get()?.clone();
        g.peer_maps += 1;
        Some(mem)
    }
    /// Peer side: unmap a grant mapped with [`FakeGnttab::peer_map`].
    pub fn peer_unmap(&self, gref: GrantRef) {
        if let Some(g) = self.inner.borrow_mut().grants.get_mut(&gref) {
            g.peer_maps = g.peer_maps.saturating_sub(1);
        }
    }
    /// Peer side: offer a page of the peer's memory; returns its grant.
    pub fn peer_offer(&self, mem: Rc<PageMem>) -> GrantRef {
        let mut inner = self.inner.borrow_mut();
        inner.next_ref += 1;
        let gref = GrantRef(0x8000_0000 + inner.next_ref);
        inner.offered.insert(gref, mem);
        gref
    }
    /// Peer side: withdraw offered grants.
    pub fn peer_withdraw(&self, gref: GrantRef) {
        self.inner.borrow_mut().offered.remove(&gref);
    }
}

impl GrantTable for FakeGnttab {
    fn grant_access(
        &mut self,
        _domid: DomId,
        gfn: Gfn,
        _is_readonly: bool,
    ) -> Result<GrantRef, PlatformError> {
        if self.pages.cell(gfn).is_none() {
            return Err(PlatformError::Errno(-22));
        }
        let mut inner = self.inner.borrow_mut();
        inner.next_ref += 1;
        let gref = GrantRef(inner.next_ref);
        inner.grants.insert(gref, Grant { gfn, peer_maps: 0 });
        Ok(gref)
    }
    fn end_access(&mut self, gref: GrantRef) -> Result<(), PlatformError> {
        let mut inner = self.inner.borrow_mut();
        match inner.grants.get(&gref) {
            None => Err(PlatformError::NotHeld("grant")),
            Some(g) if g.peer_maps > 0 => Err(PlatformError::StillInUse(gref)),
            Some(_) => {
                inner.grants.remove(&gref);
                Ok(())
            }
        }
    }
    fn map_foreign(
        &mut self,
        _domid: DomId,
        gref: GrantRef,
        gfn: Gfn,
    ) -> Result<u32, PlatformError> {
        let mut inner = self.inner.borrow_mut();
        let mem = inner
            .offered
            .get(&gref)
            .cloned()
            .ok_or(PlatformError::Errno(-22))?;
        let cell = self.pages.cell(gfn).ok_or(PlatformError::Errno(-22))?;
        cell.set(mem).map_err(|_| PlatformError::Errno(-16))?;
        inner.next_handle += 1;
        let handle = inner.next_handle;
        inner.mapped.insert(handle, (gfn, gref));
        Ok(handle)
    }
    fn unmap_foreign(&mut self, gfn: Gfn, handle: u32) -> Result<(), PlatformError> {
        let mut inner = self.inner.borrow_mut();
        match inner.mapped.get(&handle) {
            Some((g, _)) if *g == gfn => {
                inner.mapped.remove(&handle);
                Ok(())
            }
            _ => Err(PlatformError::NotHeld("foreign mapping")),
        }
    }
}

#[derive(Default)]
struct EvtInner {
    next_port: u32,
    open: HashSet<EvtchnPort>,
    pending: HashSet<EvtchnPort>,
    sent: HashMap<EvtchnPort, usize>,
}

/// Event-channel fake.
#[derive(Clone, Default)]
pub struct FakeEvtchn {
    inner: Rc<RefCell<EvtInner>>,
}

impl FakeEvtchn {
    /// Ports open.
    pub fn outstanding(&self) -> usize {
        self.inner.borrow().open.len()
    }
    /// Peer side: notify our `port`.
    pub fn peer_notify(&self, port: EvtchnPort) {
        let mut inner = self.inner.borrow_mut();
        if inner.open.contains(&port) {
            inner.pending.insert(port);
        }
    }
    /// Peer side: notifications we sent on `port`, since the last call.
    pub fn peer_take_sent(&self, port: EvtchnPort) -> usize {
        self.inner.borrow_mut().sent.remove(&port).unwrap_or(0)
    }
}

impl EventChannels for FakeEvtchn {
    fn alloc_unbound(&mut self, _remote: DomId) -> Result<EvtchnPort, PlatformError> {
        let mut inner = self.inner.borrow_mut();
        inner.next_port += 1;
        let port = EvtchnPort(inner.next_port);
        inner.open.insert(port);
        Ok(port)
    }
    fn bind_interdomain(
        &mut self,
        _remote: DomId,
        _remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, PlatformError> {
        Err(PlatformError::Errno(-38))
    }
    fn send(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        let mut inner = self.inner.borrow_mut();
        if !inner.open.contains(&port) {
            return Err(PlatformError::NotHeld("port"));
        }
        *inner.sent.entry(port).or_default() += 1;
        Ok(())
    }
    fn close(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        let mut inner = self.inner.borrow_mut();
        inner.pending.remove(&port);
        if inner.open.remove(&port) {
            Ok(())
        } else {
            Err(PlatformError::NotHeld("port"))
        }
    }
    fn take_pending(&mut self, port: EvtchnPort) -> bool {
        self.inner.borrow_mut().pending.remove(&port)
    }
    fn wait(
        &mut self,
        ports: &[EvtchnPort],
        _deadline_ns: Option<u64>,
    ) -> Result<WaitOutcome, PlatformError> {
        let inner = self.inner.borrow();
        Ok(if ports.iter().any(|p| inner.pending.contains(p)) {
            WaitOutcome::Pending
        } else {
            WaitOutcome::DeadlinePassed
        })
    }
}

#[derive(Default)]
struct StoreInner {
    nodes: BTreeMap<String, String>,
    next_tx: u32,
    txs: HashMap<u32, Vec<(String, String)>>,
    fail_commits: usize,
    commits_failed: usize,
    watches: Vec<(String, String)>,
    events: VecDeque<(String, String)>,
}

/// In-memory xenstore with transactions (commit conflicts can be injected)
/// and watches.
#[derive(Clone, Default)]
pub struct MemStore {
    inner: Rc<RefCell<StoreInner>>,
}

impl MemStore {
    /// Set a node (outside transactions; fires watches).
    pub fn set(&self, path: &str, value: &str) {
        let mut inner = self.inner.borrow_mut();
        Self::apply(&mut inner, path, value);
    }
    /// Remove a node (fires watches, as xenstored does).
    pub fn remove(&self, path: &str) {
        let mut inner = self.inner.borrow_mut();
        if inner.nodes.remove(path).is_some() {
            Self::fire(&mut inner, path);
        }
    }
    /// A node's value.
    pub fn get(&self, path: &str) -> Option<String> {
        self.inner.borrow().nodes.get(path).cloned()
    }
    /// Make the next `n` commits fail with `EAGAIN`.
    pub fn fail_next_commits(&self, n: usize) {
        self.inner.borrow_mut().fail_commits = n;
    }
    /// Commits failed so far.
    pub fn commits_failed(&self) -> usize {
        self.inner.borrow().commits_failed
    }
    /// Watch events queued for `token`.
    pub fn pending_events(&self, token: &str) -> usize {
        self.inner
            .borrow()
            .events
            .iter()
            .filter(|(_, t)| t == token)
            .count()
    }
    /// Watches registered.
    pub fn watch_count(&self) -> usize {
        self.inner.borrow().watches.len()
    }
    fn apply(inner: &mut StoreInner, path: &str, value: &str) {
        inner.nodes.insert(path.to_string(), value.to_string());
        Self::fire(inner, path);
    }
    fn fire(inner: &mut StoreInner, path: &str) {
        let fired: Vec<_> = inner
            .watches
            .iter()
            .filter(|(w, _)| {
                path == w || (path.starts_with(w.as_str()) && path[w.len()..].starts_with('/'))
            })
            .map(|(_, t)| (path.to_string(), t.clone()))
            .collect();
        inner.events.extend(fired);
    }
}

impl Store for MemStore {
    fn read(&mut self, tx: TxId, path: &str) -> Result<Option<String>, StoreError> {
        let inner = self.inner.borrow();
        if let Some(writes) = inner.txs.get(&tx.0) {
            if let Some((_, v)) = writes.iter().rev().find(|(p, _)| p == path) {
                return Ok(Some(v.clone()));
            }
        }
        Ok(inner.nodes.get(path).cloned())
    }
    fn write(&mut self, tx: TxId, path: &str, value: &str) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        if tx == TxId::NONE {
            Self::apply(&mut inner, path, value);
            return Ok(());
        }
        match inner.txs.get_mut(&tx.0) {
            Some(w) => {
                w.push((path.to_string(), value.to_string()));
                Ok(())
            }
            None => Err(StoreError::Xenstored("ESRCH".into())),
        }
    }
    fn transaction_start(&mut self) -> Result<TxId, StoreError> {
        let mut inner = self.inner.borrow_mut();
        inner.next_tx += 1;
        let id = inner.next_tx;
        inner.txs.insert(id, Vec::new());
        Ok(TxId(id))
    }
    fn transaction_end(&mut self, tx: TxId, is_commit: bool) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        let writes = inner
            .txs
            .remove(&tx.0)
            .ok_or(StoreError::Xenstored("ESRCH".into()))?;
        if !is_commit {
            return Ok(());
        }
        if inner.fail_commits > 0 {
            inner.fail_commits -= 1;
            inner.commits_failed += 1;
            return Err(StoreError::Again);
        }
        for (p, v) in writes {
            Self::apply(&mut inner, &p, &v);
        }
        Ok(())
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        inner.watches.push((path.to_string(), token.to_string()));
        inner
            .events
            .push_back((path.to_string(), token.to_string()));
        Ok(())
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        let before = inner.watches.len();
        inner.watches.retain(|(p, t)| !(p == path && t == token));
        if inner.watches.len() == before {
            return Err(StoreError::Xenstored("ENOENT".into()));
        }
        inner.events.retain(|(_, t)| t != token);
        Ok(())
    }
    fn has_watch_event(&mut self, token: &str) -> bool {
        self.pending_events(token) > 0
    }
    fn take_watch_event(&mut self, token: &str) -> Option<String> {
        let mut inner = self.inner.borrow_mut();
        let i = inner.events.iter().position(|(_, t)| t == token)?;
        inner.events.remove(i).map(|(p, _)| p)
    }
}
