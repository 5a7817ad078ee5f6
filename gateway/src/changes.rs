//! Changes that must reach every replica: a revoked grant or key, a rotated or deleted secret,
//! changed memberships, a provider uploaded, removed or switched off.
//!
//! The replica that made a change applies it at once and tells the others over PostgreSQL
//! `NOTIFY`; they apply it when the notification arrives (milliseconds). Notifications can be
//! lost (a dropped connection), so every replica also resyncs in full on a timer and after
//! every reconnect. On SQLite there is one process and nothing to tell.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::state::AppState;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Key {
        prefix: String,
    },
    Grant {
        id: Uuid,
    },
    Secret {
        id: Uuid,
    },
    Memberships {
        principal: Uuid,
    },
    /// An admin token was created or revoked.
    AdminTokens,
    /// A principal with an external id (an OpenID Provider's user or group) was created.
    Identities,
    Provider {
        id: String,
    },
    /// Many things at once (a principal deleted, master keys re-wrapped).
    All,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: Uuid,
    #[serde(flatten)]
    change: Change,
}

/// Applies a change made here, then tells the other replicas.
pub async fn publish(state: &AppState, change: Change) {
    apply(state, &change).await;
    let payload = serde_json::to_string(&Envelope {
        origin: state.replica,
        change,
    })
    .unwrap_or_default();
    if let Err(e) = state.store.notify(&payload).await {
        // The other replicas converge at their next resync.
        tracing::warn!(error = %e, "could not notify the other replicas; they will catch up at their next resync");
    }
}

/// Makes this replica's in-memory state reflect a change.
pub async fn apply(state: &AppState, change: &Change) {
    match change {
        Change::Key { prefix } => state.cache.invalidate_key(prefix),
        Change::Grant { id } => state.cache.invalidate_grant(*id),
        Change::Secret { id } => {
            state.cache.invalidate_secret(*id);
            // Rotated, reconfigured or deleted: what was minted from it is not used again.
            state.minter.forget(*id);
        }
        Change::Memberships { principal } => state.cache.invalidate_memberships(*principal),
        Change::AdminTokens => state.admin_auth.force_reload(state.store.as_ref()).await,
        Change::Identities => state.cache.invalidate_identities(),
        Change::Provider { id } => {
            if let Err(e) = state.providers.sync_from_store(state.store.as_ref(), Some(id)).await {
                tracing::warn!(provider = %id, error = %e, "could not reload the provider");
            }
        }
        Change::All => resync(state).await,
    }
}

/// Drops every cached entry and reloads the provider registry and the proxy CAs from the
/// database.
pub async fn resync(state: &AppState) {
    state.cache.invalidate_all();
    state.admin_auth.force_reload(state.store.as_ref()).await;
    if let Err(e) = state.providers.sync_from_store(state.store.as_ref(), None).await {
        tracing::warn!(error = %e, "could not resync providers");
    }
    if let Err(e) = state
        .authorities
        .reload(state.store.as_ref(), &state.keyring.current())
        .await
    {
        tracing::warn!(error = %e, "could not reload the proxy CAs");
    }
}

/// Listens for other replicas' changes and resyncs every `period` as a safety net. Runs until
/// the state's last other holder is gone.
pub fn spawn(state: AppState, period: Duration) {
    let listener_state = state.clone();
    tokio::spawn(async move {
        let name = format!("credgate-listener-{}", listener_state.replica);
        loop {
            match listener_state.store.subscribe(&name).await {
                Ok(None) => return,
                Ok(Some(mut subscription)) => {
                    // Anything sent before the subscription existed is unknown: catch up.
                    resync(&listener_state).await;
                    loop {
                        match subscription.recv().await {
                            Ok(Some(payload)) => match serde_json::from_str::<Envelope>(&payload) {
                                Ok(envelope) if envelope.origin == listener_state.replica => {}
                                Ok(envelope) => apply(&listener_state, &envelope.change).await,
                                Err(e) => tracing::warn!(error = %e, "unreadable change notification"),
                            },
                            Ok(None) => {
                                tracing::warn!("change notifications were interrupted; resyncing");
                                resync(&listener_state).await;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "lost the change notification connection");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for changes; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            resync(&state).await;
        }
    });
}
