//! The guest's xenstore ring page (`struct xenstore_domain_interface`).
//!
//! Two 1 KiB byte rings with free-running `u32` indices masked by
//! `MASK_XENSTORE_IDX`: the guest produces into `req` (`req_prod`) and consumes
//! `rsp` (`rsp_cons`); xenstored does the opposite. [`XsRingPage`] implements
//! both of the guest's halves as pure code over the page's atomic words, with
//! the barriers Linux's `xb_write`/`xb_read` use. [`RingTransport`] adds the
//! event channel and clock to make a [`XenstoreTransport`] for the unikernel.
//!
//! Indices are validated on every access: a peer that moves them so that more
//! than `XENSTORE_RING_SIZE` bytes appear outstanding gets
//! [`XsRingError::BadIndices`], never an out-of-bounds access.

use core::sync::atomic::{fence, AtomicU32, Ordering};

use super::client::XenstoreTransport;
use crate::abi::xs_wire::{
    mask_xenstore_idx, XENSTORE_ERROR_NONE, XENSTORE_RING_SIZE, XENSTORE_SERVER_FEATURE_ERROR,
    XS_IF_ERROR_OFFSET, XS_IF_REQ_CONS_OFFSET, XS_IF_REQ_OFFSET, XS_IF_REQ_PROD_OFFSET,
    XS_IF_RSP_CONS_OFFSET, XS_IF_RSP_OFFSET, XS_IF_RSP_PROD_OFFSET, XS_IF_SERVER_FEATURES_OFFSET,
};
use crate::platform::{Clock, EventChannels, PlatformError, SharedPage, WaitOutcome};
use crate::shared_mem::{read_bytes, write_bytes, PAGE_WORDS};
use crate::types::EvtchnPort;

/// A ring-level failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsRingError {
    /// The page is not a full page of words.
    ShortPage(usize),
    /// `prod - cons` exceeds the ring size: the peer corrupted the indices.
    BadIndices {
        /// Producer index read.
        prod: u32,
        /// Consumer index read.
        cons: u32,
    },
    /// xenstored reported `XENSTORE_ERROR_*` in the page.
    ServerError(u32),
}

impl From<XsRingError> for PlatformError {
    fn from(e: XsRingError) -> PlatformError {
        match e {
            XsRingError::ShortPage(_) => PlatformError::NotHeld("full xenstore page"),
            XsRingError::BadIndices { .. } | XsRingError::ServerError(_) => {
                PlatformError::Errno(-crate::abi::errno::XEN_EIO)
            }
        }
    }
}

/// Result of a ring write or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "notify xenstored through the event channel if `notify` is set"]
pub struct RingProgress {
    /// Bytes copied.
    pub bytes: usize,
    /// Indices moved: the peer must be notified.
    pub notify: bool,
}

/// The guest's view of a xenstore page.
pub struct XsRingPage<'a> {
    words: &'a [AtomicU32],
}

fn word(offset: usize) -> usize {
    offset / 4
}

impl<'a> XsRingPage<'a> {
    /// Wrap a page's words (must be a whole page).
    pub fn new(words: &'a [AtomicU32]) -> Result<Self, XsRingError> {
        if words.len() < PAGE_WORDS {
            return Err(XsRingError::ShortPage(words.len()));
        }
        Ok(XsRingPage { words })
    }

    fn check_server_error(&self) -> Result<(), XsRingError> {
        let features = self.words[word(XS_IF_SERVER_FEATURES_OFFSET)].load(Ordering::Relaxed);
        if features & XENSTORE_SERVER_FEATURE_ERROR != 0 {
            let error = self.words[word(XS_IF_ERROR_OFFSET)].load(Ordering::Acquire);
            if error != XENSTORE_ERROR_NONE {
                return Err(XsRingError::ServerError(error));
            }
        }
        Ok(())
    }

    /// Copy as much of `data` as fits into the request ring.
    pub fn write(&self, data: &[u8]) -> Result<RingProgress, XsRingError> {
        self.check_server_error()?;
        // Acquire: the data stores below must not be performed before we have
        // seen xenstored's req_cons (else we could overwrite unread bytes).
        let cons = self.words[word(XS_IF_REQ_CONS_OFFSET)].load(Ordering::Acquire);
        // Our own index; only we write it.
        let prod = self.words[word(XS_IF_REQ_PROD_OFFSET)].load(Ordering::Relaxed);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENSTORE_RING_SIZE {
            return Err(XsRingError::BadIndices { prod, cons });
        }
        // Full barrier as in Linux xb_write(): order the req_cons read against the
        // data writes (the Acquire above already does; this also covers a peer
        // relying on x86 store->load ordering).
        fence(Ordering::SeqCst);
        let mut written = 0;
        let mut p = prod;
        while written < data.len() && (p.wrapping_sub(cons) as usize) < XENSTORE_RING_SIZE {
            let start = mask_xenstore_idx(p);
            let space = XENSTORE_RING_SIZE - p.wrapping_sub(cons) as usize;
            let chunk = (XENSTORE_RING_SIZE - start)
                .min(space)
                .min(data.len() - written);
            write_bytes(
                self.words,
                XS_IF_REQ_OFFSET + start,
                &data[written..written + chunk],
            )
            .map_err(|_| XsRingError::ShortPage(self.words.len()))?;
            written += chunk;
            p = p.wrapping_add(chunk as u32);
        }
        if written > 0 {
            // Release: xenstored must see the data before the new req_prod.
            self.words[word(XS_IF_REQ_PROD_OFFSET)].store(p, Ordering::Release);
        }
        Ok(RingProgress {
            bytes: written,
            notify: written > 0,
        })
    }

