//! Absolute-deadline frame pacing: deadline k = t0 + k * 1e9 / rate, no drift.
//!
//! The frontend, not the backend, decides when frames are shown: each
//! connector flips on a fixed schedule of absolute deadlines computed from the
//! clock reading `t0` at which it started. Deadlines are computed from the frame
//! index with exact integer arithmetic (`t0 + round(k * 1e9 / rate)`; at 60 Hz
//! `k = 1` is 16 666 667 ns), never by adding a rounded period to the previous
//! deadline, so they cannot drift. A deadline that cannot be met (no buffer is
//! ready, or the caller woke up too late) is skipped and counted; the schedule
//! itself never shifts.
//!
//! [`Pacer`] is pure: the caller passes `now` and whether a frame is ready, and
//! gets a [`PaceDecision`].

/// Nanoseconds per second.
const NS_PER_S: u128 = 1_000_000_000;

/// Default refresh rate.
pub const DEFAULT_RATE_HZ: u32 = 60;

/// Highest refresh rate accepted.
pub const MAX_RATE_HZ: u32 = 1000;

/// What to do at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaceDecision {
    /// Show the next frame now; it is for deadline `index`.
    Flip {
        /// The deadline index being served.
        index: u64,
    },
    /// Nothing to do before this absolute time.
    WaitUntil(u64),
}

/// A fixed-rate schedule of absolute deadlines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pacer {
    t0_ns: u64,
    rate_hz: u32,
    /// A deadline may still be served this long after it passed (wake-up latency).
    slack_ns: u64,
    /// The next deadline index not yet served or skipped.
    next_index: u64,
    /// Deadlines skipped so far.
    skipped: u64,
}

impl Pacer {
    /// A schedule starting at `t0_ns` (deadline 0 = `t0_ns`) at `rate_hz`
    /// (1..=[`MAX_RATE_HZ`]). A deadline may be served up to half a period late.
    pub fn try_new(t0_ns: u64, rate_hz: u32) -> Option<Pacer> {
        if !(1..=MAX_RATE_HZ).contains(&rate_hz) {
            return None;
        }
        let mut p = Pacer {
            t0_ns,
            rate_hz,
            slack_ns: 0,
            next_index: 0,
            skipped: 0,
        };
        p.slack_ns = p.deadline_ns(1).saturating_sub(t0_ns) / 2;
        Some(p)
    }

    /// Start serving at deadline `index` instead of 0 (earlier deadlines are
    /// not counted as skipped). Used when frame 0 is already on screen at t0.
    pub fn starting_at(mut self, index: u64) -> Pacer {
        self.next_index = index;
        self
    }

    /// Move every future deadline `shift_ns` later (a one-time phase change,
    /// e.g. to lock onto the display's vblank). Deadlines stay absolute and
    /// drift-free from the new origin; none is counted as skipped.
    pub fn delay_by(&mut self, shift_ns: u64) {
        self.t0_ns = self.t0_ns.saturating_add(shift_ns);
    }

    /// The period rounded to whole nanoseconds (`round(1e9 / rate)`).
    pub fn period_ns(&self) -> u64 {
        self.deadline_ns(1) - self.t0_ns
    }

    /// The absolute time of deadline `index` (saturating at `u64::MAX`).
    pub fn deadline_ns(&self, index: u64) -> u64 {
        let rate = u128::from(self.rate_hz);
        let offset = (u128::from(index) * NS_PER_S + rate / 2) / rate;
        u64::try_from(u128::from(self.t0_ns) + offset).unwrap_or(u64::MAX)
    }

    /// Refresh rate.
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Deadlines skipped so far (late frames).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next deadline index not yet served or skipped.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Decide at `now_ns` whether to flip. `is_ready` says a rendered frame is
    /// waiting and the previous flip has completed. A deadline may be served
    /// up to the slack after it; one that passes the slack unserved (nothing
    /// was ready in time, or the caller woke up too late) is skipped and
    /// counted. On [`PaceDecision::Flip`] the deadline counts as served; while
    /// a passed deadline still waits for a frame, the answer is to wait until
    /// its slack ends (or until the frame is ready, whichever comes first).
    pub fn decide(&mut self, now_ns: u64, is_ready: bool) -> PaceDecision {
        loop {
            let deadline = self.deadline_ns(self.next_index);
            if now_ns < deadline {
                return PaceDecision::WaitUntil(deadline);
            }
            if now_ns - deadline <= self.slack_ns {
                if !is_ready {
                    return PaceDecision::WaitUntil(deadline + self.slack_ns + 1);
                }
                let index = self.next_index;
                self.next_index += 1;
                return PaceDecision::Flip { index };
            }
            self.next_index += 1;
            self.skipped += 1;
        }
    }

