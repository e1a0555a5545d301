//! Frame capture: checksums of every shown frame, PNG snapshots, an APNG of a run.
//!
//! A frame is the visible area of a connector (`SET_CONFIG`'s width x height,
//! read from the framebuffer's origin) converted to `0x00RRGGBB`. Its checksum is
//! the CRC-32 (IEEE) of those pixels written row by row as little-endian u32 —
//! the same bytes an XRGB8888 buffer with a zero X byte holds, so a checker can
//! compute the expected value independently. Nothing is copied per frame unless
//! a snapshot or APNG frame is wanted: rows stream through one scratch row.
//!
//! `frames.csv` is written through a buffer, flushed once a second of frame
//! time, at the end of the connection and when the recorder is dropped: under
//! TCG a write to the harness's 9p share costs about half a millisecond, far
//! too much per frame at 60 Hz.
//!
//! PNG encoding and writing (snapshots, APNG frames) happen on a worker thread
//! ([`ImageWorker`]): under TCG one 640x360 snapshot took ~80 ms, which on the
//! device thread delayed the next flips by several frames. The device thread
//! only extracts the RGB image (during the checksum pass) and queues it.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use crate::pixel::PixelFormat;
use crate::platform::{read_bytes, GrantMemory, OutOfRange};

/// Where a frame's pixels are.
pub struct FrameView<'a> {
    /// The buffer's memory.
    pub memory: &'a dyn GrantMemory,
    /// Byte offset of the first pixel (`data_ofs`).
    pub data_ofs: usize,
    /// Bytes per row.
    pub pitch: usize,
    /// Pixel format.
    pub format: PixelFormat,
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in pixels.
    pub height: u32,
}

impl FrameView<'_> {
    /// Stream the visible rows as `0x00RRGGBB`.
    pub fn for_each_row(&self, mut f: impl FnMut(&[u32])) -> Result<(), OutOfRange> {
        let row_bytes = self.width as usize * self.format.bytes_per_pixel();
        let row_bytes = if self.format == PixelFormat::Yuyv {
            row_bytes.div_ceil(4) * 4
        } else {
            row_bytes
        };
        let mut raw = vec![0u8; row_bytes];
        let mut rgb = vec![0u32; self.width as usize];
        let is_word_aligned = self.data_ofs % 4 == 0 && self.pitch % 4 == 0;
        if self.format.bpp() == 32 && is_word_aligned {
            // Fast path (XRGB/ARGB8888): whole words, X/alpha byte masked off.
            for y in 0..self.height as usize {
                let offset = y
                    .checked_mul(self.pitch)
                    .and_then(|o| o.checked_add(self.data_ofs))
                    .ok_or(OutOfRange)?;
                crate::platform::read_words(self.memory, offset, &mut rgb)?;
                for px in rgb.iter_mut() {
                    *px &= 0x00ff_ffff;
                }
                f(&rgb);
            }
            return Ok(());
        }
        for y in 0..self.height as usize {
            let offset = y
                .checked_mul(self.pitch)
                .and_then(|o| o.checked_add(self.data_ofs))
                .ok_or(OutOfRange)?;
            read_bytes(self.memory, offset, &mut raw)?;
            self.format.row_to_rgb(&raw, &mut rgb);
            f(&rgb);
        }
        Ok(())
    }

    /// The per-flip hot path (32 bpp, word-aligned rows, no image): each row's
    /// words are read, masked and laid out as bytes in one pass.
    fn checksum_words(&self) -> Result<u32, OutOfRange> {
        let mut hasher = crc32fast::Hasher::new();
        let mut bytes = vec![0u8; self.width as usize * 4];
        for y in 0..self.height as usize {
            let offset = y
                .checked_mul(self.pitch)
                .and_then(|o| o.checked_add(self.data_ofs))
                .ok_or(OutOfRange)?;
            crate::platform::read_words_masked(self.memory, offset, 0x00ff_ffff, &mut bytes)?;
            hasher.update(&bytes);
        }
        Ok(hasher.finalize())
    }

    /// CRC-32 of the visible area (see the module docs), and the RGB8 image if asked.
    pub fn checksum(&self, want_image: bool) -> Result<(u32, Option<Vec<u8>>), OutOfRange> {
        if !want_image && self.format.bpp() == 32 && self.data_ofs % 4 == 0 && self.pitch % 4 == 0 {
            return self.checksum_words().map(|crc| (crc, None));
        }
        let mut hasher = crc32fast::Hasher::new();
        let mut image =
            want_image.then(|| Vec::with_capacity(self.width as usize * self.height as usize * 3));
        let mut bytes = vec![0u8; self.width as usize * 4];
        self.for_each_row(|row| {
            for (out, px) in bytes.chunks_exact_mut(4).zip(row) {
                out.copy_from_slice(&px.to_le_bytes());
            }
            hasher.update(&bytes);
            if let Some(image) = image.as_mut() {
                for px in row {
                    image.extend_from_slice(&[(px >> 16) as u8, (px >> 8) as u8, *px as u8]);
                }
            }
        })?;
        Ok((hasher.finalize(), image))
    }
}

