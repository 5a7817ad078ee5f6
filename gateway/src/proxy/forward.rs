//! Forward: journal the call's opening, send the request upstream, stream the response back
//! with the credential kept out of it, and record the outcome when the stream ends.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::response::Response;
use http::{HeaderMap, Method, header};
use http_body_util::Either;

use super::body::{Prepared, StreamEnd, TrackedBody};
use super::call::{Call, Failure, forwarded, refuse};
use super::headers;
use super::scrub::{Needles, ScrubbedBody};
use super::target::Target;
use super::upgrade::{self, ClientUpgrade};
use crate::cache::LiveSecret;
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::outbound::body::TooLarge;
use crate::outbound::client;

/// The request as it leaves, credential on.
#[derive(Debug)]
pub struct Outbound {
    pub method: Method,
    pub target: Target,
    pub headers: HeaderMap,
    pub body: Prepared,
    /// What must not come back.
    pub needles: Needles,
    /// Set for a WebSocket handshake: the caller's side, joined to the upstream's on `101`.
    pub upgrade: Option<ClientUpgrade>,
}

/// The phase: journal, send, stream back.
pub async fn send(
    call: &mut Call,
    secret: &LiveSecret,
    provider: &str,
    outbound: Outbound,
) -> Result<Response, Failure> {
    let Outbound {
        method,
        target,
        headers,
        body: Prepared { body, seen, .. },
        needles,
        upgrade,
    } = outbound;
    let uri = target.uri()?;
    let state = call.state.clone();

    // Journal the call's opening, durably, before the credential leaves. Should credgate stop
    // before the outcome is recorded, the opening is chained as `interrupted`.
    call.event.action = "proxy.response".into();
    state.audit.open(&call.event, &mut call.opened).await.map_err(|_| {
        refuse(
            ErrorCode::AuditUnavailable,
            "the audit trail cannot be written, so the call was not made",
        )
    })?;
    // The opening now counts in the backlog itself.
    drop(call.room.take());

    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    // A handshake needs HTTP/1.1 to the upstream too: a connection that negotiated h2 could
    // not switch protocols.
    let client = match upgrade {
        Some(_) => state.upstream.http1_client(secret.meta.allow_private_destinations),
        None => state.upstream.client(secret.meta.allow_private_destinations),
    };
    let upstream_started = Instant::now();
    let response = match tokio::time::timeout(state.upstream.first_byte_timeout, client.request(request)).await {
        Err(_) => {
            return Err(forwarded(
                ErrorCode::UpstreamTimeout,
                "the upstream did not answer in time",
            ));
        }
        Ok(Err(e)) => return Err(classify(&e)),
        Ok(Ok(response)) => response,
    };
    state.metrics.upstream(provider, upstream_started.elapsed());

    let mut response = response;
    if let Some(caller) = upgrade
        && response.status() == http::StatusCode::SWITCHING_PROTOCOLS
    {
        return switch(call, caller, &mut response, &needles, provider, upstream_started);
    }

    // Stream back, and record the result when the stream ends.
    let status = response.status();
    let (up_parts, up_body) = response.into_parts();
    let mut caller_headers = headers::to_caller(&up_parts.headers);
    needles.scrub_headers(&mut caller_headers);
    let up_body = if secret.meta.redact_responses {
        if let Some(encoding) = up_parts
            .headers
            .get(header::CONTENT_ENCODING)
            .filter(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            tracing::info!(encoding = ?encoding, "compressed response refused: it cannot be scrubbed");
            return Err(forwarded(
                ErrorCode::UpstreamUnreachable,
                "the upstream answered with a compressed body although asked not to; this secret's responses are scrubbed, which needs plain bytes",
            ));
        }
        ScrubbedBody::wrap(up_body, needles)
    } else {
        Either::Left(up_body)
    };
    let upstream_latency_ms = upstream_started.elapsed().as_secs_f64() * 1e3;
    let opened = call
        .opened
        .take()
        .ok_or_else(|| ApiError::internal("a forwarded call has no journaled opening"))?;
    let permit = call.permit.take();
    let started = call.started;
    let provider_id = provider.to_owned();
    let tracked = TrackedBody::new(up_body, state.upstream.idle_timeout, move |bytes_out, end| {
        let outcome = match end {
            StreamEnd::Complete => "ok",
            StreamEnd::UpstreamError => "upstream_error",
            StreamEnd::Abandoned => "abandoned",
        };
        state.metrics.call(outcome, &provider_id, started.elapsed());
        opened.close(|result| {
            result.at = now();
            result.outcome = outcome.into();
            result.status = Some(status.as_u16());
            result.upstream_latency_ms = Some(upstream_latency_ms);
            result.bytes_in = Some(seen.load(Ordering::Relaxed));
            result.bytes_out = Some(bytes_out);
            result.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        });
        // The call is in flight until its response has streamed out.
        drop(permit);
    });
    let mut out = Response::new(axum::body::Body::new(tracked));
    *out.status_mut() = status;
    *out.headers_mut() = caller_headers;
    Ok(out)
}

/// The upstream switched protocols: answer the caller's handshake with its `101` and join the
/// two connections; the call's record is closed when they part.
fn switch(
    call: &mut Call,
    caller: ClientUpgrade,
    response: &mut hyper::Response<hyper::body::Incoming>,
    needles: &Needles,
    provider: &str,
    upstream_started: Instant,
) -> Result<Response, Failure> {
    let state = call.state.clone();
    let opened = call
        .opened
        .take()
        .ok_or_else(|| ApiError::internal("a forwarded call has no journaled opening"))?;
    let permit = call.permit.take();
    let started = call.started;
    let provider_id = provider.to_owned();
    let upstream_latency_ms = upstream_started.elapsed().as_secs_f64() * 1e3;
    let mut caller_headers = headers::to_caller(response.headers());
    needles.scrub_headers(&mut caller_headers);
    upgrade::handshake_headers(&mut caller_headers);
    upgrade::splice(
        caller,
        hyper::upgrade::on(response),
        move |joined, bytes_in, bytes_out| {
            let outcome = if joined { "ok" } else { "abandoned" };
            state.metrics.call(outcome, &provider_id, started.elapsed());
            opened.close(|result| {
                result.at = now();
                result.outcome = outcome.into();
                result.status = Some(http::StatusCode::SWITCHING_PROTOCOLS.as_u16());
                result.upstream_latency_ms = Some(upstream_latency_ms);
                result.bytes_in = Some(bytes_in);
                result.bytes_out = Some(bytes_out);
                result.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
            });
            drop(permit);
        },
    );
    let mut out = Response::new(axum::body::Body::empty());
    *out.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    *out.headers_mut() = caller_headers;
    Ok(out)
}

/// Classifies a failed upstream call by where it failed.
fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut timed_out = false;
    while let Some(s) = source {
        if let Some(too_large) = s.downcast_ref::<TooLarge>() {
            return forwarded(ErrorCode::PayloadTooLarge, &too_large.to_string());
        }
        timed_out |= s.is::<client::ConnectTimedOut>()
            || s.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        source = s.source();
    }
    if timed_out {
        return forwarded(ErrorCode::UpstreamTimeout, "the upstream did not answer in time");
    }
    let detail = if e.is_connect() {
        "cannot connect to the upstream"
    } else {
        "the upstream call failed"
    };
    // The request's URL, which may carry an injected query parameter, is not part of these
    // errors: hyper's never name it.
    tracing::info!(error = %error_chain(e), "upstream call failed");
    forwarded(ErrorCode::UpstreamUnreachable, detail)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
