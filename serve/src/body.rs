//! A response body that carries a guard: the guard lives exactly as long as the response (so what
//! it holds, a request's place among those in flight or a call's record and permit, is released
//! when the response ends or is dropped) and sees each frame as it passes (so a call's status can
//! be read from its trailers). One wrapper for every layer that needs this.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::Frame;
use pin_project_lite::pin_project;

/// What a [`GuardedBody`] carries along.
pub(crate) trait BodyGuard {
    /// Sees each frame of the body as it passes; nothing by default.
    fn frame(&mut self, _frame: &Frame<Bytes>) {}

    /// Told when the body had nothing to give when polled; nothing by default.
    fn pending(&mut self) {}
}

pin_project! {
    /// `inner`, with `guard` held until the body ends or is dropped.
    pub(crate) struct GuardedBody<B, G> {
        #[pin]
        inner: B,
        guard: G,
    }
}

impl<B, G> GuardedBody<B, G> {
    pub(crate) fn new(inner: B, guard: G) -> Self {
        Self { inner, guard }
    }
}

impl<B, G> http_body::Body for GuardedBody<B, G>
where
    B: http_body::Body<Data = Bytes>,
    G: BodyGuard,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => this.guard.frame(frame),
            Poll::Pending => this.guard.pending(),
            Poll::Ready(_) => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
