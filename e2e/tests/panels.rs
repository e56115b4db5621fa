//! Every panel of the served page, used in headless Chromium and Firefox: server streaming (with
//! Cancel and the deadline), client streaming, and the bidirectional conversation.

use std::time::Duration;

use fantoccini::key::Key;
use greeter_e2e::{in_every_browser, start_page_server, Browser, BrowserKind};
use hello_proto::{greeter_stats_client::GreeterStatsClient, StreamStats, StreamStatsRequest};

async fn stream_stats(url: &str) -> StreamStats {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    GreeterStatsClient::new(channel)
        .get_stream_stats(StreamStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn enter(text: &str) -> String {
    format!("{text}{}", char::from(Key::Enter))
}

in_every_browser!(every_rpc_kind_from_its_panel,);

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
    let expected = strings(&["Hello #1, E2E", "Hello #2, E2E", "Hello #3, E2E"]);
    assert_eq!(
        browser
            .wait_for_texts("#stream-messages li", &expected)
            .await,
        expected
    );
    assert_eq!(
        browser.wait_for_text("#stream-status", |t| t == "OK").await,
        "OK"
    );

    // Cancel stops the stream on the server too.
    browser.type_into("#stream-count", "1000").await;
    browser.type_into("#stream-interval", "100").await;
    browser.click("#stream-start").await;
    browser.find("#stream-messages li").await;
    browser.click("#stream-cancel").await;
    let cancelled = "CANCELLED: cancelled on the page";
    assert_eq!(
        browser
            .wait_for_text("#stream-status", |t| t == cancelled)
            .await,
        cancelled
    );
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
    assert_eq!(
        browser
            .wait_for_text("#all-sent", |t| t == "Ann, Ben, Cy")
            .await,
        "Ann, Ben, Cy"
    );
    browser.click("#all-finish").await;
    let expected = strings(&["Hello, Ann", "Hello, Ben", "Hello, Cy"]);
    assert_eq!(
        browser.wait_for_texts("#all-summary li", &expected).await,
        expected
    );
    assert_eq!(
        browser
            .wait_for_text("#all-count", |t| t == "3 greeted")
            .await,
        "3 greeted"
    );
    assert_eq!(
        browser.wait_for_text("#all-status", |t| t == "OK").await,
        "OK"
    );

    // Bidirectional: each greeting shows up while the conversation is still open.
    browser.type_into("#chat-name", &enter("Xi")).await;
    let expected = strings(&["Hello, Xi"]);
    assert_eq!(
        browser
            .wait_for_texts("#chat-log li.received", &expected)
            .await,
        expected
    );
    assert_eq!(browser.texts("#chat-status").await, ["running…"]);
    browser.type_into("#chat-name", &enter("Yu")).await;
    let expected = strings(&["Xi", "Hello, Xi", "Yu", "Hello, Yu"]);
    assert_eq!(
        browser.wait_for_texts("#chat-log li", &expected).await,
        expected
    );
    browser.click("#chat-end").await;
    assert_eq!(
        browser.wait_for_text("#chat-status", |t| t == "OK").await,
        "OK"
    );
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

async fn type_and_click(browser: &Browser, css: &str, text: &str, button: &str) {
    browser.type_into(css, text).await;
    browser.click(button).await;
}
