//! Host tests of the whole backend against a simulated frontend.
//!
//! A [`Rig`] wires a [`Device`] to fakes (`crate::sim`): an in-memory xenstore,
//! a guest whose granted heap pages the backend maps, event channels that count
//! notifications, and a manual clock. The simulated frontend below is written
//! from `io/displif.h` and `io/ring.h` (publish rings, produce requests, read
//! responses and events), independently of the backend's own ring code.

use std::sync::Arc;

use xen::abi::displif::{
    DbufCreateReq, DbufDestroyReq, Event, FbAttachReq, FbDetachReq, GetEdidReq, Packet,
    PageFlipReq, Request, Response, SetConfigReq, PACKET_SIZE, XENDISPL_DBUF_FLG_REQ_ALLOC,
    XENDISPL_EDID_MAX_SIZE, XENDISPL_OP_PG_FLIP,
};
use xen::abi::errno::{
    XEN_EBUSY, XEN_EEXIST, XEN_EFAULT, XEN_EINVAL, XEN_ENOENT, XEN_ENOMEM, XEN_EOPNOTSUPP,
};
use xen::types::{DomId, EvtchnPort, GrantRef, PAGE_SIZE};

use crate::device::{Device, Liveness};
use crate::lifecycle::Phase;
use crate::limits::{Budget, Caps};
use crate::pacing::Refresh;
use crate::pixel::PixelFormat;
use crate::platform::{read_bytes, read_u32, write_words, Platform};
use crate::settings::Settings;
use crate::sim::{
    local_port, FakeAllocator, FakeClock, FakeEvtchn, FakeMapper, FakeXenstore, HeapMemory,
    SimGuest,
};

const GUEST: DomId = DomId(3);
const BACKEND: &str = "/local/domain/0/backend/vdispl/3/0";
const FRONTEND: &str = "/local/domain/3/device/vdispl/0";
const PERIOD_NS: u64 = 16_666_667;

fn no_cpu() -> u64 {
    0
}

/// The frontend end of one connector, as the simulated guest sees it.
struct FrontConnector {
    ring: HeapMemory,
    events: HeapMemory,
    req_port: EvtchnPort,
    evt_port: EvtchnPort,
    req_prod: u32,
    rsp_cons: u32,
    in_cons: u32,
    next_id: u16,
}

struct Rig {
    xs: FakeXenstore,
    guest: SimGuest,
    clock: FakeClock,
    device: Device,
    budget: Arc<Budget>,
    connectors: Vec<FrontConnector>,
}

fn settings(refresh: Refresh) -> Settings {
    Settings {
        refresh,
        ..Settings::default()
    }
}

impl Rig {
    fn new(
        resolutions: &[(u32, u32)],
        version: Option<&str>,
        be_alloc: bool,
        settings: Settings,
    ) -> Rig {
        Rig::with_budget(resolutions, version, be_alloc, settings, None)
    }

    fn with_budget(
        resolutions: &[(u32, u32)],
        version: Option<&str>,
        be_alloc: bool,
        settings: Settings,
        budget: Option<Arc<Budget>>,
    ) -> Rig {
        let xs = FakeXenstore::default();
        xs.set(&format!("{BACKEND}/frontend"), FRONTEND);
        xs.set(&format!("{BACKEND}/frontend-id"), "3");
        xs.set(&format!("{BACKEND}/state"), "1");
        xs.set(&format!("{FRONTEND}/state"), "1");
        xs.set(
            &format!("{FRONTEND}/be-alloc"),
            if be_alloc { "1" } else { "0" },
        );
        if let Some(v) = version {
            xs.set(&format!("{FRONTEND}/version"), v);
        }
        for (i, (w, h)) in resolutions.iter().enumerate() {
            xs.set(&format!("{FRONTEND}/{i}/resolution"), &format!("{w}x{h}"));
            xs.set(&format!("{FRONTEND}/{i}/unique-id"), &format!("conn{i}"));
        }
        let guest = SimGuest::new(GUEST);
        let clock = FakeClock::default();
        clock.advance(1_000_000_000);
        let budget = budget.unwrap_or_else(|| Budget::new(settings.caps));
        let platform = Platform {
            mapper: Box::new(FakeMapper::new(std::slice::from_ref(&guest))),
            allocator: Box::new(FakeAllocator::new(std::slice::from_ref(&guest))),
            evtchn: Box::new(FakeEvtchn::new(&guest)),
            clock: Box::new(clock.clone()),
            thread_cpu_ns: no_cpu,
        };
        let mut device = Device::new(
            GUEST,
            "0",
            BACKEND,
            Box::new(xs.clone()),
            platform,
            Arc::new(settings),
            Arc::clone(&budget),
        )
        .unwrap();
        device.start().unwrap();
        assert_eq!(xs.get(&format!("{BACKEND}/state")).as_deref(), Some("2"));
        assert_eq!(
            xs.get(&format!("{BACKEND}/versions")).as_deref(),
            Some("1,2")
        );
        let mut rig = Rig {
            xs,
            guest,
            clock,
            device,
            budget,
            connectors: Vec::new(),
        };
        rig.publish(resolutions.len());
        rig
    }

    /// The frontend allocates rings, publishes them and goes Initialised.
    fn publish(&mut self, nr_connectors: usize) {
        self.publish_with_event_indices(nr_connectors, 0);
    }

    /// [`Rig::publish`] with every event page's `in_prod` = `in_cons` = `start`.
    fn publish_with_event_indices(&mut self, nr_connectors: usize, start: u32) {
        self.connectors.clear();
        for i in 0..nr_connectors {
            let (req_refs, ring) = self.guest.grant(1);
            let (evt_refs, events) = self.guest.grant(1);
            let req_port = EvtchnPort(10 + 2 * i as u32 + 100 * self.guest.mapped_count());
            let evt_port = EvtchnPort(req_port.0 + 1);
            for (k, v) in [
                ("req-ring-ref", req_refs[0].0),
                ("req-event-channel", req_port.0),
                ("evt-ring-ref", evt_refs[0].0),
                ("evt-event-channel", evt_port.0),
            ] {
                self.xs.set(&format!("{FRONTEND}/{i}/{k}"), &v.to_string());
            }
            // RING_INIT / SHARED_RING_INIT: req_event = rsp_event = 1.
            write_words(&ring, 4, &1u32.to_le_bytes()).unwrap();
            write_words(&ring, 12, &1u32.to_le_bytes()).unwrap();
            write_words(&events, 0, &start.to_le_bytes()).unwrap();
            write_words(&events, 4, &start.to_le_bytes()).unwrap();
            self.connectors.push(FrontConnector {
                ring,
                events,
                req_port,
                evt_port,
                req_prod: 0,
                rsp_cons: 0,
                in_cons: start,
                next_id: 0,
            });
        }
        self.set_frontend_state(3);
    }

    fn set_frontend_state(&mut self, state: u32) -> Liveness {
        self.xs
            .set(&format!("{FRONTEND}/state"), &state.to_string());
        self.device.on_xenstore_change()
    }

    fn backend_state(&self) -> String {
        self.xs.get(&format!("{BACKEND}/state")).unwrap_or_default()
    }

    /// Put a raw packet on connector `c`'s ring and kick the backend.
    fn send_raw(&mut self, c: usize, packet: &Packet) -> Response {
        let fc = &mut self.connectors[c];
        let slot = (fc.req_prod % 32) as usize;
        write_words(&fc.ring, 64 + slot * PACKET_SIZE, packet).unwrap();
        fc.req_prod = fc.req_prod.wrapping_add(1);
        write_words(&fc.ring, 0, &fc.req_prod.to_le_bytes()).unwrap();
        let port = local_port(fc.req_port);
        self.device.on_ports(&[port]);
        self.take_response(c).expect("a response")
    }

