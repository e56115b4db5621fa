//! Graceful shutdown of the real binary: SIGTERM ends open streams with UNAVAILABLE (a status, not
//! a reset), health goes NOT_SERVING, and the process exits 0 within the drain time.

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hello_proto::{greeter_client::GreeterClient, HelloRequest, HelloStreamRequest};
use tonic::{transport::Channel, Code};

#[tokio::test]
async fn sigterm_ends_streams_with_unavailable_and_exits_zero() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_greeter-server"))
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--drain-timeout",
            "5s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let channel = loop {
        if let Ok(channel) = Channel::from_shared(url.clone()).unwrap().connect().await {
            break channel;
        }
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut client = GreeterClient::new(channel);

    let mut stream = client
        .say_hello_stream(HelloStreamRequest {
            name: "Long".into(),
            count: 1000,
            interval_ms: 100,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stream.message().await.unwrap().unwrap().message,
        "Hello #1, Long"
    );
    let (names_tx, names_rx) = tokio::sync::mpsc::channel(1);
    let mut chat = client
        .chat(tokio_stream::wrappers::ReceiverStream::new(names_rx))
        .await
        .unwrap()
        .into_inner();
    names_tx
        .send(HelloRequest { name: "a".into() })
        .await
        .unwrap();
    assert_eq!(chat.message().await.unwrap().unwrap().message, "Hello, a");

    let stopping = Instant::now();
    // SAFETY: kill(2) on the child we spawned.
    assert_eq!(
        unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) },
        0
    );

    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the server is shutting down; retry the call"
    );
    let status = chat.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    drop(names_tx);

    let exit = loop {
        if let Some(exit) = server.try_wait().unwrap() {
            break exit;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(6),
        "{:?}",
        stopping.elapsed()
    );
}
