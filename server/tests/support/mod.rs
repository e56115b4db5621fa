//! A real server on an ephemeral loopback port, and the clients the integration tests call it with.

#![allow(dead_code)] // each test file uses its own subset

use test_support::{
    process::{free_port, ChildProcess},
    raw, InProcess,
};

use std::{net::SocketAddr, path::Path};

use bytes::Bytes;
use greeter_server::Config;
use hello_proto::greeter_client::GreeterClient;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use tonic_web::{GrpcWebCall, GrpcWebClientLayer, GrpcWebClientService};

/// The page a test server serves: a stand-in for trunk's dist, with an inline bootstrap script as
/// trunk writes one.
pub const INDEX_HTML: &str =
    "<!doctype html><title>Greeter</title><script type=\"module\">import init from '/app-0123456789abcdef.js';</script>";
/// The inline script above, as CSP hashes it.
pub const INLINE_SCRIPT: &str = "import init from '/app-0123456789abcdef.js';";

/// A Greeter server running in this process, serving a stand-in page; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    server: InProcess,
    _static_dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with `configure` applied to a default configuration on 127.0.0.1:0 (with
    /// no shutdown delay: no load balancer watches it).
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let static_dir = tempfile::tempdir().unwrap();
        write_page(static_dir.path());
        let mut config = Config::new("127.0.0.1:0".parse().unwrap());
        config.serve.static_dir = Some(static_dir.path().to_owned());
        config.serve.shutdown_delay = std::time::Duration::ZERO;
        configure(&mut config);
        let server = InProcess::start(greeter_server::app::server(&config)).await;
        Self {
            addr: server.addr,
            server,
            _static_dir: static_dir,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn write_page(dir: &Path) {
    std::fs::write(dir.join("index.html"), INDEX_HTML).unwrap();
    std::fs::create_dir(dir.join("assets")).unwrap();
    std::fs::write(
        dir.join("assets/app-0123456789abcdef_bg.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    // Large and repetitive enough that compression pays.
    std::fs::write(
        dir.join("app-0123456789abcdef.js"),
        "export default 1;\n".repeat(200),
    )
    .unwrap();
}

/// The generated client over tonic's native HTTP/2 channel.
pub async fn native_client(server: &TestServer) -> GreeterClient<tonic::transport::Channel> {
    let channel = test_support::channel(server.url()).await;
    GreeterClient::new(channel)
}

/// The generated client over a bare hyper HTTP/2 client: native gRPC with no client-side
/// enforcement of `grpc-timeout`, so the server's own deadline handling shows.
pub fn bare_h2_client(
    server: &TestServer,
) -> GreeterClient<Client<HttpConnector, tonic::body::Body>> {
    let http = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    GreeterClient::with_origin(http, server.url().parse().unwrap())
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A plain HTTP/1.1 client, for the page and for hand-made requests.
pub fn http1_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A prior-knowledge HTTP/2 (h2c) client.
pub fn http2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// What tonic-web's client layer sends over the wire.
type GrpcWebHttp = Client<HttpConnector, GrpcWebCall<tonic::body::Body>>;

/// The generated client speaking gRPC-Web through tonic-web's client layer.
pub type GrpcWebGreeter = GreeterClient<GrpcWebClientService<GrpcWebHttp>>;

fn grpc_web_client(server: &TestServer, http: GrpcWebHttp) -> GrpcWebGreeter {
    let service = tower::ServiceBuilder::new()
        .layer(GrpcWebClientLayer::new())
        .service(http);
    GreeterClient::with_origin(service, server.url().parse().unwrap())
}

/// gRPC-Web over HTTP/1.1.
pub fn grpc_web_http1(server: &TestServer) -> GrpcWebGreeter {
    grpc_web_client(server, Client::builder(TokioExecutor::new()).build_http())
}

/// gRPC-Web over HTTP/2 (h2c).
pub fn grpc_web_http2(server: &TestServer) -> GrpcWebGreeter {
    grpc_web_client(
        server,
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http(),
    )
}

/// A response read whole: status, headers and body.
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends `request` and reads the whole response.
pub async fn send(client: &HttpClient, request: http::Request<Full<Bytes>>) -> Reply {
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// The real `greeter-server` binary on a free loopback port, its log in a file; stopped (by its
/// process group's id) and reaped on drop.
pub struct ServerProcess {
    pub addr: SocketAddr,
    process: ChildProcess,
    log: tempfile::NamedTempFile,
}

impl ServerProcess {
    /// Starts the binary with `args` on 127.0.0.1 and waits until it accepts connections.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_on("127.0.0.1", args).await
    }

    /// Starts the binary with `args`, bound to `ip` on a free port, and waits until it accepts
    /// connections on loopback.
    pub async fn start_on(ip: &str, args: &[&str]) -> Self {
        Self::start_with(ip, args, |_| {}).await
    }

    /// Starts the binary in `dir` as its working directory, with `args`.
    pub async fn start_in(dir: &Path, args: &[&str]) -> Self {
        Self::start_with("127.0.0.1", args, |command| {
            command.current_dir(dir);
        })
        .await
    }

    /// Starts the binary with `args` and the environment variables `env` on 127.0.0.1.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with("127.0.0.1", args, |command| {
            command.envs(env.iter().copied());
        })
        .await
    }

    /// Starts the binary with `args` under an open-files limit of `files`, soft and hard alike,
    /// so that it cannot raise it.
    pub async fn start_with_open_files(args: &[&str], files: u64) -> Self {
        Self::start_with("127.0.0.1", args, |command| {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: files,
                rlim_max: files,
            };
            // SAFETY: setrlimit, async-signal-safe, reads a struct copied into the closure.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        })
        .await
    }

    async fn start_with(
        ip: &str,
        args: &[&str],
        adjust: impl FnOnce(&mut std::process::Command),
    ) -> Self {
        let port = free_port().unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_greeter-server"));
        command
            .arg("--addr")
            .arg(format!("{ip}:{port}"))
            .args(args)
            .env("RUST_LOG", "info")
            // No load balancer watches it; a test that needs the delay passes the flag.
            .env("GREETER_SHUTDOWN_DELAY", "0s")
            .env_remove("GREETER_ALLOWED_HOSTS")
            .env_remove("GREETER_STATIC_DIR")
            .stdout(log.reopen().unwrap())
            .stderr(std::process::Stdio::inherit());
        adjust(&mut command);
        let mut process = ChildProcess::spawn(&mut command).unwrap();
        process
            .wait_for_port(port, std::time::Duration::from_secs(30))
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Self { addr, process, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.process.pid(), field)
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    /// The generated client over a native HTTP/2 channel to this server.
    pub async fn native_client(&self) -> GreeterClient<tonic::transport::Channel> {
        let channel = test_support::channel(self.url()).await;
        GreeterClient::new(channel)
    }

    /// The process id, for signals and `/proc`.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends `signal` (`libc::SIGTERM`, `libc::SIGINT`, ...) to the process.
    pub fn signal(&self, signal: libc::c_int) {
        self.process.signal(signal).unwrap();
    }

    /// Waits for the process to exit, failing the test after `within`.
    pub async fn exit_status(&mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.process.try_wait() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server is still running after {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// How many file descriptors the process holds open (sockets included).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// A gauge's value on the `/metrics` page, read on a fresh connection.
    pub async fn gauge(&self, name: &str) -> u64 {
        let page = raw::get(self.addr, "/metrics", &self.addr.to_string()).await;
        raw::gauge(&page, name)
    }

    /// Fails the test unless a normal call succeeds now.
    pub async fn assert_serving(&self) {
        let reply = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.native_client()
                .await
                .say_hello(hello_proto::HelloRequest {
                    name: "still serving".into(),
                }),
        )
        .await
        .expect("a normal call is answered within 10 s")
        .unwrap();
        assert_eq!(reply.into_inner().message, "Hello, still serving");
    }
}

/// A memory figure of process `pid` in KiB, from its `/proc` status (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
