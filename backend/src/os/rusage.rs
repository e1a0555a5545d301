//! The calling thread: its CPU time (`getrusage(RUSAGE_THREAD)`) and priority.

/// User + system CPU time the calling thread has used, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut usage = core::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory for one `struct rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage succeeded, so it initialised the struct (and it was zeroed).
    let usage = unsafe { usage.assume_init() };
    let ns = |tv: libc::timeval| (tv.tv_sec as u64) * 1_000_000_000 + (tv.tv_usec as u64) * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// Give the calling thread the lowest scheduling priority (nice 19), for
/// work that may wait (image encoding) behind work that may not (flips).
pub fn lower_thread_priority() -> std::io::Result<()> {
    // SAFETY: setpriority only reads its integer arguments; with PRIO_PROCESS
    // and who = 0 Linux applies it to the calling thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
