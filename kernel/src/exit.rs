//! Leaving the kernel: Xen shutdown, or QEMU's isa-debug-exit off Xen.

use x86_64::instructions::port::Port;

use crate::xen_core;

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Normal end: Xen `SHUTDOWN_poweroff`; QEMU exit status 33.
    Success,
    /// Failure: Xen `SHUTDOWN_crash`; QEMU exit status 35.
    Failure,
}

/// isa-debug-exit port (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// QEMU exits with `(value << 1) | 1`: 0x10 -> 33.
const DEBUG_EXIT_SUCCESS: u32 = 0x10;
/// 0x11 -> 35.
const DEBUG_EXIT_FAILURE: u32 = 0x11;

/// End the run. Never returns.
pub fn exit(outcome: Outcome) -> ! {
    if let Some(xen) = xen_core::hypervisor() {
        let reason = match outcome {
            Outcome::Success => xen::abi::sched::SHUTDOWN_POWEROFF,
            Outcome::Failure => xen::abi::sched::SHUTDOWN_CRASH,
        };
        let err = xen.shutdown(reason);
        log::error!("SCHEDOP_shutdown({reason}) failed: {err}");
    } else {
        let value = match outcome {
            Outcome::Success => DEBUG_EXIT_SUCCESS,
            Outcome::Failure => DEBUG_EXIT_FAILURE,
        };
        // SAFETY: off Xen, port 0xf4 is QEMU's isa-debug-exit (the plain-QEMU
        // test adds it); writing it terminates QEMU. Without the device the
        // write is ignored and we halt below.
        unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(value) };
    }
    halt_forever()
}

/// Stop the CPU for good (interrupts are off).
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
