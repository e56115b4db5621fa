//! Child processes, each bounded in time: run to completion, run while reading its output line by
//! line (the tests' results), or run in the background under a guard that stops it when dropped.
//!
//! A command runs in a session of its own. When its time is up, or when it has exited, every
//! process still in that session is killed, whatever process group it made for itself (`trunk
//! serve`, a browser, a client started by a test): nothing a step started outlives it, and no
//! grandchild holding the output pipe can keep a reader waiting. One run may also set an overall
//! budget ([`set_budget`]); every command's time is cut to what is left of it.

use std::{
    io::{BufRead, BufReader},
    process::{Command, ExitStatus, Stdio},
    sync::{mpsc, Mutex},
    thread,
    time::{Duration, Instant},
};

pub use test_support::process::{describe, free_port, ChildProcess};

use crate::Result;

/// How long a command that reports nothing of its own may run (an install, a build).
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(30 * 60);

/// How long the output may stay open after the command has exited (a process it left behind that
/// still holds the pipe) before that process is stopped.
const OUTPUT_GRACE: Duration = Duration::from_secs(10);

/// When the run as a whole must end, if it has a budget.
static BUDGET: Mutex<Option<Instant>> = Mutex::new(None);

/// Ends every command after `deadline`, whatever its own bound: the run's overall budget.
pub fn set_budget(deadline: Instant) {
    *BUDGET.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
}

/// `within`, cut to what is left of the run's budget.
fn bounded(within: Duration) -> Duration {
    match *BUDGET.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(deadline) => within.min(deadline.saturating_duration_since(Instant::now())),
        None => within,
    }
}

/// Runs `command` to completion within [`DEFAULT_WITHIN`], output to the terminal; fails unless
/// it exits 0.
pub fn run(command: &mut Command) -> Result {
    run_within(command, DEFAULT_WITHIN)
}

/// Runs `command` to completion within `within`, output to the terminal; fails unless it exits 0.
pub fn run_within(command: &mut Command, within: Duration) -> Result {
    let status = run_reading(command, within, |line| println!("{line}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", describe(command)))
    }
}

/// Runs `command` and returns its standard output, or `None` when it cannot start, fails or is
/// still running after a minute.
pub fn output(command: &mut Command) -> Option<String> {
    let output = output_within(command.stderr(Stdio::null()), Duration::from_secs(60)).ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `command` for at most `within` and returns what it printed; one still running then is
/// stopped, with its whole session, and is an error.
pub fn output_within(command: &mut Command, within: Duration) -> Result<std::process::Output> {
    let name = describe(command);
    let within = bounded(within);
    let child = in_own_session(command.stdin(Stdio::null()).stdout(Stdio::piped()))
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let session = child.id() as libc::pid_t;
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let outcome = finished.recv_timeout(within);
    let left = stop_session(session);
    match outcome {
        Ok(output) => output.map_err(|e| format!("{name}: {e}")),
        Err(_) => {
            // The reader thread ends once every holder of its pipes is gone.
            let _ = finished.recv_timeout(OUTPUT_GRACE);
            Err(format!(
                "{name} was still running after {within:?}; it and {} other processes of its \
                 session were stopped",
                left.saturating_sub(1)
            ))
        }
    }
}

/// Runs `command` for at most `within` with its standard output and error merged into one pipe,
/// each line handed to `on_line` as it comes. Returns the exit status; a command still running at
/// `within` is stopped, with everything in its session, and is an error. Once the command has
/// exited, whatever it left running is stopped too, so the output always ends.
pub fn run_reading(
    command: &mut Command,
    within: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<ExitStatus> {
    let name = describe(command);
    let within = bounded(within);
    if within.is_zero() {
        return Err(format!(
            "{name} was not started: the run's time budget is spent"
        ));
    }
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let writer_too = writer
        .try_clone()
        .map_err(|e| format!("cannot make a pipe: {e}"))?;
    let spawned = in_own_session(command.stdin(Stdio::null()).stdout(writer))
        .stderr(writer_too)
        .spawn();
    // The command keeps its copies of the pipe's write end until they are replaced: without
    // this, the output would never end.
    command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let mut child = spawned.map_err(|e| format!("cannot start {name}: {e}"))?;
    let session = child.id() as libc::pid_t;

    let (send, lines) = mpsc::channel::<String>();
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        // Bytes, not `lines()`: output that is not UTF-8 must not stop the reading (and leave the
        // writer blocked on a full pipe).
        while reader
            .read_until(b'\n', &mut line)
            .is_ok_and(|read| read > 0)
        {
            let text = String::from_utf8_lossy(&line);
            if send
                .send(text.trim_end_matches(['\n', '\r']).to_owned())
                .is_err()
            {
                break;
            }
            line.clear();
        }
    });

    let deadline = Instant::now() + within;
    let mut status = None;
    let mut output_deadline = deadline;
    loop {
        let wait = output_deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        let output_ended = match lines.recv_timeout(wait) {
            Ok(line) => {
                on_line(&line);
                false
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        };
        if status.is_none() {
            if let Ok(Some(exited)) = child.try_wait() {
                status = Some(exited);
                output_deadline = Instant::now() + OUTPUT_GRACE;
            }
        }
        if (output_ended && status.is_some()) || Instant::now() >= output_deadline {
            break;
        }
        if output_ended {
            // The command closed its output but runs on: wait for its exit alone.
            thread::sleep(wait);
        }
    }
    let left = stop_session(session);
    if status.is_none() {
        let _ = child.wait();
    }
    // What the stopped processes had written before they went.
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
        on_line(&line);
    }
    match status {
        Some(status) => {
            if left > 0 {
                on_line(&format!(
                    "xtask: stopped what {name} left running ({left} processes)"
                ));
            }
            Ok(status)
        }
        None => Err(format!(
            "{name} was still running after {within:?}; it and {} other processes of its \
             session were stopped",
            left.saturating_sub(1)
        )),
    }
}

