//! `cargo xtask cluster`: replicas of the release server behind HAProxy on loopback, configured by
//! `deploy/haproxy.cfg`, until Ctrl-C; with `--roll`, each replica is then restarted once, one at
//! a time, each after the previous one is back in rotation, as a deploy does.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use greeter_cluster::{Cluster, ClusterOptions};

use crate::{page, setup, workspace_root, Result};

/// Set by the SIGINT and SIGTERM handler; the main loop stops the cluster when it sees it.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub fn run(replicas: usize, port: u16, roll: bool) -> Result {
    let tools = setup::tools(false)?;
    let haproxy = setup::haproxy()?;
    page::build_release_server(&tools, &[])?;
    let root = workspace_root();
    // The children run in process groups of their own, so Ctrl-C reaches this process alone, and
    // dropping the cluster stops each of them (a handler is reset in a child at exec).
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let handler: extern "C" fn(libc::c_int) = request_stop;
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    let mut cluster = Cluster::start(ClusterOptions {
        server: root.join("target/release/greeter-server"),
        haproxy,
        replicas,
        front_port: port,
        health_checks: true,
        server_args: Vec::new(),
        server_env: Vec::new(),
        dir: root.join("target/cluster"),
    })?;
    println!(
        "xtask: {replicas} replicas ({}) behind HAProxy: open {}/ (Ctrl-C stops them all; logs in target/cluster/)",
        cluster
            .replica_addrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        cluster.url()
    );
    if roll {
        for index in 0..replicas {
            if STOP.load(Ordering::Relaxed) {
                break;
            }
            println!("xtask: restarting replica {}", index + 1);
            cluster.restart(index)?;
        }
        println!("xtask: every replica restarted; serving until Ctrl-C");
    }
    while !STOP.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(100));
    }
    println!("xtask: stopping the cluster");
    Ok(())
}