    /// Send `request` like Linux's `be_prepare_req`: the slot is not cleared;
    /// only `id`, `operation` and the first `op_len` bytes of the `op` union
    /// (the operation's fields) are written over what the slot held.
    fn send_reusing_slot(&mut self, c: usize, request: Request, op_len: usize) -> Response {
        let id = self.connectors[c].next_id;
        self.connectors[c].next_id = id.wrapping_add(1);
        let fc = &self.connectors[c];
        let offset = 64 + (fc.req_prod % 32) as usize * PACKET_SIZE;
        let mut packet = [0u8; PACKET_SIZE];
        read_bytes(&fc.ring, offset, &mut packet).unwrap();
        let fresh = request.encode(id);
        packet[..3].copy_from_slice(&fresh[..3]);
        packet[8..8 + op_len].copy_from_slice(&fresh[8..8 + op_len]);
        let response = self.send_raw(c, &packet);
        assert_eq!((response.id, response.operation), (id, request.operation()));
        response
    }

    fn warnings(&self, c: usize, rule: &str) -> u64 {
        self.stats(c)
            .warnings_by_rule
            .get(rule)
            .copied()
            .unwrap_or(0)
    }

    fn take_response(&mut self, c: usize) -> Option<Response> {
        let fc = &mut self.connectors[c];
        let rsp_prod = read_u32(&fc.ring, 8).unwrap();
        if rsp_prod == fc.rsp_cons {
            return None;
        }
        let slot = (fc.rsp_cons % 32) as usize;
        let mut packet = [0u8; PACKET_SIZE];
        read_bytes(&fc.ring, 64 + slot * PACKET_SIZE, &mut packet).unwrap();
        fc.rsp_cons = fc.rsp_cons.wrapping_add(1);
        // Re-arm the notification like RING_FINAL_CHECK_FOR_RESPONSES.
        write_words(&fc.ring, 12, &fc.rsp_cons.wrapping_add(1).to_le_bytes()).unwrap();
        Some(Response::decode(&packet).expect("well-formed response"))
    }

    fn send(&mut self, c: usize, request: Request) -> Response {
        let id = self.connectors[c].next_id;
        self.connectors[c].next_id = id.wrapping_add(1);
        let response = self.send_raw(c, &request.encode(id));
        assert_eq!(response.id, id, "id echoed");
        assert_eq!(response.operation, request.operation(), "operation echoed");
        response
    }

    fn status(&mut self, c: usize, request: Request) -> i32 {
        self.send(c, request).status
    }

    /// Events published on connector `c` and not yet consumed; consumes them.
    fn take_events(&mut self, c: usize) -> Vec<Event> {
        let fc = &mut self.connectors[c];
        let in_prod = read_u32(&fc.events, 4).unwrap();
        let mut out = Vec::new();
        while fc.in_cons != in_prod {
            let slot = (fc.in_cons % 63) as usize;
            let mut packet = [0u8; PACKET_SIZE];
            read_bytes(&fc.events, 64 + slot * PACKET_SIZE, &mut packet).unwrap();
            out.push(Event::decode(&packet).expect("well-formed event"));
            fc.in_cons = fc.in_cons.wrapping_add(1);
        }
        write_words(&fc.events, 0, &fc.in_cons.to_le_bytes()).unwrap();
        out
    }

    fn tick(&mut self, ns: u64) {
        self.clock.advance(ns);
        self.device.on_timer();
    }

    /// Grant a buffer holding `pixels` (XRGB8888 rows) plus a page directory.
    fn grant_buffer(&self, nr_bytes: usize) -> (GrantRef, Vec<GrantRef>, HeapMemory) {
        let nr_pages = nr_bytes.div_ceil(PAGE_SIZE);
        let (data_refs, data) = self.guest.grant(nr_pages);
        let dir_pages = nr_pages.div_ceil(1023).max(1);
        let (dir_refs, dir) = self.guest.grant(dir_pages);
        for (p, chunk) in data_refs.chunks(1023).enumerate() {
            let next = dir_refs.get(p + 1).map(|r| r.0).unwrap_or(0);
            write_words(&dir, p * PAGE_SIZE, &next.to_le_bytes()).unwrap();
            let words: Vec<u8> = chunk.iter().flat_map(|r| r.0.to_le_bytes()).collect();
            write_words(&dir, p * PAGE_SIZE + 4, &words).unwrap();
        }
        (dir_refs[0], dir_refs, data)
    }

    /// DBUF_CREATE + FB_ATTACH of a `w`x`h` XRGB8888 buffer filled by `pattern`.
    fn create_fb(
        &mut self,
        cookie: u64,
        w: u32,
        h: u32,
        pattern: impl Fn(u32, u32) -> u32,
    ) -> HeapMemory {
        let size = (w * h * 4) as usize;
        let (dir, _, data) = self.grant_buffer(size);
        fill(&data, w, h, &pattern);
        let req = DbufCreateReq {
            dbuf_cookie: cookie,
            width: w,
            height: h,
            bpp: 32,
            buffer_sz: size as u32,
            flags: 0,
            gref_directory: dir.0,
            data_ofs: 0,
        };
        assert_eq!(self.status(0, Request::DbufCreate(req)), 0);
        let attach = FbAttachReq {
            dbuf_cookie: cookie,
            fb_cookie: cookie + 0x1000,
            width: w,
            height: h,
            pixel_format: PixelFormat::Xrgb8888.fourcc(),
        };
        assert_eq!(self.status(0, Request::FbAttach(attach)), 0);
        data
    }

    fn stats(&self, c: usize) -> crate::stats::ConnectorStats {
        self.device
            .connection()
            .expect("connected")
            .stats(c)
            .expect("connector")
            .clone()
    }

    fn errors(&self, c: usize, rule: &str) -> u64 {
        self.stats(c).errors_by_rule.get(rule).copied().unwrap_or(0)
    }
}

fn fill(memory: &HeapMemory, w: u32, h: u32, pattern: &impl Fn(u32, u32) -> u32) {
    let bytes: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| pattern(x, y).to_le_bytes()))
        .collect();
    write_words(memory, 0, &bytes).unwrap();
}

/// The checksum the backend must report, computed independently: CRC-32 of
/// 0x00RRGGBB little-endian words, row by row.
fn expected_crc(w: u32, h: u32, pattern: impl Fn(u32, u32) -> u32) -> String {
    let mut hasher = crc32fast::Hasher::new();
    for y in 0..h {
        for x in 0..w {
            hasher.update(&(pattern(x, y) & 0x00ff_ffff).to_le_bytes());
        }
    }
    format!("{:08x}", hasher.finalize())
}

fn checker(x: u32, y: u32) -> u32 {
    if (x / 8 + y / 8) % 2 == 0 {
        0xffff_0000
    } else {
        0xff00_00ff
    }
}

fn gradient(x: u32, y: u32) -> u32 {
    0xff00_0000 | (x & 0xff) << 16 | (y & 0xff) << 8 | ((x + y) & 0xff)
}

fn set_config(fb: u64, w: u32, h: u32) -> Request {
    Request::SetConfig(SetConfigReq {
        fb_cookie: fb,
        x: 0,
        y: 0,
        width: w,
        height: h,
        bpp: 32,
    })
}

