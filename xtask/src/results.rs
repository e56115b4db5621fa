//! What the tests reported, test by test, and the list of tests a run must include.
//!
//! Every step's output is read as it passes: libtest's and wasm-bindgen-test's `test NAME ... ok`
//! lines (with cargo's `Running` lines saying which binary they come from) and the TAP lines of
//! node's test runner. Each result is named `step | binary | test`. At the end the names are held
//! against `xtask/expected-tests.txt`: a listed test that did not run (deleted, renamed, ignored,
//! filtered away, or lost with a binary that crashed or hung) fails the run by name, and so does
//! a test that ran but is not listed, so the list cannot fall behind. A failure that is not a
//! test's own (a build, a hang, an exit status) is a problem of its step; it never counts as a
//! test that ran.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// Reported but not run (`#[ignore]`, a TAP `# SKIP`).
    Ignored,
}

/// One step's results.
#[derive(Debug, Default)]
pub struct Results {
    /// Each test that reported, by its full name.
    pub tests: Vec<(String, Verdict)>,
    /// Why the step failed beyond its tests: set-up, a build, a hang, an exit status.
    pub problems: Vec<String>,
    /// Tests a filter left out, as the harnesses said.
    pub filtered: u64,
}

impl std::ops::AddAssign for Results {
    fn add_assign(&mut self, other: Self) {
        self.tests.extend(other.tests);
        self.problems.extend(other.problems);
        self.filtered += other.filtered;
    }
}

impl Results {
    /// A step that failed with `reason` before or beside its tests (printed at once).
    pub fn problem(reason: impl std::fmt::Display) -> Self {
        let mut results = Self::default();
        results.add_problem(reason);
        results
    }

    pub fn add_problem(&mut self, reason: impl std::fmt::Display) {
        eprintln!("xtask: FAILED: {reason}");
        self.problems.push(reason.to_string());
    }

    /// One named check (format, lint, a client's exit code) that passed or failed.
    pub fn check(name: String, passed: bool) -> Self {
        let verdict = if passed {
            Verdict::Passed
        } else {
            Verdict::Failed
        };
        Self {
            tests: vec![(name, verdict)],
            ..Self::default()
        }
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.tests.iter().filter(|(_, v)| *v == verdict).count()
    }
}

/// Reads a test harness's output one line at a time, naming each result `step | binary | test`.
pub struct OutputReader {
    step: String,
    binary: String,
    /// Inside the captured output of a failed test, which is the test's text, not results.
    in_captured: bool,
}

impl OutputReader {
    /// A reader for `step`, whose results come from `binary` until cargo names another.
    pub fn new(step: &str, binary: &str) -> Self {
        Self {
            step: step.to_owned(),
            binary: binary.to_owned(),
            in_captured: false,
        }
    }

    /// Adds what `line` reports to `results`.
    pub fn read(&mut self, line: &str, results: &mut Results) {
        let trimmed = line.trim();
        if let Some(running) = trimmed.strip_prefix("Running ") {
            // cargo: `Running tests/bounds.rs (target/debug/deps/bounds-0123abcd)`.
            if let Some(binary) = running
                .rsplit_once('(')
                .and_then(|(_, path)| path.strip_suffix(')'))
                .map(binary_name)
            {
                self.binary = binary;
                self.in_captured = false;
            }
            return;
        }
        if let Some(krate) = trimmed.strip_prefix("Doc-tests ") {
            self.binary = format!("{krate} (doc)");
            self.in_captured = false;
            return;
        }
        if line.starts_with("---- ")
            && (line.ends_with(" stdout ----") || line.ends_with(" stderr ----"))
        {
            self.in_captured = true;
            return;
        }
        if self.in_captured {
            // libtest lists the failed tests' names after their captured output.
            self.in_captured = line != "failures:";
            return;
        }
        if let Some(summary) = trimmed.strip_prefix("test result: ") {
            results.filtered += summary
                .split(';')
                .find_map(|part| part.trim().strip_suffix(" filtered out"))
                .and_then(|number| number.trim().parse::<u64>().ok())
                .unwrap_or(0);
            return;
        }
        if let Some((name, verdict)) = libtest_result(line).or_else(|| tap_result(line)) {
            results
                .tests
                .push((format!("{} | {} | {name}", self.step, self.binary), verdict));
        }
    }
}

