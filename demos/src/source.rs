//! [`DemoSource`]: a demo scene as the frontend's `FrameSource`.
//!
//! The kernel hands this to `xen_display::driver::drive` instead of the built-in test pattern:
//! `DemoSource::new(scene, fps, &clock)`. Each frame it draws the scene with
//! `xen_display::FrameTarget::framebuffer` (a private packed buffer the frontend copies into the
//! granted display buffer) at the connector's resolution.
//!
//! The `stats` scene needs figures. A `FrameSource` sees only render calls, so the source measures
//! them itself per connector ([`FrameHistory`]): it timestamps every render with the clock; in
//! steady state one frame is rendered per flip, so the intervals between renders are the flip
//! intervals. An interval spanning `k ≥ 2` frame periods (rounded to nearest) means `k − 1`
//! deadlines were skipped: these are counted as late frames. "Flips" is the number of frames
//! rendered on the connector.

extern crate alloc;

use alloc::vec::Vec;

use xen::platform::Clock;
use xen_display::{FrameSource, FrameTarget};

use crate::{render, FrameStats, Scene, SceneInput};

/// Frame intervals kept per connector (4 s at 60 fps).
pub const HISTORY_LEN: usize = 240;

/// Render timing of one connector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameHistory {
    last_ns: Option<u64>,
    intervals_us: Vec<u32>,
    frames: u64,
    late_frames: u64,
}

impl FrameHistory {
    /// Records a render at `now_ns` for a schedule of `period_ns` per frame (≥ 1).
    pub fn record(&mut self, now_ns: u64, period_ns: u64) {
        let period_ns = period_ns.max(1);
        if let Some(last) = self.last_ns {
            let dt = now_ns.saturating_sub(last);
            if self.intervals_us.len() == HISTORY_LEN {
                self.intervals_us.remove(0);
            }
            self.intervals_us
                .push(u32::try_from(dt / 1000).unwrap_or(u32::MAX));
            let periods = dt.saturating_add(period_ns / 2) / period_ns;
            self.late_frames += periods.saturating_sub(1);
        }
        self.last_ns = Some(now_ns);
        self.frames += 1;
    }

    /// Recent intervals between renders in microseconds, oldest first.
    pub fn intervals_us(&self) -> &[u32] {
        &self.intervals_us
    }

    /// Rate over the recorded intervals in millihertz (0 before two renders).
    pub fn measured_fps_milli(&self) -> u32 {
        let total_us: u64 = self.intervals_us.iter().map(|&i| u64::from(i)).sum();
        (self.intervals_us.len() as u64 * 1_000_000_000)
            .checked_div(total_us)
            .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
    }

    /// The figures for the `stats` scene.
    pub fn stats(&self) -> FrameStats<'_> {
        FrameStats {
            flips_completed: self.frames,
            late_frames: self.late_frames,
            measured_fps_milli: self.measured_fps_milli(),
            frame_intervals_us: &self.intervals_us,
        }
    }
}

/// A demo scene drawn on every connector, each at its own resolution.
pub struct DemoSource<'a> {
    scene: Scene,
    fps: u32,
    clock: &'a dyn Clock,
    connectors: Vec<FrameHistory>,
}

/// Connectors tracked (displif devices have a handful; a bogus index is not tracked).
const MAX_CONNECTORS: usize = 64;

impl<'a> DemoSource<'a> {
    /// Shows `scene` animated for `fps` frames per second (0 is treated as 1), timing renders
    /// with `clock`.
    pub fn new(scene: Scene, fps: u32, clock: &'a dyn Clock) -> Self {
        Self {
            scene,
            fps: fps.max(1),
            clock,
            connectors: Vec::new(),
        }
    }

    /// The scene shown.
    pub fn scene(&self) -> Scene {
        self.scene
    }

    /// Render timing of connector `index`, if it has rendered.
    pub fn history(&self, index: usize) -> Option<&FrameHistory> {
        self.connectors.get(index)
    }
}

impl FrameSource for DemoSource<'_> {
    fn render(&mut self, connector: usize, frame: u64, target: &mut FrameTarget<'_>) {
        let period_ns = 1_000_000_000 / u64::from(self.fps);
        let now_ns = self.clock.now_ns();
        let empty = FrameHistory::default();
        let history = if connector < MAX_CONNECTORS {
            if self.connectors.len() <= connector {
                self.connectors
                    .resize(connector + 1, FrameHistory::default());
            }
            let history = &mut self.connectors[connector];
            history.record(now_ns, period_ns);
            &*history
        } else {
            &empty
        };
        let input = SceneInput {
            fps: self.fps,
            stats: history.stats(),
        };
        // A zero-sized mode has nothing to draw; the frontend never configures one.
        if let Ok(mut fb) = target.framebuffer() {
            let Ok(()) = render(self.scene, frame, &mut fb, &input);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: u64 = 16_666_667;

    #[test]
    fn intervals_rate_and_late_frames() {
        let mut h = FrameHistory::default();
        assert_eq!(h.measured_fps_milli(), 0);
        let mut t = 1_000_000;
        for _ in 0..10 {
            h.record(t, PERIOD);
            t += PERIOD;
        }
        assert_eq!(h.intervals_us().len(), 9);
        assert!(h.intervals_us().iter().all(|&i| i == 16_666));
        assert_eq!(h.stats().late_frames, 0);
        assert!((h.measured_fps_milli() as i64 - 60_002).abs() <= 2);
        // One deadline skipped (two periods), then two skipped (three periods).
        h.record(t - PERIOD + 2 * PERIOD, PERIOD);
        t += 2 * PERIOD;
        h.record(t + 2 * PERIOD, PERIOD);
        assert_eq!(h.stats().late_frames, 3);
        assert_eq!(h.stats().flips_completed, 12);
        // A slightly slow frame (1.4 periods) is not a skipped deadline.
        let last = t + 2 * PERIOD;
        h.record(last + PERIOD * 14 / 10, PERIOD);
        assert_eq!(h.stats().late_frames, 3);
    }

    #[test]
    fn history_is_bounded_and_clock_glitches_are_safe() {
        let mut h = FrameHistory::default();
        for i in 0..1000u64 {
            h.record(i * PERIOD, PERIOD);
        }
        assert_eq!(h.intervals_us().len(), HISTORY_LEN);
        // A clock going backwards, a huge gap and a zero period: no panic.
        h.record(0, PERIOD);
        h.record(u64::MAX, 0);
        assert_eq!(*h.intervals_us().last().unwrap(), u32::MAX);
    }
}
