//! `cargo xtask test`: every check and every test, in one command, with one summary line.
//!
//! Order: format, lint and the libraries' documentation; fuzzing; native tests; the wasm tests in
//! headless Chromium and then headless Firefox against a real server; the interop suite
//! (third-party clients and servers); the release page; the end-to-end tests, in both browsers;
//! the cluster tests (replicas behind HAProxy, rolled under load). A failing step does not stop
//! the later ones, so one run shows everything that is wrong.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    interop, page,
    process::{self, free_port, ChildProcess, Tally},
    setup::{self, Tools},
    wasm::{wasm_command, wasm_test_command, WASM_TARGET},
    workspace_root, Result,
};

/// How many tests each step must run at least, and how long it may take (its build included).
/// A step that runs fewer, or is still running at its limit, is a counted failure.
const NATIVE: StepBounds = StepBounds::new(115, 30);
const WASM: StepBounds = StepBounds::new(18, 15);
const INTEROP_CASES: u64 = 24;
const END_TO_END: StepBounds = StepBounds::new(9, 20);
const CLUSTER: StepBounds = StepBounds::new(2, 10);

struct StepBounds {
    at_least: u64,
    within: Duration,
}

impl StepBounds {
    const fn new(at_least: u64, minutes: u64) -> Self {
        Self {
            at_least,
            within: Duration::from_secs(minutes * 60),
        }
    }
}

pub fn run() -> Result {
    let tally = run_steps();
    // What did not run is shown too, so no test hides behind an ignore or a filter.
    println!(
        "xtask: {} ignored, {} filtered out",
        tally.ignored, tally.filtered
    );
    println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        Ok(())
    } else {
        Err(format!("{} failed", tally.failed))
    }
}

/// Every step, each one's failures counted, so the summary line is always printed and a failed
/// set-up or build shows in it with its reason.
fn run_steps() -> Tally {
    let tools = match setup::tools(true) {
        Ok(tools) => tools,
        Err(error) => return Tally::failure(format!("set-up: {error}")),
    };
    let test_tools = tools.test.as_ref().expect("set up for tests");
    let root = workspace_root();
    let mut tally = Tally::default();
    // trunk builds offline (so a version mismatch is an error, never a download): fetch first.
    if let Err(error) = process::run(tools.command("cargo").current_dir(&root).arg("fetch")) {
        tally += Tally::failure(error);
    }

    tally += check(
        "cargo fmt --check",
        tools
            .command("cargo")
            .current_dir(&root)
            .args(["fmt", "--all", "--", "--check"]),
    );
    tally += check(
        "cargo clippy (native)",
        tools.command("cargo").current_dir(&root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            // The interop service too, which only the interop suite builds.
            "--features",
            "greeter-server/grpc-testing",
            "--",
            "-D",
            "warnings",
        ]),
    );

    // The libraries' documentation builds without a warning (a broken link is one).
    tally += check(
        "cargo doc (the libraries)",
        tools
            .command("cargo")
            .current_dir(&root)
            .env("RUSTDOCFLAGS", "-D warnings")
            .args([
                "doc",
                "--no-deps",
                "-p",
                "grpc-serve",
                "-p",
                "grpc-websocket",
                "--features",
                "grpc-websocket/server",
            ]),
    );

    // The server the browser tests call: a real one, allowing the test runner's loopback origin.
    println!("\nxtask: starting a test server");
    let (mut server, server_url, dead_url) = match start_test_server(&tools, &root) {
        Ok(started) => started,
        Err(error) => {
            // The browser tests cannot run; the native tests, interop and end to end still do.
            tally += Tally::failure(format!("the browser tests' server: {error}"));
            tally += native_tests(&tools, &root, test_tools);
            tally += interop::run(&tools, &root).at_least("interop", INTEROP_CASES);
            tally += end_to_end(&tools, &root);
            tally += cluster_tests(&tools, &root);
            return tally;
        }
    };

    let mut clippy_wasm = wasm_command(&tools, &root, &server_url, &dead_url);
    clippy_wasm.args([
        "clippy",
        "-p",
        "greeter-web",
        "--all-targets",
        "--target",
        WASM_TARGET,
        "--",
        "-D",
        "warnings",
    ]);
    tally += check("cargo clippy (wasm32)", &mut clippy_wasm);

    // The decoders this project wrote itself, on arbitrary input, for a bounded time. cargo-fuzz
    // needs nightly-only compiler flags; RUSTC_BOOTSTRAP lets the stable compiler take them.
    tally += check(
        "fuzzing the grpc-websockets decoders (20 s)",
        tools
            .command("cargo")
            .current_dir(root.join("websocket"))
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "protocol", "--", "-max_total_time=20"]),
    );

    tally += native_tests(&tools, &root, test_tools);

    for (browser, driver_var, driver) in [
        ("Chromium", "CHROMEDRIVER", &test_tools.chromedriver),
        ("Firefox", "GECKODRIVER", &test_tools.geckodriver),
    ] {
        println!("\nxtask: wasm tests in headless {browser}");
        let mut command = wasm_test_command(&tools, &root, &server_url, &dead_url);
        command.env(driver_var, driver).arg("--no-fail-fast");
        tally += process::run_tests(&mut command, WASM.within)
            .at_least(&format!("the wasm tests in {browser}"), WASM.at_least);
    }

    if let Err(error) = server.check_running() {
        tally += Tally::failure(error);
    }
    drop(server);

    println!("\nxtask: interop: third-party clients and servers");
    tally += interop::run(&tools, &root).at_least("interop", INTEROP_CASES);
    tally += end_to_end(&tools, &root);
    tally += cluster_tests(&tools, &root);
    tally
}

