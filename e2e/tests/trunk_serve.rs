//! `trunk serve` during development: the page on trunk's own port, its gRPC-Web calls and its
//! WebSockets proxied by Trunk.toml's `[[proxy]]` entries to the server on the default address,
//! 127.0.0.1:50051.

use std::{path::Path, process::Command, time::Duration};

use greeter_e2e::{free_port, required_env, start_server, Browser, BrowserKind, ChildProcess};
use greeter_server::Config;

#[tokio::test]
async fn trunk_serve_proxies_calls_to_the_server() {
    // The server where Trunk.toml's proxy expects it.
    // In development mode, as with `trunk serve`: the page's origin is trunk's, and a WebSocket
    // from another origin is refused unless it is allowed.
    let mut config = Config::new(grpc_serve::options::DEFAULT_ADDR.parse().unwrap());
    config.serve.dev = true;
    let server = start_server(config).await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let port = free_port().unwrap();
    let dist = root.join("target/e2e-trunk-serve");
    let mut trunk = ChildProcess::spawn(
        Command::new(required_env("TRUNK"))
            .current_dir(root)
            .args(["serve", "--offline", "--no-autoreload", "--port"])
            .arg(port.to_string())
            .arg("--dist")
            .arg(&dist),
    )
    .unwrap();
    // The first debug build of the page can take minutes on a small machine.
    trunk.wait_for_port(port, Duration::from_secs(600)).unwrap();

    // The proxy is what is under test here, the same for every browser: Chromium alone.
    let browser = Browser::start(BrowserKind::Chromium).await;
    browser
        .client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    browser
        .find("#name")
        .await
        .send_keys("Trunk")
        .await
        .unwrap();
    browser.find("#say-hello").await.click().await.unwrap();
    browser.expect_text("#reply", "Hello, Trunk").await;

    // Server streaming (gRPC-Web) and bidirectional streaming (WebSocket) through the proxy too.
    browser.type_into("#stream-name", "Proxy").await;
    browser.type_into("#stream-count", "2").await;
    browser.type_into("#stream-interval", "10").await;
    browser.click("#stream-start").await;
    browser
        .expect_texts(
            "#stream-messages li",
            &["Hello #1, Proxy", "Hello #2, Proxy"],
        )
        .await;
    browser
        .type_into(
            "#chat-name",
            &format!("Socket{}", char::from(fantoccini::key::Key::Enter)),
        )
        .await;
    browser
        .expect_texts("#chat-log li.received", &["Hello, Socket"])
        .await;
    browser.click("#chat-end").await;
    browser.expect_text("#chat-status", "OK").await;
    browser.screenshot("trunk-serve.png").await;
    browser.close().await;

    drop(trunk);
    drop(server);
}
