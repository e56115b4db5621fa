//! What the end-to-end tests share: headless Chromium and Firefox driven through their WebDriver
//! servers (chromedriver, geckodriver), and child processes that are stopped, by process-group
//! id, when the test ends.
//!
//! The tests need a built page and the browser tools; `cargo xtask test` provides both and points
//! the tests at them with `GREETER_E2E_DIST`, `CHROMEDRIVER`, `GECKODRIVER`, `TRUNK` and
//! `GREETER_E2E_ARTIFACTS`. A test run without them fails with a message saying so.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

pub use test_support::{
    process::{free_port, ChildProcess},
    required_env,
};

use fantoccini::{elements::Element, key::Key, Client, ClientBuilder, Locator};

/// The release page the server serves (`dist/`, built by `trunk build --release`).
pub fn dist_dir() -> PathBuf {
    let dist = PathBuf::from(required_env("GREETER_E2E_DIST"));
    assert!(
        dist.join("index.html").is_file(),
        "no built page in {}",
        dist.display()
    );
    dist
}

/// A Greeter server running in this process; it stops when this is dropped.
pub struct RunningServer {
    /// The page's URL, with a trailing slash.
    pub url: String,
    config: greeter_server::Config,
    server: Option<test_support::InProcess>,
}

impl RunningServer {
    /// Stops the server as a deploy does (its streams end UNAVAILABLE, its sockets close going
    /// away), waits for the drain, and starts a new one on the same address.
    pub async fn restart(&mut self) {
        let old = self.server.take().expect("running");
        self.config.serve.addr = old.addr;
        let next = greeter_server::app::server(&self.config);
        old.stop().await;
        self.server = Some(test_support::InProcess::start(next).await);
    }
}

/// Starts a server with `config` (whose address may have port 0), with no shutdown delay.
pub async fn start_server(mut config: greeter_server::Config) -> RunningServer {
    config.serve.shutdown_delay = Duration::ZERO;
    let server = test_support::InProcess::start(greeter_server::app::server(&config)).await;
    RunningServer {
        url: format!("{}/", server.url()),
        config,
        server: Some(server),
    }
}

/// A server on an ephemeral port serving the release page.
pub async fn start_page_server() -> RunningServer {
    let mut config = greeter_server::Config::new("127.0.0.1:0".parse().unwrap());
    config.serve.static_dir = Some(dist_dir());
    start_server(config).await
}

/// Where screenshots are kept.
pub fn artifacts_dir() -> PathBuf {
    let dir = PathBuf::from(required_env("GREETER_E2E_ARTIFACTS"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A browser the page is tested in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserKind {
    Chromium,
    Firefox,
}

impl BrowserKind {
    pub fn name(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "chromium",
            BrowserKind::Firefox => "firefox",
        }
    }
}

/// One `#[tokio::test]` per browser for each test body given, an `async fn(BrowserKind)`: the
/// same test in Chromium (`chromium::name`) and in Firefox (`firefox::name`).
#[macro_export]
macro_rules! in_every_browser {
    ($($test:ident),* $(,)?) => {
        mod chromium {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::BrowserKind::Chromium).await
                }
            )*
        }
        mod firefox {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::BrowserKind::Firefox).await
                }
            )*
        }
    };
}

/// A directory removed when dropped: the browser's profile.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A headless browser, driven by a WebDriver server of its own.
pub struct Browser {
    pub client: Client,
    pub kind: BrowserKind,
    // Dropped in this order: the driver's process group (the browser with it), then the profile.
    _driver: ChildProcess,
    _profile: Profile,
}

