//! Waiting on several descriptors with a timeout (`poll(2)`).

use std::os::fd::RawFd;

use crate::platform::OsError;

/// Wait until one of `fds` is readable or `timeout_ms` passes (`None`: forever).
/// Returns one flag per descriptor: readable (or error/hang-up) or not.
pub fn wait_readable(fds: &[RawFd], timeout_ms: Option<u64>) -> Result<Vec<bool>, OsError> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timeout = match timeout_ms {
        None => -1,
        Some(ms) => libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX),
    };
    // SAFETY: `pollfds` is a valid array of `fds.len()` pollfd structs that lives
    // across the call; the kernel writes only their `revents`.
    let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(OsError::Errno {
            what: "poll",
            errno: err.raw_os_error().unwrap_or(0),
        });
    }
    Ok(pollfds.iter().map(|p| p.revents != 0).collect())
}
