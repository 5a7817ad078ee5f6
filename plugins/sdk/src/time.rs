//! The time, from credgate's host (contract 0.2), and the formats signatures put it in.

use alloc::format;
use alloc::string::String;

use crate::bindings::credgate::provider::clock;

/// Seconds and nanoseconds since the Unix epoch.
pub fn now() -> (u64, u32) {
    let now = clock::now();
    (now.seconds, now.nanoseconds)
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    let (seconds, nanoseconds) = now();
    seconds * 1000 + u64::from(nanoseconds / 1_000_000)
}

/// `millis` since the epoch in ISO 8601 with milliseconds, UTC: `2026-12-06T18:00:00.123Z`.
pub fn iso8601_millis(millis: u64) -> String {
    let seconds = millis / 1000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        millis % 1000
    )
}

/// Seconds since the epoch of an ISO 8601 time in UTC (`2026-12-06T18:00:00Z`, fractions
/// allowed), as token endpoints give expiry times; `None` for any other form.
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<u64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let time = time.split('.').next()?;
    let mut time = time.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hour, minute, second) = (time.next()??, time.next()??, time.next()??);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a calendar date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_across_leap_years_and_centuries() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_millis(1_796_580_000_123), "2026-12-06T18:00:00.123Z");
        assert_eq!(iso8601_millis(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_formats() {
        for millis in [0, 951_782_400_000, 1_796_580_000_123, 4_107_542_399_999] {
            assert_eq!(parse_iso8601(&iso8601_millis(millis)), Some(millis / 1000));
        }
        assert_eq!(parse_iso8601("2026-12-06T18:00:00Z"), Some(1_796_580_000));
        assert_eq!(parse_iso8601("2026-12-06 18:00:00"), None);
        assert_eq!(parse_iso8601("2026-13-06T18:00:00Z"), None);
    }
}
