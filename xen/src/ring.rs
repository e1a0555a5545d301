//! Shared-ring index math of `io/ring.h`, and the displif event-page consumer.
//!
//! [`FrontRing`] and [`BackRing`] are the two ends of a `DEFINE_RING_TYPES` ring
//! in one shared page, for any entry size (the union of request and response;
//! a multiple of 4 bytes, e.g. 64 for displif). They do the index arithmetic,
//! the copying of entries in and out of the page's atomic words, the barriers,
//! and the notification hold-off (`req_event`/`rsp_event`). They never call a
//! hypercall: pushing returns a [`Pushed`] whose `notify` tells the caller to
//! kick the peer's event channel.
//!
//! All indices are free-running `u32`s compared with wrapping arithmetic, so
//! they wrap at 2^32 exactly like `RING_IDX` in C. Indices written by the peer
//! are checked (`RING_RESPONSE_PROD_OVERFLOW`, `RING_REQUEST_PROD_OVERFLOW`):
//! a corrupt peer yields [`RingError`], never an out-of-bounds access.
//!
//! [`EventPageConsumer`] is the frontend's side of the displif event page
//! (`struct xendispl_event_page`): `XENDISPL_IN_RING_LEN` = 63 slots indexed by
//! `idx % 63` on the free-running u32 index. Because 63 is not a power of two,
//! the slot sequence jumps at the 2^32 wrap (2^32 mod 63 = 4): indices
//! 2^32-4 .. 2^32-1 use slots 0..3 and index 0 uses slot 0 again. Producer and
//! consumer agree on slots as long as both use `idx % 63` on u32 (we do), but a
//! producer that only checks `in_prod - in_cons < 63` would overwrite unread
//! events when the window spans the wrap; [`event_page_can_produce`] is the
//! exact check (shared-page producers should use it or an equivalent).

use core::fmt;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use crate::abi::displif::{
    Event, PacketError, PACKET_SIZE, PACKET_WORDS, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET,
    XENDISPL_EVENT_PAGE_IN_PROD_OFFSET, XENDISPL_IN_RING_LEN, XENDISPL_IN_RING_OFFS,
};
use crate::abi::ring::{
    ring_size, SRING_ENTRIES_OFFSET, SRING_REQ_EVENT_OFFSET, SRING_REQ_PROD_OFFSET,
    SRING_RSP_EVENT_OFFSET, SRING_RSP_PROD_OFFSET,
};
use crate::platform::SharedPage;
use crate::shared_mem::{read_bytes, read_words, write_bytes};
use crate::types::PAGE_SIZE;

/// Ring misuse or a misbehaving peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Entry size is zero, not a multiple of 4, or too big for one page.
    BadEntrySize(usize),
    /// The page is shorter than one page.
    ShortPage(usize),
    /// A buffer passed in or out does not have the entry size.
    WrongEntryLength {
        /// Expected.
        expected: usize,
        /// Given.
        got: usize,
    },
    /// No free request slot (front) or no response slot (back).
    Full,
    /// The peer's producer index claims more entries than possible.
    ProducerOverflow {
        /// The peer's producer index.
        prod: u32,
        /// Our consumer index.
        cons: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::BadEntrySize(n) => write!(f, "bad ring entry size {n}"),
            RingError::ShortPage(n) => write!(f, "ring page has only {n} words"),
            RingError::WrongEntryLength { expected, got } => {
                write!(f, "ring entry buffer of {got} bytes, expected {expected}")
            }
            RingError::Full => f.write_str("ring full"),
            RingError::ProducerOverflow { prod, cons } => {
                write!(
                    f,
                    "peer producer index {prod} too far ahead of consumer {cons}"
                )
            }
        }
    }
}

/// Result of publishing entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "kick the peer's event channel if `notify` is set"]
pub struct Pushed {
    /// The peer asked to be notified (`RING_PUSH_*_AND_CHECK_NOTIFY`).
    pub notify: bool,
}

fn load(words: &[AtomicU32], byte_offset: usize, order: Ordering) -> u32 {
    words[byte_offset / 4].load(order)
}

fn store(words: &[AtomicU32], byte_offset: usize, v: u32, order: Ordering) {
    words[byte_offset / 4].store(v, order)
}

