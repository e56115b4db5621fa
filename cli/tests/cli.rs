//! The `greeter` binary against a real server on an ephemeral loopback port: its output, its exit
//! codes and its error messages, for each RPC kind.

use std::{net::SocketAddr, process::Output};

use greeter_server::{bind, serve, Config};
use tokio::{process::Command, sync::oneshot};

/// Starts a server in this process; it stops when the returned sender is dropped.
async fn start_server() -> (SocketAddr, oneshot::Sender<()>) {
    let config = Config::new("127.0.0.1:0".parse().unwrap());
    let listener = bind(&config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, &config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop)
}

async fn greeter(addr: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greeter"))
        .arg("--addr")
        .arg(addr)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
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

#[tokio::test]
async fn a_unary_call_takes_exactly_one_name() {
    let output = greeter("127.0.0.1:1", &["say-hello", "--name", "A", "--name", "B"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: this call takes one --name, not 2\n"
    );
}