/// What to capture beyond checksums.
#[derive(Clone, Debug, Default)]
pub struct CapturePolicy {
    /// Directory for this connector's files (`None`: log only).
    pub dir: Option<PathBuf>,
    /// Snapshot every Nth frame (frame numbers divisible by N).
    pub snapshot_every: Option<u64>,
    /// Snapshot these frame numbers.
    pub snapshot_frames: BTreeSet<u64>,
    /// Snapshot the frame on screen when the connection ends.
    pub snapshot_at_end: bool,
    /// Record an APNG of the run (every frame, up to `apng_max_frames`).
    pub apng: bool,
    /// Cap on APNG frames kept in memory.
    pub apng_max_frames: usize,
}

/// One shown frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FrameRecord {
    /// Frame number on this connector since connect (0, 1, ...).
    pub frame: u64,
    /// `config` (SET_CONFIG) or `flip` (PG_FLIP).
    pub kind: &'static str,
    /// Arrival time of the request, ns since the connection started.
    pub arrival_ns: u64,
    /// Framebuffer shown.
    pub fb_cookie: u64,
    /// Visible width.
    pub width: u32,
    /// Visible height.
    pub height: u32,
    /// CRC-32 of the visible area.
    pub crc32: u32,
    /// A snapshot or APNG image was taken of this frame (extra CPU).
    #[serde(skip)]
    pub has_image: bool,
}

/// `frames.csv` is flushed when this much frame time passed since the last flush.
const CSV_FLUSH_NS: u64 = 1_000_000_000;

/// Per-connector recorder of frames, snapshots and the APNG.
pub struct Recorder {
    policy: CapturePolicy,
    csv: Option<BufWriter<std::fs::File>>,
    csv_flushed_ns: u64,
    images: Option<ImageWorker>,
    apng_kept: usize,
    apng_dropped: u64,
    /// Files written (snapshots, APNG), known once [`Recorder::finish`] ran.
    pub written: Vec<PathBuf>,
}

/// Work for the [`ImageWorker`].
enum ImageJob {
    /// Encode and write a PNG.
    Png {
        path: PathBuf,
        width: u32,
        height: u32,
        rgb: Vec<u8>,
    },
    /// Encode a frame of `run.apng` and keep it.
    ApngFrame {
        width: u32,
        height: u32,
        rgb: Vec<u8>,
        arrival_ns: u64,
    },
    /// Write `run.apng` (if frames were kept) and stop.
    Finish { apng: PathBuf, dropped: u64 },
}

/// A thread that encodes and writes images off the device thread. Its queue
/// is bounded: a device thread producing images faster than they are written
/// waits rather than using unbounded memory.
struct ImageWorker {
    jobs: SyncSender<ImageJob>,
    thread: JoinHandle<Vec<PathBuf>>,
}

/// Images queued to the worker before the device thread waits.
const IMAGE_QUEUE: usize = 4;

