//! A server under measurement: started on a free loopback port, its memory read from `/proc`,
//! stopped (with its process group) when dropped.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    process::{free_port, ChildProcess},
    Result,
};

/// What a load generator loads: a server (or a balancer in front of servers) on a loopback port.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub(super) name: &'static str,
    pub(super) port: u16,
}

impl Target {
    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// One of the Rust servers built in `target/release` that the benchmark compares: how it is
/// named in the tables, and how it is started, so that the timed rows and the counted ones
/// start it the same way.
pub(super) struct Compared {
    pub(super) name: &'static str,
    program: &'static str,
    environment: &'static [(&'static str, &'static str)],
    args: fn(u16) -> Vec<String>,
}

/// Our server, with its defaults but no log line per call.
pub(super) const GREETER_SERVER: Compared = Compared {
    name: "greeter-server",
    program: "greeter-server",
    environment: &[("RUST_LOG", "warn")],
    args: |port| vec!["--addr".into(), format!("127.0.0.1:{port}")],
};

pub(super) const BARE_TONIC: Compared = Compared {
    name: "bare tonic + tonic-web",
    program: "bare_tonic",
    environment: &[],
    args: |port| vec![format!("127.0.0.1:{port}")],
};

pub(super) const CONNECT_RUST: Compared = Compared {
    name: "connect-rust (connectrpc 0.9)",
    program: "connect_rust",
    environment: &[],
    args: |port| vec![port.to_string()],
};

impl Compared {
    /// Its binary in `release`, the directory of the release build.
    pub(super) fn program(&self, release: &Path) -> PathBuf {
        release.join(self.program)
    }

    /// Starts it from `release`.
    pub(super) fn start(&self, release: &Path) -> Result<Server> {
        self.start_with(&mut Command::new(self.program(release)))
    }

    /// Starts `command`, which runs [`Compared::program`] (itself, or under a tool such as
    /// valgrind), with the server's environment and arguments added.
    pub(super) fn start_with(&self, command: &mut Command) -> Result<Server> {
        command.envs(self.environment.iter().copied());
        Server::start(self.name, command, self.args)
    }
}

/// A server under measurement, on a free loopback port; stopped when dropped.
pub(super) struct Server {
    pub(super) name: &'static str,
    pub(super) port: u16,
    pub(super) url: String,
    pub(super) process: ChildProcess,
}

impl Server {
    /// Starts `command` with the arguments `args(port)` gives, and `INTEROP_PORT` and
    /// `GREETER_ADDR` set for the servers that read those instead (and no shutdown delay).
    pub(super) fn start(
        name: &'static str,
        command: &mut Command,
        args: impl FnOnce(u16) -> Vec<String>,
    ) -> Result<Self> {
        let port = free_port()?;
        command
            .args(args(port))
            .env("INTEROP_PORT", port.to_string())
            .env("GREETER_ADDR", format!("127.0.0.1:{port}"))
            .env("GREETER_SHUTDOWN_DELAY", "0s");
        let mut process = ChildProcess::spawn(command)?;
        process.wait_for_port(port, Duration::from_secs(30))?;
        Ok(Self {
            name,
            port,
            url: format!("http://127.0.0.1:{port}"),
            process,
        })
    }

    pub(super) fn target(&self) -> Target {
        Target {
            name: self.name,
            port: self.port,
        }
    }

    /// The server's resident set size now, and at its peak, in KiB.
    pub(super) fn rss_kib(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .map_err(|e| format!("cannot read {}'s memory: {e}", self.name))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("no {name} in /proc/PID/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}
