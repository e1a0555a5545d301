//! The frontend against the simulated backend, driven by a fake clock.
//!
//! A [`Rig`] runs the loop the kernel runs: poll the frontend, let the
//! backend react, then either poll again at once (a port or the xenstore
//! watch is pending) or jump the clock to the earliest wake-up time.

use std::format;
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

use xen::abi::displif::{
    XENDISPL_OP_DBUF_CREATE, XENDISPL_OP_DBUF_DESTROY, XENDISPL_OP_FB_ATTACH,
    XENDISPL_OP_FB_DETACH, XENDISPL_OP_GET_EDID, XENDISPL_OP_PG_FLIP, XENDISPL_OP_SET_CONFIG,
};
use xen::abi::xenbus::XenbusState;
use xen::platform::{EventChannels, WaitOutcome};

use crate::config::Resolution;
use crate::frontend::{Env, Frontend, FrontendError, Options, PollResult};
use crate::pattern::{pattern_row, TestPattern};
use crate::sim_backend::{frame_hash, EdidMode, SimBackend};
use crate::testing::{FakeEvtchn, FakeGnttab, FakePage, FakePages, MemStore};

const MS: u64 = 1_000_000;
const FE: &str = "device/vdispl/0";
const BE: &str = "/local/domain/0/backend/vdispl/5/0";

struct Rig {
    fe: Frontend<FakePage>,
    be: SimBackend,
    pages: FakePages,
    gnt: FakeGnttab,
    evt: FakeEvtchn,
    store: MemStore,
    now: u64,
    last: PollResult,
    polls: u64,
}

impl Rig {
    fn new(nodes: &[(&str, &str)], options: Options) -> Rig {
        let store = MemStore::default();
        store.set(&format!("{FE}/backend"), BE);
        store.set(&format!("{FE}/backend-id"), "0");
        for (k, v) in nodes {
            store.set(&format!("{FE}/{k}"), v);
        }
        let pages = FakePages::default();
        let gnt = FakeGnttab::new(&pages);
        let evt = FakeEvtchn::default();
        let be = SimBackend::new(Rc::new(store.clone()), &gnt, &evt, FE, BE);
        Rig {
            fe: Frontend::new(FE, options),
            be,
            pages,
            gnt,
            evt,
            store,
            now: 1_000 * MS,
            last: PollResult {
                wake_at_ns: None,
                is_finished: false,
            },
            polls: 0,
        }
    }

    fn two_connectors() -> Rig {
        Rig::new(
            &[("0/resolution", "64x48"), ("1/resolution", "40x30")],
            Options::default(),
        )
    }

    fn poll(&mut self) {
        let mut env = Env {
            evtchn: &mut self.evt,
            gnttab: &mut self.gnt,
            pages: &mut self.pages,
            store: &mut self.store,
        };
        self.last = self.fe.poll(self.now, &mut env, &mut TestPattern);
        self.polls += 1;
    }

    /// One iteration of the kernel's loop.
    fn iterate(&mut self) {
        self.poll();
        self.be.step(self.now);
        let ports = self.fe.ports();
        let is_pending = matches!(self.evt.wait(&ports, None), Ok(WaitOutcome::Pending))
            || self.store.pending_events(self.fe.watch_token()) > 0;
        if is_pending {
            return;
        }
        let next = [self.last.wake_at_ns, self.be.next_due()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + MS);
        self.now = next.max(self.now);
    }

    /// Iterate until `done` or `limit_ns` of simulated time passed.
    fn run_until(&mut self, limit_ns: u64, mut done: impl FnMut(&Rig) -> bool) -> bool {
        let end = self.now + limit_ns;
        let mut spins = 0;
        while self.now < end {
            if done(self) {
                return true;
            }
            let before = self.now;
            self.iterate();
            spins = if self.now == before { spins + 1 } else { 0 };
            assert!(
                spins < 10_000,
                "stuck at {} ns: {:?}, backend {}, {:?}",
                self.now,
                self.fe,
                self.be.state,
                self.last
            );
            if self.last.is_finished {
                return done(self);
            }
        }
        done(self)
    }

    fn run_for(&mut self, ns: u64) {
        self.run_until(ns, |_| false);
    }

    fn flips(&self, conn: usize) -> usize {
        self.be.flips_of(conn).len()
    }

    /// Nothing outstanding: no grants, no mappings, no ports, no pages.
    fn assert_nothing_held(&self) {
        assert_eq!(self.gnt.outstanding(), 0, "grants");
        assert_eq!(self.gnt.foreign_mapped(), 0, "foreign maps");
        assert_eq!(self.evt.outstanding(), 0, "ports");
        assert_eq!(self.pages.live(), 0, "pages");
    }
}

/// The pattern's hash for frame `n` at `w`x`h`, rendered on the "host".
fn expected_hash(n: u64, w: u32, h: u32) -> u64 {
    let mut px = vec![0u32; (w * h) as usize];
    for y in 0..h {
        pattern_row(
            n,
            w,
            h,
            y,
            &mut px[(y * w) as usize..((y + 1) * w) as usize],
        );
    }
    frame_hash(px.into_iter())
}

