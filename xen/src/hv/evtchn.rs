//! Event channels and time for the guest: [`XenEventChannels`] and [`PvClock`].
//!
//! We run with interrupts disabled and no upcall vector, so an event is never
//! delivered asynchronously: a port's pending bit in shared info is the whole
//! state. Waiting is `SCHEDOP_poll` over the ports with an absolute timeout in
//! Xen system time — the same clock [`PvClock`] reads — so the deadline needs
//! no conversion. Xen wakes a poller when one of its ports becomes pending
//! (even if masked) or the timeout passes; it checks the ports before
//! blocking, so an event that arrived earlier is never lost. Spurious wakeups
//! are handled by re-checking in a loop.
//!
//! Ports are masked as soon as we own them: masking only suppresses upcalls,
//! which we never take, and keeps Xen from raising `evtchn_upcall_pending`.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::hv::hypercall::Hypervisor;
use crate::hv::shared_info::SharedInfo;
use crate::platform::{Clock, EventChannels, PlatformError, WaitOutcome};
use crate::types::{DomId, EvtchnPort};

/// Monotonic Xen system time from vCPU 0's pvclock.
#[derive(Debug)]
pub struct PvClock {
    shared: &'static SharedInfo,
    last_ns: AtomicU64,
}

impl PvClock {
    /// A clock over the mapped shared-info page.
    pub const fn new(shared: &'static SharedInfo) -> PvClock {
        PvClock {
            shared,
            last_ns: AtomicU64::new(0),
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Clock for PvClock {
    fn now_ns(&self) -> u64 {
        let now = self.shared.system_time_ns();
        // Xen's per-update records may step back by a few ns; never report it.
        let previous = self.last_ns.fetch_max(now, Ordering::Relaxed);
        now.max(previous)
    }
}

/// Shared references are clocks too (the xenstore transport takes one by value).
#[cfg(target_arch = "x86_64")]
impl Clock for &PvClock {
    fn now_ns(&self) -> u64 {
        PvClock::now_ns(self)
    }
}

/// [`EventChannels`] over hypercalls and the shared-info bitmaps.
#[derive(Debug)]
pub struct XenEventChannels {
    hv: Hypervisor,
    shared: &'static SharedInfo,
    clock: &'static PvClock,
}

impl XenEventChannels {
    /// Event channels of this domain.
    pub const fn new(
        hv: Hypervisor,
        shared: &'static SharedInfo,
        clock: &'static PvClock,
    ) -> XenEventChannels {
        XenEventChannels { hv, shared, clock }
    }

    /// Take ownership of a port the toolstack bound for us (xenstore, console):
    /// mask it like our own ports.
    pub fn adopt(&self, port: EvtchnPort) {
        self.shared.mask(port);
    }

    /// Whether `port` is pending (without clearing it).
    pub fn is_pending(&self, port: EvtchnPort) -> bool {
        self.shared.is_pending(port)
    }

    /// `EVTCHNOP_unmask` (exposed for completeness: with upcalls off it only
    /// matters to code that later enables them).
    pub fn unmask(&self, port: EvtchnPort) -> Result<(), PlatformError> {
        self.hv.evtchn_unmask(port)
    }

    /// Set the port's mask bit.
    pub fn mask(&self, port: EvtchnPort) {
        self.shared.mask(port);
    }
}

#[cfg(target_arch = "x86_64")]
impl EventChannels for XenEventChannels {
    fn alloc_unbound(&mut self, remote: DomId) -> Result<EvtchnPort, PlatformError> {
        let port = self.hv.evtchn_alloc_unbound(remote)?;
        self.shared.mask(port);
        Ok(port)
    }

    fn bind_interdomain(
        &mut self,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, PlatformError> {
        let port = self.hv.evtchn_bind_interdomain(remote, remote_port)?;
        self.shared.mask(port);
        Ok(port)
    }

    fn send(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        self.hv.evtchn_send(port)
    }

    fn close(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        self.hv.evtchn_close(port)?;
        // A closed port's stale pending bit must not confuse its next owner.
        self.shared.take_pending(port);
        Ok(())
    }

    fn take_pending(&mut self, port: EvtchnPort) -> bool {
        self.shared.take_pending(port)
    }

    fn wait(
        &mut self,
        ports: &[EvtchnPort],
        deadline_ns: Option<u64>,
    ) -> Result<WaitOutcome, PlatformError> {
        if ports.is_empty() && deadline_ns.is_none() {
            return Err(PlatformError::NotHeld(
                "wait on no ports without a deadline",
            ));
        }
        let shared = self.shared;
        let clock = self.clock;
        let hv = self.hv;
        wait_loop(
            || ports.iter().any(|&p| shared.is_pending(p)),
            || clock.now_ns(),
            deadline_ns,
            |timeout| hv.poll(ports, timeout),
        )
    }
}

/// The wait policy, separated from the hypercalls so it is host-tested:
/// return `Pending` as soon as `any_pending()`, `DeadlinePassed` once
/// `now_ns() >= deadline`, else `block(timeout)` (0 = no timeout, Xen's
/// convention) and re-check — `block` may return early (spurious wake-ups).
pub fn wait_loop(
    mut any_pending: impl FnMut() -> bool,
    now_ns: impl Fn() -> u64,
    deadline_ns: Option<u64>,
    mut block: impl FnMut(u64) -> Result<(), PlatformError>,
) -> Result<WaitOutcome, PlatformError> {
    loop {
        if any_pending() {
            return Ok(WaitOutcome::Pending);
        }
        let timeout = match deadline_ns {
            Some(deadline) if now_ns() >= deadline => return Ok(WaitOutcome::DeadlinePassed),
            // A deadline of 0 has passed above, so 0 never reaches Xen as a deadline.
            Some(deadline) => deadline,
            None => 0,
        };
        block(timeout)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    #[test]
    fn pending_first_never_blocks() {
        let r = wait_loop(|| true, || 0, Some(10), |_| panic!("blocked"));
        assert_eq!(r, Ok(WaitOutcome::Pending));
    }

    #[test]
    fn spurious_wakeups_until_the_deadline() {
        let now = Cell::new(0u64);
        let blocks = Cell::new(0);
        let r = wait_loop(
            || false,
            || now.get(),
            Some(100),
            |timeout| {
                assert_eq!(timeout, 100);
                blocks.set(blocks.get() + 1);
                // Two early returns, then the clock passes the deadline.
                now.set(if blocks.get() < 3 {
                    now.get() + 10
                } else {
                    100
                });
                Ok(())
            },
        );
        assert_eq!(r, Ok(WaitOutcome::DeadlinePassed));
        assert_eq!(blocks.get(), 3);
    }

    #[test]
    fn no_deadline_blocks_without_timeout_until_an_event() {
        let blocks = Cell::new(0);
        let r = wait_loop(
            || blocks.get() == 2,
            || u64::MAX,
            None,
            |timeout| {
                assert_eq!(timeout, 0);
                blocks.set(blocks.get() + 1);
                Ok(())
            },
        );
        assert_eq!(r, Ok(WaitOutcome::Pending));
    }

    #[test]
    fn past_deadline_and_errors() {
        assert_eq!(
            wait_loop(|| false, || 5, Some(0), |_| panic!("blocked")),
            Ok(WaitOutcome::DeadlinePassed)
        );
        assert_eq!(
            wait_loop(|| false, || 0, Some(9), |_| Err(PlatformError::Errno(-22))),
            Err(PlatformError::Errno(-22))
        );
    }
}
