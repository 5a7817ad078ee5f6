//! Grants: one secret issued to one principal, with a lifetime and optional narrowing.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A grant lives this long when the request names no lifetime.
pub const DEFAULT_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// Longest lifetime a grant may be given.
pub const MAX_TTL_SECONDS: i64 = 10 * 366 * 24 * 3600;
const MAX_LIST: usize = 64;

/// The policy as an operator writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantPolicyInput {
    /// Absolute expiry (RFC 3339). Give this or `ttl_seconds`; with neither, 30 days.
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime from now, 1 second to 10 years.
    pub ttl_seconds: Option<i64>,
    /// Methods the grant may be used with (e.g. `["GET"]`); all when absent.
    pub allowed_methods: Option<Vec<String>>,
    /// Path prefixes the grant may reach (e.g. `["/v1/chat/"]`); all when absent. A prefix
    /// matches whole segments: `/v1/chat` covers `/v1/chat/x`, not `/v1/chatty`.
    pub allowed_path_prefixes: Option<Vec<String>>,
}

/// The policy as stored and enforced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantPolicy {
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_path_prefixes: Option<Vec<String>>,
}

impl GrantPolicyInput {
    pub fn resolve(self, now: DateTime<Utc>) -> Result<GrantPolicy, String> {
        let expires_at = match (self.expires_at, self.ttl_seconds) {
            (Some(_), Some(_)) => {
                return Err("give grant_policy.expires_at or grant_policy.ttl_seconds, not both".into());
            }
            (Some(at), None) => {
                if at <= now {
                    return Err("grant_policy.expires_at must be in the future".into());
                }
                if at > now + Duration::seconds(MAX_TTL_SECONDS) {
                    return Err("grant_policy.expires_at is more than 10 years away".into());
                }
                at
            }
            (None, Some(ttl)) => {
                if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
                    return Err(format!("grant_policy.ttl_seconds must be from 1 to {MAX_TTL_SECONDS}"));
                }
                now + Duration::seconds(ttl)
            }
            (None, None) => now + Duration::seconds(DEFAULT_TTL_SECONDS),
        };
        let allowed_methods = self
            .allowed_methods
            .map(|methods| {
                if methods.is_empty() || methods.len() > MAX_LIST {
                    return Err(format!(
                        "grant_policy.allowed_methods must list 1 to {MAX_LIST} methods"
                    ));
                }
                let mut out: Vec<String> = Vec::with_capacity(methods.len());
                for m in methods {
                    let upper = m.to_ascii_uppercase();
                    if upper.is_empty() || upper.len() > 32 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
                        return Err("grant_policy.allowed_methods holds HTTP method names like GET or POST".into());
                    }
                    if !out.contains(&upper) {
                        out.push(upper);
                    }
                }
                Ok(out)
            })
            .transpose()?;
        let allowed_path_prefixes = self
            .allowed_path_prefixes
            .map(|prefixes| {
                if prefixes.is_empty() || prefixes.len() > MAX_LIST {
                    return Err(format!(
                        "grant_policy.allowed_path_prefixes must list 1 to {MAX_LIST} prefixes"
                    ));
                }
                for p in &prefixes {
                    validate_prefix(p)?;
                }
                Ok(prefixes)
            })
            .transpose()?;
        Ok(GrantPolicy {
            expires_at,
            allowed_methods,
            allowed_path_prefixes,
        })
    }
}

fn validate_prefix(prefix: &str) -> Result<(), String> {
    let shown: String = prefix.chars().take(64).collect();
    if !prefix.starts_with('/') || prefix.len() > 1024 {
        return Err(format!(
            "path prefix `{shown}` must start with `/` (and be at most 1024 bytes)"
        ));
    }
    if prefix.contains(['?', '#', '\\']) || prefix.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!(
            "path prefix `{shown}` must be a plain path, without query, fragment or spaces"
        ));
    }
    if prefix
        .split('/')
        .any(|seg| seg == "." || seg == ".." || seg.eq_ignore_ascii_case("%2e%2e") || seg.eq_ignore_ascii_case("%2e"))
    {
        return Err(format!("path prefix `{shown}` must not contain `.` or `..` segments"));
    }
    Ok(())
}