impl ImageWorker {
    fn start() -> std::io::Result<ImageWorker> {
        let (jobs, queue) = sync_channel::<ImageJob>(IMAGE_QUEUE);
        let thread = std::thread::Builder::new()
            .name("capture-images".into())
            .spawn(move || {
                // Below the device threads: images may wait, flips may not.
                if let Err(e) = crate::os::rusage::lower_thread_priority() {
                    log::warn!("capture: could not lower the image thread's priority: {e}");
                }
                let mut written = Vec::new();
                let mut apng_frames = Vec::new();
                for job in queue {
                    match job {
                        ImageJob::Png {
                            path,
                            width,
                            height,
                            rgb,
                        } => match encode_png(width, height, &rgb)
                            .and_then(|png| std::fs::write(&path, png).map_err(|e| e.to_string()))
                        {
                            Ok(()) => {
                                log::info!("capture: wrote {}", path.display());
                                written.push(path);
                            }
                            Err(e) => log::error!("capture: writing {}: {e}", path.display()),
                        },
                        ImageJob::ApngFrame {
                            width,
                            height,
                            rgb,
                            arrival_ns,
                        } => match encode_png(width, height, &rgb) {
                            Ok(png) => apng_frames.push((png, width, height, arrival_ns)),
                            Err(e) => log::error!("capture: encoding an APNG frame: {e}"),
                        },
                        ImageJob::Finish { apng, dropped } => {
                            if !apng_frames.is_empty() {
                                match write_apng(&apng, &apng_frames) {
                                    Ok(n) => {
                                        log::info!(
                                            "capture: wrote {} ({n} frames, {dropped} beyond the cap not kept)",
                                            apng.display()
                                        );
                                        written.push(apng);
                                    }
                                    Err(e) => {
                                        log::error!("capture: writing {}: {e}", apng.display())
                                    }
                                }
                            }
                            break;
                        }
                    }
                }
                written
            })?;
        Ok(ImageWorker { jobs, thread })
    }
}

