//! Quota periods: calendar hours, days and months in UTC, or all time.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};

use crate::vault::grant::QuotaPeriod;

/// When the period holding `now` began.
pub fn start(period: QuotaPeriod, now: DateTime<Utc>) -> DateTime<Utc> {
    let at = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().unwrap_or_default();
    match period {
        QuotaPeriod::Hour => at(now.year(), now.month(), now.day(), now.hour()),
        QuotaPeriod::Day => at(now.year(), now.month(), now.day(), 0),
        QuotaPeriod::Month => at(now.year(), now.month(), 1, 0),
        QuotaPeriod::Total => DateTime::<Utc>::UNIX_EPOCH,
    }
}

/// When the period that began at `began` ends and the quota resets; never for `total`.
pub fn reset(period: QuotaPeriod, began: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match period {
        QuotaPeriod::Hour => Some(began + Duration::hours(1)),
        QuotaPeriod::Day => Some(began + Duration::days(1)),
        QuotaPeriod::Month => {
            let (y, m) = if began.month() == 12 {
                (began.year() + 1, 1)
            } else {
                (began.year(), began.month() + 1)
            };
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()
        }
        QuotaPeriod::Total => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn periods_are_calendar_periods_in_utc() {
        let now = t("2026-12-31T23:59:59.5Z");
        for (period, began, resets) in [
            (QuotaPeriod::Hour, "2026-12-31T23:00:00Z", Some("2027-01-01T00:00:00Z")),
            (QuotaPeriod::Day, "2026-12-31T00:00:00Z", Some("2027-01-01T00:00:00Z")),
            (QuotaPeriod::Month, "2026-12-01T00:00:00Z", Some("2027-01-01T00:00:00Z")),
            (QuotaPeriod::Total, "1970-01-01T00:00:00Z", None),
        ] {
            assert_eq!(start(period, now), t(began), "{period:?}");
            assert_eq!(reset(period, start(period, now)), resets.map(t), "{period:?}");
        }
        assert_eq!(
            reset(QuotaPeriod::Month, t("2027-02-01T00:00:00Z")),
            Some(t("2027-03-01T00:00:00Z"))
        );
    }
}
