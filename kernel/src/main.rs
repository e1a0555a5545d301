//! pvdispl: the Xen PVH displif frontend unikernel.
//!
//! `boot/` enters [`kmain`] in long mode with the start-info address. From
//! there: log to port 0xE9, find Xen, read the PVH start info, plan memory
//! (heap, page pool, mapping window), parse the command line, bring up the Xen
//! core, then run what the command line asks for. Off Xen (plain QEMU) the
//! kernel reports what it found and exits through isa-debug-exit.
#![no_std]
#![no_main]

extern crate alloc;

mod console;
mod control;
mod display;
mod exit;
mod grants;
mod memory;
mod selftest;
mod start_info;
mod xen_core;

use core::panic::PanicInfo;

use log::LevelFilter;
use pvdispl_kernel::cmdline::{self, CrashKind, LogLevel};
use pvdispl_kernel::memplan::{self, Range};

use crate::exit::Outcome;

/// An address outside the identity map (first 4 GiB), for `crash=fault`.
const UNMAPPED_ADDRESS: u64 = 0x10_0000_0000;

/// Rust entry, called by `boot/` on the boot stack with interrupts off.
#[no_mangle]
pub extern "C" fn kmain(start_info_paddr: u32) -> ! {
    let kmain_tsc = xen::hv::shared_info::rdtsc();
    console::init(LevelFilter::Info);
    // SAFETY: once, first thing, interrupts off; `ktrap` is defined below.
    unsafe { pvdispl_boot::install_trap_handlers() };
    log::info!("pvdispl {} starting", env!("CARGO_PKG_VERSION"));

    let leaves = xen_core::detect();
    match leaves {
        Some(l) => log::info!(
            "Xen {}.{} (cpuid base {:#x}, domid {})",
            l.major,
            l.minor,
            l.base,
            l.domid.map_or(-1, i32::from)
        ),
        None => log::info!("not on Xen: no Xen CPUID leaves"),
    }

    // SAFETY: `start_info_paddr` is %ebx from PVH entry, passed through by
    // boot/, which identity-maps the first 4 GiB.
    let boot = match unsafe { start_info::read(start_info_paddr) } {
        Ok(b) => b,
        Err(e) => fatal(format_args!(
            "bad PVH start info at {start_info_paddr:#x}: {e}"
        )),
    };
    log::info!(
        "start info v{} at {start_info_paddr:#x}, ACPI RSDP at {:#x}",
        boot.version,
        boot.rsdp_paddr
    );
    let (image_start, image_end) = pvdispl_boot::image_range();
    let mut reserved = [Range { start: 0, end: 0 }; start_info::MAX_BOOT_RANGES + 1];
    reserved[0] = Range {
        start: image_start,
        end: image_end,
    };
    reserved[1..=boot.reserved().len()].copy_from_slice(boot.reserved());
    let plan = match memplan::plan(boot.memmap(), &reserved[..=boot.reserved().len()]) {
        Ok(p) => p,
        Err(e) => fatal(format_args!("no usable memory plan: {e:?}")),
    };
    // SAFETY: called once; the plan excludes the image and the boot data and
    // only contains identity-mapped RAM (heap, frames) and unpopulated frames
    // (window).
    unsafe { memory::init(&plan) };
    let entry_tsc = pvdispl_boot::entry_tsc();
    if leaves.is_some() {
        // Shared info (pvclock: timed log lines), PV console and xenstore as
        // early as possible: they only need the memory plan.
        if let Err(e) = xen_core::init(entry_tsc) {
            fatal(format_args!("Xen core init failed: {e}"));
        }
    }
    for e in boot.memmap() {
        log::info!(
            "memmap: {:#012x}-{:#012x} type {}",
            e.addr,
            e.addr.saturating_add(e.size),
            e.kind
        );
    }

    let (free_frames, largest) = memory::frame_stats();
    log::info!(
        "memory: image {image_start:#x}-{image_end:#x}, usable {} KiB, heap {} KiB at {:#x}, \
         frame pool {} pages (largest run {}), mapping window {} frames",
        plan.usable_bytes / 1024,
        plan.heap.len() / 1024,
        plan.heap.start,
        free_frames,
        largest,
        memory::window_stats()
    );

    let cmdline_text = match core::str::from_utf8(boot.cmdline()) {
        Ok(t) => alloc::string::String::from(t).leak(),
        Err(_) => fatal(format_args!("command line is not valid UTF-8")),
    };
    log::info!("cmdline: \"{cmdline_text}\"");
    let options = match cmdline::parse(cmdline_text) {
        Ok(o) => o,
        Err(e) => fatal(format_args!("bad command line: {e}")),
    };
    console::set_level(match options.log_level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Trace,
    });
    log::info!(
        "options: selftest={} idle={} frames={:?} fps={:?} buffers={:?} demo={:?} loglevel={:?} crash={:?}",
        options.is_selftest,
        options.is_idle,
        options.frames,
        options.fps,
        options.buffers,
        options.demo,
        options.log_level,
        options.crash
    );

    let scene = match display::check_demo(options.demo) {
        Ok(s) => s,
        Err(e) => fatal(format_args!("{e}")),
    };

    match options.crash {
        Some(CrashKind::Panic) => panic!("crash=panic requested on the command line"),
        Some(CrashKind::Fault) => {
            log::info!("crash=fault: reading {UNMAPPED_ADDRESS:#x}, above the identity map");
            // SAFETY: deliberately invalid: the address is outside the 4 GiB
            // identity map, so the read faults (#PF) before any value exists;
            // the exception path reports it and never returns here.
            let value = unsafe { core::ptr::read_volatile(UNMAPPED_ADDRESS as *const u64) };
            fatal(format_args!("crash=fault: the read returned {value:#x}"));
        }
        None => {}
    }
    if leaves.is_none() {
        let b = pvdispl_boot::boot_tsc();
        log::info!(
            "PVH entry -> kmain: {} TSC cycles (bss zeroed +{}, long mode +{})",
            kmain_tsc.wrapping_sub(b.entry),
            b.bss_zeroed.wrapping_sub(b.entry),
            b.long_mode.wrapping_sub(b.entry)
        );
        log::info!("plain PVH boot test done");
        exit::exit(Outcome::Success);
    }

    if let Err(e) = grants::init() {
        fatal(format_args!("grant table init failed: {e}"));
    }
    let entry_ns = xen_core::tsc_to_system_ns(entry_tsc).unwrap_or(0);
    let kmain_ns = xen_core::tsc_to_system_ns(kmain_tsc).unwrap_or(0);
    log::info!(
        "PVH entry -> kmain: {} us ({} TSC cycles; bss zeroed +{}, long mode +{}); \
         Xen core ready at {} us since entry",
        kmain_ns.saturating_sub(entry_ns) / 1000,
        kmain_tsc.wrapping_sub(entry_tsc),
        pvdispl_boot::boot_tsc().bss_zeroed.wrapping_sub(entry_tsc),
        pvdispl_boot::boot_tsc().long_mode.wrapping_sub(entry_tsc),
        xen_core::ns_since_boot().unwrap_or(0) / 1000
    );
    if let Some(port) = xen_core::xenstore_port() {
        log::debug!("xenstore ring up, event channel {port}");
    }
    if let Some(shared) = xen_core::shared_info() {
        let (base_s, base_ns) = shared.wall_clock_base();
        let now = xen_core::clock().map_or(0, xen::platform::Clock::now_ns);
        let wall_ns = u128::from(base_s) * 1_000_000_000 + u128::from(base_ns) + u128::from(now);
        log::info!(
            "wall clock: {}.{:09} s since the Unix epoch",
            wall_ns / 1_000_000_000,
            wall_ns % 1_000_000_000
        );
    }
    if let Err(e) = control::init() {
        log::warn!("cannot watch control/shutdown: {e}");
    }
    if options.is_selftest {
        let is_success = selftest::run();
        exit::exit(if is_success {
            Outcome::Success
        } else {
            Outcome::Failure
        })
    }
    if options.is_idle {
        control::idle_until_shutdown()
    }
    let config = display::DisplayConfig {
        fps: options.fps.unwrap_or(display::DEFAULT_FPS),
        frames: options.frames.filter(|&n| n > 0),
        buffers: options
            .buffers
            .map_or(xen_display::frontend::DEFAULT_BUFFERS, |n| n as usize),
    };
    match display::run(&config, scene) {
        display::Ended::FramesDone => {
            log::info!("display done, powering off");
            exit::exit(Outcome::Success)
        }
        display::Ended::Requested(request) => control::perform(request),
        display::Ended::Failed(e) => fatal(format_args!("display: {e}")),
    }
}

