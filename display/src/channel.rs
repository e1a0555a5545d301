//! One connector's two channels: the request ring and the event page.
//!
//! The request ring is a standard one-page Xen shared ring
//! (`xen/include/public/io/ring.h`, `DEFINE_RING_TYPES(xen_displif, ...)`,
//! 32 slots of 64 bytes after a 64-byte header) on which the frontend produces
//! requests and consumes responses; the event page
//! (`struct xendispl_event_page`) is a 63-slot ring on which the backend
//! produces events and the frontend consumes them. Both are accessed as
//! `&[AtomicU32]` views of the shared page; every index the backend writes is
//! checked before it is used, so a corrupt ring is a [`ChannelError`], never
//! an out-of-bounds access. Barriers follow `ring.h`: entries are written
//! before the producer index is published (release store), the producer index
//! is read before the entries it covers (acquire load), and a full fence
//! separates publishing an index from reading the peer's event threshold.
//!
//! [`RequestRing`] also enforces the displif rule the frontend relies on: at
//! most one request is outstanding; its id and operation are remembered so the
//! response can be matched (mismatches are reported, not trusted).

use core::fmt;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use xen::abi::displif::{
    packet_to_words, words_to_packet, Event, PacketError, Request, Response, PACKET_WORDS,
    XENDISPL_IN_RING_LEN, XENDISPL_IN_RING_OFFS, XENDISPL_REQ_RING_SIZE,
};
use xen::abi::ring::{
    SRING_ENTRIES_OFFSET, SRING_REQ_EVENT_OFFSET, SRING_REQ_PROD_OFFSET, SRING_RSP_EVENT_OFFSET,
    SRING_RSP_PROD_OFFSET,
};

const REQ_PROD: usize = SRING_REQ_PROD_OFFSET / 4;
const REQ_EVENT: usize = SRING_REQ_EVENT_OFFSET / 4;
const RSP_PROD: usize = SRING_RSP_PROD_OFFSET / 4;
const RSP_EVENT: usize = SRING_RSP_EVENT_OFFSET / 4;
const ENTRIES: usize = SRING_ENTRIES_OFFSET / 4;
const IN_CONS: usize = 0;
const IN_PROD: usize = 1;
const EVENTS: usize = XENDISPL_IN_RING_OFFS / 4;

/// A shared ring or event page the backend corrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The page view is not a whole page of words.
    BadPage,
    /// `rsp_prod` moved past the requests we produced.
    ResponsesOverrun {
        /// Our response consumer index.
        rsp_cons: u32,
        /// The backend's producer index.
        rsp_prod: u32,
    },
    /// `in_prod` is more than a ring's worth ahead of our consumer index.
    EventsOverrun {
        /// Our consumer index.
        in_cons: u32,
        /// The backend's producer index.
        in_prod: u32,
    },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::BadPage => f.write_str("shared page is not 4096 bytes"),
            ChannelError::ResponsesOverrun { rsp_cons, rsp_prod } => write!(
                f,
                "backend rsp_prod {rsp_prod} is beyond our requests (rsp_cons {rsp_cons})"
            ),
            ChannelError::EventsOverrun { in_cons, in_prod } => write!(
                f,
                "backend in_prod {in_prod} is more than {XENDISPL_IN_RING_LEN} ahead of in_cons {in_cons}"
            ),
        }
    }
}

fn check_page(words: &[AtomicU32]) -> Result<(), ChannelError> {
    if words.len() == 1024 {
        Ok(())
    } else {
        Err(ChannelError::BadPage)
    }
}

fn read_packet(words: &[AtomicU32], at: usize) -> [u8; 64] {
    let w: [u32; PACKET_WORDS] = core::array::from_fn(|i| words[at + i].load(Ordering::Relaxed));
    words_to_packet(&w)
}

/// The outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    /// Its id.
    pub id: u16,
    /// Its operation.
    pub operation: u8,
}

/// A response as read from the ring, matched against the outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// The response to the outstanding request.
    Matched(Response),
    /// A response whose id or operation is not the outstanding request's (or
    /// that arrived with nothing outstanding): log and ignore.
    Unexpected(Response),
    /// A response with non-zero reserved bytes: log and ignore.
    Malformed(PacketError),
}

/// Front end of the request ring, at most one request outstanding.
#[derive(Debug)]
pub struct RequestRing {
    req_prod_pvt: u32,
    rsp_cons: u32,
    next_id: u16,
    outstanding: Option<Outstanding>,
}

impl RequestRing {
    /// Initialise the shared ring in `words` (`SHARED_RING_INIT` +
    /// `FRONT_RING_INIT`). The page must not be shared yet.
    pub fn init(words: &[AtomicU32]) -> Result<RequestRing, ChannelError> {
        check_page(words)?;
        for w in words {
            w.store(0, Ordering::Relaxed);
        }
        words[REQ_EVENT].store(1, Ordering::Relaxed);
        words[RSP_EVENT].store(1, Ordering::Relaxed);
        Ok(RequestRing {
            req_prod_pvt: 0,
            rsp_cons: 0,
            next_id: 0,
            outstanding: None,
        })
    }

