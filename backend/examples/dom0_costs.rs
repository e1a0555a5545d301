//! Micro-benchmark of the backend's per-flip building blocks, meant to run in dom0
//! (under TCG every figure is far above native): checksum of a frame held in
//! granted-memory form at several sizes, crc32fast over plain bytes, a memcpy of a
//! frame, clock and CPU-time reads, and appending a CSV line to a file in a given
//! directory. No `unsafe` here: the backend's `os` layer is the only place for it.
//!
//! `cargo build -p pvdispl-backend --release --example dom0_costs`, then
//! `dom0_costs [DIR...]` (each DIR gets a scratch file for the append test).

use std::io::Write;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use pvdispl_backend::capture::FrameView;
use pvdispl_backend::pixel::PixelFormat;
use pvdispl_backend::platform::{write_words, GrantMemory};

struct Pages(Vec<Box<[AtomicU32]>>);

impl GrantMemory for Pages {
    fn nr_pages(&self) -> usize {
        self.0.len()
    }
    fn page(&self, index: usize) -> &[AtomicU32] {
        &self.0[index]
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median over `runs` of the wall time of `f`, in microseconds.
fn time_us(runs: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

fn main() {
    for (w, h) in [(320u32, 240u32), (640, 360), (1920, 1080)] {
        let nr_pages = (w * h * 4).div_ceil(4096) as usize;
        let memory = Pages(
            (0..nr_pages)
                .map(|_| (0..1024).map(|_| AtomicU32::new(0)).collect())
                .collect(),
        );
        let bytes: Vec<u8> = (0..w * h)
            .flat_map(|i| (i.wrapping_mul(2654435761)).to_le_bytes())
            .collect();
        write_words(&memory, 0, &bytes).unwrap();
        let view = FrameView {
            memory: &memory,
            data_ofs: 0,
            pitch: (w * 4) as usize,
            format: PixelFormat::Xrgb8888,
            width: w,
            height: h,
        };
        let runs = if w > 1000 { 5 } else { 21 };
        let mut sink = 0u32;
        let checksum = time_us(runs, || sink ^= view.checksum(false).unwrap().0);
        let rows = time_us(runs, || {
            view.for_each_row(|r| sink ^= r[0]).unwrap();
        });
        let crc = time_us(runs, || {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&bytes);
            sink ^= hasher.finalize();
        });
        let mut copy = vec![0u8; bytes.len()];
        let memcpy = time_us(runs, || {
            copy.copy_from_slice(&bytes);
            sink ^= u32::from(copy[7]);
        });
        println!(
            "{w}x{h}: checksum {checksum:.0} us, rows only {rows:.0} us, crc32fast over bytes {crc:.0} us, memcpy {memcpy:.0} us ({sink:x})"
        );
    }
    let now = time_us(1001, || {
        std::hint::black_box(Instant::now());
    });
    let cpu = time_us(1001, || {
        std::hint::black_box(pvdispl_backend::os::rusage::thread_cpu_ns());
    });
    println!("Instant::now {now:.2} us, getrusage(RUSAGE_THREAD) {cpu:.2} us");
    let line = "123,flip,123456789,0x1000,640,360,deadbeef\n";
    let fmt = time_us(1001, || {
        std::hint::black_box(format!(
            "dom{}/{}/c{}: frame {} {} fb {:#x} {}x{} at {:.3} ms crc32 {:08x}",
            1, "0", 0, 123, "flip", 0x1000, 640, 360, 1234.5678f64, 0xdeadbeefu32
        ));
    });
    println!("format! of a frame log line {fmt:.2} us");
    for dir in std::env::args().skip(1) {
        let path = std::path::Path::new(&dir).join("dom0_costs.scratch");
        let mut f = std::fs::File::create(&path).expect("scratch file");
        let append = time_us(201, || f.write_all(line.as_bytes()).unwrap());
        let mut b = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let buffered = time_us(201, || b.write_all(line.as_bytes()).unwrap());
        drop(b);
        let _ = std::fs::remove_file(&path);
        println!(
            "append a CSV line in {dir}: unbuffered {append:.1} us, buffered {buffered:.2} us"
        );
    }
}
