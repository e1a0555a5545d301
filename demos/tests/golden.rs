//! Golden checksums and structural checks of every scene, rendered into the real framebuffer.
//!
//! The checksums (definition: `demos::checksum`) were produced once by this code and pin the
//! pixels: the guest renders with the same code, so a change here is a change on screen, and the
//! backend's captures on real Xen are compared against the same values. The structural tests
//! check what the scenes promise (bar colours, frame code, hand angles, sprite positions, …)
//! independently of the checksums.

use demos::scenes::{bounce, clock, stats, testcard};
use demos::{frame_crc32, render, FrameStats, Scene, SceneInput};
use xen_display::framebuffer::{rgb888_from_xrgb8888, xrgb8888, Framebuffer};

/// A pixel value no scene writes (the X byte is set): marks pixels a scene left untouched.
const SENTINEL: u32 = 0xA5_12_34_56;

/// Renders `scene` frame `frame` at `w × h` (stride `w + pad`); returns the packed visible pixels
/// and the checksum.
fn draw(scene: Scene, frame: u64, w: u32, h: u32, pad: u32, input: &SceneInput) -> (Vec<u32>, u32) {
    let stride = w + pad;
    let mut px = vec![SENTINEL; (stride * h) as usize];
    let mut fb = Framebuffer::try_new(&mut px, w, h, stride).unwrap();
    let Ok(()) = render(scene, frame, &mut fb, input);
    let crc = frame_crc32(fb.rows());
    let visible = fb.rows().flatten().copied().collect();
    // Stride padding is never written.
    for y in 0..h as usize {
        assert!(
            px[y * stride as usize + w as usize..(y + 1) * stride as usize]
                .iter()
                .all(|&p| p == SENTINEL)
        );
    }
    (visible, crc)
}

fn at(px: &[u32], w: u32, x: i32, y: i32) -> u32 {
    px[(y as u32 * w + x as u32) as usize]
}

/// Figures the stats goldens are rendered with.
fn stats_input(intervals: &[u32]) -> SceneInput<'_> {
    SceneInput {
        fps: 60,
        stats: FrameStats {
            flips_completed: 3599,
            late_frames: 2,
            measured_fps_milli: 59_942,
            frame_intervals_us: intervals,
        },
    }
}

fn stats_intervals() -> Vec<u32> {
    (0..300u32)
        .map(|i| match i % 50 {
            0 => 40_000,
            25 => 30_000,
            _ => 16_000 + (i * 131) % 1_400,
        })
        .collect()
}

/// (scene, width, height, frame, crc32) — produced by this code, see the module docs.
const GOLDEN: &[(&str, u32, u32, u64, u32)] = &[
    ("testcard", 640, 360, 0, 0xf056c821),
    ("testcard", 640, 360, 61, 0xbf68b34c),
    ("testcard", 640, 360, 1000, 0x16702365),
    ("testcard", 1280, 720, 0, 0x6f9c0b35),
    ("testcard", 1280, 720, 1000, 0xeb132501),
    ("testcard", 320, 240, 61, 0xaf15dc73),
    ("bounce", 640, 360, 0, 0xb1eb8b67),
    ("bounce", 640, 360, 61, 0x34616464),
    ("bounce", 640, 360, 1000, 0xecd446a8),
    ("bounce", 1280, 720, 0, 0x108566c9),
    ("bounce", 1280, 720, 1000, 0xc4c5ee75),
    ("bounce", 320, 240, 61, 0xfa85a1e9),
    ("plasma", 640, 360, 0, 0x0a4cc37e),
    ("plasma", 640, 360, 61, 0x01c23147),
    ("plasma", 640, 360, 1000, 0x3c722f50),
    ("plasma", 1280, 720, 0, 0x41bd7f67),
    ("plasma", 1280, 720, 1000, 0x87843784),
    ("plasma", 320, 240, 61, 0xbdd90af2),
    ("clock", 640, 360, 0, 0xeb81b5b8),
    ("clock", 640, 360, 61, 0xe06f76c2),
    ("clock", 640, 360, 1000, 0x26b352b7),
    ("clock", 1280, 720, 0, 0x6d08117e),
    ("clock", 1280, 720, 1000, 0x10c68746),
    ("clock", 320, 240, 61, 0x928c97ac),
    ("stats", 640, 360, 0, 0x3f86858c),
    ("stats", 640, 360, 61, 0x106a4083),
    ("stats", 640, 360, 1000, 0xed1eb2bd),
    ("stats", 1280, 720, 0, 0x649e6ddb),
    ("stats", 1280, 720, 1000, 0xf8411517),
    ("stats", 320, 240, 61, 0x1be345b1),
    ("starfield", 640, 360, 0, 0xdc8a95ff),
    ("starfield", 640, 360, 61, 0x76fd0423),
    ("starfield", 640, 360, 1000, 0x5c63871a),
    ("starfield", 1280, 720, 0, 0x54f8c698),
    ("starfield", 1280, 720, 1000, 0x667a3bd9),
    ("starfield", 320, 240, 61, 0x4a3720d3),
    ("rotozoom", 640, 360, 0, 0xf6258c00),
    ("rotozoom", 640, 360, 61, 0xb97ea0a5),
    ("rotozoom", 640, 360, 1000, 0xa5f37f68),
    ("rotozoom", 1280, 720, 0, 0x76b427a2),
    ("rotozoom", 1280, 720, 1000, 0xd2d841d7),
    ("rotozoom", 320, 240, 61, 0x66400177),
];

