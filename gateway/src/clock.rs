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
