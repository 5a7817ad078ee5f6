//! Every provider a gateway serves, in one registry: the native types (built in), bundled
//! components (embedded in the binary), components from the watched plugins directory, and
//! components uploaded through the admin API (kept in the database, so every replica runs the
//! same set). [`Registry::resolve`] turns a secret's type into its injector, for the admin API
//! and the data plane alike.
//!
//! An id can have a component from each source; the active one is the uploaded, else the
//! directory's, else the bundled one. A replacement is swapped in whole: a call that already
//! holds the old component finishes with it, the next call gets the new one. Bundled
//! components are compiled lazily, on first use: a gateway that never sees a Datadog secret
//! never compiles the Datadog template.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{LoadedPlugin, PluginEngine, PluginError, WasmInjector};
use crate::inject::{self, Injector, ProviderDescription};
use crate::store::Store;

/// Where a type's injector came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Built into credgate: cannot be disabled, removed or replaced.
    Native,
    Bundled,
    Directory,
    Uploaded,
}

#[derive(Clone)]
struct Loaded {
    plugin: Arc<LoadedPlugin>,
    at: DateTime<Utc>,
}

#[derive(Default, Clone)]
struct Entry {
    bundled: Option<(&'static [u8], Option<Loaded>)>,
    directory: Option<(PathBuf, Loaded)>,
    uploaded: Option<Loaded>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.bundled.is_none() && self.directory.is_none() && self.uploaded.is_none()
    }

    fn active_source(&self) -> Option<Source> {
        if self.uploaded.is_some() {
            Some(Source::Uploaded)
        } else if self.directory.is_some() {
            Some(Source::Directory)
        } else if self.bundled.is_some() {
            Some(Source::Bundled)
        } else {
            None
        }
    }
}

/// A provider as the admin API lists it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProviderInfo {
    pub id: String,
    pub display_name: String,
    pub version: String,
    /// SHA-256 of the component, hex (absent for native types, which have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The component's size in bytes (absent for native types).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// The `credgate:provider` contract the component implements: `0.2.0` or `0.1.0`
    /// (absent for native types).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<&'static str>,
    /// The source serving this id.
    pub source: Source,
    /// Sources with a component for this id that the active one overrides.
    pub overrides: Vec<Source>,
    /// When the active component was loaded into this process.
    pub loaded_at: Option<DateTime<Utc>>,
    pub disabled: bool,
}

/// Why a secret's type has no injector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No native type and no provider has this id.
    Unknown,
    /// The operator switched the provider off.
    Disabled,
    /// Its component cannot be used.
    Broken(PluginError),
}

