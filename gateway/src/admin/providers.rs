//! `/admin/v1/providers`: the provider registry. List and show (native types too), upload (the
//! component's bytes as the body), disable and enable, remove.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{AdminCtx, ApiPath, ApiQuery};
use crate::changes::{self, Change};
use crate::clock::now;
use crate::error::{ApiBytes, ApiError, ErrorBody, ErrorCode};
use crate::inject::{ProviderDescription, is_native};
use crate::plugin::{LoadedPlugin, ProviderInfo};
use crate::state::AppState;
use crate::store::UploadedProvider;

/// Largest component an upload may carry.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    pub data: Vec<ProviderInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderDetail {
    #[serde(flatten)]
    pub info: ProviderInfo,
    pub description: ProviderDescription,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Force {
    /// Go ahead although secrets use the provider; they then fail with `provider_error`.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// Take over the id of a bundled (or plugins-directory) provider: every secret of that
    /// type is then served by the upload. Refused without it, so that an upload never replaces
    /// a known provider by accident or by stealth; audited either way.
    #[serde(default)]
    pub replace_bundled: bool,
}

#[utoipa::path(get, path = "/admin/v1/providers", tag = "providers",
    description = "Every secret type: the native ones (`source: native`, no digest), then each provider with its active component.",
    responses((status = 200, body = ProviderList)))]
pub async fn list(State(state): State<AppState>) -> Json<ProviderList> {
    Json(ProviderList {
        data: state.providers.list().await.into_iter().map(|(info, _)| info).collect(),
    })
}

#[utoipa::path(get, path = "/admin/v1/providers/{id}", tag = "providers", params(("id" = String, Path)),
    responses((status = 200, body = ProviderDetail), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProviderDetail>, ApiError> {
    let (info, description) = state
        .providers
        .show(&id)
        .await
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(Json(ProviderDetail { info, description }))
}

#[utoipa::path(post, path = "/admin/v1/providers", tag = "providers", params(Upload),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "the component (`.wasm`)"),
    description = "Compiles the component, checks it against the contract and reads its description under the sandbox limits; only then is it stored and made active (replacing an uploaded component with the same id: calls in flight finish on the old one). Anything wrong is refused and changes nothing.",
    responses((status = 201, description = "new", body = ProviderDetail), (status = 200, description = "replaced an upload", body = ProviderDetail),
        (status = 400, description = "not a valid provider component", body = ErrorBody),
        (status = 409, description = "the id is a bundled provider's and `replace_bundled` was not set", body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiQuery(q): ApiQuery<Upload>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<ProviderDetail>), ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("send the component's bytes as the request body"));
    }
    let plugin = LoadedPlugin::load(state.providers.engine(), body.to_vec())
        .await
        .map_err(|e| ApiError::bad_request(format!("the component is refused: {e}")))?;
    let id = plugin.description.id.clone();
    let replacing = state.providers.uploaded_digest(&id).is_some();
    let takes_over = state.providers.has_fallback(&id);
    if takes_over && !q.replace_bundled {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "provider `{id}` is bundled (or in the plugins directory); an upload with its id would serve every secret of that type: repeat with ?replace_bundled=true to do that"
            ),
        ));
    }
    let meta = UploadedProvider {
        id: id.clone(),
        version: plugin.description.version.clone(),
        digest: plugin.digest.clone(),
        size: plugin.size as i64,
        uploaded_at: now(),
    };
    let mut event = ctx.event();
    event.target = Some(id.clone());
    event.provider = Some(id.clone());
    event.provider_version = Some(meta.version.clone());
    event.message = Some(format!(
        "digest {}, {} bytes{}",
        meta.digest,
        meta.size,
        if takes_over {
            ", replacing the bundled provider"
        } else {
            ""
        }
    ));
    state.store.put_uploaded_provider(&meta, &body, &event).await?;
    state.providers.install_uploaded(Arc::new(plugin));
    changes::publish(&state, Change::Provider { id: id.clone() }).await;
    let (info, description) = state
        .providers
        .show(&id)
        .await
        .ok_or_else(|| ApiError::internal("uploaded provider vanished"))?;
    let status = if replacing { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(ProviderDetail { info, description })))
}

/// A native type is part of the gateway: there is nothing to remove, disable or replace.
fn refuse_native(id: &str, what: &str) -> Result<(), ApiError> {
    if is_native(id) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("`{id}` is a native type, built into credgate: it cannot be {what}"),
        ));
    }
    Ok(())
}

/// Refuses a change that would leave secrets without their provider, unless forced.
async fn guard_in_use(state: &AppState, id: &str, force: bool, what: &str) -> Result<(), ApiError> {
    let in_use = state.store.secrets_of_type(id).await?;
    if in_use > 0 && !force {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{in_use} secret(s) use provider `{id}`; {what} anyway with ?force=true (their calls then fail with provider_error)"
            ),
        ));
    }
    Ok(())
}

#[utoipa::path(delete, path = "/admin/v1/providers/{id}", tag = "providers", params(("id" = String, Path), Force),
    description = "Removes an uploaded component. If a directory or bundled component has the same id, it serves again; otherwise secrets of this type fail with provider_error, so removal is refused while secrets use it unless forced.",
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<Force>,
) -> Result<StatusCode, ApiError> {
    refuse_native(&id, "removed")?;
    if state.providers.uploaded_digest(&id).is_none() {
        if state.providers.contains(&id) {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("provider `{id}` is bundled or from the plugins directory, not uploaded: disable it instead"),
            ));
        }
        return Err(ApiError::not_found("provider"));
    }
    if !state.providers.has_fallback(&id) {
        guard_in_use(&state, &id, q.force, "remove it").await?;
    }
    let mut event = ctx.event();
    event.target = Some(id.clone());
    event.provider = Some(id.clone());
    if !state.store.delete_uploaded_provider(&id, &event).await? {
        return Err(ApiError::not_found("provider"));
    }
    state.providers.remove_uploaded(&id);
    changes::publish(&state, Change::Provider { id }).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/v1/providers/{id}/disable", tag = "providers", params(("id" = String, Path), Force),
    description = "Stops serving the provider, whatever its source. Refused while secrets use it unless forced, and for native types.",
    responses((status = 200, body = ProviderDetail), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<Force>,
) -> Result<Json<ProviderDetail>, ApiError> {
    toggle(state, ctx, id, true, q.force).await
}

#[utoipa::path(post, path = "/admin/v1/providers/{id}/enable", tag = "providers", params(("id" = String, Path)),
    responses((status = 200, body = ProviderDetail), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProviderDetail>, ApiError> {
    toggle(state, ctx, id, false, false).await
}

async fn toggle(
    state: AppState,
    ctx: AdminCtx,
    id: String,
    disabled: bool,
    force: bool,
) -> Result<Json<ProviderDetail>, ApiError> {
    refuse_native(&id, if disabled { "disabled" } else { "enabled" })?;
    if !state.providers.contains(&id) {
        return Err(ApiError::not_found("provider"));
    }
    if disabled {
        guard_in_use(&state, &id, force, "disable it").await?;
    }
    let mut event = ctx.event();
    event.target = Some(id.clone());
    event.provider = Some(id.clone());
    if state.store.set_provider_disabled(&id, disabled, now(), &event).await? {
        changes::publish(&state, Change::Provider { id: id.clone() }).await;
    }
    let (info, description) = state
        .providers
        .show(&id)
        .await
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(Json(ProviderDetail { info, description }))
}
