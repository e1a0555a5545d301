//! Debian packages for the rig: resolve, download (`apt-get download`), verify, unpack.
//!
//! Cache layout under `--cache` (default `cache/`):
//! - `debs/*.deb` — downloaded once, SHA-256 checked against apt's index on every run;
//! - `root/` — all packages unpacked with `dpkg-deb -x`, `depmod` run, Xen gunzipped; rebuilt
//!   only when the set of .deb files changes (`root/.harness-stamp`).
//!
//! Nothing is installed on the host. Resolution uses the local apt lists only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{run_capture, run_status};

/// Packages fetched whatever the dependency walk says.
pub const ROOT_PACKAGES: &[&str] = &[
    "xen-hypervisor-4.17-amd64",
    "xen-utils-4.17",
    "xenstore-utils",
    "xen-utils-common",
    "busybox-static",
];
/// The meta package whose dependency names the current kernel image.
pub const KERNEL_META: &str = "linux-image-amd64";

/// Only dependencies with these prefixes are followed (the rest comes from the host, which is
/// the same Debian release: glibc, zlib, ...).
const FOLLOW_PREFIXES: &[&str] = &["libxen", "libyajl"];

/// What the rest of the harness needs from the unpacked packages.
#[derive(Debug, Clone)]
pub struct Packages {
    /// The unpacked root.
    pub root: PathBuf,
    /// Kernel version, e.g. `6.1.0-56-amd64`.
    pub kver: String,
    /// Gunzipped Xen (for QEMU's `-kernel`).
    pub xen: PathBuf,
    /// Debian's compressed kernel (dom0 and Linux PVH guests).
    pub vmlinuz: PathBuf,
    /// The same kernel uncompressed (ELF with Xen and PVH notes), if it could be extracted.
    /// Booting it skips a slow in-guest/in-Xen decompression under TCG.
    pub vmlinux: Option<PathBuf>,
    /// Static busybox.
    pub busybox: PathBuf,
    /// The .deb file names used (for the summary).
    pub debs: Vec<String>,
}

/// The offset of the XZ stream inside a bzImage (Debian builds with CONFIG_KERNEL_XZ).
pub fn find_xz_payload(image: &[u8]) -> Option<usize> {
    const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
    image.windows(XZ_MAGIC.len()).position(|w| w == XZ_MAGIC)
}

/// Unpacks the ELF `vmlinux` from a bzImage with `xz -dc --single-stream`.
fn extract_vmlinux(vmlinuz: &Path, out: &Path) -> Result<(), String> {
    if !crate::util::on_path("xz") {
        return Err("xz not on PATH".into());
    }
    let image = std::fs::read(vmlinuz).map_err(|e| format!("{}: {e}", vmlinuz.display()))?;
    let off = find_xz_payload(&image).ok_or("no XZ stream in the kernel image")?;
    let tmp = out.with_extension("part");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut child = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(std::process::Stdio::piped())
        .stdout(file)
        .spawn()
        .map_err(|e| format!("xz: {e}"))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or("xz stdin")?;
        // xz stops reading after the stream; a broken pipe on the padding is expected.
        let _ = stdin.write_all(&image[off..]);
    }
    let status = child.wait().map_err(|e| format!("xz: {e}"))?;
    let head = std::fs::read(&tmp)
        .map(|d| d.get(..4).map(<[u8]>::to_vec))
        .ok()
        .flatten();
    if !status.success() || head.as_deref() != Some(b"\x7fELF") {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "xz -dc of {} did not yield an ELF",
            vmlinuz.display()
        ));
    }
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))
}

/// Parses `apt-cache depends` output into package → dependency names (virtual `<pkg>` skipped).
pub fn parse_depends(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('|') {
            let name = line.trim().to_string();
            map.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let Some(cur) = &current else { continue };
        let body = line.trim().trim_start_matches('|');
        let Some(dep) = body
            .strip_prefix("Depends:")
            .or_else(|| body.strip_prefix("PreDepends:"))
        else {
            continue;
        };
        let dep = dep.trim();
        if dep.starts_with('<') || dep.is_empty() {
            continue;
        }
        let dep = dep.split(':').next().unwrap_or(dep).to_string();
        map.entry(cur.clone()).or_default().push(dep);
    }
    map
}

/// One line of `apt-get download --print-uris`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebUri {
    /// File name apt-get download writes.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// Parses `apt-get download --print-uris` output.
