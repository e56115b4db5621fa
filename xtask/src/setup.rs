//! Installs what the project needs, at pinned versions, only when missing.
//!
//! Everything comes from package registries: the wasm32 target from rustup, trunk, wasm-bindgen-cli
//! and geckodriver from crates.io, wasm-opt from npm's `binaryen` (into `.tools/`, not globally),
//! and the browsers from Debian's packages. Trunk is told which versions to use (Trunk.toml
//! `[tools]`) and finds them on the PATH this module builds, so it never downloads its own.

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use crate::{process, workspace_root, Result};

/// trunk 0.22 needs a newer rustc than the project's minimum.
const TRUNK_VERSION: &str = "0.21.14";
/// npm's binaryen; Debian's older wasm-opt builds pages that crash at run time.
const BINARYEN_VERSION: &str = "132.0.0";
const WASM_OPT_VERSION: &str = "version_132";
const GECKODRIVER_VERSION: &str = "0.37.1";
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The installed tools, and the PATH that finds them first.
pub struct Tools {
    path: OsString,
    pub test: Option<TestTools>,
}

/// What the tests need beyond the page's tools: the WebDriver servers for the browser tests, and
/// the Python environment with the interop suite's third-party clients and servers.
pub struct TestTools {
    pub chromedriver: PathBuf,
    pub geckodriver: PathBuf,
    pub venv: PathBuf,
}

impl TestTools {
    /// A command for a program installed in the Python environment (`python`, `grpcurl`).
    pub fn venv_bin(&self, program: &str) -> PathBuf {
        self.venv.join("bin").join(program)
    }
}

impl Tools {
    /// Where `binary` is on the tools' PATH.
    pub fn which(&self, binary: &str) -> Result<PathBuf> {
        env::split_paths(&self.path)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| format!("{binary} is not on PATH after set-up"))
    }

    /// A command for `program` with the tools' PATH.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("PATH", &self.path);
        command
    }
}

/// Makes sure the page's tools are installed; with `for_tests`, everything the tests need too (the
/// browsers and their drivers, cargo-fuzz, and the interop suite's third-party software).
pub fn tools(for_tests: bool) -> Result<Tools> {
    let root = workspace_root();
    let npm_bin = root.join(".tools/npm/node_modules/.bin");
    let cargo_bin = cargo_home().join("bin");
    let path = env::join_paths(
        [npm_bin.clone(), cargo_bin.clone()]
            .into_iter()
            .chain(env::split_paths(&env::var_os("PATH").unwrap_or_default())),
    )
    .map_err(|e| format!("cannot build PATH: {e}"))?;
    let mut tools = Tools { path, test: None };

    wasm_target(&tools)?;
    let wasm_bindgen = locked_version(&root, "wasm-bindgen")?;
    cargo_install(
        &tools,
        "wasm-bindgen",
        "wasm-bindgen-cli",
        &wasm_bindgen,
        // The CLI's own lockfile names a crate version the registry no longer has.
        false,
        None,
    )?;
    // Without its update check: the project pins the version.
    cargo_install(
        &tools,
        "trunk",
        "trunk",
        TRUNK_VERSION,
        true,
        Some("rustls"),
    )?;
    wasm_opt(&tools, &root)?;

    if for_tests {
        // The browsers, gRPC's Ruby interop client with the interop contract it speaks, and HAProxy.
        debian_packages(&[
            "chromium",
            "chromium-driver",
            "firefox-esr",
            "ruby-grpc",
            "grpc-proto",
            // The load balancer of the cluster tests.
            "haproxy",
        ])?;
        cargo_install(
            &tools,
            "geckodriver",
            "geckodriver",
            GECKODRIVER_VERSION,
            true,
            None,
        )?;
        cargo_install(
            &tools,
            "cargo-fuzz",
            "cargo-fuzz",
            CARGO_FUZZ_VERSION,
            true,
            None,
        )?;
        tools.test = Some(TestTools {
            chromedriver: tools.which("chromedriver")?,
            geckodriver: tools.which("geckodriver")?,
            venv: python_tools(&root)?,
        });
    }
    Ok(tools)
}

/// HAProxy, installed from Debian's packages when missing (`/usr/sbin` may not be on PATH).
pub fn haproxy() -> Result<PathBuf> {
    debian_packages(&["haproxy"])?;
    let sbin = PathBuf::from("/usr/sbin/haproxy");
    if sbin.is_file() {
        return Ok(sbin);
    }
    process::output(Command::new("sh").args(["-c", "command -v haproxy"]))
        .map(|path| PathBuf::from(path.trim()))
        .ok_or_else(|| "haproxy is installed but not found on PATH".to_owned())
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

fn wasm_target(tools: &Tools) -> Result {
    let installed =
        process::output(
            tools
                .command("rustup")
                .args(["target", "list", "--installed"]),
        )
        .ok_or("rustup is needed to add the wasm32 target: install Rust with rustup")?;
    if installed
        .lines()
        .any(|line| line.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    println!("xtask: adding the wasm32-unknown-unknown target");
    process::run(
        tools
            .command("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"]),
    )
}

/// The version of `package` that Cargo.lock pins.
fn locked_version(root: &Path, package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("Cargo.lock has no {package}"))?
        + needle.len();
    let end = lock[start..].find('"').ok_or("Cargo.lock is malformed")?;
    Ok(lock[start..start + end].to_owned())
}