#[test]
fn golden_checksums() {
    let intervals = stats_intervals();
    let mut actual = Vec::new();
    for &scene in Scene::all() {
        for &(w, h, frames) in &[
            (640u32, 360u32, &[0u64, 61, 1000][..]),
            (1280, 720, &[0, 1000]),
            (320, 240, &[61]),
        ] {
            for &frame in frames {
                let input = if scene == Scene::Stats {
                    stats_input(&intervals)
                } else {
                    SceneInput::default()
                };
                let (_, crc) = draw(scene, frame, w, h, 0, &input);
                actual.push((scene.name(), w, h, frame, crc));
            }
        }
    }
    let listing: String = actual
        .iter()
        .map(|(s, w, h, f, c)| format!("    ({s:?}, {w}, {h}, {f}, 0x{c:08x}),\n"))
        .collect();
    let expected: Vec<_> = GOLDEN.to_vec();
    assert_eq!(actual, expected, "actual golden table:\n{listing}");
}

#[test]
fn checksum_ignores_stride_and_rendering_is_repeatable() {
    let input = SceneInput::default();
    for &scene in Scene::all() {
        let (a, crc_a) = draw(scene, 123, 320, 200, 0, &input);
        let (b, crc_b) = draw(scene, 123, 320, 200, 13, &input);
        assert_eq!(crc_a, crc_b, "{scene}");
        assert_eq!(a, b, "{scene}");
    }
}

#[test]
fn every_scene_writes_every_pixel_at_any_size() {
    let input = SceneInput::default();
    for &scene in Scene::all() {
        for &(w, h) in &[(1, 1), (3, 2), (17, 9), (64, 480), (321, 239)] {
            for frame in [0, 1, 59, 12_345_678] {
                let (px, _) = draw(scene, frame, w, h, 3, &input);
                let missed = px
                    .iter()
                    .filter(|&&p| p == SENTINEL || p >> 24 != 0)
                    .count();
                assert_eq!(
                    missed, 0,
                    "{scene} {w}x{h} frame {frame}: {missed} pixels unwritten"
                );
            }
        }
    }
}

#[test]
fn scenes_change_from_frame_to_frame() {
    let input = SceneInput::default();
    for &scene in Scene::all() {
        let (_, a) = draw(scene, 100, 320, 180, 0, &input);
        let (_, b) = draw(scene, 101, 320, 180, 0, &input);
        assert_ne!(a, b, "{scene}: frames 100 and 101 are identical");
    }
}

