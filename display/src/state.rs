//! The xenbus state machine of the frontend, as a pure transition function.
//!
//! `xen/include/public/io/displif.h` ("Frontend and backend states") and
//! Linux's `displback_changed` define how the frontend reacts to the backend's
//! `state` node. [`on_backend_state`] maps (our state, backend state) to a
//! [`Step`] the device then carries out; it is table-tested below, one row per
//! transition. Recovery (backend restarted or gone) always tears everything
//! down and returns to Initialising, so a backend that comes back is served
//! with fresh rings and buffers.

use xen::abi::xenbus::XenbusState;

/// What the device must do after the backend's state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing (waiting for the other end, or already in the right state).
    Stay,
    /// Backend waits for our details: create rings and event channels, publish
    /// them, go Initialised.
    Publish,
    /// Backend connected to our rings: create the display, go Connected.
    Connect,
    /// Backend went away or restarted: release everything, go Initialising.
    Disconnect,
}

/// React to backend state `back` while we are in `front`.
pub fn on_backend_state(front: XenbusState, back: XenbusState) -> Step {
    use XenbusState as S;
    match (front, back) {
        (S::Initialising, S::InitWait) => Step::Publish,
        // Still Initialising: a backend in any other state is either not ready
        // yet or still tearing down our previous connection. Wait.
        (S::Initialising, _) => Step::Stay,
        (S::Initialised, S::Connected) => Step::Connect,
        (S::Initialised, S::InitWait) => Step::Stay,
        // A backend that has not announced a state change we care about.
        (S::Initialised | S::Connected, S::Reconfiguring | S::Reconfigured) => Step::Stay,
        // Backend went away (Closing, Closed, Unknown) or restarted
        // (Initialising, or InitWait while we are connected).
        (S::Initialised, _) => Step::Disconnect,
        (S::Connected, S::Connected) => Step::Stay,
        (S::Connected, _) => Step::Disconnect,
        // Closing/Closed (shutdown or a fatal configuration error) and the
        // states a frontend never enters itself: the device ignores the backend.
        _ => Step::Stay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use XenbusState as S;

    #[test]
    fn transition_table() {
        let rows = [
            (S::Initialising, S::Unknown, Step::Stay),
            (S::Initialising, S::Initialising, Step::Stay),
            (S::Initialising, S::InitWait, Step::Publish),
            (S::Initialising, S::Connected, Step::Stay),
            (S::Initialising, S::Closing, Step::Stay),
            (S::Initialising, S::Closed, Step::Stay),
            (S::Initialised, S::InitWait, Step::Stay),
            (S::Initialised, S::Connected, Step::Connect),
            (S::Initialised, S::Closing, Step::Disconnect),
            (S::Initialised, S::Closed, Step::Disconnect),
            (S::Initialised, S::Unknown, Step::Disconnect),
            (S::Initialised, S::Initialising, Step::Disconnect),
            (S::Initialised, S::Reconfiguring, Step::Stay),
            (S::Connected, S::Connected, Step::Stay),
            (S::Connected, S::InitWait, Step::Disconnect),
            (S::Connected, S::Initialising, Step::Disconnect),
            (S::Connected, S::Closing, Step::Disconnect),
            (S::Connected, S::Closed, Step::Disconnect),
            (S::Connected, S::Unknown, Step::Disconnect),
            (S::Connected, S::Reconfigured, Step::Stay),
            (S::Closing, S::Closed, Step::Stay),
            (S::Closed, S::InitWait, Step::Stay),
            (S::Closed, S::Connected, Step::Stay),
        ];
        for (front, back, step) in rows {
            assert_eq!(on_backend_state(front, back), step, "{front} / {back}");
        }
    }

    #[test]
    fn every_pair_is_defined_and_only_initialising_publishes() {
        for front in S::ALL {
            for back in S::ALL {
                let step = on_backend_state(front, back);
                if step == Step::Publish {
                    assert_eq!((front, back), (S::Initialising, S::InitWait));
                }
                if step == Step::Connect {
                    assert_eq!((front, back), (S::Initialised, S::Connected));
                }
            }
        }
    }
}