#[test]
fn connects_and_flips_two_connectors_at_60hz_with_exact_frames() {
    let mut rig = Rig::two_connectors();
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    assert_eq!(rig.fe.state(), XenbusState::Connected);
    assert_eq!(rig.be.frontend_version.as_deref(), Some("2"));
    // No EDID served (GET_EDID refused): the configured resolutions hold.
    assert_eq!(
        rig.fe.stats().connectors[0].mode,
        Resolution::try_new(64, 48)
    );
    assert_eq!(
        rig.fe.stats().connectors[1].mode,
        Resolution::try_new(40, 30)
    );
    rig.run_until(5_000 * MS, |r| r.flips(0) >= 120 && r.flips(1) >= 120);
    for conn in 0..2 {
        let flips = rig.be.flips_of(conn);
        // Frames are 1, 2, 3, ... with the exact pixels of the pattern.
        for (k, f) in flips.iter().enumerate() {
            let n = k as u64 + 1;
            assert_eq!(u64::from(f.marker), n, "connector {conn} flip {k}");
            assert_eq!(f.hash, expected_hash(n, f.width, f.height));
        }
        // After the one-time phase shift that follows the first frame-done,
        // flip times sit on an absolute 60 Hz grid.
        let t1 = flips[1].at_ns;
        for (k, f) in flips.iter().enumerate().skip(1) {
            let ideal = t1 + ((k as u64 - 1) * 1_000_000_000 + 30) / 60;
            assert!(
                f.at_ns.abs_diff(ideal) <= 1,
                "flip {k} at {} not {ideal}",
                f.at_ns
            );
        }
        // This backend sends frame-done 2 ms after a flip; to lead its
        // "vblank" by 4 ms the schedule moved (2 - 4) mod 16.667 ms later.
        let d = flips[1].at_ns - flips[0].at_ns;
        assert!(d.abs_diff(16_666_667 + 14_666_667) <= 1, "{d}");
        let s = &rig.fe.stats().connectors[conn];
        // The first frame-done came with the first flip's event (2 ms later).
        assert_eq!(s.first_flip_done_ns, Some(flips[0].at_ns + 2 * MS));
        assert_eq!(s.skipped_deadlines, 0);
        assert_eq!(s.event_id_gaps, 0);
        assert_eq!(s.frame_done_timeouts, 0);
    }
    // Each SET_CONFIG showed frame 0.
    let configs: Vec<_> = rig.be.flips.iter().filter(|f| f.is_set_config).collect();
    assert_eq!(configs.len(), 2);
    assert!(configs.iter().all(|f| f.marker == 0));
    assert!(rig.be.violations.is_empty(), "{:?}", rig.be.violations);
    assert_eq!(rig.fe.stats().unexpected_responses, 0);
    // The backend re-arms req_event after each request, so every request
    // must have come with a kick.
    assert_eq!(rig.be.kicks, rig.be.requests.values().sum::<usize>());
}

#[test]
fn triple_buffering_draws_during_the_flip_and_never_into_a_buffer_in_use() {
    // Frame-done 10 ms after each flip: with three buffers the next frame is
    // drawn while the flip is in flight (a third buffer is free), yet no
    // buffer on screen or being flipped is ever written (the simulated
    // backend re-hashes those at every step), and frames stay exact.
    let options = Options {
        buffers: 3,
        ..Options::default()
    };
    let mut rig = Rig::new(
        &[("0/resolution", "64x48"), ("1/resolution", "40x30")],
        options,
    );
    rig.be.knobs.frame_done_delay_ns = 10 * MS;
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    let mut drawn_in_flight = 0;
    rig.run_until(5_000 * MS, |r| {
        let s = &r.fe.stats().connectors[0];
        // Frame 0 (SET_CONFIG) + flips done + the one in flight + one ready.
        if s.flips_sent > s.flips_done && s.frames_rendered == s.flips_sent + 2 {
            drawn_in_flight += 1;
        }
        r.flips(0) >= 120 && r.flips(1) >= 120
    });
    assert!(drawn_in_flight > 100, "{drawn_in_flight}");
    assert!(rig.be.violations.is_empty(), "{:?}", rig.be.violations);
    for conn in 0..2 {
        for (k, f) in rig.be.flips_of(conn).iter().enumerate() {
            let n = k as u64 + 1;
            assert_eq!(u64::from(f.marker), n, "connector {conn} flip {k}");
            assert_eq!(f.hash, expected_hash(n, f.width, f.height));
        }
        assert_eq!(rig.fe.stats().connectors[conn].skipped_deadlines, 0);
    }
    // Three buffers per connector were created.
    assert_eq!(
        rig.be.requests.get(&XENDISPL_OP_DBUF_CREATE).copied(),
        Some(6)
    );
}