    /// The outstanding request, if any.
    pub fn outstanding(&self) -> Option<Outstanding> {
        self.outstanding
    }

    /// Forget the outstanding request (it timed out); a late response to it
    /// will be reported as [`Received::Unexpected`].
    pub fn abandon(&mut self) {
        self.outstanding = None;
    }

    /// Put `req` on the ring with a fresh id. Returns the id and whether the
    /// backend must be notified. Panics never; refuses (returns `None`) while a
    /// request is outstanding.
    #[must_use = "notify the backend when the flag is set"]
    pub fn push(&mut self, words: &[AtomicU32], req: &Request) -> Option<(u16, bool)> {
        if self.outstanding.is_some() || check_page(words).is_err() {
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let slot = (self.req_prod_pvt as usize) & (XENDISPL_REQ_RING_SIZE - 1);
        let at = ENTRIES + slot * PACKET_WORDS;
        for (i, w) in packet_to_words(&req.encode(id)).into_iter().enumerate() {
            words[at + i].store(w, Ordering::Relaxed);
        }
        let old = self.req_prod_pvt;
        self.req_prod_pvt = old.wrapping_add(1);
        // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: the entry stores above happen
        // before the backend can see the new req_prod (release)...
        words[REQ_PROD].store(self.req_prod_pvt, Ordering::Release);
        // ...and req_prod is globally visible before we read req_event (mb).
        fence(Ordering::SeqCst);
        let event = words[REQ_EVENT].load(Ordering::Relaxed);
        let notify = self.req_prod_pvt.wrapping_sub(event) < self.req_prod_pvt.wrapping_sub(old);
        self.outstanding = Some(Outstanding {
            id,
            operation: req.operation(),
        });
        Some((id, notify))
    }

    /// Consume every available response (`RING_FINAL_CHECK_FOR_RESPONSES`
    /// included), calling `on` for each.
    pub fn take_responses(
        &mut self,
        words: &[AtomicU32],
        mut on: impl FnMut(Received),
    ) -> Result<(), ChannelError> {
        check_page(words)?;
        loop {
            // Acquire: entries up to rsp_prod are read after rsp_prod.
            let rsp_prod = words[RSP_PROD].load(Ordering::Acquire);
            let available = rsp_prod.wrapping_sub(self.rsp_cons);
            if available > self.req_prod_pvt.wrapping_sub(self.rsp_cons) {
                return Err(ChannelError::ResponsesOverrun {
                    rsp_cons: self.rsp_cons,
                    rsp_prod,
                });
            }
            while self.rsp_cons != rsp_prod {
                let slot = (self.rsp_cons as usize) & (XENDISPL_REQ_RING_SIZE - 1);
                let packet = read_packet(words, ENTRIES + slot * PACKET_WORDS);
                self.rsp_cons = self.rsp_cons.wrapping_add(1);
                on(match Response::decode(&packet) {
                    Err(e) => Received::Malformed(e),
                    Ok(r) => match self.outstanding {
                        Some(o) if o.id == r.id && o.operation == r.operation => {
                            self.outstanding = None;
                            Received::Matched(r)
                        }
                        _ => Received::Unexpected(r),
                    },
                });
            }
            // Ask for a notification at the next response, then re-check for a
            // response that raced with that request (mb between the two).
            words[RSP_EVENT].store(self.rsp_cons.wrapping_add(1), Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if words[RSP_PROD].load(Ordering::Acquire) == self.rsp_cons {
                return Ok(());
            }
        }
    }
}

/// An event as read from the event page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceivedEvent {
    /// A frame-done event.
    FrameDone(Event),
    /// An unknown type or non-zero reserved bytes: log and ignore.
    Malformed(PacketError),
}

/// Consumer side of the event page.
#[derive(Debug)]
pub struct EventRing {
    in_cons: u32,
}

impl EventRing {
    /// Zero the event page; it must not be shared yet.
    pub fn init(words: &[AtomicU32]) -> Result<EventRing, ChannelError> {
        check_page(words)?;
        for w in words {
            w.store(0, Ordering::Relaxed);
        }
        Ok(EventRing { in_cons: 0 })
    }

