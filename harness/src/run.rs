//! One scenario end to end: read its conf, build images, boot, write `summary.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fetch::Packages;
use crate::image::{build_dom0, ScenarioInput};
use crate::manifest::{ScenarioConf, MIN_TIMEOUT_S};
use crate::qemu::{boot, BootSpec, Stamp};
use crate::watch::{valid_milestone_name, Status};

/// Seconds of the overall timeout kept back from dom0's scenario budget (boot + log collection).
const DOM0_RESERVE_S: u64 = 60;

/// Options shared by every scenario of one invocation.
#[derive(Debug)]
pub struct RunOptions {
    /// Repository root.
    pub repo: PathBuf,
    /// `harness/scenarios`.
    pub scenarios_dir: PathBuf,
    /// Output root (`out/xen-test`).
    pub out_root: PathBuf,
    /// Cache directory (packages, build work).
    pub cache: PathBuf,
    /// `CARGO_TARGET_DIR` or `<repo>/target`.
    pub target_dir: PathBuf,
    /// Overrides every scenario's timeout.
    pub timeout_override_s: Option<u64>,
    /// Print every serial line.
    pub verbose: bool,
}

/// `summary.json`.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Verdict.
    pub result: Status,
    /// Reason text.
    pub reason: String,
    /// Seconds from QEMU start to its end.
    pub wall_seconds: f64,
    /// Seconds spent preparing (packages, images) before QEMU started.
    pub prepare_seconds: f64,
    /// First time (s since QEMU start) of each milestone.
    pub milestones: BTreeMap<String, f64>,
    /// Every milestone in order.
    pub events: Vec<Stamp>,
    /// QEMU's exit code (33 = dom0 exited via isa-debug-exit), null if it was stopped.
    pub qemu_exit_code: Option<i32>,
    /// Wall-clock limit used.
    pub timeout_seconds: u64,
    /// Kernel version (dom0 and Linux guests).
    pub kernel: String,
    /// .deb files used.
    pub packages: Vec<String>,
}

/// Scenario names (directories with a scenario.sh), sorted.
pub fn list(scenarios_dir: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let rd = std::fs::read_dir(scenarios_dir)
        .map_err(|e| format!("{}: {e}", scenarios_dir.display()))?;
    for e in rd {
        let e = e.map_err(|e| e.to_string())?;
        if e.path().join("scenario.sh").is_file() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Runs one scenario; returns its summary (also written to `<out>/<name>/summary.json`).
pub fn run_one(opts: &RunOptions, pk: &Packages, name: &str) -> Result<Summary, String> {
    if !valid_milestone_name(name) {
        return Err(format!("bad scenario name {name:?} (use [A-Za-z0-9_.-])"));
    }
    let prep_start = Instant::now();
    let dir = opts.scenarios_dir.join(name);
    if !dir.join("scenario.sh").is_file() {
        let known = list(&opts.scenarios_dir).unwrap_or_default();
        return Err(format!(
            "no scenario {name:?}: {} has no scenario.sh (known: {})",
            dir.display(),
            known.join(", ")
        ));
    }
    let conf_path = dir.join("scenario.conf");
    let conf = if conf_path.is_file() {
        let text = std::fs::read_to_string(&conf_path)
            .map_err(|e| format!("{}: {e}", conf_path.display()))?;
        ScenarioConf::parse(&text).map_err(|e| format!("{}: {e}", conf_path.display()))?
    } else {
        ScenarioConf::default()
    };
    let timeout_s = opts.timeout_override_s.unwrap_or(conf.timeout_s);
    if timeout_s < MIN_TIMEOUT_S {
        return Err(format!(
            "timeout {timeout_s} s is below the minimum {MIN_TIMEOUT_S} s"
        ));
    }
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::new();
    vars.insert("TARGET", opts.target_dir.to_string_lossy().into_owned());
    vars.insert("REPO", opts.repo.to_string_lossy().into_owned());
    vars.insert("SCENARIO_DIR", dir.to_string_lossy().into_owned());
    vars.insert("VMLINUZ", pk.vmlinuz.to_string_lossy().into_owned());
    vars.insert(
        "VMLINUX",
        pk.vmlinux
            .as_ref()
            .unwrap_or(&pk.vmlinuz)
            .to_string_lossy()
            .into_owned(),
    );
    vars.insert("DEBROOT", pk.root.to_string_lossy().into_owned());
    let input = ScenarioInput {
        name,
        dir: &dir,
        conf: &conf,
        vars: &vars,
        scenario_timeout_s: timeout_s - DOM0_RESERVE_S,
    };

    let out_dir = opts.out_root.join(name);
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)
            .map_err(|e| format!("cannot clear {}: {e}", out_dir.display()))?;
    }
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let out_dir = out_dir.canonicalize().map_err(|e| e.to_string())?;
    let work = opts.cache.join("work").join(name);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let initramfs = build_dom0(pk, &input, &work)?;
    let size_mib = std::fs::metadata(&initramfs).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
    let prepare_seconds = prep_start.elapsed().as_secs_f64();
    println!(
        "[harness] {name}: dom0 initramfs {size_mib:.1} MiB built in {prepare_seconds:.1} s; booting Xen (timeout {timeout_s} s)"
    );

    let spec = BootSpec {
        xen: pk.xen.canonicalize().map_err(|e| e.to_string())?,
        vmlinuz: pk
            .vmlinux
            .as_ref()
            .unwrap_or(&pk.vmlinuz)
            .canonicalize()
            .map_err(|e| e.to_string())?,
        initramfs: initramfs.canonicalize().map_err(|e| e.to_string())?,
        out_dir: out_dir.clone(),
        serial_log: out_dir.join("serial.log"),
        timeout: Duration::from_secs(timeout_s),
        verbose: opts.verbose,
        xen_args: conf.xen_args.clone(),
    };
    let res = boot(&spec)?;
    let mut milestones = BTreeMap::new();
    for s in &res.stamps {
        milestones.entry(s.name.clone()).or_insert(s.seconds);
    }
    let summary = Summary {
        scenario: name.to_string(),
        result: res.status,
        reason: res.reason,
        wall_seconds: res.wall_seconds,
        prepare_seconds,
        milestones,
        events: res.stamps,
        qemu_exit_code: res.qemu_exit_code,
        timeout_seconds: timeout_s,
        kernel: pk.kver.clone(),
        packages: pk.debs.clone(),
    };
    let json = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    let path = out_dir.join("summary.json");
    std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(summary)
}
