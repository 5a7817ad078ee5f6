//! The caller's request body on its way upstream: bounded, counted, never held whole.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};

/// Raised when a streamed request body grows past the limit.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {0} bytes")]
pub struct TooLarge(pub u64);

/// What goes upstream: the caller's body streamed through bounded, or one already read (and
/// hashed, for a signer).
pub type OutboundBody = Either<LimitedBody, Full<Bytes>>;

/// The caller's body on its way upstream: fails past `limit`, counts bytes, keeps its size
/// hint (so a known length goes upstream as `Content-Length`, which S3 requires).
#[derive(Debug)]
pub struct LimitedBody {
    inner: axum::body::Body,
    limit: u64,
    seen: Arc<AtomicU64>,
}

impl LimitedBody {
    pub fn new(inner: axum::body::Body, limit: u64, seen: Arc<AtomicU64>) -> Self {
        Self { inner, limit, seen }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = this.seen.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
                    if total > this.limit {
                        return Poll::Ready(Some(Err(Box::new(TooLarge(this.limit)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
