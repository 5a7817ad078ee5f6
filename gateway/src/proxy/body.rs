//! Bodies streamed through credgate: the caller's request body, bounded, and the upstream's
//! response body, counted. Neither is ever held whole (except a bounded request body that a
//! signer must hash).
//!
//! The phase ([`bound`], then [`prepare`]): a body declared larger than the limit is refused
//! before anything is decrypted; then it is read (and hashed) if the injector signs it, or
//! streamed through bounded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Either, Full};
use sha2::{Digest, Sha256};
use tokio::time::{Instant, Sleep};
use url::Url;

use super::call::{Failure, refuse};
use crate::cache::LiveSecret;
use crate::error::ErrorCode;
use crate::inject::{BodyHash, BodyNeed, Injector, Payload};
use crate::outbound::body::{LimitedBody, OutboundBody};

/// Bodies up to this size are hashed for S3 signatures; larger ones stream as
/// `UNSIGNED-PAYLOAD`, which S3 accepts (TLS protects their integrity on the way).
const S3_HASH_LIMIT: u64 = 1024 * 1024;

/// Bodies a provider signs a digest of are held whole to hash them, up to this size.
const DIGEST_LIMIT: u64 = 8 * 1024 * 1024;

/// The caller's body, its declared length known to fit.
#[derive(Debug)]
pub struct Inbound {
    body: axum::body::Body,
    content_length: Option<u64>,
    limit: u64,
}

/// The body as it will go upstream, the description of it an injector signs, and the count of
/// bytes the caller sent, for the audit record.
#[derive(Debug)]
pub struct Prepared {
    pub payload: Payload,
    pub body: OutboundBody,
    pub seen: Arc<AtomicU64>,
}

/// Refuses a body declared larger than `limit`, before anything is decrypted.
pub async fn bound(limit: u64, caller: &HeaderMap, body: axum::body::Body) -> Result<Inbound, Failure> {
    let content_length = caller
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if content_length.is_some_and(|n| n > limit) {
        linger(body).await;
        return Err(refuse(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        ));
    }
    Ok(Inbound {
        body,
        content_length,
        limit,
    })
}

impl Inbound {
    /// A body already held whole: a call made on approval.
    pub fn held(bytes: Vec<u8>, limit: u64) -> Self {
        Self {
            content_length: Some(bytes.len() as u64),
            body: axum::body::Body::from(bytes),
            limit,
        }
    }

