//! Scene benchmark: each scene at 1920×1080 against a full-frame memset of the same buffer.
//!
//! `cargo bench -p demos` (or `make bench`); an optional argument names one scene. For every
//! scene, `WARMUP + RUNS` iterations each time a `slice::fill` of the whole packed XRGB8888 buffer
//! (the memset bound: every scene writes every pixel at least once) and then the render of frame
//! `7·i` into the same buffer through `xen_display::framebuffer::Framebuffer`, the target the guest
//! draws into. Interleaving keeps both under the same machine load. Each is measured in thread
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`, so time spent descheduled by other load does not count)
//! and in wall time. Reported per scene: median CPU ms of render and memset and their ratio, and
//! the ratio of the minimum wall times.

use std::hint::black_box;
use std::time::{Duration, Instant};

use demos::{render, FrameStats, Scene, SceneInput};
use xen_display::framebuffer::Framebuffer;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const WARMUP: usize = 5;
const RUNS: usize = 41;

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; CLOCK_THREAD_CPUTIME_ID is supported by
    // Linux for the calling thread, and the call writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` once; returns (CPU time, wall time).
fn measure(mut f: impl FnMut()) -> (Duration, Duration) {
    let (cpu0, wall0) = (thread_cpu_time(), Instant::now());
    f();
    (thread_cpu_time() - cpu0, wall0.elapsed())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; the only other argument accepted is a scene name.
    let only: Option<Scene> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(|name| {
            Scene::from_name(&name).unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(2)
            })
        });
    let mut pixels = vec![0u32; (WIDTH * HEIGHT) as usize];
    let intervals: Vec<u32> = (0..240u32).map(|i| 16_000 + (i * 37) % 1300).collect();
    let input = SceneInput {
        fps: 60,
        stats: FrameStats {
            flips_completed: 12_345,
            late_frames: 7,
            measured_fps_milli: 59_990,
            frame_intervals_us: &intervals,
        },
    };

    println!("{WIDTH}x{HEIGHT} XRGB8888, {RUNS} runs per scene (after {WARMUP} warm-up runs)");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>10}",
        "scene", "cpu ms", "memset", "ratio", "wall-min"
    );
    for &scene in Scene::all() {
        if only.is_some_and(|o| o != scene) {
            continue;
        }
        let (mut render_cpu, mut memset_cpu) = (Vec::new(), Vec::new());
        let (mut render_wall, mut memset_wall) = (Vec::new(), Vec::new());
        for run in 0..WARMUP + RUNS {
            let value = black_box(run as u32);
            let (m_cpu, m_wall) = measure(|| {
                pixels.fill(value);
                black_box(&mut pixels);
            });
            let frame = black_box(run as u64 * 7);
            let mut fb = Framebuffer::try_new_packed(&mut pixels, WIDTH, HEIGHT)
                .expect("the buffer holds exactly WIDTH × HEIGHT pixels");
            let (r_cpu, r_wall) = measure(|| {
                let Ok(()) = render(scene, frame, &mut fb, &input);
                black_box(&mut fb);
            });
            if run >= WARMUP {
                render_cpu.push(r_cpu);
                memset_cpu.push(m_cpu);
                render_wall.push(r_wall);
                memset_wall.push(m_wall);
            }
        }
        let (r, m) = (median(&mut render_cpu), median(&mut memset_cpu));
        let wall_min = |v: &[Duration]| *v.iter().min().expect("RUNS > 0");
        println!(
            "{:<10} {:>9.3} {:>9.3} {:>9.2} {:>10.2}",
            scene.name(),
            ms(r),
            ms(m),
            r.as_secs_f64() / m.as_secs_f64(),
            wall_min(&render_wall).as_secs_f64() / wall_min(&memset_wall).as_secs_f64()
        );
    }
}
