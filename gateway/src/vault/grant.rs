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
    /// At most `requests` calls at once, refilled at `requests` per `per_seconds`.
    pub rate_limit: Option<RateLimit>,
    /// At most `calls` calls in each `period`.
    pub quota: Option<Quota>,
    /// Calls matching any of these rules wait for an operator's approval before they are made.
    pub require_approval: Option<Vec<ApprovalRule>>,
    /// How long a call waits for approval, and how long its response is kept once made: 60 s
    /// to 7 days (default 1 hour).
    pub approval_ttl_seconds: Option<i64>,
}

/// Which calls need an operator's approval: those whose method is one of `methods` and whose
/// path is under one of `path_prefixes` (either left out: any).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefixes: Option<Vec<String>>,
}

/// Default for `approval_ttl_seconds`.
pub const DEFAULT_APPROVAL_TTL_SECONDS: i64 = 3600;
const MAX_APPROVAL_RULES: usize = 16;

/// A token bucket: `requests` calls in a burst, then `requests` per `per_seconds`. A call
/// past it is refused `429 rate_limited` with `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// 1 to 1,000,000.
    pub requests: u32,
    /// 1 to 86,400.
    pub per_seconds: u32,
}

/// A number of calls per calendar period (UTC), or in all. A call past it is refused
/// `429 quota_exceeded`, with the time it resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// 1 to 10^12.
    pub calls: u64,
    pub period: QuotaPeriod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Hour,
    Day,
    Month,
    /// Never resets.
    Total,
}

/// The policy as stored and enforced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantPolicy {
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_path_prefixes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<Vec<ApprovalRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_ttl_seconds: Option<i64>,
}

impl GrantPolicy {
    /// Whether a call of `method` to `path` must wait for an operator's approval. Paths are
    /// matched loosely ([`super::path::reaches`]): a path some server reads as under a held
    /// prefix is held.
    pub fn needs_approval(&self, method: &str, path: &str) -> bool {
        self.require_approval.as_ref().is_some_and(|rules| {
            rules.iter().any(|rule| {
                rule.methods.as_ref().is_none_or(|ms| ms.iter().any(|m| m == method))
                    && rule
                        .path_prefixes
                        .as_ref()
                        .is_none_or(|ps| ps.iter().any(|p| super::path::reaches(p, path)))
            })
        })
    }

    /// How long a call waits for approval, and how long its response is kept.
    pub fn approval_ttl(&self) -> Duration {
        Duration::seconds(self.approval_ttl_seconds.unwrap_or(DEFAULT_APPROVAL_TTL_SECONDS))
    }

