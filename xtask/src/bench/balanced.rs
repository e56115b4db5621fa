//! Our release server behind HAProxy, configured by `deploy/haproxy.cfg` as `cargo xtask cluster`
//! runs it: one replica and three, measured in the unary rounds like every other server; then
//! native gRPC unary calls on the three replicas while a roll restarts each of them, against the
//! same load on the same cluster left alone.

use std::{
    path::Path,
    thread,
    time::{Duration, Instant},
};

use greeter_cluster::{Cluster, ClusterOptions};

use super::{load, server::Target, Bodies, Protocol, Unary};
use crate::Result;

/// How long the load runs for the roll row (and its steady twin): longer than a roll of three
/// replicas, which starts [`ROLL_AFTER`] into it.
pub(super) const ROLL_LOAD_SECONDS: u64 = 30;
const ROLL_AFTER: Duration = Duration::from_secs(2);

/// Two clusters: one replica behind HAProxy, and three.
pub(super) struct Balanced {
    one: Cluster,
    three: Cluster,
}

/// The roll row: the same load on the steady cluster, then during a roll.
pub(super) struct DuringRoll {
    pub(super) steady: Unary,
    pub(super) rolling: Unary,
    /// Requests h2load saw fail during the roll.
    pub(super) failed: u64,
    pub(super) roll_took: Duration,
}

impl Balanced {
    pub(super) fn start(release: &Path, haproxy: &Path, dir: &Path) -> Result<Self> {
        let cluster = |replicas: usize| {
            Cluster::start(ClusterOptions {
                server: release.join("greeter-server"),
                haproxy: haproxy.to_owned(),
                replicas,
                front_port: 0,
                health_checks: true,
                server_args: ["--shutdown-delay", "2s", "--drain-timeout", "5s"]
                    .map(String::from)
                    .to_vec(),
                // As the other servers run here: no log line per call.
                server_env: vec![("RUST_LOG".into(), "warn".into())],
                dir: dir.join(format!("{replicas}-replicas")),
            })
        };
        Ok(Self {
            one: cluster(1)?,
            three: cluster(3)?,
        })
    }

    pub(super) fn one_replica(&self) -> Target {
        Target {
            name: "HAProxy → 1 replica",
            port: self.one.front.port(),
        }
    }

    pub(super) fn three_replicas(&self) -> Target {
        Target {
            name: "HAProxy → 3 replicas",
            port: self.three.front.port(),
        }
    }

    /// Native gRPC unary load on the three replicas for [`ROLL_LOAD_SECONDS`], first left alone,
    /// then with every replica restarted once, one at a time.
    pub(super) fn during_roll(&mut self, root: &Path, body: &Bodies) -> Result<DuringRoll> {
        let target = self.three_replicas();
        println!(
            "xtask: {} over gRPC for {ROLL_LOAD_SECONDS} s, steady",
            target.name
        );
        let (steady, _) = load(root, &target, Protocol::Native, body, ROLL_LOAD_SECONDS)?;
        println!("xtask: the same while every replica restarts, one at a time");
        let three = &mut self.three;
        let (rolling, roll_took) = thread::scope(|scope| {
            let roll = scope.spawn(move || {
                thread::sleep(ROLL_AFTER);
                let started = Instant::now();
                three.roll().map(|()| started.elapsed())
            });
            let rolling = load(root, &target, Protocol::Native, body, ROLL_LOAD_SECONDS);
            let roll_took = roll.join().map_err(|_| "the roll panicked".to_owned())?;
            Ok::<_, String>((rolling?, roll_took?))
        })?;
        if ROLL_AFTER + roll_took > Duration::from_secs(ROLL_LOAD_SECONDS) {
            return Err(format!(
                "the roll took {roll_took:?}, longer than the load ({ROLL_LOAD_SECONDS} s)"
            ));
        }
        let (rolling, failed) = rolling;
        Ok(DuringRoll {
            steady,
            rolling,
            failed,
            roll_took,
        })
    }
}
