//! The kinds of load the cluster tests keep on the balancer's front port while replicas restart,
//! each counting what it saw: unary calls from our CLI's client (with its retries) and from
//! tonic-web's client, server streams and WebSocket conversations that reopen when a drain ends
//! them, connect-es as a third-party client, and the real page in headless Chromium.

use std::{
    net::SocketAddr,
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use grpc_call::status_code;
use grpc_websocket::protocol::{self, ServerFrame};
use hello_proto::{greeter_client::GreeterClient, HelloReply, HelloRequest, HelloStreamRequest};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::Message;
use test_support::{process::ChildProcess, websocket::WsCall};
use tonic::Code;
use tonic_web::GrpcWebClientLayer;

/// Calls that must succeed: how many did, and the first failures.
#[derive(Default)]
pub struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    pub fn record(&self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut failures = self.failures.lock().unwrap();
                if failures.len() < 10 {
                    failures.push(error);
                }
            }
        }
    }

    /// (succeeded, failed).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Fails the test if a call failed, or if fewer than `at_least` were made.
    pub fn assert_no_failure(&self, kind: &str, at_least: u64) {
        let (ok, failed) = self.counts();
        let failures = self.failures.lock().unwrap();
        assert_eq!(
            failed,
            0,
            "{kind}: {failed} of {} failed: {failures:#?}",
            ok + failed
        );
        assert!(ok >= at_least, "{kind}: only {ok} calls");
    }
}

/// Streams: each either completes, or ends UNAVAILABLE (a drain) and is reopened; anything else
/// is a failed call.
#[derive(Default)]
pub struct StreamTally {
    pub completed: AtomicU64,
    pub reopened: AtomicU64,
    pub calls: Tally,
}

impl StreamTally {
    pub fn assert_every_stream_completed_or_reopened(&self, kind: &str) {
        let (_, failed) = self.calls.counts();
        let failures = self.calls.failures.lock().unwrap();
        assert_eq!(failed, 0, "{kind}: {failures:#?}");
        assert!(
            self.completed.load(Ordering::Relaxed) > 0,
            "{kind}: none completed"
        );
        // Six drains, several streams open at each: some must have been cut and reopened, or the
        // test did not exercise that path.
        assert!(
            self.reopened.load(Ordering::Relaxed) > 0,
            "{kind}: none was ended by a drain"
        );
    }

    pub fn summary(&self) -> String {
        format!(
            "completed {}, ended by a drain and reopened {}",
            self.completed.load(Ordering::Relaxed),
            self.reopened.load(Ordering::Relaxed)
        )
    }
}

/// Runs until told to stop.
pub type Stop = Arc<AtomicBool>;

fn running(stop: &Stop) -> bool {
    !stop.load(Ordering::Relaxed)
}

/// Each unary loop calls at most this often, so that the load leaves the two cores room for the
/// replicas that restart (a starting replica compresses the page), as a real fleet has.
const UNARY_INTERVAL: Duration = Duration::from_millis(10);

