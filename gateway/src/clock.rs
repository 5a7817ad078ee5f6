//! Time as credgate keeps it: microseconds since the Unix epoch, in both databases and in the
//! audit chain. A leaf: everything that stamps or stores a time uses these.

use chrono::{DateTime, TimeZone, Utc};

/// Timestamps are stored as microseconds since the Unix epoch in both databases.
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

/// The current time, truncated to what the database keeps, so a value read back compares
/// equal to the one written.
pub fn now() -> DateTime<Utc> {
    from_micros(to_micros(Utc::now()))
}

/// `micros` as RFC 3339 in UTC, exactly as chrono's `to_rfc3339_opts(SecondsFormat::AutoSi,
/// true)` writes it (and so as an event's body holds its time): no fraction, or three digits, or
/// six, whichever shows every non-zero one. Every record read back from the database puts its
/// time into its body again with this, so it is made directly instead of through chrono's
/// formatter (a fifth of the cost). Years outside 0000–9999 go through chrono.
pub fn rfc3339(micros: i64) -> String {
    let mut out = String::with_capacity(27);
    rfc3339_into(micros, &mut out);
    out
}

/// [`rfc3339`] appended to `out`: reading a page of the trail spells every record's time into
/// one buffer.
pub fn rfc3339_into(micros: i64, out: &mut String) {
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        out.push_str(&from_micros(micros).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        return;
    }
    let put = |out: &mut String, value: i64, digits: u32| {
        for i in (0..digits).rev() {
            // A digit: `value` is never negative here.
            out.push(char::from(b'0' + (value / 10_i64.pow(i) % 10) as u8));
        }
    };
    put(out, year, 4);
    out.push('-');
    put(out, month, 2);
    out.push('-');
    put(out, day, 2);
    out.push('T');
    put(out, of_day / 3600, 2);
    out.push(':');
    put(out, of_day / 60 % 60, 2);
    out.push(':');
    put(out, of_day % 60, 2);
    if frac != 0 {
        out.push('.');
        if frac % 1000 == 0 {
            put(out, frac / 1000, 3);
        } else {
            put(out, frac, 6);
        }
    }
    out.push('Z');
}

/// Serialises a time exactly as chrono's own `Serialize` does (RFC 3339, `Z`, the shortest of
/// no fraction, milliseconds, microseconds or nanoseconds that shows every digit), through
/// [`rfc3339_into`] when it holds whole microseconds, as every time credgate stamps does. An
/// event's time is serialised twice a call (opening and outcome), and chrono's formatter through
/// serde's `collect_str` cost several times this.
pub fn serialize_rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let nanos = at.timestamp_subsec_nanos();
    // A finer time, or a leap second (chrono writes `:60`; in microseconds it is the next
    // second's first): chrono's own.
    if !nanos.is_multiple_of(1_000) || nanos >= 1_000_000_000 {
        return serde::Serialize::serialize(at, serializer);
    }
    let mut text = String::with_capacity(32);
    rfc3339_into(to_micros(*at), &mut text);
    serializer.serialize_str(&text)
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrono_form(micros: i64) -> String {
        from_micros(micros).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }

    #[test]
    fn rfc3339_is_chronos_form_at_the_edges() {
        for micros in [
            0,
            -1,
            1,
            1_000,
            999_999,
            1_000_000,
            -62_135_596_800_000_000, // 0001-01-01
            -62_167_219_200_000_000, // 0000-01-01
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // 10000-01-01: chrono's own
            951_782_400_000_000,     // 2000-02-29
            4_107_542_400_123_000,   // 2100-03-01, a century that is no leap year
            1_796_601_600_000_001,
        ] {
            assert_eq!(rfc3339(micros), chrono_form(micros), "{micros}");
        }
    }

    /// A time serialised by [`serialize_rfc3339`].
    #[derive(serde::Serialize)]
    struct Stamped(#[serde(serialize_with = "serialize_rfc3339")] DateTime<Utc>);

    proptest! {
        #[test]
        fn a_time_serialises_as_chrono_serialises_it(secs in -70_000_000_000_i64..260_000_000_000, nanos in 0_u32..1_000_000_000, grain in 0_u32..4) {
            // Whole seconds, milliseconds and microseconds (what credgate stamps) often; any
            // nanosecond (a time read from elsewhere) too.
            let nanos = nanos - nanos % [1_000_000_000, 1_000_000, 1_000, 1][grain as usize];
            let at = Utc.timestamp_opt(secs, nanos).single().unwrap();
            prop_assert_eq!(serde_json::to_string(&Stamped(at)).unwrap(), serde_json::to_string(&at).unwrap());
            // The same second's leap second, as chrono holds it (the second's nanos past 10⁹).
            let leap = chrono::NaiveDateTime::new(at.date_naive(), chrono::NaiveTime::from_hms_nano_opt(23, 59, 59, 1_000_000_000 + nanos).unwrap()).and_utc();
            prop_assert_eq!(serde_json::to_string(&Stamped(leap)).unwrap(), serde_json::to_string(&leap).unwrap());
        }

        #[test]
        fn rfc3339_is_chronos_form(micros in -70_000_000_000_000_000_i64..260_000_000_000_000_000, millis in any::<bool>(), whole in any::<bool>()) {
            // Whole seconds and whole milliseconds take the shorter forms: try them often.
            let micros = if whole { micros - micros.rem_euclid(1_000_000) } else if millis { micros - micros.rem_euclid(1_000) } else { micros };
            prop_assert_eq!(rfc3339(micros), chrono_form(micros));
        }
    }
}