    /// Whether calls under this policy are counted at all.
    pub fn is_limited(&self) -> bool {
        self.rate_limit.is_some() || self.quota.is_some()
    }
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
            .map(|methods| methods_list(methods, "grant_policy.allowed_methods"))
            .transpose()?;
        let allowed_path_prefixes = self
            .allowed_path_prefixes
            .map(|prefixes| prefix_list(prefixes, "grant_policy.allowed_path_prefixes"))
            .transpose()?;
        if let Some(rate) = self.rate_limit {
            if !(1..=1_000_000).contains(&rate.requests) {
                return Err("grant_policy.rate_limit.requests must be from 1 to 1000000".into());
            }
            if !(1..=86_400).contains(&rate.per_seconds) {
                return Err("grant_policy.rate_limit.per_seconds must be from 1 to 86400".into());
            }
        }
        if let Some(quota) = self.quota
            && !(1..=1_000_000_000_000).contains(&quota.calls)
        {
            return Err("grant_policy.quota.calls must be from 1 to 1000000000000".into());
        }
        let require_approval = self
            .require_approval
            .map(|rules| {
                if rules.is_empty() || rules.len() > MAX_APPROVAL_RULES {
                    return Err(format!(
                        "grant_policy.require_approval must list 1 to {MAX_APPROVAL_RULES} rules"
                    ));
                }
                rules
                    .into_iter()
                    .map(|rule| {
                        Ok(ApprovalRule {
                            methods: rule
                                .methods
                                .map(|m| methods_list(m, "grant_policy.require_approval[].methods"))
                                .transpose()?,
                            path_prefixes: rule
                                .path_prefixes
                                .map(|p| prefix_list(p, "grant_policy.require_approval[].path_prefixes"))
                                .transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .transpose()?;
        if let Some(ttl) = self.approval_ttl_seconds {
            if require_approval.is_none() {
                return Err("grant_policy.approval_ttl_seconds needs grant_policy.require_approval".into());
            }
            if !(60..=7 * 86_400).contains(&ttl) {
                return Err("grant_policy.approval_ttl_seconds must be from 60 to 604800".into());
            }
        }
        Ok(GrantPolicy {
            expires_at,
            allowed_methods,
            allowed_path_prefixes,
            rate_limit: self.rate_limit,
            quota: self.quota,
            require_approval,
            approval_ttl_seconds: self.approval_ttl_seconds,
        })
    }
}

/// HTTP method names, upper-cased and without repeats.
fn methods_list(methods: Vec<String>, field: &str) -> Result<Vec<String>, String> {
    if methods.is_empty() || methods.len() > MAX_LIST {
        return Err(format!("{field} must list 1 to {MAX_LIST} methods"));
    }
    let mut out: Vec<String> = Vec::with_capacity(methods.len());
    for m in methods {
        let upper = m.to_ascii_uppercase();
        if upper.is_empty() || upper.len() > 32 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("{field} holds HTTP method names like GET or POST"));
        }
        if !out.contains(&upper) {
            out.push(upper);
        }
    }
    Ok(out)
}

/// Path prefixes, each checked.
fn prefix_list(prefixes: Vec<String>, field: &str) -> Result<Vec<String>, String> {
    if prefixes.is_empty() || prefixes.len() > MAX_LIST {
        return Err(format!("{field} must list 1 to {MAX_LIST} prefixes"));
    }
    for p in &prefixes {
        validate_prefix(p)?;
    }
    Ok(prefixes)
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
    fn approval_rules_match_method_and_path() {
        let p = GrantPolicyInput {
            require_approval: Some(vec![
                ApprovalRule {
                    methods: Some(vec!["post".into(), "DELETE".into()]),
                    path_prefixes: Some(vec!["/v1/refunds".into()]),
                },
                ApprovalRule {
                    methods: None,
                    path_prefixes: Some(vec!["/admin".into()]),
                },
            ]),
            approval_ttl_seconds: Some(600),
            ..Default::default()
        }
        .resolve(now())
        .unwrap();
        assert!(p.needs_approval("POST", "/v1/refunds") && p.needs_approval("DELETE", "/v1/refunds/re_1"));
        assert!(!p.needs_approval("GET", "/v1/refunds") && !p.needs_approval("POST", "/v1/refundsx"));
        assert!(p.needs_approval("GET", "/admin/users"));
        assert_eq!(p.approval_ttl(), Duration::seconds(600));
        let every = GrantPolicyInput {
            require_approval: Some(vec![ApprovalRule::default()]),
            ..Default::default()
        }
        .resolve(now())
        .unwrap();
        assert!(every.needs_approval("GET", "/"));
        assert_eq!(every.approval_ttl(), Duration::seconds(DEFAULT_APPROVAL_TTL_SECONDS));
        assert!(
            !GrantPolicyInput::default()
                .resolve(now())
                .unwrap()
                .needs_approval("POST", "/")
        );
        for bad in [
            GrantPolicyInput {
                require_approval: Some(vec![]),
                ..Default::default()
            },
            GrantPolicyInput {
                approval_ttl_seconds: Some(600),
                ..Default::default()
            },
            GrantPolicyInput {
                require_approval: Some(vec![ApprovalRule::default()]),
                approval_ttl_seconds: Some(59),
                ..Default::default()
            },
            GrantPolicyInput {
                require_approval: Some(vec![ApprovalRule {
                    methods: None,
                    path_prefixes: Some(vec!["/a/../b".into()]),
                }]),
                ..Default::default()
            },
        ] {
            assert!(bad.clone().resolve(now()).is_err(), "{bad:?}");
        }
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
