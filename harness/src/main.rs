//! pvdispl-harness: boots real Xen 4.17 + a Debian dom0 in QEMU (TCG) and runs scenarios.
//!
//! See harness/README.md for the scenario interface. Modules: [`fetch`] (Debian packages),
//! [`image`] (dom0/guest initramfs via [`cpio`], [`ldd`], [`modules`]), [`manifest`]
//! (scenario.conf), [`qemu`] (boot + timeouts), [`watch`] (pure serial-line watcher), [`run`]
//! (one scenario → summary.json).
#![forbid(unsafe_code)]

mod cpio;
mod fetch;
mod image;
mod ldd;
mod manifest;
mod modules;
mod qemu;
mod run;
mod util;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "pvdispl-harness",
    about = "Real Xen 4.17 + dom0 in QEMU: run scenarios, report verdicts"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Download (apt-get download), verify and unpack the Debian packages into the cache.
    Fetch {
        /// Cache directory.
        #[arg(long, default_value = "cache")]
        cache: PathBuf,
    },
    /// List the scenarios.
    List {
        /// Scenario directory.
        #[arg(long, default_value = "harness/scenarios")]
        scenarios: PathBuf,
    },
    /// Run one scenario or all of them.
    Run {
        /// Scenario name (a directory of --scenarios).
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        scenario: Option<String>,
        /// Run every scenario.
        #[arg(long)]
        all: bool,
        /// Cache directory.
        #[arg(long, default_value = "cache")]
        cache: PathBuf,
        /// Output root: each scenario writes <out>/<name>/.
        #[arg(long, default_value = "out/xen-test")]
        out: PathBuf,
        /// Override every scenario's timeout (seconds).
        #[arg(long)]
        timeout: Option<u64>,
        /// Repository root.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Scenario directory (default <repo>/harness/scenarios).
        #[arg(long)]
        scenarios: Option<PathBuf>,
        /// Print every serial line, not only the condensed view.
        #[arg(long, short)]
        verbose: bool,
    },
}

fn abs(p: PathBuf) -> Result<PathBuf, String> {
    std::path::absolute(&p).map_err(|e| format!("{}: {e}", p.display()))
}

fn real_main() -> Result<bool, String> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Fetch { cache } => {
            let pk = fetch::fetch(&abs(cache)?)?;
            println!("[harness] kernel {} ; xen {}", pk.kver, pk.xen.display());
            Ok(true)
        }
        Cmd::List { scenarios } => {
            for n in run::list(&scenarios)? {
                println!("{n}");
            }
            Ok(true)
        }
        Cmd::Run {
            scenario,
            all,
            cache,
            out,
            timeout,
            repo,
            scenarios,
            verbose,
        } => {
            let repo = abs(repo)?;
            let scenarios_dir = abs(scenarios.unwrap_or_else(|| repo.join("harness/scenarios")))?;
            let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
                Some(t) if !t.is_empty() => abs(PathBuf::from(t))?,
                _ => repo.join("target"),
            };
            let names = if all {
                run::list(&scenarios_dir)?
            } else {
                vec![scenario.ok_or("--scenario NAME or --all")?]
            };
            if names.is_empty() {
                return Err(format!("no scenarios in {}", scenarios_dir.display()));
            }
            util::require_tools(&["qemu-system-x86_64", "ldd"]).map_err(|e| {
                format!("{e}; qemu-system-x86_64 comes from Debian's qemu-system-x86 package")
            })?;
            let opts = run::RunOptions {
                repo,
                scenarios_dir,
                out_root: abs(out)?,
                cache: abs(cache)?,
                target_dir,
                timeout_override_s: timeout,
                verbose,
            };
            let fetch_start = std::time::Instant::now();
            let pk = fetch::fetch(&opts.cache)?;
            println!(
                "[harness] packages ready in {:.1} s (kernel {})",
                fetch_start.elapsed().as_secs_f64(),
                pk.kver
            );
            let mut all_ok = true;
            let mut lines = Vec::new();
            for name in &names {
                let line = match run::run_one(&opts, &pk, name) {
                    Ok(s) => {
                        println!("Test result: {} {}", s.result, s.reason);
                        all_ok &= s.result == watch::Status::Success;
                        format!(
                            "{name}: {} in {:.1} s ({}) -> {}",
                            s.result,
                            s.wall_seconds,
                            s.reason,
                            opts.out_root.join(name).join("summary.json").display()
                        )
                    }
                    Err(e) => {
                        all_ok = false;
                        println!("Test result: ERROR {e}");
                        format!("{name}: ERROR {e}")
                    }
                };
                lines.push(line);
            }
            println!("[harness] summary:");
            for l in &lines {
                println!("[harness]   {l}");
            }
            Ok(all_ok)
        }
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("pvdispl-harness: error: {e}");
            ExitCode::from(2)
        }
    }
}