impl Recorder {
    /// A recorder writing into `policy.dir` (created if needed).
    pub fn new(policy: CapturePolicy) -> Recorder {
        let csv = policy.dir.as_ref().and_then(|dir| {
            let open = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::File::create(dir.join("frames.csv")));
            match open {
                Ok(f) => {
                    let mut f = BufWriter::new(f);
                    let _ = writeln!(f, "frame,kind,arrival_ns,fb_cookie,width,height,crc32");
                    Some(f)
                }
                Err(e) => {
                    log::error!("capture: cannot create {}: {e}", dir.display());
                    None
                }
            }
        });
        Recorder {
            policy,
            csv,
            csv_flushed_ns: 0,
            images: None,
            apng_kept: 0,
            apng_dropped: 0,
            written: Vec::new(),
        }
    }

    /// This connector's output directory, if capturing to files.
    pub fn dir(&self) -> Option<&Path> {
        self.policy.dir.as_deref()
    }

    fn wants_snapshot(&self, frame: u64) -> bool {
        self.policy.dir.is_some()
            && (self
                .policy
                .snapshot_every
                .is_some_and(|n| n > 0 && frame % n == 0)
                || self.policy.snapshot_frames.contains(&frame))
    }

    fn wants_apng(&self) -> bool {
        self.policy.dir.is_some() && self.policy.apng
    }

    /// Checksum (and maybe snapshot) a frame that just became visible.
    pub fn on_frame(
        &mut self,
        frame: u64,
        kind: &'static str,
        arrival_ns: u64,
        fb_cookie: u64,
        view: &FrameView<'_>,
    ) -> Result<FrameRecord, OutOfRange> {
        let snapshot = self.wants_snapshot(frame);
        let apng = self.wants_apng() && self.apng_kept < self.policy.apng_max_frames;
        if self.wants_apng() && !apng {
            self.apng_dropped += 1;
        }
        let (crc32, image) = view.checksum(snapshot || apng)?;
        let record = FrameRecord {
            frame,
            kind,
            arrival_ns,
            fb_cookie,
            width: view.width,
            height: view.height,
            crc32,
            has_image: image.is_some(),
        };
        if let Some(csv) = self.csv.as_mut() {
            let _ = writeln!(
                csv,
                "{},{},{},{:#x},{},{},{:08x}",
                frame, kind, arrival_ns, fb_cookie, view.width, view.height, crc32
            );
            if arrival_ns.saturating_sub(self.csv_flushed_ns) >= CSV_FLUSH_NS {
                self.csv_flushed_ns = arrival_ns;
                let _ = csv.flush();
            }
        }
        if let Some(rgb) = image {
            let (width, height) = (view.width, view.height);
            let name = format!("frame-{frame:06}.png");
            if apng {
                self.apng_kept += 1;
                let (for_apng, for_png) = if snapshot {
                    (rgb.clone(), Some(rgb))
                } else {
                    (rgb, None)
                };
                self.queue(ImageJob::ApngFrame {
                    width,
                    height,
                    rgb: for_apng,
                    arrival_ns,
                });
                if let Some(rgb) = for_png {
                    self.write_png(&name, width, height, rgb);
                }
            } else if snapshot {
                self.write_png(&name, width, height, rgb);
            }
        }
        Ok(record)
    }

    /// Snapshot `view` as `final.png` if the policy asks for it: called when a
    /// frame leaves the screen for good (display disabled, fb detached while
    /// shown, connection ended), so `final.png` is the last frame shown.
    pub fn on_end(&mut self, view: Option<&FrameView<'_>>) {
        if !self.policy.snapshot_at_end || self.policy.dir.is_none() {
            return;
        }
        if let Some(view) = view {
            match view.checksum(true) {
                Ok((_, Some(image))) => self.write_png("final.png", view.width, view.height, image),
                Ok(_) => {}
                Err(OutOfRange) => log::error!("capture: final frame lies outside its buffer"),
            }
        }
    }

    fn write_png(&mut self, name: &str, width: u32, height: u32, rgb: Vec<u8>) {
        let Some(dir) = self.policy.dir.as_ref() else {
            return;
        };
        let path = dir.join(name);
        self.queue(ImageJob::Png {
            path,
            width,
            height,
            rgb,
        });
    }

    /// Hand `job` to the image worker (started on first use).
    fn queue(&mut self, job: ImageJob) {
        if self.images.is_none() {
            match ImageWorker::start() {
                Ok(worker) => self.images = Some(worker),
                Err(e) => {
                    log::error!("capture: cannot start the image thread: {e}; image dropped");
                    return;
                }
            }
        }
        if let Some(worker) = self.images.as_ref() {
            if worker.jobs.send(job).is_err() {
                log::error!("capture: the image thread has stopped; image dropped");
            }
        }
    }

    /// Flush `frames.csv`, let the image worker write `run.apng` from the
    /// frames kept (delays from their arrival times) and wait for it.
    pub fn finish(&mut self) {
        if let Some(csv) = self.csv.as_mut() {
            if let Err(e) = csv.flush() {
                log::error!("capture: writing frames.csv: {e}");
            }
        }
        let Some(worker) = self.images.take() else {
            return;
        };
        if let Some(dir) = self.policy.dir.as_ref() {
            let _ = worker.jobs.send(ImageJob::Finish {
                apng: dir.join("run.apng"),
                dropped: self.apng_dropped,
            });
        }
        drop(worker.jobs);
        match worker.thread.join() {
            Ok(written) => self.written.extend(written),
            Err(_) => log::error!("capture: the image thread panicked"),
        }
        self.apng_kept = 0;
    }
}

/// Encode RGB8 pixels as a PNG.
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn decode_png(png_bytes: &[u8]) -> Result<Vec<u8>, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    Ok(buf)
}

