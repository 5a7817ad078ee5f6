//! Policy: which grant, whether it holds, and whether it allows this method and this path.
//! Every refusal here comes before anything is decrypted.

use std::sync::Arc;

use http::{HeaderMap, Method};
use uuid::Uuid;

use super::call::{Call, Failure, refuse};
use super::headers;
use super::target::{self, Target};
use crate::cache::LiveSecret;
use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::vault::{Grant, GrantStatus};

/// Methods credgate never forwards, whatever a grant allows: `TRACE` and `TRACK` make an
/// upstream echo the request (credential included) back, `CONNECT` would open a tunnel past
/// every check.
fn never_forwarded(method: &str) -> bool {
    ["TRACE", "TRACK", "CONNECT"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// Refuses the methods credgate never forwards, before anything else.
pub fn forwardable(method: &Method) -> Result<(), Failure> {
    if never_forwarded(method.as_str()) {
        return Err(refuse(
            ErrorCode::MethodNotAllowed,
            format!("credgate never forwards {method}: it would reflect the credential or open a tunnel"),
        ));
    }
    Ok(())
}

/// The grant the call names.
pub async fn grant(call: &mut Call, grant_text: &str) -> Result<Arc<Grant>, Failure> {
    if grant_text.is_empty() {
        return Err(refuse(
            ErrorCode::BadRequest,
            "missing X-Credgate-Grant: the grant id to use",
        ));
    }
    let grant_id = Uuid::parse_str(grant_text)
        .map_err(|_| refuse(ErrorCode::GrantNotFound, "no grant with that id (grant ids are UUIDs)"))?;
    call.event.grant_id = Some(grant_id);
    let state = &call.state;
    let grant = state
        .cache
        .grant(state.store.as_ref(), grant_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| refuse(ErrorCode::GrantNotFound, "no grant with that id"))?;
    call.event.secret_id = Some(grant.secret_id);
    Ok(grant)
}

/// The grant is neither revoked nor expired, and allows the method: the request's own, and
/// any a method-override header names.
pub fn lifetime_and_method(grant: &Grant, method: &Method, caller: &HeaderMap) -> Result<(), Failure> {
    match grant.status(now()) {
        GrantStatus::Revoked => return Err(refuse(ErrorCode::GrantRevoked, "this grant has been revoked")),
        GrantStatus::Expired => return Err(refuse(ErrorCode::GrantExpired, "this grant has expired")),
        GrantStatus::Active => {}
    }
    if !grant.grant_policy.allows_method(method.as_str()) {
        return Err(refuse(
            ErrorCode::PolicyViolation,
            format!("this grant does not allow {method}"),
        ));
    }
    // Frameworks that honour a method-override header run the method it names, so the grant
    // must allow that one too.
    for name in headers::METHOD_OVERRIDES {
        for value in caller.get_all(&name) {
            let named = value.to_str().map(str::trim).unwrap_or_default().to_ascii_uppercase();
            if named.is_empty() || never_forwarded(&named) || !grant.grant_policy.allows_method(&named) {
                return Err(refuse(
                    ErrorCode::PolicyViolation,
                    format!("this grant does not allow the method named by {name}"),
                ));
            }
        }
    }
    Ok(())
}

/// The grant's secret, as long as it exists.
pub async fn secret(call: &mut Call, grant: &Grant) -> Result<Arc<LiveSecret>, Failure> {
    let state = &call.state;
    let secret = state
        .cache
        .secret(state.store.as_ref(), grant.secret_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| refuse(ErrorCode::GrantRevoked, "this grant's secret has been deleted"))?;
    call.event.secret_version = Some(secret.meta.version);
    Ok(secret)
}

/// The grant allows the path, and every object an S3 copy reads.
pub fn paths(call: &mut Call, grant: &Grant, target: &Target, caller: &HeaderMap) -> Result<(), Failure> {
    call.event.host = target.url.host_str().map(str::to_owned);
    call.event.path = Some(target.path.clone());
    if !grant.grant_policy.allows_path(&target.path) {
        return Err(refuse(
            ErrorCode::PolicyViolation,
            format!("this grant does not allow the path `{}`", target.path),
        ));
    }
    // An S3 copy (CopyObject, UploadPartCopy) reads the object its `x-amz-copy-source` names:
    // the grant's path limits bind that object as they bind the request's own path.
    for source in caller.get_all(headers::COPY_SOURCE) {
        let named = target::copy_source_path(source.as_bytes())?;
        if !grant.grant_policy.allows_path(&named) {
            return Err(refuse(
                ErrorCode::PolicyViolation,
                format!("this grant does not allow copying from `{named}`"),
            ));
        }
    }
    Ok(())
}
