//! Backend ends of the two displif shared pages: the request ring it consumes
//! and the event page it produces into.
//!
//! Request ring: a standard one-page `ring.h` ring (`DEFINE_RING_TYPES(xen_displif,
//! ...)`, 32 slots of 64 bytes after a 64-byte header). The backend owns
//! `req_cons` and `rsp_prod_pvt` privately and publishes `rsp_prod`; the
//! frontend's `req_prod` is untrusted: a producer more than a ring ahead of us
//! (which is also what an index moving backwards looks like) is corruption.
//!
//! Event page (`struct xendispl_event_page`): `in_cons` (frontend) and `in_prod`
//! (backend), then 63 slots; slot = index % 63 with free-running u32 indices.
//! 63 is not a power of two, so the slot sequence jumps when the index wraps
//! (`2^32 mod 63 = 4`): the producer also waits when the next index's slot
//! still holds an unread event from just before the wrap
//! ([`event_slot_is_free`]). A consumer index beyond the producer is
//! corruption. A full page is not an error: the caller keeps the event and
//! retries (events are never dropped).
//!
//! Memory ordering follows `ring.h`: read `req_prod`, then (acquire) the
//! entries; write the entries, then (release) `rsp_prod`/`in_prod`; full fence
//! between publishing and reading the peer's `*_event` hint.

use core::fmt;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use xen::abi::displif::{
    packet_to_words, words_to_packet, Packet, PACKET_SIZE, PACKET_WORDS,
    XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET, XENDISPL_IN_RING_LEN,
    XENDISPL_IN_RING_OFFS, XENDISPL_REQ_RING_SIZE,
};
use xen::abi::ring::{
    SRING_ENTRIES_OFFSET, SRING_REQ_EVENT_OFFSET, SRING_REQ_PROD_OFFSET, SRING_RSP_EVENT_OFFSET,
    SRING_RSP_PROD_OFFSET,
};

use crate::platform::GrantMemory;

/// The frontend corrupted a shared page; the connection must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingCorruption {
    /// `req_prod` is more than a ring ahead of `req_cons` (or went backwards).
    RequestProducerOverflow {
        /// The frontend's `req_prod`.
        req_prod: u32,
        /// Our `req_cons`.
        req_cons: u32,
    },
    /// The event page's `in_cons` is ahead of `in_prod` or more than a page behind.
    EventConsumerOverflow {
        /// The frontend's `in_cons`.
        in_cons: u32,
        /// Our `in_prod`.
        in_prod: u32,
    },
}

impl RingCorruption {
    /// Name of the conformance rule broken.
    pub fn rule(&self) -> &'static str {
        match self {
            RingCorruption::RequestProducerOverflow { .. } => "ring-index-overflow",
            RingCorruption::EventConsumerOverflow { .. } => "event-index-overflow",
        }
    }
}

impl fmt::Display for RingCorruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingCorruption::RequestProducerOverflow { req_prod, req_cons } => write!(
                f,
                "request ring: req_prod {req_prod} is not within {XENDISPL_REQ_RING_SIZE} of req_cons {req_cons}"
            ),
            RingCorruption::EventConsumerOverflow { in_cons, in_prod } => write!(
                f,
                "event page: in_cons {in_cons} is not within {XENDISPL_IN_RING_LEN} behind in_prod {in_prod}"
            ),
        }
    }
}

fn word(memory: &dyn GrantMemory, byte_offset: usize) -> &AtomicU32 {
    &memory.page(byte_offset / xen::types::PAGE_SIZE)[(byte_offset % xen::types::PAGE_SIZE) / 4]
}

fn load_packet(memory: &dyn GrantMemory, byte_offset: usize) -> Packet {
    let words: [u32; PACKET_WORDS] =
        core::array::from_fn(|i| word(memory, byte_offset + 4 * i).load(Ordering::Relaxed));
    words_to_packet(&words)
}