impl Browser {
    pub async fn start(kind: BrowserKind) -> Self {
        let port = free_port().unwrap();
        let profile =
            Profile(std::env::temp_dir().join(format!("greeter-e2e-{}-{port}", kind.name())));
        let log = artifacts_dir().join(format!("{}driver-{port}.log", kind.name()));
        let (mut driver, capabilities) = match kind {
            BrowserKind::Chromium => {
                let driver = ChildProcess::spawn(
                    Command::new(required_env("CHROMEDRIVER"))
                        .arg(format!("--port={port}"))
                        .arg(format!("--log-path={}", log.display()))
                        .stdout(Stdio::null()),
                )
                .unwrap();
                let capabilities = serde_json::json!({
                    "goog:chromeOptions": {
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-dev-shm-usage",
                            "--window-size=900,700",
                            format!("--user-data-dir={}", profile.0.display()),
                        ]
                    }
                });
                (driver, capabilities)
            }
            BrowserKind::Firefox => {
                std::fs::create_dir_all(&profile.0).unwrap();
                let driver = ChildProcess::spawn(
                    Command::new(required_env("GECKODRIVER"))
                        .arg(format!("--port={port}"))
                        .stdout(std::fs::File::create(&log).unwrap())
                        .stderr(Stdio::null()),
                )
                .unwrap();
                let capabilities = serde_json::json!({
                    "browserName": "firefox",
                    "moz:firefoxOptions": {
                        "args": [
                            "-headless",
                            "--width=900",
                            "--height=700",
                            "-profile",
                            profile.0.display().to_string(),
                        ],
                        "prefs": {
                            "network.proxy.type": 0,
                            "app.update.enabled": false,
                            "browser.shell.checkDefaultBrowser": false,
                            "datareporting.policy.dataSubmissionEnabled": false,
                            "toolkit.telemetry.enabled": false
                        }
                    }
                });
                (driver, capabilities)
            }
        };
        driver.wait_for_port(port, Duration::from_secs(20)).unwrap();
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("{} should start a headless session: {e}", kind.name()));
        Self {
            client,
            kind,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Waits (up to 20 s) for an element matching `css`.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Empties a text field as a person does, with Backspace, so the page sees `input` events
    /// (WebDriver's own clear does not fire them).
    pub async fn clear_field(&self, field: &Element) {
        let length = field
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
            .chars()
            .count();
        let backspaces: String = std::iter::repeat_n(char::from(Key::End), 1)
            .chain(std::iter::repeat_n(char::from(Key::Backspace), length))
            .collect();
        field.send_keys(&backspaces).await.unwrap();
    }

    /// Waits (up to 20 s) until `done` accepts the element's text and returns it; after 20 s, the
    /// error is the text it last had.
    pub async fn poll_text(
        &self,
        css: &str,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.find(css).await.text().await.unwrap();
            if done(&text) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(text);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 20 s) until `done` accepts the element's text and returns it; fails the test,
    /// with the text it showed, if it never does.
    pub async fn wait_for_text(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        self.poll_text(css, done)
            .await
            .unwrap_or_else(|shown| panic!("{css} still shows {shown:?} after 20 s"))
    }

    /// Waits (up to 20 s) until the element matching `css` shows exactly `expected`; fails the
    /// test with what it showed instead.
    pub async fn expect_text(&self, css: &str, expected: &str) {
        let text = self.wait_for_text(css, |text| text == expected).await;
        assert_eq!(text, expected, "the text of {css}");
    }

    /// Waits (up to 20 s) until the elements matching `css` show exactly `expected`, in order;
    /// fails the test with what they showed instead.
    pub async fn expect_texts(&self, css: &str, expected: &[&str]) {
        let expected: Vec<String> = expected.iter().map(|text| text.to_string()).collect();
        let texts = self.wait_for_texts(css, &expected).await;
        assert_eq!(texts, expected, "the texts of {css}");
    }

    /// Replaces a field's text with `text`, as typed.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        self.clear_field(&field).await;
        field.send_keys(text).await.unwrap();
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// The texts of every element matching `css`, in document order.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            texts.push(element.text().await.unwrap());
        }
        texts
    }

    /// Waits (up to 20 s) until the texts of the elements matching `css` are `expected`.
    pub async fn wait_for_texts(&self, css: &str, expected: &[String]) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let texts = self.texts(css).await;
            if texts == expected || Instant::now() > deadline {
                return texts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG screenshot of the page in the artifacts directory, named for the browser.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let path = artifacts_dir().join(format!("{}-{name}", self.kind.name()));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}
