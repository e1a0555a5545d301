//! 2-level event-channel bitmaps (`xen.h` `shared_info`, `event_channel.h`).
//!
//! In the 2-level ABI, port `p` is bit `p % 64` of word `p / 64` in
//! `shared_info.evtchn_pending` and `evtchn_mask` (64 words of 64 bits on
//! x86_64, so 4096 ports), and word `p / 64` is summarised by bit `p / 64` of
//! `vcpu_info.evtchn_pending_sel`. These helpers operate on those arrays viewed
//! as `&[AtomicU64]`; mapping the shared-info page and the hypercalls
//! (`EVTCHNOP_*`) are the kernel's (`xen::hv`).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::abi::xen::{EVTCHN_2L_NR_CHANNELS, XEN_ULONG_BITS};
use crate::types::EvtchnPort;

/// Word index and bit mask of `port` in the pending/mask arrays, or `None` if
/// the port is beyond the 2-level ABI's 4096 ports.
pub const fn port_word_bit(port: EvtchnPort) -> Option<(usize, u64)> {
    let p = port.0 as usize;
    if p >= EVTCHN_2L_NR_CHANNELS {
        None
    } else {
        Some((p / XEN_ULONG_BITS, 1u64 << (p % XEN_ULONG_BITS)))
    }
}

fn word_of(bitmap: &[AtomicU64], port: EvtchnPort) -> Option<(&AtomicU64, u64)> {
    let (w, b) = port_word_bit(port)?;
    Some((bitmap.get(w)?, b))
}

/// Is `port`'s bit set? (`false` for out-of-range ports.)
pub fn test_bit(bitmap: &[AtomicU64], port: EvtchnPort) -> bool {
    word_of(bitmap, port).is_some_and(|(w, b)| w.load(Ordering::Acquire) & b != 0)
}

/// Atomically clear `port`'s bit and report whether it was set
/// (`test_and_clear_bit`; `false` for out-of-range ports).
pub fn test_and_clear_bit(bitmap: &[AtomicU64], port: EvtchnPort) -> bool {
    word_of(bitmap, port).is_some_and(|(w, b)| w.fetch_and(!b, Ordering::AcqRel) & b != 0)
}

/// Atomically set `port`'s bit (e.g. mask a port). Returns whether it was set.
pub fn test_and_set_bit(bitmap: &[AtomicU64], port: EvtchnPort) -> bool {
    word_of(bitmap, port).is_some_and(|(w, b)| w.fetch_or(b, Ordering::AcqRel) & b != 0)
}

/// Deliver pending, unmasked ports in the 2-level way: take the vCPU's
/// selector, then for each selected word take its pending & !mask bits, clear
/// them in `pending`, and call `on_port` for each (lowest first). Masked
/// pending ports stay pending. Returns the number delivered.
pub fn drain_pending(
    pending_sel: &AtomicU64,
    pending: &[AtomicU64],
    mask: &[AtomicU64],
    mut on_port: impl FnMut(EvtchnPort),
) -> usize {
    let mut delivered = 0;
    // Take the selector first: Xen sets pending bits before selector bits, so
    // every port behind a selector bit we take is already visible.
    let mut sel = pending_sel.swap(0, Ordering::AcqRel);
    while sel != 0 {
        let word = sel.trailing_zeros() as usize;
        sel &= sel - 1;
        let (Some(p), Some(m)) = (pending.get(word), mask.get(word)) else {
            continue;
        };
        let mut bits = p.load(Ordering::Acquire) & !m.load(Ordering::Acquire);
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let b = 1u64 << bit;
            if p.fetch_and(!b, Ordering::AcqRel) & b != 0 {
                on_port(EvtchnPort((word * XEN_ULONG_BITS + bit) as u32));
                delivered += 1;
            }
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitmap() -> Vec<AtomicU64> {
        (0..64).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn word_and_bit_of_ports() {
        assert_eq!(port_word_bit(EvtchnPort(0)), Some((0, 1)));
        assert_eq!(port_word_bit(EvtchnPort(63)), Some((0, 1 << 63)));
        assert_eq!(port_word_bit(EvtchnPort(64)), Some((1, 1)));
        assert_eq!(port_word_bit(EvtchnPort(4095)), Some((63, 1 << 63)));
        assert_eq!(port_word_bit(EvtchnPort(4096)), None);
        assert_eq!(port_word_bit(EvtchnPort(u32::MAX)), None);
    }

    #[test]
    fn set_test_clear() {
        let b = bitmap();
        assert!(!test_and_set_bit(&b, EvtchnPort(70)));
        assert!(test_bit(&b, EvtchnPort(70)));
        assert_eq!(b[1].load(Ordering::Relaxed), 1 << 6);
        assert!(test_and_set_bit(&b, EvtchnPort(70)));
        assert!(test_and_clear_bit(&b, EvtchnPort(70)));
        assert!(!test_and_clear_bit(&b, EvtchnPort(70)));
        assert!(!test_bit(&b, EvtchnPort(5000)));
        assert!(!test_and_set_bit(&b[..1], EvtchnPort(70))); // short slice: no panic
    }

    #[test]
    fn drain_delivers_unmasked_and_keeps_masked() {
        let pending = bitmap();
        let mask = bitmap();
        let sel = AtomicU64::new(0);
        for p in [3u32, 64, 65, 4095] {
            test_and_set_bit(&pending, EvtchnPort(p));
            sel.fetch_or(1 << (p / 64), Ordering::Relaxed);
        }
        test_and_set_bit(&mask, EvtchnPort(65));
        let mut got = Vec::new();
        assert_eq!(drain_pending(&sel, &pending, &mask, |p| got.push(p.0)), 3);
        assert_eq!(got, vec![3, 64, 4095]);
        assert!(test_bit(&pending, EvtchnPort(65)));
        assert_eq!(sel.load(Ordering::Relaxed), 0);
        // Nothing selected: nothing delivered even if bits are pending.
        assert_eq!(drain_pending(&sel, &pending, &mask, |_| panic!()), 0);
    }
}
