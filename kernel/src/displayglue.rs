//! Pure parts of the display glue (`main.rs`'s `display` module), host-tested.
//!
//! - [`XenstoreAwareEvents`]: event channels whose `wait` consumes the
//!   xenstore port's pending bit, so `xen_display::driver::drive` never spins.
//! - [`scene_for`]: the `demo=` name to a `demos::Scene`, or an error that
//!   lists the valid names.

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use demos::Scene;
use xen::platform::{EventChannels, PlatformError, WaitOutcome};
use xen::types::{DomId, EvtchnPort};

/// Event channels whose `wait` also consumes xenstore's pending bit.
///
/// Nothing else clears that bit while the display loop runs (the xenstore
/// client only reads the ring), so a plain wait would return at once forever
/// after the first watch event. Here a pending xenstore bit is cleared and
/// reported as `Pending` without sleeping: the driver loops, and its next
/// `has_watch_event` reads the ring. An event that arrives after the clear
/// sets the bit again, so none is lost. Everything else is passed through.
#[derive(Debug)]
pub struct XenstoreAwareEvents<E> {
    /// The real event channels.
    pub inner: E,
    /// Xenstore's port.
    pub xenstore_port: EvtchnPort,
}

impl<E: EventChannels> EventChannels for XenstoreAwareEvents<E> {
    fn alloc_unbound(&mut self, remote: DomId) -> Result<EvtchnPort, PlatformError> {
        self.inner.alloc_unbound(remote)
    }
    fn bind_interdomain(
        &mut self,
        remote: DomId,
        port: EvtchnPort,
    ) -> Result<EvtchnPort, PlatformError> {
        self.inner.bind_interdomain(remote, port)
    }
    fn send(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        self.inner.send(port)
    }
    fn close(&mut self, port: EvtchnPort) -> Result<(), PlatformError> {
        self.inner.close(port)
    }
    fn take_pending(&mut self, port: EvtchnPort) -> bool {
        self.inner.take_pending(port)
    }
    fn wait(
        &mut self,
        ports: &[EvtchnPort],
        deadline_ns: Option<u64>,
    ) -> Result<WaitOutcome, PlatformError> {
        if ports.contains(&self.xenstore_port) && self.inner.take_pending(self.xenstore_port) {
            return Ok(WaitOutcome::Pending);
        }
        self.inner.wait(ports, deadline_ns)
    }
}

/// The scene for `demo=NAME` (`None`: no `demo=`, the built-in test pattern).
/// An unknown name is an error naming the valid ones.
pub fn scene_for(name: Option<&str>) -> Result<Option<Scene>, String> {
    match name {
        None => Ok(None),
        Some(n) => Scene::from_name(n).map(Some).map_err(|_| {
            let names: Vec<&str> = Scene::names().collect();
            alloc::format!("unknown demo `{n}`; valid: {}", names.join(", "))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Pending bits and a record of the waits that reached the platform.
    #[derive(Default)]
    struct Fake {
        pending: BTreeSet<u32>,
        waits: usize,
    }

    impl EventChannels for Fake {
        fn alloc_unbound(&mut self, _: DomId) -> Result<EvtchnPort, PlatformError> {
            Ok(EvtchnPort(7))
        }
        fn bind_interdomain(
            &mut self,
            _: DomId,
            p: EvtchnPort,
        ) -> Result<EvtchnPort, PlatformError> {
            Ok(p)
        }
        fn send(&mut self, _: EvtchnPort) -> Result<(), PlatformError> {
            Ok(())
        }
        fn close(&mut self, _: EvtchnPort) -> Result<(), PlatformError> {
            Ok(())
        }
        fn take_pending(&mut self, p: EvtchnPort) -> bool {
            self.pending.remove(&p.0)
        }
        fn wait(
            &mut self,
            ports: &[EvtchnPort],
            _: Option<u64>,
        ) -> Result<WaitOutcome, PlatformError> {
            self.waits += 1;
            Ok(if ports.iter().any(|p| self.pending.contains(&p.0)) {
                WaitOutcome::Pending
            } else {
                WaitOutcome::DeadlinePassed
            })
        }
    }

    const XS: EvtchnPort = EvtchnPort(3);
    const RING: EvtchnPort = EvtchnPort(9);

    #[test]
    fn xenstore_bit_is_consumed_once_and_other_ports_pass_through() {
        let mut ev = XenstoreAwareEvents {
            inner: Fake::default(),
            xenstore_port: XS,
        };
        ev.inner.pending.insert(XS.0);
        // A pending xenstore bit wakes once, without sleeping, and is cleared...
        assert_eq!(ev.wait(&[RING, XS], Some(1)), Ok(WaitOutcome::Pending));
        assert_eq!(ev.inner.waits, 0);
        assert!(!ev.inner.pending.contains(&XS.0));
        // ...so the next wait really sleeps (a plain wait would spin forever).
        assert_eq!(
            ev.wait(&[RING, XS], Some(1)),
            Ok(WaitOutcome::DeadlinePassed)
        );
        assert_eq!(ev.inner.waits, 1);
        // Other ports' bits are left to their owners.
        ev.inner.pending.insert(RING.0);
        assert_eq!(ev.wait(&[RING, XS], Some(1)), Ok(WaitOutcome::Pending));
        assert!(ev.inner.pending.contains(&RING.0));
        // Without xenstore in the set its bit is not touched.
        ev.inner.pending.insert(XS.0);
        assert_eq!(ev.wait(&[RING], Some(1)), Ok(WaitOutcome::Pending));
        assert!(ev.inner.pending.contains(&XS.0));
    }

    #[test]
    fn demo_names() {
        assert_eq!(scene_for(None), Ok(None));
        assert_eq!(scene_for(Some("plasma")), Ok(Some(Scene::Plasma)));
        let e = scene_for(Some("nosuch")).unwrap_err();
        assert!(e.starts_with("unknown demo `nosuch`; valid: "), "{e}");
        for name in Scene::names() {
            assert!(e.contains(name), "{e}");
        }
    }
}
