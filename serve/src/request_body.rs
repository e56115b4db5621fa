//! A gRPC call's request body as its service sees it, bounded by the call gate: no message larger
//! than the largest allowed, and no message left half-sent.
//!
//! The size is checked from each message's prefix, before its bytes are buffered anywhere, so an
//! oversized message costs the server nothing; the call ends with OUT_OF_RANGE. A message that
//! has begun must arrive in full within the request message timeout of its first byte, and the
//! one request of a unary or server-streaming call within that time of the call's start;
//! otherwise the call ends with DEADLINE_EXCEEDED, which frees its permit, and the connection
//! under an unfinished HTTP/1.1 body closes. Between the messages of a client stream there is no
//! such bound: a stream may wait for its client's next message as long as its deadline allows.
//! A unary or server-streaming call whose client sends a second message ends with INTERNAL.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::Frame;
use tokio::time::{Instant, Sleep};
use tonic::Status;

use crate::framing::Framing;

/// The bounds on one call's request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestBounds {
    /// The largest message, in bytes.
    pub max_message_size: u64,
    /// How long a message may take to arrive from its first byte (or, for a call that takes one
    /// message, from the call's start).
    pub message_timeout: Duration,
}

/// `inner` under [`RequestBounds`].
pub(crate) struct BoundedRequest<B> {
    inner: B,
    bounds: RequestBounds,
    framing: Framing,
    /// The call takes one message: it must arrive within the timeout of the call's start.
    single_message: bool,
    started: Instant,
    /// When the message in progress began, and which one it is.
    message_began: Option<(u64, Instant)>,
    /// Armed only while a bounded wait is pending, so a request that arrives at once pays for no
    /// timer.
    timer: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl<B> BoundedRequest<B> {
    pub(crate) fn new(
        inner: B,
        bounds: RequestBounds,
        single_message: bool,
        started: Instant,
    ) -> Self {
        Self {
            inner,
            bounds,
            framing: Framing::default(),
            single_message,
            started,
            message_began: None,
            timer: None,
            failed: false,
        }
    }

    /// When the wait for more of the request must end, if it is bounded now.
    fn wait_deadline(&self) -> Option<Instant> {
        if self.framing.in_message() {
            return self
                .message_began
                .map(|(_, began)| began + self.bounds.message_timeout);
        }
        (self.single_message && self.framing.completed() == 0)
            .then(|| self.started + self.bounds.message_timeout)
    }

    fn fail(&mut self, status: Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.failed = true;
        self.timer = None;
        Poll::Ready(Some(Err(status)))
    }
}

impl<B> http_body::Body for BoundedRequest<B>
where
    B: http_body::Body<Data = Bytes, Error = Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let max = this.bounds.max_message_size;
                    if let Err(oversized) = this.framing.read(data, max) {
                        return this.fail(Status::out_of_range(format!(
                            "request message too large: {} bytes, over the limit of {max} bytes",
                            oversized.len
                        )));
                    }
                    let current = this.framing.started();
                    if this.single_message && current > 1 {
                        // As grpc-go and grpc-java answer it: the service would see one message
                        // and drop the rest unread, so the call fails instead of answering OK.
                        return this.fail(Status::internal(
                            "this method takes one request message, and the client sent more",
                        ));
                    }
                    if this.framing.in_message()
                        && this
                            .message_began
                            .is_none_or(|(number, _)| number != current)
                    {
                        this.message_began = Some((current, Instant::now()));
                    }
                    // The deadline may have moved on: set anew at the next wait.
                    this.timer = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let Some(deadline) = this.wait_deadline() else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let timeout = this.bounds.message_timeout;
                let status = if this.framing.in_message() {
                    Status::deadline_exceeded(format!(
                        "a request message did not arrive in full within {timeout:?} of its \
                         first byte"
                    ))
                } else {
                    Status::deadline_exceeded(format!(
                        "the request message did not arrive within {timeout:?} of the call's start"
                    ))
                };
                this.fail(status)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
