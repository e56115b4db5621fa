//! The page's gRPC client: the generated `GreeterClient`, over two channels.
//!
//! Unary and server-streaming calls go over gRPC-Web (`tonic_web_wasm_client::Client`, one `fetch`
//! per call). Client and bidirectional streaming need a request body that streams, which `fetch`
//! cannot do in browsers, so those go over `grpc_websocket::client::WebSocketChannel`. Both
//! channels carry the same generated stub, unchanged.
//!
//! Every call takes an optional deadline, sent as `grpc-timeout` and enforced by the server.
//!
//! Failures come back as [`CallError`]: a gRPC status from the server, shown by its canonical code
//! name (`INVALID_ARGUMENT: name must not be empty`), or a transport failure, shown as "cannot
//! reach the server" rather than the browser's bare `TypeError: Failed to fetch`.
//!
//! `SayHello` rides through a server restart: a call whose `fetch` failed without a response
//! (nothing listened, or the connection closed) is sent again with jittered backoff inside its
//! deadline, five attempts at most. The browser reports a refused connection and one that closed
//! after the request went out alike, so the page cannot tell whether a server acted on it; that
//! is why only `SayHello`, which changes nothing on the server, is retried. A gRPC status is the
//! server's answer and is never retried, and the streaming calls are reopened by their panels,
//! which show it.

use std::{fmt, time::Duration};

use futures_util::{Stream, StreamExt};
use grpc_call::{
    code_name,
    retry::{call_with_retries, RetryPolicy, RetryTimer},
    with_deadline,
};
use grpc_websocket::client::WebSocketChannel;
use hello_proto::{
    greeter_client::GreeterClient, greeter_stats_client::GreeterStatsClient, HelloRequest,
    HelloStreamRequest, HelloSummary, StreamStats, StreamStatsRequest,
};
use tonic::{Code, Status};
use tonic_web_wasm_client::Client;

/// The server the page talks to: `GREETER_SERVER_URL` when set at build time, else the page's
/// own origin (the server that served it, or `trunk serve`, which proxies to the server).
pub fn default_server_url() -> String {
    if let Some(url) = option_env!("GREETER_SERVER_URL") {
        return url.to_owned();
    }
    web_sys::window()
        .and_then(|window| window.location().origin().ok())
        .unwrap_or_default()
}

/// A stream of greetings, ending with the call's status.
pub type Greetings = std::pin::Pin<Box<dyn Stream<Item = Result<String, CallError>>>>;

/// A handle on the Greeter service; cheap to clone.
#[derive(Debug, Clone)]
pub struct GreeterApi {
    server_url: String,
    /// gRPC-Web over fetch: unary and server streaming.
    fetch: GreeterClient<Client>,
    /// gRPC over a WebSocket per call: client and bidirectional streaming.
    socket: GreeterClient<WebSocketChannel>,
    stats: GreeterStatsClient<Client>,
}

impl GreeterApi {
    pub fn new(server_url: impl Into<String>) -> Self {
        let server_url = server_url.into();
        Self {
            fetch: GreeterClient::new(Client::new(server_url.clone())),
            // Under the one route prefix for every method, and with no subprotocol offer, so the
            // sockets also pass through `trunk serve`'s proxy (one route in Trunk.toml).
            socket: GreeterClient::new(
                WebSocketChannel::new(format!(
                    "{}{}",
                    server_url.trim_end_matches('/'),
                    grpc_websocket::ROUTE_PREFIX
                ))
                .without_subprotocol(),
            ),
            stats: GreeterStatsClient::new(Client::new(server_url.clone())),
            server_url,
        }
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    fn error(&self, status: Status) -> CallError {
        CallError::from_status(status, &self.server_url)
    }

    /// Calls `SayHello` and returns the greeting; a call that got no response at all is sent
    /// again while the deadline leaves time (see the module's documentation).
    pub async fn say_hello(
        &self,
        name: String,
        deadline: Option<Duration>,
    ) -> Result<String, CallError> {
        let unreachable = |error: &CallError| matches!(error, CallError::Unreachable { .. });
        call_with_retries(
            &RetryPolicy::default(),
            &BrowserTimer,
            deadline,
            unreachable,
            |time_left| {
                let request = with_deadline(HelloRequest { name: name.clone() }, time_left);
                let mut client = self.fetch.clone();
                async move {
                    client
                        .say_hello(request)
                        .await
                        .map(|reply| reply.into_inner().message)
                        .map_err(|status| self.error(status))
                }
            },
        )
        .await
    }

    /// Calls `SayHelloStream`: `count` greetings, one every `interval_ms`, as they arrive. Dropping
    /// the stream cancels the call.
    pub async fn say_hello_stream(
        &self,
        request: HelloStreamRequest,
        deadline: Option<Duration>,
    ) -> Result<Greetings, CallError> {
        let replies = self
            .fetch
            .clone()
            .say_hello_stream(with_deadline(request, deadline))
            .await
            .map_err(|status| self.error(status))?
            .into_inner();
        Ok(self.greetings(replies))
    }

    /// Calls `SayHelloToAll` with the names `names` yields, sent as they come; the summary arrives
    /// once `names` ends.
    pub async fn say_hello_to_all(
        &self,
        names: impl Stream<Item = String> + Send + 'static,
        deadline: Option<Duration>,
    ) -> Result<HelloSummary, CallError> {
        let requests = names.map(|name| HelloRequest { name });
        self.socket
            .clone()
            .say_hello_to_all(with_deadline(requests, deadline))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error(status))
    }

