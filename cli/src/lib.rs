//! `greeter`: the Greeter from the command line, over native gRPC (HTTP/2).
//!
//! It mirrors the seed's Python client (a channel to `localhost:50051`, the generated stub, one call)
//! and goes further: one subcommand per RPC kind, a deadline, TLS, and an exit code that is the gRPC
//! status code, so scripts can tell `INVALID_ARGUMENT` (3) from `UNAVAILABLE` (14). It uses the same
//! generated `GreeterClient` as the web page; only the channel differs (tonic's HTTP/2 transport here,
//! gRPC-Web in the browser).
//!
//! A unary call rides through a server restart: [`say_hello`] sends it again while its failure
//! shows that no server can have acted on it ([`no_server_acted`]), inside its deadline.

use std::{
    io::{self, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use grpc_call::{
    code_name,
    retry::{call_with_retries, RetryPolicy, RetryTimer},
    with_deadline,
};
use hello_proto::{greeter_client::GreeterClient, HelloReply, HelloRequest, HelloStreamRequest};
use tonic::{
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
    Code, ConnectError, Status, Streaming,
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

    /// Report on standard error each attempt of `say-hello` that failed before any server could
    /// act on it (and so may be sent again).
    #[arg(long, short, global = true)]
    pub verbose: bool,

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
    let channel = connect(cli)?;
    let call = call(cli, GreeterClient::new(channel), out);
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

/// The channel to `--addr`. It connects on the first call, so a refused connection is a failure
/// of that call, which [`say_hello`] can send again.
fn connect(cli: &Cli) -> Result<Channel, Failure> {
    let url = server_url(cli);
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
    Ok(endpoint.connect_lazy())
}

fn server_url(cli: &Cli) -> String {
    if cli.addr.contains("://") {
        cli.addr.clone()
    } else {
        format!("http://{}", cli.addr)
    }
}

/// The response of a call, or its status as the failure.
async fn answer<T>(
    cli: &Cli,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Failure> {
    call.await
        .map(tonic::Response::into_inner)
        .map_err(|status| failure(cli, status))
}

/// A call's failure: [`Failure::Connect`] when no connection could be made, with its causes.
fn failure(cli: &Cli, status: Status) -> Failure {
    let connect = source_chain(&status)
        .find_map(|error| error.downcast_ref::<ConnectError>())
        .map(|connect| error_chain(connect));
    match connect {
        Some(reason) => Failure::Connect {
            addr: server_url(cli),
            reason,
        },
        None => Failure::Status(status),
    }
}

/// Calls `SayHello` on `client` and returns the greeting. A failure that shows no server can have
/// acted on the call ([`no_server_acted`]) is sent again, with jittered backoff, as long as the
/// `deadline` leaves time (at most five attempts in all); each attempt carries the time left.
/// With `verbose`, each such failure is reported on standard error.
pub async fn say_hello(
    client: &GreeterClient<Channel>,
    name: &str,
    deadline: Option<Duration>,
    verbose: bool,
) -> Result<String, Status> {
    call_with_retries(
        &RetryPolicy::default(),
        &TokioTimer(Instant::now()),
        deadline,
        |status| {
            let again = no_server_acted(status);
            if again && verbose {
                eprintln!("greeter: an attempt failed before reaching a server: {status}");
            }
            again
        },
        |time_left| {
            let mut client = client.clone();
            let request = with_deadline(HelloRequest { name: name.into() }, time_left);
            async move { Ok(client.say_hello(request).await?.into_inner().message) }
        },
    )
    .await
}

/// Whether `status` is a failure that no server can have acted on, so that sending the call
/// again cannot do anything twice, whatever the method:
/// - the connection was refused: nothing listened (a replica between its stop and its start);
/// - the server refused the stream (HTTP/2 `REFUSED_STREAM`, which promises it was not
///   processed: a draining server's answer to a stream it will not take);
/// - the request was never sent: its connection closed before it could be (hyper's
///   "canceled").
///
/// Everything else is returned as it is: a reset or a closed connection after the request went
/// out may have reached a handler, and a status from the server is its answer.
pub fn no_server_acted(status: &Status) -> bool {
    source_chain(status).any(|error| {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            io.kind() == io::ErrorKind::ConnectionRefused
        } else if let Some(h2) = error.downcast_ref::<h2::Error>() {
            h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        } else if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            hyper.is_canceled()
        } else {
            false
        }
    })
}

/// `error` and its causes, outermost first.
fn source_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| error.source())
}

/// Tokio's clock and timer for the retry loop; the jitter comes from std's randomly keyed hasher.
struct TokioTimer(Instant);

impl RetryTimer for TokioTimer {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&self, duration: Duration) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(duration)
    }

    fn random_fraction(&self) -> f64 {
        use std::hash::BuildHasher;
        // A new RandomState has new keys, so its hash of a constant is a fresh random number.
        let bits = std::collections::hash_map::RandomState::new().hash_one(0u8);
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn call(
    cli: &Cli,
    mut client: GreeterClient<Channel>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    match &cli.command {
        Command::SayHello => {
            let name = one_name(cli)?;
            let greeting = say_hello(&client, &name, cli.deadline, cli.verbose)
                .await
                .map_err(|status| failure(cli, status))?;
            writeln!(out, "{greeting}")?;
        }
        Command::SayHelloStream { count, interval_ms } => {
            let name = one_name(cli)?;
            let request = HelloStreamRequest {
                name,
                count: *count,
                interval_ms: *interval_ms,
            };
            let replies = answer(
                cli,
                client.say_hello_stream(with_deadline(request, cli.deadline)),
            )
            .await?;
            print_replies(replies, out).await?;
        }
        Command::SayHelloToAll => {
            let names = with_deadline(tokio_stream::iter(names(cli)), cli.deadline);
            let summary = answer(cli, client.say_hello_to_all(names)).await?;
            for message in summary.messages {
                writeln!(out, "{message}")?;
            }
        }
        Command::Chat => {
            let names = with_deadline(tokio_stream::iter(names(cli)), cli.deadline);
            let replies = answer(cli, client.chat(names)).await?;
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

    #[test]
    fn only_failures_no_server_acted_on_are_retried() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let connect = Status::from_error(Box::new(ConnectError(Box::new(refused))));
        assert_eq!(connect.code(), Code::Unavailable);
        assert!(no_server_acted(&connect));
        let stream_refused =
            Status::from_error(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)));
        assert!(no_server_acted(&stream_refused));

        // A reset after the request went out, and any answer from a server, are not.
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let reset = Status::from_error(Box::new(ConnectError(Box::new(reset))));
        assert!(!no_server_acted(&reset));
        let cancelled = Status::from_error(Box::new(h2::Error::from(h2::Reason::CANCEL)));
        assert!(!no_server_acted(&cancelled));
        assert!(!no_server_acted(&Status::unavailable("shutting down")));
        assert!(!no_server_acted(&Status::invalid_argument("empty name")));
    }
}
