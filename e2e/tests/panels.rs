//! Every panel of the served page, used in headless Chromium and Firefox: server streaming (with
//! Cancel and the deadline), client streaming, and the bidirectional conversation, by Enter and by
//! their buttons, with the server's errors and the deadline shown in each.

use std::time::Duration;

use fantoccini::key::Key;
use greeter_e2e::{in_every_browser, start_page_server, Browser, BrowserKind};
use hello_proto::{greeter_stats_client::GreeterStatsClient, StreamStats, StreamStatsRequest};

async fn stream_stats(url: &str) -> StreamStats {
    let channel = test_support::channel(url).await;
    GreeterStatsClient::new(channel)
        .get_stream_stats(StreamStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn enter(text: &str) -> String {
    format!("{text}{}", char::from(Key::Enter))
}

in_every_browser!(
    every_rpc_kind_from_its_panel,
    buttons_errors_and_deadlines_in_the_streaming_panels,
    streaming_panels_reopen_their_calls_across_a_server_restart
);

async fn every_rpc_kind_from_its_panel(kind: BrowserKind) {
    let server = start_page_server().await;
    let url = server.url.clone();
    let browser = Browser::start(kind).await;
    browser.client.goto(&url).await.unwrap();

    // Server streaming: three greetings, in order, then OK.
    browser.type_into("#stream-name", "E2E").await;
    browser.type_into("#stream-count", "3").await;
    browser.type_into("#stream-interval", "50").await;
    browser.click("#stream-start").await;
    browser
        .expect_texts(
            "#stream-messages li",
            &["Hello #1, E2E", "Hello #2, E2E", "Hello #3, E2E"],
        )
        .await;
    browser.expect_text("#stream-status", "OK").await;

    // Cancel stops the stream on the server too.
    browser.type_into("#stream-count", "1000").await;
    browser.type_into("#stream-interval", "100").await;
    browser.click("#stream-start").await;
    browser.find("#stream-messages li").await;
    browser.click("#stream-cancel").await;
    let cancelled = "CANCELLED: cancelled on the page";
    browser.expect_text("#stream-status", cancelled).await;
    let mut stats = stream_stats(&url).await;
    for _ in 0..100 {
        if stats.cancelled == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = stream_stats(&url).await;
    }
    assert_eq!((stats.cancelled, stats.active), (1, 0), "{stats:?}");

    // Client streaming: names added one by one, the summary after Finish.
    for name in ["Ann", "Ben", "Cy"] {
        browser.type_into("#all-name", &enter(name)).await;
    }
    browser.expect_text("#all-sent", "Ann, Ben, Cy").await;
    browser.click("#all-finish").await;
    browser
        .expect_texts(
            "#all-summary li",
            &["Hello, Ann", "Hello, Ben", "Hello, Cy"],
        )
        .await;
    browser.expect_text("#all-count", "3 greeted").await;
    browser.expect_text("#all-status", "OK").await;

    // Bidirectional: each greeting shows up while the conversation is still open.
    browser.type_into("#chat-name", &enter("Xi")).await;
    browser
        .expect_texts("#chat-log li.received", &["Hello, Xi"])
        .await;
    assert_eq!(browser.texts("#chat-status").await, ["running…"]);
    browser.type_into("#chat-name", &enter("Yu")).await;
    browser
        .expect_texts("#chat-log li", &["Xi", "Hello, Xi", "Yu", "Hello, Yu"])
        .await;
    browser.click("#chat-end").await;
    browser.expect_text("#chat-status", "OK").await;
    browser.screenshot("all-panels.png").await;

    // The deadline applies to every call: a slow stream ends with DEADLINE_EXCEEDED.
    browser.type_into("#deadline", "300").await;
    browser.type_into("#stream-count", "10").await;
    browser.type_into("#stream-interval", "200").await;
    browser.click("#stream-start").await;
    let status = browser
        .wait_for_text("#stream-status", |t| t.starts_with("DEADLINE_EXCEEDED"))
        .await;
    assert!(status.starts_with("DEADLINE_EXCEEDED"), "{status}");
    browser.screenshot("deadline-exceeded.png").await;

    browser.close().await;
    drop(server);
}

/// The Add and Send buttons (not only Enter), the server's error in each streaming panel, and the
/// deadline on a client stream and a conversation left open.
async fn buttons_errors_and_deadlines_in_the_streaming_panels(kind: BrowserKind) {
    let server = start_page_server().await;
    let browser = Browser::start(kind).await;
    browser.client.goto(&server.url).await.unwrap();

    for name in ["Ann", "Ben"] {
        browser.type_into("#all-name", name).await;
        browser.click("#all-add").await;
        // Each name leaves the field once it is sent.
        browser
            .wait_for_text("#all-sent", |t| t.ends_with(name))
            .await;
    }
    browser.expect_text("#all-sent", "Ann, Ben").await;
    browser.click("#all-finish").await;
    browser
        .expect_texts("#all-summary li", &["Hello, Ann", "Hello, Ben"])
        .await;
    browser.type_into("#chat-name", "Xi").await;
    browser.click("#chat-send").await;
    browser
        .expect_texts("#chat-log li", &["Xi", "Hello, Xi"])
        .await;
    browser.click("#chat-end").await;
    browser.expect_text("#chat-status", "OK").await;

    // The server's status, code and message, in each panel.
    browser.type_into("#stream-name", "").await;
    browser.click("#stream-start").await;
    let expected = "INVALID_ARGUMENT: name must not be empty";
    browser.expect_text("#stream-status", expected).await;
    let expected = "INVALID_ARGUMENT: name #1: name must not be empty";
    browser.type_into("#all-name", " ").await;
    browser.click("#all-add").await;
    browser.expect_text("#all-status", expected).await;
    browser.type_into("#chat-name", " ").await;
    browser.click("#chat-send").await;
    browser.expect_text("#chat-status", expected).await;
    browser.screenshot("streaming-errors.png").await;

    // A call left open ends at the deadline, in both panels.
    browser.type_into("#deadline", "300").await;
    browser.type_into("#all-name", "Slow").await;
    browser.click("#all-add").await;
    let status = browser
        .wait_for_text("#all-status", |t| t.starts_with("DEADLINE_EXCEEDED"))
        .await;
    assert!(status.starts_with("DEADLINE_EXCEEDED"), "{status}");
    browser.type_into("#chat-name", "Slow").await;
    browser.click("#chat-send").await;
    let status = browser
        .wait_for_text("#chat-status", |t| t.starts_with("DEADLINE_EXCEEDED"))
        .await;
    assert!(status.starts_with("DEADLINE_EXCEEDED"), "{status}");

    browser.close().await;
    drop(server);
}

/// A restart under open calls (each ends UNAVAILABLE, its socket closed going away): every
/// streaming panel opens its call again on the new server and loses nothing. The server stream
/// gets the greetings still to come, client streaming sends every name again, and the
/// conversation the name it had not answered.
async fn streaming_panels_reopen_their_calls_across_a_server_restart(kind: BrowserKind) {
    let mut server = start_page_server().await;
    let browser = Browser::start(kind).await;
    browser.client.goto(&server.url).await.unwrap();

    browser.type_into("#stream-name", "Re").await;
    browser.type_into("#stream-count", "30").await;
    browser.type_into("#stream-interval", "100").await;
    browser.click("#stream-start").await;
    for name in ["Ann", "Ben"] {
        browser.type_into("#all-name", &enter(name)).await;
    }
    browser.expect_text("#all-sent", "Ann, Ben").await;
    browser.type_into("#chat-name", &enter("Xi")).await;
    browser
        .expect_texts("#chat-log li", &["Xi", "Hello, Xi"])
        .await;
    browser
        .wait_for_text("#stream-messages li:nth-child(3)", |t| t == "Hello #3, Re")
        .await;

    server.restart().await;

    let status = browser.wait_for_text("#stream-status", |t| t == "OK").await;
    assert_eq!(status, "OK");
    let greetings = browser.texts("#stream-messages li").await;
    assert_eq!(greetings.len(), 30, "{greetings:?}");
    let from_the_start = greetings.iter().filter(|g| *g == "Hello #1, Re").count();
    assert_eq!(from_the_start, 2, "one reopening: {greetings:?}");

    browser.expect_text("#all-status", "running…").await;
    browser.click("#all-finish").await;
    browser
        .expect_texts("#all-summary li", &["Hello, Ann", "Hello, Ben"])
        .await;
    browser.expect_text("#all-status", "OK").await;

    browser.expect_text("#chat-status", "running…").await;
    browser.type_into("#chat-name", &enter("Yu")).await;
    browser
        .expect_texts("#chat-log li", &["Xi", "Hello, Xi", "Yu", "Hello, Yu"])
        .await;
    browser.click("#chat-end").await;
    browser.expect_text("#chat-status", "OK").await;
    browser.screenshot("reopened-after-restart.png").await;
    browser.close().await;
}
