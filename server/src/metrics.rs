//! Prometheus metrics at `/metrics`, recorded by the call gate ([`crate::gate`]) for every gRPC
//! call on any transport.
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
    time::Duration,
};

use hello_proto::code_name;
use tonic::Code;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// One method's counters: calls by code and the latency histogram. Atomics, so that recording a
/// call takes no lock.
#[derive(Debug, Default)]
pub struct MethodStats {
    codes: [AtomicU64; 17],
    /// Calls by the first bucket their latency fits in (the last slot: none); summed into
    /// Prometheus's cumulative buckets when rendered, so a call costs one increment here.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl MethodStats {
    pub fn record(&self, code: Code, elapsed: Duration) {
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

    pub fn call_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn call_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A fresh id for a call whose client sent none.
    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The counters of `method`: a shared lookup, and a write only the first time a method is seen.
    pub fn method(&self, method: &str) -> Arc<MethodStats> {
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
