//! The tonic-generated stub over tonic-web-wasm-client, in a real browser, against the real server.
//!
//! `GREETER_TEST_SERVER` is a running server that allows this page's origin; `GREETER_TEST_DEAD_SERVER`
//! is a loopback address where nothing listens. `cargo xtask test` sets both.

#![cfg(target_arch = "wasm32")]

use greeter_web::api::{CallError, GreeterApi};
use hello_proto::{greeter_client::GreeterClient, HelloRequest};
use tonic::Code;
use tonic_web_wasm_client::Client;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: &str = env!("GREETER_TEST_SERVER");
const DEAD_SERVER: &str = env!("GREETER_TEST_DEAD_SERVER");

fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

#[wasm_bindgen_test]
async fn generated_stub_says_hello() {
    let mut client = GreeterClient::new(Client::new(SERVER.into()));
    let reply = client.say_hello(hello("Alice")).await.unwrap();
    assert_eq!(reply.into_inner().message, "Hello, Alice");

    let reply = client.say_hello(hello("Zoë 🦀")).await.unwrap();
    assert_eq!(reply.into_inner().message, "Hello, Zoë 🦀");
}

#[wasm_bindgen_test]
async fn generated_stub_sees_invalid_argument() {
    let mut client = GreeterClient::new(Client::new(SERVER.into()));
    let status = client.say_hello(hello("")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "name must not be empty");

    let status = client
        .say_hello(hello(&"x".repeat(1025)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "name must be at most 1024 bytes, got 1025"
    );
}

#[wasm_bindgen_test]
async fn api_reports_status_by_code_name() {
    let error = GreeterApi::new(SERVER)
        .say_hello(" ".into(), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(
        error.to_string(),
        "INVALID_ARGUMENT: name must not be empty"
    );
}

#[wasm_bindgen_test]
async fn nothing_listening_is_a_clear_error_not_a_panic() {
    let mut client = GreeterClient::new(Client::new(DEAD_SERVER.into()));
    let status = client.say_hello(hello("Alice")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unknown);

    // The page's call is sent five times, with at least 375 ms of pauses, before it gives up.
    let started = js_sys::Date::now();
    let error = GreeterApi::new(DEAD_SERVER)
        .say_hello("Alice".into(), None)
        .await
        .unwrap_err();
    let took_ms = js_sys::Date::now() - started;
    assert!(took_ms >= 375.0, "gave up after {took_ms} ms");
    assert!(
        matches!(&error, CallError::Unreachable { server_url, .. } if server_url == DEAD_SERVER),
        "{error:?}"
    );
    assert_eq!(error.code(), Code::Unavailable);
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot reach the server at {DEAD_SERVER}")),
        "{error}"
    );
}

/// Within a deadline, the retries stop when the next pause would outlast it.
#[wasm_bindgen_test]
async fn the_retries_end_within_the_deadline() {
    let started = js_sys::Date::now();
    let error = GreeterApi::new(DEAD_SERVER)
        .say_hello("Alice".into(), Some(std::time::Duration::from_millis(120)))
        .await
        .unwrap_err();
    let took_ms = js_sys::Date::now() - started;
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    // Without the deadline the pauses alone take 375 ms: it stopped before them, whatever the
    // browser's pace.
    assert!(took_ms < 375.0, "took {took_ms} ms with a 120 ms deadline");
}