    /// Consume every available event, calling `on` for each.
    pub fn take_events(
        &mut self,
        words: &[AtomicU32],
        mut on: impl FnMut(ReceivedEvent),
    ) -> Result<(), ChannelError> {
        check_page(words)?;
        // Acquire: the events up to in_prod are read after in_prod.
        let in_prod = words[IN_PROD].load(Ordering::Acquire);
        if in_prod.wrapping_sub(self.in_cons) > XENDISPL_IN_RING_LEN as u32 {
            return Err(ChannelError::EventsOverrun {
                in_cons: self.in_cons,
                in_prod,
            });
        }
        while self.in_cons != in_prod {
            let slot = (self.in_cons % XENDISPL_IN_RING_LEN as u32) as usize;
            let packet = read_packet(words, EVENTS + slot * PACKET_WORDS);
            self.in_cons = self.in_cons.wrapping_add(1);
            on(match Event::decode(&packet) {
                Ok(e) => ReceivedEvent::FrameDone(e),
                Err(e) => ReceivedEvent::Malformed(e),
            });
        }
        // Release: our reads of the slots happen before the backend may reuse them.
        words[IN_CONS].store(self.in_cons, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen::abi::displif::{PageFlipReq, XENDISPL_OP_PG_FLIP, XENDISPL_OP_SET_CONFIG};

    fn page() -> std::vec::Vec<AtomicU32> {
        (0..1024).map(|_| AtomicU32::new(0xdead_beef)).collect()
    }

    fn respond(words: &[AtomicU32], index: u32, r: Response) {
        let slot = index as usize % 32;
        for (i, w) in packet_to_words(&r.encode()).into_iter().enumerate() {
            words[ENTRIES + slot * 16 + i].store(w, Ordering::Relaxed);
        }
        words[RSP_PROD].store(index + 1, Ordering::Release);
    }

    #[test]
    fn one_outstanding_request_matched_by_id_and_operation() {
        let words = page();
        let mut ring = RequestRing::init(&words).unwrap();
        assert_eq!(words[REQ_EVENT].load(Ordering::Relaxed), 1);
        let flip = Request::PageFlip(PageFlipReq { fb_cookie: 5 });
        let (id, notify) = ring.push(&words, &flip).unwrap();
        assert!(notify, "req_event 1 asks for a kick at the first request");
        assert_eq!(ring.push(&words, &flip), None, "second request refused");
        assert_eq!(words[REQ_PROD].load(Ordering::Relaxed), 1);
        // A response with the wrong id, then one with the wrong operation,
        // then the right one.
        let mut got = std::vec::Vec::new();
        respond(
            &words,
            0,
            Response {
                id: id + 1,
                operation: XENDISPL_OP_PG_FLIP,
                status: 0,
                edid_sz: 0,
            },
        );
        ring.take_responses(&words, |r| got.push(r)).unwrap();
        assert!(matches!(got[0], Received::Unexpected(_)));
        assert!(ring.outstanding().is_some());
        // The backend cannot produce more responses than we made requests.
        respond(
            &words,
            1,
            Response {
                id,
                operation: XENDISPL_OP_SET_CONFIG,
                status: 0,
                edid_sz: 0,
            },
        );
        assert!(matches!(
            ring.take_responses(&words, |_| {}),
            Err(ChannelError::ResponsesOverrun { .. })
        ));
    }

    #[test]
    fn responses_wrap_around_the_ring() {
        let words = page();
        let mut ring = RequestRing::init(&words).unwrap();
        for n in 0..100u32 {
            let (id, _) = ring
                .push(&words, &Request::PageFlip(PageFlipReq { fb_cookie: 1 }))
                .unwrap();
            assert_eq!(id, n as u16);
            respond(
                &words,
                n,
                Response {
                    id,
                    operation: XENDISPL_OP_PG_FLIP,
                    status: -22,
                    edid_sz: 0,
                },
            );
            let mut got = None;
            ring.take_responses(&words, |r| got = Some(r)).unwrap();
            assert_eq!(
                got,
                Some(Received::Matched(Response {
                    id,
                    operation: XENDISPL_OP_PG_FLIP,
                    status: -22,
                    edid_sz: 0
                }))
            );
            assert_eq!(words[RSP_EVENT].load(Ordering::Relaxed), n + 2);
        }
    }

    #[test]
    fn events_are_consumed_modulo_63_and_overruns_detected() {
        let words = page();
        let mut evt = EventRing::init(&words).unwrap();
        // Start near the u32 wrap to cover the modulo-63 jump: 2^32 mod 63 = 4,
        // so index u32::MAX - 2 and index 1 share slot 1 (the protocol wart the
        // dossier notes). Consume before the wrap, then after it.
        let start = u32::MAX - 2;
        evt.in_cons = start;
        words[IN_CONS].store(start, Ordering::Relaxed);
        let mut ids = std::vec::Vec::new();
        for (from, to) in [(0u32, 3u32), (3, 5)] {
            for k in from..to {
                let idx = start.wrapping_add(k);
                let slot = (idx % 63) as usize;
                let e = Event {
                    id: k as u16,
                    fb_cookie: 100 + u64::from(k),
                };
                for (i, w) in packet_to_words(&e.encode()).into_iter().enumerate() {
                    words[EVENTS + slot * 16 + i].store(w, Ordering::Relaxed);
                }
            }
            words[IN_PROD].store(start.wrapping_add(to), Ordering::Release);
            evt.take_events(&words, |e| {
                if let ReceivedEvent::FrameDone(e) = e {
                    ids.push((e.id, e.fb_cookie));
                }
            })
            .unwrap();
        }
        assert_eq!(ids, [(0, 100), (1, 101), (2, 102), (3, 103), (4, 104)]);
        assert_eq!(
            words[IN_CONS].load(Ordering::Relaxed),
            start.wrapping_add(5)
        );
        words[IN_PROD].store(start.wrapping_add(5 + 64), Ordering::Release);
        assert!(matches!(
            evt.take_events(&words, |_| {}),
            Err(ChannelError::EventsOverrun { .. })
        ));
    }
}
