//! The person an app acts for: `X-Credgate-User-Token: <ID token>` from an OpenID Provider
//! credgate trusts. Verified after the app key (an unknown caller's token is never looked at,
//! and never makes credgate fetch keys), resolved to a user principal and the groups the
//! token names. Like every `X-Credgate-*` header it is never forwarded.

use http::HeaderMap;

use super::call::{Call, Failure, refuse};
use crate::error::{ApiError, ErrorCode};
use crate::identity::UserTokenError;
use crate::identity::directory::{self, DirectoryError, Resolved};

pub const USER_TOKEN_HEADER: &str = "x-credgate-user-token";

/// The phase: `None` when the app sent no user token.
pub async fn identify(call: &mut Call, caller: &HeaderMap) -> Result<Option<Resolved>, Failure> {
    let mut values = caller.get_all(USER_TOKEN_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |why: &dyn std::fmt::Display| {
        refuse(
            ErrorCode::UserTokenInvalid,
            format!("X-Credgate-User-Token was not accepted: {why}"),
        )
    };
    if values.next().is_some() {
        return Err(invalid(&"send one user token"));
    }
    let token = value.to_str().map(str::trim).unwrap_or_default();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token);
    let state = &call.state;
    let user = match state
        .identity
        .verify(&state.upstream, token, crate::clock::now().timestamp())
        .await
    {
        Ok(user) => user,
        Err(e @ UserTokenError::Keys(_)) => {
            tracing::warn!(error = %e, "a user token could not be checked");
            return Err(refuse(ErrorCode::Unavailable, e.to_string()));
        }
        Err(e) => return Err(invalid(&e)),
    };
    let provision = state
        .identity
        .trusted(&user.issuer)
        .is_some_and(|t| t.config.provision_users);
    let resolved = directory::resolve(state.store.as_ref(), &state.cache, &user, provision)
        .await
        .map_err(|e| match e {
            DirectoryError::UnknownUser => refuse(ErrorCode::Forbidden, e.to_string()),
            DirectoryError::Store(e) => ApiError::from(e).into(),
        })?;
    call.event.user_principal_id = Some(resolved.user.id);
    Ok(Some(resolved))
}
