//! gRPC over WebSockets, so that browsers get client and bidirectional streaming.
//!
//! gRPC-Web over `fetch` carries unary and server-streaming calls only: browsers cannot stream a
//! request body. This crate carries any gRPC call over one WebSocket per call, speaking the
//! `grpc-websockets` protocol of improbable-eng's grpc-web client and proxy, so their clients
//! interoperate:
//!
//! - the socket is opened on the method's path with the subprotocol `grpc-websockets`;
//! - the client's first message is the request headers, as `name: value\r\n` lines;
//! - each request message is one byte `0x00` followed by the gRPC length-prefixed frame;
//! - a single byte `0x01` ends the client's sending side;
//! - the server sends the response headers as a trailer-flagged (`0x80`) frame, then the data
//!   frames, then the trailers frame (with `grpc-status`), then closes the socket.
//!
//! [`protocol`] holds the encoders and decoders, shared by both halves. With the `server` feature,
//! `server::GrpcWebSocketLayer` turns each upgrade into a streaming HTTP request into the same
//! tonic routes that serve native gRPC; it refuses sockets from other origins' pages unless told
//! which to allow. What it needs from the server: connections served with HTTP/1.1 upgrades
//! enabled (hyper-util's `serve_connection_with_upgrades`); `server::serve` is an accept loop
//! that does so. With the `client` feature (for wasm32), `client::WebSocketChannel` is a
//! `tower::Service` that tonic-generated clients accept.

#![forbid(unsafe_code)]

pub mod protocol;

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "client")]
pub mod client;

/// The WebSocket subprotocol of the `grpc-websockets` protocol.
pub const SUBPROTOCOL: &str = "grpc-websockets";

/// A path prefix sockets may be opened under (`/grpc-websockets/pkg.Service/Method`) as well as
/// on the method's own path. A development server's proxy (`trunk serve`'s) then needs one
/// WebSocket route for every method, whatever methods are added later; the browser client opens
/// its sockets here.
pub const ROUTE_PREFIX: &str = "/grpc-websockets";
