//! Runs QEMU (TCG) with Xen + dom0, streams the serial line through the [`Watcher`], enforces
//! timeouts and stops QEMU on fatal events.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::watch::{source_of, Event, Source, Status, Watcher};

/// Seconds until Xen's version line must have appeared.
pub const XEN_BANNER_TIMEOUT_S: u64 = 60;
/// Seconds until dom0's init must report `dom0_up`.
pub const DOM0_UP_TIMEOUT_S: u64 = 150;
/// Seconds QEMU gets to exit after the verdict (dom0 flushes /out, then exits via isa-debug-exit).
const EXIT_GRACE_S: u64 = 30;

/// Everything one boot needs.
#[derive(Debug)]
pub struct BootSpec {
    /// Gunzipped Xen.
    pub xen: PathBuf,
    /// dom0 kernel.
    pub vmlinuz: PathBuf,
    /// dom0 initramfs.
    pub initramfs: PathBuf,
    /// Host directory shared as `/out`.
    pub out_dir: PathBuf,
    /// Full serial log path.
    pub serial_log: PathBuf,
    /// Overall wall-clock limit.
    pub timeout: Duration,
    /// Print every serial line (else a condensed view).
    pub verbose: bool,
    /// Extra Xen command-line options (the scenario's `xen = ...`).
    pub xen_args: Vec<String>,
}

/// A timestamped milestone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stamp {
    /// Milestone name.
    pub name: String,
    /// Detail text.
    pub detail: String,
    /// Seconds since QEMU started.
    pub seconds: f64,
}

/// What one boot produced.
#[derive(Debug)]
pub struct BootResult {
    /// Final status.
    pub status: Status,
    /// Reason text.
    pub reason: String,
    /// Milestones in order.
    pub stamps: Vec<Stamp>,
    /// Total wall seconds.
    pub wall_seconds: f64,
    /// QEMU's exit code if it exited by itself.
    pub qemu_exit_code: Option<i32>,
}

fn check_path(p: &Path, what: &str) -> Result<String, String> {
    let s = p.to_string_lossy().into_owned();
    if s.contains(',') || s.contains(' ') {
        return Err(format!(
            "{what} path {s:?} contains ',' or ' ', which QEMU's option syntax cannot carry"
        ));
    }
    Ok(s)
}

