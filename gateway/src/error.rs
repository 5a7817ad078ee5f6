//! Errors credgate itself answers with, in one shape everywhere:
//! `{"error": {"code", "message", "request_id"}}` plus an `X-Credgate-Error: <code>` header, so
//! a caller can always tell credgate's refusals from an upstream's own errors.
//!
//! Handlers return [`ApiError`]; the request-id middleware ([`crate::request_id`]) renders
//! the body, because only it knows the request id. Internal causes are logged there in full
//! and answered generically.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::store::StoreError;

pub const ERROR_HEADER: &str = "x-credgate-error";

/// Stable, documented error codes. Clients match on these, never on messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthenticated,
    /// A user token (`X-Credgate-User-Token`) that does not verify.
    UserTokenInvalid,
    Forbidden,
    /// An admin token without the scope the call needs.
    ForbiddenScope,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    GrantNotFound,
    GrantExpired,
    GrantRevoked,
    PolicyViolation,
    BlockedDestination,
    /// Past the grant's rate limit; `Retry-After` says when a call will be admitted.
    RateLimited,
    /// The grant's quota for the period is spent; `Retry-After` says when it resets.
    QuotaExceeded,
    /// An operator denied the held call.
    ApprovalDenied,
    /// Nobody approved the held call in time.
    ApprovalExpired,
    /// The approved call could not be made.
    ApprovalFailed,
    ProviderError,
    UpstreamUnreachable,
    UpstreamTimeout,
    AuditUnavailable,
    Overloaded,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            BadRequest => StatusCode::BAD_REQUEST,
            Unauthenticated | UserTokenInvalid => StatusCode::UNAUTHORIZED,
            Forbidden | ForbiddenScope | GrantExpired | GrantRevoked | PolicyViolation | BlockedDestination => {
                StatusCode::FORBIDDEN
            }
            NotFound | GrantNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RateLimited | QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            ApprovalDenied => StatusCode::FORBIDDEN,
            ApprovalExpired => StatusCode::GONE,
            Conflict => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProviderError | UpstreamUnreachable | ApprovalFailed => StatusCode::BAD_GATEWAY,
            UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            AuditUnavailable | Overloaded | Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `Retry-After` for the refusals that clear by themselves: too many calls in flight, an
    /// audit backlog that drains. Every response with such a code carries it.
    pub fn retry_after(self) -> Option<&'static str> {
        match self {
            ErrorCode::Overloaded | ErrorCode::AuditUnavailable => Some("1"),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "bad_request",
            Unauthenticated => "unauthenticated",
            UserTokenInvalid => "user_token_invalid",
            Forbidden => "forbidden",
            ForbiddenScope => "forbidden_scope",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict => "conflict",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            GrantNotFound => "grant_not_found",
            GrantExpired => "grant_expired",
            GrantRevoked => "grant_revoked",
            PolicyViolation => "policy_violation",
            BlockedDestination => "blocked_destination",
            RateLimited => "rate_limited",
            QuotaExceeded => "quota_exceeded",
            ApprovalDenied => "approval_denied",
            ApprovalExpired => "approval_expired",
            ApprovalFailed => "approval_failed",
            ProviderError => "provider_error",
            UpstreamUnreachable => "upstream_unreachable",
            UpstreamTimeout => "upstream_timeout",
            AuditUnavailable => "audit_unavailable",
            Overloaded => "overloaded",
            Unavailable => "unavailable",
            Internal => "internal",
        }
    }
}

/// An error answered by credgate. `message` is shown to the caller and must never hold a
/// credential; `cause` is for the log only.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub cause: Option<String>,
    /// Seconds for `Retry-After`, when the refusal knows when it will clear.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            cause: None,
            retry_after: None,
        }
    }

    /// Tells the caller when to try again (`Retry-After`), rounded up to whole seconds.
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// A failure inside credgate: the caller learns only that it happened.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "an internal error occurred; the request id identifies it in the server log".into(),
            cause: Some(cause.to_string()),
            retry_after: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::conflict(format!("{what} already exists")),
            StoreError::Missing(what) => Self::new(ErrorCode::NotFound, format!("{what} no longer exists")),
            other => Self::internal(other),
        }
    }
}

/// Carried from [`ApiError::into_response`] to the middleware that renders the body.
#[derive(Clone, Debug)]
pub struct ErrorRender {
    pub code: ErrorCode,
    pub message: String,
    pub cause: Option<String>,
    /// Render in the shape of an AWS service's errors, for a caller that is an AWS SDK.
    pub aws: Option<crate::aws_errors::AwsShape>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.code.status().into_response();
        response
            .headers_mut()
            .insert(ERROR_HEADER, HeaderValue::from_static(self.code.as_str()));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        } else if let Some(seconds) = self.code.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response.extensions_mut().insert(ErrorRender {
            code: self.code,
            message: self.message,
            cause: self.cause,
            aws: None,
        });
        response
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
}

/// Writes the JSON error body. Used by the middleware and by paths that answer before it.
pub fn render(code: ErrorCode, message: &str, request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody {
        error: ErrorDetail {
            code,
            message: message.to_owned(),
            request_id: request_id.to_owned(),
        },
    })
    .unwrap_or_default()
}

/// JSON request bodies, parsed strictly, with errors in credgate's shape.
///
/// Unknown fields are refused by the target types (`deny_unknown_fields`). Messages name the
/// field that failed but never quote the offending value: a misplaced credential must not be
/// echoed back or logged.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a JSON body with `Content-Type: application/json`",
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out entirely (no body means `T::default()`), for calls
/// whose parameters are all optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJsonOrEmpty<T>(pub T);

impl<S, T> FromRequest<S> for ApiJsonOrEmpty<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(ApiJsonOrEmpty)
    }
}

/// A raw request body, bounded by the route's body limit, with credgate's 413.
#[derive(Debug, Clone)]
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(ApiBytes)
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
        } else {
            ApiError::bad_request("could not read the request body")
        }
    })
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let why = describe(e.inner());
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("invalid JSON body: {why}"))
        } else {
            ApiError::bad_request(format!("invalid JSON body at `{path}`: {why}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {}", describe(&e))))?;
    Ok(value)
}

/// serde's message without any quoted input value.
fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let kind = rest.split([' ', ',']).next().unwrap_or("value");
            let expected = rest.rsplit_once(", expected ").map_or("another value", |(_, exp)| exp);
            return format!("{prefix}got {kind}, expected {expected}");
        }
    }
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, exp)| exp);
        return format!("unknown value, expected {expected}");
    }
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Thing {
        count: u32,
        kind: Option<Kind>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        A,
    }

    fn err(json: &str) -> String {
        parse_json::<Thing>(json.as_bytes()).unwrap_err().message
    }

    #[test]
    fn messages_name_the_field_but_not_the_value() {
        let m = err(r#"{"count": "canary-secret"}"#);
        assert!(m.contains("`count`") && !m.contains("canary"), "{m}");
        let m = err(r#"{"count": 1, "kind": "canary-secret"}"#);
        assert!(m.contains("kind") && !m.contains("canary"), "{m}");
        let m = err(r#"{"count": 1, "extra": 1}"#);
        assert!(m.contains("unknown field `extra`"), "{m}");
        let m = err(r#"{"count": 1} trailing"#);
        assert!(m.contains("invalid JSON"), "{m}");
        let m = err(r#"{"count": -1}"#);
        assert!(!m.contains("-1"), "{m}");
    }
}
