//! The grant-entry v1 protocol over the table's words (`grant_table.h`).
//!
//! The table is the concatenation of the mapped grant frames, viewed as atomic
//! `u32` words: entry `r` is words `2r` (`flags` low half, `domid` high half,
//! little-endian) and `2r + 1` (`frame`).
//!
//! Granting (as Mini-OS `gnttab_grant_access` and Linux do): write `frame`, then
//! publish `domid` and `flags` together with a release store, so Xen never sees
//! `GTF_permit_access` with a stale frame. Revoking (Linux
//! `gnttab_end_foreign_access_ref` v1): compare-and-swap `flags` to 0 unless Xen
//! has set `GTF_reading`/`GTF_writing` (the peer still maps the frame).

use core::sync::atomic::{AtomicU32, Ordering};

use crate::abi::grant_table::{
    GrantEntryV1, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_TYPE_MASK, GTF_WRITING,
};
use crate::platform::PlatformError;
use crate::types::{DomId, Gfn, GrantRef};

/// Words per v1 entry.
const ENTRY_WORDS: usize = 2;

/// Bounded retries of the revoke cmpxchg (Xen only changes the flags while a
/// mapping starts or ends, so this is never reached in practice).
const END_ACCESS_RETRIES: u32 = 1000;

fn words_of(table: &[AtomicU32], r: GrantRef) -> Result<(&AtomicU32, &AtomicU32), PlatformError> {
    let i = (r.0 as usize)
        .checked_mul(ENTRY_WORDS)
        .filter(|&i| i + 1 < table.len())
        .ok_or(PlatformError::NotHeld(
            "grant reference outside the mapped table",
        ))?;
    Ok((&table[i], &table[i + 1]))
}

/// Entries in a table of `table.len()` words.
pub fn table_entries(table: &[AtomicU32]) -> u32 {
    (table.len() / ENTRY_WORDS).min(u32::MAX as usize) as u32
}

/// Snapshot of entry `r`.
pub fn read_entry(table: &[AtomicU32], r: GrantRef) -> Result<GrantEntryV1, PlatformError> {
    let (w0, w1) = words_of(table, r)?;
    let head = w0.load(Ordering::Acquire);
    Ok(GrantEntryV1 {
        flags: head as u16,
        domid: (head >> 16) as u16,
        frame: w1.load(Ordering::Relaxed),
    })
}

/// Grant `domid` access to `gfn` through entry `r` (which must be unused:
/// flags 0). v1 frames are 32-bit: larger frame numbers are refused.
pub fn grant_access(
    table: &[AtomicU32],
    r: GrantRef,
    domid: DomId,
    gfn: Gfn,
    is_readonly: bool,
) -> Result<(), PlatformError> {
    let frame =
        u32::try_from(gfn.0).map_err(|_| PlatformError::Errno(-crate::abi::errno::XEN_EINVAL))?;
    let (w0, w1) = words_of(table, r)?;
    if w0.load(Ordering::Acquire) as u16 & GTF_TYPE_MASK != 0 {
        return Err(PlatformError::StillInUse(r));
    }
    w1.store(frame, Ordering::Relaxed);
    let flags = GTF_PERMIT_ACCESS | if is_readonly { GTF_READONLY } else { 0 };
    // Release (the wmb() between frame/domid and flags): Xen must see the frame
    // before it sees GTF_permit_access. domid shares the word with flags and is
    // published by the same store.
    w0.store(
        (u32::from(domid.0) << 16) | u32::from(flags),
        Ordering::Release,
    );
    Ok(())
}

/// Revoke entry `r`. Fails with [`PlatformError::StillInUse`] (leaving the grant
/// in place) while the peer has it mapped.
pub fn end_access(table: &[AtomicU32], r: GrantRef) -> Result<(), PlatformError> {
    let (w0, _) = words_of(table, r)?;
    let mut head = w0.load(Ordering::Acquire);
    for _ in 0..END_ACCESS_RETRIES {
        if head as u16 & (GTF_READING | GTF_WRITING) != 0 {
            return Err(PlatformError::StillInUse(r));
        }
        // Clear the flags, keep domid. AcqRel: later reuse of the frame by us
        // happens after Xen can no longer start a mapping.
        match w0.compare_exchange(
            head,
            head & 0xffff_0000,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Ok(()),
            Err(now) => head = now,
        }
    }
    Err(PlatformError::StillInUse(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: usize) -> Vec<AtomicU32> {
        (0..entries * 2).map(|_| AtomicU32::new(0)).collect()
    }

    #[test]
    fn grant_writes_entry_layout() {
        let t = table(512);
        grant_access(&t, GrantRef(9), DomId(0x1234), Gfn(0xabcde), true).unwrap();
        assert_eq!(t[18].load(Ordering::Relaxed), 0x1234_0000 | 0b101);
        assert_eq!(t[19].load(Ordering::Relaxed), 0xabcde);
        let e = read_entry(&t, GrantRef(9)).unwrap();
        assert_eq!(
            e,
            GrantEntryV1 {
                flags: GTF_PERMIT_ACCESS | GTF_READONLY,
                domid: 0x1234,
                frame: 0xabcde
            }
        );
        // In use: a second grant on the same ref is refused.
        assert_eq!(
            grant_access(&t, GrantRef(9), DomId(1), Gfn(1), false),
            Err(PlatformError::StillInUse(GrantRef(9)))
        );
        end_access(&t, GrantRef(9)).unwrap();
        assert_eq!(read_entry(&t, GrantRef(9)).unwrap().flags, 0);
        grant_access(&t, GrantRef(9), DomId(1), Gfn(1), false).unwrap();
    }

    #[test]
    fn end_access_refuses_while_peer_maps() {
        let t = table(16);
        grant_access(&t, GrantRef(8), DomId(0), Gfn(5), false).unwrap();
        // Xen sets GTF_reading|GTF_writing while the backend maps the page.
        t[16].fetch_or(u32::from(GTF_READING | GTF_WRITING), Ordering::SeqCst);
        assert_eq!(
            end_access(&t, GrantRef(8)),
            Err(PlatformError::StillInUse(GrantRef(8)))
        );
        assert_ne!(
            read_entry(&t, GrantRef(8)).unwrap().flags & GTF_PERMIT_ACCESS,
            0
        );
        t[16].fetch_and(!u32::from(GTF_READING | GTF_WRITING), Ordering::SeqCst);
        end_access(&t, GrantRef(8)).unwrap();
    }

    #[test]
    fn bounds_and_frame_width() {
        let t = table(16);
        assert!(grant_access(&t, GrantRef(16), DomId(0), Gfn(1), false).is_err());
        assert!(grant_access(&t, GrantRef(u32::MAX), DomId(0), Gfn(1), false).is_err());
        assert!(end_access(&t, GrantRef(16)).is_err());
        assert!(read_entry(&t, GrantRef(16)).is_err());
        assert!(grant_access(&t, GrantRef(8), DomId(0), Gfn(1 << 32), false).is_err());
        assert_eq!(table_entries(&t), 16);
    }
}
