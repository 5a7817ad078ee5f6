//! Approval: a call one of its grant's `require_approval` rules matches is held, not made.
//! It has passed every check a call passes (so an operator is never asked about a call that
//! would be refused anyway) and counted against the limits; what it would send is sealed and
//! kept (see [`crate::approvals`]), and the app gets `202` with the approval to follow. With
//! `Prefer: wait=N` the call stays open up to N seconds instead, and answers with the
//! upstream's response if the call is approved and made in that time.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;
use uuid::Uuid;

use super::body::Inbound;
use super::call::{Call, Failure};
use super::target::Target;
use crate::approvals::held::{HeldRequest, HeldResponse};
use crate::approvals::{Approval, ApprovalStatus};
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::vault::{ApiKey, Grant};

/// The header naming the approval on every answer about one.
pub const APPROVAL_HEADER: &str = "x-credgate-approval";
/// Longest `Prefer: wait`, and longest `?wait=` on the status, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;
/// How often a waiting answer looks at the approval's row (it may be decided on any replica).
const POLL: Duration = Duration::from_millis(200);

/// A call that passed every check, to be held.
pub struct Held<'a> {
    pub grant: &'a Grant,
    pub key: &'a ApiKey,
    /// The person the grant applied through (their user token), when it was not the app's.
    pub for_user: Option<uuid::Uuid>,
    pub method: http::Method,
    pub target: Target,
    pub headers: HeaderMap,
    pub inbound: Inbound,
}

/// Whether the grant holds this call for approval: its method, or any method a
/// method-override header names (the upstream may run that one), with its path, or with the
/// object an S3 copy reads; paths matched as loosely as any server could read them.
pub fn needed(grant: &Grant, method: &http::Method, path: &str, caller: &HeaderMap) -> Result<bool, Failure> {
    let policy = &grant.grant_policy;
    if policy.require_approval.is_none() {
        return Ok(false);
    }
    let mut paths = vec![path.to_owned()];
    for source in caller.get_all(super::headers::COPY_SOURCE) {
        paths.push(super::target::copy_source_path(source.as_bytes())?);
    }
    let methods: Vec<String> = std::iter::once(method.as_str().to_owned())
        .chain(overrides(caller))
        .collect();
    Ok(methods
        .iter()
        .any(|m| paths.iter().any(|p| policy.needs_approval(m, p))))
}

/// The methods method-override headers name, upper-cased.
fn overrides(caller: &HeaderMap) -> Vec<String> {
    super::headers::METHOD_OVERRIDES
        .iter()
        .flat_map(|name| caller.get_all(name).iter())
        .map(|value| value.to_str().map(str::trim).unwrap_or_default().to_ascii_uppercase())
        .collect()
}

/// The phase: keeps the call, sealed, and answers `202` (or, with `Prefer: wait`, what came of
/// it). The call's own record says `approval_pending`; the approved call, once made, has its
/// own.
pub async fn hold(call: &mut Call, held: Held<'_>, caller: &HeaderMap) -> Result<Response, Failure> {
    let state = call.state.clone();
    let body = held.inbound.collect(state.settings.approval_max_body).await?;
    let id = Uuid::now_v7();
    let created_at = now();
    let path = match &held.target.query {
        Some(query) => format!("{}?{query}", held.target.path),
        None => held.target.path.clone(),
    };
    let request = HeldRequest {
        method: held.method.as_str().to_owned(),
        url: held.target.uri()?.to_string(),
        headers: held.headers,
        body,
    };
    let sealed = request.seal(&state.keyring.current(), id).map_err(ApiError::internal)?;
    let policy = &held.grant.grant_policy;
    let approval = Approval {
        id,
        status: ApprovalStatus::Pending,
        grant_id: held.grant.grant_id,
        secret_id: held.grant.secret_id,
        principal_id: held.key.principal_id,
        user_principal_id: held.for_user,
        key_id: held.key.id,
        request_id: call.event.request_id.clone().unwrap_or_default(),
        // What the upstream will run, as the operator must see it.
        method: std::iter::once(request.method.clone())
            .chain(overrides(caller).into_iter().map(|m| format!("(as {m})")))
            .collect::<Vec<_>>()
            .join(" "),
        host: held.target.url.host_str().unwrap_or_default().to_owned(),
        path,
        reason: call.event.reason.clone(),
        context: call.event.context.clone(),
        body_bytes: request.body.len() as i64,
        created_at,
        expires_at: created_at + policy.approval_ttl(),
        ttl_seconds: policy.approval_ttl().num_seconds(),
        decided_at: None,
        decided_by: None,
        note: None,
        finished_at: None,
        failure: None,
        response_status: None,
        request: Some(sealed),
        response: None,
    };
    state.store.insert_approval(&approval).await.map_err(ApiError::from)?;
    state.metrics.approval("requested");
    call.event.target = Some(id.to_string());
    call.record("approval_pending", StatusCode::ACCEPTED.as_u16());

    if let Some(wait) = prefer_wait(caller) {
        // A waiting call holds no place among the calls in flight: the approved call it waits
        // for needs one.
        drop(call.permit.take());
        drop(call.room.take());
        match settle(&state, id, wait).await {
            Ok(settled) => {
                if let Some(answer) = settled.and_then(|a| final_answer(&state, &a)) {
                    return Ok(answer);
                }
            }
            // The call is held and recorded: the app follows it up as if it had not waited.
            Err(e) => tracing::warn!(approval = %id, error = %e, "could not wait for an approval"),
        }
    }
    Ok(accepted(&state, &approval))
}

