//! The trail's signing key in the database: made at the first archiving pass, sealed with the master
//! key (so the rotation's re-wrap covers it), opened only to sign or to name its public half.

use crate::audit::{AuditEvent, AuditKind, AuditSigner};
use crate::clock::now;
use crate::crypto::{KeyRing, open_value, seal_value};
use crate::redact::SecretBytes;
use crate::store::{AUDIT_KEY_VERSION, Store, StoredSigningKey};

use super::ArchiveError;

/// The stored key, opened; `None` before the first archiving pass.
pub async fn load_signer(store: &dyn Store, ring: &KeyRing) -> Result<Option<AuditSigner>, ArchiveError> {
    let Some(stored) = store.audit_signing_key().await? else {
        return Ok(None);
    };
    let pkcs8 = open_value(ring, &stored.id.to_string(), AUDIT_KEY_VERSION, &stored.sealed)
        .map_err(|e| ArchiveError::Key(e.to_string()))?;
    let signer =
        AuditSigner::from_pkcs8(stored.id.to_string(), stored.created_at, pkcs8.expose()).map_err(ArchiveError::Key)?;
    // The public half kept beside it is for reading only: the one that counts is derived from
    // the sealed key, which nobody can replace without the master key.
    if signer.info.public_key != stored.public_key {
        return Err(ArchiveError::Key(
            "the stored public key is not the sealed key's (the row was changed)".into(),
        ));
    }
    Ok(Some(signer))
}

/// The stored key, made first if there is none (its making is audited).
pub async fn load_or_create_signer(store: &dyn Store, ring: &KeyRing) -> Result<AuditSigner, ArchiveError> {
    if let Some(signer) = load_signer(store, ring).await? {
        return Ok(signer);
    }
    let id = uuid::Uuid::new_v4();
    let created_at = now();
    let pkcs8 = AuditSigner::generate_pkcs8().map_err(ArchiveError::Key)?;
    let signer = AuditSigner::from_pkcs8(id.to_string(), created_at, &pkcs8).map_err(ArchiveError::Key)?;
    let sealed = seal_value(
        ring,
        &id.to_string(),
        AUDIT_KEY_VERSION,
        &SecretBytes::new(pkcs8.to_vec()),
    )
    .map_err(|e| ArchiveError::Key(e.to_string()))?;
    let mut event = AuditEvent::new(AuditKind::Admin, "audit.signing_key.create", "ok");
    event.actor = Some("system".into());
    event.target = Some(id.to_string());
    let stored = StoredSigningKey {
        id,
        public_key: signer.info.public_key.clone(),
        sealed,
        created_at,
    };
    if store.insert_audit_signing_key(&stored, &event).await? {
        tracing::info!(key = %id, public_key = %signer.info.public_key, "made the audit trail's signing key");
        return Ok(signer);
    }
    // Another replica made one first.
    load_signer(store, ring)
        .await?
        .ok_or_else(|| ArchiveError::Key("the signing key vanished".into()))
}