#[test]
fn flip_limit_stops_every_connector_at_exactly_that_many_flips() {
    // Connector 1 is slower to draw for (larger), and a backend error makes
    // one flip go again: each connector still ends at exactly 25 flips done.
    let options = Options {
        flip_limit: Some(25),
        ..Options::default()
    };
    let mut rig = Rig::new(
        &[("0/resolution", "32x32"), ("1/resolution", "200x100")],
        options,
    );
    rig.run_until(100 * MS, |r| r.fe.is_running());
    rig.be.knobs.fail_op = Some((XENDISPL_OP_PG_FLIP, -22, 1));
    rig.run_until(3000 * MS, |r| {
        r.fe.stats().connectors.iter().all(|c| c.flips_done >= 25)
    });
    // Well past the point where more would have been sent.
    rig.run_until(1000 * MS, |_| false);
    for conn in 0..2 {
        let s = &rig.fe.stats().connectors[conn];
        assert_eq!(s.flips_done, 25, "connector {conn}: {s:?}");
        // The simulated backend records refused flips too.
        assert_eq!(
            rig.be.flips_of(conn).len() as u64,
            25 + s.flip_errors,
            "connector {conn}"
        );
        assert_eq!(s.flips_sent, 25 + s.flip_errors, "connector {conn}");
    }
    assert_eq!(
        rig.fe
            .stats()
            .connectors
            .iter()
            .map(|c| c.flip_errors)
            .sum::<u64>(),
        1
    );
    // Connectors done flipping do not ask for wake-ups.
    assert_eq!(rig.last.wake_at_ns, None);
}

#[test]
fn locks_onto_the_display_vblank_and_holds_60hz_at_any_phase() {
    for phase_ms in [0u64, 3, 9, 16] {
        let mut rig = Rig::new(&[("0/resolution", "32x32")], Options::default());
        rig.be.knobs.vblank_period_ns = Some(16_666_667);
        rig.be.knobs.vblank_origin_ns = phase_ms * MS;
        rig.run_until(100 * MS, |r| r.fe.is_running());
        rig.run_until(3000 * MS, |r| r.flips(0) >= 150);
        let flips = rig.be.flips_of(0);
        let s = &rig.fe.stats().connectors[0];
        assert_eq!(s.skipped_deadlines, 0, "phase {phase_ms} ms");
        // From the second flip on the intervals are exactly one period.
        for w in flips[1..].windows(2) {
            let d = w[1].at_ns - w[0].at_ns;
            assert!(d.abs_diff(16_666_667) <= 1, "phase {phase_ms}: {d}");
        }
        let mean = (flips[149].at_ns - flips[1].at_ns) as f64 / 148.0;
        assert!((mean - 16_666_666.7).abs() < 1.0, "{mean}");
        // And each flip leads the next vblank by the configured 4 ms.
        let origin = rig.be.knobs.vblank_origin_ns;
        for f in &flips[1..] {
            let vblank = origin + (f.at_ns - origin).div_ceil(16_666_667) * 16_666_667;
            assert!(
                // The simulated display's grid uses a rounded period.
                (vblank - f.at_ns).abs_diff(4 * MS) <= 100,
                "phase {phase_ms}: lead {} ns",
                vblank - f.at_ns
            );
        }
    }
}

#[test]
fn configurable_rate_and_late_frames_are_skipped_and_counted() {
    let mut rig = Rig::new(
        &[("0/resolution", "32x32")],
        Options {
            rate_hz: 30,
            ..Options::default()
        },
    );
    rig.run_until(100 * MS, |r| r.fe.is_running());
    // Frame-done 40 ms after each flip: slower than a 33.3 ms frame. A flip
    // waits for the previous one's frame-done and goes out late (within half
    // a period of its deadline) until the lateness exceeds that; then the
    // deadline is skipped.
    rig.be.knobs.frame_done_delay_ns = 40 * MS;
    let start = rig.now;
    let before = rig.fe.stats().connectors[0].clone();
    rig.run_for(2000 * MS);
    let s = &rig.fe.stats().connectors[0];
    let skipped = s.skipped_deadlines - before.skipped_deadlines;
    let sent = s.flips_sent - before.flips_sent;
    // Every deadline of the 2 s (60 at 30 Hz) was either served or skipped.
    assert!((sent + skipped).abs_diff(60) <= 1, "{sent} + {skipped}");
    assert!((10..=20).contains(&skipped), "{skipped}");
    let flips: Vec<_> = rig
        .be
        .flips_of(0)
        .into_iter()
        .filter(|f| f.at_ns > start + 100 * MS)
        .collect();
    for w in flips.windows(2) {
        let d = w[1].at_ns - w[0].at_ns;
        assert!(
            d >= 40 * MS,
            "a buffer was reused before its frame-done: {d}"
        );
        assert!(d <= 2 * 33_333_334 + 16_666_667, "{d}");
    }
    // Frames stay consecutive even when deadlines are skipped.
    let markers: Vec<u32> = rig.be.flips_of(0).iter().map(|f| f.marker).collect();
    assert!(markers.iter().enumerate().all(|(k, &m)| m == k as u32 + 1));
    // Those skips were late frames (frame-done too late), not late wake-ups.
    assert_eq!(s.skipped_while_ready, 0);
    // Now frames are on time but the guest is not run for 100 ms (three
    // periods): the deadlines it slept through are skipped with a frame ready.
    rig.be.knobs.frame_done_delay_ns = 2 * MS;
    rig.run_for(500 * MS);
    let before = rig.fe.stats().connectors[0].clone();
    rig.now += 100 * MS;
    rig.run_for(200 * MS);
    let s = &rig.fe.stats().connectors[0];
    let late_wake = s.skipped_while_ready - before.skipped_while_ready;
    assert!((2..=3).contains(&late_wake), "{late_wake}");
    assert_eq!(s.skipped_deadlines - before.skipped_deadlines, late_wake);
}

