//! Soak: the real binary under mixed load from many concurrent clients for a bounded time, then a
//! SIGTERM while the load goes on.
//!
//! Checks: no error at all before the shutdown; server RSS grows by less than 32 MiB from the
//! warmed-up start to the end; after SIGTERM, calls fail only in the ways a shutdown explains
//! (UNAVAILABLE, or no connection); the process exits 0; every method had at least one OK call a
//! second; and the server's own final count of OK calls holds every OK reply the clients got,
//! exceeding it by no more than the calls a closing connection cut (whose OK status the server
//! sent but the client never read), so no acknowledged call was lost and none invented.
//!
//! `GREETER_SOAK_SECONDS` sets the load's length (default 20; `cargo xtask test` runs 120).

mod support;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use hello_proto::{greeter_client::GreeterClient, HelloRequest, HelloStreamRequest};
use tokio_stream::StreamExt;
use tonic::{transport::Channel, Code};

const CLIENTS: usize = 64;
const RSS_GROWTH_BOUND_KIB: u64 = 32 * 1024;

fn rss_kib(pid: u32) -> u64 {
    support::status_kib(pid, "VmRSS:")
}

#[derive(Default)]
struct Counts {
    ok: HashMap<&'static str, AtomicU64>,
    /// Calls the server answered UNAVAILABLE once the shutdown began, by method: never OK.
    refused_by_shutdown: HashMap<&'static str, AtomicU64>,
    /// Calls whose connection closed under them once the shutdown began, by method: the server
    /// may have sent them OK.
    cut_by_shutdown: HashMap<&'static str, AtomicU64>,
    errors_before_shutdown: AtomicU64,
    errors_after_shutdown_unexpected: AtomicU64,
}

