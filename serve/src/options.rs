//! The serving stack's settings, as command-line flags with an environment-variable fallback.
//!
//! [`Options`] is a set of clap arguments an application flattens into its own command line, next
//! to flags of its own; [`parse`] reads that command line with every flag also read from
//! `{PREFIX}_{FLAG}` in the environment (`--max-connections` from `APP_MAX_CONNECTIONS` for the
//! prefix `APP`), so no variable name is written twice. Each default is written once, in its
//! attribute: [`Options::new`] is the command line with no flags.
//!
//! Every value is checked while parsing, so a bad one stops start-up with a message that names the
//! flag instead of failing later at the first request.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{CommandFactory, FromArgMatches, Parser};
use http::HeaderValue;

/// The default address: loopback, so reachable from this machine only unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// The largest gRPC message by default, either way: tonic's own default decoding limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 4 * 1024 * 1024;

/// How the server is run: its address, TLS, page, origins and every limit.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Address to listen on. Native gRPC (HTTP/2), gRPC-Web (HTTP/1.1 and HTTP/2), WebSockets and
    /// the page all share it.
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// Serve the page from this directory (trunk's `dist`) instead of the copy embedded in the
    /// binary. Without it: the embedded page of a release build, else `./dist`.
    #[arg(long)]
    pub static_dir: Option<PathBuf>,

    /// An origin (`scheme://host[:port]`) allowed to call the API from a page served elsewhere.
    /// Repeat the flag, or separate origins with commas in the environment variable.
    #[arg(
        long = "allow-origin",
        value_delimiter = ',',
        value_name = "ORIGIN",
        value_parser = parse_origin
    )]
    pub allow_origins: Vec<HeaderValue>,

    /// A host name the server answers for, beside the loopback names a loopback-bound server
    /// always answers (any port). A server bound to another address answers only the names
    /// given, or any name when none is given. Other hosts get 421: the defence against DNS
    /// rebinding. Repeat the flag, or separate names with commas in the environment variable.
    #[arg(
        long = "allowed-host",
        value_delimiter = ',',
        value_name = "HOST",
        value_parser = crate::host::parse_host_name
    )]
    pub allowed_hosts: Vec<String>,

    /// Serve TLS with this certificate chain (PEM). Needs --tls-key. HTTP/2 and HTTP/1.1 are
    /// offered by ALPN; gRPC, gRPC-Web, WebSockets (wss) and the page all work over it.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// On SIGINT or SIGTERM: how long to go on serving while saying it is not ready (`/readyz`
    /// 503, health NOT_SERVING), so load balancers stop sending calls before the drain begins.
    /// `0s` drains at once.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,

    /// Once the drain begins (after --shutdown-delay): how long open calls may take to finish
    /// before their connections are closed. Streams end at once with UNAVAILABLE; unary calls in
    /// flight complete.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// The largest gRPC message accepted or sent, in bytes (both directions, every transport).
    /// A larger one ends its call with OUT_OF_RANGE.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_SIZE,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_message_size: u32,

    /// Calls in progress at once, streams included, across all connections. Beyond it, new calls
    /// fail at once with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,

    /// Concurrent HTTP/2 streams one connection may open (advertised to the client).
    #[arg(long, default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,

    /// Open connections at once; beyond it, new connections wait in the listen backlog.
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How long a client may take to send a request's headers before the connection is closed:
    /// the defence against slow-header (slowloris) clients. It also bounds a new connection's wait
    /// for its first request (TLS handshake included, HTTP/1.1 and HTTP/2 alike) and a WebSocket
    /// call's wait for its header block.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// How long a connection may stay open with no request in flight once it has served one;
    /// then it is closed (HTTP/2 with a GOAWAY).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// The longest any call may run, whatever deadline the client asks for (none by default).
    /// When it passes, the stack ends the call with DEADLINE_EXCEEDED, streams included.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub max_call_duration: Option<Duration>,

    /// How long a request message may take to arrive: from its first byte to its last, and, for
    /// a method that takes one message (unary, server streaming), from the call's start. Past
    /// it the call ends with DEADLINE_EXCEEDED, so a client that stops sending mid-message holds
    /// no call. Between the messages of a client stream there is no such limit.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_message_timeout: Duration,

    /// Log format: `text` for people, `json` for log collectors. RUST_LOG sets the level
    /// (default: info).
    #[arg(long, default_value = "text")]
    pub log_format: LogFormat,

    /// Development mode: also allow any loopback origin (http://localhost:PORT,
    /// http://127.0.0.1:PORT, `http://[::1]:PORT`), as used by `trunk serve` and wasm-bindgen-test.
    #[arg(long)]
    pub dev: bool,
}

impl Options {
    /// The options for `addr` with every other setting at its default.
    pub fn new(addr: SocketAddr) -> Self {
        /// A command line of the options alone, parsed from no flags: the defaults.
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            options: Options,
        }
        let mut options = Defaults::try_parse_from(["defaults"])
            .expect("the defaults parse")
            .options;
        options.addr = addr;
        options
    }
}

/// `T`'s command line with every flag also read from the environment as `{env_prefix}_{FLAG}`:
/// the flag's name in capitals with `_` for `-` (a repeatable flag's in the plural, as its field
/// is named: `--allow-origin` from `{env_prefix}_ALLOW_ORIGINS`).
pub fn command<T: CommandFactory>(env_prefix: &str) -> clap::Command {
    T::command().mut_args(|arg| {
        if matches!(arg.get_id().as_str(), "help" | "version") {
            return arg;
        }
        let variable = format!("{env_prefix}_{}", arg.get_id().as_str().to_uppercase());
        arg.env(variable)
    })
}

