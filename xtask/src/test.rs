//! `cargo xtask test`: every check and every test, in one command, with one summary line.
//!
//! Order: set-up; format, the benchmarks' lint and the libraries' documentation; fuzzing; one
//! debug build of everything the tests run, linted by clippy as it compiles (see [`lint`]); the
//! native tests; the wasm tests' build, linted the same way, then the tests in headless Chromium
//! and headless Firefox against a real server; the interop suite (third-party clients and
//! servers); the release page; the end-to-end tests, in both browsers; the cluster tests (replicas
//! behind HAProxy, rolled under load). A failing step does not stop the later ones, so one run
//! shows everything that is wrong.
//!
//! Every step has a time bound and the run has one budget; whatever happens, the summary is
//! printed, with each step's time beside it. Which tests must run is `xtask/expected-tests.txt`
//! (see [`crate::results`]).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use crate::{
    interop, lint, page,
    process::{self, free_port, ChildProcess},
    results::{self, Results, Verdict},
    setup::{self, Tools},
    wasm::{wasm_command, wasm_test_command, WASM_TARGET},
    workspace_root, Result,
};

/// The whole run's budget: after it every command is stopped and the summary printed.
const BUDGET: Duration = Duration::from_secs(60 * 60);
/// How long each kind of step may take.
const CHECK_WITHIN: Duration = Duration::from_secs(20 * 60);
const BUILD_WITHIN: Duration = Duration::from_secs(30 * 60);
const NATIVE_WITHIN: Duration = Duration::from_secs(20 * 60);
const WASM_WITHIN: Duration = Duration::from_secs(15 * 60);
const END_TO_END_WITHIN: Duration = Duration::from_secs(20 * 60);
const CLUSTER_WITHIN: Duration = Duration::from_secs(10 * 60);

/// The packages the tests build, all in one build with one feature set (the interop service
/// included), which every step then uses: nothing is compiled twice.
/// The page's crate is not among them: its tests run in the browsers, in the wasm steps.
const TEST_PACKAGES: [&str; 11] = [
    "grpc-call",
    "hello-proto",
    "grpc-serve",
    "greeter-server",
    "greeter-cli",
    "grpc-websocket",
    "xtask",
    "test-support",
    "chat-room",
    "greeter-e2e",
    "greeter-cluster",
];
const TEST_FEATURES: &str = "greeter-server/grpc-testing";
/// The libraries, each packaged for a registry.
const LIBRARIES: [&str; 3] = ["grpc-call", "grpc-websocket", "grpc-serve"];
/// The workspace's native packages no test builds: the benchmarks, linted on their own.
const BENCH_PACKAGES: [&str; 2] = ["greeter-bench", "greeter-bench-connect-rust"];
/// The in-browser benchmark's client: linted as it is built for the browser, beside the wasm
/// tests' build, whose dependencies it shares.
const BENCH_WASM_PACKAGE: &str = "greeter-bench-wasm";
/// Test executables (package, target) that run beside the other native tests rather than in
/// turn: the soak's two minutes of load are the load the others then run under, and the step
/// takes two minutes less than with the soak alone on the machine.
const RUN_BESIDE: [(&str, &str); 1] = [("greeter-server", "soak")];
/// Packages whose tests need more than the native step gives: they run in steps of their own.
const END_TO_END_PACKAGE: &str = "greeter-e2e";
const CLUSTER_PACKAGE: &str = "greeter-cluster";

/// One step of the run: its name, how long it took, what it reported.
struct Step {
    name: String,
    /// The first part of its tests' names (`native`), when it runs tests.
    label: Option<String>,
    elapsed: Duration,
    results: Results,
}

/// The steps run so far.
#[derive(Default)]
struct Run {
    steps: Vec<Step>,
}

impl Run {
    /// Runs `body` as the step `name`, timed; its tests' names begin with `label`.
    fn step(&mut self, name: &str, label: Option<&str>, body: impl FnOnce() -> Results) {
        println!("\nxtask: {name}");
        let started = Instant::now();
        let results = body();
        let elapsed = started.elapsed();
        println!("xtask: {name}: {}", format_duration(elapsed));
        self.steps.push(Step {
            name: name.to_owned(),
            label: label.map(str::to_owned),
            elapsed,
            results,
        });
    }

