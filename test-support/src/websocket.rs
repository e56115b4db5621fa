//! A `grpc-websockets` client that speaks the protocol byte by byte over tokio-tungstenite, as
//! improbable-eng's client does: one call per socket, header block first.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use grpc_websocket::protocol::{self, ServerFrame, ServerFrameDecoder};
use http::HeaderMap;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::percent_decode;

/// The largest message the client reads.
const MAX: usize = 4 * 1024 * 1024;

/// One call over one socket, as improbable-eng's client makes it.
pub struct WsCall {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: ServerFrameDecoder,
    /// The code of the server's close frame, once one came.
    close_code: Option<u16>,
}

/// What the server sent for a call.
#[derive(Debug)]
pub struct WsResponse {
    pub headers: HeaderMap,
    pub messages: Vec<Bytes>,
    pub trailers: HeaderMap,
}

impl WsResponse {
    /// The call's gRPC status code: from the trailers, or from the headers of a trailers-only
    /// response.
    pub fn code(&self) -> i32 {
        let status = self
            .trailers
            .get("grpc-status")
            .or_else(|| self.headers.get("grpc-status"))
            .expect("a grpc-status");
        status.to_str().unwrap().parse().unwrap()
    }

    pub fn message(&self) -> String {
        let message = self
            .trailers
            .get("grpc-message")
            .or_else(|| self.headers.get("grpc-message"))
            .map(|value| value.to_str().unwrap())
            .unwrap_or_default();
        percent_decode(message)
    }

    pub fn decode<M: prost::Message + Default>(&self) -> Vec<M> {
        self.messages
            .iter()
            .map(|frame| M::decode(&frame[protocol::FRAME_PREFIX..]).unwrap())
            .collect()
    }
}

pub fn grpc_frame(message: &impl prost::Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

impl WsCall {
    /// Opens a socket on `path` and sends the header block.
    pub async fn open(addr: SocketAddr, path: &str) -> Self {
        Self::open_with(
            addr,
            path,
            b"content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n",
        )
        .await
    }

    pub async fn open_with(addr: SocketAddr, path: &str, header_block: &[u8]) -> Self {
        let mut socket = Self::connect(addr, path, None).await;
        socket
            .send(Message::Binary(Bytes::copy_from_slice(header_block)))
            .await
            .unwrap();
        Self::from_socket(socket)
    }

    /// A call on a socket already upgraded (its header block sent, or deliberately not).
    pub fn from_socket(socket: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            socket,
            decoder: ServerFrameDecoder::default(),
            close_code: None,
        }
    }

    /// The upgrade for `path`, offering the subprotocol, from a page of `origin` if one is given.
    fn upgrade_request(
        addr: SocketAddr,
        path: &str,
        origin: Option<&str>,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "grpc-websockets".parse().unwrap());
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        request
    }

    /// The HTTP status the server answers the upgrade for `path` with: 101, or its refusal.
    pub async fn handshake_status(addr: SocketAddr, path: &str, origin: Option<&str>) -> u16 {
        let request = Self::upgrade_request(addr, path, origin);
        match tokio_tungstenite::connect_async(request).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(other) => panic!("the upgrade failed: {other}"),
        }
    }

    /// An upgraded socket on `path`, its subprotocol accepted; the header block not yet sent.
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        origin: Option<&str>,
    ) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        let request = Self::upgrade_request(addr, path, origin);
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "grpc-websockets"
        );
        socket
    }

    pub async fn send_raw(&mut self, message: Vec<u8>) {
        self.socket
            .send(Message::Binary(message.into()))
            .await
            .unwrap();
    }

    pub async fn send(&mut self, message: &impl prost::Message) {
        self.send_raw(protocol::encode_client_data(&grpc_frame(message)))
            .await;
    }

    pub async fn end(&mut self) {
        self.send_raw(vec![protocol::CLIENT_END_OF_STREAM]).await;
    }

    /// The next frame from the server, or `None` once it closed the socket.
    pub async fn next_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some(frame) = self.decoder.next_frame(MAX).unwrap() {
                return Some(frame);
            }
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("the server answers within 10 s");
            match message {
                Some(Ok(Message::Binary(bytes))) => self.decoder.push(&bytes),
                Some(Ok(Message::Close(frame))) => {
                    self.close_code = frame.map(|frame| u16::from(frame.code));
                    return None;
                }
                None => return None,
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
                Some(Err(error)) => panic!("socket error: {error}"),
            }
        }
    }

    /// The code of the close frame the server sent (1000 normal, 1001 going away), once
    /// [`WsCall::next_frame`] has read it.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// The next data message, decoded.
    pub async fn next_message<M: prost::Message + Default>(&mut self) -> M {
        match self.next_frame().await {
            Some(ServerFrame::Data(frame)) => M::decode(&frame[protocol::FRAME_PREFIX..]).unwrap(),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Reads everything up to the server's close.
    pub async fn response(mut self) -> WsResponse {
        let Some(ServerFrame::Headers(headers)) = self.next_frame().await else {
            panic!("the response must start with a header frame");
        };
        let mut messages = Vec::new();
        let mut trailers = HeaderMap::new();
        while let Some(frame) = self.next_frame().await {
            match frame {
                ServerFrame::Data(frame) => messages.push(frame),
                ServerFrame::Headers(headers) => trailers = headers,
            }
        }
        WsResponse {
            headers,
            messages,
            trailers,
        }
    }
}
