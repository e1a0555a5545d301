//! Grant tables v1: reference allocation, entry protocol, displif gref directories.
//!
//! - [`alloc`]: [`alloc::GrantRefAllocator`], a pure free-list allocator that
//!   never hands out the toolstack-reserved references.
//! - [`table`]: the grant-entry write protocol over the table's atomic words
//!   (frame and domid, barrier, then flags; revoke with cmpxchg unless the peer
//!   is still reading/writing).
//! - [`directory`]: displif page directories (`struct xendispl_page_directory`).
//!
//! The hypercalls (mapping the table frames, `GNTTABOP_map_grant_ref`) are the
//! kernel's (`xen::hv`); the dom0 backend uses `/dev/xen/gntdev`.

pub mod alloc;
pub mod directory;
pub mod table;

pub use self::alloc::GrantRefAllocator;