    /// A check (format, lint, documentation, fuzzing): one command that must exit 0.
    fn check(&mut self, name: &str, command: &mut Command) {
        let label = format!("checks | {name}");
        self.step(name, Some(&label), || {
            let passed = match process::run_within(command, CHECK_WITHIN) {
                Ok(()) => true,
                Err(error) => {
                    eprintln!("xtask: {error}");
                    false
                }
            };
            Results::check(format!("{label} | passes"), passed)
        });
    }
}

pub fn run() -> Result {
    let started = Instant::now();
    process::set_budget(started + BUDGET);
    let root = workspace_root();
    let mut run = Run::default();
    run_steps(&mut run, &root);
    summarize(&run, &root, started.elapsed())
}

fn run_steps(run: &mut Run, root: &Path) {
    let mut tools = None;
    run.step("set-up", None, || match setup::tools(true) {
        Ok(set_up) => {
            tools = Some(set_up);
            Results::default()
        }
        Err(error) => Results::problem(format!("set-up: {error}")),
    });
    let Some(tools) = tools else { return };
    let test_tools = tools.test.as_ref().expect("set up for tests");

    // trunk builds offline (so a version mismatch is an error, never a download): fetch first.
    run.step("cargo fetch", None, || {
        process::run(tools.command("cargo").current_dir(root).arg("fetch"))
            .err()
            .map(Results::problem)
            .unwrap_or_default()
    });
    run.check(
        "cargo fmt --check",
        tools
            .command("cargo")
            .current_dir(root)
            .args(["fmt", "--all", "--", "--check"]),
    );
    // The crates no test builds; the others are linted as the tests' builds compile them.
    run.check(
        "cargo clippy (benchmarks)",
        tools
            .command("cargo")
            .current_dir(root)
            .arg("clippy")
            .args(BENCH_PACKAGES.iter().flat_map(|package| ["-p", package]))
            .args(["--all-targets", "--", "-D", "warnings"]),
    );
    // The libraries' documentation builds without a warning (a broken link is one).
    run.check(
        "cargo doc (the libraries)",
        tools
            .command("cargo")
            .current_dir(root)
            .env("RUSTDOCFLAGS", "-D warnings")
            .args([
                "doc",
                "--no-deps",
                "-p",
                "grpc-serve",
                "-p",
                "grpc-websocket",
            ])
            .args(["--features", "grpc-websocket/server"]),
    );
    // The libraries package for a registry: manifests, licences, versions on path dependencies.
    run.check(
        "cargo package (the libraries)",
        tools
            .command("cargo")
            .current_dir(root)
            .args(["package", "--no-verify", "--allow-dirty", "--offline"])
            .args(LIBRARIES.iter().flat_map(|package| ["-p", package])),
    );
    // The decoders this project wrote itself, on arbitrary input, for a bounded time. cargo-fuzz
    // needs nightly-only compiler flags; RUSTC_BOOTSTRAP lets the stable compiler take them. The
    // crate has no unsafe code for AddressSanitizer to watch: without it the build takes 36 s
    // instead of 51, and the 20 s run tries 40 % more inputs.
    run.check(
        "fuzzing the grpc-websockets decoders (20 s)",
        tools
            .command("cargo")
            .current_dir(root.join("websocket"))
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", "none", "protocol"])
            .args(["--", "-max_total_time=20"]),
    );

    let mut executables = Vec::new();
    let lints = "checks | cargo clippy (native)";
    run.step(
        "the debug build, linted by clippy",
        Some(lints),
        || match build_tests(&tools, root) {
            Ok(report) => {
                let passed = report.lints_pass(lints);
                executables = report.executables;
                Results::check(format!("{lints} | passes"), passed)
            }
            Err(error) => Results::problem(error),
        },
    );

    run.step("native tests", Some("native"), || {
        let deadline = Instant::now() + NATIVE_WITHIN;
        // Prometheus's own parser reads the metrics page.
        let python = test_tools.venv_bin("python");
        let env = [
            // Two minutes of mixed load against the real binary (plain `cargo test`: 20 s).
            ("GREETER_SOAK_SECONDS", "120".as_ref()),
            ("GREETER_TEST_PYTHON", python.as_os_str()),
        ];
        let (beside, in_turn): (Vec<_>, Vec<_>) = executables
            .iter()
            .filter(|e| e.package != END_TO_END_PACKAGE && e.package != CLUSTER_PACKAGE)
            .partition(|e| RUN_BESIDE.contains(&(e.package.as_str(), e.target.as_str())));
        std::thread::scope(|scope| {
            let beside: Vec<_> = beside
                .into_iter()
                .map(|executable| {
                    scope.spawn(|| executable.run(&tools, "native", deadline, &env, &[]))
                })
                .collect();
            let mut results = Results::default();
            for executable in in_turn {
                results += executable.run(&tools, "native", deadline, &env, &[]);
            }
            results += results::run_tests(
                "native",
                "?",
                cargo_for_tests(&tools, root, "test").arg("--doc"),
                deadline.saturating_duration_since(Instant::now()),
            );
            for running in beside {
                results += running
                    .join()
                    .unwrap_or_else(|_| Results::problem("a test runner thread panicked"));
            }
            results
        })
    });

    // The wasm tests compile in the URLs of the server they call and of a port where nothing
    // listens: both ports are chosen before the build, the server started on the first after it.
    let ports = free_port().and_then(|server| Ok((server, free_port()?)));
    let lints = "checks | cargo clippy (wasm32)";
    run.step(
        "the wasm tests' build, linted by clippy",
        Some(lints),
        || {
            let (server_port, dead_port) = match &ports {
                Ok(ports) => *ports,
                Err(error) => return Results::problem(error),
            };
            let (server_url, dead_url) = (loopback(server_port), loopback(dead_port));
            let mut tests = wasm_test_command(&tools, root, &server_url, &dead_url);
            let mut bench = wasm_command(&tools, root, &server_url, &dead_url);
            bench.args(["build", "-p", BENCH_WASM_PACKAGE, "--target", WASM_TARGET]);
            let built =
                lint::build(tests.arg("--no-run"), BUILD_WITHIN, root).and_then(|mut report| {
                    report.merge(lint::build(&mut bench, BUILD_WITHIN, root)?);
                    Ok(report)
                });
            match built {
                Ok(report) => Results::check(format!("{lints} | passes"), report.lints_pass(lints)),
                Err(error) => Results::problem(error),
            }
        },
    );

    // The server the browser tests call: a real one, allowing the test runner's loopback origin.
    let mut server = None;
    run.step("the browser tests' server", None, || {
        let started = ports
            .as_ref()
            .map_err(String::clone)
            .and_then(|&(port, _)| start_test_server(&tools, root, port));
        match started {
            Ok(process) => {
                server = Some(process);
                Results::default()
            }
            Err(error) => Results::problem(format!("the browser tests' server: {error}")),
        }
    });
    if let (Some(_), Ok((server_port, dead_port))) = (&server, &ports) {
        let (server_url, dead_url) = (loopback(*server_port), loopback(*dead_port));
        for (browser, driver_var, driver) in [
            ("Chromium", "CHROMEDRIVER", &test_tools.chromedriver),
            ("Firefox", "GECKODRIVER", &test_tools.geckodriver),
        ] {
            let label = format!("wasm ({browser})");
            run.step(
                &format!("wasm tests in headless {browser}"),
                Some(&label),
                || {
                    let mut command = wasm_test_command(&tools, root, &server_url, &dead_url);
                    command.env(driver_var, driver).arg("--no-fail-fast");
                    results::run_tests(&label, "?", &mut command, WASM_WITHIN)
                },
            );
        }
    }
    if let Some(mut process) = server {
        if let Err(error) = process.check_running() {
            run.step("the browser tests' server (still running)", None, || {
                Results::problem(error)
            });
        }
    }

    run.step(
        "interop: third-party clients and servers",
        Some(interop::LABEL),
        || interop::run(&tools, root),
    );
    run.step("end-to-end tests", Some("end to end"), || {
        end_to_end(&tools, root, &executables)
    });
    run.step(
        "cluster tests: replicas behind HAProxy, rolled under load",
        Some("cluster"),
        || cluster_tests(&tools, root, &executables),
    );
}