/// Installs `krate` at `version` unless `binary --version` already reports it, with `features`
/// instead of its defaults when given.
fn cargo_install(
    tools: &Tools,
    binary: &str,
    krate: &str,
    version: &str,
    locked: bool,
    features: Option<&str>,
) -> Result {
    let reported = process::output(tools.command(binary).arg("--version")).unwrap_or_default();
    if reported
        .split_whitespace()
        .any(|word| word.trim_start_matches('v') == version)
    {
        return Ok(());
    }
    println!("xtask: installing {krate} {version} from crates.io (a few minutes, once)");
    let started = std::time::Instant::now();
    let mut command = tools.command("cargo");
    command
        .args(["install", krate, "--version", version])
        // A tool is built to be used, not to win benchmarks: without the whole-program
        // optimization some ask for in release (trunk's fat LTO in one codegen unit is minutes of
        // a single core), in parallel codegen units.
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16");
    if locked {
        command.arg("--locked");
    }
    if let Some(features) = features {
        command.args(["--no-default-features", "--features", features]);
    }
    process::run(&mut command)?;
    println!(
        "xtask: installed {krate} {version} in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// The interop suite's Python tools (grpcio, grpcio-tools, grpcurl), pinned in
/// interop/requirements.txt, in a virtual environment under `.tools/`. A copy of the requirements
/// beside the environment records what it holds, so a changed pin reinstalls.
fn python_tools(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".tools/venv");
    let requirements = root.join("interop/requirements.txt");
    let installed = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    if std::fs::read_to_string(&installed).is_ok_and(|have| have == wanted) {
        return Ok(venv);
    }
    println!("xtask: installing the interop suite's Python tools (interop/requirements.txt) into .tools/venv");
    let pip = venv.join("bin/pip");
    if !pip.is_file() {
        process::run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).map_err(|e| {
            format!("{e}\nxtask: the interop suite needs Python 3 with venv (apt-get install python3-venv)")
        })?;
    }
    let started = std::time::Instant::now();
    process::run(
        Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    println!(
        "xtask: installed the Python tools in {:.0?}",
        started.elapsed()
    );
    std::fs::write(&installed, wanted)
        .map_err(|e| format!("cannot write {}: {e}", installed.display()))?;
    Ok(venv)
}

fn wasm_opt(tools: &Tools, root: &Path) -> Result {
    let reported = process::output(tools.command("wasm-opt").arg("--version")).unwrap_or_default();
    if reported.contains(WASM_OPT_VERSION) {
        return Ok(());
    }
    if process::output(tools.command("npm").arg("--version")).is_none() {
        debian_packages(&["nodejs", "npm"])?;
    }
    println!("xtask: installing wasm-opt (npm binaryen {BINARYEN_VERSION}) into .tools/");
    let prefix = root.join(".tools/npm");
    std::fs::create_dir_all(&prefix)
        .map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
    let started = std::time::Instant::now();
    process::run(
        tools
            .command("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(format!("binaryen@{BINARYEN_VERSION}")),
    )?;
    println!("xtask: installed wasm-opt in {:.0?}", started.elapsed());
    Ok(())
}

/// Installs Debian packages that are missing; needs apt-get and root (or sudo).
pub fn debian_packages(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| {
            process::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
                .is_none_or(|status| !status.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let listed = missing.join(" ");
    if process::output(Command::new("apt-get").arg("--version")).is_none() {
        return Err(format!(
            "this needs {listed}; there is no apt-get here, so install them with your system's package manager"
        ));
    }
    let as_root = process::output(Command::new("id").arg("-u")).is_some_and(|id| id.trim() == "0");
    let sudo: &[&str] = if as_root { &[] } else { &["sudo", "-n"] };
    println!("xtask: installing {listed} from Debian's packages");
    let started = std::time::Instant::now();
    let apt = |args: &[&str]| {
        let all: Vec<&str> = sudo.iter().chain(args).copied().collect();
        process::run(
            Command::new(all[0])
                .args(&all[1..])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    apt(&["apt-get", "update", "-qq"])
        .and_then(|()| {
            let mut args = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
            args.extend(&missing);
            apt(&args)
        })
        .map_err(|e| {
            format!(
                "{e}\nxtask: could not install {listed}; as root, run: apt-get install {listed}"
            )
        })?;
    println!("xtask: installed {listed} in {:.0?}", started.elapsed());
    Ok(())
}