fn flip(fb: u64) -> Request {
    Request::PageFlip(PageFlipReq { fb_cookie: fb })
}

#[test]
fn linux_like_session_with_vblank_paced_frame_done_and_exact_checksums() {
    let mut rig = Rig::new(&[(64, 48)], None, false, settings(Refresh::Hz(60.0)));
    assert_eq!(
        rig.backend_state(),
        "4",
        "Connected after the frontend published"
    );
    assert_eq!(rig.device.phase(), Phase::Connected);
    rig.create_fb(1, 64, 48, checker);
    rig.create_fb(2, 64, 48, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 64, 48)), 0);
    assert_eq!(rig.stats(0).last_crc32, Some(expected_crc(64, 48, checker)));

    // Flip to the second buffer: response at once, frame-done at the next vblank.
    let notified_before = rig.guest.notifications(rig.connectors[0].evt_port);
    assert_eq!(rig.status(0, flip(0x1002)), 0);
    assert_eq!(
        rig.stats(0).last_crc32,
        Some(expected_crc(64, 48, gradient))
    );
    assert!(
        rig.take_events(0).is_empty(),
        "no frame-done before the vblank"
    );
    let deadline = rig.device.next_deadline_ns().expect("an event is due");
    assert!(deadline > rig.clock.get() && deadline <= rig.clock.get() + PERIOD_NS);
    rig.tick(deadline - rig.clock.get());
    assert_eq!(
        rig.take_events(0),
        [Event {
            id: 0,
            fb_cookie: 0x1002
        }]
    );
    assert_eq!(
        rig.guest.notifications(rig.connectors[0].evt_port),
        notified_before + 1
    );

    // Two more flips; event ids keep counting.
    for (k, fb) in [(1u16, 0x1001u64), (2, 0x1002)] {
        assert_eq!(rig.status(0, flip(fb)), 0);
        rig.tick(PERIOD_NS);
        assert_eq!(
            rig.take_events(0),
            [Event {
                id: k,
                fb_cookie: fb
            }]
        );
    }
    let s = rig.stats(0);
    assert_eq!(
        (s.frames, s.flips, s.set_configs, s.frame_done_sent),
        (4, 3, 1, 3)
    );
    assert_eq!(s.late_events, 0);

    // Linux's close: reset, detach, destroy, then Closing.
    assert_eq!(
        rig.status(0, Request::SetConfig(SetConfigReq::default())),
        0
    );
    for c in [1u64, 2] {
        assert_eq!(
            rig.status(
                0,
                Request::FbDetach(FbDetachReq {
                    fb_cookie: c + 0x1000
                })
            ),
            0
        );
        assert_eq!(
            rig.status(0, Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: c })),
            0
        );
    }
    assert_eq!(rig.set_frontend_state(5), Liveness::Alive);
    assert_eq!(rig.backend_state(), "2", "back to InitWait");
    assert_eq!(rig.guest.mapped_count(), 0, "everything unmapped");
    assert_eq!(rig.budget.in_use(), (0, 0, 0));
}

#[test]
fn reconnect_after_frontend_restart_starts_fresh() {
    let mut rig = Rig::new(&[(32, 32)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 32, 32, checker);
    assert_eq!(rig.status(0, set_config(0x1001, 32, 32)), 0);
    assert_eq!(rig.status(0, flip(0x1001)), 0);
    assert_eq!(
        rig.take_events(0).len(),
        1,
        "refresh off: frame-done at once"
    );
    // Frontend restarts (module reload): Initialising while connected.
    rig.set_frontend_state(1);
    assert_eq!(rig.backend_state(), "2");
    assert_eq!(
        rig.guest.mapped_count(),
        0,
        "buffers and rings of the old session unmapped"
    );
    rig.publish(1);
    assert_eq!(rig.backend_state(), "4");
    // Old cookies are gone; new session's ids start at 0.
    assert_eq!(rig.status(0, flip(0x1001)), -XEN_ENOENT);
    rig.create_fb(1, 32, 32, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 32, 32)), 0);
    assert_eq!(rig.status(0, flip(0x1001)), 0);
    assert_eq!(
        rig.take_events(0),
        [Event {
            id: 0,
            fb_cookie: 0x1001
        }]
    );
}