fn store_packet(memory: &dyn GrantMemory, byte_offset: usize, packet: &Packet) {
    for (i, w) in packet_to_words(packet).iter().enumerate() {
        word(memory, byte_offset + 4 * i).store(*w, Ordering::Relaxed);
    }
}

/// The backend end of the request ring.
pub struct RequestRing {
    memory: Box<dyn GrantMemory>,
    req_cons: u32,
    rsp_prod_pvt: u32,
    /// The response we last wrote into each slot (this connection).
    written: [Option<Packet>; XENDISPL_REQ_RING_SIZE],
}

/// A request taken from the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The request's bytes.
    pub packet: Packet,
    /// The response the backend last wrote into the same slot, if any: a
    /// frontend that reuses slots without clearing them (Linux) leaves its
    /// bytes wherever the request has no field (`crate::reserved`).
    pub previous_response: Option<Packet>,
}

/// Whether the frontend must be notified after [`RequestRing::publish_responses`].
#[must_use = "notify the frontend if `notify` is set"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The frontend asked (via `rsp_event`) to be told about these responses.
    pub notify: bool,
}

impl RequestRing {
    /// Take over a freshly mapped ring page (`BACK_RING_ATTACH` at the indices the
    /// frontend left in `rsp_prod`).
    pub fn attach(memory: Box<dyn GrantMemory>) -> RequestRing {
        let start = word(memory.as_ref(), SRING_RSP_PROD_OFFSET).load(Ordering::Acquire);
        RequestRing {
            memory,
            req_cons: start,
            rsp_prod_pvt: start,
            written: [None; XENDISPL_REQ_RING_SIZE],
        }
    }

    fn unconsumed(&self) -> Result<u32, RingCorruption> {
        let req_prod = word(self.memory.as_ref(), SRING_REQ_PROD_OFFSET).load(Ordering::Acquire);
        let n = req_prod.wrapping_sub(self.req_cons);
        if n > XENDISPL_REQ_RING_SIZE as u32 {
            return Err(RingCorruption::RequestProducerOverflow {
                req_prod,
                req_cons: self.req_cons,
            });
        }
        Ok(n)
    }

    /// Whether the frontend produced requests not taken yet (a corrupt
    /// producer index counts as yes: taking them reports it).
    pub fn has_requests(&self) -> bool {
        self.unconsumed() != Ok(0)
    }

