//! The PV console ring (`xen/include/public/io/console.h`), output side.
//!
//! The toolstack gives us a page (`HVM_PARAM_CONSOLE_PFN`) and an event channel
//! (`HVM_PARAM_CONSOLE_EVTCHN`) already bound to xenconsoled. We produce into
//! `out[2048]` with free-running `out_prod` and notify; xenconsoled consumes and
//! advances `out_cons`. That is what `xl console` and the console log show.

use core::sync::atomic::{fence, Ordering};

use crate::abi::console::{
    XENCONS_OUT_CONS_OFFSET, XENCONS_OUT_OFFSET, XENCONS_OUT_PROD_OFFSET, XENCONS_OUT_SIZE,
};
use crate::abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
use crate::hv::hypercall::Hypervisor;
use crate::hv::page::IdentityPage;
use crate::hv::shared_info::SharedInfo;
use crate::platform::{PlatformError, SharedPage};
use crate::types::{EvtchnPort, Gfn};

/// Longest we wait for xenconsoled to drain a full ring before dropping output,
/// in ns (a missing console daemon must not hang the guest).
pub const FULL_RING_TIMEOUT_NS: u64 = 200_000_000;

/// The console ring and its port.
#[derive(Debug)]
pub struct PvConsole {
    hv: Hypervisor,
    page: IdentityPage,
    port: EvtchnPort,
    shared: &'static SharedInfo,
    /// Set after a timeout: later writes do not wait again.
    is_stalled: bool,
}

impl PvConsole {
    /// Find the console page and port from the HVM parameters.
    ///
    /// # Safety
    /// Xen's special pages must be identity-mapped (below 4 GiB, which
    /// `boot/` maps) and nothing else may use the console page.
    pub unsafe fn from_hvm_params(
        hv: Hypervisor,
        shared: &'static SharedInfo,
    ) -> Result<PvConsole, PlatformError> {
        let pfn = hv.hvm_get_param(HVM_PARAM_CONSOLE_PFN)?;
        let port = hv.hvm_get_param(HVM_PARAM_CONSOLE_EVTCHN)?;
        if pfn == 0 || pfn >= (1 << 20) || port == 0 || port > u64::from(u32::MAX) {
            return Err(PlatformError::NotHeld("console page or port"));
        }
        let port = EvtchnPort(port as u32);
        shared.mask(port);
        Ok(PvConsole {
            hv,
            // SAFETY: per the caller the page is identity-mapped and ours alone;
            // xenconsoled's accesses are the other side's atomics.
            page: unsafe { IdentityPage::new_unchecked(Gfn(pfn)) },
            port,
            shared,
            is_stalled: false,
        })
    }

    /// The console's event channel.
    pub fn port(&self) -> EvtchnPort {
        self.port
    }

    /// Append `bytes` to the ring, waiting (bounded) while it is full.
    #[cfg(target_arch = "x86_64")]
    pub fn write(&mut self, bytes: &[u8]) {
        let words = self.page.words();
        let prod_word = &words[XENCONS_OUT_PROD_OFFSET / 4];
        let cons_word = &words[XENCONS_OUT_CONS_OFFSET / 4];
        let mut rest = bytes;
        while !rest.is_empty() {
            let prod = prod_word.load(Ordering::Relaxed);
            let cons = cons_word.load(Ordering::Acquire);
            let used = prod.wrapping_sub(cons) as usize;
            if used > XENCONS_OUT_SIZE {
                // xenconsoled wrote nonsense: stop using the ring.
                self.is_stalled = true;
                return;
            }
            let space = XENCONS_OUT_SIZE - used;
            if space == 0 {
                if self.is_stalled || !self.wait_for_space() {
                    self.is_stalled = true;
                    return;
                }
                continue;
            }
            let n = space.min(rest.len());
            for (i, &b) in rest[..n].iter().enumerate() {
                let index = prod.wrapping_add(i as u32) as usize % XENCONS_OUT_SIZE;
                self.store_byte(XENCONS_OUT_OFFSET + index, b);
            }
            // Order: the data bytes above before the producer index below.
            fence(Ordering::Release);
            prod_word.store(prod.wrapping_add(n as u32), Ordering::Relaxed);
            rest = &rest[n..];
            let _ = self.hv.evtchn_send(self.port);
        }
        self.is_stalled = false;
    }

    /// Store one byte of the page through its containing atomic word.
    fn store_byte(&self, offset: usize, b: u8) {
        let word = &self.page.words()[offset / 4];
        let shift = (offset % 4) * 8;
        // Only we write the `out` array, so a read-modify-write is race-free
        // for these bytes; fetch_update keeps it atomic anyway.
        let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            Some((w & !(0xff << shift)) | (u32::from(b) << shift))
        });
    }

    /// Poll the console port until xenconsoled consumed something or the
    /// timeout passed. Returns whether there is space now.
    #[cfg(target_arch = "x86_64")]
    fn wait_for_space(&self) -> bool {
        let words = self.page.words();
        let prod_word = &words[XENCONS_OUT_PROD_OFFSET / 4];
        let cons_word = &words[XENCONS_OUT_CONS_OFFSET / 4];
        let deadline = self.shared.system_time_ns() + FULL_RING_TIMEOUT_NS;
        loop {
            let used = prod_word
                .load(Ordering::Relaxed)
                .wrapping_sub(cons_word.load(Ordering::Acquire)) as usize;
            if used < XENCONS_OUT_SIZE {
                return true;
            }
            if self.shared.system_time_ns() >= deadline {
                return false;
            }
            self.shared.take_pending(self.port);
            let _ = self.hv.poll(&[self.port], deadline);
        }
    }
}