/// Runs a test command for at most `within`, its output passed through and read for results,
/// named after `step` (and `binary` until cargo names one). A command that exits non-zero or
/// hangs is a problem of the step.
pub fn run_tests(step: &str, binary: &str, command: &mut Command, within: Duration) -> Results {
    let mut results = Results::default();
    let mut reader = OutputReader::new(step, binary);
    let status = crate::process::run_reading(command, within, |line| {
        println!("{line}");
        reader.read(line, &mut results);
    });
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => results.add_problem(format!(
            "{} failed ({status})",
            crate::process::describe(command)
        )),
        Err(error) => results.add_problem(error),
    }
    results
}

/// `bounds` from `target/debug/deps/bounds-0123abcd` (or `.../stub-0123abcd.wasm`).
fn binary_name(path: &str) -> String {
    let file = Path::new(path)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => file,
    }
}

/// `test NAME ... ok` (libtest, wasm-bindgen-test). A doc test's line number is dropped from its
/// name, so that editing the text above it does not rename it.
fn libtest_result(line: &str) -> Option<(String, Verdict)> {
    let (name, verdict) = line.strip_prefix("test ")?.rsplit_once(" ... ")?;
    let verdict = match verdict.trim() {
        "ok" => Verdict::Passed,
        "FAILED" => Verdict::Failed,
        other if other.starts_with("ignored") => Verdict::Ignored,
        _ => return None,
    };
    let name = match (name.find(" (line "), name.rfind(')')) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{}", &name[..start], &name[end + 1..])
        }
        _ => name.to_owned(),
    };
    Some((name, verdict))
}

/// A top-level TAP result of node's test runner: `ok 3 - name`, `not ok 4 - name`, with an
/// optional `# SKIP` or `# TODO` directive.
fn tap_result(line: &str) -> Option<(String, Verdict)> {
    let (failed, rest) = match line.strip_prefix("not ok ") {
        Some(rest) => (true, rest),
        None => (false, line.strip_prefix("ok ")?),
    };
    let (number, name) = rest.split_once(" - ")?;
    number.parse::<u64>().ok()?;
    let (name, directive) = match name.split_once(" # ") {
        Some((name, directive)) => (name, Some(directive.to_ascii_uppercase())),
        None => (name, None),
    };
    let verdict = if directive.is_some_and(|d| d.starts_with("SKIP") || d.starts_with("TODO")) {
        Verdict::Ignored
    } else if failed {
        Verdict::Failed
    } else {
        Verdict::Passed
    };
    Some((name.to_owned(), verdict))
}

/// The tests every run must include, one name a line (`#` starts a comment).
pub const EXPECTED: &str = "xtask/expected-tests.txt";

/// The names that ran in the last run, written so that the list can be brought up to date.
pub fn ran_path(root: &Path) -> PathBuf {
    root.join("target/xtask/tests-ran.txt")
}

/// How the run's results compare with the list.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Listed, but not run (with how it ended instead, if it reported at all).
    pub missing: Vec<String>,
    /// Ran, but not listed.
    pub unlisted: Vec<String>,
}

/// Holds the tests that ran against `expected` (the list's text). Names are counted: two tests of
/// one name (in two binaries of one name) must both run.
pub fn compare(expected: &str, tests: &[(String, Verdict)]) -> Comparison {
    let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
    for line in expected.lines().map(str::trim) {
        if !line.is_empty() && !line.starts_with('#') {
            *wanted.entry(line).or_default() += 1;
        }
    }
    let mut ignored: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unlisted = Vec::new();
    for (name, verdict) in tests {
        if *verdict == Verdict::Ignored {
            *ignored.entry(name).or_default() += 1;
            continue;
        }
        match wanted.get_mut(name.as_str()) {
            Some(count) if *count > 0 => *count -= 1,
            _ => unlisted.push(name.clone()),
        }
    }
    let mut missing = Vec::new();
    for (name, count) in wanted {
        for _ in 0..count.max(0) {
            let mut text = name.to_owned();
            if ignored.get(name).is_some_and(|n| *n > 0) {
                let _ = write!(text, " (ignored)");
                *ignored.get_mut(name).expect("present") -= 1;
            }
            missing.push(text);
        }
    }
    Comparison { missing, unlisted }
}