#[test]
fn every_validation_rule_gets_its_status_and_is_counted() {
    let mut rig = Rig::new(
        &[(64, 48), (32, 32)],
        Some("1"),
        false,
        settings(Refresh::Off),
    );
    rig.create_fb(1, 64, 48, checker);
    let (dir, _, _) = rig.grant_buffer(64 * 48 * 4);
    let good = DbufCreateReq {
        dbuf_cookie: 7,
        width: 64,
        height: 48,
        bpp: 32,
        buffer_sz: 64 * 48 * 4,
        flags: 0,
        gref_directory: dir.0,
        data_ofs: 0,
    };
    let attach = FbAttachReq {
        dbuf_cookie: 1,
        fb_cookie: 0x2001,
        width: 64,
        height: 48,
        pixel_format: PixelFormat::Xrgb8888.fourcc(),
    };
    let cases: Vec<(usize, Request, i32, &str)> = vec![
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                dbuf_cookie: 0,
                ..good
            }),
            -XEN_EINVAL,
            "cookie-zero",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                dbuf_cookie: 1,
                ..good
            }),
            -XEN_EEXIST,
            "duplicate-cookie",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq { flags: 2, ..good }),
            -XEN_EINVAL,
            "reserved-not-zero",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                data_ofs: 4,
                ..good
            }),
            -XEN_EINVAL,
            "reserved-not-zero",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                buffer_sz: 64 * 48 * 4 - 1,
                ..good
            }),
            -XEN_EINVAL,
            "buffer-too-small",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                buffer_sz: 0,
                ..good
            }),
            -XEN_EINVAL,
            "zero-size",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                buffer_sz: u32::MAX,
                ..good
            }),
            -XEN_EINVAL,
            "buffer-size-overflow",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq { width: 0, ..good }),
            -XEN_EINVAL,
            "zero-size",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq { bpp: 12, ..good }),
            -XEN_EINVAL,
            "bad-bpp",
        ),
        // A one-page directory listing fewer grefs than buffer_sz needs ends in a 0 entry.
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                buffer_sz: 64 * 48 * 4 + 4096,
                ..good
            }),
            -XEN_EINVAL,
            "gref-zero",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                gref_directory: 0,
                ..good
            }),
            -XEN_EINVAL,
            "gref-zero",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                gref_directory: 99_999,
                ..good
            }),
            -XEN_EFAULT,
            "grant-map-failed",
        ),
        (
            0,
            Request::DbufCreate(DbufCreateReq {
                flags: XENDISPL_DBUF_FLG_REQ_ALLOC,
                ..good
            }),
            -XEN_EINVAL,
            "be-alloc-not-allowed",
        ),
        (1, Request::DbufCreate(good), -XEN_EINVAL, "wrong-ring"),
        (
            0,
            Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: 0 }),
            -XEN_EINVAL,
            "cookie-zero",
        ),
        (
            0,
            Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: 42 }),
            -XEN_ENOENT,
            "unknown-cookie",
        ),
        (
            0,
            Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: 1 }),
            -XEN_EBUSY,
            "buffer-in-use",
        ),
        (
            0,
            Request::FbAttach(FbAttachReq {
                fb_cookie: 0,
                ..attach
            }),
            -XEN_EINVAL,
            "cookie-zero",
        ),
        (
            0,
            Request::FbAttach(FbAttachReq {
                fb_cookie: 0x1001,
                ..attach
            }),
            -XEN_EEXIST,
            "duplicate-cookie",
        ),
        (
            0,
            Request::FbAttach(FbAttachReq {
                dbuf_cookie: 5,
                ..attach
            }),
            -XEN_ENOENT,
            "unknown-cookie",
        ),
        (
            0,
            Request::FbAttach(FbAttachReq {
                pixel_format: u32::from_le_bytes(*b"NV12"),
                ..attach
            }),
            -XEN_EINVAL,
            "unsupported-pixel-format",
        ),
        (
            0,
            Request::FbAttach(FbAttachReq {
                pixel_format: PixelFormat::Rgb565.fourcc(),
                ..attach
            }),
            -XEN_EINVAL,
            "bad-bpp",
        ),
        (
            0,
            Request::FbAttach(FbAttachReq {
                width: 65,
                ..attach
            }),
            -XEN_EINVAL,
            "buffer-too-small",
        ),
        (1, Request::FbAttach(attach), -XEN_EINVAL, "wrong-ring"),
        (
            0,
            Request::FbDetach(FbDetachReq { fb_cookie: 0x9999 }),
            -XEN_ENOENT,
            "unknown-cookie",
        ),
        (
            0,
            Request::SetConfig(SetConfigReq {
                fb_cookie: 0x1001,
                x: 1,
                y: 0,
                width: 64,
                height: 48,
                bpp: 32,
            }),
            -XEN_EINVAL,
            "outside-connector",
        ),
        (
            0,
            Request::SetConfig(SetConfigReq {
                fb_cookie: 0x1001,
                x: 0,
                y: 0,
                width: 64,
                height: 48,
                bpp: 16,
            }),
            -XEN_EINVAL,
            "bad-bpp",
        ),
        (
            0,
            Request::SetConfig(SetConfigReq {
                fb_cookie: 0,
                x: 0,
                y: 0,
                width: 64,
                height: 48,
                bpp: 32,
            }),
            -XEN_EINVAL,
            "cookie-zero",
        ),
        (
            0,
            Request::SetConfig(SetConfigReq {
                fb_cookie: 0x7777,
                x: 0,
                y: 0,
                width: 64,
                height: 48,
                bpp: 32,
            }),
            -XEN_ENOENT,
            "unknown-cookie",
        ),
        (
            1,
            Request::SetConfig(SetConfigReq {
                fb_cookie: 0x1001,
                x: 0,
                y: 0,
                width: 64,
                height: 48,
                bpp: 32,
            }),
            -XEN_EINVAL,
            "outside-connector",
        ),
        (1, flip(0x1001), -XEN_EINVAL, "not-configured"),
        (0, flip(0), -XEN_EINVAL, "cookie-zero"),
        (0, flip(0x5555), -XEN_ENOENT, "unknown-cookie"),
        (
            0,
            Request::GetEdid(GetEdidReq {
                buffer_sz: XENDISPL_EDID_MAX_SIZE,
                gref_directory: dir.0,
            }),
            -XEN_EOPNOTSUPP,
            "needs-protocol-v2",
        ),
    ];
    for (c, request, status, rule) in cases {
        let before = rig.errors(c, rule);
        assert_eq!(rig.status(c, request), status, "{request:?} on ring {c}");
        assert_eq!(
            rig.errors(c, rule),
            before + 1,
            "{request:?} counted as {rule}"
        );
    }
    // Unknown operation and non-zero reserved bytes: raw packets.
    let mut packet = [0u8; PACKET_SIZE];
    packet[2] = 0x42;
    let r = rig.send_raw(0, &packet);
    assert_eq!((r.operation, r.status), (0x42, -XEN_EINVAL));
    assert_eq!(rig.errors(0, "unknown-operation"), 1);
    let mut packet = flip(0x1001).encode(9);
    packet[40] = 1;
    let r = rig.send_raw(0, &packet);
    assert_eq!(
        (r.id, r.operation, r.status),
        (9, XENDISPL_OP_PG_FLIP, -XEN_EINVAL)
    );
    let mut packet = flip(0x1001).encode(10);
    packet[5] = 1;
    assert_eq!(rig.send_raw(0, &packet).status, -XEN_EINVAL);
    assert_eq!(rig.errors(0, "reserved-not-zero"), 4);
    // A valid request still works after all that, and nothing leaked.
    assert_eq!(rig.status(0, Request::DbufCreate(good)), 0);
    assert_eq!(rig.budget.in_use().0, 2);
    assert_eq!(rig.backend_state(), "4", "request errors never disconnect");
}

#[test]
fn stale_error_status_in_a_reused_slot_is_a_warning_not_a_cascade() {
    let mut rig = Rig::new(&[(16, 16)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 16, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 16, 16)), 0);
    // From now on every request is sent like Linux: slots reused uncleared.
    let flip_len = 8; // struct xendispl_page_flip_req
    let k = rig.connectors[0].req_prod;
    let r = rig.send_reusing_slot(0, flip(0x9999), flip_len);
    assert_eq!(r.status, -XEN_ENOENT, "slot k now holds an error status");
    for n in 1..=96u32 {
        let r = rig.send_reusing_slot(0, flip(0x1001), flip_len);
        assert_eq!(r.status, 0, "request k+{n} (slot {})", (k + n) % 32);
        rig.take_events(0);
    }
    assert_eq!(rig.errors(0, "unknown-cookie"), 1);
    assert_eq!(rig.errors(0, "reserved-not-zero"), 0, "no cascade");
    assert_eq!(
        rig.warnings(0, "stale-slot-bytes"),
        1,
        "only k+32 saw the stale status; our success response cleaned the slot"
    );
    assert_eq!(rig.stats(0).flips, 96);

    // Different garbage where the status was is still an error.
    let j = rig.connectors[0].req_prod;
    assert_eq!(
        rig.send_reusing_slot(0, flip(0x9999), flip_len).status,
        -XEN_ENOENT
    );
    for _ in 1..32 {
        assert_eq!(rig.status(0, flip(0x1001)), 0);
        rig.take_events(0);
    }
    assert_eq!(rig.connectors[0].req_prod % 32, j % 32);
    let slot = 64 + (j % 32) as usize * PACKET_SIZE;
    let mut stale = [0u8; PACKET_SIZE];
    read_bytes(&rig.connectors[0].ring, slot, &mut stale).unwrap();
    assert_eq!(
        i32::from_le_bytes(stale[4..8].try_into().unwrap()),
        -XEN_ENOENT
    );
    stale[6] ^= 0x01;
    write_words(&rig.connectors[0].ring, slot, &stale).unwrap();
    assert_eq!(
        rig.send_reusing_slot(0, flip(0x1001), flip_len).status,
        -XEN_EINVAL
    );
    assert_eq!(rig.errors(0, "reserved-not-zero"), 1);
    // A non-zero reserved tail byte next to an exactly stale status: error too.
    for _ in 1..32 {
        assert_eq!(rig.status(0, flip(0x1001)), 0);
        rig.take_events(0);
    }
    let mut packet = [0u8; PACKET_SIZE];
    read_bytes(&rig.connectors[0].ring, slot, &mut packet).unwrap();
    assert_eq!(
        i32::from_le_bytes(packet[4..8].try_into().unwrap()),
        -XEN_EINVAL
    );
    packet[40] = 7;
    write_words(&rig.connectors[0].ring, slot, &packet).unwrap();
    assert_eq!(
        rig.send_reusing_slot(0, flip(0x1001), flip_len).status,
        -XEN_EINVAL
    );
    assert_eq!(rig.errors(0, "reserved-not-zero"), 2);
    assert_eq!(rig.warnings(0, "stale-slot-bytes"), 1);
    assert_eq!(rig.backend_state(), "4");
}