/// Prints each step's time and counts, the tests the list expects that did not run, and the
/// summary line; fails on any failure.
fn summarize(run: &Run, root: &Path, elapsed: Duration) -> Result {
    let tests: Vec<(String, Verdict)> = run
        .steps
        .iter()
        .flat_map(|step| step.results.tests.iter().cloned())
        .collect();
    let ran = results::ran_path(root);
    let written = std::fs::create_dir_all(ran.parent().expect("a directory"))
        .and_then(|()| std::fs::write(&ran, results::ran_list(&tests)));
    if let Err(error) = written {
        eprintln!("xtask: cannot write {}: {error}", ran.display());
    }
    let comparison = match std::fs::read_to_string(root.join(results::EXPECTED)) {
        Ok(expected) => results::compare(&expected, &tests),
        Err(error) => {
            eprintln!("xtask: cannot read {}: {error}", results::EXPECTED);
            results::Comparison {
                missing: vec![format!("(the list {} itself)", results::EXPECTED)],
                unlisted: Vec::new(),
            }
        }
    };

    println!(
        "\nxtask: {:<58} {:>7} {:>7} {:>7}",
        "step", "time", "passed", "failed"
    );
    let mut attributed = 0;
    let mut failed_total = 0;
    let mut passed_total = 0;
    for step in &run.steps {
        let missing = step.label.as_ref().map_or(0, |label| {
            let prefix = format!("{label} | ");
            comparison
                .missing
                .iter()
                .filter(|name| name.starts_with(&prefix))
                .count()
        });
        attributed += missing;
        let tests_failed = step.results.count(Verdict::Failed) + missing;
        // A problem that none of the step's tests shows counts once.
        let failed = if tests_failed == 0 && !step.results.problems.is_empty() {
            1
        } else {
            tests_failed
        };
        let passed = step.results.count(Verdict::Passed);
        failed_total += failed;
        passed_total += passed;
        println!(
            "xtask: {:<58} {:>7} {passed:>7} {failed:>7}",
            step.name,
            format_duration(step.elapsed)
        );
    }
    // Listed tests of steps that never started.
    failed_total += comparison.missing.len().saturating_sub(attributed);

    if !comparison.missing.is_empty() {
        eprintln!(
            "\nxtask: FAILED: {} listed tests did not run ({}):",
            comparison.missing.len(),
            results::EXPECTED
        );
        for name in &comparison.missing {
            eprintln!("  {name}");
        }
    }
    if !comparison.unlisted.is_empty() {
        failed_total += 1;
        eprintln!(
            "\nxtask: FAILED: {} tests ran that {} does not list (this run's list: {}):",
            comparison.unlisted.len(),
            results::EXPECTED,
            ran.display()
        );
        for name in &comparison.unlisted {
            eprintln!("  {name}");
        }
    }
    let ignored: usize = run
        .steps
        .iter()
        .map(|s| s.results.count(Verdict::Ignored))
        .sum();
    let filtered: u64 = run.steps.iter().map(|s| s.results.filtered).sum();
    // What did not run is shown too, so no test hides behind an ignore or a filter.
    println!("xtask: {ignored} ignored, {filtered} filtered out");
    println!(
        "tests: {passed_total} passed, {failed_total} failed (in {})",
        format_duration(elapsed)
    );
    if failed_total == 0 {
        Ok(())
    } else {
        Err(format!("{failed_total} failed"))
    }
}