/// Ticks every [`UNARY_INTERVAL`]; a late tick delays the next rather than bursting.
fn pace() -> tokio::time::Interval {
    let mut interval = tokio::time::interval(UNARY_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

fn check_greeting(message: &str, name: &str) -> Result<(), String> {
    let expected = format!("Hello, {name}");
    if message == expected {
        Ok(())
    } else {
        Err(format!("{message:?} instead of {expected:?}"))
    }
}

/// Unary calls, one every [`UNARY_INTERVAL`] at most, each through `say_hello` (a name in, the
/// greeting or the failure out) and its greeting checked, until `stop`.
async fn unary<F>(
    label: &str,
    stop: Stop,
    tally: Arc<Tally>,
    mut say_hello: impl FnMut(String) -> F,
) where
    F: std::future::Future<Output = Result<String, String>>,
{
    let mut pace = pace();
    for i in 1.. {
        pace.tick().await;
        if !running(&stop) {
            break;
        }
        let name = format!("{label} {i}");
        let result = say_hello(name.clone())
            .await
            .map_err(|error| format!("{label}: {error}"))
            .and_then(|message| check_greeting(&message, &name));
        tally.record(result);
    }
}

/// Native gRPC unary calls through the CLI's client, which sends a call again when no server
/// can have acted on it.
pub async fn unary_native(url: String, stop: Stop, tally: Arc<Tally>) {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect_lazy();
    let client = GreeterClient::new(channel);
    unary("native", stop, tally, |name| {
        let client = client.clone();
        async move {
            greeter_cli::say_hello(&client, &name, Some(Duration::from_secs(10)), false)
                .await
                .map_err(|status| format!("{status:?}"))
        }
    })
    .await;
}

/// gRPC-Web unary calls over HTTP/1.1 through tonic-web's client (no retries).
pub async fn unary_grpc_web(url: String, stop: Stop, tally: Arc<Tally>) {
    let http = Client::builder(TokioExecutor::new()).build_http();
    let service = tower::ServiceBuilder::new()
        .layer(GrpcWebClientLayer::new())
        .service(http);
    let client = GreeterClient::with_origin(service, url.parse().unwrap());
    unary("gRPC-Web", stop, tally, |name| {
        let mut client = client.clone();
        async move {
            client
                .say_hello(HelloRequest { name })
                .await
                .map(|reply| reply.into_inner().message)
                .map_err(|status| format!("{status:?}"))
        }
    })
    .await;
}

/// Server streams of 40 greetings 100 ms apart (longer than a replica's shutdown delay, so a
/// drain cuts some), one after another; a stream that ends with UNAVAILABLE is reopened.
pub async fn server_streams(url: String, stop: Stop, tally: Arc<StreamTally>) {
    let mut client = GreeterClient::new(test_support::channel(&url).await);
    while running(&stop) {
        let request = HelloStreamRequest {
            name: "stream".into(),
            count: 40,
            interval_ms: 100,
        };
        let mut received = 0;
        let ended = match client.say_hello_stream(request).await {
            Ok(response) => {
                let mut replies = response.into_inner();
                loop {
                    match replies.message().await {
                        Ok(Some(_)) => received += 1,
                        Ok(None) => break Ok(()),
                        Err(status) => break Err(status),
                    }
                }
            }
            Err(status) => Err(status),
        };
        match ended {
            Ok(()) if received == 40 => {
                tally.completed.fetch_add(1, Ordering::Relaxed);
                tally.calls.record(Ok(()));
            }
            Ok(()) => tally
                .calls
                .record(Err(format!("a stream ended OK after {received} of 40"))),
            Err(status) if status.code() == Code::Unavailable && received > 0 => {
                tally.reopened.fetch_add(1, Ordering::Relaxed);
            }
            Err(status) => tally
                .calls
                .record(Err(format!("stream after {received}: {status:?}"))),
        }
    }
}

/// How a WebSocket conversation ended.
enum ChatEnd {
    Completed,
    /// A drain ended it: trailers with UNAVAILABLE and a going-away close (1001).
    GoingAway,
}

/// `Chat` conversations over WebSockets (grpc-websockets), one after another: 60 names, 100 ms
/// apart (longer than a replica's shutdown delay, so a drain cuts some), each greeting read
/// before the next name goes out; a conversation a drain ends is reopened.
pub async fn chats(front: SocketAddr, stop: Stop, tally: Arc<StreamTally>) {
    while running(&stop) {
        // Its own task, so that the test client's panics (a refused socket) count as failures.
        match tokio::spawn(chat(front)).await {
            Ok(Ok(ChatEnd::Completed)) => {
                tally.completed.fetch_add(1, Ordering::Relaxed);
                tally.calls.record(Ok(()));
            }
            Ok(Ok(ChatEnd::GoingAway)) => {
                tally.reopened.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(error)) => tally.calls.record(Err(error)),
            Err(panic) => tally.calls.record(Err(format!("chat: {panic}"))),
        }
    }
}

async fn chat(front: SocketAddr) -> Result<ChatEnd, String> {
    let mut call = WsCall::open(front, "/hello.Greeter/Chat").await;
    for i in 1..=60 {
        let name = format!("chat {i}");
        call.send(&HelloRequest { name: name.clone() }).await;
        let reply = loop {
            match call.next_frame().await {
                Some(ServerFrame::Data(frame)) => {
                    break HelloReply::decode(&frame[protocol::FRAME_PREFIX..])
                        .map_err(|e| format!("chat: {e}"))?
                }
                // The response's headers come before the first greeting.
                Some(ServerFrame::Headers(headers)) if status_code(&headers).is_none() => {}
                Some(ServerFrame::Headers(trailers)) => {
                    return ended_early(&mut call, &trailers).await
                }
                None => {
                    return Err(format!(
                        "chat: closed without trailers ({:?})",
                        call.close_code()
                    ))
                }
            }
        };
        check_greeting(&reply.message, &name)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    call.end().await;
    match call.next_frame().await {
        Some(ServerFrame::Headers(trailers)) if status_code(&trailers) == Some(Code::Ok) => {
            Ok(ChatEnd::Completed)
        }
        Some(ServerFrame::Headers(trailers)) => ended_early(&mut call, &trailers).await,
        other => Err(format!("chat: expected the trailers, got {other:?}")),
    }
}

/// A conversation whose trailers came before its end: a drain's (UNAVAILABLE, then a going-away
/// close), or a failure.
async fn ended_early(call: &mut WsCall, trailers: &http::HeaderMap) -> Result<ChatEnd, String> {
    let code = status_code(trailers);
    let after = call.next_frame().await;
    match (code, after, call.close_code()) {
        (Some(Code::Unavailable), None, Some(1001)) => Ok(ChatEnd::GoingAway),
        (code, after, close) => Err(format!(
            "chat ended with {code:?} {trailers:?}, then {after:?}, close code {close:?}"
        )),
    }
}

/// connect-es (interop/connect-es-load.mjs) as steady load until it is stopped: unary calls over
/// gRPC-Web on HTTP/1.1 and over gRPC on HTTP/2, from a third party, without retries.
pub struct ConnectEs {
    process: ChildProcess,
    report: std::path::PathBuf,
}

impl ConnectEs {
    pub fn start(url: &str, dir: &Path) -> Self {
        let report = dir.join("connect-es-load.json");
        let _ = std::fs::remove_file(&report);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/connect-es-load.mjs");
        let process = ChildProcess::spawn(
            Command::new(test_support::required_env("NODE"))
                .arg(script)
                .env("GREETER_SERVER", url)
                .env("LOAD_REPORT", &report),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Self { process, report }
    }

    /// Stops the load and returns what it saw.
    pub fn stop(mut self) -> Tally {
        self.process.signal(libc::SIGTERM).unwrap();
        let status = self.process.exit_status(Duration::from_secs(20)).unwrap();
        assert!(status.success(), "connect-es load exited with {status}");
        let text = std::fs::read_to_string(&self.report)
            .unwrap_or_else(|e| panic!("{}: {e}", self.report.display()));
        let seen: serde_json::Value = serde_json::from_str(&text).unwrap();
        let tally = Tally::default();
        tally
            .ok
            .store(seen["ok"].as_u64().unwrap(), Ordering::Relaxed);
        tally
            .failed
            .store(seen["failed"].as_u64().unwrap(), Ordering::Relaxed);
        *tally.failures.lock().unwrap() = seen["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|failure| failure.as_str().unwrap_or_default().to_owned())
            .collect();
        tally
    }
}

/// What the page saw.
#[derive(Default)]
pub struct PageTally {
    /// "Say hello" clicks: each must show its greeting.
    pub clicks: Tally,
    /// Greetings of the server-streaming panel's one long stream, and how often it restarted at
    /// greeting #1 (each reopening does).
    pub stream_greetings: usize,
    pub stream_reopenings: usize,
}

/// The greetings the page's long stream asks for, 100 ms apart: longer than the load lasts, so
/// every replica it lands on is restarted under it.
pub const PAGE_STREAM: usize = 400;

/// The real page, served through the balancer, in headless Chromium: a server stream in its
/// panel for the whole roll, and "Say hello" clicked with a new name again and again until
/// `stop`, each click waiting for its greeting. Then it waits for the stream to end.
pub async fn page(url: String, stop: Stop) -> PageTally {
    let browser = greeter_e2e::Browser::start(greeter_e2e::BrowserKind::Chromium).await;
    browser.client.goto(&format!("{url}/")).await.unwrap();
    browser.type_into("#stream-name", "Page").await;
    browser
        .type_into("#stream-count", &PAGE_STREAM.to_string())
        .await;
    browser.type_into("#stream-interval", "100").await;
    browser.click("#stream-start").await;

    let tally = PageTally::default();
    for i in 1.. {
        if !running(&stop) {
            break;
        }
        let name = format!("Click {i}");
        browser.type_into("#name", &name).await;
        browser.click("#say-hello").await;
        let expected = format!("Hello, {name}");
        // What it shows, greeting or not, is judged and counted: the load goes on.
        let shown = browser
            .poll_text("#reply", |text| text == expected)
            .await
            .unwrap_or_else(|shown| shown);
        tally.clicks.record(check_greeting(&shown, &name));
    }

    let started = Instant::now();
    let status = loop {
        let status = browser.find("#stream-status").await.text().await.unwrap();
        if !status.starts_with("running") && !status.starts_with("reconnecting")
            || started.elapsed() > Duration::from_secs(60)
        {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let greetings = browser.texts("#stream-messages li").await;
    browser.screenshot("cluster-roll.png").await;
    browser.close().await;
    assert_eq!(status, "OK", "the page's stream ended so");
    PageTally {
        stream_greetings: greetings.len(),
        stream_reopenings: greetings
            .iter()
            .filter(|greeting| *greeting == "Hello #1, Page")
            .count()
            - 1,
        ..tally
    }
}
