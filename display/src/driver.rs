//! The event loop that runs a [`Frontend`]: poll, then sleep until a port,
//! xenstore or the next deadline.
//!
//! [`drive`] is what the kernel calls once its platform is up: it reads the
//! clock, lets the caller look at its own xenstore watches (e.g.
//! `control/shutdown`), polls the frontend and sleeps in
//! `EventChannels::wait` on the frontend's ports plus the caller's (at least
//! xenstore's) until the frontend's wake-up time. It never sleeps while a
//! watch event is already queued in the xenstore client (its event channel
//! will not fire again for it), and it returns when the frontend is finished.

use alloc::vec::Vec;

use xen::platform::{Clock, PlatformError, SharedPage};
use xen::types::EvtchnPort;

use crate::frontend::{Env, Frontend};
use crate::FrameSource;

/// What the caller's per-wake-up hook wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// Shut the display down cleanly (the loop returns once it is Closed).
    Shutdown,
}

/// What the caller adds to the loop.
#[derive(Debug)]
pub struct LoopConfig<'a> {
    /// Ports that must wake the loop besides the frontend's: xenstore's event
    /// channel at least.
    pub extra_ports: &'a [EvtchnPort],
    /// Watch tokens the hook consumes: a queued event for one of them means
    /// "do not sleep".
    pub hook_tokens: &'a [&'a str],
}

/// Counters of one [`drive`] run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// `Frontend::poll` calls.
    pub polls: u64,
    /// Sleeps in `EventChannels::wait`.
    pub waits: u64,
}

