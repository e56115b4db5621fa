//! The chat room's binary, as its README promises: every flag of `grpc_serve::Options` is also
//! read from a `CHAT_*` variable, and a bad value stops start-up naming its flag.

use std::{process::Command, time::Duration};

use test_support::process::{free_port, ChildProcess};

const SIGTERM: i32 = 15;

#[test]
fn flags_are_read_from_chat_variables() {
    let port = free_port().unwrap();
    let mut room = ChildProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_chat-room"))
            .env("CHAT_ADDR", format!("127.0.0.1:{port}"))
            .env("CHAT_SHUTDOWN_DELAY", "0s"),
    )
    .unwrap();
    // It listens where CHAT_ADDR says, not on its default port.
    room.wait_for_port(port, Duration::from_secs(30)).unwrap();
    room.signal(SIGTERM).unwrap();
    let status = room.exit_status(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");

    let output = Command::new(env!("CARGO_BIN_EXE_chat-room"))
        .env("CHAT_ADDR", format!("127.0.0.1:{port}"))
        .env("CHAT_MAX_CONNECTIONS", "many")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--max-connections") && stderr.contains("many"),
        "{stderr}"
    );
}
