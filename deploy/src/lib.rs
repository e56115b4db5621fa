//! Replicas of `greeter-server` behind HAProxy on loopback: what `cargo xtask cluster` runs and
//! what the cluster tests roll under load.
//!
//! [`Cluster::start`] starts the replicas, each on a port of its own, renders
//! `deploy/haproxy.cfg` for them ([`haproxy_config`]) and starts HAProxy on the front port.
//! [`Cluster::roll`] restarts the replicas one at a time, as a deploy does: SIGTERM, wait for the
//! exit, start the new process on the same port, and go on once HAProxy has it back in rotation.
//! Every process runs in a process group of its own and is stopped, by its id, when the cluster
//! is dropped.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use test_support::process::{free_port, ChildProcess};

/// The configuration template, as kept in `deploy/haproxy.cfg`.
pub const HAPROXY_TEMPLATE: &str = include_str!("../haproxy.cfg");

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The `greeter-server` binary.
    pub server: PathBuf,
    /// The `haproxy` binary.
    pub haproxy: PathBuf,
    pub replicas: usize,
    /// The front port; 0 for a free one.
    pub front_port: u16,
    /// Whether HAProxy polls each replica's `/readyz` (off: it learns of a restart only from
    /// refused connections).
    pub health_checks: bool,
    /// Arguments every replica gets after `--addr`.
    pub server_args: Vec<String>,
    /// Environment variables every replica gets (`RUST_LOG`, say).
    pub server_env: Vec<(String, String)>,
    /// Where the rendered configuration, the admin socket and the logs go.
    pub dir: PathBuf,
}

/// One replica: its address and, while it runs, its process.
struct Replica {
    addr: SocketAddr,
    process: Option<ChildProcess>,
}

/// The replicas and HAProxy in front of them.
pub struct Cluster {
    pub front: SocketAddr,
    options: ClusterOptions,
    replicas: Vec<Replica>,
    admin_socket: PathBuf,
    // Declared last, so the balancer stops after the replicas.
    _haproxy: ChildProcess,
}

impl Cluster {
    /// Starts the replicas, waits until each is ready, then starts HAProxy and waits until it
    /// has every replica in rotation.
    pub fn start(options: ClusterOptions) -> Result<Self, String> {
        std::fs::create_dir_all(&options.dir)
            .map_err(|e| format!("cannot create {}: {e}", options.dir.display()))?;
        let mut replicas = Vec::new();
        for _ in 0..options.replicas {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            replicas.push(Replica {
                addr,
                process: None,
            });
        }
        let front_port = match options.front_port {
            0 => free_port()?,
            port => port,
        };
        let front = SocketAddr::from(([127, 0, 0, 1], front_port));
        let admin_socket = options.dir.join("haproxy.sock");
        let _ = std::fs::remove_file(&admin_socket);
        let config_path = options.dir.join("haproxy.cfg");
        let addrs: Vec<SocketAddr> = replicas.iter().map(|replica| replica.addr).collect();
        std::fs::write(
            &config_path,
            haproxy_config(HAPROXY_TEMPLATE, &addrs, options.health_checks),
        )
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;

        let mut cluster_replicas = Vec::new();
        for (index, mut replica) in replicas.into_iter().enumerate() {
            replica.process = Some(start_replica(&options, index, &replica)?);
            cluster_replicas.push(replica);
        }
        for replica in &mut cluster_replicas {
            wait_until_ready(replica, Duration::from_secs(60))?;
        }
        let log = log_file(&options.dir.join("haproxy.log"))?;
        let mut haproxy = ChildProcess::spawn(
            Command::new(&options.haproxy)
                // -db: stay in the foreground, so the guard's signal reaches HAProxy itself.
                .args(["-db", "-f"])
                .arg(&config_path)
                .env("CLUSTER_FRONT", front.to_string())
                .env("CLUSTER_ADMIN_SOCKET", &admin_socket)
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log),
        )?;
        haproxy.wait_for_port(front_port, Duration::from_secs(10))?;
        let cluster = Self {
            front,
            options,
            replicas: cluster_replicas,
            admin_socket,
            _haproxy: haproxy,
        };
        for index in 0..cluster.replicas.len() {
            cluster.wait_until_in_rotation(index, Duration::from_secs(10))?;
        }
        Ok(cluster)
    }

    /// `http://` and the front address.
    pub fn url(&self) -> String {
        format!("http://{}", self.front)
    }

    /// The replicas' addresses.
    pub fn replica_addrs(&self) -> Vec<SocketAddr> {
        self.replicas.iter().map(|replica| replica.addr).collect()
    }

    /// Restarts every replica once, one at a time: each is stopped with SIGTERM (it drains
    /// without losing a call), started again on its port, and back in rotation before the next.
    pub fn roll(&mut self) -> Result<(), String> {
        for index in 0..self.replicas.len() {
            self.restart(index)?;
        }
        Ok(())
    }

    /// Stops replica `index` with SIGTERM, waits for it to exit 0, and starts it again.
    pub fn restart(&mut self, index: usize) -> Result<(), String> {
        let replica = &mut self.replicas[index];
        let mut old = replica.process.take().ok_or("the replica is not running")?;
        old.signal(libc::SIGTERM)?;
        let status = old.exit_status(Duration::from_secs(60))?;
        if !status.success() {
            return Err(format!("replica {} exited with {status}", replica.addr));
        }
        replica.process = Some(start_replica(&self.options, index, replica)?);
        wait_until_ready(replica, Duration::from_secs(60))?;
        self.wait_until_in_rotation(index, Duration::from_secs(10))
    }

    /// Waits until HAProxy has replica `index` up in every backend (at once without health
    /// checks: a server without checks is always up).
    fn wait_until_in_rotation(&self, index: usize, within: Duration) -> Result<(), String> {
        let name = server_name(index);
        let deadline = Instant::now() + within;
        loop {
            let state = admin_command(&self.admin_socket, "show servers state")?;
            let up = state
                .lines()
                .filter(|line| line.split_whitespace().nth(3) == Some(name.as_str()))
                // srv_op_state 2: running.
                .map(|line| line.split_whitespace().nth(5) == Some("2"))
                .collect::<Vec<_>>();
            if up.len() == 2 && up.iter().all(|up| *up) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "HAProxy has not put {name} back after {within:?}:\n{state}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    /// Signals every replica at once, so their shutdown delays run side by side; each guard
    /// then waits for its own process (and HAProxy stops last).
    fn drop(&mut self) {
        for replica in &self.replicas {
            if let Some(process) = &replica.process {
                let _ = process.signal(libc::SIGTERM);
            }
        }
    }
}

/// The rendered configuration: each `@replicas <options>` line of `template` becomes a `server`
/// line per replica (`r1`, `r2`, ...) with those options, less the health-check ones when
/// `health_checks` is off.
pub fn haproxy_config(template: &str, replicas: &[SocketAddr], health_checks: bool) -> String {
    let mut out = String::new();
    for line in template.lines() {
        let Some(options) = line.trim_start().strip_prefix("@replicas") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let options = if health_checks {
            options.trim().to_owned()
        } else {
            without_checks(options)
        };
        for (index, addr) in replicas.iter().enumerate() {
            out.push_str(&format!(
                "{indent}server {} {addr} {options}\n",
                server_name(index)
            ));
        }
    }
    out
}

/// Server options without the health-check ones (`check`, and those that take a value).
fn without_checks(options: &str) -> String {
    let mut kept = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "check" => {}
            "check-proto" | "inter" | "fall" | "rise" | "fastinter" | "downinter" => {
                words.next();
            }
            _ => kept.push(word),
        }
    }
    kept.join(" ")
}

