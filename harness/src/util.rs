//! Small process helpers with error messages that name the command.

use std::process::{Command, Stdio};

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args().take(6) {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd`, returns its stdout; non-zero exit is an error carrying stderr.
pub fn run_capture(cmd: &mut Command) -> Result<String, String> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with inherited stdout/stderr; non-zero exit is an error.
pub fn run_status(cmd: &mut Command) -> Result<(), String> {
    let what = describe(cmd);
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{what}` failed ({status})"))
    }
}

/// Whether `tool` is an executable on `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            dir.join(tool)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Errors out naming every missing tool.
pub fn require_tools(tools: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "required host tools not found on PATH: {} (see .ci/run for the apt packages)",
            missing.join(", ")
        ))
    }
}