/// `mm:ss`.
fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// A test executable of the debug build.
type TestExecutable = lint::Executable;

impl TestExecutable {
    /// Runs it as `cargo test` would (in its package's directory), until `deadline`, with `env`
    /// and harness `args`.
    fn run(
        &self,
        tools: &Tools,
        step: &str,
        deadline: Instant,
        env: &[(&str, &std::ffi::OsStr)],
        args: &[&str],
    ) -> Results {
        let mut command = tools.command(&self.path.to_string_lossy());
        command
            .current_dir(&self.dir)
            .env("CARGO_MANIFEST_DIR", &self.dir)
            .envs(env.iter().copied())
            .args(args);
        println!("xtask: running {} ({})", self.target, self.package);
        results::run_tests(
            step,
            &self.target,
            &mut command,
            deadline.saturating_duration_since(Instant::now()),
        )
    }
}

/// cargo `subcommand`, for [`TEST_PACKAGES`] with [`TEST_FEATURES`], linting with clippy as it
/// compiles (see [`lint`]).
fn cargo_for_tests(tools: &Tools, root: &Path, subcommand: &str) -> Command {
    let mut command = tools.command("cargo");
    lint::with_clippy(tools, &mut command)
        .current_dir(root)
        .arg(subcommand)
        .args(["--features", TEST_FEATURES])
        .args(TEST_PACKAGES.iter().flat_map(|package| ["-p", package]));
    command
}

/// The debug build of every binary the tests start: the server (with gRPC's interop service) and
/// the CLI, in the one build the test executables share.
pub fn build_debug(tools: &Tools, root: &Path) -> Result {
    process::run_within(&mut cargo_for_tests(tools, root, "build"), BUILD_WITHIN)
}

