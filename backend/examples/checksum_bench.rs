//! Host micro-benchmark: CPU time to checksum one 1920x1080 XRGB8888 frame held in
//! granted-memory form (pages of atomics), the per-flip work of the backend.
//!
//! `cargo run -p pvdispl-backend --release --example checksum_bench`

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

fn main() {
    let (w, h) = (1920u32, 1080u32);
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
    let runs = 20;
    let start = Instant::now();
    let mut crc = 0;
    for _ in 0..runs {
        crc ^= view.checksum(false).unwrap().0;
    }
    let per = start.elapsed() / runs;
    println!(
        "1920x1080 XRGB8888 checksum: {:.3} ms per frame (crc {crc:08x})",
        per.as_secs_f64() * 1e3
    );
    let start = Instant::now();
    let mut rows = 0u64;
    for _ in 0..runs {
        view.for_each_row(|r| rows += u64::from(r[0] & 1)).unwrap();
    }
    println!(
        "  of which reading + converting rows: {:.3} ms",
        (start.elapsed() / runs).as_secs_f64() * 1e3
    );
    let start = Instant::now();
    for _ in 0..runs {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes);
        crc ^= hasher.finalize();
    }
    println!(
        "  crc32fast alone over 8 MB: {:.3} ms ({rows}, {crc:08x})",
        (start.elapsed() / runs).as_secs_f64() * 1e3
    );
}
