//! `greeter`: the Greeter from the command line, over native gRPC (HTTP/2).
//!
//! It mirrors the seed's Python client (a channel to `localhost:50051`, the generated stub, one call)
//! and goes further: one subcommand per RPC kind, a deadline, TLS, and an exit code that is the gRPC
//! status code, so scripts can tell `INVALID_ARGUMENT` (3) from `UNAVAILABLE` (14). It uses the same
//! generated `GreeterClient` as the web page; only the channel differs (tonic's HTTP/2 transport here,
//! gRPC-Web in the browser).

use std::{
    io::{self, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use grpc_call::{code_name, with_deadline};
use hello_proto::{greeter_client::GreeterClient, HelloReply, HelloRequest, HelloStreamRequest};
use tonic::{
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
    Code, Status, Streaming,
};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "greeter",
    version,
    about = "Call the Greeter over native gRPC; the exit code is the call's gRPC status code"
)]
pub struct Cli {
    /// The server: `host:port` or a URL (`http://…`, or `https://…` for TLS).
    #[arg(long, env = "GREETER_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,

    /// The name to greet; give it several times for `say-hello-to-all` and `chat`.
    #[arg(long = "name", default_value = "Alice", global = true)]
    pub names: Vec<String>,

    /// How long the whole call may take (`250ms`, `5s`, `1m`); the server is told it too.
    #[arg(long, value_parser = humantime::parse_duration, global = true)]
    pub deadline: Option<Duration>,

    /// A PEM certificate to trust for `https://` servers (otherwise the web PKI roots).
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// One subcommand per RPC kind of the Greeter.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Unary: one name, one greeting.
    SayHello,
    /// Server streaming: `count` greetings for one name, `interval-ms` apart.
    SayHelloStream {
        #[arg(long, default_value_t = 3)]
        count: u32,
        #[arg(long, default_value_t = 0)]
        interval_ms: u32,
    },
    /// Client streaming: sends every name, then prints the greetings the server returns at the end.
    SayHelloToAll,
    /// Bidirectional streaming: sends every name and prints each greeting as it comes back.
    Chat,
}

/// Why a command did not succeed; each maps to the exit code [`Failure::exit_code`] gives.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The server (or the channel) answered with a gRPC status other than OK.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(Status),
    /// No connection could be made.
    #[error("UNAVAILABLE: cannot reach the server at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The command line asks for something the call cannot do.
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed (a closed pipe, say).
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl Failure {
    /// The process exit code: the gRPC status code number (1–16) for call failures, as the seed's
    /// `grpc.StatusCode` numbers them; 2 for usage errors, as clap uses; 74 (EX_IOERR) for output.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Status(status) => status.code() as u8,
            Failure::Connect { .. } => Code::Unavailable as u8,
            Failure::Usage(_) => 2,
            Failure::Output(_) => 74,
        }
    }
}

/// Runs the command, writing each greeting to `out` as soon as it arrives.
pub async fn run(cli: &Cli, out: &mut impl Write) -> Result<(), Failure> {
    if matches!(
        cli.command,
        Command::SayHello | Command::SayHelloStream { .. }
    ) {
        one_name(cli)?;
    }
    let started = Instant::now();
    let call = async {
        let channel = connect(cli).await?;
        call(cli, GreeterClient::new(channel), out).await
    };
    let outcome = match cli.deadline {
        Some(deadline) => tokio::time::timeout(deadline, call)
            .await
            .unwrap_or_else(|_| Err(deadline_exceeded(deadline))),
        None => call.await,
    };
    // tonic's channel enforces the deadline itself and reports it as CANCELLED; it is a deadline.
    match (outcome, cli.deadline) {
        (Err(Failure::Status(status)), Some(deadline))
            if status.code() == Code::Cancelled && started.elapsed() >= deadline =>
        {
            Err(deadline_exceeded(deadline))
        }
        (outcome, _) => outcome,
    }
}

fn deadline_exceeded(deadline: Duration) -> Failure {
    Failure::Status(Status::deadline_exceeded(format!(
        "the deadline of {deadline:?} passed before the call ended"
    )))
}

async fn connect(cli: &Cli) -> Result<Channel, Failure> {
    let url = if cli.addr.contains("://") {
        cli.addr.clone()
    } else {
        format!("http://{}", cli.addr)
    };
    let unreachable = |reason: String| Failure::Connect {
        addr: url.clone(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| Failure::Usage(format!("--addr {}: {e}", cli.addr)))?
        .connect_timeout(Duration::from_secs(10));
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(path) = &cli.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| Failure::Usage(format!("--ca-cert {}: {e}", path.display())))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Failure::Usage(format!("TLS: {e}")))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|e| unreachable(error_chain(&e)))
}

/// The response of a call, or its status as the failure.
async fn answer<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Failure> {
    call.await
        .map(tonic::Response::into_inner)
        .map_err(Failure::Status)
}

async fn call(
    cli: &Cli,
    mut client: GreeterClient<Channel>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    match &cli.command {
        Command::SayHello => {
            let name = one_name(cli)?;
            let reply =
                answer(client.say_hello(with_deadline(HelloRequest { name }, cli.deadline)))
                    .await?;
            writeln!(out, "{}", reply.message)?;
        }
        Command::SayHelloStream { count, interval_ms } => {
            let name = one_name(cli)?;
            let request = HelloStreamRequest {
                name,
                count: *count,
                interval_ms: *interval_ms,
            };
            let replies =
                answer(client.say_hello_stream(with_deadline(request, cli.deadline))).await?;
            print_replies(replies, out).await?;
        }
        Command::SayHelloToAll => {
            let names = with_deadline(tokio_stream::iter(names(cli)), cli.deadline);
            let summary = answer(client.say_hello_to_all(names)).await?;
            for message in summary.messages {
                writeln!(out, "{message}")?;
            }
        }
        Command::Chat => {
            let names = with_deadline(tokio_stream::iter(names(cli)), cli.deadline);
            let replies = answer(client.chat(names)).await?;
            print_replies(replies, out).await?;
        }
    }
    Ok(())
}

/// Prints each greeting of a response stream as it arrives, until the stream's status.
async fn print_replies(
    mut replies: Streaming<HelloReply>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    while let Some(reply) = replies.message().await.map_err(Failure::Status)? {
        writeln!(out, "{}", reply.message)?;
        out.flush()?;
    }
    Ok(())
}

fn one_name(cli: &Cli) -> Result<String, Failure> {
    match cli.names.as_slice() {
        [name] => Ok(name.clone()),
        names => Err(Failure::Usage(format!(
            "this call takes one --name, not {}",
            names.len()
        ))),
    }
}

fn names(cli: &Cli) -> Vec<HelloRequest> {
    cli.names
        .iter()
        .map(|name| HelloRequest { name: name.clone() })
        .collect()
}

/// An error with its causes, since tonic's transport errors say little at the top level.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_takes_a_unit() {
        let cli = Cli::try_parse_from(["greeter", "--deadline", "250ms", "say-hello"]).unwrap();
        assert_eq!(cli.deadline, Some(Duration::from_millis(250)));
        assert!(Cli::try_parse_from(["greeter", "--deadline", "5", "say-hello"]).is_err());
    }

    #[test]
    fn exit_codes_are_grpc_status_codes() {
        assert_eq!(
            Failure::Status(Status::invalid_argument("x")).exit_code(),
            3
        );
        let unreachable = Failure::Connect {
            addr: "http://127.0.0.1:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(unreachable.exit_code(), 14);
        assert!(unreachable.to_string().starts_with("UNAVAILABLE: "));
    }
}
