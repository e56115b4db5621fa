//! `cargo xtask interop`: software nobody on this project wrote, calling our server, and our clients
//! calling servers nobody here wrote.
//!
//! Each case is one command with real processes on loopback: a client (Python grpcio, grpcurl,
//! gRPC's Ruby interop client, connect-es, the official grpc-web runtime, improbable-eng's grpc-web,
//! our CLI, our wasm client in headless Chromium) against a server (ours, the seed's Python server,
//! connect-node's), over one protocol or interop test case. The suite ends with a matrix of client × server × protocol → pass/fail, and fails if
//! any case failed. The third-party software is pinned: interop/package-lock.json (npm),
//! interop/requirements.txt (PyPI) and Debian's ruby-grpc and grpc-proto (apt).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    process::{self, free_port, ChildProcess},
    results::{self, Results},
    setup::Tools,
    wasm::wasm_test_command,
    Result,
};

/// The first part of the interop tests' names.
pub const LABEL: &str = "interop";

const OUR_SERVER: &str = "greeter-server (tonic)";
const OUR_SERVER_TESTING: &str = "greeter-server --grpc-testing";

/// The test cases of gRPC's interop test description that the Ruby interop client runs here.
const RUBY_INTEROP_CASES: [&str; 13] = [
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "unimplemented_method",
    "unimplemented_service",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
];

/// One cell of the matrix.
struct Case {
    client: &'static str,
    server: &'static str,
    protocol: &'static str,
    passed: bool,
}

/// Sets up the third-party software, starts the servers, runs every case and prints the matrix.
/// `tools` must be set up for tests. Each case is a result of its own, named
/// `interop | CLIENT → SERVER | PROTOCOL`, and so is each test of a test runner within it.
pub fn run(tools: &Tools, root: &Path) -> Results {
    let mut results = Results::default();
    match run_cases(tools, root, &mut results) {
        Ok(cases) => print_matrix(&cases),
        Err(error) => results.add_problem(format!("interop: {error}")),
    }
    results
}

