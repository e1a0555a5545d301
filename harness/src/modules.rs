//! Kernel module selection from `modules.dep`: resolve names to files, add dependencies.
//!
//! `modules.dep` lines look like `kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko ...` (paths
//! relative to `/lib/modules/<kver>/`). Module names compare with `-` and `_` as equal, as
//! `modprobe` does.

use std::collections::{BTreeMap, BTreeSet};

/// Parsed `modules.dep`: module file -> its dependency files.
#[derive(Debug, Default)]
pub struct ModuleDeps {
    deps: BTreeMap<String, Vec<String>>,
    by_name: BTreeMap<String, String>,
}

/// The canonical module name of a module path (`kernel/drivers/xen/xen-evtchn.ko.xz` → `xen_evtchn`).
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

impl ModuleDeps {
    /// Parses the text of a `modules.dep` file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut me = Self::default();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (module, rest) = line
                .split_once(':')
                .ok_or_else(|| format!("modules.dep line {}: no ':' in {line:?}", no + 1))?;
            let module = module.trim().to_string();
            let deps = rest.split_whitespace().map(str::to_string).collect();
            me.by_name.insert(module_name(&module), module.clone());
            me.deps.insert(module, deps);
        }
        Ok(me)
    }

    /// The file of module `name` (`xen-evtchn` or `xen_evtchn`).
    pub fn file_of(&self, name: &str) -> Option<&str> {
        self.by_name
            .get(&name.replace('-', "_"))
            .map(String::as_str)
    }

    /// The files of `names` and all their dependencies, each dependency before its users.
    pub fn closure(&self, names: &[String]) -> Result<Vec<String>, String> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for name in names {
            let file = self.file_of(name).ok_or_else(|| {
                format!("kernel module {name:?} not found in modules.dep (built in, or misspelt?)")
            })?;
            self.visit(file, &mut seen, &mut order, 0)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        file: &str,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 64 {
            return Err(format!("modules.dep: dependency chain too deep at {file}"));
        }
        if !seen.insert(file.to_string()) {
            return Ok(());
        }
        let deps = self
            .deps
            .get(file)
            .ok_or_else(|| format!("modules.dep: {file} is a dependency but has no entry"))?;
        for dep in deps {
            self.visit(dep, seen, order, depth + 1)?;
        }
        order.push(file.to_string());
        Ok(())
    }

    /// A `modules.dep` for just `files` (each must come from [`Self::closure`]).
    pub fn subset_text(&self, files: &[String]) -> String {
        let mut text = String::new();
        for f in files {
            text.push_str(f);
            text.push(':');
            for d in self.deps.get(f).into_iter().flatten() {
                text.push(' ');
                text.push_str(d);
            }
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
kernel/net/9p/9pnet.ko:\n\
kernel/fs/netfs/netfs.ko:\n\
kernel/drivers/xen/xenfs/xenfs.ko: kernel/drivers/xen/xen-privcmd.ko\n\
kernel/drivers/xen/xen-privcmd.ko:\n\
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko\n";

    #[test]
    fn names_and_closure_order() {
        let d = ModuleDeps::parse(DEP).unwrap();
        assert_eq!(module_name("a/b/xen-evtchn.ko.xz"), "xen_evtchn");
        assert_eq!(
            d.file_of("xen_privcmd"),
            Some("kernel/drivers/xen/xen-privcmd.ko")
        );
        let names: Vec<String> = ["xenfs", "9p", "9pnet-virtio"].map(String::from).to_vec();
        let c = d.closure(&names).unwrap();
        assert_eq!(
            c,
            [
                "kernel/drivers/xen/xen-privcmd.ko",
                "kernel/drivers/xen/xenfs/xenfs.ko",
                "kernel/net/9p/9pnet.ko",
                "kernel/fs/netfs/netfs.ko",
                "kernel/fs/9p/9p.ko",
                "kernel/net/9p/9pnet_virtio.ko",
            ]
        );
        let text = d.subset_text(&c);
        assert!(
            text.contains("kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n")
        );
        assert!(text.starts_with("kernel/drivers/xen/xen-privcmd.ko:\n"));
    }

    #[test]
    fn errors_are_clear() {
        let d = ModuleDeps::parse(DEP).unwrap();
        let e = d.closure(&["nosuch".to_string()]).unwrap_err();
        assert!(e.contains("nosuch"), "{e}");
        assert!(ModuleDeps::parse("garbage line\n").is_err());
        let broken = ModuleDeps::parse("a.ko: b.ko\n").unwrap();
        assert!(broken
            .closure(&["a".to_string()])
            .unwrap_err()
            .contains("b.ko"));
    }
}