#[test]
fn never_reuses_a_buffer_before_frame_done() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.run_until(100 * MS, |r| r.fe.is_running());
    // The frame-done for the next flip never comes.
    rig.be.knobs.drop_frame_done = 1;
    let before = rig.flips(0);
    rig.run_for(3000 * MS);
    // One flip went out; no second flip (it would need the buffer still shown).
    assert_eq!(rig.flips(0), before + 1);
    assert_eq!(rig.fe.stats().connectors[0].frame_done_timeouts, 0);
    // After 3100 ms the frame-done timeout releases it and flipping resumes.
    rig.run_for(400 * MS);
    assert_eq!(rig.fe.stats().connectors[0].frame_done_timeouts, 1);
    rig.run_for(200 * MS);
    assert!(rig.flips(0) > before + 5);
    let fbs: Vec<u64> = rig.be.flips_of(0).iter().map(|f| f.fb_cookie).collect();
    for w in fbs.windows(2) {
        assert_ne!(w[0], w[1], "double buffering alternates");
    }
}

#[test]
fn wrong_ids_and_operations_are_ignored_and_the_wait_is_bounded() {
    let mut rig = Rig::two_connectors();
    rig.run_until(100 * MS, |r| r.fe.is_running());
    for (round, wrong_id) in [(1, true), (2, false)] {
        if wrong_id {
            rig.be.knobs.wrong_id_once = true;
        } else {
            rig.be.knobs.wrong_op_once = true;
        }
        let t = rig.now;
        // The bad response is ignored; the real one never comes; after 3000 ms
        // the request times out and the connection is reset and rebuilt.
        assert!(rig.run_until(4000 * MS, |r| r.fe.stats().request_timeouts == round));
        assert_eq!(rig.fe.stats().unexpected_responses, round);
        assert!(rig.now - t >= 3000 * MS && rig.now - t <= 3020 * MS);
        assert!(rig.run_until(3000 * MS, |r| r.fe.is_running()));
    }
    let flips = rig.flips(0);
    rig.run_for(200 * MS);
    assert!(rig.flips(0) >= flips + 11);
}

#[test]
fn event_id_gaps_are_detected_and_resynchronised() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.run_until(100 * MS, |r| r.fe.is_running());
    rig.be.knobs.event_id_jump = 5;
    rig.run_for(500 * MS);
    let s = &rig.fe.stats().connectors[0];
    assert_eq!(s.event_id_gaps, 1);
    assert_eq!(
        s.frame_done_timeouts, 0,
        "the event after the gap still completed its flip"
    );
    assert_eq!(
        s.flips_done,
        s.flips_sent.saturating_sub(1).max(s.flips_done)
    );
    assert!(rig.flips(0) >= 29);
}

#[test]
fn a_backend_restart_the_frontend_never_sees_is_still_recovered() {
    let mut rig = Rig::two_connectors();
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    rig.run_for(200 * MS);
    rig.be.restart_unnoticed();
    // Its flips are refused (unknown framebuffers) three times, then the
    // frontend rebuilds the connection with new buffers.
    // (The flip in progress at the restart lost its frame-done: 3.1 s.)
    let ok = rig.run_until(8000 * MS, |r| {
        r.fe.stats().sessions == 2 && r.fe.is_running()
    });
    assert!(ok, "{:?}", rig.fe.stats());
    let flips = rig.flips(0);
    rig.run_for(200 * MS);
    assert!(rig.flips(0) >= flips + 11);
    assert_eq!(rig.fe.stats().connectors[0].flip_errors, 3);
}

#[test]
fn flip_errors_are_counted_and_the_frame_retried() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.run_until(100 * MS, |r| r.fe.is_running());
    rig.be.knobs.fail_op = Some((XENDISPL_OP_PG_FLIP, -22, 2));
    rig.run_for(500 * MS);
    let s = &rig.fe.stats().connectors[0];
    assert_eq!(s.flip_errors, 2);
    assert!(rig.fe.is_running());
    // The backend recorded the failed flips too (it processed them); the
    // frames shown are still consecutive apart from the retried one.
    let markers: Vec<u32> = rig.be.flips_of(0).iter().map(|f| f.marker).collect();
    assert_eq!(markers[..3], [1, 1, 1], "frame 1 retried after two errors");
    assert_eq!(markers[3], 2);
}

#[test]
fn silent_backend_times_out_and_the_frontend_reconnects() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.be.knobs.is_silent = true;
    rig.run_until(100 * MS, |r| r.fe.state() == XenbusState::Connected);
    let t = rig.now;
    // Nothing hangs: after 3000 ms the request times out and we reset.
    rig.run_until(4000 * MS, |r| r.fe.stats().request_timeouts == 1);
    assert!(
        rig.now - t >= 3000 * MS && rig.now - t < 3100 * MS,
        "{}",
        rig.now - t
    );
    rig.be.knobs.is_silent = false;
    rig.run_until(5000 * MS, |r| r.fe.is_running());
    assert!(rig.fe.is_running());
    assert_eq!(rig.be.connects, 2);
    assert_eq!(rig.fe.stats().sessions, 2);
}

