//! `scenario.conf`: what a scenario needs shipped into dom0 (format in harness/README.md).
//!
//! Line based: `# comment`, `key = value`, `[section]` or `[initramfs NAME]`. A ` #` starts a
//! trailing comment. Host paths may contain `${VAR}` references, expanded by [`expand`].

use std::collections::BTreeMap;

/// Default host wall-clock limit for one boot, seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 300;
/// Smallest accepted `timeout` (the boot alone takes ~10-20 s; dom0 keeps 60 s of it).
pub const MIN_TIMEOUT_S: u64 = 90;

/// A guest initramfs to build into `/payload/NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitramfsSpec {
    /// File name under `/payload`.
    pub name: String,
    /// Scenario-relative (or `${VAR}`) host path of the script that becomes `/init`.
    pub init: String,
    /// Kernel modules to include (dependencies are added).
    pub modules: Vec<String>,
    /// Extra files: (absolute guest path, host path).
    pub files: Vec<(String, String)>,
}

/// A parsed `scenario.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioConf {
    /// Host wall-clock limit for the whole boot, seconds.
    pub timeout_s: u64,
    /// Make targets the scenario relies on (informational).
    pub needs: Vec<String>,
    /// `/payload/NAME` ← host path.
    pub payload: Vec<(String, String)>,
    /// `/payload/bin/NAME` ← host path (with its shared libraries).
    pub bins: Vec<(String, String)>,
    /// Extra dom0 kernel modules.
    pub dom0_modules: Vec<String>,
    /// Guest initramfs images to build.
    pub initramfs: Vec<InitramfsSpec>,
    /// Extra Xen command-line options (`xen = ...`), e.g. dom0's vCPU count.
    pub xen_args: Vec<String>,
}

impl Default for ScenarioConf {
    fn default() -> Self {
        Self {
            timeout_s: DEFAULT_TIMEOUT_S,
            needs: Vec::new(),
            payload: Vec::new(),
            bins: Vec::new(),
            dom0_modules: Vec::new(),
            initramfs: Vec::new(),
            xen_args: Vec::new(),
        }
    }
}

enum Section {
    Top,
    Payload,
    Bin,
    Dom0Modules,
    Initramfs(usize),
}

/// A plain file name: no `/`, not empty, not `.`/`..`.
fn check_name(name: &str, line: usize) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!("line {line}: {name:?} is not a plain file name"));
    }
    Ok(())
}

impl ScenarioConf {
    /// Parses the text of a `scenario.conf`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut conf = Self::default();
        let mut section = Section::Top;
        for (idx, raw) in text.lines().enumerate() {
            let no = idx + 1;
            let line = match raw.find(" #") {
                Some(i) => &raw[..i],
                None => raw,
            }
            .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(inner) = line.strip_prefix('[') {
                let inner = inner
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {no}: unterminated section header"))?
                    .trim();
                let mut words = inner.split_whitespace();
                section = match (words.next(), words.next(), words.next()) {
                    (Some("payload"), None, _) => Section::Payload,
                    (Some("bin"), None, _) => Section::Bin,
                    (Some("dom0-modules"), None, _) => Section::Dom0Modules,
                    (Some("initramfs"), Some(name), None) => {
                        check_name(name, no)?;
                        if conf.initramfs.iter().any(|i| i.name == name) {
                            return Err(format!("line {no}: initramfs {name} defined twice"));
                        }
                        conf.initramfs.push(InitramfsSpec {
                            name: name.to_string(),
                            ..Default::default()
                        });
                        Section::Initramfs(conf.initramfs.len() - 1)
                    }
                    _ => return Err(format!("line {no}: unknown section [{inner}]")),
                };
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {no}: expected `key = value`, got {line:?}"))?;
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() || value.is_empty() {
                return Err(format!("line {no}: empty key or value"));
            }
            match &section {
                Section::Top => match key {
                    "timeout" => {
                        let t: u64 = value
                            .parse()
                            .map_err(|_| format!("line {no}: timeout {value:?} is not a number"))?;
                        if t < MIN_TIMEOUT_S {
                            return Err(format!(
                                "line {no}: timeout {t} s is below the minimum {MIN_TIMEOUT_S} s"
                            ));
                        }
                        conf.timeout_s = t;
                    }
                    "needs" => conf.needs = value.split_whitespace().map(String::from).collect(),
                    "xen" => {
                        for arg in value.split_whitespace() {
                            let is_plain = arg
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"_=,.:-".contains(&b));
                            if !is_plain {
                                return Err(format!(
                                    "line {no}: Xen option {arg:?} has characters outside [A-Za-z0-9_=,.:-]"
                                ));
                            }
                            conf.xen_args.push(arg.to_string());
                        }
                    }
                    _ => return Err(format!("line {no}: unknown key {key:?}")),
                },
                Section::Payload | Section::Bin => {
                    check_name(key, no)?;
                    let list = if matches!(section, Section::Payload) {
                        &mut conf.payload
                    } else {
                        &mut conf.bins
                    };
                    if list.iter().any(|(n, _)| n == key) {
                        return Err(format!("line {no}: {key} listed twice"));
                    }
                    list.push((key.to_string(), value.to_string()));
                }
                Section::Dom0Modules => match key {
                    "modules" => conf
                        .dom0_modules
                        .extend(value.split_whitespace().map(String::from)),
                    _ => return Err(format!("line {no}: unknown key {key:?} (want modules)")),
                },
                Section::Initramfs(i) => {
                    let spec = &mut conf.initramfs[*i];
                    match key {
                        "init" => spec.init = value.to_string(),
                        "modules" => spec
                            .modules
                            .extend(value.split_whitespace().map(String::from)),
                        k if k.starts_with('/') => {
                            crate::cpio::normalise(k).map_err(|e| format!("line {no}: {e}"))?;
                            spec.files.push((k.to_string(), value.to_string()));
                        }
                        _ => {
                            return Err(format!(
                                "line {no}: unknown key {key:?} (want init, modules or /guest/path)"
                            ))
                        }
                    }
                }
            }
        }
        for spec in &conf.initramfs {
            if spec.init.is_empty() {
                return Err(format!("[initramfs {}] has no `init = ...`", spec.name));
            }
            if conf.payload.iter().any(|(n, _)| n == &spec.name) {
                return Err(format!(
                    "{} is both a [payload] file and an initramfs",
                    spec.name
                ));
            }
        }
        Ok(conf)
    }
}