impl GrantPolicy {
    pub fn allows_method(&self, method: &str) -> bool {
        self.allowed_methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m == method))
    }

    /// `path` must be free of dot segments in any encoding (the data plane refuses them);
    /// matching is by whole segments, both sides compared in RFC 3986 normal form, so that
    /// `%7E` matches `~` and `%2f` matches `%2F`, while an encoded slash stays inside its
    /// segment.
    pub fn allows_path(&self, path: &str) -> bool {
        self.allowed_path_prefixes
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| super::path::under(p, path)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Active,
    Expired,
    Revoked,
}

impl GrantStatus {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => Self::Active,
            "expired" => Self::Expired,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Grant {
    pub grant_id: Uuid,
    pub secret_id: Uuid,
    pub principal_id: Uuid,
    pub grant_policy: GrantPolicy,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked: `revoked` by an operator, `secret_deleted`, `principal_deleted`.
    pub revoked_reason: Option<String>,
}

impl Grant {
    pub fn status(&self, now: DateTime<Utc>) -> GrantStatus {
        if self.revoked_at.is_some() {
            GrantStatus::Revoked
        } else if self.grant_policy.expires_at <= now {
            GrantStatus::Expired
        } else {
            GrantStatus::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn lifetimes() {
        let n = now();
        let p = GrantPolicyInput {
            ttl_seconds: Some(60),
            ..Default::default()
        }
        .resolve(n)
        .unwrap();
        assert_eq!(p.expires_at, n + Duration::seconds(60));
        let p = GrantPolicyInput::default().resolve(n).unwrap();
        assert_eq!(p.expires_at, n + Duration::seconds(DEFAULT_TTL_SECONDS));
        for bad in [
            GrantPolicyInput {
                ttl_seconds: Some(0),
                ..Default::default()
            },
            GrantPolicyInput {
                ttl_seconds: Some(MAX_TTL_SECONDS + 1),
                ..Default::default()
            },
            GrantPolicyInput {
                expires_at: Some(n - Duration::seconds(1)),
                ..Default::default()
            },
            GrantPolicyInput {
                expires_at: Some(n + Duration::seconds(5)),
                ttl_seconds: Some(5),
                ..Default::default()
            },
        ] {
            assert!(bad.clone().resolve(n).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn methods_and_paths() {
        let p = GrantPolicyInput {
            allowed_methods: Some(vec!["get".into(), "GET".into(), "post".into()]),
            allowed_path_prefixes: Some(vec!["/v1/chat".into(), "/files/".into()]),
            ..Default::default()
        }
        .resolve(now())
        .unwrap();
        assert_eq!(
            p.allowed_methods.as_deref(),
            Some(&["GET".to_owned(), "POST".to_owned()][..])
        );
        assert!(p.allows_method("GET") && !p.allows_method("DELETE"));
        assert!(p.allows_path("/v1/chat") && p.allows_path("/v1/chat/completions") && p.allows_path("/files/a"));
        assert!(!p.allows_path("/v1/chatty") && !p.allows_path("/v1") && !p.allows_path("/files"));
        for bad in ["v1", "/a/../b", "/a?x", "/a/%2e%2e/b"] {
            let input = GrantPolicyInput {
                allowed_path_prefixes: Some(vec![bad.into()]),
                ..Default::default()
            };
            assert!(input.resolve(now()).is_err(), "{bad}");
        }
        let input = GrantPolicyInput {
            allowed_methods: Some(vec!["GE T".into()]),
            ..Default::default()
        };
        assert!(input.resolve(now()).is_err());
    }

    #[test]
    fn status() {
        let n = now();
        let mut g = Grant {
            grant_id: Uuid::new_v4(),
            secret_id: Uuid::new_v4(),
            principal_id: Uuid::new_v4(),
            grant_policy: GrantPolicyInput::default().resolve(n).unwrap(),
            created_at: n,
            revoked_at: None,
            revoked_reason: None,
        };
        assert_eq!(g.status(n), GrantStatus::Active);
        assert_eq!(
            g.status(n + Duration::seconds(DEFAULT_TTL_SECONDS)),
            GrantStatus::Expired
        );
        g.revoked_at = Some(n);
        assert_eq!(g.status(n), GrantStatus::Revoked);
    }
}
