//! Scheduler operations (`xen/include/public/sched.h`).

use core::mem::size_of;

/// `SCHEDOP_yield`.
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_block`: block until an event is pending (HVM: enable interrupts first).
pub const SCHEDOP_BLOCK: u32 = 1;
/// `SCHEDOP_shutdown`: arg is [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// `SCHEDOP_poll`: arg is [`SchedPoll`].
pub const SCHEDOP_POLL: u32 = 3;

/// `SHUTDOWN_poweroff`: exited normally.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_suspend`.
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;
/// `SHUTDOWN_watchdog`.
pub const SHUTDOWN_WATCHDOG: u32 = 4;

/// `struct sched_shutdown`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*`.
    pub reason: u32,
}

/// `struct sched_poll`: wait until one of `ports` is pending or `timeout` (absolute
/// system time in ns, 0 = none) passes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedPoll {
    /// Guest handle (virtual address) of an array of `evtchn_port_t`.
    pub ports: u64,
    /// Number of ports in the array (Xen caps this at 128).
    pub nr_ports: u32,
    /// Absolute timeout in system-time ns; 0 means no timeout.
    pub timeout: u64,
}

/// Maximum `nr_ports` Xen accepts in `SCHEDOP_poll` (`common/sched/core.c`).
pub const SCHED_POLL_MAX_PORTS: usize = 128;

const _: () = assert!(size_of::<SchedShutdown>() == 4);
const _: () = assert!(size_of::<SchedPoll>() == 24);
