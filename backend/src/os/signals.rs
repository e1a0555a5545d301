//! SIGTERM/SIGINT to a flag, so the daemon can close connections and write stats.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Route SIGTERM and SIGINT to [`stop_requested`].
pub fn install() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: `on_signal` is an `extern "C"` function that only performs an
        // atomic store, which is async-signal-safe.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Has a stop signal arrived?
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
