//! The watched plugins directory (`--plugins-dir`): adding, replacing or removing a `.wasm`
//! file loads, replaces or unloads its provider within a poll interval. A file that does not
//! load is reported (log and audit trail) and ignored; whatever was serving keeps serving.
//!
//! Polling rather than filesystem events: it works the same on every filesystem (network and
//! container mounts included), and a quarter-second scan of one directory costs nothing.
//! Writers should still replace files atomically (write elsewhere, then rename) so a scan never
//! sees half a component; a half-written file is reported and picked up again once complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{LoadedPlugin, Registry};
use crate::audit::{AuditEvent, AuditKind};
use crate::audit_writer::AuditWriter;

pub const POLL: Duration = Duration::from_millis(250);

#[derive(Clone, PartialEq, Eq)]
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
    digest: String,
}

pub struct Watcher {
    dir: PathBuf,
    registry: Arc<Registry>,
    audit: AuditWriter,
    known: HashMap<PathBuf, Seen>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn event(action: &str, outcome: &str, target: Option<String>, message: String) -> AuditEvent {
    let mut e = AuditEvent::new(AuditKind::Admin, action, outcome);
    e.actor = Some("system:plugins-dir".into());
    e.target = target;
    e.message = Some(message);
    e
}

impl Watcher {
    pub fn new(dir: PathBuf, registry: Arc<Registry>, audit: AuditWriter) -> Self {
        Self {
            dir,
            registry,
            audit,
            known: HashMap::new(),
        }
    }

    /// One pass over the directory. Returns how many files changed.
    pub async fn scan(&mut self) -> std::io::Result<usize> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
            .collect();
        files.sort();
        let mut changed = 0;
        for path in &files {
            let Ok(meta) = std::fs::metadata(path) else { continue };
            let modified = meta.modified().ok();
            if self
                .known
                .get(path)
                .is_some_and(|s| s.modified == modified && s.len == meta.len())
            {
                continue;
            }
            let Ok(bytes) = std::fs::read(path) else { continue };
            let seen = Seen {
                modified,
                len: meta.len(),
                digest: hex::encode(Sha256::digest(&bytes)),
            };
            if self.known.get(path).is_some_and(|s| s.digest == seen.digest) {
                self.known.insert(path.clone(), seen);
                continue;
            }
            changed += 1;
            self.load(path, bytes, &seen.digest).await;
            self.known.insert(path.clone(), seen);
        }
        let gone: Vec<PathBuf> = self.known.keys().filter(|p| !files.contains(p)).cloned().collect();
        for path in gone {
            changed += 1;
            self.known.remove(&path);
            if let Some(id) = self.registry.remove_directory(&path) {
                tracing::info!(file = %path.display(), provider = %id, "provider plugin file removed; unloaded");
                self.audit.record_detached(event(
                    "provider.unload",
                    "ok",
                    Some(id),
                    format!("{} was removed", path.display()),
                ));
            }
        }
        Ok(changed)
    }

    async fn load(&self, path: &Path, bytes: Vec<u8>, digest: &str) {
        let name = path.display().to_string();
        match LoadedPlugin::load(self.registry.engine(), bytes).await {
            Ok(plugin) => {
                let id = plugin.description.id.clone();
                let version = plugin.description.version.clone();
                if let Some(previous) = self.registry.install_directory(path, Arc::new(plugin)) {
                    tracing::info!(file = %name, provider = %previous, "file now holds another provider; unloaded the old one");
                }
                tracing::info!(file = %name, provider = %id, %version, "loaded provider plugin");
                self.audit.record_detached(event(
                    "provider.load",
                    "ok",
                    Some(id),
                    format!("{name} version {version} digest {digest}"),
                ));
            }
            Err(e) => {
                tracing::error!(file = %name, error = %e, "provider plugin refused; the others keep serving");
                self.audit
                    .record_detached(event("provider.load", "refused", None, format!("{name}: {e}")));
            }
        }
    }

    /// Polls for ever (until the task is dropped).
    pub async fn run(mut self) {
        loop {
            tokio::time::sleep(POLL).await;
            if let Err(e) = self.scan().await {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the plugins directory");
            }
        }
    }
}
