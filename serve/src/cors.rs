//! Cross-origin policy for browser clients whose page is served from another origin.
//!
//! The page the server serves itself is same-origin and needs none of this. A page elsewhere (a
//! deployment on another host, `trunk serve` without its proxy, the wasm-bindgen-test runner) must
//! be allowed by name, or by `--dev` for loopback origins. Allowed origins may send the headers
//! gRPC-Web clients use and read the `grpc-*` response headers; without those exposed, a browser
//! client sees every error as a malformed response. A preflight from any other origin is refused
//! with 403 rather than answered without CORS headers, so the refusal is visible in the network log;
//! a call from such an origin that arrives without a preflight is refused the same way, unrun.
//!
//! Browsers send no preflight before a WebSocket, and the same-origin policy does not cover it, so
//! a `grpc-websockets` upgrade from a page of another origin is checked here too: same origin or
//! an allowed one, else 403. "Same origin" means the same scheme, host and port as the request.
//!
//! Before any of that, the request's host must be one the server answers for (see
//! [`crate::host`]); any other gets 421 on every protocol, so a page on a rebinding domain can
//! reach nothing, the WebSocket upgrade and `/metrics` included.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::Request;
use http::{header, HeaderName, HeaderValue, Method, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer, ResponseFuture as CorsResponse};

use crate::{
    host::{self, AllowedHosts},
    log_summary::{printable, LogSummary},
    web_assets, Options,
};

/// Response headers a gRPC-Web client must be able to read.
const EXPOSED_HEADERS: [&str; 5] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "grpc-accept-encoding",
];

/// Which hosts the server answers for, and which origins may call the API cross-origin.
#[derive(Debug, Clone)]
pub(crate) struct OriginPolicy {
    allowed: Vec<HeaderValue>,
    loopback: bool,
    hosts: AllowedHosts,
    /// The scheme the server is reached by, for same-origin checks.
    scheme: &'static str,
}

impl OriginPolicy {
    pub(crate) fn from_options(options: &Options) -> Self {
        Self {
            allowed: options.allow_origins.clone(),
            loopback: options.dev,
            hosts: AllowedHosts::for_address(options.addr, &options.allowed_hosts),
            scheme: if options.tls_cert.is_some() {
                "https"
            } else {
                "http"
            },
        }
    }

    /// The host names answered, for the start-up log.
    pub(crate) fn hosts(&self) -> &AllowedHosts {
        &self.hosts
    }

    /// Whether a request with this `Origin` header may read the API's responses.
    pub(crate) fn allows(&self, origin: &HeaderValue) -> bool {
        self.allowed.iter().any(|allowed| allowed == origin)
            || (self.loopback && origin.to_str().is_ok_and(is_loopback_origin))
    }

    /// The CORS layer that answers allowed preflights and decorates allowed responses.
    pub(crate) fn layer(&self) -> CorsLayer {
        let policy = Arc::new(self.clone());
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                policy.allows(origin)
            }))
            .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
            // gRPC-Web clients send content-type, x-grpc-web, x-user-agent, grpc-timeout and any
            // custom metadata; echoing the requested names admits all of them for allowed origins.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(24 * 60 * 60))
    }
}

/// `http://localhost:PORT`, `http://127.0.0.1:PORT` or `http://[::1]:PORT` (port optional).
fn is_loopback_origin(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// Applies an [`OriginPolicy`]: see [`OriginGuard`].
#[derive(Debug, Clone)]
pub(crate) struct OriginGuardLayer {
    policy: Arc<OriginPolicy>,
}

impl OriginGuardLayer {
    pub(crate) fn new(policy: OriginPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for OriginGuardLayer {
    type Service = OriginGuard<S>;

    fn layer(&self, inner: S) -> OriginGuard<S> {
        OriginGuard {
            inner,
            cors: Arc::new(self.policy.layer()),
            policy: Arc::clone(&self.policy),
            misdirected: Arc::new(LogSummary::new(std::time::Duration::from_secs(10))),
        }
    }
}

/// Refuses, with 403, a CORS preflight from an origin the policy does not allow, and a call (a
/// POST) or a WebSocket upgrade from an origin that is neither the server's own nor allowed;
/// passes other requests through the CORS layer. A browser preflights every gRPC-Web call, but a
/// call that skipped it (a plugin, an old browser) must not run for a page the policy refused.
///
/// A POST without an `Origin` header (native gRPC, gRPC-Web from a tool, any non-browser client),
/// or from the server's own origin (the page it serves), skips the CORS layer: it needs no CORS
/// headers, and would only get `Vary` headers on a response no cache stores, which every call
/// would pay for, the browser client included, since it reads every response header.
///
/// The service is cloned for every request, so what it holds is shared.
#[derive(Debug, Clone)]
pub(crate) struct OriginGuard<S> {
    inner: S,
    cors: Arc<CorsLayer>,
    policy: Arc<OriginPolicy>,
    /// Refusals for foreign host names, logged as a summary: a client must not flood the log.
    misdirected: Arc<LogSummary>,
}

impl<S, B> Service<Request> for OriginGuard<S>
where
    S: Service<Request, Response = Response<B>> + Clone,
    B: Default + From<String>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = GuardedResponse<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if host::authority_conflict(&request) {
            tracing::debug!("refused a request whose Host and authority disagree");
            return GuardedResponse::Refused {
                response: Some(refusal(
                    StatusCode::BAD_REQUEST,
                    "the Host header and the request's authority disagree\n".to_owned(),
                )),
            };
        }
        if !self.policy.hosts.allows_request(&request) {
            let host = printable(
                host::request_authority(&request).unwrap_or_default(),
                host::MAX_PRINTED_HOST,
            );
            if let Some(refused) = self.misdirected.event() {
                tracing::warn!(
                    refused,
                    last_host = %host,
                    "requests refused for host names this server does not answer for, since the \
                     last report (--allowed-host admits a name)"
                );
            }
            let reason = format!(
                "this server does not answer for the host name `{host}`; \
                 start it with --allowed-host to admit that name"
            );
            let mut response = refusal(StatusCode::MISDIRECTED_REQUEST, format!("{reason}\n"));
            if web_assets::is_grpc(&request) {
                // gRPC clients show a status, not an HTTP reason.
                let status = tonic::Status::permission_denied(reason);
                let _ = status.add_header(response.headers_mut());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
            }
            return GuardedResponse::Refused {
                response: Some(response),
            };
        }
        let headers = request.headers();
        let origin = headers.get(header::ORIGIN);
        let same_origin = origin.is_none_or(|origin| {
            host::request_authority(&request)
                .is_some_and(|authority| is_same_origin(origin, self.policy.scheme, authority))
        });
        if same_origin && request.method() == Method::POST {
            return GuardedResponse::Plain {
                call: self.inner.call(request),
            };
        }
        if let Some(origin) = origin {
            let is_preflight = request.method() == Method::OPTIONS
                && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            // Whatever the method: a GET over HTTP/2 reaches a gRPC service as well as a POST.
            let refused = if is_preflight {
                !self.policy.allows(origin)
            } else {
                !same_origin && !self.policy.allows(origin)
            };
            if refused {
                tracing::debug!(?origin, method = %request.method(), "refused a cross-origin request");
                return GuardedResponse::Refused {
                    response: Some(refusal(
                        StatusCode::FORBIDDEN,
                        "origin not allowed\n".to_owned(),
                    )),
                };
            }
        }
        // The clone that was made ready serves this request; keep a fresh one.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        GuardedResponse::Cors {
            call: self.cors.layer(ready).call(request),
        }
    }
}