/// The QEMU command line (see shared notes: every flag there is load-bearing).
pub fn command(spec: &BootSpec) -> Result<Command, String> {
    let xen = check_path(&spec.xen, "Xen")?;
    let vmlinuz = check_path(&spec.vmlinuz, "kernel")?;
    let initrd = check_path(&spec.initramfs, "initramfs")?;
    let out = check_path(&spec.out_dir, "output")?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg,thread=multi"])
        .args(["-cpu", "qemu64,+svm,+npt,+rdrand"])
        .args(["-smp", "2", "-m", "3072", "-machine", "pc"])
        .args([
            "-display",
            "none",
            "-vga",
            "none",
            "-nic",
            "none",
            "-parallel",
            "none",
        ])
        .args(["-serial", "stdio", "-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-kernel", &xen])
        .arg("-append")
        .arg(
            std::iter::once(
                "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all",
            )
            .chain(spec.xen_args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        )
        // Multiboot modules: "file args,file" (commas separate modules).
        .arg("-initrd")
        .arg(format!("{vmlinuz} console=hvc0 earlyprintk=xen,{initrd}"))
        .arg("-virtfs")
        .arg(format!(
            "local,path={out},mount_tag=out,security_model=none"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

/// Stops QEMU: SIGTERM, then SIGKILL after 3 s. Returns its exit code if it had one.
fn stop(child: &mut Child) -> Option<i32> {
    if let Ok(Some(st)) = child.try_wait() {
        return st.code();
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok().and_then(|s| s.code())
}

fn show(line: &str, t: f64, verbose: bool) {
    let interesting = line.starts_with("[scenario]")
        || line.starts_with("[dom0]")
        || matches!(source_of(line), Source::Guest(_));
    if verbose || interesting {
        println!("{t:7.2} | {line}");
    }
}

/// Boots and watches. Never hangs: every phase has a deadline.
pub fn boot(spec: &BootSpec) -> Result<BootResult, String> {
    let mut cmd = command(spec)?;
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        format!("cannot start qemu-system-x86_64: {e} (install Debian's qemu-system-x86)")
    })?;
    let stdout = child.stdout.take().ok_or("no QEMU stdout")?;
    let stderr = child.stderr.take().ok_or("no QEMU stderr")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut buf = Vec::new();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(buf).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });

    let mut log = std::fs::File::create(&spec.serial_log)
        .map_err(|e| format!("{}: {e}", spec.serial_log.display()))?;
    let timed_path = spec.serial_log.with_file_name("serial-timed.log");
    let mut timed = std::io::BufWriter::new(
        std::fs::File::create(&timed_path).map_err(|e| format!("{}: {e}", timed_path.display()))?,
    );
    let mut watcher = Watcher::new();
    let mut stamps: Vec<Stamp> = Vec::new();
    let mut verdict: Option<(Status, String)> = None;
    let mut verdict_at: Option<Instant> = None;
    let mut fatal: Option<String> = None;
    let mut exited = false;

    loop {
        let now = Instant::now();
        let elapsed = now - start;
        let has = |stamps: &[Stamp], n: &str| stamps.iter().any(|s| s.name == n);
        // Deadlines.
        let deadline_error = if elapsed > spec.timeout {
            Some(format!(
                "timeout: no verdict after {} s",
                spec.timeout.as_secs()
            ))
        } else if !has(&stamps, "xen_banner") && elapsed.as_secs() >= XEN_BANNER_TIMEOUT_S {
            Some(format!(
                "Xen did not print its banner within {XEN_BANNER_TIMEOUT_S} s"
            ))
        } else if !has(&stamps, "dom0_up")
            && verdict.is_none()
            && elapsed.as_secs() >= DOM0_UP_TIMEOUT_S
        {
            Some(format!("dom0 did not come up within {DOM0_UP_TIMEOUT_S} s"))
        } else {
            None
        };
        if let Some(e) = deadline_error {
            if verdict.is_none() {
                fatal = Some(e);
            }
            break;
        }
        if let Some(at) = verdict_at {
            if now - at > Duration::from_secs(EXIT_GRACE_S) {
                eprintln!(
                    "[harness] QEMU still running {EXIT_GRACE_S} s after the verdict: stopping it"
                );
                break;
            }
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(raw) => {
                let _ = log.write_all(&raw);
                let text = String::from_utf8_lossy(&raw);
                let line = text.trim_end_matches(['\n', '\r']);
                let t = elapsed.as_secs_f64();
                let _ = writeln!(timed, "{t:8.3} {line}");
                show(line, t, spec.verbose);
                for ev in watcher.feed(line) {
                    match ev {
                        Event::Milestone { name, detail } => {
                            println!("{t:7.2} * milestone {name} {detail}");
                            stamps.push(Stamp {
                                name,
                                detail,
                                seconds: t,
                            });
                        }
                        Event::Fatal(msg) => {
                            if verdict.is_none() && fatal.is_none() {
                                eprintln!("[harness] FATAL: {msg}");
                                fatal = Some(msg);
                            }
                        }
                        Event::Verdict { status, reason } => {
                            stamps.push(Stamp {
                                name: "verdict".into(),
                                detail: format!("{status} {reason}"),
                                seconds: t,
                            });
                            verdict = Some((status, reason));
                            verdict_at = Some(now);
                        }
                    }
                }
                if fatal.is_some() {
                    // Keep a moment of output (the rest of a panic message) for the log.
                    let until = Instant::now() + Duration::from_millis(500);
                    while let Ok(raw) =
                        rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                    {
                        let _ = log.write_all(&raw);
                        show(
                            String::from_utf8_lossy(&raw).trim_end(),
                            start.elapsed().as_secs_f64(),
                            spec.verbose,
                        );
                    }
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                exited = true;
                break;
            }
        }
    }
    let _ = log.flush();
    let _ = timed.flush();
    let code = if exited {
        child.wait().ok().and_then(|s| s.code())
    } else {
        stop(&mut child)
    };
    let wall_seconds = start.elapsed().as_secs_f64();
    let stderr_text = err_thread.join().unwrap_or_default();
    let (status, reason) = match (verdict, fatal) {
        (Some(v), _) => v,
        (None, Some(f)) => (Status::Error, f),
        (None, None) => {
            let tail: Vec<&str> = stderr_text.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            (
                Status::Error,
                format!(
                    "QEMU exited ({}) before any verdict{}",
                    code.map_or("signal".to_string(), |c| format!("code {c}")),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", tail.join(" | "))
                    }
                ),
            )
        }
    };
    Ok(BootResult {
        status,
        reason,
        stamps,
        wall_seconds,
        qemu_exit_code: code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(out: &str) -> BootSpec {
        BootSpec {
            xen: "/c/xen".into(),
            vmlinuz: "/c/vmlinux".into(),
            initramfs: "/c/dom0.cpio".into(),
            out_dir: out.into(),
            serial_log: "/o/serial.log".into(),
            timeout: Duration::from_secs(100),
            verbose: false,
            xen_args: vec!["dom0_max_vcpus=1".into()],
        }
    }

    #[test]
    fn command_line_carries_the_load_bearing_flags() {
        let cmd = command(&spec("/o/x")).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        assert_eq!(after("-cpu"), "qemu64,+svm,+npt,+rdrand");
        assert_eq!(after("-accel"), "tcg,thread=multi");
        assert_eq!(after("-kernel"), "/c/xen");
        assert_eq!(
            after("-initrd"),
            "/c/vmlinux console=hvc0 earlyprintk=xen,/c/dom0.cpio"
        );
        assert_eq!(
            after("-virtfs"),
            "local,path=/o/x,mount_tag=out,security_model=none"
        );
        assert!(after("-append").contains("guest_loglvl=all"));
        assert!(after("-append").ends_with(" guest_loglvl=all dom0_max_vcpus=1"));
        assert!(args.contains(&"isa-debug-exit,iobase=0xf4,iosize=0x04".to_string()));
    }

    #[test]
    fn rejects_paths_qemu_cannot_carry() {
        assert!(command(&spec("/o/a,b")).is_err());
        assert!(command(&spec("/o/a b")).is_err());
    }
}