    /// Calls `Chat`: each name `names` yields is sent at once, and its greeting comes back on the
    /// returned stream as soon as the server answers. Dropping the stream cancels the call.
    pub async fn chat(
        &self,
        names: impl Stream<Item = String> + Send + 'static,
        deadline: Option<Duration>,
    ) -> Result<Greetings, CallError> {
        let requests = names.map(|name| HelloRequest { name });
        let replies = self
            .socket
            .clone()
            .chat(with_deadline(requests, deadline))
            .await
            .map_err(|status| self.error(status))?
            .into_inner();
        Ok(self.greetings(replies))
    }

    /// The server's counts of streaming calls (started, completed, failed, cancelled, active).
    pub async fn stream_stats(&self) -> Result<StreamStats, CallError> {
        self.stats
            .clone()
            .get_stream_stats(StreamStatsRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error(status))
    }

    fn greetings(&self, replies: tonic::Streaming<hello_proto::HelloReply>) -> Greetings {
        let server_url = self.server_url.clone();
        Box::pin(replies.map(move |reply| {
            reply
                .map(|reply| reply.message)
                .map_err(|status| CallError::from_status(status, &server_url))
        }))
    }
}

/// Completes after `duration` (the browser's `setTimeout`).
pub async fn pause(duration: Duration) {
    BrowserTimer.sleep(duration).await
}

/// The browser's clock (`Date.now()`), timer (`setTimeout`) and randomness (`Math.random()`),
/// for the retry loop.
struct BrowserTimer;

impl RetryTimer for BrowserTimer {
    fn now(&self) -> Duration {
        Duration::from_secs_f64(js_sys::Date::now() / 1000.0)
    }

    fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> {
        let (wake, woken) = futures_channel::oneshot::channel();
        leptos::prelude::set_timeout(
            move || {
                let _ = wake.send(());
            },
            duration,
        );
        async move {
            let _ = woken.await;
        }
    }

    fn random_fraction(&self) -> f64 {
        js_sys::Math::random()
    }
}

/// Why a call failed, in terms a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The server answered with a gRPC error status.
    Status { code: Code, message: String },
    /// No answer: the server is down, unreachable, or refused the request before gRPC began
    /// (CORS, for example).
    Unreachable { server_url: String, detail: String },
}

impl CallError {
    /// The error of a call the user cancelled on the page.
    pub fn cancelled() -> Self {
        Self::Status {
            code: Code::Cancelled,
            message: "cancelled on the page".into(),
        }
    }

    /// Classifies a status from the generated client. Transport failures reach it as `UNKNOWN`
    /// with the channel's own error as the source; everything else came from the server.
    pub fn from_status(status: Status, server_url: &str) -> Self {
        let transport = std::error::Error::source(&status)
            .and_then(|source| source.downcast_ref::<tonic_web_wasm_client::Error>());
        match transport {
            Some(tonic_web_wasm_client::Error::JsError(detail)) => Self::Unreachable {
                server_url: server_url.to_owned(),
                detail: detail.clone(),
            },
            _ => Self::Status {
                code: status.code(),
                message: status.message().to_owned(),
            },
        }
    }

    /// The gRPC code of the failure; `UNAVAILABLE` when the server could not be reached.
    pub fn code(&self) -> Code {
        match self {
            Self::Status { code, .. } => *code,
            Self::Unreachable { .. } => Code::Unavailable,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { code, message } if message.is_empty() => f.write_str(code_name(*code)),
            Self::Status { code, message } => write!(f, "{}: {message}", code_name(*code)),
            Self::Unreachable { server_url, detail } => {
                write!(f, "cannot reach the server at {server_url} ({detail})")
            }
        }
    }
}

impl std::error::Error for CallError {}

// Run where the crate runs, by the wasm test step (in the browser, as the page's other tests):
// built for the host, the crate would compile Leptos a second time for these two tests.
#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    #[wasm_bindgen_test]
    fn a_status_reads_as_code_name_and_message() {
        let error = CallError::from_status(
            Status::invalid_argument("name must not be empty"),
            "http://127.0.0.1:50051",
        );
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.to_string(),
            "INVALID_ARGUMENT: name must not be empty"
        );
        let error = CallError::from_status(Status::unimplemented(""), "");
        assert_eq!(error.to_string(), "UNIMPLEMENTED");
    }

    #[wasm_bindgen_test]
    fn a_fetch_failure_reads_as_unreachable() {
        let status = Status::from_error(Box::new(tonic_web_wasm_client::Error::JsError(
            "TypeError: Failed to fetch".into(),
        )));
        let error = CallError::from_status(status, "http://127.0.0.1:1");
        assert_eq!(error.code(), Code::Unavailable);
        assert_eq!(
            error.to_string(),
            "cannot reach the server at http://127.0.0.1:1 (TypeError: Failed to fetch)"
        );
    }
}