    /// Copy available response bytes into `buf`.
    pub fn read(&self, buf: &mut [u8]) -> Result<RingProgress, XsRingError> {
        self.check_server_error()?;
        // Acquire: the data loads below must happen after we see rsp_prod (the
        // bytes up to rsp_prod are then complete).
        let prod = self.words[word(XS_IF_RSP_PROD_OFFSET)].load(Ordering::Acquire);
        let cons = self.words[word(XS_IF_RSP_CONS_OFFSET)].load(Ordering::Relaxed);
        let avail = prod.wrapping_sub(cons) as usize;
        if avail > XENSTORE_RING_SIZE {
            return Err(XsRingError::BadIndices { prod, cons });
        }
        let mut read = 0;
        let mut c = cons;
        while read < buf.len() && c != prod {
            let start = mask_xenstore_idx(c);
            let chunk = (XENSTORE_RING_SIZE - start)
                .min(prod.wrapping_sub(c) as usize)
                .min(buf.len() - read);
            read_bytes(
                self.words,
                XS_IF_RSP_OFFSET + start,
                &mut buf[read..read + chunk],
            )
            .map_err(|_| XsRingError::ShortPage(self.words.len()))?;
            read += chunk;
            c = c.wrapping_add(chunk as u32);
        }
        if read > 0 {
            // Full barrier as in Linux xb_read(): finish reading the data before
            // publishing rsp_cons, which lets xenstored overwrite it.
            fence(Ordering::SeqCst);
            self.words[word(XS_IF_RSP_CONS_OFFSET)].store(c, Ordering::Release);
        }
        Ok(RingProgress {
            bytes: read,
            notify: read > 0,
        })
    }

    /// Whether response bytes are waiting (no side effects).
    pub fn has_response_bytes(&self) -> bool {
        let prod = self.words[word(XS_IF_RSP_PROD_OFFSET)].load(Ordering::Acquire);
        let cons = self.words[word(XS_IF_RSP_CONS_OFFSET)].load(Ordering::Relaxed);
        prod != cons
    }

    /// Whether the request ring has free space (no side effects).
    pub fn has_request_space(&self) -> bool {
        let cons = self.words[word(XS_IF_REQ_CONS_OFFSET)].load(Ordering::Acquire);
        let prod = self.words[word(XS_IF_REQ_PROD_OFFSET)].load(Ordering::Relaxed);
        (prod.wrapping_sub(cons) as usize) < XENSTORE_RING_SIZE
    }
}

/// A [`XenstoreTransport`] over the xenstore page, its event channel and a clock.
///
/// The kernel builds one from `HVM_PARAM_STORE_PFN` / `HVM_PARAM_STORE_EVTCHN`.
pub struct RingTransport<P: SharedPage, E: EventChannels, C: Clock> {
    page: P,
    evtchn: E,
    clock: C,
    port: EvtchnPort,
}

impl<P: SharedPage, E: EventChannels, C: Clock> RingTransport<P, E, C> {
    /// Wrap the page (must be a whole page) and the store's event channel.
    pub fn new(page: P, evtchn: E, clock: C, port: EvtchnPort) -> Result<Self, XsRingError> {
        XsRingPage::new(page.words())?;
        Ok(RingTransport {
            page,
            evtchn,
            clock,
            port,
        })
    }

    /// The event-channel implementation (e.g. to share it).
    pub fn evtchn_mut(&mut self) -> &mut E {
        &mut self.evtchn
    }

    fn ring(&self) -> XsRingPage<'_> {
        // Length was checked in new() and the page never changes.
        XsRingPage {
            words: self.page.words(),
        }
    }
}

