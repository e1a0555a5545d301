//! The displif frontend on `device/vdispl/0`: the kernel's platform glue
//! around `xen_display`.
//!
//! [`run`] takes the xenstore client out of `xen_core` (the frontend's
//! `ClientStore` owns it while the display runs), builds the frontend's `Env`
//! from the kernel's event channels, grant table and page pool, and drives the
//! frontend with pvclock until it finishes: after `frames=N` flips on every
//! connector, or on `control/shutdown` (`xl shutdown`), each followed by the
//! frontend's orderly shutdown sequence (SET_CONFIG reset, FB_DETACH,
//! DBUF_DESTROY, grants ended, Closed). The caller then powers off.

use alloc::string::String;

use demos::{DemoSource, Scene};
use pvdispl_kernel::displayglue::{scene_for, XenstoreAwareEvents};
use xen::platform::{Clock, PlatformError};
use xen_display::driver::{drive, Control, LoopConfig};
use xen_display::frontend::{Env, Frontend, Options};
use xen_display::pages::{PageAllocator, PageUse};
use xen_display::pattern::TestPattern;
use xen_display::store::{ClientStore, Store, TxId};
use xen_display::FrameSource;

use crate::control::{self, Request, SHUTDOWN_PATH, SHUTDOWN_TOKEN};
use crate::memory::OwnedPage;
use crate::{grants, xen_core};

/// Flip rate without `fps=`.
pub const DEFAULT_FPS: u32 = 60;

/// The device this kernel drives.
pub const DEVICE_PATH: &str = "device/vdispl/0";

/// What the command line asks of the display.
#[derive(Clone, Copy, Debug)]
pub struct DisplayConfig {
    /// Flip rate, Hz.
    pub fps: u32,
    /// Stop after this many completed flips on every connector (`None`: run
    /// until `xl shutdown`).
    pub frames: Option<u32>,
    /// Display buffers per connector (2: double, 3: triple buffering).
    pub buffers: usize,
}

/// How the display run ended.
#[derive(Debug)]
pub enum Ended {
    /// `frames=N` reached on every connector, display shut down cleanly.
    FramesDone,
    /// The toolstack asked for this; display shut down cleanly.
    Requested(Request),
    /// The device closed on an error, or the platform failed.
    Failed(String),
}

/// The kernel's page allocator for the frontend: zeroed pool pages to grant,
/// foreign-window frames to map backend grants at; freed on drop.
struct KernelPages;

impl PageAllocator for KernelPages {
    type Page = OwnedPage;

    fn alloc_page(&mut self, usage: PageUse) -> Result<OwnedPage, PlatformError> {
        match usage {
            PageUse::Granted => OwnedPage::ram().map_err(|_| PlatformError::Exhausted("RAM pages")),
            PageUse::ForeignMapSlot => OwnedPage::foreign_slot()
                .map_err(|_| PlatformError::Exhausted("foreign-window frames")),
        }
    }
}

/// Check the command line's demo name (see [`scene_for`]).
pub fn check_demo(name: Option<&str>) -> Result<Option<Scene>, String> {
    scene_for(name)
}

