//! A response body that carries something for the life of its call: a concurrency permit, a
//! metrics record. Whatever it carries is dropped when the body ends or is dropped, which for a
//! stream is when the stream ends, not when its headers go out.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;

/// What a [`CallBody`] carries; it sees each frame as it passes.
pub trait CallGuard: Send + Unpin + 'static {
    fn on_frame(&mut self, _frame: &Frame<Bytes>) {}
}

pub struct CallBody<G> {
    inner: Body,
    guard: G,
}

impl<G: CallGuard> CallBody<G> {
    /// `inner`, holding `guard` until it is done.
    pub fn wrap(inner: Body, guard: G) -> Body {
        Body::new(Self { inner, guard })
    }
}

impl<G: CallGuard> http_body::Body for CallBody<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            this.guard.on_frame(frame);
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
