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
    pub created_at: DateTime<Utc>,
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
