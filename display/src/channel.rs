//! One connector's two channels: the request ring and the event page.
//!
//! The request ring is a one-page Xen shared ring
//! (`xen/include/public/io/ring.h`, `DEFINE_RING_TYPES(xen_displif, ...)`,
//! 32 slots of 64 bytes) on which the frontend produces requests and consumes
//! responses; the event page (`struct xendispl_event_page`) is a 63-slot ring
//! on which the backend produces events. The index math, barriers and the
//! checks of the backend's producer indices are `xen::ring`'s
//! ([`FrontRing`], [`EventPageConsumer`]); this module adds what displif
//! needs on top: packet encoding, request ids, at most one outstanding request
//! per ring with its id and operation remembered so the response can be
//! matched (mismatches are reported, never trusted), and the grant that shares
//! each page. A corrupt ring is a [`ChannelError`], never an out-of-bounds
//! access.

use core::fmt;

use xen::abi::displif::{Event, PacketError, Request, Response, PACKET_SIZE};
use xen::platform::SharedPage;
use xen::ring::{EventPageConsumer, EventRingError, FrontRing, RingError};
use xen::types::GrantRef;

use crate::pages::GrantedPage;

/// A shared ring or event page the backend corrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The request ring.
    Ring(RingError),
    /// The event page.
    Events(EventRingError),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Ring(e) => write!(f, "request ring: {e}"),
            ChannelError::Events(e) => write!(f, "event page: {e}"),
        }
    }
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

/// Front end of a granted request ring, at most one request outstanding.
pub struct RequestRing<P: SharedPage> {
    ring: FrontRing<P>,
    gref: GrantRef,
    next_id: u16,
    outstanding: Option<Outstanding>,
}

impl<P: SharedPage> fmt::Debug for RequestRing<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRing")
            .field("gref", &self.gref)
            .field("outstanding", &self.outstanding)
            .finish_non_exhaustive()
    }
}

impl<P: SharedPage> RequestRing<P> {
    /// Initialise the shared ring in a granted page that is not published yet
    /// (`SHARED_RING_INIT` + `FRONT_RING_INIT`). On failure the page is
    /// handed back (`None` only if `xen::ring` rejected on attach a page it
    /// accepted on init, which its geometry check rules out).
    pub fn init(page: GrantedPage<P>) -> Result<Self, (Option<GrantedPage<P>>, ChannelError)> {
        // Initialise through a borrow first: on failure the granted page must
        // come back to us, not be dropped (freed) while still granted.
        if let Err(e) = FrontRing::init(page.page(), PACKET_SIZE) {
            return Err((Some(page), ChannelError::Ring(e)));
        }
        let (page, gref) = page.into_parts();
        // Same page, same geometry: attaching cannot fail where init succeeded.
        let ring = FrontRing::attach(page, PACKET_SIZE, 0).map_err(|e| {
            log::error!("vdispl: ring attach failed after init: {e}; page {gref} lost");
            (None, ChannelError::Ring(e))
        })?;
        Ok(RequestRing {
            ring,
            gref,
            next_id: 0,
            outstanding: None,
        })
    }

    /// The grant of the ring page (`req-ring-ref`).
    pub fn gref(&self) -> GrantRef {
        self.gref
    }