fn run_cases(tools: &Tools, root: &Path, results: &mut Results) -> Result<Vec<Case>> {
    let test_tools = tools.test.as_ref().expect("set up for tests");
    let python = test_tools.venv_bin("python");
    process::run(
        tools
            .command("npm")
            .current_dir(root.join("interop"))
            .args(["ci", "--no-audit", "--no-fund"]),
    )?;
    let python_stubs = python_stubs(&python, root)?;
    // The tests' own build (the server with gRPC's interop service, for gRPC's interop clients;
    // the CLI): nothing to do when `cargo xtask test` has built it already.
    crate::test::build_debug(tools, root)?;
    let ruby_interop_client = ruby_grpc_dir()?.join("src/ruby/pb/test/client.rb");

    // The servers, each on its own free loopback port, stopped when dropped.
    let ours_port = free_port()?;
    let ours = format!("http://127.0.0.1:{ours_port}");
    let mut ours_process = ChildProcess::spawn(
        tools
            .command(&root.join("target/debug/greeter-server").to_string_lossy())
            .args([
                "--dev",
                "--grpc-testing",
                "--addr",
                &format!("127.0.0.1:{ours_port}"),
            ])
            .env("RUST_LOG", "warn")
            .env("GREETER_SHUTDOWN_DELAY", "0s"),
    )?;
    ours_process.wait_for_port(ours_port, Duration::from_secs(30))?;

    let seed_port = free_port()?;
    let mut seed_server = ChildProcess::spawn(
        Command::new(&python)
            .arg(root.join("interop/seed/greeter_server.py"))
            .env("PYTHONPATH", &python_stubs)
            .env("GREETER_ADDR", format!("127.0.0.1:{seed_port}")),
    )?;
    seed_server.wait_for_port(seed_port, Duration::from_secs(30))?;

    let connect_port = free_port()?;
    let mut connect_server = ChildProcess::spawn(
        tools
            .command("node")
            .arg(root.join("interop/connect-server.mjs"))
            .env("INTEROP_PORT", connect_port.to_string()),
    )?;
    connect_server.wait_for_port(connect_port, Duration::from_secs(30))?;
    let connect = format!("http://127.0.0.1:{connect_port}");

    let mut cases = Vec::new();
    let mut case = |client, server, protocol, checks: Vec<Check>| {
        println!("\nxtask: interop: {client} → {server} over {protocol}");
        let name = format!("{client} → {server} over {protocol}");
        // Every check runs, so one failure does not hide another.
        let mut passed = true;
        for check in checks {
            let (check_passed, tests) = check.run(&name);
            passed &= check_passed;
            *results += tests;
        }
        *results += Results::check(format!("{LABEL} | {name} | (case)"), passed);
        cases.push(Case {
            client,
            server,
            protocol,
            passed,
        });
    };
    let node_test = |file: &str, vars: &[(&str, &str)]| {
        let mut command = tools.command("node");
        command
            .current_dir(root)
            .args(["--test", &format!("interop/{file}")])
            .env("GREETER_SERVER", &ours)
            .envs(vars.iter().copied());
        Check::Tests(command)
    };

    case(
        "seed Python client (grpcio)",
        OUR_SERVER,
        "gRPC, HTTP/2",
        vec![Check::Prints {
            command: {
                let mut command = Command::new(&python);
                command
                    .arg(root.join("interop/seed/greeter_client.py"))
                    .env("PYTHONPATH", &python_stubs)
                    .env("GREETER_ADDR", format!("127.0.0.1:{ours_port}"));
                command
            },
            code: 0,
            stdout: Some("Server replied: Hello, Alice\n"),
        }],
    );
    let cli_command = |args: &[&str]| {
        let mut command = Command::new(root.join("target/debug/greeter"));
        command
            .args(["--addr", &format!("127.0.0.1:{seed_port}")])
            .args(args);
        command
    };
    case(
        "greeter CLI (tonic)",
        "seed Python server (grpcio)",
        "gRPC, HTTP/2",
        vec![
            Check::Prints {
                command: cli_command(&["say-hello", "--name", "Bob"]),
                code: 0,
                stdout: Some("Hello, Bob\n"),
            },
            // The seed server has only SayHello: its status must reach the CLI's exit code.
            Check::Prints {
                command: cli_command(&["say-hello-stream"]),
                code: 12,
                stdout: Some(""),
            },
        ],
    );
    case(
        "grpcurl",
        OUR_SERVER,
        "gRPC, HTTP/2, reflection",
        vec![node_test(
            "grpcurl.test.mjs",
            &[("GRPCURL", &test_tools.venv_bin("grpcurl").to_string_lossy())],
        )],
    );
    // HTTP/1.1 carries no request streams: two of the file's tests run over HTTP/2 only.
    for (protocol, transport) in [
        ("gRPC-Web, HTTP/1.1", "grpc-web-h1"),
        ("gRPC-Web, HTTP/2", "grpc-web-h2c"),
        ("gRPC, HTTP/2", "grpc-h2c"),
    ] {
        case(
            "connect-es (connect-node)",
            OUR_SERVER,
            protocol,
            vec![node_test(
                "connect-es.test.mjs",
                &[("INTEROP_TRANSPORT", transport)],
            )],
        );
    }
    for (protocol, format) in [
        ("gRPC-Web binary, HTTP/1.1", "binary"),
        ("gRPC-Web text, HTTP/1.1", "text"),
    ] {
        case(
            "grpc-web (official JS runtime)",
            OUR_SERVER,
            protocol,
            vec![node_test(
                "grpc-web.test.mjs",
                &[("INTEROP_FORMAT", format)],
            )],
        );
    }
    case(
        "improbable-eng grpc-web",
        OUR_SERVER,
        "grpc-websockets",
        vec![node_test("improbable-websocket.test.mjs", &[])],
    );
    // gRPC's own interop client against grpc.testing.TestService on our server, one case per test.
    for test_case in RUBY_INTEROP_CASES {
        case(
            "gRPC interop client (ruby-grpc)",
            OUR_SERVER_TESTING,
            test_case,
            vec![Check::Succeeds({
                let mut command = Command::new("ruby");
                command.arg(&ruby_interop_client).args([
                    "--server_host=127.0.0.1",
                    &format!("--server_port={ours_port}"),
                    "--use_tls=false",
                    &format!("--test_case={test_case}"),
                ]);
                command
            })],
        );
    }
    // The one case of the list that Debian's Ruby interop client predates, on the same Ruby stack.
    case(
        "gRPC interop client (ruby-grpc)",
        OUR_SERVER_TESTING,
        "special_status_message",
        vec![Check::Succeeds({
            let mut command = Command::new("ruby");
            command
                .arg(root.join("interop/ruby/special_status_message.rb"))
                .args(["127.0.0.1", &ours_port.to_string()]);
            command
        })],
    );
    // Our wasm client in a real browser against a server that is not tonic: the same stub tests
    // the page's client passes against ours, and its server-streaming tests.
    let dead = format!("http://127.0.0.1:{}", free_port()?);
    let chromium = |args: &[&str]| {
        let mut command = wasm_test_command(tools, root, &connect, &dead);
        command
            .env("CHROMEDRIVER", &test_tools.chromedriver)
            .args(args);
        Check::Tests(command)
    };
    case(
        "greeter-web (wasm, headless Chromium)",
        "connect-node",
        "gRPC-Web, HTTP/1.1",
        vec![
            chromium(&["--test", "stub"]),
            chromium(&["--test", "streaming", "--", "server_streaming"]),
        ],
    );

    ours_process.check_running()?;
    seed_server.check_running()?;
    connect_server.check_running()?;
    Ok(cases)
}

