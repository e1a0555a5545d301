//! Fakes for host tests: grant memory, a guest grant table, event channels,
//! a clock and a xenstore, all in memory.
//!
//! A [`SimGuest`] plays a frontend domain: it "grants" heap pages (the backend's
//! [`FakeMapper`] maps the very same pages, so both sides see each other's
//! writes), and records the notifications the backend sends it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use xen::types::{DomId, EvtchnPort, GrantRef, PAGE_SIZE};

use crate::platform::{
    Allocated, EventChannel, GrantAllocator, GrantMapper, GrantMemory, OsError, Xenstore,
    WORDS_PER_PAGE,
};

/// One page of atomics.
pub type Page = Arc<[AtomicU32]>;

fn new_page() -> Page {
    (0..WORDS_PER_PAGE).map(|_| AtomicU32::new(0)).collect()
}

/// Heap pages viewed as [`GrantMemory`]; clones share the pages.
#[derive(Clone)]
pub struct HeapMemory {
    pages: Vec<Page>,
}

impl HeapMemory {
    /// `nr_pages` zeroed pages.
    pub fn new(nr_pages: usize) -> HeapMemory {
        HeapMemory {
            pages: (0..nr_pages).map(|_| new_page()).collect(),
        }
    }

    /// Another view of the same pages.
    pub fn share(&self) -> HeapMemory {
        self.clone()
    }

    /// The pages.
    pub fn pages(&self) -> &[Page] {
        &self.pages
    }
}

impl GrantMemory for HeapMemory {
    fn nr_pages(&self) -> usize {
        self.pages.len()
    }
    fn page(&self, index: usize) -> &[AtomicU32] {
        &self.pages[index]
    }
}

/// The guest side of a simulated domain: its grant table and event log.
#[derive(Default)]
pub struct GuestState {
    grants: HashMap<u32, Page>,
    next_ref: u32,
    /// Grants the backend currently maps, by ref.
    pub mapped: HashMap<u32, u32>,
    /// Grants the backend allocated for this guest (be-alloc), by ref.
    pub backend_grants: HashMap<u32, Page>,
    /// Notifications the backend sent, by (frontend's) port.
    pub notified: BTreeMap<u32, u32>,
    /// Fail every grant map (to test error paths).
    pub fail_maps: bool,
}

/// A simulated guest domain, shared by the test and the backend's fakes.
#[derive(Clone)]
pub struct SimGuest {
    /// Its domain id.
    pub domid: DomId,
    /// Its state.
    pub state: Arc<Mutex<GuestState>>,
}

impl SimGuest {
    /// A guest with no grants.
    pub fn new(domid: DomId) -> SimGuest {
        SimGuest {
            domid,
            state: Arc::new(Mutex::new(GuestState {
                next_ref: 8,
                ..GuestState::default()
            })),
        }
    }

    /// Grant `nr_pages` fresh pages; returns their refs and a guest-side view.
    pub fn grant(&self, nr_pages: usize) -> (Vec<GrantRef>, HeapMemory) {
        let memory = HeapMemory::new(nr_pages);
        let mut state = self.state.lock().unwrap();
        let refs = memory
            .pages
            .iter()
            .map(|page| {
                let r = state.next_ref;
                state.next_ref += 1;
                state.grants.insert(r, Arc::clone(page));
                GrantRef(r)
            })
            .collect();
        (refs, memory)
    }

    /// The guest's own view of one of its granted pages.
    pub fn view(&self, gref: GrantRef) -> HeapMemory {
        let state = self.state.lock().unwrap();
        HeapMemory {
            pages: vec![Arc::clone(state.grants.get(&gref.0).expect("granted"))],
        }
    }

    /// Pages the backend granted to us, mapped guest-side.
    pub fn map_backend_grants(&self, refs: &[GrantRef]) -> Option<HeapMemory> {
        let state = self.state.lock().unwrap();
        let pages = refs
            .iter()
            .map(|r| state.backend_grants.get(&r.0).cloned())
            .collect::<Option<Vec<_>>>()?;
        Some(HeapMemory { pages })
    }

    /// Number of grants the backend maps right now.
    pub fn mapped_count(&self) -> u32 {
        self.state.lock().unwrap().mapped.values().sum()
    }

