//! The browser half: a channel for tonic-generated clients that carries each call over its own
//! WebSocket, so client and bidirectional streaming work from a page.
//!
//! Request messages go out as the request stream produces them, not after it ends. Sending waits
//! while the socket's `bufferedAmount` is above a high-water mark, so a fast producer cannot make
//! the browser buffer without bound. Dropping the call, or the response stream, closes the socket,
//! which the server sees as a cancellation.
//!
//! Every failure is a `tonic::Status`: `UNAVAILABLE` when the server cannot be reached or the
//! socket closes before the call ends, `INTERNAL` when the server breaks the protocol.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    rc::{Rc, Weak},
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::{
    future::{AbortHandle, Abortable},
    StreamExt,
};
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use send_wrapper::SendWrapper;
use tonic::{body::Body, Status};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

use crate::{
    protocol::{self, ServerFrame, ServerFrameDecoder},
    SUBPROTOCOL,
};

/// Sending pauses while more than this many bytes wait in the socket's send buffer.
const HIGH_WATER_MARK: u32 = 256 * 1024;
/// The largest response message accepted, in bytes.
const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// A channel for tonic-generated clients over WebSockets: `GreeterClient::new(WebSocketChannel::new(url))`.
#[derive(Debug, Clone)]
pub struct WebSocketChannel {
    base_url: String,
    offer_subprotocol: bool,
}

impl WebSocketChannel {
    /// A channel to the server at `base_url` (`http://` or `https://`; the socket uses `ws://` or
    /// `wss://` on the same host). Sockets offer the `grpc-websockets` subprotocol.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            offer_subprotocol: true,
        }
    }

    /// Opens sockets without offering the subprotocol, for a path through a proxy that does not
    /// pass subprotocols on (a browser fails a handshake whose answer drops the one it offered).
    /// The server half of this crate accepts both forms.
    pub fn without_subprotocol(mut self) -> Self {
        self.offer_subprotocol = false;
        self
    }
}

impl tower_service::Service<Request<Body>> for WebSocketChannel {
    type Response = Response<WebSocketBody>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        Box::pin(call(self.base_url.clone(), self.offer_subprotocol, request))
    }
}

/// What the socket's event handlers report.
enum SocketEvent {
    Open,
    Message(Vec<u8>),
    Closed { code: u16, reason: String },
}