    /// Give the granted page back (to end its grant).
    pub fn into_page(self) -> GrantedPage<P> {
        GrantedPage::from_parts(self.ring.into_page(), self.gref)
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

    /// Put `req` on the ring with a fresh id and publish it. Returns the id
    /// and whether the backend must be notified; refuses (`None`) while a
    /// request is outstanding.
    #[must_use = "notify the backend when the flag is set"]
    pub fn push(&mut self, req: &Request) -> Option<(u16, bool)> {
        if self.outstanding.is_some() {
            return None;
        }
        let id = self.next_id;
        // With one request outstanding at most the ring is never full.
        self.ring.put_request(&req.encode(id)).ok()?;
        self.next_id = self.next_id.wrapping_add(1);
        let pushed = self.ring.push_requests();
        self.outstanding = Some(Outstanding {
            id,
            operation: req.operation(),
        });
        Some((id, pushed.notify))
    }

    /// Consume every available response (`RING_FINAL_CHECK_FOR_RESPONSES`
    /// included), calling `on` for each.
    pub fn take_responses(&mut self, mut on: impl FnMut(Received)) -> Result<(), ChannelError> {
        let mut packet = [0u8; PACKET_SIZE];
        loop {
            while self
                .ring
                .take_response(&mut packet)
                .map_err(ChannelError::Ring)?
            {
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
            if !self
                .ring
                .final_check_for_responses()
                .map_err(ChannelError::Ring)?
            {
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

/// Consumer side of a granted event page.
pub struct EventRing<P: SharedPage> {
    consumer: EventPageConsumer<P>,
    gref: GrantRef,
}

impl<P: SharedPage> fmt::Debug for EventRing<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRing")
            .field("gref", &self.gref)
            .finish_non_exhaustive()
    }
}

impl<P: SharedPage> EventRing<P> {
    /// Use a granted, zeroed, not yet published page as the event page.
    pub fn init(page: GrantedPage<P>) -> Result<Self, (Option<GrantedPage<P>>, ChannelError)> {
        if let Err(e) = EventPageConsumer::new(page.page()) {
            return Err((Some(page), ChannelError::Events(e)));
        }
        let (page, gref) = page.into_parts();
        let consumer = EventPageConsumer::new(page).map_err(|e| {
            log::error!("vdispl: event page rejected after being accepted: {e}; page {gref} lost");
            (None, ChannelError::Events(e))
        })?;
        Ok(EventRing { consumer, gref })
    }

    /// The grant of the event page (`evt-ring-ref`).
    pub fn gref(&self) -> GrantRef {
        self.gref
    }

    /// Give the granted page back (to end its grant).
    pub fn into_page(self) -> GrantedPage<P> {
        GrantedPage::from_parts(self.consumer.into_page(), self.gref)
    }

    /// Consume every available event, calling `on` for each.
    pub fn take_events(&mut self, mut on: impl FnMut(ReceivedEvent)) -> Result<(), ChannelError> {
        loop {
            match self.consumer.next_event() {
                Ok(Some(e)) => on(ReceivedEvent::FrameDone(e)),
                Ok(None) => return Ok(()),
                Err(EventRingError::BadEvent { error, .. }) => on(ReceivedEvent::Malformed(error)),
                Err(e) => return Err(ChannelError::Events(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeGnttab, FakePage, FakePages};
    use core::sync::atomic::Ordering;
    use xen::abi::displif::{
        packet_to_words, PageFlipReq, XENDISPL_OP_PG_FLIP, XENDISPL_OP_SET_CONFIG,
    };
    use xen::ring::event_slot_word;
    use xen::types::DomId;

    const REQ_EVENT: usize = 1;
    const RSP_PROD: usize = 2;
    const RSP_EVENT: usize = 3;
    const IN_CONS: usize = 0;
    const IN_PROD: usize = 1;

    fn granted() -> (GrantedPage<FakePage>, FakeGnttab, FakePages) {
        let mut pages = FakePages::default();
        let mut gnt = FakeGnttab::new(&pages);
        let page = GrantedPage::new(&mut pages, &mut gnt, DomId(0)).unwrap();
        for w in page.page().words() {
            w.store(0xdead_beef, Ordering::Relaxed);
        }
        (page, gnt, pages)
    }

    fn respond(ring: &RequestRing<FakePage>, index: u32, r: Response) {
        let words = ring.ring.page().words();
        let slot = index as usize % 32;
        for (i, w) in packet_to_words(&r.encode()).into_iter().enumerate() {
            words[16 + slot * 16 + i].store(w, Ordering::Relaxed);
        }
        words[RSP_PROD].store(index + 1, Ordering::Release);
    }

    fn resp(id: u16, operation: u8, status: i32) -> Response {
        Response {
            id,
            operation,
            status,
            edid_sz: 0,
        }
    }

    #[test]
    fn one_outstanding_request_matched_by_id_and_operation() {
        let (page, _gnt, _pages) = granted();
        let gref = page.gref();
        let mut ring = RequestRing::init(page).unwrap();
        assert_eq!(ring.gref(), gref);
        let words = ring.ring.page().words();
        assert_eq!(words[REQ_EVENT].load(Ordering::Relaxed), 1);
        let flip = Request::PageFlip(PageFlipReq { fb_cookie: 5 });
        let (id, notify) = ring.push(&flip).unwrap();
        assert!(notify, "req_event 1 asks for a kick at the first request");
        assert_eq!(ring.push(&flip), None, "second request refused");
        // A response with the wrong id is reported, the request stays outstanding.
        let mut got = std::vec::Vec::new();
        respond(&ring, 0, resp(id + 1, XENDISPL_OP_PG_FLIP, 0));
        ring.take_responses(|r| got.push(r)).unwrap();
        assert!(matches!(got[0], Received::Unexpected(_)));
        assert!(ring.outstanding().is_some());
        // The backend cannot produce more responses than we made requests.
        respond(&ring, 1, resp(id, XENDISPL_OP_SET_CONFIG, 0));
        assert!(matches!(
            ring.take_responses(|_| {}),
            Err(ChannelError::Ring(RingError::ProducerOverflow { .. }))
        ));
        assert_eq!(ring.into_page().gref(), gref);
    }

    #[test]
    fn responses_wrap_around_the_ring() {
        let (page, _gnt, _pages) = granted();
        let mut ring = RequestRing::init(page).unwrap();
        for n in 0..100u32 {
            let (id, _) = ring
                .push(&Request::PageFlip(PageFlipReq { fb_cookie: 1 }))
                .unwrap();
            assert_eq!(id, n as u16);
            respond(&ring, n, resp(id, XENDISPL_OP_PG_FLIP, -22));
            let mut got = None;
            ring.take_responses(|r| got = Some(r)).unwrap();
            assert_eq!(
                got,
                Some(Received::Matched(resp(id, XENDISPL_OP_PG_FLIP, -22)))
            );
            assert!(ring.outstanding().is_none());
            let words = ring.ring.page().words();
            assert_eq!(words[RSP_EVENT].load(Ordering::Relaxed), n + 2);
        }
    }

    #[test]
    fn events_are_consumed_and_overruns_detected() {
        let (page, gnt, _pages) = granted();
        for w in page.page().words() {
            w.store(0, Ordering::Relaxed);
        }
        let gref = page.gref();
        let mut evt = EventRing::init(page).unwrap();
        // The backend's view of the page.
        let be = gnt.peer_map(gref).unwrap();
        // Start near the u32 wrap to cover the modulo-63 jump: 2^32 mod 63 = 4,
        // so index u32::MAX - 2 and index 1 share a slot (the protocol wart the
        // dossier notes). Consume before the wrap, then after it.
        let start = u32::MAX - 2;
        be.set(IN_CONS, start);
        be.set(IN_PROD, start);
        let mut ids = std::vec::Vec::new();
        for (from, to) in [(0u32, 3u32), (3, 5)] {
            for k in from..to {
                let at = event_slot_word(start.wrapping_add(k));
                let e = Event {
                    id: k as u16,
                    fb_cookie: 100 + u64::from(k),
                };
                for (i, w) in packet_to_words(&e.encode()).into_iter().enumerate() {
                    be.set(at + i, w);
                }
            }
            be.set(IN_PROD, start.wrapping_add(to));
            evt.take_events(|e| {
                if let ReceivedEvent::FrameDone(e) = e {
                    ids.push((e.id, e.fb_cookie));
                }
            })
            .unwrap();
        }
        assert_eq!(ids, [(0, 100), (1, 101), (2, 102), (3, 103), (4, 104)]);
        assert_eq!(be.get(IN_CONS), start.wrapping_add(5));
        // A malformed event is reported and skipped.
        be.set(event_slot_word(start.wrapping_add(5)), 0x0007_0000); // type 7
        be.set(IN_PROD, start.wrapping_add(6));
        let mut bad = 0;
        evt.take_events(|e| bad += usize::from(matches!(e, ReceivedEvent::Malformed(_))))
            .unwrap();
        assert_eq!(bad, 1);
        be.set(IN_PROD, start.wrapping_add(6 + 64));
        assert!(matches!(
            evt.take_events(|_| {}),
            Err(ChannelError::Events(
                EventRingError::ProducerOverflow { .. }
            ))
        ));
    }
}