/// One round of each kind; returns (method, result) for each call.
async fn round(
    client: &mut GreeterClient<Channel>,
    i: u64,
) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let mut results = Vec::new();
    let unary = client
        .say_hello(HelloRequest {
            name: format!("u{i}"),
        })
        .await
        .map(|reply| assert_eq!(reply.into_inner().message, format!("Hello, u{i}")));
    results.push(("/hello.Greeter/SayHello", unary));
    if i.is_multiple_of(4) {
        let stream = async {
            let mut replies = client
                .say_hello_stream(HelloStreamRequest {
                    name: "s".into(),
                    count: 5,
                    interval_ms: 0,
                })
                .await?
                .into_inner();
            let mut received = 0;
            while replies.message().await?.is_some() {
                received += 1;
            }
            assert_eq!(received, 5);
            Ok(())
        };
        results.push(("/hello.Greeter/SayHelloStream", stream.await));
        let names = tokio_stream::iter((0..5).map(|n| HelloRequest {
            name: format!("c{n}"),
        }));
        let summary = client
            .say_hello_to_all(names)
            .await
            .map(|s| assert_eq!(s.into_inner().count, 5));
        results.push(("/hello.Greeter/SayHelloToAll", summary));
        let chat = async {
            let names = tokio_stream::iter((0..5).map(|n| HelloRequest {
                name: format!("b{n}"),
            }));
            let replies: Vec<_> = client.chat(names).await?.into_inner().collect().await;
            let replies = replies.into_iter().collect::<Result<Vec<_>, _>>()?;
            assert_eq!(replies.len(), 5);
            Ok(())
        };
        results.push(("/hello.Greeter/Chat", chat.await));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_then_graceful_shutdown() {
    let seconds: u64 = std::env::var("GREETER_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_greeter-server"))
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--drain-timeout",
            "10s",
        ])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info,grpc_serve::gate=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let log = server.stdout.take().unwrap();
    let log_lines = std::thread::spawn(move || {
        BufReader::new(log)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });

    let url = format!("http://127.0.0.1:{port}");
    let connect = || async {
        loop {
            if let Ok(channel) = Channel::from_shared(url.clone()).unwrap().connect().await {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // Clients share a few connections, as real ones do.
    let channels = [
        connect().await,
        connect().await,
        connect().await,
        connect().await,
    ];

    const METHODS: [&str; 4] = [
        "/hello.Greeter/SayHello",
        "/hello.Greeter/SayHelloStream",
        "/hello.Greeter/SayHelloToAll",
        "/hello.Greeter/Chat",
    ];
    let per_method = || {
        METHODS
            .into_iter()
            .map(|method| (method, AtomicU64::new(0)))
            .collect()
    };
    let counts = Arc::new(Counts {
        ok: per_method(),
        refused_by_shutdown: per_method(),
        cut_by_shutdown: per_method(),
        ..Counts::default()
    });
    let stopping = Arc::new(AtomicBool::new(false));
    let load_until = Instant::now() + Duration::from_secs(seconds) + Duration::from_secs(10);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let mut client = GreeterClient::new(channels[worker % channels.len()].clone());
            let counts = Arc::clone(&counts);
            let stopping = Arc::clone(&stopping);
            tokio::spawn(async move {
                let mut i = worker as u64;
                while Instant::now() < load_until {
                    let after_shutdown = stopping.load(Ordering::SeqCst);
                    for (method, result) in round(&mut client, i).await {
                        match result {
                            Ok(()) => {
                                counts.ok[method].fetch_add(1, Ordering::Relaxed);
                            }
                            Err(status) if after_shutdown || stopping.load(Ordering::SeqCst) => {
                                // A shutdown explains UNAVAILABLE, and calls the closing
                                // connection never carried (transport errors), nothing else.
                                let transport = std::error::Error::source(&status)
                                    .is_some_and(|source| source.is::<tonic::transport::Error>());
                                if transport {
                                    counts.cut_by_shutdown[method].fetch_add(1, Ordering::Relaxed);
                                } else if status.code() == Code::Unavailable {
                                    counts.refused_by_shutdown[method]
                                        .fetch_add(1, Ordering::Relaxed);
                                } else {
                                    eprintln!("unexpected after shutdown: {status:?}");
                                    counts
                                        .errors_after_shutdown_unexpected
                                        .fetch_add(1, Ordering::Relaxed);
                                }
                                return;
                            }
                            Err(status) => {
                                eprintln!("error under load: {status:?}");
                                counts
                                    .errors_before_shutdown
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    i += CLIENTS as u64;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_start = rss_kib(pid);
    tokio::time::sleep(Duration::from_secs(seconds.saturating_sub(2))).await;
    let rss_end = rss_kib(pid);

    stopping.store(true, Ordering::SeqCst);
    // SAFETY: kill(2) on the child this test spawned.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    for worker in workers {
        worker.await.unwrap();
    }
    let exit = server.wait().unwrap();
    let log = log_lines.join().unwrap();

    let total: u64 = counts.ok.values().map(|c| c.load(Ordering::Relaxed)).sum();
    println!(
        "soak: {seconds} s, {CLIENTS} clients, {total} OK calls ({:.0}/s), RSS {rss_start} KiB -> {rss_end} KiB",
        total as f64 / seconds as f64
    );
    assert_eq!(counts.errors_before_shutdown.load(Ordering::Relaxed), 0);
    assert_eq!(
        counts
            .errors_after_shutdown_unexpected
            .load(Ordering::Relaxed),
        0
    );
    assert!(exit.success(), "{exit:?}");
    assert!(
        rss_end < rss_start + RSS_GROWTH_BOUND_KIB,
        "RSS grew from {rss_start} KiB to {rss_end} KiB"
    );

    // The server's final account of OK calls, per method, holds every call the clients received
    // OK. It may hold a few more, no more than the calls a closing connection cut: a call whose
    // status the server sent as the connection closed, that never reached its client. A call
    // answered UNAVAILABLE was never OK, so it explains nothing here.
    let served: HashMap<String, u64> = log
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            entry["fields"]["message"] == "calls handled" && entry["fields"]["code"] == "OK"
        })
        .map(|entry| {
            let fields = &entry["fields"];
            (
                fields["method"].as_str().unwrap().to_owned(),
                fields["count"].as_u64().unwrap(),
            )
        })
        .collect();
    for (method, ok) in &counts.ok {
        let (served, ok) = (
            served.get(*method).copied().unwrap_or(0),
            ok.load(Ordering::Relaxed),
        );
        let cut = counts.cut_by_shutdown[method].load(Ordering::Relaxed);
        let refused = counts.refused_by_shutdown[method].load(Ordering::Relaxed);
        println!("soak: {method}: {ok} OK, {refused} refused and {cut} cut by the shutdown");
        // A server that answers next to nothing must not pass: every method at least once a
        // second, far below what it does on two loaded cores.
        assert!(ok >= seconds, "{method}: only {ok} OK calls in {seconds} s");
        assert!(
            (ok..=ok + cut).contains(&served),
            "{method}: the server counted {served} OK calls, the clients received {ok} and had \
             {cut} cut by a closing connection"
        );
    }
}
