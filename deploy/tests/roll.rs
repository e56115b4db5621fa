//! Rolling deploys through HAProxy lose no call: three replicas of the real binary behind the
//! real balancer (deploy/haproxy.cfg), steady load on the front port, and every replica restarted
//! twice, one at a time.
//!
//! The load: unary calls over native gRPC (h2c) and over gRPC-Web (HTTP/1.1), back to back, and
//! server streams that reopen when they end with UNAVAILABLE (as a replica's drain ends them).
//! No unary call may fail; every stream either completes or ends UNAVAILABLE, and its reopening
//! succeeds.
//!
//! `cargo xtask test` runs these with `GREETER_CLUSTER_SERVER` (the server binary) and `HAPROXY`
//! set; without them the tests fail, saying so.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use greeter_cluster::{Cluster, ClusterOptions};
use hello_proto::{greeter_client::GreeterClient, HelloReply, HelloRequest, HelloStreamRequest};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use test_support::required_env;
use tonic::{transport::Channel, Code};
use tonic_web::GrpcWebClientLayer;

fn start_cluster(name: &str, health_checks: bool) -> Cluster {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    Cluster::start(ClusterOptions {
        server: required_env("GREETER_CLUSTER_SERVER").into(),
        haproxy: required_env("HAPROXY").into(),
        replicas: 3,
        front_port: 0,
        health_checks,
        // Long enough for HAProxy's checks (every 500 ms) to take a stopping replica out.
        server_args: ["--shutdown-delay", "2s", "--drain-timeout", "5s"]
            .map(String::from)
            .to_vec(),
        dir,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The first failures, for the assertion's message.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, result: Result<(), String>) {
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

    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Streams: how each ended.
#[derive(Default)]
struct StreamTally {
    completed: AtomicU64,
    /// Ended by a drain with UNAVAILABLE, then reopened.
    reopened: AtomicU64,
    calls: Tally,
}

fn native_client(url: &str) -> GreeterClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect_lazy();
    GreeterClient::new(channel)
}

/// Unary calls back to back until `stop`, each through `say_hello`, its greeting checked.
async fn unary<F>(
    label: &str,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    mut say_hello: impl FnMut(HelloRequest) -> F,
) where
    F: std::future::Future<Output = Result<tonic::Response<HelloReply>, tonic::Status>>,
{
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let name = format!("{label} {i}");
        let result = say_hello(HelloRequest { name: name.clone() })
            .await
            .map_err(|status| format!("{label}: {status:?}"))
            .and_then(|reply| check_greeting(&reply.into_inner().message, &name));
        tally.record(result);
    }
}

async fn unary_native(url: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let client = native_client(&url);
    unary("native", stop, tally, |request| {
        let mut client = client.clone();
        async move { client.say_hello(request).await }
    })
    .await;
}

async fn unary_grpc_web(url: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let http = Client::builder(TokioExecutor::new()).build_http();
    let service = tower::ServiceBuilder::new()
        .layer(GrpcWebClientLayer::new())
        .service(http);
    let client = GreeterClient::with_origin(service, url.parse().unwrap());
    unary("gRPC-Web", stop, tally, |request| {
        let mut client = client.clone();
        async move { client.say_hello(request).await }
    })
    .await;
}

fn check_greeting(message: &str, name: &str) -> Result<(), String> {
    let expected = format!("Hello, {name}");
    if message == expected {
        Ok(())
    } else {
        Err(format!("{message:?} instead of {expected:?}"))
    }
}

/// Server streams of 40 greetings 100 ms apart (longer than a replica's shutdown delay, so a
/// drain cuts some), one after another; a stream that ends with UNAVAILABLE is reopened (that
/// reopening is a call that must succeed).
async fn streams(url: String, stop: Arc<AtomicBool>, tally: Arc<StreamTally>) {
    let mut client = native_client(&url);
    while !stop.load(Ordering::Relaxed) {
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
                // A drain ended it: the next round reopens it.
                tally.reopened.fetch_add(1, Ordering::Relaxed);
            }
            Err(status) => tally
                .calls
                .record(Err(format!("stream after {received}: {status:?}"))),
        }
    }
}

/// Runs the load against the cluster while `roll` restarts replicas; returns the tallies.
async fn under_load(
    cluster: &mut Cluster,
    rolls: usize,
) -> (Arc<Tally>, Arc<Tally>, Arc<StreamTally>) {
    let url = cluster.url();
    let stop = Arc::new(AtomicBool::new(false));
    let native = Arc::new(Tally::default());
    let web = Arc::new(Tally::default());
    let stream_tally = Arc::new(StreamTally::default());
    let mut load = Vec::new();
    for _ in 0..2 {
        load.push(tokio::spawn(unary_native(
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&native),
        )));
        load.push(tokio::spawn(unary_grpc_web(
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&web),
        )));
    }
    for _ in 0..4 {
        load.push(tokio::spawn(streams(
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&stream_tally),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| {
        for _ in 0..rolls {
            cluster.roll().unwrap_or_else(|e| panic!("{e}"));
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the load stops within 10 s")
            .unwrap();
    }
    (native, web, stream_tally)
}

fn assert_no_failure(kind: &str, tally: &Tally) {
    let (ok, failed) = tally.counts();
    let failures = tally.failures.lock().unwrap();
    assert_eq!(
        failed,
        0,
        "{kind}: {failed} of {} failed: {failures:#?}",
        ok + failed
    );
    assert!(ok > 100, "{kind}: only {ok} calls");
}

/// Rolls every replica twice under load and checks what the load saw.
async fn roll_under_load(name: &str, health_checks: bool) {
    let mut cluster = start_cluster(name, health_checks);
    let (native, web, streams) = under_load(&mut cluster, 2).await;
    let (completed, reopened) = (
        streams.completed.load(Ordering::Relaxed),
        streams.reopened.load(Ordering::Relaxed),
    );
    println!(
        "{name}: unary (ok, failed): native {:?}, gRPC-Web {:?}; streams completed {completed}, \
         ended by a drain and reopened {reopened}",
        native.counts(),
        web.counts()
    );
    assert_no_failure("native gRPC unary", &native);
    assert_no_failure("gRPC-Web unary", &web);
    let (_, failed) = streams.calls.counts();
    let failures = streams.calls.failures.lock().unwrap();
    assert_eq!(failed, 0, "streams: {failures:#?}");
    assert!(completed > 0, "no stream completed");
    // Six drains, each with up to four streams open: some must have been cut and reopened, or
    // this test did not exercise that path.
    assert!(reopened > 0, "no stream was ended by a drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_every_replica_twice_loses_no_call() {
    roll_under_load("roll-checked", true).await;
}

/// Without health checks the balancer learns of a restart only from refused connections; it
/// retries those on another replica, so still no call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_health_checks_a_roll_still_loses_no_call() {
    roll_under_load("roll-unchecked", false).await;
}
