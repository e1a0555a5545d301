//! The ready-made xl configs in `demos/*.cfg`: one per scene, each well-formed.

use std::fs;
use std::path::Path;

use demos::Scene;

/// `key = value` lines of an xl config (comments and blank lines skipped).
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not key = value: {l}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn one_config_per_scene() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".cfg").map(str::to_owned)
        })
        .collect();
    found.sort();
    let mut names: Vec<String> = Scene::names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(found, names);

    for scene in Scene::names() {
        let text = fs::read_to_string(dir.join(format!("{scene}.cfg"))).unwrap();
        let s = settings(&text);
        let get = |key: &str| {
            let values: Vec<_> = s.iter().filter(|(k, _)| k == key).collect();
            assert_eq!(values.len(), 1, "{scene}.cfg: `{key}` must appear once");
            values[0].1.clone()
        };
        assert_eq!(get("type"), "\"pvh\"", "{scene}");
        assert!(get("kernel").ends_with("pvdispl\""), "{scene}");
        let memory: u32 = get("memory").parse().unwrap();
        // Two 1080p double buffers: 4 × 1920 × 1080 × 4 bytes ≈ 32 MiB, plus the kernel.
        assert!(memory >= 64, "{scene}: memory {memory} MiB");
        let vdispl = get("vdispl");
        assert!(
            vdispl.contains("backend=0") && vdispl.contains("be-alloc=0"),
            "{scene}"
        );
        assert!(vdispl.contains("connectors=c0:1280x720"), "{scene}");
        let extra = get("extra");
        let words: Vec<&str> = extra.trim_matches('"').split_whitespace().collect();
        assert_eq!(
            words,
            [format!("demo={scene}").as_str(), "fps=60", "frames=0"],
            "{scene}"
        );
        assert_eq!(get("name"), format!("\"pvdispl-{scene}\""));
    }
}
