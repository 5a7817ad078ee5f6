//! `/admin/v1/principals`: users, groups, systems and agents, and group membership.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AdminCtx, ApiPath, ApiQuery};
use crate::clock::now;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;
use crate::vault::principal::{validate_external, validate_name};
use crate::vault::{Principal, PrincipalKind};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    pub kind: PrincipalKind,
    /// Unique among principals; 1 to 200 printable characters.
    pub name: String,
    /// For a user or group of an OpenID Provider credgate trusts: the issuer (as its tokens
    /// name it), with `external_id`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The user's `sub`, or the group's name in the token's groups claim.
    #[serde(default)]
    pub external_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListPrincipals {
    /// Only principals of this kind.
    pub kind: Option<PrincipalKind>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalList {
    pub data: Vec<Principal>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalDetail {
    #[serde(flatten)]
    pub principal: Principal,
    /// For a group: its members' ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Uuid>>,
    /// For a user, system or agent: the groups it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Uuid>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub member_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Membership {
    pub group_id: Uuid,
    pub member_id: Uuid,
    /// False when the principal already was a member (nothing changed).
    pub added: bool,
}

#[utoipa::path(post, path = "/admin/v1/principals", tag = "principals", request_body = CreatePrincipal,
    responses((status = 201, body = Principal), (status = 400, body = ErrorBody), (status = 409, description = "name taken", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiJson(req): ApiJson<CreatePrincipal>,
) -> Result<(StatusCode, Json<Principal>), ApiError> {
    validate_name(&req.name).map_err(ApiError::bad_request)?;
    validate_external(req.kind, req.issuer.as_deref(), req.external_id.as_deref()).map_err(ApiError::bad_request)?;
    let principal = Principal {
        id: Uuid::new_v4(),
        kind: req.kind,
        name: req.name,
        // As tokens name it: compared byte for byte, but a trailing slash is never meant.
        issuer: req.issuer.map(|i| i.trim_end_matches('/').to_owned()),
        external_id: req.external_id,
        created_at: now(),
    };
    let mut event = ctx.event();
    event.target = Some(principal.id.to_string());
    event.principal_id = Some(principal.id);
    state.store.insert_principal(&principal, &event).await?;
    if principal.external_id.is_some() {
        // Replicas may remember that no principal had this external id.
        crate::changes::publish(&state, crate::changes::Change::Identities).await;
    }
    Ok((StatusCode::CREATED, Json(principal)))
}

#[utoipa::path(get, path = "/admin/v1/principals", tag = "principals", params(ListPrincipals),
    responses((status = 200, body = PrincipalList)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListPrincipals>,
) -> Result<Json<PrincipalList>, ApiError> {
    let mut data = state.store.principals().await?;
    if let Some(kind) = q.kind {
        data.retain(|p| p.kind == kind);
    }
    Ok(Json(PrincipalList { data }))
}

#[utoipa::path(get, path = "/admin/v1/principals/{id}", tag = "principals", params(("id" = Uuid, Path)),
    responses((status = 200, body = PrincipalDetail), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<PrincipalDetail>, ApiError> {
    let principal = state
        .store
        .principal(id)
        .await?
        .ok_or_else(|| ApiError::not_found("principal"))?;
    let (members, groups) = if principal.kind == PrincipalKind::Group {
        (Some(state.store.members(id).await?), None)
    } else {
        (None, Some(state.store.groups_of(id).await?))
    };
    Ok(Json(PrincipalDetail {
        principal,
        members,
        groups,
    }))
}

#[utoipa::path(delete, path = "/admin/v1/principals/{id}", tag = "principals", params(("id" = Uuid, Path)),
    description = "Deletes the principal and its group memberships, and revokes its API keys and grants.",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut event = ctx.event();
    event.target = Some(id.to_string());
    event.principal_id = Some(id);
    if state.store.delete_principal(id, now(), &event).await? {
        // Its keys, grants and memberships all changed.
        crate::changes::publish(&state, crate::changes::Change::All).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("principal"))
    }
}

#[utoipa::path(post, path = "/admin/v1/principals/{id}/members", tag = "principals", params(("id" = Uuid, Path, description = "the group")),
    request_body = AddMember,
    responses((status = 201, body = Membership), (status = 200, description = "already a member", body = Membership),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(group_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AddMember>,
) -> Result<(StatusCode, Json<Membership>), ApiError> {
    let group = state
        .store
        .principal(group_id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    if group.kind != PrincipalKind::Group {
        return Err(ApiError::bad_request(format!(
            "principal {group_id} is a {}, not a group",
            group.kind.as_str()
        )));
    }
    let member = state
        .store
        .principal(req.member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member principal"))?;
    if member.kind == PrincipalKind::Group {
        return Err(ApiError::bad_request(
            "groups cannot be members of groups; add users, systems or agents",
        ));
    }
    let mut event = ctx.event();
    event.target = Some(group_id.to_string());
    event.principal_id = Some(req.member_id);
    let added = state.store.add_member(group_id, req.member_id, now(), &event).await?;
    crate::changes::publish(
        &state,
        crate::changes::Change::Memberships {
            principal: req.member_id,
        },
    )
    .await;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(Membership {
            group_id,
            member_id: req.member_id,
            added,
        }),
    ))
}

#[utoipa::path(delete, path = "/admin/v1/principals/{id}/members/{member_id}", tag = "principals",
    params(("id" = Uuid, Path, description = "the group"), ("member_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath((group_id, member_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let mut event = ctx.event();
    event.target = Some(group_id.to_string());
    event.principal_id = Some(member_id);
    if state.store.remove_member(group_id, member_id, &event).await? {
        crate::changes::publish(&state, crate::changes::Change::Memberships { principal: member_id }).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("membership"))
    }
}