/// Validate the page and entry size; returns the ring size (`__RING_SIZE`).
fn geometry(words: &[AtomicU32], entry_bytes: usize) -> Result<u32, RingError> {
    if words.len() * 4 < PAGE_SIZE {
        return Err(RingError::ShortPage(words.len()));
    }
    let n = ring_size(PAGE_SIZE, entry_bytes);
    if entry_bytes % 4 != 0 || n == 0 {
        return Err(RingError::BadEntrySize(entry_bytes));
    }
    Ok(n as u32)
}

fn entry_offset(idx: u32, nr_ents: u32, entry_bytes: usize) -> usize {
    // RING_GET_REQUEST/RESPONSE: idx & (RING_SIZE - 1); nr_ents is a power of two.
    SRING_ENTRIES_OFFSET + (idx & (nr_ents - 1)) as usize * entry_bytes
}

/// `SHARED_RING_INIT`: zero indices, event thresholds 1, private bytes zero.
fn shared_ring_init(words: &[AtomicU32]) {
    store(words, SRING_REQ_PROD_OFFSET, 0, Ordering::Relaxed);
    store(words, SRING_RSP_PROD_OFFSET, 0, Ordering::Relaxed);
    store(words, SRING_REQ_EVENT_OFFSET, 1, Ordering::Relaxed);
    store(words, SRING_RSP_EVENT_OFFSET, 1, Ordering::Relaxed);
    for w in &words[SRING_RSP_EVENT_OFFSET / 4 + 1..SRING_ENTRIES_OFFSET / 4] {
        w.store(0, Ordering::Relaxed);
    }
    // Publish the initialised header before the page is granted/announced.
    fence(Ordering::Release);
}

/// The front end (request producer, response consumer) of a shared ring.
pub struct FrontRing<P: SharedPage> {
    page: P,
    entry_bytes: usize,
    nr_ents: u32,
    req_prod_pvt: u32,
    rsp_cons: u32,
}

impl<P: SharedPage> FrontRing<P> {
    /// `XEN_FRONT_RING_INIT`: initialise the shared header and attach at index 0.
    pub fn init(page: P, entry_bytes: usize) -> Result<Self, RingError> {
        let nr_ents = geometry(page.words(), entry_bytes)?;
        shared_ring_init(page.words());
        Ok(FrontRing {
            page,
            entry_bytes,
            nr_ents,
            req_prod_pvt: 0,
            rsp_cons: 0,
        })
    }

    /// `FRONT_RING_ATTACH`: attach to an already initialised ring at `start`.
    pub fn attach(page: P, entry_bytes: usize, start: u32) -> Result<Self, RingError> {
        let nr_ents = geometry(page.words(), entry_bytes)?;
        Ok(FrontRing {
            page,
            entry_bytes,
            nr_ents,
            req_prod_pvt: start,
            rsp_cons: start,
        })
    }

    /// The page (e.g. to grant it).
    pub fn page(&self) -> &P {
        &self.page
    }

    /// Give the page back.
    pub fn into_page(self) -> P {
        self.page
    }

    /// `RING_SIZE`.
    pub fn size(&self) -> u32 {
        self.nr_ents
    }

    /// Private producer index (`req_prod_pvt`).
    pub fn req_prod_pvt(&self) -> u32 {
        self.req_prod_pvt
    }