fn server_name(index: usize) -> String {
    format!("r{}", index + 1)
}

fn log_file(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn start_replica(
    options: &ClusterOptions,
    index: usize,
    replica: &Replica,
) -> Result<ChildProcess, String> {
    let log = log_file(&options.dir.join(format!("{}.log", server_name(index))))?;
    ChildProcess::spawn(
        Command::new(&options.server)
            .arg("--addr")
            .arg(replica.addr.to_string())
            .args(&options.server_args)
            .envs(options.server_env.iter().map(|(name, value)| (name, value)))
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(Stdio::from(log)),
    )
}

/// Waits until the replica answers `/readyz` with 200.
fn wait_until_ready(replica: &mut Replica, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if readyz_status(replica.addr) == Some(200) {
            return Ok(());
        }
        if let Some(process) = replica.process.as_mut() {
            process.check_running()?;
        }
        if Instant::now() > deadline {
            return Err(format!("{} is not ready after {within:?}", replica.addr));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The status of `GET /readyz` at `addr`, if it answers.
pub fn readyz_status(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `command` to HAProxy's admin socket and returns its answer.
fn admin_command(socket: &Path, command: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach HAProxy at {}: {e}", socket.display()))?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `server` lines of a rendered configuration.
    fn server_lines(config: &str) -> Vec<&str> {
        config
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with("server "))
            .collect()
    }

    #[test]
    fn renders_a_server_line_per_replica_in_each_backend() {
        let replicas: Vec<SocketAddr> = vec![
            "127.0.0.1:7001".parse().unwrap(),
            "127.0.0.1:7002".parse().unwrap(),
        ];
        let config = haproxy_config(HAPROXY_TEMPLATE, &replicas, true);
        assert!(!config.lines().any(|l| l.trim().starts_with("@replicas")));
        assert_eq!(
            server_lines(&config),
            [
                "server r1 127.0.0.1:7001 check inter 500ms fall 1 rise 2",
                "server r2 127.0.0.1:7002 check inter 500ms fall 1 rise 2",
                "server r1 127.0.0.1:7001 proto h2 check check-proto h1 inter 500ms fall 1 rise 2",
                "server r2 127.0.0.1:7002 proto h2 check check-proto h1 inter 500ms fall 1 rise 2",
            ]
        );
        let unchecked = haproxy_config(HAPROXY_TEMPLATE, &replicas[..1], false);
        assert_eq!(
            server_lines(&unchecked),
            [
                "server r1 127.0.0.1:7001",
                "server r1 127.0.0.1:7001 proto h2"
            ]
        );
    }
}