/// The names of the tests that ran, sorted, one a line: the list as this run would have it.
pub fn ran_list(tests: &[(String, Verdict)]) -> String {
    let mut names: Vec<&str> = tests
        .iter()
        .filter(|(_, verdict)| *verdict != Verdict::Ignored)
        .map(|(name, _)| name.as_str())
        .collect();
    names.sort_unstable();
    let mut text = String::new();
    for name in names {
        text.push_str(name);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(step: &str, output: &str) -> Results {
        let mut reader = OutputReader::new(step, "?");
        let mut results = Results::default();
        for line in output.lines() {
            reader.read(line, &mut results);
        }
        results
    }

    #[test]
    fn names_each_result_by_step_binary_and_test() {
        let results = read(
            "native",
            "     Running unittests src/lib.rs (target/debug/deps/grpc_serve-0a1b2c3d4e5f6071)\n\
             running 2 tests\n\
             test framing::tests::counts ... ok\n\
             test gate::tests::slow ... FAILED\n\
             \n\
             failures:\n\
             \n\
             ---- gate::tests::slow stdout ----\n\
             test result: ok. 9 passed; 0 failed;\n\
             test fake ... ok\n\
             \n\
             failures:\n\
             \x20   gate::tests::slow\n\
             \n\
             test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out\n\
             \x20    Running tests/stub.rs (target/wasm32-unknown-unknown/debug/deps/stub-00ff.wasm)\n\
             test stub::greets ... ignored, needs a server\n\
             \x20  Doc-tests grpc_serve\n\
             test serve/src/lib.rs - Serve::add (line 12) ... ok\n",
        );
        assert_eq!(
            results.tests,
            [
                (
                    "native | grpc_serve | framing::tests::counts".into(),
                    Verdict::Passed
                ),
                (
                    "native | grpc_serve | gate::tests::slow".into(),
                    Verdict::Failed
                ),
                ("native | stub | stub::greets".into(), Verdict::Ignored),
                (
                    "native | grpc_serve (doc) | serve/src/lib.rs - Serve::add".into(),
                    Verdict::Passed
                ),
            ]
        );
        assert_eq!(results.filtered, 3);
    }

    #[test]
    fn reads_node_tap_results_at_the_top_level_only() {
        let results = read(
            "interop",
            "TAP version 13\n\
             # Subtest: says hello\n\
             \x20   ok 1 - inner step\n\
             ok 1 - says hello\n\
             not ok 2 - streams\n\
             ok 3 - later # SKIP not here\n\
             # pass 1\n",
        );
        assert_eq!(
            results.tests,
            [
                ("interop | ? | says hello".into(), Verdict::Passed),
                ("interop | ? | streams".into(), Verdict::Failed),
                ("interop | ? | later".into(), Verdict::Ignored),
            ]
        );
    }

    #[test]
    fn a_listed_test_that_did_not_run_is_missing_and_an_unlisted_one_is_named() {
        let expected = "# the list\nnative | a | one\nnative | a | two\nnative | b | same\nnative | b | same\n";
        let ran = [
            ("native | a | one".to_owned(), Verdict::Passed),
            ("native | a | two".to_owned(), Verdict::Ignored),
            ("native | b | same".to_owned(), Verdict::Failed),
            ("native | c | new".to_owned(), Verdict::Passed),
        ];
        assert_eq!(
            compare(expected, &ran),
            Comparison {
                missing: vec![
                    "native | a | two (ignored)".into(),
                    "native | b | same".into()
                ],
                unlisted: vec!["native | c | new".into()],
            }
        );
        assert_eq!(
            ran_list(&ran),
            "native | a | one\nnative | b | same\nnative | c | new\n"
        );
    }
}
