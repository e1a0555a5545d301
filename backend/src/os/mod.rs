//! The dom0 device layer: `/dev/xen/{xenbus,gntdev,gntalloc,evtchn}` via `libc`.
//!
//! This is the only place in the backend with `unsafe`: ioctls, `mmap`, raw
//! reads and writes. Each type implements one trait of `crate::platform`, so the
//! protocol logic above never sees a file descriptor. ioctl numbers and struct
//! layouts follow Linux `include/uapi/xen/{gntdev,gntalloc,evtchn}.h` (checked
//! against `/usr/include/xen/sys/*.h` by the tests below).

pub mod evtchn;
pub mod gntalloc;
pub mod gntdev;
mod mapping;
pub mod poll;
pub mod rusage;
pub mod signals;
pub mod xenbus;

/// `_IOC(_IOC_NONE, type, nr, size)` from `asm-generic/ioctl.h`.
const fn ioc_none(kind: u8, nr: u8, size: usize) -> libc::c_ulong {
    ((size as libc::c_ulong) << 16) | ((kind as libc::c_ulong) << 8) | nr as libc::c_ulong
}

/// Open a `/dev/xen/*` node read-write, close-on-exec.
fn open_device(path: &str) -> Result<std::fs::File, crate::platform::OsError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| crate::platform::OsError::Errno {
            what: "open /dev/xen device",
            errno: e.raw_os_error().unwrap_or(0),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux_uapi() {
        // Values as the C macros in /usr/include/xen/sys/*.h expand on x86_64.
        assert_eq!(gntdev::IOCTL_GNTDEV_MAP_GRANT_REF, 0x184700);
        assert_eq!(gntdev::IOCTL_GNTDEV_UNMAP_GRANT_REF, 0x104701);
        assert_eq!(gntalloc::IOCTL_GNTALLOC_ALLOC_GREF, 0x184705);
        assert_eq!(gntalloc::IOCTL_GNTALLOC_DEALLOC_GREF, 0x104706);
        assert_eq!(evtchn::IOCTL_EVTCHN_BIND_INTERDOMAIN, 0x84501);
        assert_eq!(evtchn::IOCTL_EVTCHN_UNBIND, 0x44503);
        assert_eq!(evtchn::IOCTL_EVTCHN_NOTIFY, 0x44504);
    }
}