/// Report a fatal error and exit with failure.
fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    log::error!("fatal: {args}");
    exit::exit(Outcome::Failure)
}

/// Names of the exception vectors (Intel SDM vol. 3, table 6-1).
const EXCEPTION_NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved 31",
];

/// CPU exception handler, called by `boot/`'s trap stubs: report and crash.
#[no_mangle]
/// The stub passes a pointer to the frame it just built on the current stack
/// (non-null, aligned, valid for as long as this never-returning call runs),
/// which is what `&TrapFrame` means in the C ABI.
pub extern "C" fn ktrap(frame: &pvdispl_boot::TrapFrame) -> ! {
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    let name = EXCEPTION_NAMES
        .get(frame.vector as usize)
        .copied()
        .unwrap_or("unknown");
    console::panic_line(format_args!(
        "CPU exception {} ({name}), error code {:#x}, rip {:#x}, rsp {:#x}, rflags {:#x}, cr2 {cr2:#x}",
        frame.vector, frame.error_code, frame.rip, frame.rsp, frame.rflags
    ));
    exit::exit(Outcome::Failure)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => console::panic_line(format_args!(
            "panic at {}:{}:{}: {}",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        )),
        None => console::panic_line(format_args!("panic: {}", info.message())),
    }
    exit::exit(Outcome::Failure)
}
