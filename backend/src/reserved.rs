//! Reserved bytes of a request, and the one way of them being non-zero that is
//! tolerated: stale bytes of our own previous response in the same ring slot.
//!
//! `io/displif.h`: "All reserved fields in the structures below must be 0".
//! A request's reserved bytes are header bytes 3..8 (`reserved[5]`) and the
//! `op` union bytes past the operation's struct.
//!
//! Linux's xen-front (`be_prepare_req`, `drivers/gpu/drm/xen/xen_drm_front.c`)
//! reuses a ring slot without clearing it: it sets `id`, `operation` and the
//! operation's fields, so every other byte still holds the response the backend
//! wrote into that slot 32 requests earlier. The backend writes whole 64-byte
//! responses (`struct xendispl_resp`: `id` 0..2, `operation` 2, `reserved` 3 = 0,
//! `status` 4..8, `op.get_edid.edid_sz` 8..12 for GET_EDID, zeros to 64). Every
//! request's op struct is at least 8 bytes (a cookie or GET_EDID's two words), so
//! its reserved tail starts at 16 or later, where our responses are zero, and
//! `edid_sz` (8..12) always lies under fields the frontend sets. What can be
//! stale in a reserved byte is therefore only the error `status` at 4..8 — which
//! a strict check would answer with another error `status` into the same slot,
//! a cascade every 32nd request. [`check`] accepts a request whose reserved bytes
//! are all exactly our previous response's bytes at the same offsets (the caller
//! counts that as the warning `stale-slot-bytes`); any other non-zero reserved
//! byte is still `reserved-not-zero`.

use core::ops::Range;

use xen::abi::displif::{Packet, Request, PACKET_OPERATION_OFFSET, PACKET_OP_OFFSET, PACKET_SIZE};

/// The reserved byte ranges of a request with `operation`; `None` if unknown.
pub fn reserved_ranges(operation: u8) -> Option<[Range<usize>; 2]> {
    let op_size = Request::op_struct_size(operation)?;
    Some([
        PACKET_OPERATION_OFFSET + 1..PACKET_OP_OFFSET,
        PACKET_OP_OFFSET + op_size..PACKET_SIZE,
    ])
}

/// Result of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// Every reserved byte is zero (or the operation is unknown; decoding
    /// reports that).
    Clean,
    /// Some reserved bytes are non-zero, and every reserved byte equals what
    /// our previous response in this slot left at that offset.
    StaleSlot {
        /// The non-zero reserved offsets.
        offsets: Vec<usize>,
    },
    /// A non-zero reserved byte not explained by our previous response.
    NotZero {
        /// Offset of the first non-zero reserved byte.
        offset: usize,
    },
}

