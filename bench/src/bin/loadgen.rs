//! The streaming side of `cargo xtask bench`: server-streaming throughput, and many open streams
//! held at once for the memory measurement. Unary load comes from h2load, which is faster than any
//! client we could write in Rust on the same two cores.
//!
//! - `loadgen stream-rate --url U --transport native|grpc-web|websocket --streams S --seconds D`: S concurrent
//!   callers repeat `SayHelloStream(count = 1000, interval 0)` for D seconds; prints
//!   `messages=N seconds=T`.
//! - `loadgen hold-streams --url U --streams N`: opens N slow streams over N/100 connections, waits
//!   for each one's first greeting, prints `ready N`, and holds them until its standard input closes.
//!   With `--websocket`: N idle `Chat` calls instead, one WebSocket each, each ready once the
//!   server has sent its response headers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use grpc_websocket::protocol::{self, ServerFrame, ServerFrameDecoder};
use hello_proto::HelloReply;
use hello_proto::{greeter_client::GreeterClient, HelloStreamRequest};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::Message as _;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use tonic::{
    client::GrpcService,
    codegen::StdError,
    transport::{Channel, Endpoint},
};
use tonic_web::GrpcWebClientLayer;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    StreamRate {
        #[arg(long)]
        url: String,
        #[arg(long)]
        transport: Transport,
        #[arg(long, default_value_t = 4)]
        streams: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    HoldStreams {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        /// Idle `Chat` calls over the WebSocket transport instead of server streams.
        #[arg(long)]
        websocket: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Transport {
    Native,
    GrpcWeb,
    /// The `grpc-websockets` protocol, one WebSocket per call, as the page's channel speaks it.
    Websocket,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn request(count: u32, interval_ms: u32) -> HelloStreamRequest {
    HelloStreamRequest {
        name: "world".into(),
        count,
        interval_ms,
    }
}

async fn connect(url: &str) -> Result<Channel, Error> {
    Ok(Endpoint::from_shared(url.to_owned())?.connect().await?)
}

/// Messages received by one caller repeating 1,000-message streams until `until`.
async fn repeat_streams<T>(mut client: GreeterClient<T>, until: Instant) -> Result<u64, Error>
where
    T: GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<StdError> + Send,
{
    let mut messages = 0;
    while Instant::now() < until {
        let mut stream = client
            .say_hello_stream(request(1000, 0))
            .await?
            .into_inner();
        while stream.message().await?.is_some() {
            messages += 1;
        }
    }
    Ok(messages)
}

/// The same over the WebSocket transport: each call a new socket, its messages decoded.
async fn repeat_websocket_streams(url: String, until: Instant) -> Result<u64, Error> {
    let url = format!(
        "{}/hello.Greeter/SayHelloStream",
        url.replacen("http://", "ws://", 1)
    );
    let mut call = Vec::new();
    call.push(Message::Binary(Bytes::from_static(
        b"content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n",
    )));
    let message = request(1000, 0).encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    call.push(Message::Binary(protocol::encode_client_data(&frame).into()));
    call.push(Message::Binary(Bytes::from_static(&[
        protocol::CLIENT_END_OF_STREAM,
    ])));

    let mut messages = 0;
    while Instant::now() < until {
        let mut request = url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "grpc-websockets".parse()?);
        // TCP_NODELAY, as browsers set it: with Nagle, the call's second message waits for the
        // server's delayed ACK of its first, 40 ms a call.
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, None, true).await?;
        for message in &call {
            socket.send(message.clone()).await?;
        }
        let mut decoder = ServerFrameDecoder::default();
        while let Some(message) = socket.next().await {
            let Message::Binary(bytes) = message? else {
                continue;
            };
            decoder.push(&bytes);
            while let Some(frame) = decoder.next_frame(4 << 20)? {
                match frame {
                    ServerFrame::Data(data) => {
                        HelloReply::decode(&data[protocol::FRAME_PREFIX..])?;
                        messages += 1;
                    }
                    ServerFrame::Headers(headers) => match headers.get("grpc-status") {
                        Some(status) if status != "0" => {
                            return Err(format!("the stream ended with {status:?}").into())
                        }
                        _ => {}
                    },
                }
            }
        }
    }
    Ok(messages)
}

async fn stream_rate(
    url: &str,
    transport: Transport,
    streams: usize,
    seconds: u64,
) -> Result<(), Error> {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut callers = Vec::new();
    for _ in 0..streams {
        callers.push(match transport {
            Transport::Native => {
                let client = GreeterClient::new(connect(url).await?);
                tokio::spawn(repeat_streams(client, until))
            }
            Transport::GrpcWeb => {
                let http = Client::builder(TokioExecutor::new()).build_http();
                let service = tower::ServiceBuilder::new()
                    .layer(GrpcWebClientLayer::new())
                    .service(http);
                let client = GreeterClient::with_origin(service, url.parse()?);
                tokio::spawn(repeat_streams(client, until))
            }
            Transport::Websocket => tokio::spawn(repeat_websocket_streams(url.to_owned(), until)),
        });
    }
    let mut messages = 0;
    for caller in callers {
        messages += caller.await??;
    }
    println!(
        "messages={messages} seconds={:.3}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn hold_streams(url: &str, streams: usize) -> Result<(), Error> {
    // The server allows 200 streams per connection by default: 100 a connection stays under it.
    let mut clients = Vec::new();
    for _ in 0..streams.div_ceil(100) {
        clients.push(GreeterClient::new(connect(url).await?));
    }
    let mut held = Vec::new();
    for i in 0..streams {
        let mut client = clients[i / 100].clone();
        held.push(tokio::spawn(async move {
            // 1,000 greetings 10 s apart: open for hours, unless the process ends.
            let mut stream = client
                .say_hello_stream(request(1000, 10_000))
                .await?
                .into_inner();
            stream.message().await?.ok_or("the stream ended at once")?;
            Ok::<_, Error>(stream)
        }));
    }
    let mut open = Vec::new();
    for stream in held {
        open.push(stream.await??);
    }
    hold_until_stdin_closes(open).await
}

/// Prints `ready N` for the `N` calls held open, and holds them until told to stop.
async fn hold_until_stdin_closes<T>(open: Vec<T>) -> Result<(), Error> {
    println!("ready {}", open.len());
    let mut rest = Vec::new();
    tokio::io::stdin().read_to_end(&mut rest).await?;
    drop(open);
    Ok(())
}

/// `calls` idle `Chat` calls, one WebSocket each: the header block sent, no message.
async fn hold_websocket_calls(url: &str, calls: usize) -> Result<(), Error> {
    let url = format!("{}/hello.Greeter/Chat", url.replacen("http://", "ws://", 1));
    let mut open = Vec::new();
    for _ in 0..calls {
        let mut request = url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "grpc-websockets".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        socket
            .send(Message::Binary(Bytes::from_static(
                b"content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n",
            )))
            .await?;
        // The response headers: the call has reached the service.
        match socket.next().await {
            Some(Ok(Message::Binary(_))) => open.push(socket),
            other => return Err(format!("no response headers: {other:?}").into()),
        }
    }
    hold_until_stdin_closes(open).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    match Cli::parse().command {
        Command::StreamRate {
            url,
            transport,
            streams,
            seconds,
        } => stream_rate(&url, transport, streams, seconds).await,
        Command::HoldStreams {
            url,
            streams,
            websocket: false,
        } => hold_streams(&url, streams).await,
        Command::HoldStreams {
            url,
            streams,
            websocket: true,
        } => hold_websocket_calls(&url, streams).await,
    }
}
