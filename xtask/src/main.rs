//! `cargo xtask`: the project's two commands, and the steps they are made of.
//!
//! - `cargo xtask run [-- SERVER ARGS]`: installs what is missing, builds the page in release and
//!   serves it with the Greeter at http://127.0.0.1:50051/.
//! - `cargo xtask test`: installs what is missing (browsers and drivers too), then runs the format
//!   and lint checks and every test: native, wasm in headless Chromium and Firefox, the interop
//!   suite, end to end.
//! - `cargo xtask interop`: the interop suite alone (third-party clients and servers, a matrix).
//! - `cargo xtask bench`: the benchmark table (BENCHMARKS.md).
//! - `cargo xtask cluster [--replicas N] [--port P] [--roll]`: replicas behind HAProxy.
//!
//! Each is safe to repeat: installs are skipped when the pinned version is already there.

mod bench;
mod cluster;
mod interop;
mod lint;
mod page;
mod process;
mod results;
mod setup;
mod test;
mod wasm;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Set-up and orchestration for the Greeter"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up, build the page in release and run the server (arguments after `--` go to it).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        server_args: Vec<String>,
    },
    /// Set up everything the tests need, then run the checks and every test.
    Test,
    /// Measure the server and the page against peers and the ceiling; writes BENCHMARKS.md.
    Bench,
    /// Run the interop suite alone: third-party clients and servers against ours; prints the matrix.
    Interop,
    /// Install the tools the page needs (with `--tests`, also everything the tests need).
    Setup {
        #[arg(long)]
        tests: bool,
    },
    /// Build the page in release into dist/ and print its size.
    BuildPage,
    /// Run replicas of the release server behind HAProxy (deploy/haproxy.cfg) until Ctrl-C.
    Cluster {
        /// How many replicas.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// HAProxy's front port on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Once all are up, restart the replicas one at a time, each after the previous one is
        /// back in rotation.
        #[arg(long)]
        roll: bool,
    },
}

/// What every step fails with: a message for the person at the terminal.
pub type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run { server_args } => run(&server_args),
        Command::Test => test::run(),
        Command::Bench => bench::run(),
        Command::Interop => setup::tools(true).and_then(|tools| {
            let results = interop::run(&tools, &workspace_root());
            match results.count(results::Verdict::Failed) + results.problems.len() {
                0 => Ok(()),
                failed => Err(format!("{failed} interop checks failed")),
            }
        }),
        Command::Setup { tests } => setup::tools(tests).map(|_| ()),
        Command::BuildPage => setup::tools(false).and_then(|tools| page::build_release(&tools)),
        Command::Cluster {
            replicas,
            port,
            roll,
        } => cluster::run(replicas, port, roll),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask run`: the app, from a fresh clone, in one command.
fn run(server_args: &[String]) -> Result {
    let tools = setup::tools(false)?;
    page::build_release(&tools)?;
    // The release build embeds the page just built: the server binary alone is the whole app.
    println!("xtask: starting the server; open the URL it prints (Ctrl-C stops it)");
    let mut command = tools.command("cargo");
    command
        .current_dir(workspace_root())
        .args(["run", "--release", "--quiet", "-p", "greeter-server", "--"])
        .args(server_args);
    // No load balancer watches this one server: Ctrl-C drains at once, unless told otherwise.
    if std::env::var_os("GREETER_SHUTDOWN_DELAY").is_none() {
        command.env("GREETER_SHUTDOWN_DELAY", "0s");
    }
    process::exec(command)
}

/// The repository's root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}