    /// Notifications received on frontend port `port`.
    pub fn notifications(&self, port: EvtchnPort) -> u32 {
        self.state
            .lock()
            .unwrap()
            .notified
            .get(&port.0)
            .copied()
            .unwrap_or(0)
    }
}

struct MappedGuestPages {
    memory: HeapMemory,
    refs: Vec<u32>,
    guest: Arc<Mutex<GuestState>>,
}

impl GrantMemory for MappedGuestPages {
    fn nr_pages(&self) -> usize {
        self.memory.nr_pages()
    }
    fn page(&self, index: usize) -> &[AtomicU32] {
        self.memory.page(index)
    }
}

impl Drop for MappedGuestPages {
    fn drop(&mut self) {
        let mut state = self.guest.lock().unwrap();
        for r in &self.refs {
            if let Some(n) = state.mapped.get_mut(r) {
                *n -= 1;
                if *n == 0 {
                    state.mapped.remove(r);
                }
            }
        }
    }
}

/// The backend's grant mapper over simulated guests.
pub struct FakeMapper {
    guests: Vec<SimGuest>,
}

impl FakeMapper {
    /// A mapper that can see `guests`.
    pub fn new(guests: &[SimGuest]) -> FakeMapper {
        FakeMapper {
            guests: guests.to_vec(),
        }
    }
}

impl GrantMapper for FakeMapper {
    fn map(
        &mut self,
        domid: DomId,
        refs: &[GrantRef],
        _is_writable: bool,
    ) -> Result<Box<dyn GrantMemory>, OsError> {
        let guest = self
            .guests
            .iter()
            .find(|g| g.domid == domid)
            .ok_or(OsError::Errno {
                what: "map",
                errno: 3,
            })?;
        let mut state = guest.state.lock().unwrap();
        if state.fail_maps {
            return Err(OsError::Errno {
                what: "IOCTL_GNTDEV_MAP_GRANT_REF",
                errno: 22,
            });
        }
        let pages = refs
            .iter()
            .map(|r| state.grants.get(&r.0).cloned())
            .collect::<Option<Vec<_>>>()
            .ok_or(OsError::Errno {
                what: "mmap granted pages",
                errno: 22,
            })?;
        for r in refs {
            *state.mapped.entry(r.0).or_insert(0) += 1;
        }
        Ok(Box::new(MappedGuestPages {
            memory: HeapMemory { pages },
            refs: refs.iter().map(|r| r.0).collect(),
            guest: Arc::clone(&guest.state),
        }))
    }
}

struct AllocatedPages {
    memory: HeapMemory,
    refs: Vec<u32>,
    guest: Arc<Mutex<GuestState>>,
}

impl GrantMemory for AllocatedPages {
    fn nr_pages(&self) -> usize {
        self.memory.nr_pages()
    }
    fn page(&self, index: usize) -> &[AtomicU32] {
        self.memory.page(index)
    }
}

impl Drop for AllocatedPages {
    fn drop(&mut self) {
        let mut state = self.guest.lock().unwrap();
        for r in &self.refs {
            state.backend_grants.remove(r);
        }
    }
}

/// The backend's allocator: pages granted to a simulated guest.
pub struct FakeAllocator {
    guests: Vec<SimGuest>,
    next_ref: u32,
    /// Refuse allocations above this many pages (like gntalloc's `limit`).
    pub limit_pages: usize,
}

impl FakeAllocator {
    /// An allocator granting to `guests`.
    pub fn new(guests: &[SimGuest]) -> FakeAllocator {
        FakeAllocator {
            guests: guests.to_vec(),
            next_ref: 100_000,
            limit_pages: usize::MAX,
        }
    }
}

impl GrantAllocator for FakeAllocator {
    fn alloc(&mut self, domid: DomId, nr_pages: usize) -> Result<Allocated, OsError> {
        if nr_pages > self.limit_pages {
            return Err(OsError::Errno {
                what: "IOCTL_GNTALLOC_ALLOC_GREF",
                errno: 28,
            });
        }
        let guest = self
            .guests
            .iter()
            .find(|g| g.domid == domid)
            .ok_or(OsError::Errno {
                what: "alloc",
                errno: 3,
            })?;
        let memory = HeapMemory::new(nr_pages);
        let mut state = guest.state.lock().unwrap();
        let mut refs = Vec::new();
        for page in &memory.pages {
            refs.push(self.next_ref);
            state.backend_grants.insert(self.next_ref, Arc::clone(page));
            self.next_ref += 1;
        }
        Ok(Allocated {
            refs: refs.iter().map(|&r| GrantRef(r)).collect(),
            memory: Box::new(AllocatedPages {
                memory,
                refs,
                guest: Arc::clone(&guest.state),
            }),
        })
    }
}

