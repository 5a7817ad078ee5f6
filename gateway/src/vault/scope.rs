//! What an admin token may do. Each admin API route needs one scope ([`Scope::needed`]);
//! `admin` holds them all, including the tokens themselves, the key ring and the proxy CA.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    /// Read secrets' metadata (never values), grants, principals, keys and providers.
    #[serde(rename = "secrets:read")]
    SecretsRead,
    /// Create, rotate and delete secrets.
    #[serde(rename = "secrets:write")]
    SecretsWrite,
    /// Issue and revoke grants.
    #[serde(rename = "grants:write")]
    GrantsWrite,
    /// Create and delete principals, change groups, issue and revoke app keys.
    #[serde(rename = "principals:write")]
    PrincipalsWrite,
    /// Upload, remove, enable and disable providers.
    #[serde(rename = "providers:write")]
    ProvidersWrite,
    /// Read the audit trail and the call counts.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// See held calls, approve and deny them.
    #[serde(rename = "approvals:decide")]
    ApprovalsDecide,
    /// Everything.
    #[serde(rename = "admin")]
    Admin,
}

pub const ALL: [Scope; 8] = [
    Scope::SecretsRead,
    Scope::SecretsWrite,
    Scope::GrantsWrite,
    Scope::PrincipalsWrite,
    Scope::ProvidersWrite,
    Scope::AuditRead,
    Scope::ApprovalsDecide,
    Scope::Admin,
];

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretsRead => "secrets:read",
            Self::SecretsWrite => "secrets:write",
            Self::GrantsWrite => "grants:write",
            Self::PrincipalsWrite => "principals:write",
            Self::ProvidersWrite => "providers:write",
            Self::AuditRead => "audit:read",
            Self::ApprovalsDecide => "approvals:decide",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The scope a call to the admin API route `route` (as routed, `/admin/v1/secrets/{id}`)
    /// with `method` needs.
    pub fn needed(method: &http::Method, route: &str) -> Self {
        let read = method == http::Method::GET || method == http::Method::HEAD;
        let rest = route.strip_prefix("/admin/v1/").unwrap_or("");
        let first = rest.split('/').next().unwrap_or("");
        match (first, read) {
            // A grant is issued under its secret's path.
            ("secrets", false) if rest.ends_with("/grants") => Self::GrantsWrite,
            ("secrets", false) => Self::SecretsWrite,
            ("grants", false) => Self::GrantsWrite,
            ("principals" | "keys", false) => Self::PrincipalsWrite,
            ("providers", false) => Self::ProvidersWrite,
            ("secrets" | "grants" | "principals" | "keys" | "providers", true) => Self::SecretsRead,
            ("audit" | "stats", true) => Self::AuditRead,
            ("approvals", _) => Self::ApprovalsDecide,
            _ => Self::Admin,
        }
    }
}

/// A token's scopes, as stored: space-separated.
pub fn to_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// Scopes as stored; an unknown word (a newer version's scope) grants nothing.
pub fn from_text(text: &str) -> Vec<Scope> {
    text.split_whitespace().filter_map(Scope::parse).collect()
}

/// Whether `held` covers `needed`.
pub fn allows(held: &[Scope], needed: Scope) -> bool {
    held.contains(&Scope::Admin) || held.contains(&needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn each_route_needs_the_scope_of_what_it_touches() {
        for (method, route, scope) in [
            (Method::GET, "/admin/v1/secrets/{id}", Scope::SecretsRead),
            (Method::POST, "/admin/v1/secrets/{id}/rotate", Scope::SecretsWrite),
            (Method::POST, "/admin/v1/secrets/{id}/grants", Scope::GrantsWrite),
            (Method::DELETE, "/admin/v1/grants/{grant_id}", Scope::GrantsWrite),
            (Method::POST, "/admin/v1/principals/{id}/keys", Scope::PrincipalsWrite),
            (Method::DELETE, "/admin/v1/keys/{id}", Scope::PrincipalsWrite),
            (Method::POST, "/admin/v1/providers", Scope::ProvidersWrite),
            (Method::GET, "/admin/v1/audit", Scope::AuditRead),
            (Method::GET, "/admin/v1/stats", Scope::AuditRead),
            (Method::POST, "/admin/v1/approvals/{id}/approve", Scope::ApprovalsDecide),
            (Method::POST, "/admin/v1/keyring/rotate", Scope::Admin),
            (Method::GET, "/admin/v1/admin-tokens", Scope::Admin),
            (Method::GET, "/admin/v1/sessions", Scope::Admin),
            (Method::DELETE, "/admin/v1/sessions/{id}", Scope::Admin),
        ] {
            assert_eq!(Scope::needed(&method, route), scope, "{method} {route}");
        }
        assert!(allows(&[Scope::Admin], Scope::ProvidersWrite));
        assert!(!allows(&[Scope::GrantsWrite], Scope::SecretsWrite));
        assert_eq!(
            from_text("grants:write nonsense audit:read"),
            [Scope::GrantsWrite, Scope::AuditRead]
        );
    }
}
