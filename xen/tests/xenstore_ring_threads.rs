//! The guest's xenstore byte rings against a "xenstored" thread that echoes every
//! request byte back as response bytes, across the u32 index wrap: every byte
//! arrives once and in order in both directions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use xen::abi::xs_wire::*;
use xen::platform::SharedPage;
use xen::shared_mem::{read_bytes, write_bytes, MemPage};
use xen::types::Gfn;
use xen::xenstore::ring::XsRingPage;

const TOTAL: usize = 300_000;

fn byte(i: usize) -> u8 {
    (i.wrapping_mul(131) >> 3) as u8
}

/// Sets the flag if the owning thread panics, so the other thread stops.
struct FlagOnPanic<'a>(&'a AtomicBool);

impl Drop for FlagOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn echo_server_thread_across_wrap() {
    let page = MemPage::new(Gfn(1));
    let start = u32::MAX - 700;
    for off in [
        XS_IF_REQ_CONS_OFFSET,
        XS_IF_REQ_PROD_OFFSET,
        XS_IF_RSP_CONS_OFFSET,
        XS_IF_RSP_PROD_OFFSET,
    ] {
        page.words()[off / 4].store(start, Ordering::Relaxed);
    }
    let failed = AtomicBool::new(false);
    thread::scope(|s| {
        // xenstored: move request bytes to the response ring (its own code).
        s.spawn(|| {
            let _guard = FlagOnPanic(&failed);
            let w = page.words();
            let mut moved = 0;
            let mut pending: Vec<u8> = Vec::new();
            while moved < TOTAL && !failed.load(Ordering::Relaxed) {
                let prod = w[XS_IF_REQ_PROD_OFFSET / 4].load(Ordering::Acquire);
                let mut cons = w[XS_IF_REQ_CONS_OFFSET / 4].load(Ordering::Relaxed);
                while cons != prod && pending.len() < 4096 {
                    let mut b = [0u8];
                    read_bytes(w, XS_IF_REQ_OFFSET + mask_xenstore_idx(cons), &mut b).unwrap();
                    pending.push(b[0]);
                    cons = cons.wrapping_add(1);
                }
                w[XS_IF_REQ_CONS_OFFSET / 4].store(cons, Ordering::Release);
                let rcons = w[XS_IF_RSP_CONS_OFFSET / 4].load(Ordering::Acquire);
                let mut rprod = w[XS_IF_RSP_PROD_OFFSET / 4].load(Ordering::Relaxed);
                let mut n = 0;
                while n < pending.len() && (rprod.wrapping_sub(rcons) as usize) < XENSTORE_RING_SIZE
                {
                    write_bytes(
                        w,
                        XS_IF_RSP_OFFSET + mask_xenstore_idx(rprod),
                        &pending[n..n + 1],
                    )
                    .unwrap();
                    rprod = rprod.wrapping_add(1);
                    n += 1;
                }
                w[XS_IF_RSP_PROD_OFFSET / 4].store(rprod, Ordering::Release);
                pending.drain(..n);
                moved += n;
                thread::yield_now();
            }
        });
        // Guest: write the stream in uneven chunks, read the echo, compare.
        s.spawn(|| {
            let _guard = FlagOnPanic(&failed);
            let ring = XsRingPage::new(page.words()).unwrap();
            let (mut sent, mut got) = (0usize, 0usize);
            let data: Vec<u8> = (0..TOTAL).map(byte).collect();
            let mut buf = [0u8; 333];
            while got < TOTAL {
                if sent < TOTAL {
                    let end = (sent + 1 + sent % 777).min(TOTAL);
                    sent += ring.write(&data[sent..end]).unwrap().bytes;
                }
                let n = ring.read(&mut buf).unwrap().bytes;
                assert!(
                    buf[..n] == data[got..got + n],
                    "echo mismatch at byte {got}"
                );
                assert!(!failed.load(Ordering::Relaxed), "server thread panicked");
                got += n;
                if n == 0 {
                    thread::yield_now();
                }
            }
        });
    });
}