#[test]
fn setup_errors_retry_then_close() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.be.knobs.fail_op = Some((XENDISPL_OP_DBUF_CREATE, -12, 100));
    assert!(rig.run_until(60_000 * MS, |r| r.last.is_finished));
    assert_eq!(rig.fe.state(), XenbusState::Closed);
    assert_eq!(rig.fe.error(), Some(&FrontendError::TooManyFailures(5)));
    assert_eq!(rig.fe.stats().sessions, 5);
    rig.run_for(100 * MS);
    rig.assert_nothing_held();
}

#[test]
fn backend_restart_mid_run_reconnects_with_new_buffers_and_leaks_nothing() {
    let mut rig = Rig::two_connectors();
    rig.run_until(100 * MS, |r| r.fe.is_running());
    rig.run_for(300 * MS);
    let held_running = (
        rig.gnt.outstanding(),
        rig.pages.live(),
        rig.evt.outstanding(),
    );
    let first_cookies: Vec<u64> = rig.be.flips_of(0).iter().map(|f| f.fb_cookie).collect();
    let flips_before = rig.flips(0);
    for round in 0..3 {
        rig.be.restart();
        assert!(
            rig.run_until(1000 * MS, |r| r.fe.state() == XenbusState::Initialised
                || r.fe.state() == XenbusState::Initialising)
        );
        assert!(
            rig.run_until(2000 * MS, |r| r.fe.is_running()),
            "round {round}"
        );
        rig.run_for(300 * MS);
        // Same footprint as before the restart: nothing leaked.
        assert_eq!(
            (
                rig.gnt.outstanding(),
                rig.pages.live(),
                rig.evt.outstanding()
            ),
            held_running,
            "round {round}"
        );
    }
    assert_eq!(rig.fe.stats().disconnects, 3);
    assert_eq!(rig.be.connects, 4);
    assert!(rig.flips(0) > flips_before + 40);
    let last = rig.be.flips_of(0).last().unwrap().fb_cookie;
    assert!(
        !first_cookies.contains(&last),
        "new buffers after reconnect"
    );
    // Frame numbers continue across reconnects.
    let markers: Vec<u32> = rig
        .be
        .flips
        .iter()
        .filter(|f| f.conn == 0)
        .map(|f| f.marker)
        .collect();
    assert!(markers.windows(2).all(|w| w[1] == w[0] + 1), "{markers:?}");
}

#[test]
fn backend_closing_is_a_disconnect_and_pages_it_still_maps_are_kept() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.run_until(100 * MS, |r| r.fe.is_running());
    // Backend announces Closing but has not unmapped anything yet.
    rig.store.set(&format!("{BE}/state"), "5");
    rig.poll();
    assert_eq!(rig.fe.state(), XenbusState::Initialising);
    assert!(
        rig.fe.pages_held_by_backend() > 0,
        "ring pages still mapped"
    );
    assert_eq!(rig.evt.outstanding(), 0, "ports closed at once");
    // The backend lets go (it notices we went Initialising) and restarts.
    assert!(rig.run_until(2000 * MS, |r| r.fe.is_running()));
    rig.run_for(100 * MS);
    assert_eq!(rig.fe.pages_held_by_backend(), 0);
}

#[test]
fn publish_that_keeps_conflicting_is_retried_later_not_fatal() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    // More conflicts than one publish attempts (16).
    rig.store.fail_next_commits(20);
    assert!(rig.run_until(5000 * MS, |r| r.fe.is_running()));
    assert_eq!(rig.store.commits_failed(), 20);
    assert_eq!(rig.fe.stats().sessions, 1);
    rig.run_for(100 * MS);
    assert_eq!(rig.fe.pages_held_by_backend(), 0);
}

#[test]
fn publish_transaction_is_retried_on_eagain() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.store.fail_next_commits(3);
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    assert_eq!(rig.store.commits_failed(), 3);
    assert_eq!(rig.fe.stats().publish_retries, 3);
}

#[test]
fn malformed_configuration_closes_the_device() {
    for (nodes, msg) in [
        (
            vec![("0/resolution", "0x0")],
            "device/vdispl/0/0/resolution = \"0x0\"",
        ),
        (vec![("0/resolution", "abcxdef")], "not a decimal number"),
        (
            vec![("0/resolution", "99999999999x2")],
            "does not fit 32 bits",
        ),
        (vec![("1/resolution", "640x480")], "no connector 0"),
        (
            vec![("0/resolution", "64x64"), ("be-alloc", "2")],
            "be-alloc",
        ),
    ] {
        let mut rig = Rig::new(&nodes, Options::default());
        rig.run_for(100 * MS);
        assert_eq!(rig.fe.state(), XenbusState::Closed);
        assert_eq!(rig.store.get(&format!("{FE}/state")).as_deref(), Some("6"));
        let err = format!("{}", rig.fe.error().unwrap());
        assert!(err.contains(msg), "{err}");
        assert!(matches!(rig.fe.error(), Some(FrontendError::Config(_))));
        rig.assert_nothing_held();
        assert!(rig.last.is_finished);
    }
}

#[test]
fn missing_backend_node_closes_the_device() {
    let mut rig = Rig::new(&[("0/resolution", "64x64")], Options::default());
    rig.store.remove(&format!("{FE}/backend"));
    rig.run_for(10 * MS);
    assert_eq!(rig.fe.state(), XenbusState::Closed);
    assert!(format!("{}", rig.fe.error().unwrap()).contains("backend: missing"));
}

