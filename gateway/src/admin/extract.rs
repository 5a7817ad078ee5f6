//! Extractors for admin handlers: who is acting, and path and query parameters parsed into
//! credgate's error shape instead of axum's plain-text rejections.

use axum::extract::{FromRequestParts, MatchedPath, Path, Query};
use axum::http::Method;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::auth::AdminActor;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::{ApiError, ErrorCode};
use crate::request_id::RequestId;

/// The audit action of an admin route. Reads are not audited; every change is, including
/// failed attempts (see [`super::audit_failures`]).
pub fn action_for(method: &Method, route: &str) -> Option<&'static str> {
    Some(match (method.as_str(), route) {
        ("POST", "/admin/v1/principals") => "principal.create",
        ("DELETE", "/admin/v1/principals/{id}") => "principal.delete",
        ("POST", "/admin/v1/principals/{id}/members") => "principal.member.add",
        ("DELETE", "/admin/v1/principals/{id}/members/{member_id}") => "principal.member.remove",
        ("POST", "/admin/v1/principals/{id}/keys") => "key.issue",
        ("DELETE", "/admin/v1/keys/{id}") => "key.revoke",
        ("POST", "/admin/v1/secrets") => "secret.create",
        ("POST", "/admin/v1/secrets/{id}/rotate") => "secret.rotate",
        ("DELETE", "/admin/v1/secrets/{id}") => "secret.delete",
        ("POST", "/admin/v1/secrets/{id}/grants") => "grant.issue",
        ("DELETE", "/admin/v1/grants/{grant_id}") => "grant.revoke",
        ("POST", "/admin/v1/providers") => "provider.upload",
        ("DELETE", "/admin/v1/providers/{id}") => "provider.remove",
        ("POST", "/admin/v1/providers/{id}/disable") => "provider.disable",
        ("POST", "/admin/v1/providers/{id}/enable") => "provider.enable",
        ("POST", "/admin/v1/keyring/rotate") => "keyring.rotate",
        ("POST", "/admin/v1/keyring/rewrap") => "keyring.rewrap",
        ("POST", "/admin/v1/proxy-ca/rotate") => "proxy_ca.rotate",
        ("POST", "/admin/v1/approvals/{id}/approve") => "approval.approve",
        ("POST", "/admin/v1/approvals/{id}/deny") => "approval.deny",
        ("POST", "/admin/v1/admin-tokens") => "admin_token.create",
        ("DELETE", "/admin/v1/admin-tokens/{id}") => "admin_token.revoke",
        ("DELETE", "/admin/v1/sessions/{id}") => "portal.session.end",
        _ => return None,
    })
}

/// The context of one admin call, for its audit event.
#[derive(Clone, Debug)]
pub struct AdminCtx {
    pub actor: String,
    pub request_id: String,
    pub action: &'static str,
}

impl AdminCtx {
    /// An `ok` event for this call, to be committed with the change it records.
    pub fn event(&self) -> AuditEvent {
        let mut e = AuditEvent::new(AuditKind::Admin, self.action, "ok");
        e.actor = Some(self.actor.clone());
        e.request_id = Some(self.request_id.clone());
        e
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let actor = parts
            .extensions
            .get::<AdminActor>()
            .map(|a| a.0.clone())
            .ok_or_else(|| ApiError::internal("admin handler reached without an authenticated actor"))?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let action = action_for(&parts.method, &route).unwrap_or("admin.read");
        Ok(Self {
            actor,
            request_id,
            action,
        })
    }
}

/// Path parameters. Ids that do not parse cannot name anything, so they answer 404.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|_| ApiError::new(ErrorCode::NotFound, "not found: ids in the path are UUIDs"))
    }
}

/// Query parameters, refusing unknown ones (when the type says so) with a 400.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "invalid query: {}",
                    e.body_text().trim_start_matches("Failed to deserialize query string: ")
                ))
            })
    }
}
