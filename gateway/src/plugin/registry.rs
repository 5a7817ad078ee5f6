//! The providers a gateway knows: bundled components (embedded in the binary) and components
//! from the plugins directory, compiled on first use and then kept.
//!
//! Compiling a component takes tens of milliseconds, so bundled ones are compiled lazily: a
//! gateway that never sees a Datadog secret never compiles the Datadog template.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::{LoadedPlugin, PluginEngine, PluginError};

#[derive(Clone)]
enum Source {
    Bundled(&'static [u8]),
    /// Already compiled (directory plugins are compiled when found, to learn their id).
    Ready(Arc<LoadedPlugin>),
}

pub struct Registry {
    engine: Arc<PluginEngine>,
    sources: RwLock<HashMap<String, Source>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry of the bundled components.
    pub fn new(engine: Arc<PluginEngine>) -> Self {
        let sources = super::bundled::BUNDLED
            .iter()
            .map(|(id, bytes)| ((*id).to_owned(), Source::Bundled(bytes)))
            .collect();
        Self {
            engine,
            sources: RwLock::new(sources),
        }
    }

    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    /// Loads every `*.wasm` in `dir`. A component that does not load is reported and skipped;
    /// the others are served. A directory plugin with a bundled id replaces the bundled one.
    pub async fn load_dir(&self, dir: &Path) -> std::io::Result<Vec<(String, Result<String, PluginError>)>> {
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        let mut report = Vec::new();
        for path in files {
            let name = path.display().to_string();
            let result = match std::fs::read(&path) {
                Err(e) => Err(PluginError::Compile(format!("cannot read {name}: {e}"))),
                Ok(bytes) => LoadedPlugin::load(&self.engine, bytes).await.map(|plugin| {
                    let id = plugin.description.id.clone();
                    self.sources
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone(), Source::Ready(Arc::new(plugin)));
                    id
                }),
            };
            match &result {
                Ok(id) => tracing::info!(file = %name, provider = %id, "loaded provider plugin"),
                Err(e) => tracing::error!(file = %name, error = %e, "provider plugin refused; the others keep serving"),
            }
            report.push((name, result));
        }
        Ok(report)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.sources.read().unwrap_or_else(|p| p.into_inner()).contains_key(id)
    }

    /// Every known provider id, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// The provider `id`, compiled if this is its first use. `None` if unknown.
    pub async fn get(&self, id: &str) -> Option<Result<Arc<LoadedPlugin>, PluginError>> {
        let source = self
            .sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()?;
        Some(match source {
            Source::Ready(plugin) => Ok(plugin),
            Source::Bundled(bytes) => match LoadedPlugin::load(&self.engine, bytes.to_vec()).await {
                Ok(plugin) if plugin.description.id != id => Err(PluginError::Contract(format!(
                    "bundled component `{id}` describes itself as `{}`",
                    plugin.description.id
                ))),
                Ok(plugin) => {
                    let plugin = Arc::new(plugin);
                    self.sources
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.to_owned(), Source::Ready(plugin.clone()));
                    Ok(plugin)
                }
                Err(e) => Err(e),
            },
        })
    }
}
