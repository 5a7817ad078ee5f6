//! The vault's entities: principals, API keys, secrets and grants, with their validation.
//!
//! These are plain data and rules; storing them is `store`'s job and serving them is `admin`'s.

pub mod api_key;
pub mod grant;
pub mod host;
pub mod path;
pub mod principal;
pub mod secret;
pub mod token;

pub use api_key::ApiKey;
pub use grant::{Grant, GrantPolicy, GrantStatus};
pub use principal::{Principal, PrincipalKind};
pub use secret::{SecretMeta, SecretType};

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
