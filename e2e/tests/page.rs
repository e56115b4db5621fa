//! The built page, served by the Greeter server itself, used in headless Chromium and Firefox as a
//! person would.

use std::time::Duration;

use fantoccini::key::Key;
use greeter_e2e::{in_every_browser, start_page_server, Browser, BrowserKind};

in_every_browser!(
    the_served_page_greets_by_name,
    the_page_says_so_when_the_server_is_gone
);

async fn the_served_page_greets_by_name(kind: BrowserKind) {
    let server = start_page_server().await;
    let url = server.url.clone();
    let browser = Browser::start(kind).await;
    browser.client.goto(&url).await.unwrap();
    assert_eq!(browser.client.title().await.unwrap(), "Greeter");

    // Type a name and click.
    let name = browser.find("#name").await;
    name.send_keys("Chromium").await.unwrap();
    browser.find("#say-hello").await.click().await.unwrap();
    browser.expect_text("#reply", "Hello, Chromium").await;
    browser.screenshot("served-page.png").await;

    // Enter in the field submits too.
    browser.clear_field(&name).await;
    name.send_keys(&format!("Enter{}", char::from(Key::Enter)))
        .await
        .unwrap();
    browser.expect_text("#reply", "Hello, Enter").await;

    // A bad name shows the gRPC code and message.
    browser.clear_field(&name).await;
    browser.find("#say-hello").await.click().await.unwrap();
    let expected = "INVALID_ARGUMENT: name must not be empty";
    browser.expect_text("#reply", expected).await;
    browser.screenshot("served-page-error.png").await;

    browser.close().await;
    drop(server);
}

async fn the_page_says_so_when_the_server_is_gone(kind: BrowserKind) {
    let server = start_page_server().await;
    let url = server.url.clone();
    let browser = Browser::start(kind).await;
    browser.client.goto(&url).await.unwrap();
    browser.find("#name").await;

    // The page is loaded; now the server goes away.
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    browser
        .find("#name")
        .await
        .send_keys("Nobody")
        .await
        .unwrap();
    browser.find("#say-hello").await.click().await.unwrap();
    let text = browser.wait_for_text("#reply", |t| !t.is_empty()).await;
    assert!(
        text.starts_with(&format!(
            "cannot reach the server at {}",
            url.trim_end_matches('/')
        )),
        "{text}"
    );
    browser.close().await;
}