/// Where Debian's ruby-grpc keeps the grpc gem, whose sources include gRPC's Ruby interop client.
fn ruby_grpc_dir() -> Result<PathBuf> {
    process::output(Command::new("ruby").args([
        "-e",
        "print Gem::Specification.find_by_name('grpc').gem_dir",
    ]))
    .map(PathBuf::from)
    .filter(|dir| dir.join("src/ruby/pb/test/client.rb").is_file())
    .ok_or_else(|| "gRPC's Ruby interop client is missing: apt-get install ruby-grpc".to_owned())
}

/// Generates hello_pb2 / hello_pb2_grpc from proto/hello.proto, as the seed document does.
pub fn python_stubs(python: &Path, root: &Path) -> Result<PathBuf> {
    let out = root.join("target/interop/python");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    process::run(
        Command::new(python)
            .current_dir(root)
            .args(["-m", "grpc_tools.protoc", "-I", "proto"])
            .arg(format!("--python_out={}", out.display()))
            .arg(format!("--grpc_python_out={}", out.display()))
            .arg("proto/hello.proto"),
    )?;
    Ok(out)
}

/// How long one check may run; one still running then is stopped and fails.
const CHECK_WITHIN: Duration = Duration::from_secs(5 * 60);

/// One command of a case and what it must do to pass.
enum Check {
    /// Pass when the command succeeds (a client that asserts by itself).
    Succeeds(Command),
    /// Pass when the test runner exits 0; each of its tests is a result of its own, so one that
    /// does not run is named by the list of expected tests.
    Tests(Command),
    /// Pass when the command exits with `code` and prints exactly `stdout` (anything, if `None`).
    Prints {
        command: Command,
        code: i32,
        stdout: Option<&'static str>,
    },
}

impl Check {
    /// Whether it passed, and the results of the tests it ran, under the case's `name`.
    fn run(self, name: &str) -> (bool, Results) {
        match self {
            Check::Succeeds(mut command) => {
                let passed = process::run_within(&mut command, CHECK_WITHIN)
                    .map_err(|error| eprintln!("xtask: {error}"))
                    .is_ok();
                (passed, Results::default())
            }
            Check::Tests(mut command) => {
                let tests = results::run_tests(LABEL, name, &mut command, CHECK_WITHIN);
                let passed =
                    tests.problems.is_empty() && tests.count(results::Verdict::Failed) == 0;
                (passed, tests)
            }
            Check::Prints {
                mut command,
                code,
                stdout,
            } => {
                let output = match process::output_within(&mut command, CHECK_WITHIN) {
                    Ok(output) => output,
                    Err(error) => {
                        eprintln!("xtask: {error}");
                        return (false, Results::default());
                    }
                };
                let printed = String::from_utf8_lossy(&output.stdout);
                print!("{printed}");
                eprint!("{}", String::from_utf8_lossy(&output.stderr));
                let code_ok = output.status.code() == Some(code);
                let stdout_ok = stdout.is_none_or(|expected| printed == expected);
                if !code_ok {
                    eprintln!("xtask: exit status {}, expected code {code}", output.status);
                }
                if !stdout_ok {
                    eprintln!("xtask: expected standard output {stdout:?}");
                }
                (code_ok && stdout_ok, Results::default())
            }
        }
    }
}

fn print_matrix(cases: &[Case]) {
    let width = |column: fn(&Case) -> &str, title: &str| {
        cases
            .iter()
            .map(|case| column(case).chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (client, server, protocol) = (
        width(|case| case.client, "client"),
        width(|case| case.server, "server"),
        width(|case| case.protocol, "protocol"),
    );
    println!("\ninterop matrix");
    println!(
        "{:client$}  {:server$}  {:protocol$}  result",
        "client", "server", "protocol"
    );
    for case in cases {
        println!(
            "{:client$}  {:server$}  {:protocol$}  {}",
            case.client,
            case.server,
            case.protocol,
            if case.passed { "pass" } else { "FAIL" }
        );
    }
}