#[test]
fn version_negotiation_v1_backend_skips_edid() {
    let mut rig = Rig::new(&[("0/resolution", "32x16")], Options::default());
    rig.be.knobs.versions = None;
    rig.be.knobs.edid = EdidMode::Valid(64, 64);
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    assert_eq!(rig.be.frontend_version.as_deref(), Some("1"));
    assert_eq!(rig.be.requests.get(&XENDISPL_OP_GET_EDID), None);
    assert_eq!(
        rig.fe.stats().connectors[0].mode,
        Resolution::try_new(32, 16)
    );
}

#[test]
fn version_negotiation_without_common_version_closes() {
    let mut rig = Rig::new(&[("0/resolution", "32x16")], Options::default());
    rig.be.knobs.versions = Some("3,4".into());
    rig.run_for(100 * MS);
    assert_eq!(rig.fe.state(), XenbusState::Closed);
    assert!(format!("{}", rig.fe.error().unwrap()).contains("none of [1, 2]"));
}

#[test]
fn valid_edid_overrides_resolution_and_garbage_falls_back() {
    let mut rig = Rig::two_connectors();
    rig.be.knobs.edid = EdidMode::Valid(48, 20);
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    let s = &rig.fe.stats().connectors;
    assert_eq!(s[0].mode, Resolution::try_new(48, 20));
    assert!(s[0].is_mode_from_edid);
    rig.run_for(100 * MS);
    let f = rig.be.flips_of(0)[0];
    assert_eq!((f.width, f.height), (48, 20));
    assert_eq!(f.hash, expected_hash(1, 48, 20));
    // EDID buffers were returned.
    let mut rig2 = Rig::new(&[("0/resolution", "32x16")], Options::default());
    rig2.be.knobs.edid = EdidMode::Garbage;
    assert!(rig2.run_until(100 * MS, |r| r.fe.is_running()));
    assert_eq!(
        rig2.fe.stats().connectors[0].mode,
        Resolution::try_new(32, 16)
    );
    assert!(!rig2.fe.stats().connectors[0].is_mode_from_edid);
}

#[test]
fn be_alloc_maps_backend_buffers() {
    let mut rig = Rig::new(
        &[
            ("0/resolution", "64x40"),
            ("1/resolution", "40x64"),
            ("be-alloc", "1"),
        ],
        Options::default(),
    );
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    // 64x40x4 = 10240 bytes = 3 pages per buffer, 2 buffers, 2 connectors.
    assert_eq!(rig.gnt.foreign_mapped(), 2 * 2 * 3);
    rig.run_for(200 * MS);
    for conn in 0..2 {
        for (k, f) in rig.be.flips_of(conn).iter().enumerate() {
            assert_eq!(f.hash, expected_hash(k as u64 + 1, f.width, f.height));
        }
    }
    // Restart: the mappings are undone and redone.
    rig.be.restart();
    rig.run_until(2000 * MS, |r| r.fe.is_running());
    assert_eq!(rig.gnt.foreign_mapped(), 12);
    rig.fe.request_shutdown();
    assert!(rig.run_until(5000 * MS, |r| r.last.is_finished));
    rig.assert_nothing_held();
}

#[test]
fn full_hd_buffer_uses_two_directory_pages() {
    let mut rig = Rig::new(&[("0/resolution", "1920x1080")], Options::default());
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    // 2 buffers x (2025 data + 2 directory) + ring + event page.
    assert_eq!(rig.gnt.outstanding(), 2 * (2025 + 2) + 2);
    rig.run_until(200 * MS, |r| r.flips(0) >= 3);
    for (k, f) in rig.be.flips_of(0).iter().enumerate() {
        assert_eq!(f.hash, expected_hash(k as u64 + 1, 1920, 1080));
    }
}

#[test]
fn shutdown_resets_detaches_destroys_and_ends_every_grant() {
    let mut rig = Rig::two_connectors();
    rig.run_until(100 * MS, |r| r.fe.is_running());
    rig.run_for(100 * MS);
    let sets = rig
        .be
        .requests
        .get(&XENDISPL_OP_SET_CONFIG)
        .copied()
        .unwrap_or(0);
    rig.fe.request_shutdown();
    assert!(rig.run_until(5000 * MS, |r| r.last.is_finished));
    assert_eq!(rig.fe.state(), XenbusState::Closed);
    assert_eq!(
        rig.be.requests[&XENDISPL_OP_SET_CONFIG],
        sets + 2,
        "one reset per connector"
    );
    assert_eq!(rig.be.requests[&XENDISPL_OP_FB_DETACH], 4);
    assert_eq!(rig.be.requests[&XENDISPL_OP_DBUF_DESTROY], 4);
    assert_eq!(rig.be.requests[&XENDISPL_OP_FB_ATTACH], 4);
    // Resets on each connector's ring, then detach/destroy pairs on ring 0.
    let tail: Vec<(usize, u8)> = rig.be.order[rig.be.order.len() - 10..].to_vec();
    let mut resets: Vec<usize> = tail[..2].iter().map(|(c, _)| *c).collect();
    resets.sort();
    assert_eq!(resets, [0, 1]);
    assert!(tail[..2]
        .iter()
        .all(|(_, op)| *op == XENDISPL_OP_SET_CONFIG));
    for pair in tail[2..].chunks(2) {
        assert_eq!(
            pair,
            [(0, XENDISPL_OP_FB_DETACH), (0, XENDISPL_OP_DBUF_DESTROY)]
        );
    }
    assert!(rig.be.violations.is_empty(), "{:?}", rig.be.violations);
    assert_eq!(rig.fe.pages_abandoned(), 0);
    assert_eq!(rig.store.watch_count(), 0);
    assert_eq!(rig.store.get(&format!("{FE}/state")).as_deref(), Some("6"));
    rig.assert_nothing_held();
}