/// [`build_debug`], then every test executable of the same build: what the two builds said.
fn build_tests(tools: &Tools, root: &Path) -> Result<lint::BuildReport> {
    let mut report = lint::build(
        &mut cargo_for_tests(tools, root, "build"),
        BUILD_WITHIN,
        root,
    )?;
    report.merge(lint::build(
        cargo_for_tests(tools, root, "test").arg("--no-run"),
        BUILD_WITHIN,
        root,
    )?);
    if !report.succeeded {
        return Err("the debug build failed".into());
    }
    if report.executables.is_empty() {
        return Err("the build listed no test executables".into());
    }
    Ok(report)
}

/// Replicas of the debug server behind HAProxy, rolled under load (`deploy/tests`), one test at
/// a time: each runs a cluster of its own. After the end-to-end tests, which build the release
/// page the replicas serve to the test's browser, and after interop, which installs connect-es.
fn cluster_tests(tools: &Tools, root: &Path, executables: &[TestExecutable]) -> Results {
    let haproxy = match setup::haproxy() {
        Ok(haproxy) => haproxy,
        Err(error) => return Results::problem(error),
    };
    let node = match tools.which("node") {
        Ok(node) => node,
        Err(error) => return Results::problem(error),
    };
    let test_tools = tools.test.as_ref().expect("set up for tests");
    let server = root.join("target/debug/greeter-server");
    let dist = root.join("dist");
    let artifacts = root.join("target/e2e-artifacts");
    let deadline = Instant::now() + CLUSTER_WITHIN;
    let mut results = Results::default();
    for executable in executables.iter().filter(|e| e.package == CLUSTER_PACKAGE) {
        results += executable.run(
            tools,
            "cluster",
            deadline,
            &[
                ("GREETER_CLUSTER_SERVER", server.as_os_str()),
                ("HAPROXY", haproxy.as_os_str()),
                ("NODE", node.as_os_str()),
                ("GREETER_E2E_DIST", dist.as_os_str()),
                ("GREETER_E2E_ARTIFACTS", artifacts.as_os_str()),
                ("CHROMEDRIVER", test_tools.chromedriver.as_os_str()),
            ],
            // One cluster at a time; and what each roll's load saw, printed even when it passes.
            &["--test-threads=1", "--show-output"],
        );
    }
    results
}

/// Builds the debug server and starts it for the browser tests: the process, its URL, and a
/// loopback URL where nothing listens (for the "server unreachable" tests).
fn start_test_server(tools: &Tools, root: &Path, port: u16) -> Result<ChildProcess> {
    let mut server = ChildProcess::spawn(
        tools
            .command(&root.join("target/debug/greeter-server").to_string_lossy())
            .args(["--dev", "--addr", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .env("GREETER_SHUTDOWN_DELAY", "0s"),
    )?;
    server.wait_for_port(port, Duration::from_secs(30))?;
    Ok(server)
}

/// `http://127.0.0.1:port`.
fn loopback(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Builds the release page and runs the end-to-end test executables (not under `cargo test`:
/// `trunk serve` needs cargo, and cargo would hold the build directory's lock).
fn end_to_end(tools: &Tools, root: &Path, executables: &[TestExecutable]) -> Results {
    if let Err(error) = page::build_release(tools) {
        return Results::problem(error);
    }
    let test_tools = tools.test.as_ref().expect("set up for tests");
    let trunk = match tools.which("trunk") {
        Ok(trunk) => trunk,
        Err(error) => return Results::problem(error),
    };
    let dist = root.join("dist");
    let artifacts = root.join("target/e2e-artifacts");
    let deadline = Instant::now() + END_TO_END_WITHIN;
    let mut results = Results::default();
    for executable in executables
        .iter()
        .filter(|e| e.package == END_TO_END_PACKAGE)
    {
        let command_results = executable.run(
            tools,
            "end to end",
            deadline,
            &[
                ("GREETER_E2E_DIST", dist.as_os_str()),
                ("GREETER_E2E_ARTIFACTS", artifacts.as_os_str()),
                ("CHROMEDRIVER", test_tools.chromedriver.as_os_str()),
                ("GECKODRIVER", test_tools.geckodriver.as_os_str()),
                ("TRUNK", trunk.as_os_str()),
            ],
            &[],
        );
        results += command_results;
    }
    println!("\nxtask: screenshots in {}", artifacts.display());
    results
}
