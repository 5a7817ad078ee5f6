//! `GET /v1/environment`: the environment variables the SDKs of the caller's providers read
//! their keys from, for `credgate run` to fill with placeholders. Only for the app key's own
//! grants (and its groups'), and names only: nothing about a secret but its type's variables.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::json;

use super::authn;
use crate::clock::now;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::GrantFilter;
use crate::vault::GrantStatus;

pub async fn variables(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match read(&state, &headers).await {
        Ok(names) => axum::Json(json!({"variables": names})).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn read(state: &AppState, headers: &HeaderMap) -> Result<Vec<String>, ApiError> {
    let key = super::approval_status::bearer(headers)
        .ok_or_else(|| ApiError::unauthenticated("send the app key: `Authorization: Bearer <app key>`"))?;
    let key = authn::check(state, key).await.map_err(|f| f.error)?;
    let mut holders = vec![key.principal_id];
    holders.extend(
        state
            .cache
            .groups_of(state.store.as_ref(), key.principal_id)
            .await?
            .iter(),
    );
    let mut names = BTreeSet::new();
    let mut types = BTreeSet::new();
    for holder in holders {
        let filter = GrantFilter {
            principal_id: Some(holder),
            status: Some(GrantStatus::Active),
            ..Default::default()
        };
        for grant in state.store.grants(&filter, now()).await? {
            if let Some(secret) = state.cache.secret(state.store.as_ref(), grant.secret_id).await? {
                types.insert(secret.meta.secret_type.clone());
            }
        }
    }
    for secret_type in types {
        // A type that cannot be served now has no variables to offer.
        if let Ok(injector) = state.providers.resolve(&secret_type, state.store.as_ref()).await {
            names.extend(injector.description().env.iter().cloned());
        }
    }
    Ok(names.into_iter().collect())
}