pub fn parse_print_uris(text: &str) -> Result<Vec<DebUri>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('\'') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 {
            return Err(format!("unexpected apt-get --print-uris line: {line}"));
        }
        let size = fields[2]
            .parse()
            .map_err(|_| format!("bad size in apt-get --print-uris line: {line}"))?;
        let sha256 = fields[3]
            .strip_prefix("SHA256:")
            .ok_or_else(|| format!("no SHA256 in apt-get --print-uris line: {line}"))?
            .to_ascii_lowercase();
        if fields[1].contains('/') || !fields[1].ends_with(".deb") {
            return Err(format!("unexpected file name in: {line}"));
        }
        out.push(DebUri {
            file: fields[1].to_string(),
            size,
            sha256,
        });
    }
    Ok(out)
}

fn apt_cache_depends(pkgs: &[String]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut cmd = Command::new("apt-cache");
    cmd.args([
        "depends",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
    ]);
    cmd.args(pkgs);
    let text = run_capture(&mut cmd).map_err(|e| format!("{e} (has `apt-get update` run?)"))?;
    Ok(parse_depends(&text))
}

/// Resolves the full package list (kernel image, roots, libxen*/libyajl closure).
pub fn resolve() -> Result<Vec<String>, String> {
    let meta = apt_cache_depends(&[KERNEL_META.to_string()])?;
    let kernel = meta
        .get(KERNEL_META)
        .and_then(|d| d.iter().find(|p| p.starts_with("linux-image-")))
        .cloned()
        .ok_or_else(|| {
            format!("apt knows no {KERNEL_META} dependency: run `apt-get update` first")
        })?;
    let mut all: BTreeSet<String> = ROOT_PACKAGES.iter().map(|s| s.to_string()).collect();
    all.insert(kernel);
    let mut frontier: Vec<String> = all.iter().cloned().collect();
    while !frontier.is_empty() {
        let deps = apt_cache_depends(&frontier)?;
        frontier.clear();
        for d in deps.values().flatten() {
            if FOLLOW_PREFIXES.iter().any(|p| d.starts_with(p)) && all.insert(d.clone()) {
                frontier.push(d.clone());
            }
        }
    }
    Ok(all.into_iter().collect())
}

/// Fingerprint of apt's package lists: resolution cannot change while it stays the same.
fn apt_lists_fingerprint() -> String {
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut newest = 0i64;
    if let Ok(rd) = std::fs::read_dir("/var/lib/apt/lists") {
        use std::os::unix::fs::MetadataExt;
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                count += 1;
                bytes += m.len();
                newest = newest.max(m.mtime());
            }
        }
    }
    format!("apt-lists {count} {bytes} {newest}")
}

/// [`resolve`] + `apt-get download --print-uris`, memoised in `cache/resolved.txt` for as long
/// as apt's lists do not change (each apt query costs ~1.5 s here).
fn resolve_cached(cache: &Path) -> Result<(Vec<String>, Vec<DebUri>), String> {
    let memo = cache.join("resolved.txt");
    let fingerprint = apt_lists_fingerprint();
    if let Ok(text) = std::fs::read_to_string(&memo) {
        let mut parts = text.splitn(3, "\n---\n");
        if let (Some(fp), Some(pk), Some(uris)) = (parts.next(), parts.next(), parts.next()) {
            if fp == fingerprint {
                let packages: Vec<String> = pk.lines().map(String::from).collect();
                if let Ok(uris) = parse_print_uris(uris) {
                    if uris.len() == packages.len() && !uris.is_empty() {
                        return Ok((packages, uris));
                    }
                }
            }
        }
    }
    let packages = resolve()?;
    let mut cmd = Command::new("apt-get");
    cmd.args(["download", "--print-uris"]).args(&packages);
    let uri_text = run_capture(&mut cmd)?;
    let uris = parse_print_uris(&uri_text)?;
    let _ = std::fs::write(
        &memo,
        format!(
            "{fingerprint}\n---\n{}\n---\n{uri_text}",
            packages.join("\n")
        ),
    );
    Ok((packages, uris))
}

fn sha256_of(path: &Path) -> Result<String, String> {
    let out = run_capture(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| format!("sha256sum printed nothing for {}", path.display()))
}

fn is_root_user() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// An exclusive claim on a cache directory (`<cache>/.lock/` holding the owner's pid), so two
/// harness processes sharing a cache never unpack into it at the same time.
struct CacheLock {
    dir: PathBuf,
}

