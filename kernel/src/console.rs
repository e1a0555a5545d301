//! The kernel log: a `log` facade writing to port 0xE9 and the PV console.
//!
//! Port 0xE9 is Xen's (and QEMU's `-debugcon`) debug port: Xen prints it on its
//! serial line as `(dN) ...`, so it works from the first instruction. Once the
//! Xen core is up, lines also go to the PV console ring, which `xl console` and
//! xenconsoled's log show. Every line starts with the time since PVH entry from
//! pvclock, `[   12.345678]`, or `[     -.------]` where there is no pvclock
//! (plain QEMU, or before shared info is mapped).

use core::fmt::{self, Write};

use log::{Level, LevelFilter, Log, Metadata, Record};
use spin::Mutex;
use xen::hv::console::PvConsole;

use crate::xen_core;

/// Output kept until the PV console is attached, then replayed into it, so
/// `xl console` shows the whole log.
const EARLY_BYTES: usize = 4096;

/// The sinks; one lock so lines never interleave.
struct Sinks {
    pv: Option<PvConsole>,
    early: [u8; EARLY_BYTES],
    early_len: usize,
}

static SINKS: Mutex<Sinks> = Mutex::new(Sinks {
    pv: None,
    early: [0; EARLY_BYTES],
    early_len: 0,
});

struct Logger;

static LOGGER: Logger = Logger;

/// Install the logger (port 0xE9 only, until [`attach_pv_console`]).
pub fn init(level: LevelFilter) {
    // A second call (never made) would fail harmlessly: keep the first logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Change the verbosity.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

/// Also write to the PV console from now on.
pub fn attach_pv_console(mut console: PvConsole) {
    let mut sinks = SINKS.lock();
    let early_len = sinks.early_len;
    console.write(&sinks.early[..early_len]);
    sinks.early_len = 0;
    sinks.pv = Some(console);
}

/// Xen's (and QEMU's debugcon) debug port.
const DEBUG_PORT: u16 = 0xe9;

/// Bytes batched per PV-ring write.
const LINE_BUFFER_BYTES: usize = 256;

/// Formats into a buffer and flushes it to every sink.
struct LineWriter<'a> {
    sinks: &'a mut Sinks,
    buffer: [u8; LINE_BUFFER_BYTES],
    len: usize,
}

impl LineWriter<'_> {
    fn flush(&mut self) {
        let bytes = &self.buffer[..self.len];
        // One `rep outsb` per batch: under Xen each port write is a VM exit,
        // and the string form lets Xen's emulator take many bytes per exit.
        // SAFETY: port 0xE9 is the debug console (Xen's HVM debug port or
        // QEMU's debugcon); `rep outsb` only reads `bytes` (rsi, rcx bytes),
        // and the direction flag is clear as the Rust ABI requires.
        unsafe {
            core::arch::asm!(
                "rep outsb",
                in("dx") DEBUG_PORT,
                inout("rsi") bytes.as_ptr() => _,
                inout("rcx") bytes.len() => _,
                options(nostack, preserves_flags, readonly),
            );
        }
        match self.sinks.pv.as_mut() {
            Some(pv) => pv.write(bytes),
            None => {
                // Before the PV console exists: keep what fits for replay.
                let start = self.sinks.early_len;
                let n = bytes.len().min(EARLY_BYTES - start);
                self.sinks.early[start..start + n].copy_from_slice(&bytes[..n]);
                self.sinks.early_len += n;
            }
        }
        self.len = 0;
    }
}

impl Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE_BUFFER_BYTES {
                self.flush();
            }
            self.buffer[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

fn write_line(sinks: &mut Sinks, level: Level, args: fmt::Arguments<'_>) {
    let mut w = LineWriter {
        sinks,
        buffer: [0; LINE_BUFFER_BYTES],
        len: 0,
    };
    match xen_core::ns_since_boot() {
        Some(ns) => {
            let _ = write!(
                w,
                "[{:5}.{:06}] ",
                ns / 1_000_000_000,
                ns % 1_000_000_000 / 1000
            );
        }
        None => {
            let _ = w.write_str("[     -.------] ");
        }
    }
    let _ = match level {
        Level::Error => w.write_str("ERROR: "),
        Level::Warn => w.write_str("WARN: "),
        Level::Info => Ok(()),
        Level::Debug => w.write_str("debug: "),
        Level::Trace => w.write_str("trace: "),
    };
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
    w.flush();
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            write_line(&mut SINKS.lock(), record.level(), *record.args());
        }
    }

    fn flush(&self) {}
}

/// Print from the panic handler: never waits for the lock (the panic may have
/// happened while it was held); falls back to port 0xE9 alone.
pub fn panic_line(args: fmt::Arguments<'_>) {
    match SINKS.try_lock() {
        Some(mut sinks) => write_line(&mut sinks, Level::Error, args),
        None => write_line(
            &mut Sinks {
                pv: None,
                early: [0; EARLY_BYTES],
                early_len: 0,
            },
            Level::Error,
            args,
        ),
    }
}
