//! Interdomain event channels via `/dev/xen/evtchn` (Linux `uapi/xen/evtchn.h`).
//!
//! Each device thread opens its own instance: `read()` yields the ports (u32)
//! that fired since the last read, each left masked until written back.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use super::ioc_none;
use crate::platform::{EventChannel, OsError};
use xen::types::{DomId, EvtchnPort};

/// `IOCTL_EVTCHN_BIND_INTERDOMAIN` (remote_domain, remote_port: two unsigned ints).
pub const IOCTL_EVTCHN_BIND_INTERDOMAIN: libc::c_ulong = ioc_none(b'E', 1, 8);
/// `IOCTL_EVTCHN_UNBIND` (port).
pub const IOCTL_EVTCHN_UNBIND: libc::c_ulong = ioc_none(b'E', 3, 4);
/// `IOCTL_EVTCHN_NOTIFY` (port).
pub const IOCTL_EVTCHN_NOTIFY: libc::c_ulong = ioc_none(b'E', 4, 4);

/// An open, non-blocking `/dev/xen/evtchn`.
pub struct Evtchn {
    file: std::fs::File,
}

impl Evtchn {
    /// Open the device.
    pub fn open() -> Result<Evtchn, OsError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open("/dev/xen/evtchn")
            .map_err(|e| OsError::Errno {
                what: "open /dev/xen/evtchn",
                errno: e.raw_os_error().unwrap_or(0),
            })?;
        Ok(Evtchn { file })
    }

    /// A second handle on the same open device (shares bindings and pending ports).
    pub fn try_clone(&self) -> Result<Evtchn, OsError> {
        let file = self.file.try_clone().map_err(|e| OsError::Errno {
            what: "dup /dev/xen/evtchn",
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        Ok(Evtchn { file })
    }

    /// The descriptor to `poll` for readability.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Ports that fired (they stay masked until [`Evtchn::unmask`]).
    pub fn take_pending(&mut self) -> Result<Vec<EvtchnPort>, OsError> {
        let mut buf = [0u8; 4 * 64];
        match self.file.read(&mut buf) {
            Ok(n) => Ok(buf[..n - n % 4]
                .chunks_exact(4)
                .map(|c| EvtchnPort(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Vec::new()),
            Err(e) => Err(OsError::Errno {
                what: "read /dev/xen/evtchn",
                errno: e.raw_os_error().unwrap_or(0),
            }),
        }
    }

    /// Unmask ports returned by [`Evtchn::take_pending`].
    pub fn unmask(&mut self, ports: &[EvtchnPort]) -> Result<(), OsError> {
        if ports.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = ports.iter().flat_map(|p| p.0.to_ne_bytes()).collect();
        self.file.write_all(&bytes).map_err(|e| OsError::Errno {
            what: "write /dev/xen/evtchn",
            errno: e.raw_os_error().unwrap_or(0),
        })
    }

    fn port_ioctl(
        &self,
        request: libc::c_ulong,
        port: EvtchnPort,
        what: &'static str,
    ) -> Result<(), OsError> {
        let arg: libc::c_uint = port.0;
        // SAFETY: `arg` is a valid `struct ioctl_evtchn_{unbind,notify}` (one
        // unsigned int) that lives across the call; the kernel only reads it.
        let rc =
            unsafe { libc::ioctl(self.file.as_raw_fd(), request, &arg as *const libc::c_uint) };
        if rc < 0 {
            return Err(OsError::last(what));
        }
        Ok(())
    }
}

impl EventChannel for Evtchn {
    fn bind(&mut self, remote: DomId, remote_port: EvtchnPort) -> Result<EvtchnPort, OsError> {
        let arg: [libc::c_uint; 2] = [libc::c_uint::from(remote.0), remote_port.0];
        // SAFETY: `arg` is a valid `struct ioctl_evtchn_bind_interdomain` that lives
        // across the call; the kernel only reads it and returns the local port.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                IOCTL_EVTCHN_BIND_INTERDOMAIN,
                arg.as_ptr(),
            )
        };
        if rc < 0 {
            return Err(OsError::last("IOCTL_EVTCHN_BIND_INTERDOMAIN"));
        }
        Ok(EvtchnPort(rc as u32))
    }

    fn unbind(&mut self, port: EvtchnPort) -> Result<(), OsError> {
        self.port_ioctl(IOCTL_EVTCHN_UNBIND, port, "IOCTL_EVTCHN_UNBIND")
    }

    fn notify(&mut self, port: EvtchnPort) -> Result<(), OsError> {
        self.port_ioctl(IOCTL_EVTCHN_NOTIFY, port, "IOCTL_EVTCHN_NOTIFY")
    }
}