impl<P: SharedPage, E: EventChannels, C: Clock> XenstoreTransport for RingTransport<P, E, C> {
    fn send(&mut self, bytes: &[u8]) -> Result<usize, PlatformError> {
        let progress = self.ring().write(bytes)?;
        if progress.notify {
            self.evtchn.send(self.port)?;
        }
        Ok(progress.bytes)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, PlatformError> {
        let progress = self.ring().read(buf)?;
        if progress.notify {
            self.evtchn.send(self.port)?;
        }
        Ok(progress.bytes)
    }

    fn wait(&mut self, deadline_ns: u64) -> Result<WaitOutcome, PlatformError> {
        // Clear the pending bit first, then re-check the ring: an event that
        // arrives after the check leaves the bit set, so wait() returns at once.
        self.evtchn.take_pending(self.port);
        if self.ring().has_response_bytes() {
            return Ok(WaitOutcome::Pending);
        }
        let outcome = self.evtchn.wait(&[self.port], Some(deadline_ns))?;
        if outcome == WaitOutcome::Pending {
            self.evtchn.take_pending(self.port);
        }
        Ok(outcome)
    }

    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_mem::MemPage;
    use crate::types::Gfn;

    fn set(page: &MemPage, off: usize, v: u32) {
        page.words()[off / 4].store(v, Ordering::Relaxed);
    }
    fn get(page: &MemPage, off: usize) -> u32 {
        page.words()[off / 4].load(Ordering::Relaxed)
    }

    /// xenstored's side, for tests: consume requests, produce responses.
    fn server_take(page: &MemPage) -> Vec<u8> {
        let cons = get(page, XS_IF_REQ_CONS_OFFSET);
        let prod = get(page, XS_IF_REQ_PROD_OFFSET);
        let mut out = Vec::new();
        let mut c = cons;
        while c != prod {
            let mut b = [0u8];
            read_bytes(
                page.words(),
                XS_IF_REQ_OFFSET + mask_xenstore_idx(c),
                &mut b,
            )
            .unwrap();
            out.push(b[0]);
            c = c.wrapping_add(1);
        }
        set(page, XS_IF_REQ_CONS_OFFSET, c);
        out
    }
    fn server_put(page: &MemPage, data: &[u8]) -> usize {
        let cons = get(page, XS_IF_RSP_CONS_OFFSET);
        let mut p = get(page, XS_IF_RSP_PROD_OFFSET);
        let mut n = 0;
        for &b in data {
            if p.wrapping_sub(cons) as usize == XENSTORE_RING_SIZE {
                break;
            }
            write_bytes(page.words(), XS_IF_RSP_OFFSET + mask_xenstore_idx(p), &[b]).unwrap();
            p = p.wrapping_add(1);
            n += 1;
        }
        set(page, XS_IF_RSP_PROD_OFFSET, p);
        n
    }

    #[test]
    fn write_fills_ring_then_stops_and_wraps_indices() {
        for start in [0u32, 1000, u32::MAX - 10] {
            let page = MemPage::new(Gfn(1));
            set(&page, XS_IF_REQ_PROD_OFFSET, start);
            set(&page, XS_IF_REQ_CONS_OFFSET, start);
            let ring = XsRingPage::new(page.words()).unwrap();
            let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
            let p = ring.write(&data).unwrap();
            assert_eq!(
                p,
                RingProgress {
                    bytes: XENSTORE_RING_SIZE,
                    notify: true
                }
            );
            assert_eq!(
                ring.write(&data).unwrap(),
                RingProgress {
                    bytes: 0,
                    notify: false
                }
            );
            assert!(!ring.has_request_space());
            assert_eq!(server_take(&page), &data[..XENSTORE_RING_SIZE]);
            let p = ring.write(&data[XENSTORE_RING_SIZE..]).unwrap();
            assert_eq!(p.bytes, XENSTORE_RING_SIZE);
            assert_eq!(
                server_take(&page),
                &data[XENSTORE_RING_SIZE..2 * XENSTORE_RING_SIZE]
            );
        }
    }

    #[test]
    fn read_across_the_wrap() {
        let page = MemPage::new(Gfn(1));
        set(&page, XS_IF_RSP_PROD_OFFSET, u32::MAX - 5);
        set(&page, XS_IF_RSP_CONS_OFFSET, u32::MAX - 5);
        let ring = XsRingPage::new(page.words()).unwrap();
        let data: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
        assert_eq!(server_put(&page, &data), 700);
        let mut buf = vec![0u8; 1000];
        let p = ring.read(&mut buf).unwrap();
        assert_eq!(
            p,
            RingProgress {
                bytes: 700,
                notify: true
            }
        );
        assert_eq!(&buf[..700], &data[..]);
        assert_eq!(
            get(&page, XS_IF_RSP_CONS_OFFSET),
            (u32::MAX - 5).wrapping_add(700)
        );
        assert_eq!(
            ring.read(&mut buf).unwrap(),
            RingProgress {
                bytes: 0,
                notify: false
            }
        );
    }

    #[test]
    fn corrupt_indices_and_server_error_are_reported() {
        let page = MemPage::new(Gfn(1));
        let ring = XsRingPage::new(page.words()).unwrap();
        set(&page, XS_IF_RSP_PROD_OFFSET, 5000);
        assert_eq!(
            ring.read(&mut [0u8; 8]),
            Err(XsRingError::BadIndices {
                prod: 5000,
                cons: 0
            })
        );
        set(&page, XS_IF_REQ_PROD_OFFSET, 1025);
        assert!(matches!(
            ring.write(b"x"),
            Err(XsRingError::BadIndices { .. })
        ));
        set(
            &page,
            XS_IF_SERVER_FEATURES_OFFSET,
            XENSTORE_SERVER_FEATURE_ERROR,
        );
        set(&page, XS_IF_ERROR_OFFSET, 2);
        assert_eq!(ring.write(b"x"), Err(XsRingError::ServerError(2)));
        let short: Vec<AtomicU32> = (0..10).map(|_| AtomicU32::new(0)).collect();
        assert!(XsRingPage::new(&short).is_err());
    }
}
