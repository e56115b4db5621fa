//! Child processes: run to completion, run while counting test results, or run in the background
//! under a guard that stops the whole process group, by its id, when dropped.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

pub use test_support::process::{describe, free_port, ChildProcess};

use crate::Result;

/// Runs `command` to completion, output to the terminal; fails unless it exits 0.
pub fn run(command: &mut Command) -> Result {
    let status = command
        .status()
        .map_err(|e| format!("cannot start {}: {e}", describe(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", describe(command)))
    }
}

/// Runs `command` and returns its standard output, or `None` when it cannot start or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let output = command.stderr(Stdio::null()).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `command` for at most `within` and returns what it printed; one still running then is
/// stopped, with its whole process group, and is an error.
pub fn output_within(command: &mut Command, within: Duration) -> Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    let name = describe(command);
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let group = child.id() as libc::pid_t;
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(within) {
        Ok(output) => output.map_err(|e| format!("{name}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) with a negative pid signals the process group created above.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            Err(format!("{name} was still running after {within:?}"))
        }
    }
}

/// Counts of tests, as a Rust test harness reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    /// Tests marked `#[ignore]`: not run, and shown in the summary so none hides there.
    pub ignored: u64,
    /// Tests a filter left out.
    pub filtered: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
        self.filtered += other.filtered;
    }
}

impl Tally {
    /// One passed check, or one failed.
    pub fn check(passed: bool) -> Self {
        Self {
            passed: u64::from(passed),
            failed: u64::from(!passed),
            ..Self::default()
        }
    }

    /// One failure that is not a test's: a set-up or build step, a hang, too few tests. The
    /// reason is printed, so the summary's count can be traced to it.
    pub fn failure(reason: impl std::fmt::Display) -> Self {
        eprintln!("xtask: FAILED: {reason}");
        Self::check(false)
    }

    /// Tests that ran, passed or failed.
    pub fn ran(&self) -> u64 {
        self.passed + self.failed
    }

    /// This tally, with one more failure if `step` ran fewer than `at_least` tests: a step whose
    /// tests were renamed, filtered away or never built must not pass by running nothing.
    pub fn at_least(mut self, step: &str, at_least: u64) -> Self {
        if self.ran() < at_least {
            self += Self::failure(format!(
                "{step} ran {} tests, expected at least {at_least}",
                self.ran()
            ));
        }
        self
    }

    /// Reads `test result: ok. 5 passed; 0 failed; 1 ignored; ...` (libtest and
    /// wasm-bindgen-test alike), and the `# pass N` and `# fail N` lines of node's test runner.
    pub fn parse_line(line: &str) -> Option<Self> {
        if let Some(count) = line.strip_prefix("# pass ") {
            return count.trim().parse().ok().map(|passed| Self {
                passed,
                ..Self::default()
            });
        }
        if let Some(count) = line.strip_prefix("# fail ") {
            return count.trim().parse().ok().map(|failed| Self {
                failed,
                ..Self::default()
            });
        }
        let rest = line.trim().strip_prefix("test result: ")?;
        let count = |word: &str| -> Option<u64> {
            rest.split(';')
                .find_map(|part| part.trim().strip_suffix(word))
                .and_then(|number| number.trim().rsplit(' ').next()?.parse().ok())
        };
        Some(Self {
            passed: count(" passed")?,
            failed: count(" failed")?,
            ignored: count(" ignored").unwrap_or(0),
            filtered: count(" filtered out").unwrap_or(0),
        })
    }
}

/// Runs a test command for at most `within`, passing its output through, and adds up the results
/// it reports. A command that exits non-zero without reporting a failure counts as one failure,
/// and so does one still running at `within`, which is then stopped with its whole process group:
/// a hang is a counted failure, never a missing summary.
pub fn run_tests(command: &mut Command, within: Duration) -> Tally {
    use std::os::unix::process::CommandExt;
    let name = describe(command);
    let mut child = match command.stdout(Stdio::piped()).process_group(0).spawn() {
        Ok(child) => child,
        Err(e) => return Tally::failure(format!("cannot start {name}: {e}")),
    };
    let stdout = child.stdout.take().expect("piped");
    let reader = thread::spawn(move || {
        let mut tally = Tally::default();
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("{line}");
            if let Some(result) = Tally::parse_line(&line) {
                tally += result;
            }
        }
        tally
    });
    let deadline = Instant::now() + within;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(200)),
            Ok(None) | Err(_) => break None,
        }
    };
    if status.is_none() {
        let group = child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group created above.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = child.wait();
    }
    let mut tally = reader.join().unwrap_or_default();
    match status {
        None => tally += Tally::failure(format!("{name} was still running after {within:?}")),
        Some(status) if !status.success() && tally.failed == 0 => {
            tally += Tally::failure(format!("{name} failed ({status})"));
        }
        Some(_) => {}
    }
    tally
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

    #[test]
    fn reads_libtest_and_wasm_bindgen_test_summaries() {
        assert_eq!(
            Tally::parse_line(
                "test result: ok. 9 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some(Tally { passed: 9, ..Tally::default() })
        );
        assert_eq!(
            Tally::parse_line("test result: FAILED. 3 passed; 2 failed; 4 ignored; 0 measured; 7 filtered out; finished in 0.46s"),
            Some(Tally { passed: 3, failed: 2, ignored: 4, filtered: 7 })
        );
        assert_eq!(Tally::parse_line("running 3 tests"), None);
        assert_eq!(
            Tally::parse_line("# pass 4"),
            Some(Tally {
                passed: 4,
                ..Tally::default()
            })
        );
        assert_eq!(
            Tally::parse_line("# fail 1"),
            Some(Tally {
                failed: 1,
                ..Tally::default()
            })
        );
    }

    #[test]
    fn a_step_below_its_floor_fails() {
        let ran = Tally {
            passed: 3,
            ..Tally::default()
        };
        assert_eq!(ran.at_least("step", 3), ran);
        assert_eq!(ran.at_least("step", 4).failed, 1);
        assert_eq!(Tally::default().at_least("step", 1).failed, 1);
    }

    #[test]
    fn a_hang_is_a_counted_failure() {
        let started = Instant::now();
        let tally = run_tests(
            Command::new("sh").args([
                "-c",
                "echo 'test result: ok. 2 passed; 0 failed;'; sleep 30",
            ]),
            Duration::from_secs(1),
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!((tally.passed, tally.failed), (2, 1));
    }

    #[test]
    fn a_failed_exit_without_a_failed_test_counts_once() {
        let tally = run_tests(
            Command::new("sh").args(["-c", "echo 'test result: ok. 1 passed; 0 failed;'; exit 3"]),
            Duration::from_secs(10),
        );
        assert_eq!((tally.passed, tally.failed), (1, 1));
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
            Command::new("sh").args(["-c", "echo out; sleep 30"]),
            Duration::from_secs(1),
        );
        assert!(hung.unwrap_err().contains("still running after 1s"));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
