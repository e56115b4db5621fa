//! Instructions per call, counted by callgrind: what a server's path costs, in a figure the
//! machine's noise cannot move. Throughput on two shared cores swings by a fifth between runs;
//! callgrind counts the same instructions for the same binary and load, whatever else runs.
//!
//! Each server runs under callgrind, takes a warm-up of calls (connections opened, caches and
//! pools filled), then its counters are zeroed, it serves exactly [`COUNTED_CALLS`] calls from
//! h2load with the load's usual shape, and its counters are dumped. The count is user-space
//! instructions of the whole process (hyper, tokio, the allocator included); the kernel's share,
//! the same system calls per call for every server here, is not in it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{h2load_command, request_count, server::Compared, Bodies, Protocol};
use crate::{process, Result};

/// Calls before the counters are zeroed.
const WARM_UP_CALLS: u64 = 300;
/// Calls counted.
pub(super) const COUNTED_CALLS: u64 = 5_000;

/// One server's count over one protocol.
pub(super) struct Instructions {
    pub(super) server: &'static str,
    pub(super) protocol: Protocol,
    pub(super) per_call: f64,
}

/// Starts `server` from `release` under callgrind and counts the instructions it spends per
/// call of `protocol`.
pub(super) fn per_call(
    root: &Path,
    release: &Path,
    server: &Compared,
    protocol: Protocol,
    body: &Bodies,
) -> Result<Instructions> {
    let name = server.name;
    let program = server.program(release);
    let dir = root.join("target/bench/callgrind");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = dir.join(format!("{}.out", program_stem(&program)));
    let dump = PathBuf::from(format!("{}.1", out.display()));
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&dump);
    let mut command = Command::new("valgrind");
    command
        .args(["--tool=callgrind", "--separate-threads=no"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&program);
    let server = server.start_with(&mut command)?;
    let target = server.target();
    let calls = |count: u64| -> Result {
        let mut load = h2load_command(&target, protocol, body);
        load.arg("-n").arg(count.to_string());
        let output = process::output(&mut load)
            .ok_or_else(|| format!("h2load against {name} under callgrind failed"))?;
        match request_count(&output, "succeeded") {
            succeeded if succeeded == count => Ok(()),
            _ => Err(format!(
                "{name} under callgrind: not every one of {count} calls succeeded:\n{output}"
            )),
        }
    };
    let control = |option: &str| {
        process::run(
            Command::new("callgrind_control")
                .arg(option)
                .arg(server.process.pid().to_string()),
        )
    };
    calls(WARM_UP_CALLS)?;
    control("-z")?;
    calls(COUNTED_CALLS)?;
    control("-d")?;
    drop(server);
    // "summary: N" (or "totals: N"): the instructions executed since the counters were zeroed.
    let text = std::fs::read_to_string(&dump)
        .map_err(|e| format!("no callgrind dump at {}: {e}", dump.display()))?;
    let total = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
        })
        .and_then(|value| value.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no instruction total in {}", dump.display()))?;
    Ok(Instructions {
        server: name,
        protocol,
        per_call: total as f64 / COUNTED_CALLS as f64,
    })
}

fn program_stem(program: &Path) -> String {
    program
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "server".to_owned())
}
