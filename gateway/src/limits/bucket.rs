//! Token-bucket arithmetic, in integers, so that the row every replica shares and the bucket
//! one process keeps in memory compute exactly the same thing.
//!
//! A bucket is counted in units of `1 / (per_seconds × 10^6)` token: one microsecond then adds
//! exactly `requests` units, refilling never rounds, and a token is due exactly when it should
//! be however often the bucket is looked at. A full bucket of the largest limit (10^6 tokens
//! per 86,400 s) is under 10^17 units.

use crate::store::LimitRow;
use crate::vault::grant::RateLimit;

/// One token, in the bucket's units.
pub fn token(limit: &RateLimit) -> i64 {
    i64::from(limit.per_seconds) * 1_000_000
}

/// A full bucket, in its units.
pub fn capacity(limit: &RateLimit) -> i64 {
    i64::from(limit.requests) * token(limit)
}

/// A bucket that held `value` units at `at`, brought up to `now` (microseconds). A clock that
/// went backwards adds nothing.
pub fn refill(limit: &RateLimit, value: i64, at: i64, now: i64) -> LimitRow {
    if now <= at {
        return LimitRow {
            value: value.min(capacity(limit)),
            at,
        };
    }
    let added = (now - at).saturating_mul(i64::from(limit.requests));
    LimitRow {
        value: value.saturating_add(added).min(capacity(limit)),
        at: now,
    }
}

/// Whole tokens in a bucket holding `value` units.
pub fn whole(limit: &RateLimit, value: i64) -> i64 {
    value / token(limit)
}

/// Microseconds until a bucket holding `value` units has a whole token.
pub fn until_token(limit: &RateLimit, value: i64) -> i64 {
    let missing = (token(limit) - value).max(0);
    let requests = i64::from(limit.requests);
    (missing + requests - 1) / requests
}

/// How much of `available` one lease takes: at most `most`, and never more than an eighth of
/// what is left (but at least one), so that near the end of a limit every replica still finds
/// some.
pub fn slice(available: i64, most: i64) -> i64 {
    available.min(most).min((available / 8).max(1)).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_A_SECOND: RateLimit = RateLimit {
        requests: 10,
        per_seconds: 1,
    };

    #[test]
    fn refills_at_the_rate_up_to_capacity() {
        let tokens = |value, at, now| refill(&TEN_A_SECOND, value, at, now).value as f64 / token(&TEN_A_SECOND) as f64;
        assert_eq!(tokens(0, 0, 100_000), 1.0);
        assert_eq!(tokens(0, 0, 50_000), 0.5);
        assert_eq!(tokens(0, 0, 60_000_000), 10.0);
        assert_eq!(
            tokens(3 * token(&TEN_A_SECOND), 1_000, 0),
            3.0,
            "time going back adds nothing"
        );
        let slow = RateLimit {
            requests: 1,
            per_seconds: 86_400,
        };
        assert_eq!(refill(&slow, 0, 0, 43_200_000_000).value, token(&slow) / 2);
        let largest = RateLimit {
            requests: 1_000_000,
            per_seconds: 86_400,
        };
        // Years without a call: full, no overflow.
        assert_eq!(refill(&largest, 0, 0, i64::MAX / 2).value, capacity(&largest));
    }

    #[test]
    fn a_token_is_due_exactly_however_often_the_bucket_is_read() {
        let odd = RateLimit {
            requests: 80,
            per_seconds: 86_400,
        };
        // Read every 7 ms for 1080 s, the time one token takes: exactly one token, not before.
        let mut row = LimitRow { value: 0, at: 0 };
        let mut now = 0;
        while now < 1_080_000_000 {
            now = (now + 7_000).min(1_080_000_000);
            row = refill(&odd, row.value, row.at, now);
            assert_eq!(whole(&odd, row.value), i64::from(now == 1_080_000_000));
        }
        assert_eq!(until_token(&odd, 0), 1_080_000_000);
        assert_eq!(until_token(&odd, row.value), 0);
    }

    #[test]
    fn slices_shrink_near_the_end() {
        assert_eq!(slice(100, 6), 6);
        assert_eq!(slice(40, 64), 5);
        assert_eq!(slice(5, 6), 1);
        assert_eq!(slice(1, 6), 1);
        assert_eq!(slice(0, 6), 0);
    }
}
