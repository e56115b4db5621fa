//! Prometheus metrics at `/metrics`, and a tracing span per call.
//!
//! Every gRPC call, whatever its transport, is observed from its start to the end of its response
//! body, so a stream's latency is its whole life and its code is the one in its trailers. A call
//! whose body is dropped before its status (the client left) counts as CANCELLED.
//!
//! Exposed: calls by method and code, a latency histogram by method, calls in flight, and open
//! connections. The text format is written here directly: a few counters do not need a framework.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{extract::Request, middleware::Next, response::Response};
use bytes::Bytes;
use hello_proto::code_name;
use http::{HeaderMap, HeaderValue};
use tonic::Code;
use tracing::Instrument;

use crate::call_body::{CallBody, CallGuard};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's metrics; cheap to share.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    in_flight: AtomicU64,
    open_connections: AtomicU64,
    next_request_id: AtomicU64,
}

impl Metrics {
    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    fn record(&self, method: &str, code: Code, elapsed: Duration) {
        let code = code_name(code);
        *self
            .calls
            .lock()
            .unwrap()
            .entry((method.to_owned(), code))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap();
        let histogram = latency.entry(method.to_owned()).or_default();
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Calls completed so far: (method, code, count).
    pub fn handled(&self) -> Vec<(String, &'static str, u64)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|((method, code), count)| (method.clone(), *code, *count))
            .collect()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP grpc_server_handled_total Calls completed, by method and gRPC code.\n",
        );
        out.push_str("# TYPE grpc_server_handled_total counter\n");
        for ((method, code), count) in self.calls.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "grpc_server_handled_total{{grpc_method=\"{method}\",grpc_code=\"{code}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP grpc_server_handling_seconds Call duration, to the end of the response.\n",
        );
        out.push_str("# TYPE grpc_server_handling_seconds histogram\n");
        for (method, histogram) in self.latency.lock().unwrap().iter() {
            for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "grpc_server_handling_seconds_bucket{{grpc_method=\"{method}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "grpc_server_handling_seconds_bucket{{grpc_method=\"{method}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "grpc_server_handling_seconds_sum{{grpc_method=\"{method}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "grpc_server_handling_seconds_count{{grpc_method=\"{method}\"}} {}",
                histogram.count
            );
        }
        let gauges = [
            (
                "grpc_server_calls_in_flight",
                "Calls started and not yet ended, streams included.",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "http_server_open_connections",
                "Open client connections.",
                self.open_connections.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// Middleware for the gRPC routes: observes each call until its response body ends.
pub async fn observe_calls(
    metrics: axum::extract::State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .cloned()
        .unwrap_or_else(|| {
            let id = metrics.next_request_id.fetch_add(1, Ordering::Relaxed);
            HeaderValue::from(id)
        });
    request
        .headers_mut()
        .insert("x-request-id", request_id.clone());
    let peer = request
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr);
    let method = request.uri().path().to_owned();
    // The call's span: everything the handler logs is inside it, and it closes with the code.
    let span = tracing::info_span!(
        "call",
        method = %method,
        peer = %peer.map(|peer| peer.to_string()).unwrap_or_default(),
        request_id = %request_id.to_str().unwrap_or_default(),
        code = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let call = CallRecord {
        metrics: Arc::clone(&metrics),
        method,
        span: span.clone(),
        started: Instant::now(),
        code: None,
    };
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);

    let mut response = next.run(request).instrument(span).await;
    response.headers_mut().insert("x-request-id", request_id);
    let mut call = call;
    // A trailers-only response (an error before any message) carries its status in the headers.
    call.code = grpc_code(response.headers());
    response.map(|body| CallBody::wrap(body, call))
}

/// One call's record, written when its response ends (or is dropped).
struct CallRecord {
    metrics: Arc<Metrics>,
    method: String,
    span: tracing::Span,
    started: Instant,
    code: Option<Code>,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        let elapsed = self.started.elapsed();
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.metrics.record(&self.method, code, elapsed);
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        self.span.record("code", code_name(code));
        self.span.record("latency_ms", latency_ms);
        self.span.in_scope(|| tracing::info!("call ended"));
    }
}

impl CallGuard for CallRecord {
    fn on_frame(&mut self, frame: &http_body::Frame<Bytes>) {
        if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
            self.code = Some(code);
        }
    }
}

fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}