    /// When [`Pacer::decide`] next has something to decide at `now_ns`: the
    /// next deadline, or the end of the slack of a deadline that has passed.
    pub fn next_wake_ns(&self, now_ns: u64) -> u64 {
        let deadline = self.deadline_ns(self.next_index);
        if now_ns < deadline {
            deadline
        } else {
            deadline + self.slack_ns + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_absolute_and_do_not_drift() {
        let p = Pacer::try_new(1_000, 60).unwrap();
        assert_eq!(p.deadline_ns(0), 1_000);
        assert_eq!(p.deadline_ns(1), 1_000 + 16_666_667);
        assert_eq!(p.deadline_ns(2), 1_000 + 33_333_333);
        assert_eq!(p.deadline_ns(60), 1_000 + 1_000_000_000);
        assert_eq!(
            p.deadline_ns(600 * 60 * 60),
            1_000 + 600 * 60 * 1_000_000_000
        );
        let p = Pacer::try_new(0, 144).unwrap();
        assert_eq!(p.deadline_ns(144_000), 1_000_000_000_000);
        assert_eq!(p.deadline_ns(u64::MAX), u64::MAX);
        let mut p = Pacer::try_new(0, 60).unwrap();
        assert_eq!(p.period_ns(), 16_666_667);
        p.delay_by(5);
        assert_eq!(p.deadline_ns(60), 1_000_000_005);
        assert!(Pacer::try_new(0, 0).is_none());
        let mut p = Pacer::try_new(0, 60).unwrap().starting_at(1);
        assert_eq!(p.decide(0, true), PaceDecision::WaitUntil(16_666_667));
        assert_eq!(p.skipped(), 0);
        assert!(Pacer::try_new(0, MAX_RATE_HZ + 1).is_none());
    }

    #[test]
    fn flips_on_time_and_skips_late_frames() {
        let mut p = Pacer::try_new(0, 60).unwrap();
        let slack = 8_333_333;
        assert_eq!(p.decide(0, true), PaceDecision::Flip { index: 0 });
        assert_eq!(p.decide(1, true), PaceDecision::WaitUntil(16_666_667));
        // Woken 2 ms late: still served.
        assert_eq!(p.decide(18_666_667, true), PaceDecision::Flip { index: 1 });
        // Not ready at deadline 2: wait for the frame until the slack ends...
        let d2 = 33_333_333;
        assert_eq!(p.decide(d2, false), PaceDecision::WaitUntil(d2 + slack + 1));
        assert_eq!(p.next_wake_ns(d2), d2 + slack + 1);
        // ...a frame ready 5 ms later still makes it (late)...
        assert_eq!(
            p.decide(d2 + 5_000_000, true),
            PaceDecision::Flip { index: 2 }
        );
        // ...but not at deadline 3: skipped once the slack is over.
        let d3 = 50_000_000;
        assert_eq!(
            p.decide(d3 + slack + 1, false),
            PaceDecision::WaitUntil(66_666_667)
        );
        assert_eq!(p.skipped(), 1);
        assert_eq!(p.next_wake_ns(d3 + slack + 1), 66_666_667);
        // Woken 12 ms after deadline 4 (more than half a period): skipped too.
        assert_eq!(
            p.decide(78_666_667, true),
            PaceDecision::WaitUntil(83_333_333)
        );
        assert_eq!(p.skipped(), 2);
        // Asleep for a second: every passed deadline counts, the schedule holds.
        assert_eq!(
            p.decide(1_070_000_000, true),
            PaceDecision::Flip { index: 64 }
        );
        assert_eq!(p.skipped(), 2 + 59);
        assert_eq!(
            p.decide(1_070_000_000, true),
            PaceDecision::WaitUntil(1_083_333_333)
        );
    }
}