#[test]
fn shutdown_with_a_silent_backend_is_bounded() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.run_until(100 * MS, |r| r.fe.is_running());
    rig.be.knobs.is_silent = true;
    rig.fe.request_shutdown();
    let t = rig.now;
    assert!(rig.run_until(10_000 * MS, |r| r.last.is_finished));
    assert!(rig.now - t <= 6_100 * MS, "{}", rig.now - t);
    assert_eq!(rig.fe.state(), XenbusState::Closed);
}

#[test]
fn shutdown_before_connecting() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.be.knobs.is_silent = true;
    rig.poll();
    rig.fe.request_shutdown();
    assert!(rig.run_until(5000 * MS, |r| r.last.is_finished));
    assert_eq!(rig.fe.state(), XenbusState::Closed);
    rig.assert_nothing_held();
}

#[test]
fn wake_times_are_deadlines_not_busy_polling() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.run_until(100 * MS, |r| r.fe.is_running());
    let polls = rig.polls;
    rig.run_for(1000 * MS);
    // ~60 flips: each costs a poll at the deadline, one for the response and
    // one for the frame-done event; far from polling every millisecond.
    let per_frame = (rig.polls - polls) as f64 / 60.0;
    assert!(per_frame <= 4.0, "{per_frame} polls per frame");
}

/// The whole stack: the frontend over `xen::xenstore`'s client and wire codec
/// (through [`crate::store::ClientStore`]) against `xen`'s wire-level fake
/// xenstored, with the backend writing to the same store.
#[test]
fn full_stack_over_the_xenstore_wire_protocol() {
    use crate::store::ClientStore;
    use xen::types::DomId;
    use xen::xenstore::fake::FakeXenstore;
    use xen::xenstore::XenstoreClient;

    let xs = FakeXenstore::new();
    let fe_abs = "/local/domain/5/device/vdispl/0";
    xs.write(&format!("{fe_abs}/backend"), BE.as_bytes());
    xs.write(&format!("{fe_abs}/backend-id"), b"0");
    xs.write(&format!("{fe_abs}/0/resolution"), b"32x24");
    xs.write(&format!("{fe_abs}/1/resolution"), b"24x32");
    xs.fail_next_commits(2);
    let mut store = ClientStore::new(XenstoreClient::new(xs.connect(DomId(5))));
    let mut pages = FakePages::default();
    let mut gnt = FakeGnttab::new(&pages);
    let mut evt = FakeEvtchn::default();
    let mut be = SimBackend::new(Rc::new(xs.clone()), &gnt, &evt, fe_abs, BE);
    let mut fe: Frontend<FakePage> = Frontend::new(FE, Options::default());
    let mut now = 1_000 * MS;
    let mut shutdown_at = None;
    for _ in 0..100_000 {
        let mut env = Env {
            evtchn: &mut evt,
            gnttab: &mut gnt,
            pages: &mut pages,
            store: &mut store,
        };
        let r = fe.poll(now, &mut env, &mut TestPattern);
        if r.is_finished {
            break;
        }
        be.step(now);
        if shutdown_at.is_none() && be.flips_of(1).len() >= 30 {
            fe.request_shutdown();
            shutdown_at = Some(now);
        }
        let _ = store.client_mut().poll_watch_events();
        let is_pending = matches!(evt.wait(&fe.ports(), None), Ok(WaitOutcome::Pending))
            || store.pending_watch_events() > 0;
        if !is_pending {
            let next = [r.wake_at_ns, be.next_due()].into_iter().flatten().min();
            now = next.unwrap_or(now + MS).max(now);
        }
    }
    assert!(shutdown_at.is_some(), "never flipped 30 times");
    assert_eq!(fe.state(), XenbusState::Closed);
    assert_eq!(fe.stats().publish_retries, 2);
    assert_eq!(be.frontend_version.as_deref(), Some("2"));
    assert_eq!(
        xs.read_string(&format!("{fe_abs}/state")).as_deref(),
        Some("6")
    );
    assert!(xs
        .read_string(&format!("{fe_abs}/1/req-ring-ref"))
        .is_some());
    for conn in 0..2 {
        for (k, f) in be.flips_of(conn).iter().enumerate() {
            assert_eq!(f.hash, expected_hash(k as u64 + 1, f.width, f.height));
        }
    }
    assert!(be.violations.is_empty(), "{:?}", be.violations);
    assert_eq!(
        (gnt.outstanding(), evt.outstanding(), pages.live()),
        (0, 0, 0)
    );
}