    /// The next unconsumed request, if any (`RING_GET_REQUEST` + `req_cons++`).
    /// The caller must answer it with [`RequestRing::push_response`] before taking
    /// another, which keeps responses from overtaking requests in the shared slots.
    pub fn take_request(&mut self) -> Result<Option<Taken>, RingCorruption> {
        if self.unconsumed()? == 0 {
            return Ok(None);
        }
        // The acquire load of req_prod in unconsumed() orders it before these reads.
        let slot = self.req_cons as usize % XENDISPL_REQ_RING_SIZE;
        let packet = load_packet(
            self.memory.as_ref(),
            SRING_ENTRIES_OFFSET + slot * PACKET_SIZE,
        );
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(Taken {
            packet,
            previous_response: self.written[slot],
        }))
    }

    /// Queue a response privately (`RING_GET_RESPONSE` + `rsp_prod_pvt++`).
    pub fn push_response(&mut self, packet: &Packet) {
        let slot = self.rsp_prod_pvt as usize % XENDISPL_REQ_RING_SIZE;
        store_packet(
            self.memory.as_ref(),
            SRING_ENTRIES_OFFSET + slot * PACKET_SIZE,
            packet,
        );
        self.written[slot] = Some(*packet);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`.
    pub fn publish_responses(&mut self) -> Published {
        let memory = self.memory.as_ref();
        let old = word(memory, SRING_RSP_PROD_OFFSET).load(Ordering::Relaxed);
        let new = self.rsp_prod_pvt;
        // Release: the response slots written above become visible before rsp_prod.
        word(memory, SRING_RSP_PROD_OFFSET).store(new, Ordering::Release);
        // Full barrier: the rsp_prod store is ordered before the rsp_event load.
        fence(Ordering::SeqCst);
        let rsp_event = word(memory, SRING_RSP_EVENT_OFFSET).load(Ordering::Relaxed);
        Published {
            notify: new.wrapping_sub(rsp_event) < new.wrapping_sub(old),
        }
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: re-arm `req_event` and report whether
    /// requests arrived meanwhile.
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingCorruption> {
        if self.unconsumed()? > 0 {
            return Ok(true);
        }
        word(self.memory.as_ref(), SRING_REQ_EVENT_OFFSET)
            .store(self.req_cons.wrapping_add(1), Ordering::Relaxed);
        // Full barrier: the req_event store is ordered before re-reading req_prod.
        fence(Ordering::SeqCst);
        Ok(self.unconsumed()? > 0)
    }
}

/// `2^32 mod XENDISPL_IN_RING_LEN` (= 4): where the slot sequence restarts when
/// the free-running u32 index wraps. Index `u32::MAX` lives in slot 3, the next
/// index (0) in slot 0 again, so indices `2^32 - 4 .. 2^32` and `0 .. 4` share
/// slots 0..3.
pub const IN_RING_WRAP_STEP: u32 = ((1u64 << 32) % XENDISPL_IN_RING_LEN as u64) as u32;

/// Whether the producer may write index `prod` while the `unconsumed` indices
/// `prod - unconsumed .. prod` (wrapping) are still unread.
///
/// The consumer reads index `k` from slot `k % 63` (u32 arithmetic,
/// `XENDISPL_IN_RING_REF`), so `prod` may only be written if no unread index
/// `prod - j` (1 <= j <= unconsumed) shares its slot:
/// - without a wrap in between (`j <= prod`): `prod - j ≡ prod (mod 63)` iff
///   `63 | j`, i.e. only `j = 63`: the page is full;
/// - across the wrap (`j > prod`): `prod - j + 2^32 ≡ prod (mod 63)` iff
///   `j ≡ 2^32 ≡ 4 (mod 63)`; below 63 only `j = 4`, possible iff `prod < 4`.
///
/// So besides a full page (63 unread), the producer must wait while
/// `prod < 4` and at least 4 events are unread: writing would overwrite the
/// unread event `prod - 4` (index `2^32 - 4 + prod`).
pub fn event_slot_is_free(prod: u32, unconsumed: u32) -> bool {
    let len = XENDISPL_IN_RING_LEN as u32;
    unconsumed < len && !(prod < IN_RING_WRAP_STEP && unconsumed >= IN_RING_WRAP_STEP)
}

/// Outcome of [`EventRing::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// The event is published.
    Written,
    /// 63 events are unread: nothing written.
    Full,
    /// Fewer than 63 events are unread, but the slot of the next index still
    /// holds an unread event because the u32 index wrapped (see
    /// [`event_slot_is_free`]): nothing written.
    WrapSlotBusy,
}

/// The backend (producer) end of the event page.
///
/// Indices at connect: the backend continues at the `in_prod` it finds in the
/// page (like `ring.h`'s `BACK_RING_ATTACH`), whatever its value, and treats
/// `in_cons .. in_prod` as events the frontend has not read yet — they are
/// never overwritten, and a consumer more than 63 behind (or ahead) is
/// corruption. Linux's xen-front allocates the page zeroed on every connect, so
/// it starts at 0/0; another frontend may start anywhere, including just below
/// the u32 wrap.
pub struct EventRing {
    memory: Box<dyn GrantMemory>,
    in_prod: u32,
}