/// Run `frontend` until it is finished. `hook` runs at every wake-up with the
/// frontend (its stats, e.g. to stop after N flips), the platform and the
/// current time (check your watches there); returning [`Control::Shutdown`]
/// starts an orderly shutdown. Errors from `EventChannels::wait` end the loop.
pub fn drive<P: SharedPage>(
    frontend: &mut Frontend<P>,
    clock: &dyn Clock,
    env: &mut Env<'_, P>,
    config: &LoopConfig<'_>,
    source: &mut dyn FrameSource,
    mut hook: impl FnMut(&Frontend<P>, &mut Env<'_, P>, u64) -> Control,
) -> Result<LoopStats, PlatformError> {
    let mut stats = LoopStats::default();
    let mut ports = Vec::new();
    let mut is_shutdown_requested = false;
    loop {
        let now_ns = clock.now_ns();
        let result = frontend.poll(now_ns, env, source);
        stats.polls += 1;
        if result.is_finished {
            return Ok(stats);
        }
        // After the poll, so that what it just did (e.g. the last of N flips
        // completing, after which nothing may wake the loop) is seen at once.
        if hook(frontend, env, now_ns) == Control::Shutdown && !is_shutdown_requested {
            is_shutdown_requested = true;
            frontend.request_shutdown();
            continue;
        }
        let is_event_queued = env.store.has_watch_event(frontend.watch_token())
            || config
                .hook_tokens
                .iter()
                .any(|t| env.store.has_watch_event(t));
        if is_event_queued {
            continue;
        }
        ports.clear();
        ports.extend(frontend.ports());
        ports.extend_from_slice(config.extra_ports);
        env.evtchn.wait(&ports, result.wake_at_ns)?;
        stats.waits += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::Options;
    use crate::pattern::TestPattern;
    use crate::sim_backend::SimBackend;
    use crate::store::{Store, TxId};
    use crate::testing::{FakeEvtchn, FakeGnttab, FakePages, MemStore};
    use std::cell::{Cell, RefCell};
    use std::format;
    use std::rc::Rc;
    use xen::abi::xenbus::XenbusState;
    use xen::platform::{EventChannels, WaitOutcome};
    use xen::types::DomId;

    const MS: u64 = 1_000_000;
    const FE: &str = "device/vdispl/0";
    const BE: &str = "/local/domain/0/backend/vdispl/5/0";
    const XS_PORT: EvtchnPort = EvtchnPort(999);

    struct FakeClock(Rc<Cell<u64>>);

    impl Clock for FakeClock {
        fn now_ns(&self) -> u64 {
            self.0.get()
        }
    }

    /// Event channels whose `wait` lets the simulated backend run and moves
    /// the fake clock forward, like time passing while the guest sleeps.
    struct World {
        evt: FakeEvtchn,
        be: Rc<RefCell<SimBackend>>,
        store: MemStore,
        clock: Rc<Cell<u64>>,
        /// Waits with nothing pending and nothing due: a real guest would
        /// sleep until xenstore fires, possibly forever.
        idle_waits: u32,
    }

    impl EventChannels for World {
        fn alloc_unbound(&mut self, remote: DomId) -> Result<EvtchnPort, PlatformError> {
            self.evt.alloc_unbound(remote)
        }
        fn bind_interdomain(
            &mut self,
            remote: DomId,
            port: EvtchnPort,
        ) -> Result<EvtchnPort, PlatformError> {
            self.evt.bind_interdomain(remote, port)
        }
        fn send(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
            self.evt.send(port)
        }
        fn close(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
            self.evt.close(port)
        }
        fn take_pending(&mut self, port: EvtchnPort) -> bool {
            self.evt.take_pending(port)
        }
        fn wait(
            &mut self,
            ports: &[EvtchnPort],
            deadline_ns: Option<u64>,
        ) -> Result<WaitOutcome, PlatformError> {
            assert!(ports.contains(&XS_PORT));
            let now = self.clock.get();
            self.be.borrow_mut().step(now);
            // Xenstore "fires" its port when a watch event is queued.
            let is_xs = self.store.has_watch_event(&format!("vdispl:{FE}"))
                || self.store.has_watch_event("shutdown");
            if is_xs || matches!(self.evt.wait(ports, None)?, WaitOutcome::Pending) {
                return Ok(WaitOutcome::Pending);
            }
            let due = self.be.borrow().next_due();
            let next = [deadline_ns, due].into_iter().flatten().min();
            match next {
                Some(t) => self.clock.set(t.max(now)),
                // A real guest would sleep until xenstore fires.
                None => {
                    self.idle_waits += 1;
                    self.clock.set(now + 100 * MS)
                }
            }
            Ok(WaitOutcome::DeadlinePassed)
        }
    }

    /// A frontend's world: xenstore with the device's nodes (one connector
    /// per resolution), fake grants/pages/event channels, the simulated
    /// backend and the clock its `wait` advances.
    struct Setup {
        store: MemStore,
        pages: FakePages,
        gnt: FakeGnttab,
        evt: FakeEvtchn,
        be: Rc<RefCell<SimBackend>>,
        clock: Rc<Cell<u64>>,
        world: World,
    }

    fn setup(resolutions: &[&str]) -> Setup {
        let store = MemStore::default();
        store.set(&format!("{FE}/backend"), BE);
        store.set(&format!("{FE}/backend-id"), "0");
        for (i, r) in resolutions.iter().enumerate() {
            store.set(&format!("{FE}/{i}/resolution"), r);
        }
        let pages = FakePages::default();
        let gnt = FakeGnttab::new(&pages);
        let evt = FakeEvtchn::default();
        let be = Rc::new(RefCell::new(SimBackend::new(
            Rc::new(store.clone()),
            &gnt,
            &evt,
            FE,
            BE,
        )));
        let clock = Rc::new(Cell::new(1_000 * MS));
        let world = World {
            evt: evt.clone(),
            be: be.clone(),
            store: store.clone(),
            clock: clock.clone(),
            idle_waits: 0,
        };
        Setup {
            store,
            pages,
            gnt,
            evt,
            be,
            clock,
            world,
        }
    }

    #[test]
    fn drives_to_flipping_and_shuts_down_on_the_control_node() {
        let Setup {
            store,
            mut pages,
            mut gnt,
            evt,
            be,
            clock,
            mut world,
        } = setup(&["32x24"]);
        let mut xs = store.clone();
        xs.watch("control/shutdown", "shutdown").unwrap();
        let mut fe = Frontend::new(FE, Options::default());
        let mut env = Env {
            evtchn: &mut world,
            gnttab: &mut gnt,
            pages: &mut pages,
            store: &mut xs,
        };
        let config = LoopConfig {
            extra_ports: &[XS_PORT],
            hook_tokens: &["shutdown"],
        };
        let trigger = store.clone();
        let stats = drive(
            &mut fe,
            &FakeClock(clock.clone()),
            &mut env,
            &config,
            &mut TestPattern,
            |fe, env, _now| {
                // The toolstack writes control/shutdown after 60 flips.
                let flips = fe.stats().connectors.first().map_or(0, |c| c.flips_done);
                if flips >= 60 && trigger.get("control/shutdown").is_none() {
                    trigger.set("control/shutdown", "poweroff");
                }
                if env.store.take_watch_event("shutdown").is_some()
                    && env
                        .store
                        .read(TxId::NONE, "control/shutdown")
                        .ok()
                        .flatten()
                        == Some("poweroff".into())
                {
                    return Control::Shutdown;
                }
                Control::Continue
            },
        )
        .unwrap();
        assert_eq!(fe.state(), XenbusState::Closed);
        assert!(be.borrow().flips_of(0).len() >= 60);
        // Roughly: one wake-up per deadline, response and frame-done each.
        assert!(stats.waits < 4 * 70, "{stats:?}");
        assert_eq!(
            (gnt.outstanding(), evt.outstanding(), pages.live()),
            (0, 0, 0)
        );
    }

    #[test]
    fn stops_after_the_flip_limit_without_waiting_for_a_wake_up() {
        // With `frames=N` the last frame-done leaves nothing to wake the loop:
        // the hook must see it at once, or a real guest would sleep forever.
        let Setup {
            store,
            mut pages,
            mut gnt,
            be,
            clock,
            mut world,
            ..
        } = setup(&["32x24", "48x16"]);
        let mut xs = store.clone();
        let options = Options {
            flip_limit: Some(30),
            ..Options::default()
        };
        let mut fe = Frontend::new(FE, options);
        let mut env = Env {
            evtchn: &mut world,
            gnttab: &mut gnt,
            pages: &mut pages,
            store: &mut xs,
        };
        let config = LoopConfig {
            extra_ports: &[XS_PORT],
            hook_tokens: &[],
        };
        drive(
            &mut fe,
            &FakeClock(clock.clone()),
            &mut env,
            &config,
            &mut TestPattern,
            |fe, _env, _now| {
                let s = fe.stats();
                if !s.connectors.is_empty() && s.connectors.iter().all(|c| c.flips_done >= 30) {
                    Control::Shutdown
                } else {
                    Control::Continue
                }
            },
        )
        .unwrap();
        assert_eq!(fe.state(), XenbusState::Closed);
        for conn in 0..2 {
            assert_eq!(be.borrow().flips_of(conn).len(), 30, "connector {conn}");
        }
        assert_eq!(world.idle_waits, 0, "slept with nothing to wake it");
    }
}
