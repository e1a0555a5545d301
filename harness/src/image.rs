//! Builds the dom0 initramfs (Xen tools, modules, our init, the scenario payload) and the guest
//! initramfs images a scenario asks for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cpio::{Node, Tree};
use crate::fetch::Packages;
use crate::ldd;
use crate::manifest::{expand, InitramfsSpec, ScenarioConf};
use crate::modules::ModuleDeps;

/// dom0's /init (busybox shell script).
pub const DOM0_INIT: &str = include_str!("../dom0/init");
/// Functions for scenario.sh.
pub const DOM0_LIB: &str = include_str!("../dom0/lib.sh");

/// Xen tools from `/usr/lib/xen-4.17/bin` that dom0 needs (Debian's /usr/sbin ones are wrappers).
const XEN_BINS: &[&str] = &[
    "xl",
    "xenstored",
    "xenconsoled",
    "xen-init-dom0",
    "xenconsole",
];
/// Modules every dom0 loads, in this order (dependencies are added).
pub const DOM0_MODULES: &[&str] = &[
    "xen-privcmd",
    "xenfs",
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    "virtio_pci",
    "9pnet_virtio",
    "9p",
];

/// A scenario on disk plus everything needed to resolve its host paths.
#[derive(Debug)]
pub struct ScenarioInput<'a> {
    /// Scenario name (directory name).
    pub name: &'a str,
    /// The scenario directory.
    pub dir: &'a Path,
    /// Parsed scenario.conf.
    pub conf: &'a ScenarioConf,
    /// `${VAR}` values.
    pub vars: &'a BTreeMap<&'static str, String>,
    /// Seconds dom0 gives scenario.sh.
    pub scenario_timeout_s: u64,
}

impl ScenarioInput<'_> {
    /// Expands `${VAR}`s; relative results are taken relative to the scenario dir; must exist.
    pub fn host_path(&self, raw: &str, what: &str) -> Result<PathBuf, String> {
        let expanded = expand(raw, self.vars).map_err(|e| format!("{what}: {e}"))?;
        let p = Path::new(&expanded);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        };
        if !p.is_file() {
            return Err(format!(
                "scenario {}: {what} = {} does not exist (not built yet? `make xen-test` builds kernel, backend and harness)",
                self.name,
                p.display()
            ));
        }
        Ok(p)
    }
}

fn io_err(e: std::io::Error) -> String {
    e.to_string()
}

fn modules_into(
    tree: &mut Tree,
    pk: &Packages,
    deps: &ModuleDeps,
    names: &[String],
) -> Result<(), String> {
    let files = deps.closure(names)?;
    let base = format!("/lib/modules/{}", pk.kver);
    let host_base = pk.root.join(format!("lib/modules/{}", pk.kver));
    for f in &files {
        tree.host_file(&format!("{base}/{f}"), &host_base.join(f))
            .map_err(io_err)?;
    }
    tree.bytes(
        &format!("{base}/modules.dep"),
        deps.subset_text(&files),
        0o644,
    )
    .map_err(io_err)?;
    Ok(())
}

fn load_module_deps(pk: &Packages) -> Result<ModuleDeps, String> {
    let p = pk.root.join(format!("lib/modules/{}/modules.dep", pk.kver));
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    ModuleDeps::parse(&text)
}

fn base_dirs(tree: &mut Tree) -> Result<(), String> {
    for d in ["/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/etc"] {
        tree.dir(d).map_err(io_err)?;
    }
    tree.insert("/dev/console", Node::CharDev { major: 5, minor: 1 })
        .map_err(io_err)?;
    tree.insert("/dev/null", Node::CharDev { major: 1, minor: 3 })
        .map_err(io_err)
}

/// Builds one guest initramfs (newc, uncompressed) into `out`.
pub fn build_guest(
    pk: &Packages,
    deps: &ModuleDeps,
    input: &ScenarioInput,
    spec: &InitramfsSpec,
    out: &Path,
) -> Result<(), String> {
    let mut tree = Tree::new();
    base_dirs(&mut tree)?;
    tree.dir("/bin").map_err(io_err)?;
    tree.dir("/sbin").map_err(io_err)?;
    tree.dir("/usr/bin").map_err(io_err)?;
    tree.dir("/usr/sbin").map_err(io_err)?;
    tree.host_file("/bin/busybox", &pk.busybox)
        .map_err(io_err)?;
    tree.symlink("/bin/sh", "busybox").map_err(io_err)?;
    let init = input.host_path(&spec.init, &format!("[initramfs {}] init", spec.name))?;
    let script = std::fs::read(&init).map_err(|e| format!("{}: {e}", init.display()))?;
    tree.bytes("/init", script, 0o755).map_err(io_err)?;
    if !spec.modules.is_empty() {
        modules_into(&mut tree, pk, deps, &spec.modules)?;
    }
    for (guest_path, host) in &spec.files {
        let p = input.host_path(host, &format!("[initramfs {}] {guest_path}", spec.name))?;
        tree.host_file(guest_path, &p).map_err(io_err)?;
    }
    write_tree(&tree, out)
}

fn write_tree(tree: &Tree, out: &Path) -> Result<(), String> {
    let f = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::new(f);
    tree.write_newc(&mut w)
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    use std::io::Write;
    w.flush().map_err(|e| format!("{}: {e}", out.display()))
}