#[test]
fn buffer_smaller_or_larger_than_the_connector_and_cookie_reuse() {
    let mut rig = Rig::new(&[(64, 48)], Some("2"), false, settings(Refresh::Off));
    // A buffer larger than the connector, shown partially; one smaller, shown at an offset.
    rig.create_fb(1, 80, 60, gradient);
    rig.create_fb(2, 16, 16, checker);
    assert_eq!(
        rig.status(
            0,
            Request::SetConfig(SetConfigReq {
                fb_cookie: 0x1001,
                x: 0,
                y: 0,
                width: 80,
                height: 48,
                bpp: 32
            })
        ),
        -XEN_EINVAL
    );
    assert_eq!(rig.status(0, set_config(0x1001, 64, 48)), 0);
    assert_eq!(
        rig.stats(0).last_crc32,
        Some(expected_crc(64, 48, gradient)),
        "visible area read with the fb's pitch"
    );
    assert_eq!(
        rig.status(
            0,
            Request::SetConfig(SetConfigReq {
                fb_cookie: 0x1002,
                x: 48,
                y: 32,
                width: 16,
                height: 16,
                bpp: 32
            })
        ),
        0
    );
    assert_eq!(
        rig.status(0, flip(0x1001)),
        0,
        "the 16x16 visible area fits in the larger fb"
    );
    assert_eq!(
        rig.stats(0).last_crc32,
        Some(expected_crc(16, 16, gradient))
    );
    // Cookie reuse after destroy is allowed.
    assert_eq!(
        rig.status(0, Request::SetConfig(SetConfigReq::default())),
        0
    );
    assert_eq!(
        rig.status(0, Request::FbDetach(FbDetachReq { fb_cookie: 0x1002 })),
        0
    );
    assert_eq!(
        rig.status(0, Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: 2 })),
        0
    );
    rig.create_fb(2, 16, 16, gradient);
}

#[test]
fn flip_of_smaller_fb_is_rejected_but_equal_is_fine() {
    let mut rig = Rig::new(&[(64, 48)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 64, 48, gradient);
    rig.create_fb(2, 32, 32, checker);
    assert_eq!(rig.status(0, set_config(0x1001, 64, 48)), 0);
    assert_eq!(rig.status(0, flip(0x1002)), -XEN_EINVAL);
    assert_eq!(rig.errors(0, "outside-framebuffer"), 1);
}

#[test]
fn multi_page_gref_directory_and_mismatches() {
    // 800x600 XRGB8888 = 469 pages: one directory page; 1024x1024 = 1024 pages: two.
    let mut rig = Rig::new(&[(1024, 1024)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 1024, 1024, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 1024, 1024)), 0);
    assert_eq!(
        rig.stats(0).last_crc32,
        Some(expected_crc(1024, 1024, gradient))
    );

    let size = 1024 * 1024 * 4;
    let req = |dir: GrantRef, cookie| DbufCreateReq {
        dbuf_cookie: cookie,
        width: 1024,
        height: 1024,
        bpp: 32,
        buffer_sz: size,
        flags: 0,
        gref_directory: dir.0,
        data_ofs: 0,
    };
    // Directory ends early: clear the next link of page 0.
    let (dir, dir_refs, _) = rig.grant_buffer(size as usize);
    assert_eq!(dir_refs.len(), 2);
    corrupt_directory(&rig, &dir_refs, |page0, _| {
        write_words(page0, 0, &0u32.to_le_bytes()).unwrap()
    });
    assert_eq!(rig.status(0, Request::DbufCreate(req(dir, 2))), -XEN_EINVAL);
    assert_eq!(rig.errors(0, "gref-count-mismatch"), 1);
    // Directory continues past the last needed page.
    let (dir, dir_refs, _) = rig.grant_buffer(size as usize);
    corrupt_directory(&rig, &dir_refs, |_, page1| {
        write_words(page1, 0, &77u32.to_le_bytes()).unwrap()
    });
    assert_eq!(rig.status(0, Request::DbufCreate(req(dir, 3))), -XEN_EINVAL);
    assert_eq!(rig.errors(0, "gref-count-mismatch"), 2);
    // A zero entry.
    let (dir, dir_refs, _) = rig.grant_buffer(size as usize);
    corrupt_directory(&rig, &dir_refs, |_, page1| {
        write_words(page1, 4, &0u32.to_le_bytes()).unwrap()
    });
    assert_eq!(rig.status(0, Request::DbufCreate(req(dir, 4))), -XEN_EINVAL);
    assert_eq!(rig.errors(0, "gref-zero"), 1);
    // Failed creates leave nothing mapped beyond the one good buffer and the ring pages.
    assert_eq!(rig.budget.in_use().0, 1);
    assert_eq!(rig.guest.mapped_count() as usize, 1024 + 2);
}

/// Edit the first two directory pages through the guest's own view of them.
fn corrupt_directory(rig: &Rig, dir_refs: &[GrantRef], edit: impl Fn(&HeapMemory, &HeapMemory)) {
    edit(&rig.guest.view(dir_refs[0]), &rig.guest.view(dir_refs[1]));
}

#[test]
fn backend_allocated_buffers_fill_the_directory_and_are_captured() {
    let mut rig = Rig::new(&[(64, 48)], Some("2"), true, settings(Refresh::Off));
    let size = 64 * 48 * 4u32;
    let (dir_refs, dir) = rig.guest.grant(1);
    let req = DbufCreateReq {
        dbuf_cookie: 5,
        width: 64,
        height: 48,
        bpp: 32,
        buffer_sz: size,
        flags: XENDISPL_DBUF_FLG_REQ_ALLOC,
        gref_directory: dir_refs[0].0,
        data_ofs: 0,
    };
    assert_eq!(
        rig.status(0, Request::DbufCreate(DbufCreateReq { data_ofs: 8, ..req })),
        -XEN_EINVAL
    );
    assert_eq!(rig.status(0, Request::DbufCreate(req)), 0);
    // The backend wrote its grefs into our directory; map them and draw.
    let nr_pages = (size as usize).div_ceil(PAGE_SIZE);
    let refs: Vec<GrantRef> = (0..nr_pages)
        .map(|i| GrantRef(read_u32(&dir, 4 + 4 * i).unwrap()))
        .collect();
    assert!(refs.iter().all(|r| r.0 != 0));
    let pixels = rig
        .guest
        .map_backend_grants(&refs)
        .expect("backend granted these to us");
    fill(&pixels, 64, 48, &checker);
    let attach = FbAttachReq {
        dbuf_cookie: 5,
        fb_cookie: 6,
        width: 64,
        height: 48,
        pixel_format: PixelFormat::Argb8888.fourcc(),
    };
    assert_eq!(rig.status(0, Request::FbAttach(attach)), 0);
    assert_eq!(rig.status(0, set_config(6, 64, 48)), 0);
    assert_eq!(rig.stats(0).last_crc32, Some(expected_crc(64, 48, checker)));
    assert_eq!(
        (
            rig.stats(0).dbufs_created,
            rig.stats(0).dbufs_backend_allocated
        ),
        (1, 1)
    );
    assert_eq!(
        rig.status(0, Request::FbDetach(FbDetachReq { fb_cookie: 6 })),
        0
    );
    assert_eq!(
        rig.status(0, Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: 5 })),
        0
    );
    assert!(
        rig.guest.map_backend_grants(&refs[..1]).is_none(),
        "grants revoked on destroy"
    );
}