impl EventRing {
    /// Take over a freshly mapped event page, continuing at its `in_prod`.
    pub fn attach(memory: Box<dyn GrantMemory>) -> Result<EventRing, RingCorruption> {
        let in_prod =
            word(memory.as_ref(), XENDISPL_EVENT_PAGE_IN_PROD_OFFSET).load(Ordering::Acquire);
        let ring = EventRing { memory, in_prod };
        ring.unconsumed()?;
        Ok(ring)
    }

    /// Our producer index.
    pub fn in_prod(&self) -> u32 {
        self.in_prod
    }

    /// Events published and not yet consumed (`in_prod - in_cons`).
    pub fn unconsumed(&self) -> Result<u32, RingCorruption> {
        let in_cons =
            word(self.memory.as_ref(), XENDISPL_EVENT_PAGE_IN_CONS_OFFSET).load(Ordering::Acquire);
        let used = self.in_prod.wrapping_sub(in_cons);
        if used > XENDISPL_IN_RING_LEN as u32 {
            return Err(RingCorruption::EventConsumerOverflow {
                in_cons,
                in_prod: self.in_prod,
            });
        }
        Ok(used)
    }

    /// Publish one event unless its slot still holds an unread one.
    pub fn push(&mut self, packet: &Packet) -> Result<Push, RingCorruption> {
        let used = self.unconsumed()?;
        if used >= XENDISPL_IN_RING_LEN as u32 {
            return Ok(Push::Full);
        }
        if !event_slot_is_free(self.in_prod, used) {
            return Ok(Push::WrapSlotBusy);
        }
        let slot = self.in_prod as usize % XENDISPL_IN_RING_LEN;
        store_packet(
            self.memory.as_ref(),
            XENDISPL_IN_RING_OFFS + slot * PACKET_SIZE,
            packet,
        );
        self.in_prod = self.in_prod.wrapping_add(1);
        // Release: the event slot is visible before the new in_prod.
        word(self.memory.as_ref(), XENDISPL_EVENT_PAGE_IN_PROD_OFFSET)
            .store(self.in_prod, Ordering::Release);
        Ok(Push::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{read_u32, write_words};
    use crate::sim::HeapMemory;
    use std::sync::Arc;

    fn shared() -> (Arc<HeapMemory>, Box<dyn GrantMemory>) {
        let page = Arc::new(HeapMemory::new(1));
        (Arc::clone(&page), Box::new(page.share()))
    }

    fn put_request(page: &HeapMemory, index: u32, byte: u8) {
        let slot = index as usize % XENDISPL_REQ_RING_SIZE;
        write_words(
            page,
            SRING_ENTRIES_OFFSET + slot * PACKET_SIZE,
            &[byte; PACKET_SIZE],
        )
        .unwrap();
    }

    fn set(page: &HeapMemory, offset: usize, value: u32) {
        write_words(page, offset, &value.to_le_bytes()).unwrap();
    }

    #[test]
    fn consumes_in_order_and_answers_in_the_same_slots() {
        let (page, memory) = shared();
        let mut ring = RequestRing::attach(memory);
        assert_eq!(ring.take_request(), Ok(None));
        for i in 0..3 {
            put_request(&page, i, i as u8 + 1);
        }
        set(&page, SRING_REQ_PROD_OFFSET, 3);
        set(&page, SRING_RSP_EVENT_OFFSET, 1);
        for i in 0..3u8 {
            let taken = ring.take_request().unwrap().unwrap();
            assert_eq!(taken.packet, [i + 1; PACKET_SIZE]);
            assert_eq!(taken.previous_response, None);
            ring.push_response(&[0xa0 + i; PACKET_SIZE]);
        }
        assert_eq!(ring.take_request(), Ok(None));
        assert!(ring.publish_responses().notify);
        assert_eq!(read_u32(&*page, SRING_RSP_PROD_OFFSET), Ok(3));
        assert_eq!(
            read_u32(&*page, SRING_ENTRIES_OFFSET + PACKET_SIZE),
            Ok(0xa1a1_a1a1)
        );
        // Frontend did not re-arm rsp_event: no notification for the next batch.
        put_request(&page, 3, 9);
        set(&page, SRING_REQ_PROD_OFFSET, 4);
        ring.take_request().unwrap().unwrap();
        ring.push_response(&[0; PACKET_SIZE]);
        assert!(!ring.publish_responses().notify);
        assert_eq!(ring.final_check_for_requests(), Ok(false));
        assert_eq!(read_u32(&*page, SRING_REQ_EVENT_OFFSET), Ok(5));
        // 32 requests later slots 0 and 1 come back: our responses there are remembered.
        for i in 4..32 {
            put_request(&page, i, 1);
            set(&page, SRING_REQ_PROD_OFFSET, i + 1);
            let taken = ring.take_request().unwrap().unwrap();
            assert_eq!(taken.previous_response, None, "slot {i} never answered");
            ring.push_response(&[i as u8; PACKET_SIZE]);
        }
        for (i, previous) in [(32, 0xa0), (33, 0xa1)] {
            put_request(&page, i, 1);
            set(&page, SRING_REQ_PROD_OFFSET, i + 1);
            let taken = ring.take_request().unwrap().unwrap();
            assert_eq!(taken.previous_response, Some([previous; PACKET_SIZE]));
            ring.push_response(&[0; PACKET_SIZE]);
        }
        let _ = ring.publish_responses();
    }

    #[test]
    fn wraps_the_free_running_indices() {
        let (page, _) = shared();
        let start = u32::MAX - 1;
        set(&page, SRING_RSP_PROD_OFFSET, start);
        let mut ring = RequestRing::attach(Box::new(page.share()));
        for k in 0..4u32 {
            put_request(&page, start.wrapping_add(k), k as u8);
        }
        set(&page, SRING_REQ_PROD_OFFSET, start.wrapping_add(4));
        for k in 0..4u8 {
            assert_eq!(ring.take_request().unwrap().unwrap().packet[0], k);
            ring.push_response(&[k; PACKET_SIZE]);
        }
        let _ = ring.publish_responses();
        assert_eq!(read_u32(&*page, SRING_RSP_PROD_OFFSET), Ok(2));
    }

    #[test]
    fn producer_beyond_the_ring_or_backwards_is_corruption() {
        let (page, memory) = shared();
        let mut ring = RequestRing::attach(memory);
        set(&page, SRING_REQ_PROD_OFFSET, 33);
        assert_eq!(
            ring.take_request(),
            Err(RingCorruption::RequestProducerOverflow {
                req_prod: 33,
                req_cons: 0
            })
        );
        set(&page, SRING_REQ_PROD_OFFSET, 32);
        assert!(ring.take_request().unwrap().is_some());
        set(&page, SRING_REQ_PROD_OFFSET, 0); // moved backwards
        assert!(matches!(
            ring.take_request(),
            Err(RingCorruption::RequestProducerOverflow { .. })
        ));
        assert!(ring.final_check_for_requests().is_err());
    }

    #[test]
    fn event_page_fills_up_wraps_modulo_63_and_detects_bad_consumers() {
        let (page, memory) = shared();
        let start = 1000;
        set(&page, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET, start);
        set(&page, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, start);
        let mut ring = EventRing::attach(memory).unwrap();
        for k in 0..63u32 {
            assert_eq!(ring.push(&[k as u8; PACKET_SIZE]), Ok(Push::Written));
        }
        assert_eq!(ring.push(&[0xff; PACKET_SIZE]), Ok(Push::Full));
        let last = start.wrapping_add(62);
        let slot = last as usize % XENDISPL_IN_RING_LEN;
        assert_eq!(
            read_u32(&*page, XENDISPL_IN_RING_OFFS + slot * PACKET_SIZE),
            Ok(0x3e3e_3e3e)
        );
        assert_eq!(
            read_u32(&*page, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET),
            Ok(start.wrapping_add(63))
        );
        set(
            &page,
            XENDISPL_EVENT_PAGE_IN_CONS_OFFSET,
            start.wrapping_add(1),
        );
        assert_eq!(ring.push(&[0xff; PACKET_SIZE]), Ok(Push::Written));
        set(
            &page,
            XENDISPL_EVENT_PAGE_IN_CONS_OFFSET,
            start.wrapping_add(100),
        );
        assert!(matches!(
            ring.push(&[0; PACKET_SIZE]),
            Err(RingCorruption::EventConsumerOverflow { .. })
        ));
    }

    /// Reference: does writing `prod` hit the slot of an unread index?
    fn slot_collides(prod: u32, unconsumed: u32) -> bool {
        let slot = prod % XENDISPL_IN_RING_LEN as u32;
        (1..=unconsumed).any(|j| prod.wrapping_sub(j) % XENDISPL_IN_RING_LEN as u32 == slot)
    }

    #[test]
    fn slot_rule_matches_a_brute_force_check_around_the_wrap() {
        assert_eq!(IN_RING_WRAP_STEP, 4);
        let window = (0..400u32).map(|k| k.wrapping_sub(200));
        let elsewhere = [63, 64, 125, 126, 1 << 31, 4_000_000_000];
        for prod in window.chain(elsewhere) {
            for used in 0..=XENDISPL_IN_RING_LEN as u32 {
                let expected = used < XENDISPL_IN_RING_LEN as u32 && !slot_collides(prod, used);
                assert_eq!(
                    event_slot_is_free(prod, used),
                    expected,
                    "prod {prod:#x}, {used} unread"
                );
            }
        }
        // The case the old `63 - used` rule got wrong: 4 unread across the wrap.
        assert!(slot_collides(0, 4));
        assert!(!event_slot_is_free(0, 4));
        assert!(event_slot_is_free(0, 3));
        assert!(event_slot_is_free(4, 62));
    }

    #[test]
    fn producer_waits_at_the_u32_wrap_instead_of_overwriting_unread_events() {
        let (page, memory) = shared();
        let start = u32::MAX - 9; // slots 57..=62, 0..=3, then index 0 is slot 0 again
        set(&page, XENDISPL_EVENT_PAGE_IN_PROD_OFFSET, start);
        set(&page, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, start);
        let mut ring = EventRing::attach(memory).unwrap();
        for k in 0..10u8 {
            assert_eq!(ring.push(&[k; PACKET_SIZE]), Ok(Push::Written));
        }
        assert_eq!(ring.in_prod(), 0);
        // Index 0's slot holds unread index 2^32 - 4 (event 6).
        assert_eq!(ring.push(&[0xee; PACKET_SIZE]), Ok(Push::WrapSlotBusy));
        let read = |index: u32| {
            read_u32(
                &*page,
                XENDISPL_IN_RING_OFFS + (index % 63) as usize * PACKET_SIZE,
            )
            .unwrap()
        };
        for k in 0..10u32 {
            assert_eq!(
                read(start.wrapping_add(k)),
                u32::from_ne_bytes([k as u8; 4])
            );
        }
        // The consumer reads up to 2^32 - 4 inclusive: 3 unread, index 0 is free.
        set(&page, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, u32::MAX - 2);
        assert_eq!(ring.push(&[0xee; PACKET_SIZE]), Ok(Push::Written));
        // Index 1's slot is that of 2^32 - 3, still unread.
        assert_eq!(ring.push(&[0xef; PACKET_SIZE]), Ok(Push::WrapSlotBusy));
        set(&page, XENDISPL_EVENT_PAGE_IN_CONS_OFFSET, 0);
        assert_eq!(ring.push(&[0xef; PACKET_SIZE]), Ok(Push::Written));
        assert_eq!(read(0), 0xeeee_eeee);
        assert_eq!(read(1), 0xefef_efef);
        assert_eq!(read(u32::MAX), 0x0909_0909, "index 2^32 - 1 untouched");
    }
}