/// Parses `T` from this process's command line and environment (see [`command`]); a bad value
/// prints a message naming its flag and exits with code 2, as clap does.
pub fn parse<T: CommandFactory + FromArgMatches>(env_prefix: &str) -> T {
    let matches = command::<T>(env_prefix).get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Parses `T` from `args` and this process's environment (see [`command`]).
pub fn try_parse_from<T, I>(env_prefix: &str, args: I) -> Result<T, clap::Error>
where
    T: CommandFactory + FromArgMatches,
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString> + Clone,
{
    let matches = command::<T>(env_prefix).try_get_matches_from(args)?;
    T::from_arg_matches(&matches)
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Accepts exactly what a browser sends in an `Origin` header: a scheme, a host and an optional
/// port, with no path, query or trailing slash.
fn parse_origin(value: &str) -> Result<HeaderValue, String> {
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| format!("`{value}` is not an origin: expected scheme://host[:port]"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("`{value}`: the scheme must be http or https"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
        return Err(format!(
            "`{value}` is not an origin: expected scheme://host[:port] with no path or wildcard"
        ));
    }
    HeaderValue::from_str(value).map_err(|_| format!("`{value}` is not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An application's command line: the options and nothing else.
    #[derive(Debug, Parser)]
    struct App {
        #[command(flatten)]
        options: Options,
    }

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        try_parse_from::<App, _>("APP", std::iter::once("app").chain(args.iter().copied()))
            .map(|app| app.options)
    }

    #[test]
    fn defaults_to_loopback() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.addr, DEFAULT_ADDR.parse().unwrap());
        assert!(!options.dev);
        assert!(options.allow_origins.is_empty());
    }

    #[test]
    fn new_is_the_command_line_with_its_defaults() {
        let parsed = parse(&["--addr", "127.0.0.1:4000"]).unwrap();
        // Every field, through Debug.
        assert_eq!(
            format!("{:?}", Options::new("127.0.0.1:4000".parse().unwrap())),
            format!("{parsed:?}")
        );
    }

    #[test]
    fn every_flag_has_its_environment_variable() {
        let command = command::<App>("APP");
        let flags: Vec<_> = command
            .get_arguments()
            .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
            .collect();
        assert!(flags.len() >= 15, "{} flags", flags.len());
        for arg in flags {
            let long = arg.get_long().expect("every setting is a long flag");
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{long} has no environment variable"));
            let mut expected = format!("APP_{}", long.to_uppercase().replace('-', "_"));
            // A repeatable flag names its variable in the plural; no other flag does.
            if matches!(arg.get_action(), clap::ArgAction::Append) {
                expected.push('S');
            }
            assert_eq!(env.to_str(), Some(expected.as_str()), "--{long}");
        }
    }

    #[test]
    fn the_environment_sets_flags_and_lists_take_commas() {
        // A prefix of this test's own: no other test reads these variables.
        let set = [
            (
                "ENVTEST_ALLOW_ORIGINS",
                "https://a.example,http://b.example:8080",
            ),
            ("ENVTEST_ALLOWED_HOSTS", "a.example,b.example"),
            ("ENVTEST_MAX_MESSAGE_SIZE", "2048"),
            ("ENVTEST_IDLE_TIMEOUT", "5s"),
        ];
        for (name, value) in set {
            std::env::set_var(name, value);
        }
        let parsed = try_parse_from::<App, _>("ENVTEST", ["app"]).map(|app| app.options);
        // A flag on the command line wins over its variable.
        let overridden = try_parse_from::<App, _>("ENVTEST", ["app", "--idle-timeout", "9s"])
            .map(|app| app.options);
        for (name, _) in set {
            std::env::remove_var(name);
        }
        let options = parsed.unwrap();
        assert_eq!(
            options.allow_origins,
            ["https://a.example", "http://b.example:8080"]
        );
        assert_eq!(options.allowed_hosts, ["a.example", "b.example"]);
        assert_eq!(options.max_message_size, 2048);
        assert_eq!(options.idle_timeout, Duration::from_secs(5));
        assert_eq!(overridden.unwrap().idle_timeout, Duration::from_secs(9));
    }

    #[test]
    fn durations_take_a_unit() {
        let options = parse(&["--drain-timeout", "250ms"]).unwrap();
        assert_eq!(options.drain_timeout, Duration::from_millis(250));
        let options = parse(&["--shutdown-delay", "0s"]).unwrap();
        assert_eq!(options.shutdown_delay, Duration::ZERO);
        let options = parse(&["--max-call-duration", "2m"]).unwrap();
        assert_eq!(options.max_call_duration, Some(Duration::from_secs(120)));
        assert!(parse(&["--drain-timeout", "10"]).is_err());
    }

    #[test]
    fn origins_are_repeatable() {
        let options = parse(&[
            "--allow-origin",
            "https://app.example.com",
            "--allow-origin=http://localhost:3000",
        ])
        .unwrap();
        assert_eq!(
            options.allow_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn a_bad_value_names_its_flag() {
        for args in [
            ["--addr", "not-an-address"],
            ["--allow-origin", "https://example.com/path"],
            ["--allow-origin", "*"],
            ["--allow-origin", "ftp://example.com"],
            ["--drain-timeout", "10"],
            ["--drain-timeout", "5 fortnights"],
            ["--max-message-size", "12"],
            ["--max-concurrent-calls", "0"],
            ["--log-format", "xml"],
            ["--header-read-timeout", "soon"],
            ["--tls-cert", "cert.pem"],
        ] {
            let error = parse(&args).unwrap_err().to_string();
            assert!(error.contains(args[0]), "{error}");
        }
    }
}