    /// Private consumer index (`rsp_cons`).
    pub fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }

    /// `RING_FREE_REQUESTS`.
    pub fn free_requests(&self) -> u32 {
        self.nr_ents - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// `RING_FULL`.
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Copy `entry` into the next request slot and advance `req_prod_pvt`
    /// (not yet visible to the back end: call [`FrontRing::push_requests`]).
    pub fn put_request(&mut self, entry: &[u8]) -> Result<(), RingError> {
        if entry.len() != self.entry_bytes {
            return Err(RingError::WrongEntryLength {
                expected: self.entry_bytes,
                got: entry.len(),
            });
        }
        if self.is_full() {
            return Err(RingError::Full);
        }
        let off = entry_offset(self.req_prod_pvt, self.nr_ents, self.entry_bytes);
        write_bytes(self.page.words(), off, entry).map_err(|_| RingError::ShortPage(0))?;
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`.
    pub fn push_requests(&mut self) -> Pushed {
        let words = self.page.words();
        let old = load(words, SRING_REQ_PROD_OFFSET, Ordering::Relaxed);
        let new = self.req_prod_pvt;
        // Release (xen_wmb): the back end sees the requests before req_prod.
        store(words, SRING_REQ_PROD_OFFSET, new, Ordering::Release);
        // xen_mb: the back end sees the new req_prod before we read req_event
        // (store -> load ordering needs a full fence).
        fence(Ordering::SeqCst);
        let event = load(words, SRING_REQ_EVENT_OFFSET, Ordering::Relaxed);
        Pushed {
            notify: new.wrapping_sub(event) < new.wrapping_sub(old),
        }
    }

    /// Responses produced but not consumed (`RING_HAS_UNCONSUMED_RESPONSES`),
    /// checked with `RING_RESPONSE_PROD_OVERFLOW` and against requests sent.
    pub fn unconsumed_responses(&self) -> Result<u32, RingError> {
        // Acquire (xen_rmb): response contents are read after rsp_prod.
        let prod = load(self.page.words(), SRING_RSP_PROD_OFFSET, Ordering::Acquire);
        let n = prod.wrapping_sub(self.rsp_cons);
        if n > self.nr_ents || n > self.req_prod_pvt.wrapping_sub(self.rsp_cons) {
            return Err(RingError::ProducerOverflow {
                prod,
                cons: self.rsp_cons,
            });
        }
        Ok(n)
    }

    /// Copy the next response into `out` and advance `rsp_cons`.
    /// `Ok(false)` if there is none.
    pub fn take_response(&mut self, out: &mut [u8]) -> Result<bool, RingError> {
        if out.len() != self.entry_bytes {
            return Err(RingError::WrongEntryLength {
                expected: self.entry_bytes,
                got: out.len(),
            });
        }
        if self.unconsumed_responses()? == 0 {
            return Ok(false);
        }
        let off = entry_offset(self.rsp_cons, self.nr_ents, self.entry_bytes);
        read_bytes(self.page.words(), off, out).map_err(|_| RingError::ShortPage(0))?;
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(true)
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: if nothing is pending, ask to be
    /// notified on the next response and check again. `true` = work to do.
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_responses()? > 0 {
            return Ok(true);
        }
        let words = self.page.words();
        store(
            words,
            SRING_RSP_EVENT_OFFSET,
            self.rsp_cons.wrapping_add(1),
            Ordering::Relaxed,
        );
        // xen_mb: the rsp_event store must be visible before we re-read rsp_prod.
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_responses()? > 0)
    }
}

/// The back end (request consumer, response producer) of a shared ring.
pub struct BackRing<P: SharedPage> {
    page: P,
    entry_bytes: usize,
    nr_ents: u32,
    rsp_prod_pvt: u32,
    req_cons: u32,
}

impl<P: SharedPage> BackRing<P> {
    /// `BACK_RING_INIT` / `BACK_RING_ATTACH` at `start` (0 for a fresh ring).
    pub fn attach(page: P, entry_bytes: usize, start: u32) -> Result<Self, RingError> {
        let nr_ents = geometry(page.words(), entry_bytes)?;
        Ok(BackRing {
            page,
            entry_bytes,
            nr_ents,
            rsp_prod_pvt: start,
            req_cons: start,
        })
    }

    /// The page.
    pub fn page(&self) -> &P {
        &self.page
    }

    /// Give the page back.
    pub fn into_page(self) -> P {
        self.page
    }

    /// `RING_SIZE`.
    pub fn size(&self) -> u32 {
        self.nr_ents
    }

    /// Private consumer index (`req_cons`).
    pub fn req_cons(&self) -> u32 {
        self.req_cons
    }

    /// Private producer index (`rsp_prod_pvt`).
    pub fn rsp_prod_pvt(&self) -> u32 {
        self.rsp_prod_pvt
    }

    /// `RING_HAS_UNCONSUMED_REQUESTS` with `RING_REQUEST_PROD_OVERFLOW` checked.
    pub fn unconsumed_requests(&self) -> Result<u32, RingError> {
        // Acquire (xen_rmb): request contents are read after req_prod.
        let prod = load(self.page.words(), SRING_REQ_PROD_OFFSET, Ordering::Acquire);
        if prod.wrapping_sub(self.rsp_prod_pvt) > self.nr_ents {
            return Err(RingError::ProducerOverflow {
                prod,
                cons: self.req_cons,
            });
        }
        let req = prod.wrapping_sub(self.req_cons);
        let rsp = self.nr_ents - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        Ok(req.min(rsp))
    }

    /// Copy the next request into `out` and advance `req_cons`.
    /// `Ok(false)` if none (or `RING_REQUEST_CONS_OVERFLOW`: respond first).
    pub fn take_request(&mut self, out: &mut [u8]) -> Result<bool, RingError> {
        if out.len() != self.entry_bytes {
            return Err(RingError::WrongEntryLength {
                expected: self.entry_bytes,
                got: out.len(),
            });
        }
        if self.unconsumed_requests()? == 0 {
            return Ok(false);
        }
        let off = entry_offset(self.req_cons, self.nr_ents, self.entry_bytes);
        read_bytes(self.page.words(), off, out).map_err(|_| RingError::ShortPage(0))?;
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(true)
    }

    /// Copy `entry` into the next response slot and advance `rsp_prod_pvt`.
    /// Fails with [`RingError::Full`] if that would overtake unconsumed requests.
    pub fn put_response(&mut self, entry: &[u8]) -> Result<(), RingError> {
        if entry.len() != self.entry_bytes {
            return Err(RingError::WrongEntryLength {
                expected: self.entry_bytes,
                got: entry.len(),
            });
        }
        if self.rsp_prod_pvt == self.req_cons {
            return Err(RingError::Full);
        }
        let off = entry_offset(self.rsp_prod_pvt, self.nr_ents, self.entry_bytes);
        write_bytes(self.page.words(), off, entry).map_err(|_| RingError::ShortPage(0))?;
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`.
    pub fn push_responses(&mut self) -> Pushed {
        let words = self.page.words();
        let old = load(words, SRING_RSP_PROD_OFFSET, Ordering::Relaxed);
        let new = self.rsp_prod_pvt;
        // Release (xen_wmb): the front end sees the responses before rsp_prod.
        store(words, SRING_RSP_PROD_OFFSET, new, Ordering::Release);
        // xen_mb: rsp_prod visible before we read rsp_event.
        fence(Ordering::SeqCst);
        let event = load(words, SRING_RSP_EVENT_OFFSET, Ordering::Relaxed);
        Pushed {
            notify: new.wrapping_sub(event) < new.wrapping_sub(old),
        }
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`. `true` = work to do.
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_requests()? > 0 {
            return Ok(true);
        }
        let words = self.page.words();
        store(
            words,
            SRING_REQ_EVENT_OFFSET,
            self.req_cons.wrapping_add(1),
            Ordering::Relaxed,
        );
        // xen_mb: the req_event store must be visible before we re-read req_prod.
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_requests()? > 0)
    }
}

/// Event-page failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventRingError {
    /// The page is shorter than one page.
    ShortPage(usize),
    /// `in_prod - in_cons` exceeds `XENDISPL_IN_RING_LEN`.
    ProducerOverflow {
        /// Backend's `in_prod`.
        prod: u32,
        /// Our `in_cons`.
        cons: u32,
    },
    /// The event at `index` was consumed but could not be decoded.
    BadEvent {
        /// Its free-running index.
        index: u32,
        /// Why.
        error: PacketError,
    },
}

impl fmt::Display for EventRingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventRingError::ShortPage(n) => write!(f, "event page has only {n} words"),
            EventRingError::ProducerOverflow { prod, cons } => {
                write!(f, "event in_prod {prod} too far ahead of in_cons {cons}")
            }
            EventRingError::BadEvent { index, error } => write!(f, "event {index}: {error}"),
        }
    }
}

/// Word index of event slot for free-running index `idx` (`XENDISPL_IN_RING_REF`).
pub fn event_slot_word(idx: u32) -> usize {
    (XENDISPL_IN_RING_OFFS + (idx % XENDISPL_IN_RING_LEN as u32) as usize * PACKET_SIZE) / 4
}

/// Whether a producer may write event index `in_prod` without overwriting an
/// unconsumed event: fewer than `XENDISPL_IN_RING_LEN` outstanding AND the slot
/// of `in_prod` is not the slot of any index in `in_cons..in_prod` (which can
/// happen only when that window spans the 2^32 wrap, see the module docs).
pub fn event_page_can_produce(in_cons: u32, in_prod: u32) -> bool {
    let outstanding = in_prod.wrapping_sub(in_cons);
    if outstanding as usize >= XENDISPL_IN_RING_LEN {
        return false;
    }
    let slot = event_slot_word(in_prod);
    (0..outstanding).all(|k| event_slot_word(in_cons.wrapping_add(k)) != slot)
}

/// The frontend's consumer of a displif event page.
pub struct EventPageConsumer<P: SharedPage> {
    page: P,
}

impl<P: SharedPage> EventPageConsumer<P> {
    /// Wrap a (zeroed, or attached-to) event page.
    pub fn new(page: P) -> Result<Self, EventRingError> {
        if page.words().len() * 4 < PAGE_SIZE {
            return Err(EventRingError::ShortPage(page.words().len()));
        }
        Ok(EventPageConsumer { page })
    }

    /// The page.
    pub fn page(&self) -> &P {
        &self.page
    }

    /// Give the page back.
    pub fn into_page(self) -> P {
        self.page
    }

    /// Events waiting (`in_prod - in_cons`), checked against the ring length.
    pub fn pending(&self) -> Result<u32, EventRingError> {
        let words = self.page.words();
        // Acquire: event contents are read after in_prod.
        let prod = load(words, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET, Ordering::Acquire);
        let cons = load(words, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, Ordering::Relaxed);
        let n = prod.wrapping_sub(cons);
        if n as usize > XENDISPL_IN_RING_LEN {
            return Err(EventRingError::ProducerOverflow { prod, cons });
        }
        Ok(n)
    }

    /// Take the next raw event packet, advancing `in_cons`.
    pub fn next_packet(&mut self) -> Result<Option<(u32, [u32; PACKET_WORDS])>, EventRingError> {
        if self.pending()? == 0 {
            return Ok(None);
        }
        let words = self.page.words();
        let cons = load(words, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, Ordering::Relaxed);
        let packet = read_words::<PACKET_WORDS>(words, event_slot_word(cons))
            .map_err(|_| EventRingError::ShortPage(words.len()))?;
        // Release: the event is fully read before the backend may reuse the slot.
        store(
            words,
            XENDISPL_EVENT_PAGE_IN_CONS_OFFSET,
            cons.wrapping_add(1),
            Ordering::Release,
        );
        Ok(Some((cons, packet)))
    }

    /// Take and decode the next event. A malformed event is consumed and
    /// reported as [`EventRingError::BadEvent`]; the ring stays usable.
    pub fn next_event(&mut self) -> Result<Option<Event>, EventRingError> {
        match self.next_packet()? {
            None => Ok(None),
            Some((index, words)) => {
                let packet = crate::abi::displif::words_to_packet(&words);
                Event::decode(&packet)
                    .map(Some)
                    .map_err(|error| EventRingError::BadEvent { index, error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::displif::{packet_to_words, XENDISPL_REQ_RING_SIZE};
    use crate::shared_mem::{write_words, MemPage};
    use crate::types::Gfn;

    fn entry(tag: u32) -> [u8; 64] {
        let mut e = [0u8; 64];
        e[..4].copy_from_slice(&tag.to_le_bytes());
        e[60..].copy_from_slice(&(!tag).to_le_bytes());
        e
    }

    #[test]
    fn geometry_matches_ring_h() {
        let page = MemPage::new(Gfn(1));
        let f = FrontRing::init(&page, 64).unwrap();
        assert_eq!(f.size() as usize, XENDISPL_REQ_RING_SIZE);
        assert_eq!(FrontRing::init(&page, 112).unwrap().size(), 32);
        assert_eq!(FrontRing::init(&page, 8).unwrap().size(), 256);
        assert_eq!(
            FrontRing::init(&page, 0).err(),
            Some(RingError::BadEntrySize(0))
        );
        assert_eq!(
            FrontRing::init(&page, 6).err(),
            Some(RingError::BadEntrySize(6))
        );
        assert_eq!(
            FrontRing::init(&page, 8192).err(),
            Some(RingError::BadEntrySize(8192))
        );
        assert_eq!(
            load(page.words(), SRING_REQ_EVENT_OFFSET, Ordering::Relaxed),
            1
        );
        assert_eq!(
            load(page.words(), SRING_RSP_EVENT_OFFSET, Ordering::Relaxed),
            1
        );
    }

    /// Front and back exchange many requests across the u32 wrap; notify follows
    /// the hold-off rules.
    #[test]
    fn round_trip_across_index_wrap() {
        for start in [0u32, u32::MAX - 40, u32::MAX] {
            let page = MemPage::new(Gfn(1));
            let mut front = FrontRing::init(&page, 64).unwrap();
            // Re-attach both ends at `start` (as after a resume).
            store(
                page.words(),
                SRING_REQ_PROD_OFFSET,
                start,
                Ordering::Relaxed,
            );
            store(
                page.words(),
                SRING_RSP_PROD_OFFSET,
                start,
                Ordering::Relaxed,
            );
            store(
                page.words(),
                SRING_REQ_EVENT_OFFSET,
                start.wrapping_add(1),
                Ordering::Relaxed,
            );
            store(
                page.words(),
                SRING_RSP_EVENT_OFFSET,
                start.wrapping_add(1),
                Ordering::Relaxed,
            );
            front = FrontRing::attach(front.into_page(), 64, start).unwrap();
            let mut back = BackRing::attach(&page, 64, start).unwrap();
            let mut tag = 0u32;
            let mut got = 0u32;
            for round in 0..10 {
                let batch = 1 + (round * 7) % 32;
                for _ in 0..batch {
                    front.put_request(&entry(tag)).unwrap();
                    tag += 1;
                }
                let pushed = front.push_requests();
                // The back end is idle with req_event = its req_cons + 1: must notify.
                assert!(pushed.notify, "round {round}");
                let mut buf = [0u8; 64];
                while back.take_request(&mut buf).unwrap() {
                    assert_eq!(buf, entry(got));
                    back.put_response(&entry(got + 1000)).unwrap();
                    got += 1;
                }
                assert!(!back.final_check_for_requests().unwrap());
                assert!(back.push_responses().notify);
                let mut n = 0;
                while front.take_response(&mut buf).unwrap() {
                    n += 1;
                }
                assert_eq!(n, batch);
                assert!(!front.final_check_for_responses().unwrap());
            }
            assert_eq!(front.req_prod_pvt(), start.wrapping_add(tag));
            assert_eq!(back.req_cons(), front.req_prod_pvt());
        }
    }

    #[test]
    fn hold_off_suppresses_notify_while_peer_busy() {
        let page = MemPage::new(Gfn(1));
        let mut front = FrontRing::init(&page, 64).unwrap();
        front.put_request(&entry(0)).unwrap();
        assert!(front.push_requests().notify); // req_event = 1, first request
        front.put_request(&entry(1)).unwrap();
        // Back end has not re-armed req_event (still 1): no notify for request 2.
        assert!(!front.push_requests().notify);
    }

    #[test]
    fn full_ring_and_bad_peer_indices() {
        let page = MemPage::new(Gfn(1));
        let mut front = FrontRing::init(&page, 64).unwrap();
        for i in 0..32 {
            front.put_request(&entry(i)).unwrap();
        }
        assert!(front.is_full());
        assert_eq!(front.put_request(&entry(99)), Err(RingError::Full));
        let _ = front.push_requests();
        // Back end claims 33 responses: overflow.
        store(page.words(), SRING_RSP_PROD_OFFSET, 33, Ordering::Relaxed);
        assert!(matches!(
            front.unconsumed_responses(),
            Err(RingError::ProducerOverflow { .. })
        ));
        // Responses to requests never sent are rejected too.
        let page2 = MemPage::new(Gfn(2));
        let mut f2 = FrontRing::init(&page2, 64).unwrap();
        store(page2.words(), SRING_RSP_PROD_OFFSET, 1, Ordering::Relaxed);
        assert!(f2.take_response(&mut [0u8; 64]).is_err());
        // Back end: frontend claims 40 requests.
        let page3 = MemPage::new(Gfn(3));
        let mut back = BackRing::attach(&page3, 64, 0).unwrap();
        store(page3.words(), SRING_REQ_PROD_OFFSET, 40, Ordering::Relaxed);
        assert!(matches!(
            back.take_request(&mut [0u8; 64]),
            Err(RingError::ProducerOverflow { .. })
        ));
        assert_eq!(back.put_response(&entry(0)), Err(RingError::Full));
        assert_eq!(
            back.take_request(&mut [0u8; 8]),
            Err(RingError::WrongEntryLength {
                expected: 64,
                got: 8
            })
        );
    }

    /// Independent producer for tests (the real one is the backend's).
    fn produce(page: &MemPage, ev: Event) {
        let w = page.words();
        let prod = load(w, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET, Ordering::Relaxed);
        let slot = (prod % 63) as usize;
        write_words(w, (64 + slot * 64) / 4, &packet_to_words(&ev.encode())).unwrap();
        store(
            w,
            XENDISPL_EVENT_PAGE_IN_PROD_OFFSET,
            prod.wrapping_add(1),
            Ordering::Release,
        );
    }

    #[test]
    fn event_page_consumes_in_order_across_modulo_63_wrap() {
        for start in [0u32, 60, u32::MAX - 2] {
            let page = MemPage::new(Gfn(1));
            store(
                page.words(),
                XENDISPL_EVENT_PAGE_IN_PROD_OFFSET,
                start,
                Ordering::Relaxed,
            );
            store(
                page.words(),
                XENDISPL_EVENT_PAGE_IN_CONS_OFFSET,
                start,
                Ordering::Relaxed,
            );
            let mut c = EventPageConsumer::new(&page).unwrap();
            let mut id = 0u16;
            for burst in [1u16, 5, 63, 10, 63] {
                let mut made = 0u16;
                while made < burst {
                    let w = page.words();
                    let cons = load(w, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, Ordering::Relaxed);
                    let prod = load(w, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET, Ordering::Relaxed);
                    if !event_page_can_produce(cons, prod) {
                        break;
                    }
                    let k = id + made;
                    produce(
                        &page,
                        Event {
                            id: k,
                            fb_cookie: 0x100 + u64::from(k),
                        },
                    );
                    made += 1;
                }
                assert!(made >= burst.min(4), "at least 4 slots are always usable");
                assert_eq!(c.pending().unwrap(), u32::from(made));
                for _ in 0..made {
                    let e = c.next_event().unwrap().unwrap();
                    assert_eq!(
                        e,
                        Event {
                            id,
                            fb_cookie: 0x100 + u64::from(id)
                        }
                    );
                    id += 1;
                }
                assert_eq!(c.next_event().unwrap(), None);
            }
        }
        // The wrap quirk itself: index 2^32-1 uses slot 3, index 0 uses slot 0.
        assert_eq!(event_slot_word(u32::MAX), (64 + 3 * 64) / 4);
        assert_eq!(event_slot_word(0), 64 / 4);
    }

    #[test]
    fn producer_check_accounts_for_the_wrap() {
        // Far from the wrap: 63 outstanding allowed, not 64.
        assert!(event_page_can_produce(100, 100 + 62));
        assert!(!event_page_can_produce(100, 100 + 63));
        // Window starting at 2^32-4 (slot 0): indices ..2^32-1 use slots 0..3,
        // then index 0 is slot 0 again -> only 4 may be outstanding.
        let cons = u32::MAX - 3;
        for k in 0..4u32 {
            assert!(event_page_can_produce(cons, cons.wrapping_add(k)), "k={k}");
        }
        assert!(!event_page_can_produce(cons, 0));
        // Window starting at 2^32-2 (slot 2): 2^32-2, 2^32-1 (slots 2, 3),
        // then 0, 1 (slots 0, 1), then index 2 (slot 2) collides.
        let cons = u32::MAX - 1;
        assert!(event_page_can_produce(cons, 1));
        assert!(!event_page_can_produce(cons, 2));
        // Consumer past the wrap: back to normal.
        assert!(event_page_can_produce(0, 62));
    }

    #[test]
    fn event_page_rejects_overflow_and_bad_events() {
        let page = MemPage::new(Gfn(1));
        let mut c = EventPageConsumer::new(&page).unwrap();
        store(
            page.words(),
            XENDISPL_EVENT_PAGE_IN_PROD_OFFSET,
            64,
            Ordering::Relaxed,
        );
        assert_eq!(
            c.next_event(),
            Err(EventRingError::ProducerOverflow { prod: 64, cons: 0 })
        );
        store(
            page.words(),
            XENDISPL_EVENT_PAGE_IN_PROD_OFFSET,
            0,
            Ordering::Relaxed,
        );
        produce(
            &page,
            Event {
                id: 0,
                fb_cookie: 1,
            },
        );
        // Corrupt its type byte.
        page.words()[64 / 4].store(0x0001_0000, Ordering::Relaxed);
        assert!(matches!(
            c.next_event(),
            Err(EventRingError::BadEvent { index: 0, .. })
        ));
        assert_eq!(c.next_event(), Ok(None)); // consumed; ring still usable
        produce(
            &page,
            Event {
                id: 1,
                fb_cookie: 2,
            },
        );
        assert_eq!(
            c.next_event(),
            Ok(Some(Event {
                id: 1,
                fb_cookie: 2
            }))
        );
    }
}
