//! Bodies streamed through credgate: the caller's request body, bounded, and the upstream's
//! response body, counted. Neither is ever held whole (except a bounded request body that a
//! signer must hash).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Raised when a streamed request body grows past the limit.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {0} bytes")]
pub struct TooLarge(pub u64);

/// The caller's body on its way upstream: fails past `limit`, counts bytes, keeps its size
/// hint (so a known length goes upstream as `Content-Length`, which S3 requires).
pub struct LimitedBody {
    // A mutex only to make the body `Sync` (the HTTP client requires it); it is reached
    // through `get_mut`, which never locks.
    inner: Mutex<axum::body::Body>,
    limit: u64,
    seen: Arc<AtomicU64>,
}

impl LimitedBody {
    pub fn new(inner: axum::body::Body, limit: u64, seen: Arc<AtomicU64>) -> Self {
        Self {
            inner: Mutex::new(inner),
            limit,
            seen,
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let limit = this.limit;
        let inner = this.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = this.seen.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
                    if total > limit {
                        return Poll::Ready(Some(Err(Box::new(TooLarge(limit)))));
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
        self.inner.lock().map(|b| b.is_end_stream()).unwrap_or(false)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.lock().map(|b| b.size_hint()).unwrap_or_default()
    }
}

/// How a response stream ended, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    Complete,
    /// The upstream failed mid-stream.
    UpstreamError,
    /// The caller went away before the end.
    Abandoned,
}

type Done = Box<dyn FnOnce(u64, StreamEnd) + Send>;

/// The upstream's response body on its way back: counted, and reported once when it ends,
/// fails, or is dropped because the caller disconnected (which also closes the upstream
/// connection, cancelling the call).
pub struct TrackedBody<B: Body> {
    inner: B,
    bytes: u64,
    done: Option<Done>,
}

impl<B: Body> TrackedBody<B> {
    pub fn new(inner: B, done: impl FnOnce(u64, StreamEnd) + Send + 'static) -> Self {
        Self {
            inner,
            bytes: 0,
            done: Some(Box::new(done)),
        }
    }

    fn finish(&mut self, end: StreamEnd) {
        if let Some(done) = self.done.take() {
            done(self.bytes, end);
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(StreamEnd::UpstreamError);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.finish(StreamEnd::Complete);
                Poll::Ready(None)
            }
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

impl<B: Body> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        // A body dropped before its end means the caller went away, unless nothing was left
        // to read (hyper never polls the body of a HEAD or 204 response).
        if self.done.is_some() {
            let end = if self.inner.is_end_stream() {
                StreamEnd::Complete
            } else {
                StreamEnd::Abandoned
            };
            self.finish(end);
        }
    }
}
