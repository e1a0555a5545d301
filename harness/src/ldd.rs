//! Shared-library discovery for dom0 binaries: runs `ldd` and parses its output.
//!
//! `ldd` is run with `LD_LIBRARY_PATH` pointing into the unpacked packages, so Xen's libraries
//! resolve from there and the rest (glibc & co.) from the host, which is the same Debian release.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One resolved library from `ldd` output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lib {
    /// The name the binary asks for (`libc.so.6`), or the loader path for the interpreter.
    pub soname: String,
    /// Where `ldd` found it on the host.
    pub path: PathBuf,
}

/// Parses `ldd` output. Returns resolved libraries, or the list of unresolved names as error.
pub fn parse_ldd(output: &str) -> Result<Vec<Lib>, Vec<String>> {
    let mut libs = Vec::new();
    let mut missing = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("linux-vdso") || line.contains("statically linked") {
            continue;
        }
        if let Some((name, rest)) = line.split_once("=>") {
            let name = name.trim().to_string();
            let target = rest.trim();
            if target.starts_with("not found") {
                missing.push(name);
                continue;
            }
            let path = target.split(" (").next().unwrap_or(target).trim();
            if path.is_empty() {
                continue;
            }
            libs.push(Lib {
                soname: name,
                path: PathBuf::from(path),
            });
        } else if line.starts_with('/') {
            // The interpreter: "/lib64/ld-linux-x86-64.so.2 (0x...)".
            let path = line.split(" (").next().unwrap_or(line).trim();
            libs.push(Lib {
                soname: path.to_string(),
                path: PathBuf::from(path),
            });
        }
    }
    if missing.is_empty() {
        Ok(libs)
    } else {
        Err(missing)
    }
}

/// The library directories inside an unpacked package root.
pub fn lib_dirs(root: &Path) -> Vec<PathBuf> {
    [
        "usr/lib/x86_64-linux-gnu",
        "lib/x86_64-linux-gnu",
        "usr/lib/xen-4.17/lib",
    ]
    .iter()
    .map(|d| root.join(d))
    .filter(|d| d.is_dir())
    .collect()
}

/// Runs `ldd` on `binary` with `lib_path` searched first. Statically linked → empty.
pub fn libs_of(binary: &Path, lib_path: &[PathBuf]) -> Result<Vec<Lib>, String> {
    let joined = std::env::join_paths(lib_path).map_err(|e| e.to_string())?;
    let out = Command::new("ldd")
        .arg(binary)
        .env("LD_LIBRARY_PATH", joined)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if text.contains("statically linked")
            || err.contains("not a dynamic executable")
            || text.contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(format!("ldd {} failed: {}", binary.display(), err.trim()));
    }
    parse_ldd(&text).map_err(|missing| {
        format!(
            "{} needs libraries that are neither in the packages nor on the host: {}",
            binary.display(),
            missing.join(", ")
        )
    })
}

/// The union of libraries of several binaries.
pub fn libs_of_all(binaries: &[PathBuf], lib_path: &[PathBuf]) -> Result<BTreeSet<Lib>, String> {
    let mut all = BTreeSet::new();
    for b in binaries {
        all.extend(libs_of(b, lib_path)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typical_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
\tlibxenlight.so.4.17 => /c/root/usr/lib/x86_64-linux-gnu/libxenlight.so.4.17 (0x00007f)\n\
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let libs = parse_ldd(out).unwrap();
        assert_eq!(libs.len(), 3);
        assert_eq!(libs[0].soname, "libxenlight.so.4.17");
        assert_eq!(
            libs[0].path,
            PathBuf::from("/c/root/usr/lib/x86_64-linux-gnu/libxenlight.so.4.17")
        );
        assert_eq!(libs[2].soname, "/lib64/ld-linux-x86-64.so.2");
    }

    #[test]
    fn reports_missing() {
        let out =
            "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n";
        assert_eq!(parse_ldd(out).unwrap_err(), vec!["libfoo.so.1".to_string()]);
        assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
    }
}
