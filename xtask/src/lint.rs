//! clippy inside the tests' own builds. `cargo clippy` is `cargo check` with clippy's driver as
//! the compiler of the workspace's crates; a separate lint pass would compile every dependency
//! twice, once in check mode for the lints and once for the tests. Here the tests' builds use the
//! same driver (cargo's `RUSTC_WORKSPACE_WRAPPER`), which lints the workspace's crates as it
//! compiles them, so every crate is compiled once and the lints cost only their own time.
//!
//! The builds report in cargo's JSON: the lints are read from it (cargo replays the warnings of
//! crates already built, so a rebuild reports them again), and so are the test executables.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{process, setup::Tools, Result};

/// Makes `command` (a cargo build) lint the workspace's crates with clippy as it compiles them.
/// Every build that shares its artifacts must do the same, or cargo rebuilds them.
pub fn with_clippy<'a>(tools: &Tools, command: &'a mut Command) -> &'a mut Command {
    // rustup's proxy picks the toolchain cargo runs with.
    let driver = tools
        .which("clippy-driver")
        .unwrap_or_else(|_| PathBuf::from("clippy-driver"));
    command.env("RUSTC_WORKSPACE_WRAPPER", driver)
}

/// What a cargo build said: whether it succeeded, the test executables it built, and the
/// warnings and errors of the workspace's crates (clippy's lints among them), each once.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub succeeded: bool,
    pub executables: Vec<Executable>,
    pub diagnostics: BTreeSet<String>,
}

/// A test executable a build reported.
#[derive(Debug)]
pub struct Executable {
    /// The package's name.
    pub package: String,
    /// The test target's name (`bounds`, `grpc_serve`).
    pub target: String,
    pub path: PathBuf,
    /// The package's directory, where cargo would run it.
    pub dir: PathBuf,
}

impl BuildReport {
    /// Adds what `other` said; it succeeded only if both did.
    pub fn merge(&mut self, other: BuildReport) {
        self.succeeded &= other.succeeded;
        self.executables.extend(other.executables);
        self.diagnostics.extend(other.diagnostics);
    }

    /// Prints the diagnostics and says whether the lints pass: a successful build with none.
    pub fn lints_pass(&self, name: &str) -> bool {
        for diagnostic in &self.diagnostics {
            println!("{diagnostic}");
        }
        if !self.diagnostics.is_empty() {
            eprintln!("xtask: {name}: {} warnings", self.diagnostics.len());
        }
        self.succeeded && self.diagnostics.is_empty()
    }
}

/// Runs `command`, a cargo build, with `--message-format=json`, for at most `within`.
pub fn build(command: &mut Command, within: Duration, root: &Path) -> Result<BuildReport> {
    command.arg("--message-format=json");
    let output = process::output_within(command.stderr(std::process::Stdio::inherit()), within)?;
    let mut report = read_report(&String::from_utf8_lossy(&output.stdout), root);
    report.succeeded &= output.status.success();
    Ok(report)
}

/// Reads cargo's JSON messages.
fn read_report(json: &str, root: &Path) -> BuildReport {
    let mut report = BuildReport {
        succeeded: true,
        ..BuildReport::default()
    };
    for message in json
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
    {
        match message["reason"].as_str() {
            Some("compiler-message") => {
                let diagnostic = &message["message"];
                let counts = matches!(diagnostic["level"].as_str(), Some("warning" | "error"))
                    // rustc's "N warnings emitted" summary points at no code.
                    && diagnostic["spans"].as_array().is_some_and(|spans| !spans.is_empty());
                if let (true, Some(rendered)) = (counts, diagnostic["rendered"].as_str()) {
                    report.diagnostics.insert(rendered.trim_end().to_owned());
                }
            }
            Some("compiler-artifact") if message["profile"]["test"] == true => {
                let (Some(path), Some(target), Some(manifest)) = (
                    message["executable"].as_str(),
                    message["target"]["name"].as_str(),
                    message["manifest_path"].as_str(),
                ) else {
                    continue;
                };
                report.executables.push(Executable {
                    package: message["package_id"]
                        .as_str()
                        .map(package_name)
                        .unwrap_or_default(),
                    target: target.replace('-', "_"),
                    path: PathBuf::from(path),
                    dir: Path::new(manifest).parent().unwrap_or(root).to_owned(),
                });
            }
            Some("build-finished") => {
                report.succeeded &= message["success"] == true;
            }
            _ => {}
        }
    }
    report
}

/// The package's name in a cargo package id: `path+file:///w/serve#grpc-serve@0.1.0`, or
/// `path+file:///w/xtask#0.1.0` when it is its directory's name.
fn package_name(id: &str) -> String {
    let (url, rest) = id.rsplit_once('#').unwrap_or((id, ""));
    match rest.split_once('@') {
        Some((name, _)) => name.to_owned(),
        None => url.rsplit('/').next().unwrap_or(url).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lints_once_and_test_executables() {
        let json = r#"
{"reason":"compiler-message","package_id":"path+file:///w/serve#grpc-serve@0.1.0","message":{"level":"warning","spans":[{"file_name":"src/lib.rs"}],"rendered":"warning: unused variable: `x`\n"}}
{"reason":"compiler-message","package_id":"path+file:///w/serve#grpc-serve@0.1.0","message":{"level":"warning","spans":[{"file_name":"src/lib.rs"}],"rendered":"warning: unused variable: `x`\n"}}
{"reason":"compiler-message","package_id":"path+file:///w/serve#grpc-serve@0.1.0","message":{"level":"warning","spans":[],"rendered":"warning: 1 warning emitted\n"}}
{"reason":"compiler-artifact","package_id":"path+file:///w/serve#grpc-serve@0.1.0","manifest_path":"/w/serve/Cargo.toml","target":{"name":"bounds-x"},"profile":{"test":true},"executable":"/w/target/debug/deps/bounds-1"}
{"reason":"compiler-artifact","package_id":"path+file:///w/xtask#0.1.0","manifest_path":"/w/xtask/Cargo.toml","target":{"name":"xtask"},"profile":{"test":false},"executable":"/w/target/debug/xtask"}
{"reason":"build-finished","success":true}
"#;
        let report = read_report(json, Path::new("/w"));
        assert!(report.succeeded);
        assert_eq!(
            report.diagnostics.iter().collect::<Vec<_>>(),
            ["warning: unused variable: `x`"]
        );
        assert_eq!(report.executables.len(), 1);
        let executable = &report.executables[0];
        assert_eq!(
            (
                executable.package.as_str(),
                executable.target.as_str(),
                executable.dir.as_path()
            ),
            ("grpc-serve", "bounds_x", Path::new("/w/serve"))
        );
        assert!(!report.lints_pass("lints"));

        let failed = read_report(
            r#"{"reason":"build-finished","success":false}"#,
            Path::new("/"),
        );
        assert!(!failed.succeeded);
        assert!(!failed.lints_pass("lints"));
    }

    #[test]
    fn names_packages_from_their_ids() {
        assert_eq!(
            package_name("path+file:///w/serve#grpc-serve@0.1.0"),
            "grpc-serve"
        );
        assert_eq!(package_name("path+file:///w/xtask#0.1.0"), "xtask");
    }
}