#[test]
fn animation_speed_is_per_second() {
    // Frame 2k at 60 fps shows the same instant as frame k at 30 fps.
    let at30 = SceneInput::with_fps(30);
    let at60 = SceneInput::with_fps(60);
    for scene in [Scene::Plasma, Scene::Rotozoom, Scene::Starfield] {
        let (_, a) = draw(scene, 240, 320, 180, 0, &at60);
        let (_, b) = draw(scene, 120, 320, 180, 0, &at30);
        assert_eq!(a, b, "{scene}");
    }
    // Clock and bounce print the frame number and rate, so compare their geometry instead.
    assert_eq!(clock::hands(240, 60), clock::hands(120, 30));
    for sprite in &bounce::SPRITES {
        assert_eq!(
            bounce::sprite_box(sprite, 240, 320, 180, 60),
            bounce::sprite_box(sprite, 120, 320, 180, 30)
        );
    }
}

#[test]
fn testcard_structure() {
    let (w, h) = (1280, 720);
    let l = testcard::Layout::new(w, h);
    for frame in [0u64, 1, 0x1234, 0xFFFF, 0x1_0005] {
        let (px, _) = draw(Scene::Testcard, frame, w, h, 0, &SceneInput::default());
        // Bars: at a row near the top of the band, ≥ 90 % of each bar's pixels have its colour
        // (the circle crosses some).
        let y = l.bars_top as i32 + 3;
        for (i, &color) in testcard::BARS.iter().enumerate() {
            let (x0, x1) = l.bar_span(i as u32);
            let hits = (x0..x1)
                .filter(|&x| at(&px, w, x as i32, y) == xrgb8888(color))
                .count();
            assert!(
                hits * 10 >= (x1 - x0) as usize * 9,
                "bar {i}: {hits}/{}",
                x1 - x0
            );
        }
        // Frame code: the centre of each bit square is white for 1, black for 0.
        let mut decoded = 0u64;
        for bit in 0..testcard::FRAME_BITS {
            let p = l.bit_origin(bit)
                + embedded_graphics::geometry::Point::new_equal(l.bit_size as i32 / 2);
            match at(&px, w, p.x, p.y) {
                0xFF_FF_FF => decoded |= 1 << bit,
                0 => {}
                other => panic!("bit {bit}: unexpected pixel {other:06x}"),
            }
        }
        assert_eq!(decoded, frame & 0xFFFF);
        // Ramps: value round(x · 255 / (w − 1)) (x = 0 and w − 1 are the white border);
        // x = 320 is clear of the circle and the cross at this row.
        let grey_y = l.bars_bottom as i32 + 2;
        let red_y = grey_y + l.ramp_height as i32;
        let blue_y = grey_y + 3 * l.ramp_height as i32;
        assert_eq!(at(&px, w, 1, grey_y), 0x00_00_00);
        assert_eq!(at(&px, w, 320, grey_y), 0x40_40_40);
        assert_eq!(at(&px, w, w as i32 - 2, grey_y), 0xFF_FF_FF);
        assert_eq!(at(&px, w, 320, red_y), 0x40_00_00);
        assert_eq!(at(&px, w, w as i32 - 2, blue_y), 0x00_00_FF);
        // Border.
        assert_eq!(at(&px, w, 0, 0), 0xFF_FF_FF);
        assert_eq!(at(&px, w, w as i32 - 1, h as i32 - 1), 0xFF_FF_FF);
    }
}

#[test]
fn clock_seconds_hand_points_where_the_frame_says() {
    let (w, h) = (1280, 720);
    let (c, r) = clock::dial(w, h);
    let probe = (r * 60 / 100) as i32;
    let seconds = xrgb8888(clock::SECONDS);
    let face = xrgb8888(clock::FACE);
    for fps in [60u32, 25] {
        let input = SceneInput::with_fps(fps);
        let frames = [
            (0u64, None),
            (15, Some((probe, 0))),
            (45, Some((-probe, 0))),
        ];
        for (second, dir) in frames {
            let (px, _) = draw(Scene::Clock, second * u64::from(fps), w, h, 0, &input);
            let right = at(&px, w, c.x + probe, c.y);
            let left = at(&px, w, c.x - probe, c.y);
            match dir {
                None => {
                    assert_eq!(right, face, "fps {fps} s {second}");
                    assert_eq!(left, face, "fps {fps} s {second}");
                }
                Some((dx, _)) => {
                    let (on, off) = if dx > 0 { (right, left) } else { (left, right) };
                    assert_eq!(on, seconds, "fps {fps} s {second}: hand missing");
                    assert_eq!(off, face, "fps {fps} s {second}: hand on the wrong side");
                }
            }
        }
    }
}

