//! What one audit event says. Never a credential: only ids, names, codes and sizes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A change (or attempted change) through the admin API.
    Admin,
    /// A data-plane call, allowed or refused.
    Proxy,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Proxy => "proxy",
        }
    }
}

/// One audit event. Optional fields are left out of the JSON when empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: Uuid,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub at: DateTime<Utc>,
    pub kind: AuditKind,
    /// What happened, e.g. `principal.create`, `grant.revoke`, `proxy.request`.
    pub action: String,
    /// `ok`, or the error code that ended it (`conflict`, `grant_revoked`, …).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who acted: `admin:<token id>` for the admin API, `principal:<id>` on the data plane,
    /// `system` for credgate's own actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The id the change applied to (admin events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<Uuid>,
    /// The person the app acted for: the user principal its `X-Credgate-User-Token` named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_id: Option<Uuid>,
    /// The group through which the grant applied, when it belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_group_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_version: Option<String>,
    /// How a data-plane call came in: `explicit`, `base_url` or `forward` (a proxy tunnel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path and query, with injected query parameters redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// A human-readable reason for a refusal. Built by credgate, never from a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why the app made the call, in its own words (`X-Credgate-Reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the app says about the call (`X-Credgate-Context`): a JSON object of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, action: impl Into<String>, outcome: impl Into<String>) -> Self {
        Self {
            id: Uuid::now_v7(),
            at: crate::clock::now(),
            kind,
            action: action.into(),
            outcome: outcome.into(),
            request_id: None,
            actor: None,
            target: None,
            key_id: None,
            principal_id: None,
            user_principal_id: None,
            via_group_id: None,
            grant_id: None,
            secret_id: None,
            secret_version: None,
            provider: None,
            provider_version: None,
            mode: None,
            method: None,
            host: None,
            path: None,
            status: None,
            latency_ms: None,
            upstream_latency_ms: None,
            bytes_in: None,
            bytes_out: None,
            message: None,
            reason: None,
            context: None,
        }
    }

    /// The exact bytes the chain hashes and the database keeps.
    pub fn body(&self) -> String {
        // Room for a call's body at once (about 600 bytes): serde_json's own start of 128 grew
        // it three times, copying each time, twice a call.
        let mut out = Vec::with_capacity(768);
        // Serialising a struct of plain fields into memory cannot fail, and JSON is UTF-8.
        match serde_json::to_writer(&mut out, self) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// An event as read back: its place in the chain and the hashes that link it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous record's hash (hex), which this record's hash covers: not stored with the
    /// record, read from the record before or from the checkpoint that archived it. Empty only
    /// when that record was deleted outside the archiver (verification reports it missing).
    pub prev_hash: String,
    pub hash: String,
}

/// A row as stored, for verification: the body text the hash covers, the columns copied out
/// of it for filtering (as text, however the database keeps them), and the hashes as hex.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAudit {
    pub seq: i64,
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub action: String,
    pub outcome: String,
    pub principal_id: Option<String>,
    pub grant_id: Option<String>,
    pub secret_id: Option<String>,
    pub request_id: Option<String>,
    pub user_principal_id: Option<String>,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredAudit {
    pub fn to_record(&self) -> Result<AuditRecord, serde_json::Error> {
        Ok(AuditRecord {
            seq: self.seq,
            event: serde_json::from_str(&self.body)?,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}