/// Expands `${VAR}` references from `vars`; an unknown variable is an error.
pub fn expand(value: &str, vars: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {value:?}"))?;
        let name = &after[..end];
        let val = vars.get(name).ok_or_else(|| {
            let known: Vec<_> = vars.keys().copied().collect();
            format!(
                "unknown variable ${{{name}}} in {value:?} (known: {})",
                known.join(", ")
            )
        })?;
        out.push_str(val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example() {
        let text = "# c\ntimeout = 200   # two hundred\nneeds = kernel backend\nxen = dom0_max_vcpus=1 dom0_vcpus_pin\n\
[payload]\nvmlinuz = ${VMLINUZ}\n[bin]\npvdispl-backend = ${TARGET}/release/pvdispl-backend\n\
[dom0-modules]\nmodules = drm_xen_front  xen-fbfront\n\
[initramfs guest.cpio]\ninit = guest-init.sh\nmodules = drm_xen_front\n/usr/bin/k = k.bin\n";
        let c = ScenarioConf::parse(text).unwrap();
        assert_eq!(c.timeout_s, 200);
        assert_eq!(c.needs, ["kernel", "backend"]);
        assert_eq!(c.xen_args, ["dom0_max_vcpus=1", "dom0_vcpus_pin"]);
        assert_eq!(c.payload, [("vmlinuz".into(), "${VMLINUZ}".into())]);
        assert_eq!(c.bins.len(), 1);
        assert_eq!(c.dom0_modules, ["drm_xen_front", "xen-fbfront"]);
        let i = &c.initramfs[0];
        assert_eq!(i.name, "guest.cpio");
        assert_eq!(i.init, "guest-init.sh");
        assert_eq!(i.modules, ["drm_xen_front"]);
        assert_eq!(i.files, [("/usr/bin/k".into(), "k.bin".into())]);
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(ScenarioConf::parse("").unwrap(), ScenarioConf::default());
        for bad in [
            "timeout = 10\n",
            "timeout = x\n",
            "xen = dom0_mem=1G;reboot\n",
            "xen = a\"b\n",
            "bogus = 1\n",
            "[nosuch]\n",
            "[payload]\na/b = c\n",
            "[payload]\na = b\na = c\n",
            "[initramfs x]\nmodules = a\n",
            "[initramfs x]\ninit = i\n/../etc = y\n",
            "novalue\n",
            "[payload\n",
        ] {
            assert!(ScenarioConf::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn expansion() {
        let mut v = BTreeMap::new();
        v.insert("TARGET", "/t".to_string());
        assert_eq!(expand("${TARGET}/release/x", &v).unwrap(), "/t/release/x");
        assert_eq!(expand("plain", &v).unwrap(), "plain");
        assert!(expand("${NOPE}/x", &v).unwrap_err().contains("NOPE"));
        assert!(expand("${TARGET", &v).is_err());
    }
}