#[test]
fn kicks_before_connected_are_cleared_not_spun_on() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    rig.be.knobs.versions = Some("2".into());
    // Let the frontend publish, but hold the backend in InitWait.
    rig.poll();
    rig.be.step(rig.now);
    rig.poll();
    assert_eq!(rig.fe.state(), XenbusState::Initialised);
    let ports = rig.fe.ports();
    assert_eq!(ports.len(), 2);
    for p in &ports {
        rig.evt.peer_notify(*p);
    }
    rig.poll();
    assert!(matches!(
        rig.evt.wait(&ports, None),
        Ok(WaitOutcome::DeadlinePassed)
    ));
    // Nothing to wait for but the backend: no wake-up time.
    assert_eq!(rig.last.wake_at_ns, None);
}

/// A source drawing with embedded-graphics through the framebuffer path.
struct Squares;

impl crate::FrameSource for Squares {
    fn render(&mut self, connector: usize, frame: u64, target: &mut crate::FrameTarget<'_>) {
        use embedded_graphics::pixelcolor::Rgb888;
        use embedded_graphics::prelude::*;
        use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
        let mut fb = target.framebuffer().unwrap();
        fb.clear(Rgb888::new(0, connector as u8, 0)).unwrap();
        Rectangle::new(Point::new(frame as i32 % 8, 2), Size::new(4, 4))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::WHITE))
            .draw(&mut fb)
            .unwrap();
    }
}

#[test]
fn embedded_graphics_sources_are_copied_into_the_buffers() {
    let mut rig = Rig::new(&[("0/resolution", "16x8")], Options::default());
    let env_poll = |rig: &mut Rig| {
        let mut env = Env {
            evtchn: &mut rig.evt,
            gnttab: &mut rig.gnt,
            pages: &mut rig.pages,
            store: &mut rig.store,
        };
        rig.last = rig.fe.poll(rig.now, &mut env, &mut Squares);
        rig.be.step(rig.now);
        let is_pending = matches!(
            rig.evt.wait(&rig.fe.ports(), None),
            Ok(WaitOutcome::Pending)
        ) || rig.store.pending_events(rig.fe.watch_token()) > 0;
        if !is_pending {
            let next = [rig.last.wake_at_ns, rig.be.next_due()]
                .into_iter()
                .flatten()
                .min();
            rig.now = next.unwrap_or(rig.now + MS).max(rig.now);
        }
    };
    while rig.be.flips_of(0).len() < 10 {
        env_poll(&mut rig);
    }
    for (k, f) in rig.be.flips_of(0).iter().enumerate() {
        let n = k as i32 + 1;
        let mut px = vec![0u32; 16 * 8];
        for y in 2..6 {
            for x in n % 8..n % 8 + 4 {
                px[y * 16 + x as usize] = 0x00ff_ffff;
            }
        }
        assert_eq!(f.hash, frame_hash(px.into_iter()), "flip {k}");
    }
}

#[test]
fn every_backend_departure_state_reconnects_without_leaks() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    rig.run_for(100 * MS);
    let footprint = (
        rig.gnt.outstanding(),
        rig.pages.live(),
        rig.evt.outstanding(),
    );
    // Closing, Closed, InitWait (restarted), Initialising, Unknown (node gone).
    for (round, state) in [Some("5"), Some("6"), Some("2"), Some("1"), None]
        .into_iter()
        .enumerate()
    {
        match state {
            Some("2") => rig.be.restart_in_init_wait(),
            Some(s) => rig.store.set(&format!("{BE}/state"), s),
            None => rig.store.remove(&format!("{BE}/state")),
        }
        rig.poll();
        assert_eq!(rig.fe.state(), XenbusState::Initialising, "{state:?}");
        assert_eq!(rig.fe.stats().disconnects, round as u64 + 1);
        assert!(rig.run_until(3000 * MS, |r| r.fe.is_running()), "{state:?}");
        rig.run_for(200 * MS);
        assert_eq!(
            (
                rig.gnt.outstanding(),
                rig.pages.live(),
                rig.evt.outstanding()
            ),
            footprint,
            "{state:?}"
        );
    }
}

#[test]
fn event_ids_restarting_at_zero_are_followed() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    rig.run_for(200 * MS);
    // A backend that lost its counter (e.g. restarted under us) starts at 0.
    rig.be.knobs.event_id_jump = 0u16.wrapping_sub(rig.fe.stats().connectors[0].flips_done as u16);
    let done = rig.fe.stats().connectors[0].flips_done;
    rig.run_for(200 * MS);
    let s = &rig.fe.stats().connectors[0];
    assert_eq!(s.event_id_gaps, 1);
    assert_eq!(s.frame_done_timeouts, 0);
    assert!(s.flips_done >= done + 11, "{s:?}");
}

#[test]
fn a_backend_that_stops_sending_frame_done_is_reconnected() {
    let mut rig = Rig::new(&[("0/resolution", "16x16")], Options::default());
    assert!(rig.run_until(100 * MS, |r| r.fe.is_running()));
    rig.be.knobs.drop_frame_done = 3;
    assert!(rig.run_until(15_000 * MS, |r| r.fe.stats().sessions == 2
        && r.fe.is_running()));
    assert_eq!(rig.fe.stats().connectors[0].frame_done_timeouts, 3);
    rig.run_for(200 * MS);
    assert!(rig.fe.is_running());
}