/// Replicas of the debug server behind HAProxy, rolled under load (`deploy/tests`), one test at
/// a time: each runs a cluster of its own. After the end-to-end tests, which build the release
/// page the replicas serve to the test's browser, and after interop, which installs connect-es.
fn cluster_tests(tools: &Tools, root: &Path) -> Tally {
    println!("\nxtask: cluster tests: replicas behind HAProxy, rolled under load");
    let haproxy = match setup::haproxy() {
        Ok(haproxy) => haproxy,
        Err(error) => return Tally::failure(error),
    };
    let node = match tools.which("node") {
        Ok(node) => node,
        Err(error) => return Tally::failure(error),
    };
    let test_tools = tools.test.as_ref().expect("set up for tests");
    process::run_tests(
        tools
            .command("cargo")
            .current_dir(root)
            .args(["test", "-p", "greeter-cluster", "--no-fail-fast", "--"])
            // One cluster at a time; and what each roll's load saw, printed even when it passes.
            .args(["--test-threads=1", "--show-output"])
            .env(
                "GREETER_CLUSTER_SERVER",
                root.join("target/debug/greeter-server"),
            )
            .env("HAPROXY", haproxy)
            .env("NODE", node)
            .env("GREETER_E2E_DIST", root.join("dist"))
            .env("GREETER_E2E_ARTIFACTS", root.join("target/e2e-artifacts"))
            .env("CHROMEDRIVER", &test_tools.chromedriver),
        CLUSTER.within,
    )
    .at_least("the cluster tests", CLUSTER.at_least)
}

/// How long a check (format, lint, fuzzing) may take, its build included.
const CHECK_WITHIN: Duration = Duration::from_secs(20 * 60);

/// A check that passes when `command` exits 0 within [`CHECK_WITHIN`].
fn check(name: &str, command: &mut Command) -> Tally {
    println!("\nxtask: {name}");
    Tally::check(process::run_tests(command, CHECK_WITHIN).failed == 0)
}

/// Builds the debug server and starts it for the browser tests: the process, its URL, and a
/// loopback URL where nothing listens (for the "server unreachable" tests).
fn start_test_server(tools: &Tools, root: &Path) -> Result<(ChildProcess, String, String)> {
    process::run(tools.command("cargo").current_dir(root).args([
        "build",
        "--quiet",
        "-p",
        "greeter-server",
    ]))?;
    let port = free_port()?;
    let mut server = ChildProcess::spawn(
        tools
            .command(&root.join("target/debug/greeter-server").to_string_lossy())
            .args(["--dev", "--addr", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .env("GREETER_SHUTDOWN_DELAY", "0s"),
    )?;
    server.wait_for_port(port, Duration::from_secs(30))?;
    let dead_url = format!("http://127.0.0.1:{}", free_port()?);
    Ok((server, format!("http://127.0.0.1:{port}"), dead_url))
}

/// `cargo test` of the workspace's native crates, every test binary run even after a failure.
fn native_tests(tools: &Tools, root: &Path, test_tools: &setup::TestTools) -> Tally {
    println!("\nxtask: native tests");
    process::run_tests(
        tools
            .command("cargo")
            .current_dir(root)
            .args(["test", "--no-fail-fast"])
            // Two minutes of mixed load against the real binary (plain `cargo test`: 20 s).
            .env("GREETER_SOAK_SECONDS", "120")
            // Prometheus's own parser reads the metrics page.
            .env("GREETER_TEST_PYTHON", test_tools.venv_bin("python")),
        NATIVE.within,
    )
    .at_least("the native tests", NATIVE.at_least)
}

/// Builds the release page and the end-to-end test binaries, and runs them directly, not under
/// `cargo test`: cargo holds the build directory's lock while its tests run, and `trunk serve`
/// needs cargo.
fn end_to_end(tools: &Tools, root: &Path) -> Tally {
    println!("\nxtask: end-to-end tests");
    let tally = end_to_end_steps(tools, root).at_least("the end-to-end tests", END_TO_END.at_least);
    println!(
        "\nxtask: screenshots in {}",
        root.join("target/e2e-artifacts").display()
    );
    tally
}

fn end_to_end_steps(tools: &Tools, root: &Path) -> Tally {
    if let Err(error) = page::build_release(tools) {
        return Tally::failure(error);
    }
    let executables = match test_executables(tools, root, "greeter-e2e") {
        Ok(executables) => executables,
        Err(error) => return Tally::failure(error),
    };
    let test_tools = tools.test.as_ref().expect("set up for tests");
    let trunk = match tools.which("trunk") {
        Ok(trunk) => trunk,
        Err(error) => return Tally::failure(error),
    };
    let deadline = std::time::Instant::now() + END_TO_END.within;
    let mut tally = Tally::default();
    for executable in executables {
        tally += process::run_tests(
            tools
                .command(&executable.to_string_lossy())
                .current_dir(root)
                .env("GREETER_E2E_DIST", root.join("dist"))
                .env("GREETER_E2E_ARTIFACTS", root.join("target/e2e-artifacts"))
                .env("CHROMEDRIVER", &test_tools.chromedriver)
                .env("GECKODRIVER", &test_tools.geckodriver)
                .env("TRUNK", &trunk),
            deadline.saturating_duration_since(std::time::Instant::now()),
        );
    }
    tally
}

/// The test executables `cargo test --no-run` builds for `package`.
fn test_executables(tools: &Tools, root: &Path, package: &str) -> Result<Vec<PathBuf>> {
    let output = tools
        .command("cargo")
        .current_dir(root)
        .args([
            "test",
            "-p",
            package,
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("building the {package} tests failed"));
    }
    let executables = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["profile"]["test"] == true)
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .collect::<Vec<_>>();
    if executables.is_empty() {
        return Err(format!("cargo built no test executables for {package}"));
    }
    Ok(executables)
}