#[test]
fn get_edid_v2_writes_a_valid_block_for_the_connector() {
    let mut rig = Rig::new(
        &[(1280, 720)],
        Some("2"),
        false,
        settings(Refresh::Hz(60.0)),
    );
    let (dir, _, data) = rig.grant_buffer(XENDISPL_EDID_MAX_SIZE as usize);
    let r = rig.send(
        0,
        Request::GetEdid(GetEdidReq {
            buffer_sz: XENDISPL_EDID_MAX_SIZE,
            gref_directory: dir.0,
        }),
    );
    assert_eq!((r.status, r.edid_sz), (0, 128));
    let mut edid = [0u8; 128];
    read_bytes(&data, 0, &mut edid).unwrap();
    assert_eq!(&edid[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    assert_eq!(edid.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    let w = u32::from(edid[56]) | (u32::from(edid[58] >> 4) << 8);
    let h = u32::from(edid[59]) | (u32::from(edid[61] >> 4) << 8);
    assert_eq!((w, h), (1280, 720));
    let small = rig.send(
        0,
        Request::GetEdid(GetEdidReq {
            buffer_sz: 4096,
            gref_directory: dir.0,
        }),
    );
    assert_eq!(small.status, -XEN_EINVAL);
    assert_eq!(rig.errors(0, "edid-buffer-too-small"), 1);
    assert_eq!(rig.guest.mapped_count(), 2, "EDID buffer unmapped again");
}

#[test]
fn per_guest_caps_answer_with_enomem() {
    let caps = Caps {
        max_buffers: 2,
        max_mapped_bytes: 64 * 48 * 4 * 3,
        max_grant_refs: 100,
    };
    let mut rig = Rig::new(
        &[(64, 48)],
        None,
        false,
        Settings {
            caps,
            refresh: Refresh::Off,
            ..Settings::default()
        },
    );
    rig.create_fb(1, 64, 48, gradient);
    rig.create_fb(2, 64, 48, gradient);
    let (dir, _, _) = rig.grant_buffer(4096);
    let small = DbufCreateReq {
        dbuf_cookie: 3,
        width: 16,
        height: 16,
        bpp: 32,
        buffer_sz: 4096,
        flags: 0,
        gref_directory: dir.0,
        data_ofs: 0,
    };
    assert_eq!(rig.status(0, Request::DbufCreate(small)), -XEN_ENOMEM);
    assert_eq!(rig.errors(0, "cap-buffers"), 1);
    // Free one; a buffer too big for the byte cap.
    assert_eq!(
        rig.status(0, Request::FbDetach(FbDetachReq { fb_cookie: 0x1002 })),
        0
    );
    assert_eq!(
        rig.status(0, Request::DbufDestroy(DbufDestroyReq { dbuf_cookie: 2 })),
        0
    );
    let (dir, _, _) = rig.grant_buffer(128 * 128 * 4);
    let big = DbufCreateReq {
        width: 128,
        height: 128,
        buffer_sz: 128 * 128 * 4,
        gref_directory: dir.0,
        ..small
    };
    assert_eq!(rig.status(0, Request::DbufCreate(big)), -XEN_ENOMEM);
    assert_eq!(rig.errors(0, "cap-mapped-bytes"), 1);
    // Grant cap 4: the ring pages hold 2, a 64x48 buffer needs 3 more.
    assert_eq!(rig.status(0, Request::DbufCreate(small)), 0);
    let budget_caps = Caps {
        max_buffers: 100,
        max_mapped_bytes: 1 << 30,
        max_grant_refs: 4,
    };
    let mut rig = Rig::new(
        &[(64, 48)],
        None,
        false,
        Settings {
            caps: budget_caps,
            refresh: Refresh::Off,
            ..Settings::default()
        },
    );
    let (dir, _, _) = rig.grant_buffer(64 * 48 * 4);
    let req = DbufCreateReq {
        width: 64,
        height: 48,
        buffer_sz: 64 * 48 * 4,
        gref_directory: dir.0,
        ..small
    };
    assert_eq!(rig.status(0, Request::DbufCreate(req)), -XEN_ENOMEM);
    assert_eq!(rig.errors(0, "cap-grant-refs"), 1);
}

#[test]
fn two_devices_of_one_guest_share_its_budget() {
    let caps = Caps {
        max_buffers: 1,
        ..Caps::default()
    };
    let budget = Budget::new(caps);
    let s = || Settings {
        caps,
        refresh: Refresh::Off,
        ..Settings::default()
    };
    let mut a = Rig::with_budget(&[(32, 32)], None, false, s(), Some(Arc::clone(&budget)));
    let mut b = Rig::with_budget(&[(32, 32)], None, false, s(), Some(Arc::clone(&budget)));
    a.create_fb(1, 32, 32, gradient);
    let (dir, _, _) = b.grant_buffer(32 * 32 * 4);
    let req = DbufCreateReq {
        dbuf_cookie: 1,
        width: 32,
        height: 32,
        bpp: 32,
        buffer_sz: 32 * 32 * 4,
        flags: 0,
        gref_directory: dir.0,
        data_ofs: 0,
    };
    assert_eq!(b.status(0, Request::DbufCreate(req)), -XEN_ENOMEM);
    a.set_frontend_state(6);
    assert_eq!(
        b.status(0, Request::DbufCreate(req)),
        0,
        "budget came back when the first device closed"
    );
}

#[test]
fn full_event_page_stalls_and_never_drops_an_event() {
    let mut rig = Rig::new(&[(16, 16)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 16, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 16, 16)), 0);
    // The frontend does not consume: 63 events fill the page.
    for _ in 0..63 {
        assert_eq!(rig.status(0, flip(0x1001)), 0);
    }
    assert_eq!(rig.stats(0).event_page_stalls, 0);
    for _ in 0..5 {
        assert_eq!(rig.status(0, flip(0x1001)), 0, "flips are still answered");
    }
    let s = rig.stats(0);
    assert_eq!((s.frame_done_sent, s.event_page_stalls), (63, 1));
    assert!(
        rig.device.next_deadline_ns().is_some(),
        "the backend polls for space"
    );
    rig.tick(1_000_000);
    assert_eq!(rig.stats(0).frame_done_sent, 63, "still full");
    let first: Vec<u16> = rig.take_events(0).iter().map(|e| e.id).collect();
    assert_eq!(first, (0..63).collect::<Vec<u16>>());
    rig.tick(1_000_000);
    let rest: Vec<u16> = rig.take_events(0).iter().map(|e| e.id).collect();
    assert_eq!(
        rest,
        (63..68).collect::<Vec<u16>>(),
        "held events delivered in order"
    );
    let s = rig.stats(0);
    assert_eq!((s.frame_done_sent, s.event_page_stalls), (68, 1));
    assert!(s.event_stall_ns >= 1_000_000);
}

#[test]
fn event_indices_wrapping_past_u32_max_never_overwrite_unread_events() {
    let mut rig = Rig::new(&[(16, 16)], None, false, settings(Refresh::Off));
    // A frontend whose event page starts 10 below the u32 wrap: indices
    // 2^32-10 .. 2^32-1 use slots 57..62 and 0..3, and index 0 is slot 0 again.
    rig.set_frontend_state(1);
    let start = u32::MAX - 9;
    rig.publish_with_event_indices(1, start);
    assert_eq!(rig.backend_state(), "4");
    rig.create_fb(1, 16, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 16, 16)), 0);
    // The frontend does not consume; 10 events fit, the 11th would land on
    // the unread event 6 (index 2^32-4).
    for _ in 0..13 {
        assert_eq!(rig.status(0, flip(0x1001)), 0);
    }
    let s = rig.stats(0);
    assert_eq!(
        (s.frame_done_sent, s.event_page_stalls, s.event_wrap_stalls),
        (10, 1, 1)
    );
    assert_eq!(read_u32(&rig.connectors[0].events, 4), Ok(0), "in_prod");
    let ids: Vec<u16> = rig.take_events(0).iter().map(|e| e.id).collect();
    assert_eq!(ids, (0..10).collect::<Vec<u16>>(), "no event overwritten");
    rig.tick(1_000_000);
    let ids: Vec<u16> = rig.take_events(0).iter().map(|e| e.id).collect();
    assert_eq!(ids, [10, 11, 12], "held events delivered in order");
    let s = rig.stats(0);
    assert_eq!((s.frame_done_sent, s.event_page_stalls), (13, 1));
    assert_eq!(rig.connectors[0].in_cons, 3);
}

