//! Xen error numbers (`xen/include/public/errno.h`).
//!
//! Hypercalls return `-XEN_Exx`; displif responses carry `status = -XEN_Exx`.
//! On x86 these coincide with Linux's errno values, which is what xenstored's
//! `xsd_errors` table (`io/xs_wire.h`) uses too.

/// Operation not permitted.
pub const XEN_EPERM: i32 = 1;
/// No such file or directory.
pub const XEN_ENOENT: i32 = 2;
/// I/O error.
pub const XEN_EIO: i32 = 5;
/// No such device or address.
pub const XEN_ENXIO: i32 = 6;
/// Argument list too long.
pub const XEN_E2BIG: i32 = 7;
/// Bad file number.
pub const XEN_EBADF: i32 = 9;
/// Try again.
pub const XEN_EAGAIN: i32 = 11;
/// Out of memory.
pub const XEN_ENOMEM: i32 = 12;
/// Permission denied.
pub const XEN_EACCES: i32 = 13;
/// Bad address.
pub const XEN_EFAULT: i32 = 14;
/// Device or resource busy.
pub const XEN_EBUSY: i32 = 16;
/// File exists.
pub const XEN_EEXIST: i32 = 17;
/// No such device.
pub const XEN_ENODEV: i32 = 19;
/// Is a directory.
pub const XEN_EISDIR: i32 = 21;
/// Invalid argument.
pub const XEN_EINVAL: i32 = 22;
/// No space left on device.
pub const XEN_ENOSPC: i32 = 28;
/// Read-only file system.
pub const XEN_EROFS: i32 = 30;
/// Function not implemented.
pub const XEN_ENOSYS: i32 = 38;
/// Directory not empty.
pub const XEN_ENOTEMPTY: i32 = 39;
/// Value too large for defined data type.
pub const XEN_EOVERFLOW: i32 = 75;
/// Operation not supported.
pub const XEN_EOPNOTSUPP: i32 = 95;
/// Transport endpoint is already connected.
pub const XEN_EISCONN: i32 = 106;
/// Connection timed out.
pub const XEN_ETIMEDOUT: i32 = 110;
