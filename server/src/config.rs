//! Start-up configuration: command-line flags, each with an environment-variable fallback.
//!
//! Every value is checked while parsing, so a bad one stops start-up with a message that names the
//! flag instead of failing later at the first request.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use http::HeaderValue;

/// The seed's port, on loopback: reachable from this machine only unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// The largest gRPC message by default, either way: tonic's own default decoding limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "greeter-server",
    version,
    about = "Serves the Greeter over native gRPC and gRPC-Web, and the web page, on one port."
)]
pub struct Config {
    /// Address to listen on. Native gRPC (HTTP/2), gRPC-Web (HTTP/1.1 and HTTP/2) and the page all
    /// share it.
    #[arg(long, env = "GREETER_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// Serve the page from this directory (trunk's `dist`) instead of the copy embedded in the
    /// binary. Without it: the embedded page of a release build, else `./dist`.
    #[arg(long, env = "GREETER_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// An origin (scheme://host[:port]) allowed to call the API from a page served elsewhere.
    /// Repeat the flag, or separate origins with commas in the environment variable.
    #[arg(
        long = "allow-origin",
        env = "GREETER_ALLOW_ORIGINS",
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
        env = "GREETER_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOST",
        value_parser = crate::host::parse_host_name
    )]
    pub allowed_hosts: Vec<String>,

    /// Serve TLS with this certificate chain (PEM). Needs --tls-key. HTTP/2 and HTTP/1.1 are
    /// offered by ALPN; gRPC, gRPC-Web, WebSockets (wss) and the page all work over it.
    #[arg(long, env = "GREETER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "GREETER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// On SIGINT or SIGTERM: how long open calls may take to finish before their connections are
    /// closed. Streams end at once with UNAVAILABLE; unary calls in flight complete.
    #[arg(long, env = "GREETER_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// The largest gRPC message accepted or sent, in bytes (both directions, every transport).
    /// A larger one ends its call with OUT_OF_RANGE.
    #[arg(long, env = "GREETER_MAX_MESSAGE_SIZE", default_value_t = DEFAULT_MAX_MESSAGE_SIZE,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_message_size: u32,

    /// Calls in progress at once, streams included, across all connections. Beyond it, new calls
    /// fail at once with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(long, env = "GREETER_MAX_CONCURRENT_CALLS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,

    /// Concurrent HTTP/2 streams one connection may open (advertised to the client).
    #[arg(long, env = "GREETER_MAX_STREAMS_PER_CONNECTION", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,

    /// Open connections at once; beyond it, new connections wait in the listen backlog.
    #[arg(long, env = "GREETER_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How long a client may take to send a request's headers before the connection is closed:
    /// the defence against slow-header (slowloris) clients. It also bounds a new connection's wait
    /// for its first request (TLS handshake included, HTTP/1.1 and HTTP/2 alike) and a WebSocket
    /// call's wait for its header block.
    #[arg(long, env = "GREETER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// How long a connection may stay open with no request in flight once it has served one;
    /// then it is closed (HTTP/2 with a GOAWAY).
    #[arg(long, env = "GREETER_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// The longest any call may run, whatever deadline the client asks for (none by default).
    #[arg(long, env = "GREETER_MAX_CALL_DURATION", value_parser = humantime::parse_duration)]
    pub max_call_duration: Option<Duration>,

    /// Log format: `text` for people, `json` for log collectors. RUST_LOG sets the level
    /// (default: info).
    #[arg(long, env = "GREETER_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Development mode: also allow any loopback origin (http://localhost:PORT,
    /// http://127.0.0.1:PORT, http://[::1]:PORT), as used by `trunk serve` and wasm-bindgen-test.
    #[arg(long, env = "GREETER_DEV")]
    pub dev: bool,

    /// Also host gRPC's interop service, grpc.testing.TestService, for gRPC's own interop clients.
    #[cfg(feature = "grpc-testing")]
    #[arg(long, env = "GREETER_GRPC_TESTING")]
    pub grpc_testing: bool,
}

impl Config {
    /// A configuration for `addr` with every other setting at its default.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            static_dir: None,
            allow_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            tls_cert: None,
            tls_key: None,
            drain_timeout: Duration::from_secs(10),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_concurrent_calls: 10_000,
            max_streams_per_connection: 200,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_call_duration: None,
            log_format: LogFormat::Text,
            dev: false,
            #[cfg(feature = "grpc-testing")]
            grpc_testing: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
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

    #[test]
    fn defaults_to_the_seed_port_on_loopback() {
        let config = Config::try_parse_from(["greeter-server"]).unwrap();
        assert_eq!(config.addr, "127.0.0.1:50051".parse().unwrap());
        assert!(!config.dev);
        assert!(config.allow_origins.is_empty());
    }

    #[test]
    fn new_is_the_command_line_with_its_defaults() {
        let parsed =
            Config::try_parse_from(["greeter-server", "--addr", "127.0.0.1:4000"]).unwrap();
        // Every field, through Debug: a default restated wrongly in `new` shows here.
        assert_eq!(
            format!("{:?}", Config::new("127.0.0.1:4000".parse().unwrap())),
            format!("{parsed:?}")
        );
    }

    #[test]
    fn every_flag_has_its_environment_variable() {
        use clap::CommandFactory;
        let command = Config::command();
        let flags: Vec<_> = command
            .get_arguments()
            .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
            .collect();
        assert!(flags.len() >= 16, "{} flags", flags.len());
        for arg in flags {
            let long = arg.get_long().expect("every setting is a long flag");
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{long} has no environment variable"));
            let expected = format!("GREETER_{}", long.to_uppercase().replace('-', "_"));
            // Repeatable flags name their variable in the plural.
            assert!(
                env == expected.as_str() || env.to_str() == Some(&format!("{expected}S")),
                "--{long}: {env:?}"
            );
        }
    }

    #[test]
    fn durations_take_a_unit() {
        let config =
            Config::try_parse_from(["greeter-server", "--drain-timeout", "250ms"]).unwrap();
        assert_eq!(config.drain_timeout, Duration::from_millis(250));
        let config =
            Config::try_parse_from(["greeter-server", "--max-call-duration", "2m"]).unwrap();
        assert_eq!(config.max_call_duration, Some(Duration::from_secs(120)));
        assert!(Config::try_parse_from(["greeter-server", "--drain-timeout", "10"]).is_err());
    }

    #[test]
    fn origins_are_repeatable() {
        let config = Config::try_parse_from([
            "greeter-server",
            "--allow-origin",
            "https://app.example.com",
            "--allow-origin=http://localhost:3000",
        ])
        .unwrap();
        assert_eq!(
            config.allow_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn a_bad_value_names_its_flag() {
        for args in [
            ["greeter-server", "--addr", "not-an-address"],
            [
                "greeter-server",
                "--allow-origin",
                "https://example.com/path",
            ],
            ["greeter-server", "--allow-origin", "*"],
            ["greeter-server", "--allow-origin", "ftp://example.com"],
            ["greeter-server", "--drain-timeout", "10"],
            ["greeter-server", "--drain-timeout", "5 fortnights"],
            ["greeter-server", "--max-message-size", "12"],
            ["greeter-server", "--max-concurrent-calls", "0"],
            ["greeter-server", "--log-format", "xml"],
            ["greeter-server", "--header-read-timeout", "soon"],
            ["greeter-server", "--tls-cert", "cert.pem"],
        ] {
            let error = Config::try_parse_from(args).unwrap_err().to_string();
            assert!(error.contains(args[1]), "{error}");
        }
    }
}
