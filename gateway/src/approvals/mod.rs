//! Calls that wait for a person: a grant's `require_approval` rules hold a matching call, an
//! operator approves or denies it, and on approval credgate makes the call itself and keeps
//! the response for the app.
//!
//! What is kept of the call (method, URL, headers without the app key, body) and of the
//! upstream's response is sealed with the master key as a credential is ([`held`]): bodies
//! carry the app's data. The row's state moves only forward, each step one conditional update
//! ([`crate::store::Store::decide_approval`]), so with any number of replicas and operators a
//! call is made at most once, and never after it expired:
//!
//! `pending` → `executing` (approved; the call is being made) → `executed` | `failed`;
//! `pending` → `denied`; `pending` → `expired` (nobody decided in time).

pub mod held;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::crypto::SealedValue;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for an operator.
    Pending,
    /// Approved; credgate is making the call.
    Executing,
    /// Made; the response is kept until `expires_at`.
    Executed,
    /// Approved, but the call could not be made (the grant was revoked or expired in between,
    /// the upstream was unreachable, …): nothing was sent, or no answer came.
    Failed,
    Denied,
    /// Nobody decided before `expires_at`.
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Executing => "executing",
            Self::Executed => "executed",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "executing" => Self::Executing,
            "executed" => Self::Executed,
            "failed" => Self::Failed,
            "denied" => Self::Denied,
            "expired" => Self::Expired,
            _ => return None,
        })
    }

    /// Whether the state can still change.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Executing)
    }
}

/// One held call, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub id: Uuid,
    pub status: ApprovalStatus,
    pub grant_id: Uuid,
    pub secret_id: Uuid,
    /// The principal whose app key made the call: the only one that may read it.
    pub principal_id: Uuid,
    /// The person the app acted for (its user token), when the grant applied through them.
    pub user_principal_id: Option<Uuid>,
    pub key_id: Uuid,
    /// The request id of the call that was held.
    pub request_id: String,
    pub method: String,
    pub host: String,
    /// Path and query as the audit trail shows them.
    pub path: String,
    pub reason: Option<String>,
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    pub body_bytes: i64,
    pub created_at: DateTime<Utc>,
    /// While pending: when it expires. Once made: until when its response is kept.
    pub expires_at: DateTime<Utc>,
    pub ttl_seconds: i64,
    pub decided_at: Option<DateTime<Utc>>,
    /// `admin:<token id>` of the operator who approved or denied.
    pub decided_by: Option<String>,
    pub note: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why a `failed` call failed: credgate's error code and message.
    pub failure: Option<String>,
    pub response_status: Option<u16>,
    /// The held request, sealed; gone once the approval is decided and made, or expired.
    pub request: Option<SealedValue>,
    /// The upstream's response, sealed; gone once `expires_at` passes.
    pub response: Option<SealedValue>,
}

impl Approval {
    /// The status as of `now`: a pending approval past its expiry is expired, whether or not
    /// the sweep has recorded it yet.
    pub fn status_at(&self, now: DateTime<Utc>) -> ApprovalStatus {
        if self.status == ApprovalStatus::Pending && self.expires_at <= now {
            ApprovalStatus::Expired
        } else {
            self.status
        }
    }
}

/// Where a sealed part of an approval sits, for the envelope's associated data: the approval's
/// id and a negative "version" no secret version uses.
pub const REQUEST_SEAL: i64 = -1;
pub const RESPONSE_SEAL: i64 = -2;

/// How an approved call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// `Executed` or `Failed`.
    pub status: ApprovalStatus,
    pub at: DateTime<Utc>,
    /// Until when the response is kept.
    pub keep_until: DateTime<Utc>,
    pub response_status: Option<u16>,
    pub response: Option<SealedValue>,
    pub failure: Option<String>,
}
