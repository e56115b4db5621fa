//! The Greeter server's command line: the serving stack's options, and the Greeter's own flag.
//!
//! Every flag falls back to an environment variable named `GREETER_` and the flag in capitals
//! (`--max-connections` from `GREETER_MAX_CONNECTIONS`); see [`grpc_serve::options`].

use std::net::SocketAddr;

use clap::Parser;
use grpc_serve::{options, Options};

/// The prefix of every environment variable the server reads.
pub const ENV_PREFIX: &str = "GREETER";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "greeter-server",
    version,
    about = "Serves the Greeter over native gRPC, gRPC-Web and WebSockets, and the web page, on one port."
)]
pub struct Config {
    #[command(flatten)]
    pub serve: Options,

    /// Also host gRPC's interop service, grpc.testing.TestService, for gRPC's own interop clients.
    #[cfg(feature = "grpc-testing")]
    #[arg(long)]
    pub grpc_testing: bool,
}

impl Config {
    /// A configuration for `addr` with every other setting at its default.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            serve: Options::new(addr),
            #[cfg(feature = "grpc-testing")]
            grpc_testing: false,
        }
    }

    /// This process's command line and `GREETER_*` environment; a bad value exits with a message
    /// naming its flag.
    pub fn load() -> Self {
        options::parse(ENV_PREFIX)
    }

    /// The configuration `args` give, with this process's `GREETER_*` environment.
    pub fn load_from<I>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator,
        I::Item: Into<std::ffi::OsString> + Clone,
    {
        options::try_parse_from(ENV_PREFIX, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_seed_port_on_loopback() {
        let config = Config::load_from(["greeter-server"]).unwrap();
        assert_eq!(config.serve.addr, "127.0.0.1:50051".parse().unwrap());
    }

    #[test]
    fn new_is_the_command_line_with_its_defaults() {
        let parsed = Config::load_from(["greeter-server", "--addr", "127.0.0.1:4000"]).unwrap();
        assert_eq!(
            format!("{:?}", Config::new("127.0.0.1:4000".parse().unwrap())),
            format!("{parsed:?}")
        );
    }

    /// The library names each flag's variable (tested there for every flag); here, the prefix.
    #[test]
    fn flags_fall_back_to_greeter_variables() {
        let command = options::command::<Config>(ENV_PREFIX);
        let env_of = |id: &str| {
            command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .and_then(|arg| arg.get_env())
                .map(|env| env.to_string_lossy().into_owned())
        };
        assert_eq!(env_of("addr").as_deref(), Some("GREETER_ADDR"));
        assert_eq!(
            env_of("allow_origins").as_deref(),
            Some("GREETER_ALLOW_ORIGINS")
        );
    }
}
