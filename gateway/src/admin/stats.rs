//! `/admin/v1/stats`: data-plane calls over time, by outcome, provider, grant, principal or
//! secret, summed from the per-minute, per-hour and per-day counts kept with the audit trail
//! (crate::store's counts: a day of traffic is a few thousand rows, whatever the trail's
//! length); and what is in flight now. For the portal's overview and for any other dashboard.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::ApiQuery;
use crate::clock::now;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::{CountBy, CountQuery};

/// Longest range one read covers.
const MAX_RANGE_DAYS: i64 = 93;
/// Most buckets one read returns per series.
const MAX_BUCKETS: i64 = 10_000;
/// Buckets a range is cut into when the caller names no size.
const DEFAULT_BUCKETS: i64 = 120;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// Start (RFC 3339); default: a day before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339); default: now.
    pub to: Option<DateTime<Utc>>,
    /// Bucket size in seconds: a multiple of 60, or of 3600 when counting by grant, principal
    /// or secret or for one of them; default: the range cut into about 120 buckets. Buckets
    /// start at multiples of their size since the Unix epoch (UTC).
    pub bucket: Option<i64>,
    /// `outcome` (default), `provider`, `grant`, `principal` or `secret`.
    pub by: Option<CountBy>,
    /// Only this grant's calls.
    pub grant_id: Option<Uuid>,
    pub secret_id: Option<Uuid>,
    pub principal_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// The range counted: the one asked for, widened to whole minutes, or whole hours or days
    /// when the bucket is a multiple of them (calls are counted per minute, hour and day).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket_seconds: i64,
    pub by: CountBy,
    /// One series per value of `by` (`""`: none, e.g. a call refused before its grant was
    /// known), the busiest first.
    pub series: Vec<Series>,
    /// Every call in the range.
    pub total: i64,
    pub now: Now,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    pub key: String,
    pub total: i64,
    /// Buckets with calls, oldest first; a bucket left out had none.
    pub points: Vec<Point>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    pub calls: i64,
}

/// This process, at the moment of the read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Now {
    /// Data-plane calls in flight here (of `--max-in-flight`).
    pub in_flight: u64,
    pub max_in_flight: u64,
    /// Audit records accepted here and not yet in the database.
    pub audit_backlog: u64,
}

#[utoipa::path(get, path = "/admin/v1/stats", tag = "audit", params(StatsParams),
    description = "Data-plane calls over time, by outcome, provider, grant, principal or secret. Every call has one record in the audit trail; these are those records counted per minute, hour and day (per hour and day by grant, principal and secret), kept in the same transaction, then summed into the buckets asked for. The range is widened to whole rows of the grain counted, and the reply says the range counted.",
    responses((status = 200, body = Stats), (status = 400, body = ErrorBody)))]
pub async fn read(State(state): State<AppState>, ApiQuery(p): ApiQuery<StatsParams>) -> Result<Json<Stats>, ApiError> {
    let to = p.to.unwrap_or_else(now);
    let from = p.from.unwrap_or(to - Duration::days(1));
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::bad_request(format!(
            "a range covers at most {MAX_RANGE_DAYS} days"
        )));
    }
    let by = p.by.unwrap_or(CountBy::Outcome);
    let mut query = CountQuery {
        from,
        to,
        bucket_seconds: 0,
        by,
        grant_id: p.grant_id,
        secret_id: p.secret_id,
        principal_id: p.principal_id,
    };
    let range = (to - from).num_seconds().max(1);
    // Signed integers have no stable div_ceil: the range is positive here.
    let finest = query.finest_bucket() as u64;
    query.bucket_seconds = match p.bucket {
        Some(b) => b,
        None => (range as u64).div_ceil(DEFAULT_BUCKETS as u64).div_ceil(finest).max(1) as i64 * finest as i64,
    };
    let rollup = query.rollup().map_err(ApiError::bad_request)?;
    if (rollup.to - rollup.from).num_seconds() / query.bucket_seconds > MAX_BUCKETS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BUCKETS} buckets: choose a larger bucket"
        )));
    }
    // Settled first, so the calls just answered are counted.
    state.audit.settle().await;
    let rows = state.store.call_counts(&query).await?;
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    let mut total = 0;
    for row in rows {
        total += row.calls;
        let entry = series.entry(row.key.clone()).or_insert_with(|| Series {
            key: row.key,
            total: 0,
            points: Vec::new(),
        });
        entry.total += row.calls;
        entry.points.push(Point {
            at: row.bucket,
            calls: row.calls,
        });
    }
    let mut series: Vec<Series> = series.into_values().collect();
    series.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    let max_in_flight = state.settings.max_in_flight as u64;
    Ok(Json(Stats {
        from: rollup.from,
        to: rollup.to,
        bucket_seconds: query.bucket_seconds,
        by,
        series,
        total,
        now: Now {
            in_flight: max_in_flight.saturating_sub(state.in_flight.available_permits() as u64),
            max_in_flight,
            audit_backlog: state.audit.stats().queued.load(Ordering::Relaxed) as u64,
        },
    }))
}