/// Write an APNG whose canvas is the first frame's size; frames of another size
/// are skipped. Returns the number of frames written.
fn write_apng(path: &Path, frames: &[(Vec<u8>, u32, u32, u64)]) -> Result<usize, String> {
    let (_, width, height, _) = frames[0];
    let usable: Vec<_> = frames
        .iter()
        .filter(|f| f.1 == width && f.2 == height)
        .collect();
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder
        .set_animated(usable.len() as u32, 0)
        .map_err(|e| e.to_string())?;
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    for (i, (png_bytes, _, _, arrival)) in usable.iter().enumerate() {
        let next = usable
            .get(i + 1)
            .map(|f| f.3)
            .unwrap_or(arrival + 16_666_667);
        let delay_ms =
            (next.saturating_sub(*arrival) / 1_000_000).clamp(1, u64::from(u16::MAX)) as u16;
        writer
            .set_frame_delay(delay_ms, 1000)
            .map_err(|e| e.to_string())?;
        writer
            .write_image_data(&decode_png(png_bytes)?)
            .map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    Ok(usable.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::write_words;
    use crate::sim::HeapMemory;

    fn xrgb_buffer(width: u32, height: u32, pitch: usize, data_ofs: usize) -> HeapMemory {
        let size = data_ofs + pitch * height as usize;
        let memory = HeapMemory::new(size.div_ceil(4096));
        for y in 0..height as usize {
            let row: Vec<u8> = (0..width)
                .flat_map(|x| (0xff00_0000u32 | (x << 8) | y as u32).to_le_bytes())
                .collect();
            write_words(&memory, data_ofs + y * pitch, &row).unwrap();
        }
        memory
    }

    #[test]
    fn checksum_is_crc_of_rgb_rows_independent_of_pitch_and_x_byte() {
        let (w, h) = (37u32, 5u32);
        let expected = {
            let mut hasher = crc32fast::Hasher::new();
            for y in 0..h {
                for x in 0..w {
                    hasher.update(&((x << 8) | y).to_le_bytes());
                }
            }
            hasher.finalize()
        };
        for (pitch, ofs) in [(w as usize * 4, 0), (4096, 4096 + 8)] {
            let memory = xrgb_buffer(w, h, pitch, ofs);
            let view = FrameView {
                memory: &memory,
                data_ofs: ofs,
                pitch,
                format: PixelFormat::Xrgb8888,
                width: w,
                height: h,
            };
            let (crc, image) = view.checksum(true).unwrap();
            assert_eq!(crc, expected);
            let image = image.unwrap();
            assert_eq!(image.len(), (w * h * 3) as usize);
            assert_eq!(&image[3..6], &[0, 1, 0]);
        }
    }

    #[test]
    fn view_beyond_the_buffer_is_an_error_not_a_panic() {
        let memory = HeapMemory::new(1);
        let view = FrameView {
            memory: &memory,
            data_ofs: 0,
            pitch: 4096,
            format: PixelFormat::Xrgb8888,
            width: 1024,
            height: 2,
        };
        assert_eq!(view.checksum(false), Err(OutOfRange));
    }

    #[test]
    fn snapshots_and_apng_are_written_on_request() {
        let dir = std::env::temp_dir().join(format!("pvdispl-capture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let policy = CapturePolicy {
            dir: Some(dir.clone()),
            snapshot_every: Some(2),
            snapshot_frames: [3].into_iter().collect(),
            snapshot_at_end: true,
            apng: true,
            apng_max_frames: 3,
        };
        let mut recorder = Recorder::new(policy);
        let memory = xrgb_buffer(8, 4, 32, 0);
        let view = FrameView {
            memory: &memory,
            data_ofs: 0,
            pitch: 32,
            format: PixelFormat::Xrgb8888,
            width: 8,
            height: 4,
        };
        for frame in 0..5 {
            recorder
                .on_frame(frame, "flip", frame * 16_000_000, 1, &view)
                .unwrap();
        }
        recorder.on_end(Some(&view));
        recorder.finish();
        for name in [
            "frame-000000.png",
            "frame-000002.png",
            "frame-000003.png",
            "frame-000004.png",
            "final.png",
            "run.apng",
        ] {
            assert!(dir.join(name).exists(), "{name}");
        }
        assert!(!dir.join("frame-000001.png").exists());
        assert_eq!(recorder.written.len(), 6, "{:?}", recorder.written);
        let csv = std::fs::read_to_string(dir.join("frames.csv")).unwrap();
        assert_eq!(csv.lines().count(), 6);
        // The snapshot decodes to the pixels we wrote.
        let rgb = decode_png(&std::fs::read(dir.join("frame-000002.png")).unwrap()).unwrap();
        assert_eq!(&rgb[..6], &[0, 0, 0, 0, 1, 0]);
        let apng = std::fs::read(dir.join("run.apng")).unwrap();
        assert!(apng.windows(4).any(|w| w == b"acTL"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
