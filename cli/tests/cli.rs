//! The `greeter` binary against a real server on an ephemeral loopback port: its output, its exit
//! codes and its error messages, for each RPC kind.

use std::{net::SocketAddr, process::Output};

use greeter_server::Config;
use test_support::InProcess;
use tokio::process::Command;

/// Starts a Greeter server in this process; it stops when dropped.
async fn start_server() -> (SocketAddr, InProcess) {
    start_server_with(|_| {}).await
}

/// Starts a server with `configure` applied to its default configuration.
async fn start_server_with(configure: impl FnOnce(&mut Config)) -> (SocketAddr, InProcess) {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    config.serve.shutdown_delay = std::time::Duration::ZERO;
    configure(&mut config);
    let server = InProcess::start(greeter_server::app::server(&config)).await;
    (server.addr, server)
}

async fn greeter(addr: &str, args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_greeter"))
        .env_remove("GREETER_ADDR")
        .arg("--addr")
        .arg(addr)
        .args(args))
    .await
}

async fn run(command: &mut Command) -> Output {
    command.kill_on_drop(true).output().await.unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[tokio::test]
async fn each_rpc_kind_prints_its_greetings() {
    let (addr, _stop) = start_server().await;
    // A bare host:port works, as the seed's client writes it.
    let addr = addr.to_string();

    let unary = greeter(&addr, &["say-hello", "--name", "Bob"]).await;
    assert_eq!(unary.status.code(), Some(0), "{}", stderr(&unary));
    assert_eq!(stdout(&unary), "Hello, Bob\n");

    let stream = greeter(
        &addr,
        &["say-hello-stream", "--name", "Bob", "--count", "3"],
    )
    .await;
    assert_eq!(stream.status.code(), Some(0), "{}", stderr(&stream));
    assert_eq!(
        stdout(&stream),
        "Hello #1, Bob\nHello #2, Bob\nHello #3, Bob\n"
    );

    let to_all = greeter(
        &addr,
        &["say-hello-to-all", "--name", "Ann", "--name", "Bo"],
    )
    .await;
    assert_eq!(to_all.status.code(), Some(0), "{}", stderr(&to_all));
    assert_eq!(stdout(&to_all), "Hello, Ann\nHello, Bo\n");

    let chat = greeter(&addr, &["chat", "--name", "Ann", "--name", "Bo"]).await;
    assert_eq!(chat.status.code(), Some(0), "{}", stderr(&chat));
    assert_eq!(stdout(&chat), "Hello, Ann\nHello, Bo\n");
}

#[tokio::test]
async fn a_rejected_call_exits_with_its_status_code_and_message() {
    let (addr, _stop) = start_server().await;
    let url = format!("http://{addr}");

    let empty = greeter(&url, &["say-hello", "--name", " "]).await;
    assert_eq!(empty.status.code(), Some(3));
    assert_eq!(
        stderr(&empty),
        "error: INVALID_ARGUMENT: name must not be empty\n"
    );
    assert_eq!(stdout(&empty), "");

    let count = greeter(&url, &["say-hello-stream", "--count", "0"]).await;
    assert_eq!(count.status.code(), Some(3), "{}", stderr(&count));
    assert!(stderr(&count).starts_with("error: INVALID_ARGUMENT: "));

    // The second name is empty: the server names which one.
    let to_all = greeter(&url, &["say-hello-to-all", "--name", "Ann", "--name", ""]).await;
    assert_eq!(to_all.status.code(), Some(3), "{}", stderr(&to_all));
    assert!(stderr(&to_all).contains("name #2"), "{}", stderr(&to_all));
}

#[tokio::test]
async fn a_deadline_ends_a_slow_stream_with_deadline_exceeded() {
    let (addr, _stop) = start_server().await;
    let url = format!("http://{addr}");
    let slow = greeter(
        &url,
        &[
            "--deadline",
            "300ms",
            "say-hello-stream",
            "--count",
            "5",
            "--interval-ms",
            "1000",
        ],
    )
    .await;
    assert_eq!(slow.status.code(), Some(4), "{}", stderr(&slow));
    assert!(stderr(&slow).starts_with("error: DEADLINE_EXCEEDED: "));
    // The first greeting comes at once; the deadline passes before the second.
    assert_eq!(stdout(&slow), "Hello #1, Alice\n");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Bind and drop: a loopback port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = greeter(&format!("127.0.0.1:{port}"), &["say-hello"]).await;
    assert_eq!(output.status.code(), Some(14));
    assert!(
        stderr(&output).starts_with(&format!(
            "error: UNAVAILABLE: cannot reach the server at http://127.0.0.1:{port}"
        )),
        "{}",
        stderr(&output)
    );
}

/// A unary call to a server that is not listening yet (a replica restarting) is sent again with
/// backoff, and reaches the server once it listens. The server starts only after the CLI has
/// reported a failed attempt, so the success shows a retry.
#[tokio::test]
async fn a_unary_call_reaches_a_server_that_starts_after_it() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let port = test_support::process::free_port().unwrap();
    let mut cli = Command::new(env!("CARGO_BIN_EXE_greeter"))
        .env_remove("GREETER_ADDR")
        .args(["--addr", &format!("127.0.0.1:{port}"), "--verbose"])
        .args(["say-hello", "--name", "Late", "--deadline", "5s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut errors = BufReader::new(cli.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), errors.next_line())
        .await
        .expect("an attempt reported")
        .unwrap()
        .unwrap_or_default();
    assert!(
        first.starts_with("greeter: an attempt failed before reaching a server")
            && first.contains("Connection refused"),
        "{first}"
    );
    // The attempts left span at least 325 ms of pauses; the server listens well before their end.
    let (_addr, _stop) =
        start_server_with(|config| config.serve.addr = ([127, 0, 0, 1], port).into()).await;
    let output = cli.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "Hello, Late\n");
}

/// Refused connections are retried, five attempts in all, and then reported: the failure comes
/// after the retry pauses (375 ms at least), not at once.
#[tokio::test]
async fn a_server_that_never_listens_is_unavailable_after_the_retries() {
    let port = test_support::process::free_port().unwrap();
    let started = std::time::Instant::now();
    let output = greeter(&format!("127.0.0.1:{port}"), &["say-hello"]).await;
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(14), "{}", stderr(&output));
    assert!(
        took >= std::time::Duration::from_millis(375),
        "gave up after {took:?}"
    );
    assert!(
        stderr(&output).contains("Connection refused"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_unary_call_takes_exactly_one_name() {
    let output = greeter("127.0.0.1:1", &["say-hello", "--name", "A", "--name", "B"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: this call takes one --name, not 2\n"
    );
}

#[tokio::test]
async fn the_address_can_come_from_greeter_addr() {
    let (addr, _stop) = start_server().await;
    let output = run(Command::new(env!("CARGO_BIN_EXE_greeter"))
        .args(["say-hello", "--name", "Env"])
        .env("GREETER_ADDR", format!("http://{addr}")))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Hello, Env\n");
}

#[tokio::test]
async fn https_with_the_servers_certificate_given_by_ca_cert() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let (addr, _stop) = start_server_with(|config| {
        config.serve.tls_cert = Some(cert.clone());
        config.serve.tls_key = Some(key.clone());
    })
    .await;
    let url = format!("https://localhost:{}", addr.port());

    let trusted = greeter(
        &url,
        &[
            "--ca-cert",
            cert.to_str().unwrap(),
            "say-hello",
            "--name",
            "TLS",
        ],
    )
    .await;
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr(&trusted));
    assert_eq!(stdout(&trusted), "Hello, TLS\n");

    // Without it, the self-signed certificate is not trusted: the server is unreachable.
    let untrusted = greeter(&url, &["say-hello", "--name", "TLS"]).await;
    assert_eq!(untrusted.status.code(), Some(14), "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("certificate"),
        "{}",
        stderr(&untrusted)
    );
}

/// The exit code is the call's status code, whatever the status: OUT_OF_RANGE from our server's
/// message size limit, and UNIMPLEMENTED from a gRPC server that does not host the Greeter.
#[tokio::test]
async fn other_statuses_exit_with_their_codes() {
    let (addr, _stop) = start_server_with(|config| config.serve.max_message_size = 1024).await;
    let too_long = "a".repeat(2000);
    let output = greeter(&addr.to_string(), &["say-hello", "--name", &too_long]).await;
    assert_eq!(output.status.code(), Some(11), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("error: OUT_OF_RANGE: "),
        "{}",
        stderr(&output)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health_only = listener.local_addr().unwrap();
    let (_, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let output = greeter(&health_only.to_string(), &["say-hello"]).await;
    assert_eq!(output.status.code(), Some(12), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("error: UNIMPLEMENTED"),
        "{}",
        stderr(&output)
    );
}
