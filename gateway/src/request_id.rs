//! Request ids, request logging and the final rendering of credgate's own errors.
//!
//! Every response carries `X-Credgate-Request-Id`. The id is minted here, never taken from
//! the caller, so it can be trusted when it is quoted back in a support request or found in
//! the audit trail.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::aws_errors::{self, AwsShape};
use crate::error::{ErrorCode, ErrorRender, render};

pub const REQUEST_ID_HEADER: &str = "x-credgate-request-id";

/// The current request's id, in request extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn middleware(mut req: Request, next: Next) -> Response {
    let id = RequestId::new();
    req.extensions_mut().insert(id.clone());
    // The subscriber formats a span's fields when the span opens, on every request, logged
    // or not: the id alone then. The method and path are recorded for a request that failed,
    // before its error is logged; a call's audit record (found by the id) has them anyway.
    let span = tracing::info_span!(
        "request",
        request_id = %id.0,
        method = tracing::field::Empty,
        path = tracing::field::Empty
    );
    let (method, uri) = (req.method().clone(), req.uri().clone());
    async move {
        let started = std::time::Instant::now();
        let mut response = next.run(req).await;
        if response.extensions().get::<ErrorRender>().is_some() {
            let span = tracing::Span::current();
            span.record("method", tracing::field::display(&method));
            span.record("path", tracing::field::display(uri.path()));
        }
        stamp(&mut response, &id.0);
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request done"
        );
        response
    }
    .instrument(span)
    .await
}

/// Gives a response its request id, and an error its JSON body.
pub fn stamp(response: &mut Response, request_id: &str) {
    if let Some(error) = response.extensions_mut().remove::<ErrorRender>() {
        finish_error(response, &error, request_id);
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

fn finish_error(response: &mut Response, error: &ErrorRender, request_id: &str) {
    match (&error.cause, error.code) {
        (Some(cause), _) => {
            tracing::error!(code = error.code.as_str(), cause = %cause, "request failed")
        }
        (None, ErrorCode::Internal) => {
            tracing::error!(code = error.code.as_str(), "request failed")
        }
        // One line per shed call would add work exactly when there is too much; the metrics
        // count them, and the audit writer logs (at a bounded rate) why it refuses.
        (None, ErrorCode::Overloaded | ErrorCode::AuditUnavailable) => {
            tracing::debug!(code = error.code.as_str(), "request shed")
        }
        (None, _) => {
            tracing::info!(code = error.code.as_str(), message = %error.message, "request refused")
        }
    }
    let (body, content_type) = match error.aws {
        Some(shape) => {
            if shape == AwsShape::Json {
                response
                    .headers_mut()
                    .insert("x-amzn-errortype", HeaderValue::from_static(error.code.as_str()));
            }
            let client_fault = error.code.status().is_client_error();
            aws_errors::render(shape, error.code.as_str(), &error.message, request_id, client_fault)
        }
        None => (render(error.code, &error.message, request_id), "application/json"),
    };
    *response.body_mut() = Body::from(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().remove(header::CONTENT_LENGTH);
}
