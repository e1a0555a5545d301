//! The full guest xenstore stack on the host: `XenstoreClient` over
//! `RingTransport` over an in-memory xenstore page, with a fake event channel
//! whose "xenstored" side moves bytes between the page and the fake store.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use xen::abi::xs_wire::*;
use xen::platform::{Clock, EventChannels, PlatformError, SharedPage, WaitOutcome};
use xen::shared_mem::{read_bytes, write_bytes, MemPage};
use xen::types::{DomId, EvtchnPort, Gfn};
use xen::xenstore::client::TxId;
use xen::xenstore::fake::{FakeConnection, FakeXenstore};
use xen::xenstore::ring::RingTransport;
use xen::xenstore::{XenstoreClient, XenstoreTransport};

const PORT: EvtchnPort = EvtchnPort(3);

fn idx(page: &MemPage, off: usize) -> u32 {
    page.words()[off / 4].load(Ordering::Acquire)
}
fn set_idx(page: &MemPage, off: usize, v: u32) {
    page.words()[off / 4].store(v, Ordering::Release)
}

/// xenstored's end of the page plus the event channel.
struct FakeStoreEvtchn<'a> {
    page: &'a MemPage,
    server: FakeConnection,
    pending: bool,
    clock: Rc<Cell<u64>>,
    sends: u32,
    /// Max bytes the server moves per kick (to force partial transfers).
    chunk: usize,
}

impl FakeStoreEvtchn<'_> {
    fn service(&mut self) {
        // Consume requests.
        let (cons, prod) = (
            idx(self.page, XS_IF_REQ_CONS_OFFSET),
            idx(self.page, XS_IF_REQ_PROD_OFFSET),
        );
        let mut c = cons;
        let mut bytes = Vec::new();
        while c != prod && bytes.len() < self.chunk {
            let mut b = [0u8];
            read_bytes(
                self.page.words(),
                XS_IF_REQ_OFFSET + mask_xenstore_idx(c),
                &mut b,
            )
            .unwrap();
            bytes.push(b[0]);
            c = c.wrapping_add(1);
        }
        set_idx(self.page, XS_IF_REQ_CONS_OFFSET, c);
        if !bytes.is_empty() {
            self.server.send(&bytes).unwrap();
            self.pending = true;
        }
        // Produce responses while there is space.
        let mut moved = 0;
        loop {
            let (cons, prod) = (
                idx(self.page, XS_IF_RSP_CONS_OFFSET),
                idx(self.page, XS_IF_RSP_PROD_OFFSET),
            );
            if prod.wrapping_sub(cons) as usize == XENSTORE_RING_SIZE || moved >= self.chunk {
                break;
            }
            let mut b = [0u8];
            if self.server.recv(&mut b).unwrap() == 0 {
                break;
            }
            write_bytes(
                self.page.words(),
                XS_IF_RSP_OFFSET + mask_xenstore_idx(prod),
                &b,
            )
            .unwrap();
            set_idx(self.page, XS_IF_RSP_PROD_OFFSET, prod.wrapping_add(1));
            moved += 1;
            self.pending = true;
        }
    }
}

impl EventChannels for FakeStoreEvtchn<'_> {
    fn alloc_unbound(&mut self, _: DomId) -> Result<EvtchnPort, PlatformError> {
        Err(PlatformError::Exhausted("ports"))
    }
    fn bind_interdomain(&mut self, _: DomId, _: EvtchnPort) -> Result<EvtchnPort, PlatformError> {
        Err(PlatformError::Exhausted("ports"))
    }
    fn send(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        assert_eq!(port, PORT);
        self.sends += 1;
        self.service();
        Ok(())
    }
    fn close(&mut self, _: EvtchnPort) -> Result<(), PlatformError> {
        Ok(())
    }
    fn take_pending(&mut self, port: EvtchnPort) -> bool {
        assert_eq!(port, PORT);
        std::mem::take(&mut self.pending)
    }
    fn wait(
        &mut self,
        ports: &[EvtchnPort],
        deadline: Option<u64>,
    ) -> Result<WaitOutcome, PlatformError> {
        assert_eq!(ports, &[PORT]);
        // "xenstored" runs while we sleep.
        self.service();
        if self.pending {
            return Ok(WaitOutcome::Pending);
        }
        let d = deadline.expect("client waits always have a deadline");
        self.clock.set(self.clock.get().max(d));
        Ok(WaitOutcome::DeadlinePassed)
    }
}