#[test]
fn bounce_sprites_are_where_sprite_box_says() {
    let (w, h) = (1280, 720);
    let input = SceneInput::default();
    let top = bounce::SPRITES.len() - 1;
    for frame in [0u64, 100, 2500, 77_777] {
        let (px, _) = draw(Scene::Bounce, frame, w, h, 0, &input);
        // The last sprite is drawn on top of the others: its centre has its colour.
        let (bbox, color) = bounce::sprite_box(&bounce::SPRITES[top], frame, w, h, 60);
        let centre = bbox.center();
        assert_eq!(
            at(&px, w, centre.x, centre.y),
            xrgb8888(color),
            "frame {frame}"
        );
        // A pixel outside every sprite box (and the label) is background.
        let boxes: Vec<_> = bounce::SPRITES
            .iter()
            .map(|s| bounce::sprite_box(s, frame, w, h, 60).0)
            .collect();
        let free = (0..h as i32)
            .flat_map(|y| (0..w as i32).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                y > 60
                    && boxes
                        .iter()
                        .all(|b| !b.contains(embedded_graphics::geometry::Point::new(x, y)))
            })
            .step_by(997);
        for (x, y) in free {
            assert_eq!(
                at(&px, w, x, y),
                xrgb8888(bounce::BACKGROUND),
                "frame {frame} ({x},{y})"
            );
        }
    }
}

#[test]
fn stats_graph_colours_bars_by_lateness() {
    let (w, h) = (1280, 720);
    let target = 1_000_000 / 60;
    let intervals = [target, 2 * target + 1, target * 3 / 2, target];
    let input = stats_input(&intervals);
    let (px, _) = draw(Scene::Stats, 5, w, h, 0, &input);
    let g = stats::GraphLayout::new(w, h);
    let bottom = g.plot.top_left.y + g.plot.size.height as i32 - 1;
    for (i, &interval) in intervals.iter().enumerate() {
        let x = g.plot.top_left.x + (i as u32 * g.slot) as i32;
        assert_eq!(
            rgb888_from_xrgb8888(at(&px, w, x, bottom)),
            stats::bar_color(interval, target),
            "bar {i}"
        );
        // Bar height: the row under the top is bar colour (the top row of a bar of exactly the
        // target interval carries the reference line), the row above the top is not.
        let bh = g.bar_height(interval, target) as i32;
        let color = stats::bar_color(interval, target);
        assert_eq!(
            rgb888_from_xrgb8888(at(&px, w, x, bottom + 2 - bh)),
            color,
            "bar {i}"
        );
        assert_ne!(
            rgb888_from_xrgb8888(at(&px, w, x, bottom - bh)),
            color,
            "bar {i}"
        );
    }
    assert_eq!(stats::bar_color(intervals[1], target), stats::LATE);
    // No samples: the plot holds no bar colour at all.
    let (empty, _) = draw(Scene::Stats, 5, w, h, 0, &stats_input(&[]));
    let bar_colours = [stats::ON_TIME, stats::SLOW].map(xrgb8888);
    assert!(!empty.iter().any(|p| bar_colours.contains(p)));
}

#[test]
fn rotozoom_centre_samples_texel_origin_at_frame_zero() {
    let (px, _) = draw(Scene::Rotozoom, 0, 640, 360, 0, &SceneInput::default());
    assert_eq!(at(&px, 640, 320, 180), demos::scenes::rotozoom::texel(0, 0));
}

#[test]
fn plasma_is_a_full_field() {
    let (px, _) = draw(Scene::Plasma, 42, 320, 180, 0, &SceneInput::default());
    let mut distinct: Vec<u32> = px.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 1000, "only {} colours", distinct.len());
    // Each channel is a sum of four terms of at most 63.
    assert!(px
        .iter()
        .all(|p| (0..3).all(|c| (p >> (8 * c)) & 0xFF <= 252)));
}

#[test]
fn unknown_scene_lists_the_valid_ones() {
    let err = Scene::from_name("mandelbrot").unwrap_err().to_string();
    for name in ["testcard", "bounce", "plasma", "clock", "stats"] {
        assert!(err.contains(name), "{err}");
    }
}