fn refusal<B: From<String>>(status: StatusCode, reason: String) -> Response<B> {
    let mut response = Response::new(B::from(reason));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pin_project! {
    /// The response of [`OriginGuard`].
    #[project = GuardedProjection]
    pub(crate) enum GuardedResponse<F, B> {
        Plain { #[pin] call: F },
        Cors { #[pin] call: CorsResponse<F> },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for GuardedResponse<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardedProjection::Plain { call } => call.poll(cx),
            GuardedProjection::Cors { call } => call.poll(cx),
            GuardedProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}

/// Whether `origin` is the origin the request was sent to: the server's `scheme`, the request's
/// host, and the same port (a missing port being the scheme's default).
fn is_same_origin(origin: &HeaderValue, scheme: &str, authority: &str) -> bool {
    let Some(origin_authority) = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.strip_prefix(scheme))
        .and_then(|rest| rest.strip_prefix("://"))
    else {
        return false;
    };
    let default_port = if scheme == "https" { "443" } else { "80" };
    let host_and_port = |authority: &str| {
        let host = host::strip_port(authority);
        let port = authority[host.len()..]
            .strip_prefix(':')
            .unwrap_or(default_port);
        (host.to_ascii_lowercase(), port.to_owned())
    };
    host_and_port(origin_authority) == host_and_port(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&'static str], loopback: bool) -> OriginPolicy {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| HeaderValue::from_static(o))
                .collect(),
            loopback,
            hosts: AllowedHosts::Any,
            scheme: "http",
        }
    }

    #[test]
    fn same_origin_means_same_scheme_host_and_port() {
        let same = |origin: &'static str, scheme: &str, authority: &str| {
            is_same_origin(&HeaderValue::from_static(origin), scheme, authority)
        };
        assert!(same("http://127.0.0.1:8080", "http", "127.0.0.1:8080"));
        assert!(same("http://LocalHost:8080", "http", "localhost:8080"));
        assert!(same("http://example.com", "http", "example.com:80"));
        assert!(same("https://example.com:443", "https", "example.com"));
        assert!(same("http://[::1]:8080", "http", "[::1]:8080"));
        assert!(!same("https://127.0.0.1:8080", "http", "127.0.0.1:8080"));
        assert!(!same("http://127.0.0.1:8080", "https", "127.0.0.1:8080"));
        assert!(!same("http://127.0.0.1:8081", "http", "127.0.0.1:8080"));
        assert!(!same("http://127.0.0.1", "http", "127.0.0.1:8080"));
        assert!(!same("http://evil.example:8080", "http", "127.0.0.1:8080"));
        assert!(!same("null", "http", "127.0.0.1:8080"));
    }

    #[test]
    fn allows_only_listed_origins_by_default() {
        let policy = policy(&["https://app.example.com"], false);
        assert!(policy.allows(&HeaderValue::from_static("https://app.example.com")));
        assert!(!policy.allows(&HeaderValue::from_static("https://evil.example.com")));
        assert!(!policy.allows(&HeaderValue::from_static("http://127.0.0.1:8080")));
    }

    #[test]
    fn dev_mode_allows_loopback_origins_only() {
        let policy = policy(&[], true);
        for origin in [
            "http://localhost:8080",
            "http://127.0.0.1:34567",
            "http://[::1]:8000",
            "http://localhost",
        ] {
            assert!(policy.allows(&HeaderValue::from_static(origin)), "{origin}");
        }
        for origin in [
            "http://localhost.evil.com:8080",
            "http://127.0.0.1.nip.io",
            "https://example.com",
            "http://10.0.0.1:8080",
            "null",
        ] {
            assert!(
                !policy.allows(&HeaderValue::from_static(origin)),
                "{origin}"
            );
        }
    }
}