struct FakeClock(Rc<Cell<u64>>);
impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }
}

fn client<'a>(
    page: &'a MemPage,
    store: &FakeXenstore,
    chunk: usize,
) -> XenstoreClient<RingTransport<&'a MemPage, FakeStoreEvtchn<'a>, FakeClock>> {
    let clock = Rc::new(Cell::new(0));
    let evtchn = FakeStoreEvtchn {
        page,
        server: store.connect(DomId(5)),
        pending: false,
        clock: clock.clone(),
        sends: 0,
        chunk,
    };
    XenstoreClient::new(RingTransport::new(page, evtchn, FakeClock(clock), PORT).unwrap())
}

#[test]
fn client_over_ring_page_end_to_end() {
    for chunk in [1, 7, 4096] {
        for start in [0u32, u32::MAX - 100] {
            let page = MemPage::new(Gfn(0xfeffc));
            for off in [
                XS_IF_REQ_CONS_OFFSET,
                XS_IF_REQ_PROD_OFFSET,
                XS_IF_RSP_CONS_OFFSET,
                XS_IF_RSP_PROD_OFFSET,
            ] {
                set_idx(&page, off, start);
            }
            let store = FakeXenstore::new();
            let mut c = client(&page, &store, chunk);
            assert_eq!(c.get_domain_path(DomId(5)).unwrap(), "/local/domain/5");
            c.write(TxId::NONE, "name", b"pvdispl-selftest").unwrap();
            assert_eq!(
                c.read_string(TxId::NONE, "/local/domain/5/name").unwrap(),
                "pvdispl-selftest"
            );
            // A value bigger than the 1 KiB ring goes through in pieces.
            let big: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
            c.write(TxId::NONE, "data/big", &big).unwrap();
            assert_eq!(c.read(TxId::NONE, "data/big").unwrap(), big);
            c.watch("/local/domain/5/data", "tok").unwrap();
            let e = c
                .wait_watch_event(c.transport().now_ns() + 1_000_000)
                .unwrap()
                .unwrap();
            assert_eq!(e.token, "tok");
            store.write("/local/domain/5/data/x", b"1");
            let e = c
                .wait_watch_event(c.transport().now_ns() + 1_000_000)
                .unwrap()
                .unwrap();
            assert_eq!(e.path, "/local/domain/5/data/x");
            c.transaction(4, |tx| tx.write("t", b"1")).unwrap();
            c.rm(TxId::NONE, "data").unwrap();
            assert!(c.directory(TxId::NONE, "data").unwrap_err().is_enoent());
        }
    }
}

#[test]
fn silent_store_times_out_by_the_clock() {
    let page = MemPage::new(Gfn(1));
    let store = FakeXenstore::new();
    let mut c = client(&page, &store, 4096);
    // A deaf "xenstored": it moves 0 bytes per kick.
    c.transport_mut().evtchn_mut().chunk = 0;
    c.set_request_timeout_ns(100_000_000);
    let t0 = c.transport().now_ns();
    assert_eq!(
        c.read(TxId::NONE, "/x").unwrap_err(),
        xen::xenstore::XsClientError::Timeout
    );
    assert_eq!(c.transport().now_ns() - t0, 100_000_000);
}

#[test]
fn corrupt_indices_surface_as_transport_errors() {
    let page = MemPage::new(Gfn(1));
    let store = FakeXenstore::new();
    let mut c = client(&page, &store, 4096);
    set_idx(&page, XS_IF_RSP_PROD_OFFSET, 999_999);
    assert!(matches!(
        c.read(TxId::NONE, "/x").unwrap_err(),
        xen::xenstore::XsClientError::Transport(_)
    ));
}
