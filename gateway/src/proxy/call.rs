//! One call through the data plane: the context every phase reads and fills in (pingora's
//! per-request `CTX`), and the one way a call ends in failure.

use std::time::Instant;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use crate::audit::{AuditEvent, AuditKind};
use crate::audit_writer::{OpenCall, Room};
use crate::aws_errors::AwsShape;
use crate::clock::now;
use crate::error::{ApiError, ErrorCode, ErrorRender};
use crate::request_id::RequestId;
use crate::state::AppState;

/// How long a call waits for room in a full audit backlog before it is refused with
/// `audit_unavailable`. Long enough to ride out indexing falling behind for a moment (one
/// batch takes tens of milliseconds), short enough that a database that stopped taking
/// writes turns into fast refusals.
const AUDIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// A call in flight.
pub struct Call {
    pub state: AppState,
    /// The call's one audit record, filled in as the phases learn who, what and where.
    pub event: AuditEvent,
    /// Set once the call's opening is journaled: from then on its outcome goes through it,
    /// and should the call be dropped mid-way, dropping it records the call as abandoned.
    pub opened: Option<OpenCall>,
    /// The provider id for the metrics: `none` until the secret is known.
    pub provider: String,
    pub started: Instant,
    /// The in-flight permit: the call counts against `--max-in-flight` until its response
    /// has streamed out.
    pub permit: Option<OwnedSemaphorePermit>,
    /// Room in the audit backlog for the call's record, held until its opening takes it.
    pub room: Option<Room>,
    /// Set when the caller is an AWS SDK: refusals are answered in its service's error shape.
    pub aws: Option<AwsShape>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("provider", &self.provider)
            .field("opened", &self.opened.is_some())
            .finish_non_exhaustive()
    }
}

/// What a call's record starts from, read off the request before anything else.
#[derive(Debug)]
pub struct About {
    request_id: String,
    method: String,
    aws: Option<AwsShape>,
}

impl About {
    /// A call credgate makes itself (an approved one), under a request id of its own.
    pub fn made_here(request_id: String, method: &str) -> Self {
        Self {
            request_id,
            method: method.to_owned(),
            aws: None,
        }
    }

    pub fn of(req: &Request) -> Self {
        Self {
            request_id: req
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            method: req.method().as_str().to_owned(),
            // Read before authentication takes the SDK's signature away.
            aws: crate::aws_errors::shape_of(req.headers(), req.uri().query()),
        }
    }
}

impl Call {
    /// A permit and room for the call's record, before any work; or the refusal when there is
    /// neither. Refusals here are not audited: nothing was attempted (and in the second case
    /// the trail cannot take the record, hence the refusal).
    pub async fn begin(state: AppState, about: About) -> Result<Self, Response> {
        let started = Instant::now();
        // The permit is the limit itself; `crate::shed` only turns calls away earlier, before
        // routing, when none is left. A call refused here lost the race for the last permit.
        let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
            return Err(crate::shed::overloaded(&state, started));
        };
        let Some(room) = state.audit.room(AUDIT_PATIENCE).await else {
            return Err(crate::shed::audit_backlogged(&state, started));
        };
        let mut event = AuditEvent::new(AuditKind::Proxy, "proxy.request", "allowed");
        event.request_id = Some(about.request_id);
        event.method = Some(about.method);
        Ok(Self {
            aws: about.aws,
            state,
            event,
            opened: None,
            provider: String::from("none"),
            started,
            permit: Some(permit),
            room: Some(room),
        })
    }

    /// Ends the call without an upstream call and without failure (held for approval): its
    /// record and its metric.
    pub fn record(&mut self, outcome: &str, status: u16) {
        let elapsed = self.started.elapsed();
        let mut event = self.event.clone();
        event.at = now();
        event.outcome = outcome.into();
        event.status = Some(status);
        event.latency_ms = Some(elapsed.as_secs_f64() * 1e3);
        self.state.metrics.call(outcome, &self.provider, elapsed);
        self.state.audit.record_detached(event);
    }

    /// Ends the call in failure: its record (closing the journaled opening, if there is one),
    /// its metric, and credgate's error for the caller.
    pub fn fail(self, failure: Failure) -> Response {
        let Failure { error, forwarded } = failure;
        let Self {
            state,
            mut event,
            opened,
            provider,
            started,
            aws,
            ..
        } = self;
        let elapsed = started.elapsed();
        event.action = if forwarded { "proxy.response" } else { "proxy.request" }.into();
        // Same id as the opening, if one was journaled: this outcome closes it.
        event.at = now();
        event.outcome = error.code.as_str().into();
        event.status = Some(error.code.status().as_u16());
        event.message = Some(error.message.clone());
        event.latency_ms = Some(elapsed.as_secs_f64() * 1e3);
        state.metrics.call(error.code.as_str(), &provider, elapsed);
        match opened {
            Some(call) => call.close(|opening| *opening = event),
            None => state.audit.record_detached(event),
        }
        let mut response = error.into_response();
        if let Some(render) = response.extensions_mut().get_mut::<ErrorRender>() {
            render.aws = aws;
        }
        response
    }
}

/// A refusal or failure, and whether the credential had already been sent.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    pub forwarded: bool,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            forwarded: false,
        }
    }
}

/// A refusal before the credential left.
pub fn refuse(code: ErrorCode, message: impl Into<String>) -> Failure {
    ApiError::new(code, message).into()
}

/// A failure after the credential was sent.
pub fn forwarded(code: ErrorCode, message: &str) -> Failure {
    Failure {
        error: ApiError::new(code, message),
        forwarded: true,
    }
}