/// Check `packet`'s reserved bytes; `previous` is what the backend last wrote
/// into the packet's ring slot (`None` if nothing yet on this connection).
pub fn check(packet: &Packet, previous: Option<&Packet>) -> Reserved {
    let Some(ranges) = reserved_ranges(packet[PACKET_OPERATION_OFFSET]) else {
        return Reserved::Clean;
    };
    let reserved = || ranges.iter().cloned().flatten();
    let offsets: Vec<usize> = reserved().filter(|&i| packet[i] != 0).collect();
    let Some(&first) = offsets.first() else {
        return Reserved::Clean;
    };
    let is_stale = previous.is_some_and(|prev| reserved().all(|i| packet[i] == prev[i]));
    if is_stale {
        Reserved::StaleSlot { offsets }
    } else {
        Reserved::NotZero { offset: first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen::abi::displif::{
        PageFlipReq, Response, XENDISPL_OP_DBUF_CREATE, XENDISPL_OP_DBUF_DESTROY,
        XENDISPL_OP_FB_ATTACH, XENDISPL_OP_FB_DETACH, XENDISPL_OP_GET_EDID, XENDISPL_OP_PG_FLIP,
        XENDISPL_OP_SET_CONFIG,
    };
    use xen::abi::errno::XEN_EINVAL;

    const OPS: [u8; 7] = [
        XENDISPL_OP_DBUF_CREATE,
        XENDISPL_OP_DBUF_DESTROY,
        XENDISPL_OP_FB_ATTACH,
        XENDISPL_OP_FB_DETACH,
        XENDISPL_OP_SET_CONFIG,
        XENDISPL_OP_PG_FLIP,
        XENDISPL_OP_GET_EDID,
    ];

    #[test]
    fn ranges_agree_with_the_abi_decoder_byte_by_byte() {
        for op in OPS {
            let ranges = reserved_ranges(op).unwrap();
            for i in 3..PACKET_SIZE {
                let mut p = [0u8; PACKET_SIZE];
                p[PACKET_OPERATION_OFFSET] = op;
                p[i] = 0x5a;
                let in_ranges = ranges.iter().any(|r| r.contains(&i));
                assert_eq!(
                    Request::reserved_violation(&p) == Some(i),
                    in_ranges,
                    "op {op:#x} byte {i}"
                );
            }
        }
        assert_eq!(reserved_ranges(0x42), None);
    }

    #[test]
    fn only_the_status_of_a_previous_response_can_be_stale() {
        // Every byte a response can make non-zero outside id/operation (3..12)
        // is either header-reserved (3..8) or inside every op struct (8..12).
        for op in OPS {
            let [header, tail] = reserved_ranges(op).unwrap();
            assert_eq!(header, 3..8);
            assert!(tail.start >= 16, "op {op:#x} tail {tail:?}");
        }
    }

    /// A Linux-like request in a slot that held `previous`: only id, operation
    /// and the op struct are written.
    fn reuse_slot(previous: &Packet, request: &Packet) -> Packet {
        let mut p = *previous;
        let [_, tail] = reserved_ranges(request[PACKET_OPERATION_OFFSET]).unwrap();
        p[..3].copy_from_slice(&request[..3]);
        p[PACKET_OP_OFFSET..tail.start].copy_from_slice(&request[PACKET_OP_OFFSET..tail.start]);
        p
    }

    #[test]
    fn stale_error_status_is_recognised_other_garbage_is_not() {
        let error = Response {
            id: 7,
            operation: XENDISPL_OP_PG_FLIP,
            status: -XEN_EINVAL,
            edid_sz: 0,
        }
        .encode();
        let flip = Request::PageFlip(PageFlipReq { fb_cookie: 0x1001 }).encode(39);
        let p = reuse_slot(&error, &flip);
        assert_eq!(
            check(&p, Some(&error)),
            Reserved::StaleSlot {
                offsets: vec![4, 5, 6, 7]
            }
        );
        assert_eq!(check(&p, None), Reserved::NotZero { offset: 4 });
        // Same status, one extra non-zero tail byte: not explained.
        let mut q = p;
        q[40] = 1;
        assert_eq!(check(&q, Some(&error)), Reserved::NotZero { offset: 4 });
        // Different garbage where the status was.
        let mut q = p;
        q[5] ^= 0x10;
        assert_eq!(check(&q, Some(&error)), Reserved::NotZero { offset: 4 });
        // Part of the stale status cleared: not what we left there either.
        let mut q = p;
        q[7] = 0;
        assert_eq!(check(&q, Some(&error)), Reserved::NotZero { offset: 4 });
        // After a successful response the reused slot is clean.
        let ok = Response {
            status: 0,
            ..Response::decode(&error).unwrap()
        }
        .encode();
        assert_eq!(check(&reuse_slot(&ok, &flip), Some(&ok)), Reserved::Clean);
        // A GET_EDID response's edid_sz is overwritten by any request's fields.
        let edid = Response {
            id: 1,
            operation: XENDISPL_OP_GET_EDID,
            status: 0,
            edid_sz: 128,
        }
        .encode();
        for op in OPS {
            let mut request = [0u8; PACKET_SIZE];
            request[PACKET_OPERATION_OFFSET] = op;
            assert_eq!(
                check(&reuse_slot(&edid, &request), Some(&edid)),
                Reserved::Clean
            );
        }
    }
}