/// Copies every regular file and symlink below `dir` into `tree` under `dest`.
fn copy_dir(tree: &mut Tree, dir: &Path, dest: &str) -> Result<(), String> {
    let mut stack = vec![(dir.to_path_buf(), dest.to_string())];
    while let Some((d, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", d.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let target = format!("{prefix}/{name}");
            let ft = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if ft.is_dir() {
                tree.dir(&target).map_err(io_err)?;
                stack.push((path, target));
            } else if ft.is_symlink() {
                let link =
                    std::fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                tree.symlink(&target, &link.to_string_lossy())
                    .map_err(io_err)?;
            } else {
                tree.host_file(&target, &path).map_err(io_err)?;
            }
        }
    }
    Ok(())
}

/// Builds the dom0 initramfs into `work/dom0.cpio` (guest images go to `work/` too).
pub fn build_dom0(pk: &Packages, input: &ScenarioInput, work: &Path) -> Result<PathBuf, String> {
    let deps = load_module_deps(pk)?;
    let mut tree = Tree::new();
    base_dirs(&mut tree)?;
    for d in [
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/var/lock",
        "/var/log/xen/console",
    ] {
        tree.dir(d).map_err(io_err)?;
    }
    tree.bytes("/init", DOM0_INIT, 0o755).map_err(io_err)?;
    tree.bytes("/harness/lib.sh", DOM0_LIB, 0o644)
        .map_err(io_err)?;
    tree.bytes(
        "/harness/env",
        format!(
            "SCENARIO='{}'\nSCENARIO_TIMEOUT={}\n",
            input.name, input.scenario_timeout_s
        ),
        0o644,
    )
    .map_err(io_err)?;
    tree.host_file("/bin/busybox", &pk.busybox)
        .map_err(io_err)?;
    tree.symlink("/bin/sh", "busybox").map_err(io_err)?;

    // Xen tools and their libraries.
    let mut binaries = Vec::new();
    for b in XEN_BINS {
        let p = pk.root.join("usr/lib/xen-4.17/bin").join(b);
        tree.host_file(&format!("/usr/lib/xen-4.17/bin/{b}"), &p)
            .map_err(io_err)?;
        binaries.push(p);
    }
    let usr_bin = pk.root.join("usr/bin");
    for entry in std::fs::read_dir(&usr_bin).map_err(|e| format!("{}: {e}", usr_bin.display()))? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // xenstore-utils' tools are real binaries; other /usr/bin entries are wrappers.
        if name.starts_with("xenstore") && !path.is_symlink() {
            tree.host_file(&format!("/usr/bin/{name}"), &path)
                .map_err(io_err)?;
            binaries.push(path);
        }
    }
    let xl_conf = pk.root.join("etc/xen/xl.conf");
    if xl_conf.is_file() {
        tree.host_file("/etc/xen/xl.conf", &xl_conf)
            .map_err(io_err)?;
    }

    // Scenario payload.
    copy_dir(&mut tree, input.dir, "/payload")?;
    tree.dir("/payload/bin").map_err(io_err)?;
    for (name, host) in &input.conf.payload {
        let p = input.host_path(host, &format!("[payload] {name}"))?;
        tree.host_file(&format!("/payload/{name}"), &p)
            .map_err(io_err)?;
    }
    for (name, host) in &input.conf.bins {
        let p = input.host_path(host, &format!("[bin] {name}"))?;
        tree.host_file(&format!("/payload/bin/{name}"), &p)
            .map_err(io_err)?;
        binaries.push(p);
    }
    for spec in &input.conf.initramfs {
        let out = work.join(&spec.name);
        build_guest(pk, &deps, input, spec, &out)?;
        tree.host_file(&format!("/payload/{}", spec.name), &out)
            .map_err(io_err)?;
    }

    let lib_dirs = ldd::lib_dirs(&pk.root);
    let libs = ldd::libs_of_all(&binaries, &lib_dirs)?;
    let root_str = pk.root.to_string_lossy().into_owned();
    for lib in &libs {
        let host = lib.path.to_string_lossy();
        let dest = host
            .strip_prefix(root_str.as_str())
            .unwrap_or(&host)
            .to_string();
        tree.host_file(&dest, &lib.path).map_err(io_err)?;
    }
    // glibc dlopens libgcc_s (pthread_cancel); ldd does not list it, and xl aborts without it.
    let gcc = [
        "/lib/x86_64-linux-gnu/libgcc_s.so.1",
        "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.is_file())
    .ok_or("libgcc_s.so.1 not found on the host")?;
    tree.host_file("/lib/x86_64-linux-gnu/libgcc_s.so.1", gcc)
        .map_err(io_err)?;

    // Kernel modules.
    let mut names: Vec<String> = DOM0_MODULES.iter().map(|s| s.to_string()).collect();
    names.extend(input.conf.dom0_modules.iter().cloned());
    modules_into(&mut tree, pk, &deps, &names)?;
    tree.bytes("/harness/modules.list", names.join("\n") + "\n", 0o644)
        .map_err(io_err)?;

    let out = work.join("dom0.cpio");
    write_tree(&tree, &out)?;
    Ok(out)
}
