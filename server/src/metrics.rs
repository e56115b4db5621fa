//! Prometheus metrics at `/metrics`, a tracing span per call, and the gate every call passes
//! (metrics and the concurrency limit in one middleware).
//!
//! Every gRPC call, whatever its transport, is observed from its start to the end of its response
//! body, so a stream's latency is its whole life and its code is the one in its trailers. A call
//! whose body is dropped before its status (the client left) counts as CANCELLED.
//!
//! Exposed: calls by method and code, a latency histogram by method, calls in flight, and open
//! connections. The text format is written here directly: a few counters do not need a framework.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use axum::{extract::Request, middleware::Next, response::Response};
use bytes::Bytes;
use hello_proto::code_name;
use http::{HeaderMap, HeaderValue};
use tokio::sync::OwnedSemaphorePermit;
use tonic::Code;
use tracing::Instrument;

use crate::{
    call_body::{CallBody, CallGuard},
    limits::CallLimit,
};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// One method's counters: calls by code and the latency histogram. Atomics, so that recording a
/// call takes no lock.
#[derive(Debug, Default)]
struct MethodStats {
    codes: [AtomicU64; 17],
    /// Calls by the first bucket their latency fits in (the last slot: none); summed into
    /// Prometheus's cumulative buckets when rendered, so a call costs one increment here.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl MethodStats {
    fn record(&self, code: Code, elapsed: Duration) {
        self.codes[code as usize].fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Distinct method labels kept; calls to further (unknown, client-invented) methods count under
/// [`OTHER_METHODS`], so that no client can grow the metrics without bound.
const MAX_METHODS: usize = 64;
const OTHER_METHODS: &str = "other";

/// The server's metrics; cheap to share.
#[derive(Debug, Default)]
pub struct Metrics {
    methods: RwLock<HashMap<String, Arc<MethodStats>>>,
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

    /// The counters of `method`: a shared lookup, and a write only the first time a method is seen.
    fn method(&self, method: &str) -> Arc<MethodStats> {
        if let Some(stats) = self.methods.read().unwrap().get(method) {
            return Arc::clone(stats);
        }
        let mut methods = self.methods.write().unwrap();
        let key = if methods.len() < MAX_METHODS || methods.contains_key(method) {
            method
        } else {
            OTHER_METHODS
        };
        Arc::clone(methods.entry(key.to_owned()).or_default())
    }

    /// Every method's counters, by method name.
    fn sorted(&self) -> Vec<(String, Arc<MethodStats>)> {
        let mut methods: Vec<_> = self
            .methods
            .read()
            .unwrap()
            .iter()
            .map(|(method, stats)| (method.clone(), Arc::clone(stats)))
            .collect();
        methods.sort_by(|a, b| a.0.cmp(&b.0));
        methods
    }

    /// Calls completed so far: (method, code, count).
    pub fn handled(&self) -> Vec<(String, &'static str, u64)> {
        let mut handled = Vec::new();
        for (method, stats) in self.sorted() {
            for (number, count) in stats.codes.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    handled.push((
                        method.clone(),
                        code_name(Code::from_i32(number as i32)),
                        count,
                    ));
                }
            }
        }
        handled
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP grpc_server_handled_total Calls completed, by method and gRPC code.\n",
        );
        out.push_str("# TYPE grpc_server_handled_total counter\n");
        for (method, code, count) in self.handled() {
            let _ = writeln!(
                out,
                "grpc_server_handled_total{{grpc_method=\"{method}\",grpc_code=\"{code}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP grpc_server_handling_seconds Call duration, to the end of the response.\n",
        );
        out.push_str("# TYPE grpc_server_handling_seconds histogram\n");
        for (method, stats) in self.sorted() {
            let mut cumulative = 0;
            for (count, bound) in stats.buckets.iter().zip(BUCKETS) {
                cumulative += count.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "grpc_server_handling_seconds_bucket{{grpc_method=\"{method}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            // Every call is in one bucket, the overflow slot included: their sum is the count.
            let count: u64 = stats
                .buckets
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(
                out,
                "grpc_server_handling_seconds_bucket{{grpc_method=\"{method}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "grpc_server_handling_seconds_sum{{grpc_method=\"{method}\"}} {}",
                stats.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "grpc_server_handling_seconds_count{{grpc_method=\"{method}\"}} {count}"
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

/// What every gRPC call passes through, on any transport: its metrics record and the bound on
/// calls in progress.
#[derive(Debug, Clone)]
pub struct CallGate {
    pub metrics: Arc<Metrics>,
    pub limit: CallLimit,
}

/// Middleware for the gRPC routes: observes each call until its response body ends (refusals
/// included), and admits it only if the limit allows. One middleware for both, since each layer
/// costs every call a boxed future and a wrapped body.
pub async fn gate_calls(
    axum::extract::State(gate): axum::extract::State<CallGate>,
    mut request: Request,
    next: Next,
) -> Response {
    let metrics = &gate.metrics;
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
    let method = request.uri().path();
    // The call's span: everything the handler logs is inside it, and it closes with the code.
    let span = tracing::info_span!(
        "call",
        method = %method,
        peer = %peer.map(|peer| peer.to_string()).unwrap_or_default(),
        request_id = %request_id.to_str().unwrap_or_default(),
        code = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let mut call = CallRecord {
        stats: metrics.method(method),
        metrics: Arc::clone(metrics),
        span: span.clone(),
        started: Instant::now(),
        code: None,
        permit: None,
    };
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);

    let mut response = match gate.limit.admit(method) {
        Ok(permit) => {
            call.permit = Some(permit);
            next.run(request).instrument(span).await
        }
        Err(refusal) => refusal.into_http(),
    };
    response.headers_mut().insert("x-request-id", request_id);
    // A trailers-only response (an error before any message) carries its status in the headers.
    call.code = grpc_code(response.headers());
    response.map(|body| CallBody::wrap(body, call))
}

/// One call's record, written when its response ends (or is dropped).
struct CallRecord {
    stats: Arc<MethodStats>,
    metrics: Arc<Metrics>,
    span: tracing::Span,
    started: Instant,
    code: Option<Code>,
    /// The call's place under the concurrency limit, held until its response ends.
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        let elapsed = self.started.elapsed();
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.stats.record(code, elapsed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_invented_methods_cannot_grow_the_metrics_without_bound() {
        let metrics = Metrics::default();
        for i in 0..1000 {
            metrics
                .method(&format!("/hello.Greeter/Invented{i}"))
                .record(Code::Unimplemented, Duration::from_millis(1));
        }
        metrics
            .method("/hello.Greeter/Invented0")
            .record(Code::Unimplemented, Duration::from_millis(1));
        let handled = metrics.handled();
        assert_eq!(handled.len(), MAX_METHODS + 1);
        let other = handled
            .iter()
            .find(|(method, _, _)| method == OTHER_METHODS)
            .unwrap();
        assert_eq!(other.2, 1000 - MAX_METHODS as u64);
        assert!(handled.contains(&("/hello.Greeter/Invented0".to_owned(), "UNIMPLEMENTED", 2)));
        let text = metrics.render();
        assert!(text.contains("grpc_server_handling_seconds_count{grpc_method=\"other\"} 936"));
        // 1 ms: above the 0.5 ms bucket, inside the 1 ms one, and in every one after it.
        assert!(text.contains(
            "grpc_server_handling_seconds_bucket{grpc_method=\"other\",le=\"0.0005\"} 0"
        ));
        assert!(text.contains(
            "grpc_server_handling_seconds_bucket{grpc_method=\"other\",le=\"0.001\"} 936"
        ));
        assert!(text
            .contains("grpc_server_handling_seconds_bucket{grpc_method=\"other\",le=\"30\"} 936"));
    }
}
