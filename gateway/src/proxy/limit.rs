//! Limits: the grant's rate limit and quota. Counted after every other check has passed (a
//! call refused for its path or destination uses nothing) and before anything is decrypted.

use chrono::{DateTime, Utc};

use super::call::{Call, Failure};
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::limits::Refusal;
use crate::vault::Grant;
use crate::vault::grant::QuotaPeriod;

/// The phase.
pub async fn admit(call: &Call, grant: &Grant) -> Result<(), Failure> {
    let policy = &grant.grant_policy;
    let error = match call.state.limits.admit(grant).await {
        Ok(()) => return Ok(()),
        Err(Refusal::RateLimited { retry_after }) => {
            let (requests, per) = policy.rate_limit.map_or((0, 0), |r| (r.requests, r.per_seconds));
            ApiError::new(
                ErrorCode::RateLimited,
                format!("this grant allows {requests} calls per {per} s; Retry-After says when the next one is"),
            )
            .with_retry_after(retry_after)
        }
        Err(Refusal::QuotaExceeded { resets_at }) => quota_exceeded(grant, resets_at),
        Err(Refusal::Store(e)) => {
            let mut error = ApiError::new(
                ErrorCode::Unavailable,
                "this grant's limits cannot be checked right now; try again",
            );
            error.cause = Some(e.to_string());
            error
        }
    };
    Err(error.into())
}

fn quota_exceeded(grant: &Grant, resets_at: Option<DateTime<Utc>>) -> ApiError {
    let Some(quota) = grant.grant_policy.quota else {
        return ApiError::new(ErrorCode::QuotaExceeded, "this grant's quota is spent");
    };
    let per = match quota.period {
        QuotaPeriod::Hour => "an hour",
        QuotaPeriod::Day => "a day",
        QuotaPeriod::Month => "a month",
        QuotaPeriod::Total => "in all",
    };
    match resets_at {
        Some(at) => ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "this grant's quota of {} calls {per} is spent; it resets at {}",
                quota.calls,
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )
        .with_retry_after((at - now()).to_std().unwrap_or_default()),
        None => ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "this grant's quota of {} calls {per} is spent; it does not reset",
                quota.calls
            ),
        ),
    }
}