/// The socket and its handlers. Dropping it closes the socket and stops the request pump.
struct Socket {
    socket: WebSocket,
    pump: RefCell<Option<AbortHandle>>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    fn open(
        url: &str,
        offer_subprotocol: bool,
    ) -> Result<(Rc<Self>, mpsc::UnboundedReceiver<SocketEvent>), Status> {
        let socket = if offer_subprotocol {
            WebSocket::new_with_str(url, SUBPROTOCOL)
        } else {
            WebSocket::new(url)
        };
        let socket =
            socket.map_err(|error| Status::unavailable(format!("cannot open {url}: {error:?}")))?;
        socket.set_binary_type(BinaryType::Arraybuffer);
        let (events, received) = mpsc::unbounded();

        let sender = events.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| {
            let _ = sender.unbounded_send(SocketEvent::Open);
        });
        let sender = events.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let bytes = event
                .data()
                .dyn_into::<js_sys::ArrayBuffer>()
                .map(|buffer| js_sys::Uint8Array::new(&buffer).to_vec())
                .unwrap_or_default();
            let _ = sender.unbounded_send(SocketEvent::Message(bytes));
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let _ = events.unbounded_send(SocketEvent::Closed {
                code: event.code(),
                reason: event.reason(),
            });
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let socket = Rc::new(Self {
            socket,
            pump: RefCell::new(None),
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
        Ok((socket, received))
    }

    fn send(&self, bytes: &[u8]) -> Result<(), Status> {
        self.socket
            .send_with_u8_array(bytes)
            .map_err(|error| Status::unavailable(format!("cannot send on the socket: {error:?}")))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

/// `http://host/path` → `ws://host/path` (and https → wss).
fn websocket_url(base_url: &str, path: &str) -> Result<String, Status> {
    let base_url = base_url.trim_end_matches('/');
    let url = if let Some(rest) = base_url.strip_prefix("https://") {
        format!("wss://{rest}{path}")
    } else if let Some(rest) = base_url.strip_prefix("http://") {
        format!("ws://{rest}{path}")
    } else {
        return Err(Status::invalid_argument(format!(
            "the server URL must start with http:// or https://, got {base_url}"
        )));
    };
    Ok(url)
}

async fn call(
    base_url: String,
    offer_subprotocol: bool,
    request: Request<Body>,
) -> Result<Response<WebSocketBody>, Status> {
    let url = websocket_url(&base_url, request.uri().path())?;
    let (socket, mut events) = Socket::open(&url, offer_subprotocol)?;
    match events.next().await {
        Some(SocketEvent::Open) => {}
        _ => {
            return Err(Status::unavailable(format!(
                "cannot reach the server at {url}"
            )))
        }
    }

    let (parts, body) = request.into_parts();
    socket.send(&protocol::encode_header_block(&parts.headers))?;
    let (abort, registration) = AbortHandle::new_pair();
    *socket.pump.borrow_mut() = Some(abort);
    wasm_bindgen_futures::spawn_local({
        let socket = Rc::downgrade(&socket);
        async move {
            let _ = Abortable::new(pump_request(body, socket), registration).await;
        }
    });

    let mut body = WebSocketBody {
        socket: SendWrapper::new(Some(socket)),
        events: SendWrapper::new(events),
        decoder: ServerFrameDecoder::default(),
        finished: false,
    };
    let headers = body.next_headers().await?;
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    Ok(response)
}

/// Sends the request's messages as they are produced, then the end-of-stream marker.
async fn pump_request(mut body: Body, socket: Weak<Socket>) {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let Some(socket) = socket.upgrade() else {
            return;
        };
        while socket.socket.buffered_amount() > HIGH_WATER_MARK {
            sleep_ms(5).await;
        }
        if socket.send(&protocol::encode_client_data(&data)).is_err() {
            return;
        }
    }
    if let Some(socket) = socket.upgrade() {
        let _ = socket.send(&[protocol::CLIENT_END_OF_STREAM]);
    }
}

async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global: web_sys::Window = js_sys::global().unchecked_into();
        let _ = global.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The response of a call over a WebSocket: gRPC data frames, then the trailers. Holds the socket
/// open; dropping it closes the socket.
pub struct WebSocketBody {
    // The browser's objects live on the one thread a page has; SendWrapper makes the body `Send`
    // as tonic requires, and would panic rather than let another thread touch them.
    socket: SendWrapper<Option<Rc<Socket>>>,
    events: SendWrapper<mpsc::UnboundedReceiver<SocketEvent>>,
    decoder: ServerFrameDecoder,
    finished: bool,
}

impl WebSocketBody {
    /// Waits for the response headers: the first header frame.
    async fn next_headers(&mut self) -> Result<HeaderMap, Status> {
        loop {
            match self
                .decoder
                .next_frame(MAX_MESSAGE_SIZE)
                .map_err(protocol_error)?
            {
                Some(ServerFrame::Headers(headers)) => return Ok(headers),
                Some(ServerFrame::Data(_)) => {
                    return Err(Status::internal(
                        "grpc-websockets: data before the response headers",
                    ))
                }
                None => {}
            }
            match self.events.next().await {
                Some(SocketEvent::Message(bytes)) => self.decoder.push(&bytes),
                Some(SocketEvent::Open) => {}
                Some(SocketEvent::Closed { code, reason }) => {
                    return Err(closed_early(code, &reason))
                }
                None => return Err(closed_early(1006, "")),
            }
        }
    }

    fn close(&mut self) {
        self.finished = true;
        (*self.socket).take();
    }
}

impl http_body::Body for WebSocketBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match this.decoder.next_frame(MAX_MESSAGE_SIZE) {
                Ok(Some(ServerFrame::Data(data))) => {
                    return Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Ok(Some(ServerFrame::Headers(trailers))) => {
                    this.close();
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(None) => {}
                Err(error) => {
                    this.close();
                    return Poll::Ready(Some(Err(protocol_error(error))));
                }
            }
            match this.events.poll_next_unpin(cx) {
                Poll::Ready(Some(SocketEvent::Message(bytes))) => this.decoder.push(&bytes),
                Poll::Ready(Some(SocketEvent::Open)) => {}
                Poll::Ready(Some(SocketEvent::Closed { code, reason })) => {
                    this.close();
                    return Poll::Ready(Some(Err(closed_early(code, &reason))));
                }
                Poll::Ready(None) => {
                    this.close();
                    return Poll::Ready(Some(Err(closed_early(1006, ""))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }
}

fn closed_early(code: u16, reason: &str) -> Status {
    Status::unavailable(format!(
        "the connection closed before the call ended (WebSocket close code {code}{}{reason})",
        if reason.is_empty() { "" } else { ": " }
    ))
}

fn protocol_error(error: protocol::ProtocolError) -> Status {
    Status::internal(format!("grpc-websockets: {error}"))
}