#[test]
fn pacing_one_flip_per_vblank_and_missed_vblanks() {
    let mut rig = Rig::new(&[(16, 16)], None, false, settings(Refresh::Hz(60.0)));
    rig.create_fb(1, 16, 16, gradient);
    rig.create_fb(2, 16, 16, checker);
    assert_eq!(rig.status(0, set_config(0x1001, 16, 16)), 0);
    assert_eq!(rig.status(0, flip(0x1002)), 0);
    assert_eq!(rig.status(0, flip(0x1001)), 0);
    rig.tick(PERIOD_NS);
    assert_eq!(rig.take_events(0).len(), 1, "one flip per vblank");
    rig.tick(PERIOD_NS);
    assert_eq!(rig.take_events(0).len(), 1);
    // Idle for 5 periods, then flip: vblanks in between repeated a frame.
    rig.tick(5 * PERIOD_NS);
    assert_eq!(rig.status(0, flip(0x1002)), 0);
    rig.tick(PERIOD_NS);
    assert_eq!(rig.take_events(0).len(), 1);
    let s = rig.stats(0);
    assert!(s.missed_vblanks >= 4, "missed {}", s.missed_vblanks);
    assert_eq!(s.late_events, 0);
    // An event whose timer fires far too late counts as late.
    assert_eq!(rig.status(0, flip(0x1001)), 0);
    rig.tick(3 * PERIOD_NS);
    assert_eq!(rig.take_events(0).len(), 1);
    assert_eq!(rig.stats(0).late_events, 1);
}

