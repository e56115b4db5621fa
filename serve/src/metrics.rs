//! Prometheus metrics at `/metrics`, recorded by the call gate ([`crate::gate`]) for every gRPC
//! call on any transport.
//!
//! Exposed: calls by method and code, a latency histogram by method, calls in flight, and open
//! connections. The text format is written here directly: a few counters do not need a framework.
//!
//! The method labels are fixed at start-up, one per hosted method (see [`crate::catalog`]), plus
//! [`UNKNOWN_METHOD`] for every other path: no client can add a label, take a real method's, or
//! put a character into the page that breaks a scraper's parser.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use grpc_call::code_name;
use tonic::Code;

use crate::catalog::Method;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// One method's counters: calls by code and the latency histogram. Atomics, so that recording a
/// call takes no lock. It also carries the method's shape, for the gate's bounds, so a call looks
/// its method up once.
#[derive(Debug, Default)]
pub(crate) struct MethodStats {
    /// The client sends a stream of messages; unknown methods count as not.
    pub client_streaming: bool,
    /// The server sends a stream of messages; unknown methods count as not.
    pub server_streaming: bool,
    codes: [AtomicU64; 17],
    /// Calls by the first bucket their latency fits in (the last slot: none); summed into
    /// Prometheus's cumulative buckets when rendered, so a call costs one increment here.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl MethodStats {
    pub(crate) fn record(&self, code: Code, elapsed: Duration) {
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

/// The label of every call to a path that no hosted service has: one label for all of them, so
/// no client can add labels or take a real method's.
pub(crate) const UNKNOWN_METHOD: &str = "unknown";

/// The server's metrics; cheap to share.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// One entry per hosted method, fixed at start-up: a lookup takes no lock. Every call looks
    /// its path up here, so with foldhash, cheaper than SipHash; SipHash's resistance to
    /// flooding buys nothing here: the table never grows after start-up, a client's path can only
    /// miss it.
    methods: HashMap<String, Arc<MethodStats>, foldhash::fast::RandomState>,
    unknown: Arc<MethodStats>,
    in_flight: AtomicU64,
    open_connections: AtomicU64,
    next_request_id: AtomicU64,
}

impl Metrics {
    /// Metrics for the hosted methods, by their paths (`/package.Service/Method`).
    pub(crate) fn new(methods: impl IntoIterator<Item = Method>) -> Self {
        Self {
            methods: methods
                .into_iter()
                .map(|method| {
                    let stats = MethodStats {
                        client_streaming: method.client_streaming,
                        server_streaming: method.server_streaming,
                        ..MethodStats::default()
                    };
                    (method.path, Arc::new(stats))
                })
                .collect(),
            unknown: Arc::default(),
            in_flight: AtomicU64::new(0),
            open_connections: AtomicU64::new(0),
            next_request_id: AtomicU64::new(0),
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn call_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A fresh id for a call whose client sent none.
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The counters of the method at `path`, or of [`UNKNOWN_METHOD`] if no hosted service has it.
    pub(crate) fn method(&self, path: &str) -> Arc<MethodStats> {
        Arc::clone(self.methods.get(path).unwrap_or(&self.unknown))
    }

    /// Every method's counters, by method name, the unknown ones last.
    fn sorted(&self) -> Vec<(&str, &MethodStats)> {
        let mut methods: Vec<_> = self
            .methods
            .iter()
            .map(|(method, stats)| (method.as_str(), &**stats))
            .collect();
        methods.sort_by(|a, b| a.0.cmp(b.0));
        methods.push((UNKNOWN_METHOD, &self.unknown));
        methods
    }

    /// Calls completed so far: (method, code, count).
    pub(crate) fn handled(&self) -> Vec<(&str, &'static str, u64)> {
        let mut handled = Vec::new();
        for (method, stats) in self.sorted() {
            for (number, count) in stats.codes.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    handled.push((method, code_name(Code::from_i32(number as i32)), count));
                }
            }
        }
        handled
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP grpc_server_handled_total Calls completed, by method and gRPC code.\n",
        );
        out.push_str("# TYPE grpc_server_handled_total counter\n");
        for (method, code, count) in self.handled() {
            let method = LabelValue(method);
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
            let method = LabelValue(method);
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

/// A label value written as the Prometheus text format requires: `\\`, `\"` and `\n` escaped.
/// The labels are the hosted services' own method names, but a name in a descriptor set is not
/// this module's to trust.
struct LabelValue<'a>(&'a str);

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosted() -> Metrics {
        Metrics::new([
            Method::unary("/chat.v1.Room/Join"),
            Method::unary("/chat.v1.Room/Say"),
        ])
    }

    #[test]
    fn invented_methods_share_one_label_and_never_take_a_real_one() {
        let metrics = hosted();
        for i in 0..1000 {
            metrics
                .method(&format!("/chat.v1.Room/Invented{i}"))
                .record(Code::Unimplemented, Duration::from_millis(1));
        }
        // A real method called for the first time after them keeps its own label.
        metrics
            .method("/chat.v1.Room/Say")
            .record(Code::Ok, Duration::from_millis(1));
        assert_eq!(
            metrics.handled(),
            [
                ("/chat.v1.Room/Say", "OK", 1),
                (UNKNOWN_METHOD, "UNIMPLEMENTED", 1000)
            ]
        );
        let text = metrics.render();
        assert!(text.contains("grpc_server_handling_seconds_count{grpc_method=\"unknown\"} 1000"));
        // 1 ms: above the 0.5 ms bucket, inside the 1 ms one, and in every one after it.
        assert!(text.contains(
            "grpc_server_handling_seconds_bucket{grpc_method=\"unknown\",le=\"0.0005\"} 0"
        ));
        assert!(text.contains(
            "grpc_server_handling_seconds_bucket{grpc_method=\"unknown\",le=\"0.001\"} 1000"
        ));
        assert!(text.contains(
            "grpc_server_handling_seconds_bucket{grpc_method=\"unknown\",le=\"30\"} 1000"
        ));
        assert!(!text.contains("Invented"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(LabelValue("/a\"b\\c\nd").to_string(), "/a\\\"b\\\\c\\nd");
        let metrics = Metrics::new([Method::unary("/odd\"name")]);
        metrics
            .method("/odd\"name")
            .record(Code::Ok, Duration::from_millis(1));
        assert!(metrics.render().contains(
            "grpc_server_handled_total{grpc_method=\"/odd\\\"name\",grpc_code=\"OK\"} 1"
        ));
    }
}
