//! The three streaming RPC kinds from the browser, each over the transport that carries it:
//! server streaming over gRPC-Web (fetch), client and bidirectional streaming over the WebSocket
//! channel, all with the same generated stub behind `GreeterApi`.
//!
//! `GREETER_TEST_SERVER` is a running server that allows this page's origin;
//! `GREETER_TEST_DEAD_SERVER` is a loopback address where nothing listens (`cargo xtask test` sets
//! both). Only `cancellation_is_observed_by_the_server` cancels calls, so the server's cancelled
//! count moves by exactly what it does.

#![cfg(target_arch = "wasm32")]

mod support;

use std::time::Duration;

use futures_channel::mpsc;
use futures_util::{stream, StreamExt};
use greeter_web::api::{CallError, GreeterApi};
use hello_proto::HelloStreamRequest;
use support::sleep_ms;
use tonic::Code;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: &str = env!("GREETER_TEST_SERVER");
const DEAD_SERVER: &str = env!("GREETER_TEST_DEAD_SERVER");

fn api() -> GreeterApi {
    GreeterApi::new(SERVER)
}

fn stream_request(name: &str, count: u32, interval_ms: u32) -> HelloStreamRequest {
    HelloStreamRequest {
        name: name.into(),
        count,
        interval_ms,
    }
}

async fn collect(greetings: greeter_web::api::Greetings) -> (Vec<String>, Result<(), CallError>) {
    let mut received = Vec::new();
    let mut greetings = greetings;
    while let Some(greeting) = greetings.next().await {
        match greeting {
            Ok(greeting) => received.push(greeting),
            Err(error) => return (received, Err(error)),
        }
    }
    (received, Ok(()))
}

fn names(
    names: impl IntoIterator<Item = String>,
) -> impl futures_util::Stream<Item = String> + Send + 'static {
    stream::iter(names.into_iter().collect::<Vec<_>>())
}

#[wasm_bindgen_test]
async fn server_streaming_delivers_every_greeting_in_order() {
    let greetings = api()
        .say_hello_stream(stream_request("Ada", 5, 20), None)
        .await
        .unwrap();
    let (received, end) = collect(greetings).await;
    assert_eq!(
        received,
        (1..=5)
            .map(|i| format!("Hello #{i}, Ada"))
            .collect::<Vec<_>>()
    );
    assert_eq!(end, Ok(()));
}

#[wasm_bindgen_test]
async fn server_streaming_rejects_bad_arguments() {
    let error = match api()
        .say_hello_stream(stream_request("Ada", 0, 0), None)
        .await
    {
        Ok(greetings) => collect(greetings).await.1.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(
        error.to_string(),
        "INVALID_ARGUMENT: count must be between 1 and 1000, got 0"
    );
}

#[wasm_bindgen_test]
async fn a_slow_stream_with_a_short_deadline_is_deadline_exceeded() {
    // Greetings at 0, 300, 600 and 900 ms; the deadline at 1 s ends the stream after them.
    let result = api()
        .say_hello_stream(
            stream_request("Slow", 10, 300),
            Some(Duration::from_millis(1000)),
        )
        .await;
    let (received, end) = match result {
        Ok(greetings) => collect(greetings).await,
        Err(error) => (Vec::new(), Err(error)),
    };
    assert_eq!(end.unwrap_err().code(), Code::DeadlineExceeded);
    // The greetings sent before the deadline arrive, the first of them at once, in order.
    assert!((1..=4).contains(&received.len()), "{received:?}");
    let expected: Vec<String> = (1..=received.len())
        .map(|i| format!("Hello #{i}, Slow"))
        .collect();
    assert_eq!(received, expected);
}

#[wasm_bindgen_test]
async fn client_streaming_of_1000_names_over_a_websocket() {
    let sent: Vec<String> = (1..=1000).map(|i| format!("n{i}")).collect();
    let summary = api()
        .say_hello_to_all(names(sent.clone()), None)
        .await
        .unwrap();
    assert_eq!(summary.count, 1000);
    assert_eq!(
        summary.messages,
        sent.iter()
            .map(|n| format!("Hello, {n}"))
            .collect::<Vec<_>>()
    );
}

#[wasm_bindgen_test]
async fn client_streaming_names_the_bad_name() {
    let error = api()
        .say_hello_to_all(names(["ok".to_string(), " ".to_string()]), None)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "INVALID_ARGUMENT: name #2: name must not be empty"
    );
}

#[wasm_bindgen_test]
async fn client_streaming_that_never_finishes_hits_its_deadline() {
    // A stream that sends one name and then stays open.
    let (sender, receiver) = mpsc::unbounded::<String>();
    sender.unbounded_send("one".into()).unwrap();
    let error = api()
        .say_hello_to_all(receiver, Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error}");
    drop(sender);
}

#[wasm_bindgen_test]
async fn bidi_exchanges_1000_messages_in_order() {
    let (sender, receiver) = mpsc::unbounded::<String>();
    let mut greetings = api().chat(receiver, None).await.unwrap();
    let started = js_sys::Date::now();
    for i in 1..=1000 {
        sender.unbounded_send(format!("n{i}")).unwrap();
        // Each greeting arrives before the next name is sent: both directions are open.
        let greeting = greetings.next().await.unwrap().unwrap();
        assert_eq!(greeting, format!("Hello, n{i}"));
    }
    let elapsed = js_sys::Date::now() - started;
    console_log!("1000-message bidi exchange (send, await reply; one at a time): {elapsed:.0} ms");
    drop(sender);
    assert!(
        greetings.next().await.is_none(),
        "the call ends OK after the client ends"
    );
}

#[wasm_bindgen_test]
async fn bidi_ends_at_a_bad_name() {
    let (received, end) = collect(
        api()
            .chat(names(["fine".to_string(), String::new()]), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(received, ["Hello, fine"]);
    assert_eq!(
        end.unwrap_err().to_string(),
        "INVALID_ARGUMENT: name #2: name must not be empty"
    );
}

#[wasm_bindgen_test]
async fn cancellation_is_observed_by_the_server() {
    let api = api();
    let before = api.stream_stats().await.unwrap();

    // Server streaming over fetch: read two greetings, then drop the stream.
    let mut greetings = api
        .say_hello_stream(stream_request("Cancel", 1000, 20), None)
        .await
        .unwrap();
    assert_eq!(greetings.next().await.unwrap().unwrap(), "Hello #1, Cancel");
    assert_eq!(greetings.next().await.unwrap().unwrap(), "Hello #2, Cancel");
    drop(greetings);

    // Bidi over a WebSocket: one exchange, then drop the call with the request side still open.
    let (sender, receiver) = mpsc::unbounded::<String>();
    let mut replies = api.chat(receiver, None).await.unwrap();
    sender.unbounded_send("Bye".into()).unwrap();
    assert_eq!(replies.next().await.unwrap().unwrap(), "Hello, Bye");
    drop(replies);

    let mut after = api.stream_stats().await.unwrap();
    for _ in 0..100 {
        if after.cancelled >= before.cancelled + 2 {
            break;
        }
        sleep_ms(50).await;
        after = api.stream_stats().await.unwrap();
    }
    assert_eq!(
        after.cancelled,
        before.cancelled + 2,
        "{before:?} → {after:?}"
    );
    drop(sender);
}

#[wasm_bindgen_test]
async fn websocket_calls_to_a_dead_server_are_unavailable() {
    let error = GreeterApi::new(DEAD_SERVER)
        .say_hello_to_all(names(["a".to_string()]), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert!(
        error.to_string().contains("cannot reach the server"),
        "{error}"
    );
}