#[test]
fn multiple_connectors_have_their_own_event_ids_and_configs() {
    let mut rig = Rig::new(&[(32, 32), (16, 16)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 32, 32, gradient);
    rig.create_fb(2, 16, 16, checker);
    assert_eq!(rig.status(0, set_config(0x1001, 32, 32)), 0);
    assert_eq!(rig.status(1, set_config(0x1002, 16, 16)), 0);
    assert_eq!(rig.status(0, flip(0x1001)), 0);
    assert_eq!(rig.status(0, flip(0x1001)), 0);
    assert_eq!(rig.status(1, flip(0x1002)), 0);
    assert_eq!(
        rig.take_events(0).iter().map(|e| e.id).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        rig.take_events(1),
        [Event {
            id: 0,
            fb_cookie: 0x1002
        }]
    );
    assert_eq!(rig.stats(1).last_crc32, Some(expected_crc(16, 16, checker)));
    // Detaching a shown fb blanks that connector only.
    assert_eq!(
        rig.status(0, Request::FbDetach(FbDetachReq { fb_cookie: 0x1002 })),
        0
    );
    assert_eq!(
        rig.status(1, flip(0x1001)),
        -XEN_EINVAL,
        "connector 1 blanked"
    );
    assert_eq!(rig.status(0, flip(0x1001)), 0);
}

#[test]
fn ring_corruption_disconnects_and_the_frontend_can_recover() {
    let dir = std::env::temp_dir().join(format!("pvdispl-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Settings {
        refresh: Refresh::Off,
        out_dir: Some(dir.clone()),
        ..Settings::default()
    };
    let mut rig = Rig::new(&[(16, 16)], None, false, s);
    rig.create_fb(1, 16, 16, gradient);
    // req_prod 40 ahead of req_cons: beyond the 32-slot ring.
    let fc = &rig.connectors[0];
    write_words(&fc.ring, 0, &(fc.req_prod + 40).to_le_bytes()).unwrap();
    let port = local_port(fc.req_port);
    rig.device.on_ports(&[port]);
    assert_eq!(rig.backend_state(), "6", "Closed after a corrupt ring");
    assert_eq!(rig.device.phase(), Phase::Failed);
    assert_eq!(rig.guest.mapped_count(), 0);
    assert_eq!(rig.budget.in_use(), (0, 0, 0));
    let stats = std::fs::read_to_string(dir.join("dom3-0/conn0/stats.json")).unwrap();
    assert!(stats.contains("\"ring-index-overflow\": 1"), "{stats}");
    let _ = std::fs::remove_dir_all(&dir);
    // Linux reacts to backend Closed by going Initialising, then republishes.
    rig.set_frontend_state(1);
    assert_eq!(rig.backend_state(), "2");
    rig.publish(1);
    assert_eq!(rig.backend_state(), "4");
}

#[test]
fn event_consumer_beyond_producer_disconnects() {
    let mut rig = Rig::new(&[(16, 16)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 16, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 16, 16)), 0);
    write_words(&rig.connectors[0].events, 0, &500u32.to_le_bytes()).unwrap();
    // The flip's response arrives, then publishing its event finds the page corrupt.
    let fc = &mut rig.connectors[0];
    let slot = (fc.req_prod % 32) as usize;
    write_words(&fc.ring, 64 + slot * PACKET_SIZE, &flip(0x1001).encode(77)).unwrap();
    fc.req_prod += 1;
    write_words(&fc.ring, 0, &fc.req_prod.to_le_bytes()).unwrap();
    let port = local_port(fc.req_port);
    rig.device.on_ports(&[port]);
    assert_eq!(rig.backend_state(), "6");
    assert_eq!(rig.guest.mapped_count(), 0);
}

#[test]
fn bad_frontend_configuration_fails_cleanly_then_recovers() {
    let mut rig = Rig::new(&[(16, 16)], Some("7"), false, settings(Refresh::Off));
    assert_eq!(rig.backend_state(), "6", "unsupported version: Closed");
    assert_eq!(rig.guest.mapped_count(), 0);
    rig.xs.set(&format!("{FRONTEND}/version"), "2");
    rig.set_frontend_state(1);
    assert_eq!(rig.backend_state(), "2");
    rig.publish(1);
    assert_eq!(rig.backend_state(), "4");
    // Unmappable ring: fails, releases the evtchn/pages it had.
    rig.set_frontend_state(6);
    rig.guest.state.lock().unwrap().fail_maps = true;
    rig.publish(1);
    assert_eq!(rig.backend_state(), "6");
    assert_eq!(rig.budget.in_use(), (0, 0, 0));
}

#[test]
fn backend_directory_removal_ends_the_device() {
    let mut rig = Rig::new(&[(16, 16)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 16, 16, gradient);
    rig.xs.remove(BACKEND);
    assert_eq!(rig.device.on_xenstore_change(), Liveness::Gone);
    assert_eq!(rig.guest.mapped_count(), 0);
}

#[test]
fn capture_files_are_written_when_the_connection_ends() {
    let dir = std::env::temp_dir().join(format!("pvdispl-sim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Settings {
        refresh: Refresh::Off,
        out_dir: Some(dir.clone()),
        snapshot_frames: [0, 1].into_iter().collect(),
        snapshot_at_end: true,
        apng: true,
        ..Settings::default()
    };
    let mut rig = Rig::new(&[(24, 16)], None, false, s);
    rig.create_fb(1, 24, 16, checker);
    rig.create_fb(2, 24, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 24, 16)), 0);
    assert_eq!(rig.status(0, flip(0x1002)), 0);
    // Linux disables the display before closing: final.png is still the last frame shown.
    assert_eq!(
        rig.status(0, Request::SetConfig(SetConfigReq::default())),
        0
    );
    rig.set_frontend_state(5);
    let conn = dir.join("dom3-0").join("conn0");
    assert_eq!(
        std::fs::read(conn.join("final.png")).unwrap(),
        std::fs::read(conn.join("frame-000001.png")).unwrap(),
        "final.png is the flipped-in frame"
    );
    for name in [
        "frames.csv",
        "stats.json",
        "frame-000000.png",
        "frame-000001.png",
        "final.png",
        "run.apng",
    ] {
        assert!(conn.join(name).exists(), "{name}");
    }
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(conn.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["flips"], 1);
    assert_eq!(stats["frames"], 2);
    assert_eq!(stats["last_crc32"], expected_crc(24, 16, gradient));
    let csv = std::fs::read_to_string(conn.join("frames.csv")).unwrap();
    assert!(csv.contains(&expected_crc(24, 16, checker)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_frame_of_a_batch_is_captured_before_the_next_request_changes_it() {
    let dir = std::env::temp_dir().join(format!("pvdispl-sim-batch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Settings {
        refresh: Refresh::Off,
        out_dir: Some(dir.clone()),
        ..Settings::default()
    };
    let mut rig = Rig::new(&[(24, 16)], None, false, s);
    rig.create_fb(1, 24, 16, checker);
    rig.create_fb(2, 24, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 24, 16)), 0);
    // Two flips and a detach of the second buffer in one batch (one kick): the
    // capture of each shown frame is deferred, but must still happen before
    // the next request changes what is shown or frees it.
    let fc = &mut rig.connectors[0];
    for (i, request) in [
        flip(0x1002),
        flip(0x1001),
        Request::SetConfig(SetConfigReq::default()),
    ]
    .into_iter()
    .enumerate()
    {
        let slot = (fc.req_prod % 32) as usize;
        write_words(
            &fc.ring,
            64 + slot * PACKET_SIZE,
            &request.encode(100 + i as u16),
        )
        .unwrap();
        fc.req_prod = fc.req_prod.wrapping_add(1);
    }
    write_words(&fc.ring, 0, &fc.req_prod.to_le_bytes()).unwrap();
    let port = local_port(fc.req_port);
    rig.device.on_ports(&[port]);
    for _ in 0..3 {
        assert_eq!(rig.take_response(0).expect("a response").status, 0);
    }
    assert_eq!(rig.take_events(0).len(), 2, "a frame-done per flip");
    assert_eq!(rig.stats(0).frames, 3);
    rig.set_frontend_state(5);
    let csv = std::fs::read_to_string(dir.join("dom3-0").join("conn0").join("frames.csv")).unwrap();
    let crcs: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    let (a, b) = (
        expected_crc(24, 16, checker),
        expected_crc(24, 16, gradient),
    );
    assert_eq!(crcs, [a.as_str(), b.as_str(), a.as_str()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn requests_that_arrive_while_frames_wait_for_capture_are_served_first() {
    let mut rig = Rig::new(&[(24, 16), (24, 16)], None, false, settings(Refresh::Off));
    rig.create_fb(1, 24, 16, checker);
    rig.create_fb(2, 24, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 24, 16)), 0);
    assert_eq!(rig.status(1, set_config(0x1002, 24, 16)), 0);
    // Flips on both rings, but only connector 0's kick has been delivered:
    // connector 1's flip is found on its ring before any checksum is taken.
    for (c, fb) in [(0, 0x1002), (1, 0x1001)] {
        let fc = &mut rig.connectors[c];
        let slot = (fc.req_prod % 32) as usize;
        write_words(&fc.ring, 64 + slot * PACKET_SIZE, &flip(fb).encode(50)).unwrap();
        fc.req_prod = fc.req_prod.wrapping_add(1);
        write_words(&fc.ring, 0, &fc.req_prod.to_le_bytes()).unwrap();
    }
    let port = local_port(rig.connectors[0].req_port);
    rig.device.on_ports(&[port]);
    for c in 0..2 {
        assert_eq!(
            rig.take_response(c).expect("a response").status,
            0,
            "conn {c}"
        );
        assert_eq!(rig.take_events(c).len(), 1, "conn {c}: frame-done");
        assert_eq!(rig.stats(c).frames, 2, "conn {c}: frame captured");
    }
    assert_eq!(
        rig.stats(0).last_crc32,
        Some(expected_crc(24, 16, gradient))
    );
    assert_eq!(rig.stats(1).last_crc32, Some(expected_crc(24, 16, checker)));
}

#[test]
fn a_flood_of_requests_is_served_in_bounded_turns_and_none_is_lost() {
    // Small bounds so that one ring's worth exceeds a turn: 4 requests per
    // serve, 2 serve-then-checksum rounds: at most 4 + 2 x 4 per wake-up.
    let s = Settings {
        max_requests_per_serve: 4,
        max_capture_rounds: 2,
        ..settings(Refresh::Off)
    };
    let mut rig = Rig::new(&[(16, 16)], None, false, s);
    rig.create_fb(1, 16, 16, checker);
    rig.create_fb(2, 16, 16, gradient);
    assert_eq!(rig.status(0, set_config(0x1001, 16, 16)), 0);
    // More flips than one turn serves, behind a single kick (a frontend does
    // not kick again while the backend has not re-armed req_event).
    let queued = 20;
    let fc = &mut rig.connectors[0];
    for i in 0..queued {
        let fb = if i % 2 == 0 { 0x1002 } else { 0x1001 };
        let slot = (fc.req_prod % 32) as usize;
        write_words(
            &fc.ring,
            64 + slot * PACKET_SIZE,
            &flip(fb).encode(200 + i as u16),
        )
        .unwrap();
        fc.req_prod = fc.req_prod.wrapping_add(1);
    }
    write_words(&fc.ring, 0, &fc.req_prod.to_le_bytes()).unwrap();
    let port = local_port(fc.req_port);
    rig.device.on_ports(&[port]);
    let mut answered = 0;
    while rig.take_response(0).is_some() {
        answered += 1;
    }
    assert_eq!(answered, 12, "one wake-up is bounded");
    assert!(rig.device.has_backlog());
    // The daemon's loop comes back without a kick.
    let mut turns = 0;
    while rig.device.has_backlog() {
        rig.device.on_backlog();
        turns += 1;
        assert!(turns < 10, "backlog never drains");
    }
    while rig.take_response(0).is_some() {
        answered += 1;
    }
    assert_eq!(answered, queued);
    assert_eq!(rig.stats(0).flips, queued as u64);
    assert_eq!(
        rig.stats(0).frames,
        queued as u64 + 1,
        "every frame captured"
    );
    assert_eq!(rig.take_events(0).len(), queued, "a frame-done per flip");
}