/// Seconds to wait for another harness process to finish with the cache.
const CACHE_LOCK_WAIT_S: u64 = 600;

impl CacheLock {
    fn acquire(cache: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let dir = cache.join(".lock");
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let _ = std::fs::write(dir.join("pid"), std::process::id().to_string());
                    return Ok(Self { dir });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
                    let owner = owner.trim();
                    let alive = !owner.is_empty() && Path::new("/proc").join(owner).exists();
                    if !alive && start.elapsed().as_secs() >= 2 {
                        // Owner gone (or never wrote its pid): a stale lock.
                        let _ = std::fs::remove_dir_all(&dir);
                        continue;
                    }
                    if start.elapsed().as_secs() >= CACHE_LOCK_WAIT_S {
                        return Err(format!(
                            "cache {} is locked by pid {owner} for more than {CACHE_LOCK_WAIT_S} s",
                            cache.display()
                        ));
                    }
                    if !told {
                        eprintln!(
                            "[harness] waiting for pid {owner} to finish with {}",
                            cache.display()
                        );
                        told = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            }
        }
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Downloads (if needed), verifies and unpacks everything. Prints progress to stderr.
pub fn fetch(cache: &Path) -> Result<Packages, String> {
    let _lock = CacheLock::acquire(cache)?;
    crate::util::require_tools(&[
        "apt-get",
        "apt-cache",
        "dpkg-deb",
        "depmod",
        "sha256sum",
        "gzip",
    ])?;
    let debs_dir = cache.join("debs");
    std::fs::create_dir_all(&debs_dir)
        .map_err(|e| format!("cannot create {}: {e}", debs_dir.display()))?;
    let debs_dir = debs_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", debs_dir.display()))?;

    let (packages, uris) = resolve_cached(cache)?;
    if uris.len() != packages.len() {
        return Err(format!(
            "apt-get --print-uris gave {} files for {} packages ({})",
            uris.len(),
            packages.len(),
            packages.join(" ")
        ));
    }

    // Download what is missing or corrupt.
    let bad: Vec<&DebUri> = uris
        .iter()
        .filter(|u| {
            let p = debs_dir.join(&u.file);
            !(p.metadata().is_ok_and(|m| m.len() == u.size)
                && sha256_of(&p).is_ok_and(|h| h == u.sha256))
        })
        .collect();
    if bad.is_empty() {
        eprintln!(
            "[harness] packages: {} .debs cached and verified",
            uris.len()
        );
    } else {
        let names: Vec<String> = bad
            .iter()
            .map(|u| u.file.split('_').next().unwrap_or(&u.file).to_string())
            .collect();
        eprintln!(
            "[harness] downloading {} packages: {}",
            names.len(),
            names.join(" ")
        );
        for u in &bad {
            let _ = std::fs::remove_file(debs_dir.join(&u.file));
        }
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(&debs_dir).arg("download").arg("-q");
        if is_root_user() {
            // apt's _apt user cannot write into a root-owned cache directory.
            cmd.args(["-o", "APT::Sandbox::User=root"]);
        }
        cmd.args(&names);
        run_status(&mut cmd).map_err(|e| format!("package download failed: {e}"))?;
        for u in &bad {
            let p = debs_dir.join(&u.file);
            let h = sha256_of(&p).map_err(|e| format!("download of {} incomplete: {e}", u.file))?;
            if h != u.sha256 {
                return Err(format!(
                    "{}: SHA-256 {h} does not match apt's {}",
                    u.file, u.sha256
                ));
            }
        }
    }

    let root = cache.join("root");
    let mut debs: Vec<String> = uris.iter().map(|u| u.file.clone()).collect();
    debs.sort();
    let stamp_text = debs.join("\n") + "\n";
    let stamp = root.join(".harness-stamp");
    let kernel_deb = debs
        .iter()
        .find(|d| d.starts_with("linux-image-"))
        .ok_or("no linux-image .deb resolved")?;
    // linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb -> 6.1.0-56-amd64
    let kver = kernel_deb
        .split('_')
        .next()
        .and_then(|n| n.strip_prefix("linux-image-"))
        .ok_or_else(|| format!("cannot read the kernel version from {kernel_deb}"))?
        .to_string();

    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(stamp_text.as_str()) {
        eprintln!(
            "[harness] unpacking {} packages into {}",
            debs.len(),
            root.display()
        );
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .map_err(|e| format!("cannot clear {}: {e}", root.display()))?;
        }
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        for d in &debs {
            run_status(
                Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(debs_dir.join(d))
                    .arg(&root),
            )?;
        }
        run_status(Command::new("depmod").arg("-b").arg(&root).arg(&kver))?;
        let gz = root.join("boot/xen-4.17-amd64.gz");
        let xen_out = root.join("boot/xen-4.17-amd64");
        let file =
            std::fs::File::create(&xen_out).map_err(|e| format!("{}: {e}", xen_out.display()))?;
        let status = Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .stdout(file)
            .status()
            .map_err(|e| format!("gzip: {e}"))?;
        if !status.success() {
            return Err(format!("gzip -dc {} failed", gz.display()));
        }
        let vmlinuz = root.join(format!("boot/vmlinuz-{kver}"));
        let vmlinux = root.join(format!("boot/vmlinux-{kver}"));
        if let Err(e) = extract_vmlinux(&vmlinuz, &vmlinux) {
            eprintln!(
                "[harness] warning: no uncompressed kernel ({e}); booting the slower vmlinuz"
            );
        }
        std::fs::write(&stamp, &stamp_text).map_err(|e| format!("{}: {e}", stamp.display()))?;
    } else {
        eprintln!(
            "[harness] unpacked packages up to date in {}",
            root.display()
        );
    }

