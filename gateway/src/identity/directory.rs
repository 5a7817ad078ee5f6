//! The principals a verified token names: the user by (issuer, `sub`), created on first sight
//! when the issuer provisions users, and the groups whose external ids the token's groups
//! claim lists. Looked up through the hot cache, so a known user costs no query.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::User;
use crate::audit::{AuditEvent, AuditKind};
use crate::cache::HotCache;
use crate::store::{Store, StoreError};
use crate::vault::{Principal, PrincipalKind};

/// The principals behind a token.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub user: Arc<Principal>,
    /// The groups the token names that credgate knows (by external id).
    pub groups: Vec<Arc<Principal>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The issuer does not provision users and no operator created this one.
    #[error("this user is not known to credgate (their identity provider's users are not created on first sight)")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user principal and the known groups of `user`.
pub async fn resolve(
    store: &dyn Store,
    cache: &HotCache,
    user: &User,
    provision: bool,
) -> Result<Resolved, DirectoryError> {
    let principal = match cache
        .external(store, &user.issuer, PrincipalKind::User, &user.subject)
        .await?
    {
        Some(p) => p,
        None if provision => provisioned(store, cache, user).await?,
        None => return Err(DirectoryError::UnknownUser),
    };
    let mut groups = Vec::new();
    for name in &user.groups {
        if let Some(group) = cache.external(store, &user.issuer, PrincipalKind::Group, name).await? {
            groups.push(group);
        }
    }
    Ok(Resolved {
        user: principal,
        groups,
    })
}

/// Creates the user principal, recording who did: the issuer. Another replica may create it
/// at the same moment (the external id is unique: the loser reads the winner's), and its
/// name may be taken by another principal: then it carries a tag of its identity, and should
/// someone hold that too (a name anyone can compute), a random one. Never refused for a name.
async fn provisioned(store: &dyn Store, cache: &HotCache, user: &User) -> Result<Arc<Principal>, DirectoryError> {
    let short = |tag: &str| {
        format!(
            "{} ({tag})",
            user.display
                .chars()
                .take(crate::vault::principal::MAX_NAME_LEN - tag.len() - 3)
                .collect::<String>()
        )
    };
    let derived = hex::encode(&Sha256::digest(format!("{}\n{}", user.issuer, user.subject))[..6]);
    let random = Uuid::new_v4().simple().to_string();
    let names = [user.display.clone(), short(&derived), short(&random)];
    for name in names {
        let principal = Principal {
            id: Uuid::new_v4(),
            kind: PrincipalKind::User,
            name,
            issuer: Some(user.issuer.clone()),
            external_id: Some(user.subject.clone()),
            created_at: crate::clock::now(),
        };
        let mut event = AuditEvent::new(AuditKind::Admin, "principal.provision", "ok");
        event.actor = Some(format!("oidc:{}", user.issuer));
        event.target = Some(principal.id.to_string());
        event.principal_id = Some(principal.id);
        match store.insert_principal(&principal, &event).await {
            Ok(()) => {
                tracing::info!(principal = %principal.id, issuer = %user.issuer, "user provisioned from an identity provider");
                cache.remember_external(&principal);
                return Ok(Arc::new(principal));
            }
            Err(StoreError::Conflict(_)) => {
                // Someone else created this user, or holds the name: which one?
                if let Some(existing) = store
                    .principal_by_external(&user.issuer, PrincipalKind::User, &user.subject)
                    .await?
                {
                    cache.remember_external(&existing);
                    return Ok(Arc::new(existing));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict("a principal with this user's name".into()).into())
}