pub struct Registry {
    engine: Arc<PluginEngine>,
    entries: RwLock<HashMap<String, Entry>>,
    disabled: RwLock<HashSet<String>>,
    /// One sync at a time: concurrent misses for the same new upload compile it once.
    syncing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

fn now() -> DateTime<Utc> {
    crate::clock::now()
}

/// A native type as the admin API lists it.
fn native_info(native: &dyn Injector) -> (ProviderInfo, ProviderDescription) {
    let description = native.description().clone();
    let info = ProviderInfo {
        id: description.id.clone(),
        display_name: description.display_name.clone(),
        version: description.version.clone(),
        digest: None,
        size: None,
        contract: None,
        source: Source::Native,
        overrides: Vec::new(),
        loaded_at: None,
        disabled: false,
    };
    (info, description)
}

impl Registry {
    /// A registry of the bundled components.
    pub fn new(engine: Arc<PluginEngine>) -> Self {
        let entries = super::bundled::BUNDLED
            .iter()
            .map(|(id, bytes)| {
                (
                    (*id).to_owned(),
                    Entry {
                        bundled: Some((*bytes, None)),
                        ..Default::default()
                    },
                )
            })
            .collect();
        Self {
            engine,
            entries: RwLock::new(entries),
            disabled: RwLock::new(HashSet::new()),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.read().get(id).is_some_and(|e| !e.is_empty())
    }

    pub fn is_disabled(&self, id: &str) -> bool {
        self.disabled.read().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    /// The injector for a secret of type `id`: a native one, else the provider's active
    /// component (looked up in the database on a miss).
    pub async fn resolve(&self, id: &str, store: &dyn Store) -> Result<Arc<dyn Injector>, Unresolved> {
        if let Some(native) = inject::native(id) {
            return Ok(native);
        }
        match self.get_or_fetch(id, store).await {
            Some(Ok(plugin)) => Ok(Arc::new(WasmInjector { plugin })),
            Some(Err(PluginError::Disabled)) => Err(Unresolved::Disabled),
            Some(Err(e)) => Err(Unresolved::Broken(e)),
            None => Err(Unresolved::Unknown),
        }
    }

    /// The active component for `id`, compiled if this is its first use. `None` if unknown;
    /// `Some(Err(Disabled))` if switched off.
    pub async fn get(&self, id: &str) -> Option<Result<Arc<LoadedPlugin>, PluginError>> {
        let entry = self.read().get(id).cloned().filter(|e| !e.is_empty())?;
        if self.is_disabled(id) {
            return Some(Err(PluginError::Disabled));
        }
        if let Some(loaded) = entry.uploaded.as_ref().or(entry.directory.as_ref().map(|(_, l)| l)) {
            return Some(Ok(loaded.plugin.clone()));
        }
        let (bytes, compiled) = entry.bundled?;
        if let Some(loaded) = compiled {
            return Some(Ok(loaded.plugin));
        }
        Some(self.compile_bundled(id, bytes).await)
    }

    /// [`Registry::get`], and on a miss a look in the database: an upload another replica made
    /// is served here even before its notification arrives.
    pub async fn get_or_fetch(&self, id: &str, store: &dyn Store) -> Option<Result<Arc<LoadedPlugin>, PluginError>> {
        if let Some(found) = self.get(id).await {
            return Some(found);
        }
        if let Err(e) = self.sync_from_store(store, Some(id)).await {
            tracing::warn!(provider = id, error = %e, "could not look for an uploaded provider");
        }
        self.get(id).await
    }

    async fn compile_bundled(&self, id: &str, bytes: &'static [u8]) -> Result<Arc<LoadedPlugin>, PluginError> {
        let plugin = LoadedPlugin::load(&self.engine, bytes.to_vec()).await?;
        if plugin.description.id != id {
            return Err(PluginError::Contract(format!(
                "bundled component `{id}` describes itself as `{}`",
                plugin.description.id
            )));
        }
        let plugin = Arc::new(plugin);
        if let Some(entry) = self.write().get_mut(id)
            && let Some((_, compiled)) = entry.bundled.as_mut()
        {
            *compiled = Some(Loaded {
                plugin: plugin.clone(),
                at: now(),
            });
        }
        Ok(plugin)
    }

    /// Every type: the native ones, then every provider with its active component's details
    /// (compiling bundled ones not yet used, so versions can be shown).
    pub async fn list(&self) -> Vec<(ProviderInfo, ProviderDescription)> {
        let mut ids: Vec<String> = self
            .read()
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        let mut out: Vec<_> = inject::natives().iter().map(|n| native_info(n.as_ref())).collect();
        for id in ids {
            if let Some(item) = self.show(&id).await {
                out.push(item);
            }
        }
        out
    }

    /// One type's details and description.
    pub async fn show(&self, id: &str) -> Option<(ProviderInfo, ProviderDescription)> {
        if let Some(native) = inject::native(id) {
            return Some(native_info(native.as_ref()));
        }
        let entry = self.read().get(id).cloned().filter(|e| !e.is_empty())?;
        let source = entry.active_source()?;
        let (plugin, at) = match source {
            // Native types were answered above; an entry never holds one.
            Source::Native => return None,
            Source::Uploaded => entry.uploaded.as_ref().map(|l| (l.plugin.clone(), Some(l.at)))?,
            Source::Directory => entry.directory.as_ref().map(|(_, l)| (l.plugin.clone(), Some(l.at)))?,
            Source::Bundled => {
                let (bytes, compiled) = entry.bundled.clone()?;
                match compiled {
                    Some(l) => (l.plugin, Some(l.at)),
                    None => match self.compile_bundled(id, bytes).await {
                        Ok(plugin) => (plugin, Some(now())),
                        Err(e) => {
                            tracing::error!(provider = id, error = %e, "bundled provider does not load");
                            return None;
                        }
                    },
                }
            }
        };
        let mut overrides = Vec::new();
        if source == Source::Uploaded && entry.directory.is_some() {
            overrides.push(Source::Directory);
        }
        if source != Source::Bundled && entry.bundled.is_some() {
            overrides.push(Source::Bundled);
        }
        let info = ProviderInfo {
            id: id.to_owned(),
            display_name: plugin.description.display_name.clone(),
            version: plugin.description.version.clone(),
            digest: Some(plugin.digest.clone()),
            size: Some(plugin.size),
            contract: Some(plugin.contract()),
            source,
            overrides,
            loaded_at: at,
            disabled: self.is_disabled(id),
        };
        Some((info, plugin.description.clone()))
    }

    /// Whether `id` would still have a component if its uploaded one went away.
    pub fn has_fallback(&self, id: &str) -> bool {
        self.read()
            .get(id)
            .is_some_and(|e| e.directory.is_some() || e.bundled.is_some())
    }

    pub fn uploaded_digest(&self, id: &str) -> Option<String> {
        self.read().get(id)?.uploaded.as_ref().map(|l| l.plugin.digest.clone())
    }

    /// Makes an uploaded component active for its id.
    pub fn install_uploaded(&self, plugin: Arc<LoadedPlugin>) {
        let id = plugin.description.id.clone();
        self.write().entry(id).or_default().uploaded = Some(Loaded { plugin, at: now() });
    }

    pub fn remove_uploaded(&self, id: &str) {
        let mut entries = self.write();
        if let Some(entry) = entries.get_mut(id) {
            entry.uploaded = None;
            if entry.is_empty() {
                entries.remove(id);
            }
        }
    }

    /// Makes a directory component active for its id; returns the id it replaced at that
    /// path, if the file now describes another id.
    pub fn install_directory(&self, path: &Path, plugin: Arc<LoadedPlugin>) -> Option<String> {
        let previous = self.remove_directory(path).filter(|old| *old != plugin.description.id);
        let id = plugin.description.id.clone();
        self.write().entry(id).or_default().directory = Some((path.to_owned(), Loaded { plugin, at: now() }));
        previous
    }

    /// Drops the component loaded from `path`; returns its id.
    pub fn remove_directory(&self, path: &Path) -> Option<String> {
        let mut entries = self.write();
        let id = entries
            .iter()
            .find(|(_, e)| e.directory.as_ref().is_some_and(|(p, _)| p == path))
            .map(|(id, _)| id.clone())?;
        if let Some(entry) = entries.get_mut(&id) {
            entry.directory = None;
            if entry.is_empty() {
                entries.remove(&id);
            }
        }
        Some(id)
    }

    pub fn set_disabled(&self, ids: HashSet<String>) {
        *self.disabled.write().unwrap_or_else(|p| p.into_inner()) = ids;
    }

    /// Brings uploaded components and the disabled set in line with the database: loads new
    /// or changed uploads (checking them exactly as an upload is checked), drops removed ones.
    /// `only` limits the work to one id (a notification about it).
    pub async fn sync_from_store(&self, store: &dyn Store, only: Option<&str>) -> crate::store::Result<()> {
        let _one_at_a_time = self.syncing.lock().await;
        self.set_disabled(store.disabled_providers().await?.into_iter().collect());
        let stored = store.uploaded_providers().await?;
        let wanted: Vec<_> = stored.iter().filter(|p| only.is_none_or(|id| id == p.id)).collect();
        for meta in &wanted {
            if self.uploaded_digest(&meta.id).as_deref() == Some(meta.digest.as_str()) {
                continue;
            }
            let Some((_, bytes)) = store.uploaded_component(&meta.id).await? else {
                continue;
            };
            match LoadedPlugin::load(&self.engine, bytes).await {
                Ok(plugin) if plugin.description.id == meta.id => {
                    tracing::info!(provider = %meta.id, version = %plugin.description.version, "loaded uploaded provider");
                    self.install_uploaded(Arc::new(plugin));
                }
                Ok(plugin) => {
                    tracing::error!(provider = %meta.id, described = %plugin.description.id, "stored component describes another id")
                }
                Err(e) => tracing::error!(provider = %meta.id, error = %e, "stored provider component does not load"),
            }
        }
        let present: Vec<String> = self
            .read()
            .iter()
            .filter(|(_, e)| e.uploaded.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in present {
            if only.is_none_or(|o| o == id) && !stored.iter().any(|p| p.id == id) {
                tracing::info!(provider = %id, "uploaded provider removed");
                self.remove_uploaded(&id);
            }
        }
        Ok(())
    }
}
