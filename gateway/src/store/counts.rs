//! Data-plane calls counted over time: what `GET /admin/v1/stats` and the portal's overview
//! read instead of the trail.
//!
//! Every call the trail records is added, in the transaction that chains it, to two rollups
//! (migration 0012): `call_totals`, per minute, hour and day by outcome and provider, a few
//! rows a minute whatever the traffic; and `call_grants`, per hour and day by grant (with its
//! principal and secret), outcome and provider, a row per busy grant an hour. A read sums the
//! rows of the coarsest grain that divides its bucket, so a day by outcome is at most 1,440
//! minutes' rows and a day by grant 24 hours' rows, however many calls they count.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::{from_micros, to_micros};

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// What data-plane calls are counted by (see [`crate::store::Store::call_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountBy {
    Outcome,
    Provider,
    Grant,
    Principal,
    Secret,
}

impl CountBy {
    pub fn column(self) -> &'static str {
        match self {
            Self::Outcome => "outcome",
            Self::Provider => "provider",
            Self::Grant => "grant_id",
            Self::Principal => "principal_id",
            Self::Secret => "secret_id",
        }
    }
}

/// Calls in `[from, to)`, summed per `bucket_seconds` and per `by`, optionally for one grant,
/// secret or principal. Buckets start at multiples of their size since the epoch; see
/// [`CountQuery::rollup`] for the sizes allowed and the range actually counted.
#[derive(Clone, Debug)]
pub struct CountQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket_seconds: i64,
    pub by: CountBy,
    pub grant_id: Option<Uuid>,
    pub secret_id: Option<Uuid>,
    pub principal_id: Option<Uuid>,
}

/// Calls in one time bucket with one value of the `by` column (`""` for none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountRow {
    pub bucket: DateTime<Utc>,
    pub key: String,
    pub calls: i64,
}

/// Which rollup answers a [`CountQuery`], and the range it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rollup {
    /// `call_grants` (per grant) rather than `call_totals`.
    pub per_grant: bool,
    /// The rows' size in seconds: 60, 3,600 or 86,400.
    pub grain: i64,
    /// The range counted: the query's, widened to whole rows (a row counts its whole minute,
    /// hour or day).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl CountQuery {
    /// Counts by grant, principal or secret, or for one of them, come per hour at the finest.
    pub fn per_grant(&self) -> bool {
        matches!(self.by, CountBy::Grant | CountBy::Principal | CountBy::Secret)
            || self.grant_id.is_some()
            || self.secret_id.is_some()
            || self.principal_id.is_some()
    }

    /// The finest bucket this query may ask for, in seconds.
    pub fn finest_bucket(&self) -> i64 {
        if self.per_grant() { HOUR } else { MINUTE }
    }

    /// The rollup that answers this query: the coarsest grain its bucket is a multiple of.
    /// A bucket that is no multiple of [`CountQuery::finest_bucket`] is refused with why.
    pub fn rollup(&self) -> Result<Rollup, String> {
        let finest = self.finest_bucket();
        if self.bucket_seconds < finest || self.bucket_seconds % finest != 0 {
            return Err(match finest {
                HOUR => "counts by grant, principal or secret (or for one of them) are kept per hour: bucket must be a multiple of 3600".into(),
                _ => "bucket is a number of seconds, a multiple of 60".into(),
            });
        }
        let grain = [DAY, HOUR, MINUTE]
            .into_iter()
            .find(|g| self.bucket_seconds % g == 0)
            .unwrap_or(MINUTE);
        let size = grain * 1_000_000;
        let from = to_micros(self.from).div_euclid(size) * size;
        let to = to_micros(self.to);
        let to = to.div_euclid(size) * size + if to.rem_euclid(size) == 0 { 0 } else { size };
        Ok(Rollup {
            per_grant: self.per_grant(),
            grain,
            from: from_micros(from),
            to: from_micros(to),
        })
    }
}

/// The rows one call adds to: its minute, hour and day in `call_totals`; its hour and day in
/// `call_grants`.
pub const TOTAL_GRAINS: [i64; 3] = [MINUTE, HOUR, DAY];
pub const GRANT_GRAINS: [i64; 2] = [HOUR, DAY];
/// The finest grain `call_grants` keeps.
pub const HOUR_GRAIN: i64 = HOUR;

/// The start of the `grain`-second bucket holding `at` (microseconds since the epoch).
pub fn bucket_of(at: i64, grain: i64) -> i64 {
    let size = grain * 1_000_000;
    at.div_euclid(size) * size
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(bucket_seconds: i64, by: CountBy, from: &str, to: &str) -> CountQuery {
        CountQuery {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            bucket_seconds,
            by,
            grant_id: None,
            secret_id: None,
            principal_id: None,
        }
    }

    #[test]
    fn the_coarsest_grain_that_divides_the_bucket_answers_and_widens_the_range_to_it() {
        let (from, to) = ("2026-12-05T18:37:12Z", "2026-12-06T18:37:12Z");
        let by_outcome = query(720, CountBy::Outcome, from, to).rollup().unwrap();
        assert_eq!((by_outcome.per_grant, by_outcome.grain), (false, 60));
        assert_eq!(
            by_outcome.from,
            "2026-12-05T18:37:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(by_outcome.to, "2026-12-06T18:38:00Z".parse::<DateTime<Utc>>().unwrap());
        let by_grant = query(7_200, CountBy::Grant, from, to).rollup().unwrap();
        assert_eq!((by_grant.per_grant, by_grant.grain), (true, 3_600));
        assert_eq!(by_grant.from, "2026-12-05T18:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(by_grant.to, "2026-12-06T19:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let weekly = query(7 * 86_400, CountBy::Provider, from, to).rollup().unwrap();
        assert_eq!(weekly.grain, 86_400);
        // An edge already on the grain is kept.
        let exact = query(3_600, CountBy::Outcome, "2026-12-06T10:00:00Z", "2026-12-06T12:00:00Z")
            .rollup()
            .unwrap();
        assert_eq!((exact.from, exact.to), (exact_time("10:00"), exact_time("12:00")));
    }

    fn exact_time(hm: &str) -> DateTime<Utc> {
        format!("2026-12-06T{hm}:00Z").parse().unwrap()
    }

    #[test]
    fn per_grant_counts_refuse_buckets_finer_than_an_hour() {
        let (from, to) = ("2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z");
        let message = query(720, CountBy::Principal, from, to).rollup().unwrap_err();
        assert!(message.contains("multiple of 3600"), "{message}");
        let mut one_grant = query(60, CountBy::Outcome, from, to);
        one_grant.grant_id = Some(Uuid::new_v4());
        assert!(one_grant.rollup().is_err());
        assert!(query(90, CountBy::Outcome, from, to).rollup().is_err());
        assert!(query(0, CountBy::Outcome, from, to).rollup().is_err());
    }
}
