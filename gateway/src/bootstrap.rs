//! First-start and every-start preparation: the data directory, the master key ring and the
//! first admin token.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::admin_tokens::MIN_BOOTSTRAP_TOKEN_LEN;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::now;
use crate::config::ServeArgs;
use crate::crypto::{KeyRing, KeyRingSource, MasterKey};
use crate::redact::SecretString;
use crate::store::Store;
use crate::vault::api_key::AdminToken;
use crate::vault::token::{self, TokenKind};

pub const MASTER_KEY_FILE: &str = "master.key";
/// Where the first admin token is saved, and where the local CLI looks for it.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("admin token: {0}")]
    AdminToken(String),
}

/// Creates the data directory (0700) if it does not exist.
pub fn prepare_data_dir(dir: &Path) -> Result<(), BootstrapError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| BootstrapError::DataDir {
            path: dir.to_owned(),
            source,
        })
}

/// Loads the key ring: `CREDGATE_MASTER_KEY`, else `--master-key-file`, else the data
/// directory's key file, generated on first start.
pub fn load_keyring(args: &ServeArgs) -> Result<KeyRing, BootstrapError> {
    if let Ok(text) = std::env::var("CREDGATE_MASTER_KEY") {
        return KeyRing::parse(&text, KeyRingSource::Environment)
            .map_err(|e| BootstrapError::MasterKey(format!("CREDGATE_MASTER_KEY: {e}")));
    }
    if let Some(path) = &args.master_key_file {
        return KeyRing::load_file(path).map_err(|e| BootstrapError::MasterKey(e.to_string()));
    }
    let path = args.data_dir.join(MASTER_KEY_FILE);
    if path.exists() {
        return KeyRing::load_file(&path).map_err(|e| BootstrapError::MasterKey(e.to_string()));
    }
    prepare_data_dir(&args.data_dir)?;
    let ring = KeyRing::new(
        vec![MasterKey::generate().map_err(|e| BootstrapError::MasterKey(e.to_string()))?],
        KeyRingSource::File(path.clone()),
    )
    .map_err(|e| BootstrapError::MasterKey(e.to_string()))?;
    ring.save_file(&path)
        .map_err(|e| BootstrapError::MasterKey(e.to_string()))?;
    tracing::warn!(
        path = %path.display(),
        "generated a new master key for local use. It opens every stored secret: back it up. In production \
         supply CREDGATE_MASTER_KEY or --master-key-file from a secrets manager instead"
    );
    Ok(ring)
}

/// The operator's bootstrap admin token, from `CREDGATE_ADMIN_TOKEN` or `--admin-token-file`.
pub fn operator_admin_token(args: &ServeArgs) -> Result<Option<SecretString>, BootstrapError> {
    let token = match std::env::var("CREDGATE_ADMIN_TOKEN") {
        Ok(value) => SecretString::new(value.trim().to_owned()),
        Err(_) => match &args.admin_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| BootstrapError::AdminToken(format!("cannot read {}: {e}", path.display())))?;
                SecretString::new(text.trim().to_owned())
            }
            None => return Ok(None),
        },
    };
    if token.expose().len() < MIN_BOOTSTRAP_TOKEN_LEN {
        return Err(BootstrapError::AdminToken(format!(
            "a bootstrap admin token must be at least {MIN_BOOTSTRAP_TOKEN_LEN} characters"
        )));
    }
    Ok(Some(token))
}

/// On the first start of a database without an operator-supplied token, issues an admin
/// token, saves it (0600) where the local CLI finds it and returns it to be shown once.
pub async fn first_admin_token(store: &dyn Store, data_dir: &Path) -> Result<Option<SecretString>, BootstrapError> {
    let err = |e: &dyn std::fmt::Display| BootstrapError::AdminToken(e.to_string());
    if !store.admin_tokens().await.map_err(|e| err(&e))?.is_empty() {
        return Ok(None);
    }
    let issued = token::issue(TokenKind::Admin).map_err(|e| err(&e))?;
    let record = AdminToken {
        id: Uuid::new_v4(),
        name: "first admin token".into(),
        scopes: vec![crate::vault::scope::Scope::Admin],
        prefix: issued.prefix.clone(),
        hash: issued.hash.clone(),
        created_at: now(),
        revoked_at: None,
    };
    prepare_data_dir(data_dir)?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_private(&path, issued.token.expose()).map_err(|e| err(&format!("cannot write {}: {e}", path.display())))?;
    let mut event = AuditEvent::new(AuditKind::Admin, "admin_token.create", "ok");
    event.actor = Some("system".into());
    event.target = Some(record.id.to_string());
    store.insert_admin_token(&record, &event).await.map_err(|e| err(&e))?;
    Ok(Some(issued.token))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
