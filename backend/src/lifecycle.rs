//! The backend's xenbus state machine, as a pure function.
//!
//! From `io/displif.h` ("Backend/frontend state machine") and Linux's
//! `displback_changed`: the backend waits in InitWait until the frontend has
//! published its rings (Initialised or Connected), then connects. When the
//! frontend closes or restarts (Closing, Closed, Initialising, Unknown) the
//! backend tears everything down and returns to InitWait, ready for the next
//! connection. After an error (bad configuration, corrupt ring) the backend
//! shows Closed until the frontend resets (Initialising, Closing, Closed).

use xen::abi::xenbus::XenbusState;

/// Where the backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// InitWait published; no connection.
    AwaitingFrontend,
    /// Connected published; rings mapped.
    Connected,
    /// Closed published after an error; waiting for the frontend to reset.
    Failed,
}

/// What to do about a frontend state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Stay,
    /// Read the configuration, map, bind, publish Connected.
    Connect,
    /// Tear down, publish InitWait.
    Disconnect,
    /// Publish InitWait again after a failure.
    Reset,
}

/// The step for `frontend`'s state in `phase`.
pub fn step(phase: Phase, frontend: XenbusState) -> Step {
    use XenbusState as S;
    match (phase, frontend) {
        (Phase::AwaitingFrontend, S::Initialised | S::Connected) => Step::Connect,
        (Phase::Connected, S::Unknown | S::Initialising | S::InitWait | S::Closing | S::Closed) => {
            Step::Disconnect
        }
        (Phase::Failed, S::Unknown | S::Initialising | S::Closing | S::Closed) => Step::Reset,
        _ => Step::Stay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use XenbusState as S;

    #[test]
    fn every_transition() {
        let table: [(Phase, &[(S, Step)]); 3] = [
            (
                Phase::AwaitingFrontend,
                &[
                    (S::Unknown, Step::Stay),
                    (S::Initialising, Step::Stay),
                    (S::InitWait, Step::Stay),
                    (S::Initialised, Step::Connect),
                    (S::Connected, Step::Connect),
                    (S::Closing, Step::Stay),
                    (S::Closed, Step::Stay),
                    (S::Reconfiguring, Step::Stay),
                    (S::Reconfigured, Step::Stay),
                ],
            ),
            (
                Phase::Connected,
                &[
                    (S::Unknown, Step::Disconnect),
                    (S::Initialising, Step::Disconnect),
                    (S::InitWait, Step::Disconnect),
                    (S::Initialised, Step::Stay),
                    (S::Connected, Step::Stay),
                    (S::Closing, Step::Disconnect),
                    (S::Closed, Step::Disconnect),
                    (S::Reconfiguring, Step::Stay),
                    (S::Reconfigured, Step::Stay),
                ],
            ),
            (
                Phase::Failed,
                &[
                    (S::Unknown, Step::Reset),
                    (S::Initialising, Step::Reset),
                    (S::InitWait, Step::Stay),
                    (S::Initialised, Step::Stay),
                    (S::Connected, Step::Stay),
                    (S::Closing, Step::Reset),
                    (S::Closed, Step::Reset),
                    (S::Reconfiguring, Step::Stay),
                    (S::Reconfigured, Step::Stay),
                ],
            ),
        ];
        for (phase, rows) in table {
            assert_eq!(rows.len(), S::ALL.len());
            for (state, expected) in rows {
                assert_eq!(
                    step(phase, *state),
                    *expected,
                    "{phase:?} + frontend {state}"
                );
            }
        }
    }
}
