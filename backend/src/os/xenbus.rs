//! The xenstore connection of dom0 userspace: `/dev/xen/xenbus`.
//!
//! The device speaks the `xs_wire` protocol (`io/xs_wire.h`) as a byte stream:
//! whole messages may be written in pieces, replies and `XS_WATCH_EVENT`s are
//! read back; watches belong to the open file. This type is a
//! [`xen::xenstore::XenstoreTransport`]; framing, encoding and decoding are the
//! shared codec and client in `xen::xenstore`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use xen::platform::{PlatformError, WaitOutcome};
use xen::xenstore::XenstoreTransport;

use crate::platform::OsError;

/// An open, non-blocking `/dev/xen/xenbus`.
pub struct XenbusDevice {
    file: std::fs::File,
    origin: Instant,
}

impl XenbusDevice {
    /// Open the device.
    pub fn open() -> Result<XenbusDevice, OsError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open("/dev/xen/xenbus")
            .map_err(|e| OsError::Errno {
                what: "open /dev/xen/xenbus",
                errno: e.raw_os_error().unwrap_or(0),
            })?;
        Ok(XenbusDevice {
            file,
            origin: Instant::now(),
        })
    }

    /// The transport-clock time `after` from now.
    pub fn now_ns_after(&self, after: std::time::Duration) -> u64 {
        self.now_ns() + after.as_nanos() as u64
    }

    /// The descriptor to `poll` for incoming messages.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

fn errno_of(e: &std::io::Error) -> PlatformError {
    PlatformError::Errno(-e.raw_os_error().unwrap_or(libc::EIO))
}

impl XenstoreTransport for XenbusDevice {
    fn send(&mut self, bytes: &[u8]) -> Result<usize, PlatformError> {
        match self.file.write(bytes) {
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(errno_of(&e)),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, PlatformError> {
        match self.file.read(buf) {
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(errno_of(&e)),
        }
    }

    fn wait(&mut self, deadline_ns: u64) -> Result<WaitOutcome, PlatformError> {
        let now = self.now_ns();
        if now >= deadline_ns {
            return Ok(WaitOutcome::DeadlinePassed);
        }
        let timeout_ms = (deadline_ns - now).div_ceil(1_000_000);
        let ready = super::poll::wait_readable(&[self.raw_fd()], Some(timeout_ms))
            .map_err(|_| PlatformError::Errno(-libc::EIO))?;
        Ok(if ready[0] {
            WaitOutcome::Pending
        } else {
            WaitOutcome::DeadlinePassed
        })
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}