/// `command`, set to start a session of its own (and so a process group of its own, with no
/// controlling terminal): [`stop_session`] can then find every process it starts.
fn in_own_session(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid(2) is async-signal-safe, and the forked child is not a group leader, so it
    // cannot fail.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        })
    }
}

/// Kills every live process of `session` (the session of a child started by
/// [`in_own_session`]), over and over until none is left (one may fork while being found), and
/// returns how many it killed.
fn stop_session(session: libc::pid_t) -> usize {
    let mut killed = 0;
    for _ in 0..20 {
        let members = session_members(session);
        if members.is_empty() {
            break;
        }
        for pid in members {
            // SAFETY: kill(2) on a process of the session this module created.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    killed
}

/// The live (not zombie) processes whose session is `session`, from /proc.
fn session_members(session: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()?
                .parse::<libc::pid_t>()
                .ok()
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // After the command's name: state, ppid, pgrp, session.
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or("", |(_, rest)| rest)
                    .split_whitespace()
                    .collect();
                fields.first() != Some(&"Z")
                    && fields.get(3).and_then(|field| field.parse().ok()) == Some(session)
            })
        })
        .collect()
}

/// Replaces this process with `command` (so Ctrl-C and SIGTERM reach it directly).
pub fn exec(mut command: Command) -> Result {
    use std::os::unix::process::CommandExt;
    let error = command.exec();
    Err(format!("cannot start {}: {error}", describe(&command)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(command: &mut Command, within: Duration) -> (Vec<String>, Result<ExitStatus>) {
        let mut lines = Vec::new();
        let status = run_reading(command, within, |line| lines.push(line.to_owned()));
        (lines, status)
    }

    fn is_live(pid: libc::pid_t) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn reads_both_streams_and_returns_the_status() {
        let (lines, status) = lines_of(
            Command::new("sh").args(["-c", "echo out; echo err >&2; printf 'a\\377b\\n'; exit 3"]),
            Duration::from_secs(10),
        );
        assert_eq!(lines, ["out", "err", "a\u{fffd}b"]);
        assert_eq!(status.unwrap().code(), Some(3));
    }

    #[test]
    fn a_hang_in_a_grandchild_of_its_own_group_is_stopped() {
        // The grandchild makes a process group of its own (as `trunk serve` and connect-es do)
        // and keeps the output pipe open: only stopping the whole session ends it.
        let started = Instant::now();
        let (lines, status) = lines_of(
            Command::new("sh").args([
                "-c",
                "echo before; python3 -c 'import os, time; os.setpgid(0, 0); \
                 print(os.getpid(), flush=True); time.sleep(60); print(\"late\")' & wait",
            ]),
            Duration::from_secs(1),
        );
        let error = status.unwrap_err();
        assert!(error.contains("still running after 1s"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(lines.first().map(String::as_str), Some("before"));
        let grandchild: libc::pid_t = lines[1].parse().unwrap();
        assert!(!is_live(grandchild), "{grandchild} survived");
        assert!(!lines.iter().any(|line| line == "late"), "{lines:?}");
    }

    #[test]
    fn what_a_command_leaves_running_is_stopped() {
        let pid_file = std::env::temp_dir().join(format!("xtask-left-{}", std::process::id()));
        let script = format!(
            "sh -c 'exec sleep 60' > /dev/null 2>&1 & echo $! > {}",
            pid_file.display()
        );
        let started = Instant::now();
        let (lines, status) = lines_of(
            Command::new("sh").args(["-c", &script]),
            Duration::from_secs(30),
        );
        assert!(status.unwrap().success());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            lines
                .iter()
                .any(|line| line.contains("left running (1 processes)")),
            "{lines:?}"
        );
        let pid: libc::pid_t = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_file(&pid_file).unwrap();
        assert!(!is_live(pid), "sleep {pid} survived");
    }

    #[test]
    fn output_within_returns_the_output_or_stops_a_hang() {
        let output = output_within(
            Command::new("sh").args(["-c", "echo out; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            (output.stdout.as_slice(), output.status.code()),
            (&b"out\n"[..], Some(3))
        );

        let started = Instant::now();
        let hung = output_within(
            Command::new("sh").args([
                "-c",
                "echo out; python3 -c 'import os, time; os.setpgid(0, 0); time.sleep(30)' & wait",
            ]),
            Duration::from_secs(1),
        );
        assert!(hung.unwrap_err().contains("still running after 1s"));
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}
