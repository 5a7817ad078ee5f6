//! Load shedding in front of routing. When the data plane is at its limit of calls in flight,
//! a new data-plane request is refused before it is routed, logged in a span or given any
//! state: past saturation every microsecond a refusal costs is taken from the calls being
//! served, and a refusal that costs as much as a call does not shed load at all.
//!
//! The check here is an early exit, not the limit itself: the data-plane handler still takes
//! its permit with `try_acquire`, for the calls that lose the race for the last one. A call
//! holding a permit first waits for room in the audit backlog (see `AUDIT_PATIENCE` in
//! `crate::proxy`), so while the trail is indexed more slowly than calls arrive, the permits
//! fill with waiting calls and the excess is refused here, cheaply.

use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};

use crate::error::{ApiError, ErrorCode};
use crate::request_id::{self, RequestId};
use crate::state::AppState;

/// The data plane's routes; the admin API, health checks and metrics are never shed.
const DATA_PLANE: &str = "/v1/";

/// Wraps the whole router (see [`crate::server::app`]).
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    state: AppState,
}

impl<S> Shed<S> {
    pub fn new(inner: S, state: AppState) -> Self {
        Self { inner, state }
    }
}

impl<S, B> tower::Service<Request<B>> for Shed<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.state.in_flight.available_permits() == 0 && req.uri().path().starts_with(DATA_PLANE) {
            let mut response = overloaded(&self.state, Instant::now());
            request_id::stamp(&mut response, &RequestId::new().0);
            return Either::Left(ready(Ok(response)));
        }
        Either::Right(self.inner.call(req))
    }
}

/// The refusal of a data-plane call for lack of capacity: 503 with `Retry-After`, counted in
/// the metrics and not audited (nothing was attempted, and a record per shed call would feed
/// the overload).
pub fn overloaded(state: &AppState, started: Instant) -> Response {
    refusal(
        state,
        started,
        ErrorCode::Overloaded,
        "credgate is at its limit of calls in flight; retry shortly",
    )
}

/// The audit trail's backlog stayed full for as long as a call may wait for room, so its
/// record could not be taken: the call is refused as its opening would be, but before its
/// work is done (no lookup, decryption or injection only to be refused at the journal).
pub fn audit_backlogged(state: &AppState, started: Instant) -> Response {
    refusal(
        state,
        started,
        ErrorCode::AuditUnavailable,
        "the audit trail is behind, so no call can be recorded now; retry shortly",
    )
}

fn refusal(state: &AppState, started: Instant, code: ErrorCode, message: &str) -> Response {
    state.metrics.call(code.as_str(), "none", started.elapsed());
    ApiError::new(code, message).into_response()
}