/// Event channels: local port = remote port + 1000; notifications land in the guest.
pub struct FakeEvtchn {
    guest: SimGuest,
    bound: HashMap<u32, u32>,
    /// Fail binds (error path tests).
    pub fail_bind: bool,
}

impl FakeEvtchn {
    /// Channels to `guest`.
    pub fn new(guest: &SimGuest) -> FakeEvtchn {
        FakeEvtchn {
            guest: guest.clone(),
            bound: HashMap::new(),
            fail_bind: false,
        }
    }
}

/// The local port [`FakeEvtchn`] gives for a frontend port.
pub fn local_port(remote: EvtchnPort) -> EvtchnPort {
    EvtchnPort(remote.0 + 1000)
}

impl EventChannel for FakeEvtchn {
    fn bind(&mut self, remote: DomId, remote_port: EvtchnPort) -> Result<EvtchnPort, OsError> {
        if self.fail_bind || remote != self.guest.domid {
            return Err(OsError::Errno {
                what: "IOCTL_EVTCHN_BIND_INTERDOMAIN",
                errno: 22,
            });
        }
        let local = local_port(remote_port);
        if self.bound.insert(local.0, remote_port.0).is_some() {
            return Err(OsError::Errno {
                what: "IOCTL_EVTCHN_BIND_INTERDOMAIN",
                errno: 16,
            });
        }
        Ok(local)
    }
    fn unbind(&mut self, port: EvtchnPort) -> Result<(), OsError> {
        self.bound
            .remove(&port.0)
            .map(|_| ())
            .ok_or(OsError::Errno {
                what: "IOCTL_EVTCHN_UNBIND",
                errno: 22,
            })
    }
    fn notify(&mut self, port: EvtchnPort) -> Result<(), OsError> {
        let remote = *self.bound.get(&port.0).ok_or(OsError::Errno {
            what: "IOCTL_EVTCHN_NOTIFY",
            errno: 22,
        })?;
        *self
            .guest
            .state
            .lock()
            .unwrap()
            .notified
            .entry(remote)
            .or_insert(0) += 1;
        Ok(())
    }
}

/// A manual clock shared between a test and the backend.
#[derive(Clone, Default)]
pub struct FakeClock(pub Arc<AtomicU64>);

impl FakeClock {
    /// Move time forward.
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
    /// Current time.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl xen::platform::Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.get()
    }
}

/// An in-memory xenstore implementing the backend's [`Xenstore`] trait.
#[derive(Clone, Default)]
pub struct FakeXenstore {
    tree: Arc<Mutex<BTreeMap<String, String>>>,
}

impl FakeXenstore {
    /// Remove a node and its children.
    pub fn remove(&self, path: &str) {
        let prefix = format!("{path}/");
        self.tree
            .lock()
            .unwrap()
            .retain(|k, _| k != path && !k.starts_with(&prefix));
    }

    /// Read without the trait.
    pub fn get(&self, path: &str) -> Option<String> {
        self.tree.lock().unwrap().get(path).cloned()
    }

    /// Write without the trait.
    pub fn set(&self, path: &str, value: &str) {
        self.tree
            .lock()
            .unwrap()
            .insert(path.to_string(), value.to_string());
    }
}

impl Xenstore for FakeXenstore {
    fn read(&mut self, path: &str) -> Result<Option<String>, OsError> {
        Ok(self.get(path))
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), OsError> {
        self.set(path, value);
        Ok(())
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, OsError> {
        let prefix = format!("{path}/");
        let tree = self.tree.lock().unwrap();
        let mut children: Vec<String> = tree
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        children.dedup();
        Ok(children)
    }
}

/// Bytes in `n` pages.
pub const fn pages_bytes(n: usize) -> usize {
    n * PAGE_SIZE
}