/// `Prefer: wait=N` (RFC 7240), at most [`MAX_WAIT_SECONDS`].
fn prefer_wait(caller: &HeaderMap) -> Option<Duration> {
    caller
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pref| {
            let (name, value) = pref.split_once('=')?;
            (name.trim().eq_ignore_ascii_case("wait")).then(|| value.trim().trim_matches('"').parse::<u64>().ok())?
        })
        .next()
        .map(|seconds| Duration::from_secs(seconds.min(MAX_WAIT_SECONDS)))
}

/// Waits up to `wait` for the approval to settle (anything but pending or executing); the
/// approval as last read.
pub async fn settle(state: &AppState, id: Uuid, wait: Duration) -> Result<Option<Approval>, crate::store::StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let approval = state.store.approval(id).await?;
        let settled = approval.as_ref().is_none_or(|a| a.status_at(now()).is_final());
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(approval);
        }
        tokio::time::sleep(POLL.min(deadline - tokio::time::Instant::now())).await;
    }
}

/// `202` with the approval to follow.
pub fn accepted(state: &AppState, approval: &Approval) -> Response {
    // Absolute: in forward-proxy mode a relative one would name the upstream's host.
    let status_url = format!("{}/v1/approvals/{}", state.public_origin(), approval.id);
    let body = json!({"approval": {
        "id": approval.id,
        "status": approval.status_at(now()),
        "expires_at": approval.expires_at,
        "approval_url": approval_url(state, approval.id),
        "status_url": status_url,
    }});
    let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    name(&mut response, approval.id);
    response
}

/// The portal's page for the approval.
pub fn approval_url(state: &AppState, id: Uuid) -> String {
    format!("{}#/approvals/{id}", state.portal_url())
}

fn name(response: &mut Response, id: Uuid) {
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(APPROVAL_HEADER, value);
    }
}

/// What a settled approval answers with, for an app that waited: the upstream's response once
/// made, credgate's error when it was denied or failed. `None` while it is still open.
pub fn final_answer(state: &AppState, approval: &Approval) -> Option<Response> {
    let mut response = match approval.status_at(now()) {
        ApprovalStatus::Pending | ApprovalStatus::Executing => return None,
        ApprovalStatus::Executed => match kept_response(state, approval) {
            Ok(response) => response,
            Err(error) => error.into_response(),
        },
        ApprovalStatus::Denied => ApiError::new(
            ErrorCode::ApprovalDenied,
            match &approval.note {
                Some(note) => format!("an operator denied this call: {note}"),
                None => "an operator denied this call".to_owned(),
            },
        )
        .into_response(),
        ApprovalStatus::Expired => ApiError::new(
            ErrorCode::ApprovalExpired,
            "nobody approved this call in time; it was not made",
        )
        .into_response(),
        ApprovalStatus::Failed => ApiError::new(
            ErrorCode::ApprovalFailed,
            format!(
                "the approved call could not be made: {}",
                approval.failure.as_deref().unwrap_or("unknown")
            ),
        )
        .into_response(),
    };
    name(&mut response, approval.id);
    Some(response)
}

/// The upstream's response to an approved call, as kept.
pub fn kept_response(state: &AppState, approval: &Approval) -> Result<Response, ApiError> {
    let sealed = approval.response.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "this call's response is no longer kept (it is kept for the grant's approval_ttl_seconds)",
        )
    })?;
    let kept = HeldResponse::open(&state.keyring.current(), approval.id, sealed).map_err(ApiError::internal)?;
    let mut response = Response::new(axum::body::Body::from(kept.body));
    *response.status_mut() = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = kept.headers;
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response.headers_mut().remove(header::TRANSFER_ENCODING);
    if kept.truncated {
        response
            .headers_mut()
            .insert("x-credgate-truncated", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_wait_is_read_as_rfc_7240_says_and_capped() {
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("prefer", HeaderValue::from_str(v).unwrap());
            }
            prefer_wait(&h)
        };
        assert_eq!(with(&["wait=10"]), Some(Duration::from_secs(10)));
        assert_eq!(with(&["respond-async, wait=5"]), Some(Duration::from_secs(5)));
        assert_eq!(with(&["return=minimal", "Wait = \"7\""]), Some(Duration::from_secs(7)));
        assert_eq!(with(&["wait=3600"]), Some(Duration::from_secs(MAX_WAIT_SECONDS)));
        assert_eq!(with(&["wait=soon"]), None);
        assert_eq!(with(&[]), None);
    }
}
