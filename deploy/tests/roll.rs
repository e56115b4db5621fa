//! Rolling deploys through HAProxy lose no call: three replicas of the real binary behind the
//! real balancer (deploy/haproxy.cfg), steady mixed load on the front port (see `load`), and
//! every replica restarted twice, one at a time.
//!
//! No unary call may fail, whoever makes it: our CLI's client, tonic-web's, connect-es, or the
//! page in Chromium (every click shows its greeting). Every stream (native server streams,
//! WebSocket conversations, the page's panel) either completes or ends UNAVAILABLE and is
//! reopened, and the reopening succeeds.
//!
//! `cargo xtask test` runs these with `GREETER_CLUSTER_SERVER` (the server binary), `HAPROXY`,
//! `NODE`, `GREETER_E2E_DIST` (the built page), `CHROMEDRIVER` and `GREETER_E2E_ARTIFACTS` set;
//! without them the tests fail, saying so.

mod load;

use std::{
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};

use greeter_cluster::{Cluster, ClusterOptions};
use load::{ConnectEs, StreamTally, Tally};
use test_support::required_env;

fn start_cluster(dir: PathBuf, health_checks: bool) -> Cluster {
    let dist = required_env("GREETER_E2E_DIST");
    Cluster::start(ClusterOptions {
        server: required_env("GREETER_CLUSTER_SERVER").into(),
        haproxy: required_env("HAPROXY").into(),
        replicas: 3,
        front_port: 0,
        health_checks,
        // Long enough for HAProxy's checks (every 500 ms) to take a stopping replica out.
        server_args: [
            "--shutdown-delay",
            "2s",
            "--drain-timeout",
            "5s",
            "--static-dir",
            &dist,
        ]
        .map(String::from)
        .to_vec(),
        server_env: Vec::new(),
        dir,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Rolls every replica twice under load and checks what the load saw.
async fn roll_under_load(name: &str, health_checks: bool) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = start_cluster(dir.clone(), health_checks);
    let url = cluster.url();
    let stop = Arc::new(AtomicBool::new(false));
    let native = Arc::new(Tally::default());
    let web = Arc::new(Tally::default());
    let streams = Arc::new(StreamTally::default());
    let chats = Arc::new(StreamTally::default());
    let mut load = Vec::new();
    for _ in 0..2 {
        load.push(tokio::spawn(load::unary_native(
            url.clone(),
            stop.clone(),
            native.clone(),
        )));
        load.push(tokio::spawn(load::unary_grpc_web(
            url.clone(),
            stop.clone(),
            web.clone(),
        )));
        load.push(tokio::spawn(load::chats(
            cluster.front,
            stop.clone(),
            chats.clone(),
        )));
    }
    for _ in 0..4 {
        load.push(tokio::spawn(load::server_streams(
            url.clone(),
            stop.clone(),
            streams.clone(),
        )));
    }
    let connect_es = ConnectEs::start(&url, &dir);
    let page = tokio::spawn(load::page(url.clone(), stop.clone()));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let rolling = std::time::Instant::now();
    tokio::task::block_in_place(|| {
        for _ in 0..2 {
            cluster.roll().unwrap_or_else(|e| panic!("{e}"));
        }
    });
    let rolled_in = rolling.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .expect("the load stops within 15 s")
            .unwrap();
    }
    let connect_es = connect_es.stop();
    let page = tokio::time::timeout(Duration::from_secs(90), page)
        .await
        .expect("the page's stream ends within 90 s")
        .unwrap();

    println!(
        "{name}: two rolls in {rolled_in:.1?}; unary (ok, failed): CLI client {:?}, tonic-web {:?}, connect-es {:?}, page clicks \
         {:?}; server streams {}; WebSocket chats {}; the page's stream: {} greetings, reopened {} \
         times",
        native.counts(),
        web.counts(),
        connect_es.counts(),
        page.clicks.counts(),
        streams.summary(),
        chats.summary(),
        page.stream_greetings,
        page.stream_reopenings,
    );
    native.assert_no_failure("native gRPC unary (the CLI's client)", 100);
    web.assert_no_failure("gRPC-Web unary (tonic-web's client)", 100);
    connect_es.assert_no_failure("connect-es unary", 100);
    page.clicks
        .assert_no_failure("the page's Say hello clicks", 20);
    streams.assert_every_stream_completed_or_reopened("server streams");
    chats.assert_every_stream_completed_or_reopened("WebSocket chats");
    assert_eq!(
        page.stream_greetings,
        load::PAGE_STREAM,
        "the page's stream got every greeting"
    );
    // It lasted the whole roll, so the replica under it was restarted at least once.
    assert!(
        page.stream_reopenings > 0,
        "the page's stream was never reopened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_every_replica_twice_loses_no_call() {
    roll_under_load("roll-checked", true).await;
}

/// Without health checks the balancer learns of a restart only from refused connections; it
/// retries those on another replica, and our clients retry what still fails, so no call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_health_checks_a_roll_still_loses_no_call() {
    roll_under_load("roll-unchecked", false).await;
}
