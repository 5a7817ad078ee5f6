//! Principals: who may hold grants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    Group,
    System,
    Agent,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::System => "system",
            Self::Agent => "agent",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "user" => Self::User,
            "group" => Self::Group,
            "system" => Self::System,
            "agent" => Self::Agent,
            _ => return None,
        })
    }

    /// Groups hold grants but cannot authenticate: keys go to their members.
    pub fn can_hold_keys(self) -> bool {
        self != Self::Group
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Principal {
    pub id: Uuid,
    pub kind: PrincipalKind,
    pub name: String,
    /// For a user or group known to an OpenID Provider: the issuer, as its tokens name it...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// ...and the user's `sub`, or the group's name in the token's groups claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The longest external id (a `sub` or a group name) credgate keeps.
pub const MAX_EXTERNAL_ID_LEN: usize = 255;

/// An external id is set with its issuer, on users and groups only, printable and bounded.
pub fn validate_external(kind: PrincipalKind, issuer: Option<&str>, external_id: Option<&str>) -> Result<(), String> {
    match (issuer, external_id) {
        (None, None) => Ok(()),
        (Some(_), None) | (None, Some(_)) => Err("`issuer` and `external_id` go together".into()),
        (Some(issuer), Some(id)) => {
            if !matches!(kind, PrincipalKind::User | PrincipalKind::Group) {
                return Err("only users and groups have an external id".into());
            }
            if issuer.is_empty() || id.is_empty() {
                return Err("`issuer` and `external_id` must not be empty".into());
            }
            if id.chars().count() > MAX_EXTERNAL_ID_LEN || issuer.len() > 2048 {
                return Err(format!(
                    "`external_id` must be at most {MAX_EXTERNAL_ID_LEN} characters"
                ));
            }
            if id.chars().any(char::is_control) || issuer.chars().any(char::is_control) {
                return Err("`issuer` and `external_id` must not contain control characters".into());
            }
            Ok(())
        }
    }
}

pub const MAX_NAME_LEN: usize = 200;

/// Names are unique labels shown in tables and audit: printable, trimmed, bounded.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if name.trim() != name {
        return Err("name must not start or end with whitespace".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("name must be at most {MAX_NAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    Ok(())
}