    /// Reads the whole body for a call that waits for approval, refusing one over `most`
    /// bytes (the held call is kept whole until it is made).
    pub async fn collect(self, most: u64) -> Result<Vec<u8>, Failure> {
        let too_large = || {
            refuse(
                ErrorCode::PayloadTooLarge,
                format!("a call that waits for approval is kept whole: its body may be at most {most} bytes"),
            )
        };
        if self.content_length.is_some_and(|n| n > most) {
            linger(self.body).await;
            return Err(too_large());
        }
        let limited = http_body_util::Limited::new(self.body, usize::try_from(most).unwrap_or(usize::MAX));
        match limited.collect().await {
            Ok(collected) => Ok(collected.to_bytes().to_vec()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(_) => Err(refuse(ErrorCode::BadRequest, "the request body could not be read")),
        }
    }
}

/// Reads and hashes the body when the injector signs it, else streams it through bounded.
pub async fn prepare(
    inbound: Inbound,
    injector: &dyn Injector,
    secret: &LiveSecret,
    url: &Url,
    headers: &mut HeaderMap,
) -> Result<Prepared, Failure> {
    let seen = Arc::new(AtomicU64::new(0));
    let (payload, body) = describe(inbound, injector, secret, url, headers, &seen).await?;
    if let Payload::Sha256(_) | Payload::Unsigned(_) = &payload {
        headers.remove("x-amz-content-sha256");
    }
    Ok(Prepared { payload, body, seen })
}

async fn describe(
    inbound: Inbound,
    injector: &dyn Injector,
    secret: &LiveSecret,
    url: &Url,
    headers: &HeaderMap,
    seen: &Arc<AtomicU64>,
) -> Result<(Payload, OutboundBody), Failure> {
    let Inbound {
        body,
        content_length,
        limit,
    } = inbound;
    let stream = |body| Either::Left(LimitedBody::new(body, limit, seen.clone()));
    let may_stream_unsigned = match injector.body_need(&secret.meta.config, url) {
        BodyNeed::Nothing => return Ok((Payload::NotNeeded, stream(body))),
        BodyNeed::Sha256 { may_stream_unsigned } => may_stream_unsigned,
        BodyNeed::Digest(hash) => {
            // Held whole only to hash it: bounded like S3's hashed bodies, not by the (much
            // larger) limit on streamed ones.
            let (most, whose) = if DIGEST_LIMIT < limit {
                (DIGEST_LIMIT, " (the provider signs a digest of bodies up to that size)")
            } else {
                (limit, "")
            };
            let bytes = whole(body, content_length, most, whose, seen).await?;
            let algorithm = match hash {
                BodyHash::Sha256 => &ring::digest::SHA256,
                BodyHash::Sha512 => &ring::digest::SHA512,
            };
            let digest = ring::digest::digest(algorithm, &bytes).as_ref().to_vec();
            return Ok((Payload::Digest(digest), Either::Right(Full::new(bytes))));
        }
        BodyNeed::Bytes { most } => {
            // The smaller bound speaks: the provider's, or the gateway's own.
            let (most, whose) = if most < limit {
                (most, " (the provider reads bodies it signs up to that size)")
            } else {
                (limit, "")
            };
            let bytes = whole(body, content_length, most, whose, seen).await?;
            return Ok((Payload::Bytes(bytes.clone()), Either::Right(Full::new(bytes))));
        }
    };
    // An AWS SDK says how it sends the payload; credgate signs that declaration.
    if let Some(declared) = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        match declared {
            "UNSIGNED-PAYLOAD" | "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => {
                return Ok((Payload::Unsigned(declared.to_owned()), stream(body)));
            }
            hash if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                return Ok((Payload::Sha256(hash.to_ascii_lowercase()), stream(body)));
            }
            other if other.starts_with("STREAMING-") => {
                return Err(refuse(
                    ErrorCode::BadRequest,
                    "signed streaming uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) cannot be re-signed; configure the SDK for unsigned payloads",
                ));
            }
            _ => {}
        }
    }
    if may_stream_unsigned && content_length.is_none_or(|n| n > S3_HASH_LIMIT) {
        return Ok((Payload::Unsigned("UNSIGNED-PAYLOAD".into()), stream(body)));
    }
    let bytes: Bytes = http_body_util::Limited::new(body, limit as usize)
        .collect()
        .await
        .map_err(|_| {
            refuse(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than {limit} bytes"),
            )
        })?
        .to_bytes();
    seen.store(bytes.len() as u64, Ordering::Relaxed);
    let hash = hex::encode(Sha256::digest(&bytes));
    Ok((Payload::Sha256(hash), Either::Right(Full::new(bytes))))
}

/// The whole body, for a provider that signs it: refused with `payload_too_large` past `most`
/// bytes (`whose` says whose bound that is).
async fn whole(
    body: axum::body::Body,
    content_length: Option<u64>,
    most: u64,
    whose: &str,
    seen: &Arc<AtomicU64>,
) -> Result<Bytes, Failure> {
    let too_large = || {
        refuse(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {most} bytes{whose}"),
        )
    };
    if content_length.is_some_and(|n| n > most) {
        linger(body).await;
        return Err(too_large());
    }
    let bytes = match http_body_util::Limited::new(body, usize::try_from(most).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(_) => return Err(refuse(ErrorCode::BadRequest, "the request body could not be read")),
    };
    seen.store(bytes.len() as u64, Ordering::Relaxed);
    Ok(bytes)
}

/// Reads and discards a refused body for a little while before answering, as nginx's lingering
/// close does: a client still busy sending would otherwise see a reset connection instead of
/// the 413. Bounded in bytes and time, and the bytes go nowhere.
async fn linger(body: axum::body::Body) {
    const MAX_BYTES: usize = 256 << 20;
    const MAX_TIME: std::time::Duration = std::time::Duration::from_secs(5);
    let drain = async {
        let mut body = body;
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > MAX_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(MAX_TIME, drain).await;
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
