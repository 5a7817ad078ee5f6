//! Bodies streamed through credgate: the caller's request body, bounded, and the upstream's
//! response body, counted. Neither is ever held whole (except a bounded request body that a
//! signer must hash).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use tokio::time::{Instant, Sleep};

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

/// The upstream paused longer than the idle timeout in the middle of a response.
#[derive(Debug, thiserror::Error)]
#[error("the upstream sent nothing for {0:?}")]
pub struct Stalled(pub Duration);

/// The upstream's response body on its way back: counted, cut off when the upstream pauses
/// longer than `idle`, and reported once when it ends, fails, or is dropped because the
/// caller disconnected (which also closes the upstream connection, cancelling the call).
pub struct TrackedBody<B: Body> {
    inner: B,
    bytes: u64,
    done: Option<Done>,
    idle: Duration,
    // Armed only while the upstream keeps the body waiting, so a body whose frames are ready
    // at once never touches the timer; kept once made, and reset rather than remade.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<B: Body> TrackedBody<B> {
    pub fn new(inner: B, idle: Duration, done: impl FnOnce(u64, StreamEnd) + Send + 'static) -> Self {
        Self {
            inner,
            bytes: 0,
            done: Some(Box::new(done)),
            idle,
            timer: None,
            armed: false,
        }
    }

    fn finish(&mut self, end: StreamEnd) {
        if let Some(done) = self.done.take() {
            done(self.bytes, end);
        }
    }

    /// Whether the upstream has been silent for longer than `idle`.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = Instant::now() + self.idle;
        let timer = match &mut self.timer {
            Some(timer) => {
                if !self.armed {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.armed = true;
        timer.as_mut().poll(cx).is_ready()
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
                this.armed = false;
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
            Poll::Pending if this.done.is_some() && this.stalled(cx) => {
                this.finish(StreamEnd::UpstreamError);
                Poll::Ready(Some(Err(Box::new(Stalled(this.idle)))))
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