    let vmlinux = root.join(format!("boot/vmlinux-{kver}"));
    let pk = Packages {
        xen: root.join("boot/xen-4.17-amd64"),
        vmlinuz: root.join(format!("boot/vmlinuz-{kver}")),
        vmlinux: vmlinux.is_file().then_some(vmlinux),
        busybox: root.join("bin/busybox"),
        root,
        kver,
        debs,
    };
    for p in [&pk.xen, &pk.vmlinuz, &pk.busybox] {
        if !p.is_file() {
            return Err(format!(
                "{} missing after unpacking (corrupt cache? delete it)",
                p.display()
            ));
        }
    }
    Ok(pk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_parsing() {
        let text = "xen-utils-4.17\n  Depends: libc6\n  Depends: libxencall1\n  Depends: <python3:any>\n\
 |Depends: sysvinit-utils\n  PreDepends: libyajl2:amd64\n  Recommends: foo\nlinux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        let m = parse_depends(text);
        assert_eq!(
            m["xen-utils-4.17"],
            ["libc6", "libxencall1", "sysvinit-utils", "libyajl2"]
        );
        assert_eq!(m["linux-image-amd64"], ["linux-image-6.1.0-56-amd64"]);
    }

    #[test]
    fn cache_lock_is_exclusive_and_released() {
        let dir = std::env::temp_dir().join(format!("harness-lock-{}", std::process::id()));
        let lock = CacheLock::acquire(&dir).unwrap();
        assert!(dir.join(".lock/pid").is_file());
        drop(lock);
        assert!(!dir.join(".lock").exists());
        // A stale lock (dead owner) is taken over.
        std::fs::create_dir_all(dir.join(".lock")).unwrap();
        std::fs::write(dir.join(".lock/pid"), "999999999").unwrap();
        drop(CacheLock::acquire(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn xz_payload_offset() {
        let mut img = vec![0u8; 100];
        img.extend_from_slice(b"\xfd7zXZ\x00rest");
        assert_eq!(find_xz_payload(&img), Some(100));
        assert_eq!(find_xz_payload(b"no magic here"), None);
    }

    #[test]
    fn print_uris_parsing() {
        let text = "'http://example.invalid/pool/b/busybox-static_1.35.0-4%2bdeb12u1_amd64.deb' busybox-static_1%3a1.35.0-4+deb12u1_amd64.deb 928188 SHA256:3D3F\n";
        let u = parse_print_uris(text).unwrap();
        assert_eq!(
            u,
            [DebUri {
                file: "busybox-static_1%3a1.35.0-4+deb12u1_amd64.deb".into(),
                size: 928188,
                sha256: "3d3f".into()
            }]
        );
        assert!(parse_print_uris("'u' x.deb 12\n").is_err());
        assert!(parse_print_uris("'u' ../x.deb 12 SHA256:aa\n").is_err());
        assert!(parse_print_uris("'u' x.deb 12 MD5:aa\n").is_err());
    }
}
