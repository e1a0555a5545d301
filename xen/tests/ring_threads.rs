//! Real concurrency: front and back ends of a shared ring, and the displif event
//! page, driven from two threads over one in-memory page. Checks that every
//! entry arrives once, in order, uncorrupted, across the u32 index wrap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use xen::abi::displif::{
    packet_to_words, Event, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET,
};
use xen::abi::ring::{
    SRING_REQ_EVENT_OFFSET, SRING_REQ_PROD_OFFSET, SRING_RSP_EVENT_OFFSET, SRING_RSP_PROD_OFFSET,
};
use xen::platform::SharedPage;
use xen::ring::{event_page_can_produce, event_slot_word, BackRing, EventPageConsumer, FrontRing};
use xen::shared_mem::{write_words, MemPage};
use xen::types::Gfn;

const N: u32 = 50_000;

/// Entry for `tag`: word 0 is the tag, the others derive from it (detects tearing).
fn entry(tag: u32) -> [u8; 64] {
    let mut e = [0u8; 64];
    for (i, chunk) in e.chunks_exact_mut(4).enumerate() {
        let v = if i == 0 {
            tag
        } else {
            tag.wrapping_mul(31).wrapping_add(i as u32)
        };
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    e
}

fn tag_of(e: &[u8; 64]) -> u32 {
    let t = u32::from_le_bytes(e[..4].try_into().unwrap());
    assert_eq!(*e, entry(t), "torn or corrupted entry");
    t
}

/// Set when any thread panics, so the other one stops spinning and the test
/// fails instead of hanging.
struct AbortOnPanic<'a>(&'a AtomicBool);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

fn wait_a_bit(abort: &AtomicBool) {
    assert!(!abort.load(Ordering::SeqCst), "the other thread panicked");
    thread::yield_now();
}

#[test]
fn request_ring_two_threads_across_wrap() {
    let start = u32::MAX - 5000;
    let page = MemPage::new(Gfn(1));
    let w = page.words();
    for off in [SRING_REQ_PROD_OFFSET, SRING_RSP_PROD_OFFSET] {
        w[off / 4].store(start, Ordering::Relaxed);
    }
    for off in [SRING_REQ_EVENT_OFFSET, SRING_RSP_EVENT_OFFSET] {
        w[off / 4].store(start.wrapping_add(1), Ordering::Relaxed);
    }
    let abort = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _guard = AbortOnPanic(&abort);
            let mut front = FrontRing::attach(&page, 64, start).unwrap();
            let mut next_rsp = 0u32;
            let mut buf = [0u8; 64];
            for i in 0..N {
                while front.is_full() {
                    // Publish what we queued, or the back end can never answer.
                    let _ = front.push_requests();
                    while front.take_response(&mut buf).unwrap() {
                        assert_eq!(tag_of(&buf), next_rsp + 1_000_000);
                        next_rsp += 1;
                    }
                    wait_a_bit(&abort);
                }
                front.put_request(&entry(i)).unwrap();
                if i % 7 == 0 {
                    let _ = front.push_requests();
                }
            }
            let _ = front.push_requests();
            while next_rsp < N {
                if front.take_response(&mut buf).unwrap() {
                    assert_eq!(tag_of(&buf), next_rsp + 1_000_000);
                    next_rsp += 1;
                } else {
                    wait_a_bit(&abort);
                }
            }
        });
        s.spawn(|| {
            let _guard = AbortOnPanic(&abort);
            let mut back = BackRing::attach(&page, 64, start).unwrap();
            let mut next_req = 0u32;
            let mut buf = [0u8; 64];
            while next_req < N {
                let mut any = false;
                while back.take_request(&mut buf).unwrap() {
                    assert_eq!(tag_of(&buf), next_req);
                    back.put_response(&entry(next_req + 1_000_000)).unwrap();
                    next_req += 1;
                    any = true;
                }
                let _ = back.push_responses();
                if !any && !back.final_check_for_requests().unwrap() {
                    wait_a_bit(&abort);
                }
            }
        });
    });
}

#[test]
fn event_page_two_threads_across_wrap() {
    let start = u32::MAX - 3000;
    let page = MemPage::new(Gfn(2));
    let w = page.words();
    w[XENDISPL_EVENT_PAGE_IN_PROD_OFFSET / 4].store(start, Ordering::Relaxed);
    w[XENDISPL_EVENT_PAGE_IN_CONS_OFFSET / 4].store(start, Ordering::Relaxed);
    let abort = AtomicBool::new(false);
    thread::scope(|s| {
        // Producer: an independent implementation using the exact slot check.
        s.spawn(|| {
            let _guard = AbortOnPanic(&abort);
            let w = page.words();
            for id in 0..N {
                loop {
                    let cons = w[XENDISPL_EVENT_PAGE_IN_CONS_OFFSET / 4].load(Ordering::Acquire);
                    let prod = w[XENDISPL_EVENT_PAGE_IN_PROD_OFFSET / 4].load(Ordering::Relaxed);
                    if event_page_can_produce(cons, prod) {
                        let ev = Event {
                            id: id as u16,
                            fb_cookie: u64::from(id) << 8,
                        };
                        write_words(w, event_slot_word(prod), &packet_to_words(&ev.encode()))
                            .unwrap();
                        w[XENDISPL_EVENT_PAGE_IN_PROD_OFFSET / 4]
                            .store(prod.wrapping_add(1), Ordering::Release);
                        break;
                    }
                    wait_a_bit(&abort);
                }
            }
        });
        s.spawn(|| {
            let _guard = AbortOnPanic(&abort);
            let mut c = EventPageConsumer::new(&page).unwrap();
            let mut id = 0u32;
            while id < N {
                match c.next_event().unwrap() {
                    Some(e) => {
                        assert_eq!(
                            e,
                            Event {
                                id: id as u16,
                                fb_cookie: u64::from(id) << 8
                            }
                        );
                        id += 1;
                    }
                    None => wait_a_bit(&abort),
                }
            }
        });
    });
}
