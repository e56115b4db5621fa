//! The built page, served by the Greeter server itself, used in headless Chromium as a person would.

use std::time::Duration;

use fantoccini::key::Key;
use greeter_e2e::{dist_dir, Browser};
use greeter_server::{bind, serve, Config};

/// Starts the server on an ephemeral port with the release page; returns its URL.
async fn start_server() -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    config.static_dir = dist_dir();
    let listener = bind(&config).await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, &config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (url, stop)
}

#[tokio::test]
async fn the_served_page_greets_by_name() {
    let (url, stop) = start_server().await;
    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    assert_eq!(browser.client.title().await.unwrap(), "Greeter");

    // Type a name and click.
    let name = browser.find("#name").await;
    name.send_keys("Chromium").await.unwrap();
    browser.find("#say-hello").await.click().await.unwrap();
    assert_eq!(
        browser
            .wait_for_text("#reply", |t| t == "Hello, Chromium")
            .await,
        "Hello, Chromium"
    );
    browser.screenshot("served-page.png").await;

    // Enter in the field submits too.
    browser.clear_field(&name).await;
    name.send_keys(&format!("Enter{}", char::from(Key::Enter)))
        .await
        .unwrap();
    assert_eq!(
        browser
            .wait_for_text("#reply", |t| t == "Hello, Enter")
            .await,
        "Hello, Enter"
    );

    // A bad name shows the gRPC code and message.
    browser.clear_field(&name).await;
    browser.find("#say-hello").await.click().await.unwrap();
    let expected = "INVALID_ARGUMENT: name must not be empty";
    assert_eq!(
        browser.wait_for_text("#reply", |t| t == expected).await,
        expected
    );
    browser.screenshot("served-page-error.png").await;

    browser.close().await;
    let _ = stop.send(());
}

#[tokio::test]
async fn the_page_says_so_when_the_server_is_gone() {
    let (url, stop) = start_server().await;
    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    browser.find("#name").await;

    // The page is loaded; now the server goes away.
    stop.send(()).unwrap();
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