/// Run the frontend on [`DEVICE_PATH`] until it finishes. The xenstore
/// client is given back to `xen_core` before returning.
pub fn run(config: &DisplayConfig, scene: Option<Scene>) -> Ended {
    let (Some(clock), Some(evtchn), Some(xs_port)) = (
        xen_core::clock(),
        xen_core::event_channels(),
        xen_core::xenstore_port(),
    ) else {
        return Ended::Failed("Xen core (pvclock, event channels, xenstore) is not up".into());
    };
    let Some(client) = xen_core::take_xenstore() else {
        return Ended::Failed("xenstore client is not available".into());
    };
    let mut store = ClientStore::new(client);
    let backend = match store.read(TxId::NONE, &alloc::format!("{DEVICE_PATH}/backend")) {
        Ok(Some(b)) => b,
        Ok(None) => {
            xen_core::give_back_xenstore(store.into_client());
            return Ended::Failed(alloc::format!(
                "no vdispl device: {DEVICE_PATH}/backend is missing from xenstore \
                 (add vdispl = [ 'backend=0,connectors=...' ] to the xl config)"
            ));
        }
        Err(e) => {
            xen_core::give_back_xenstore(store.into_client());
            return Ended::Failed(alloc::format!("reading {DEVICE_PATH}/backend: {e}"));
        }
    };
    log::info!(
        "display: {DEVICE_PATH} (backend {backend}), {} Hz, {} buffers per connector, frames {}, source {}",
        config.fps,
        config.buffers,
        config.frames.map_or(
            alloc::string::String::from("unlimited"),
            |n| alloc::format!("{n}")
        ),
        scene.map_or("built-in test pattern", Scene::name)
    );

    let mut demo;
    let mut pattern = TestPattern;
    let source: &mut dyn FrameSource = match scene {
        Some(s) => {
            demo = DemoSource::new(s, config.fps, clock);
            &mut demo
        }
        None => &mut pattern,
    };
    let options = Options {
        rate_hz: config.fps,
        flip_limit: config.frames.map(u64::from),
        buffers: config.buffers,
        stats_clock: Some(|| xen_core::clock().map_or(0, Clock::now_ns)),
        ..Options::default()
    };
    let mut fe: Frontend<OwnedPage> = Frontend::new(DEVICE_PATH, options);
    let mut events = XenstoreAwareEvents {
        inner: evtchn,
        xenstore_port: xs_port,
    };
    let mut pages = KernelPages;
    let mut request = None;
    let mut reported_sessions = 0;
    let result = grants::with_grant_table(|gnttab| {
        let mut env = Env {
            evtchn: &mut events,
            gnttab,
            pages: &mut pages,
            store: &mut store,
        };
        let loop_config = LoopConfig {
            extra_ports: &[xs_port],
            hook_tokens: &[SHUTDOWN_TOKEN],
        };
        let frames = config.frames;
        drive(
            &mut fe,
            clock,
            &mut env,
            &loop_config,
            source,
            |fe, env, now| {
                let stats = fe.stats();
                if stats.sessions_running > reported_sessions {
                    reported_sessions = stats.sessions_running;
                    log::info!(
                        "display: session {} flipping on {} connector(s) at {} ms since boot",
                        stats.sessions,
                        stats.connectors.len(),
                        now.saturating_sub(boot_ns()) / 1_000_000
                    );
                }
                if let Some(n) = frames {
                    let least = stats.connectors.iter().map(|c| c.flips_done).min();
                    if least.is_some_and(|f| f >= u64::from(n)) && request.is_none() {
                        log::info!("display: {n} flips done on every connector, shutting down");
                        request = Some(None);
                        return Control::Shutdown;
                    }
                }
                if env.store.take_watch_event(SHUTDOWN_TOKEN).is_some() {
                    if let Some(r) = shutdown_request(env.store) {
                        log::info!("display: control/shutdown {r:?}, shutting the display down");
                        request = Some(Some(r));
                        return Control::Shutdown;
                    }
                }
                if request.is_some() {
                    Control::Shutdown
                } else {
                    Control::Continue
                }
            },
        )
    });
    report(&fe);
    xen_core::give_back_xenstore(store.into_client());
    match result {
        None => Ended::Failed("grant table is not up".into()),
        Some(Err(e)) => Ended::Failed(alloc::format!("event channel wait failed: {e}")),
        Some(Ok(loop_stats)) => {
            log::info!(
                "display: loop ran {} polls, {} waits",
                loop_stats.polls,
                loop_stats.waits
            );
            if let Some(e) = fe.error() {
                return Ended::Failed(alloc::format!("display closed on an error: {e}"));
            }
            match request {
                Some(Some(r)) => Ended::Requested(r),
                Some(None) => Ended::FramesDone,
                None => Ended::Failed("display closed without being asked to".into()),
            }
        }
    }
}

/// Read `control/shutdown` through the frontend's store, acknowledge a
/// request by clearing the node.
fn shutdown_request(store: &mut dyn Store) -> Option<Request> {
    let value = match store.read(TxId::NONE, SHUTDOWN_PATH) {
        Ok(v) => v?,
        Err(e) => {
            log::warn!("reading {SHUTDOWN_PATH}: {e}");
            return None;
        }
    };
    let request = control::parse_request(&value)?;
    if let Err(e) = store.write(TxId::NONE, SHUTDOWN_PATH, "") {
        log::warn!("acknowledging {SHUTDOWN_PATH}: {e}");
    }
    Some(request)
}

/// Xen system time at PVH entry, ns.
fn boot_ns() -> u64 {
    xen_core::boot_system_ns()
}

/// Log the device and per-connector counters.
fn report(fe: &Frontend<OwnedPage>) {
    let s = fe.stats();
    log::info!(
        "display stats: sessions {} (running {}), disconnects {}, request timeouts {}, \
         request errors {}, unexpected responses {}, malformed responses {}, \
         pages held by backend {}, abandoned {}",
        s.sessions,
        s.sessions_running,
        s.disconnects,
        s.request_timeouts,
        s.request_errors,
        s.unexpected_responses,
        s.malformed_responses,
        fe.pages_held_by_backend(),
        fe.pages_abandoned()
    );
    let boot = boot_ns();
    for (i, c) in s.connectors.iter().enumerate() {
        let mode = c.mode.map_or(String::from("?"), |m| {
            alloc::format!("{}x{}", m.width, m.height)
        });
        let first = c.first_flip_done_ns.map_or(String::from("never"), |t| {
            let d = t.saturating_sub(boot);
            alloc::format!("{}.{:03} ms", d / 1_000_000, (d / 1000) % 1000)
        });
        log::info!(
            "display connector {i} ({mode}{}): flips sent {}, done {}, errors {}, \
             frame-done timeouts {}, skipped deadlines {} ({} with a frame ready), \
             event id gaps {}, unexpected events {}, \
             frames rendered {} (mean {} us, max {} us to draw), \
             flip -> frame-done mean {} us max {} us, \
             PVH entry -> first flip done {first}",
            if c.is_mode_from_edid {
                ", from EDID"
            } else {
                ""
            },
            c.flips_sent,
            c.flips_done,
            c.flip_errors,
            c.frame_done_timeouts,
            c.skipped_deadlines,
            c.skipped_while_ready,
            c.event_id_gaps,
            c.unexpected_events,
            c.frames_rendered,
            c.render_total_ns / c.frames_rendered.max(1) / 1000,
            c.render_max_ns / 1000,
            c.flip_latency_total_ns / c.flips_done.max(1) / 1000,
            c.flip_latency_max_ns / 1000
        );
    }
}
