//! The WebAssembly provider host: provider templates and Custom run as sandboxed components
//! that implement a WIT contract in `wit/` (`credgate:provider` 0.2, or 0.1).

pub mod bindings;
mod engine;
mod grants;
mod injector;
mod loaded;
mod registry;
mod sandbox;
pub mod watch;

pub use engine::{Limits, PluginEngine};
pub use injector::{WasmInjector, config_pairs, credential_pairs};
pub use loaded::{LoadedPlugin, PluginError};
pub use registry::{ProviderInfo, Registry, Source, Unresolved};

/// The provider components built from `plugins/` and embedded in the binary.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::bindings::{Body, Pair, Request};
    use super::*;

    fn engine() -> Arc<PluginEngine> {
        PluginEngine::new(Limits::default()).unwrap()
    }

    fn bundled(name: &str) -> &'static [u8] {
        bundled::BUNDLED.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[tokio::test]
    async fn openai_describes_and_injects_in_a_fresh_instance() {
        let engine = engine();
        let started = Instant::now();
        let plugin = LoadedPlugin::load(&engine, bundled("openai").to_vec()).await.unwrap();
        eprintln!("load: {:?} (pooling: {})", started.elapsed(), engine.pooling);
        assert_eq!(plugin.description.id, "openai");
        assert_eq!(plugin.description.default_hosts, ["api.openai.com"]);
        let request = Request {
            method: "POST".into(),
            url: "https://api.openai.com/v1/x".into(),
            headers: vec![],
            body: Body::None,
        };
        let credential = [Pair {
            name: "token".into(),
            value: "sk-1".into(),
        }];
        let edits = plugin.inject(&request, &credential, &[]).await.unwrap();
        assert_eq!(edits.set_headers[0].value, "Bearer sk-1");
        let started = Instant::now();
        for _ in 0..1000 {
            plugin.inject(&request, &credential, &[]).await.unwrap();
        }
        eprintln!("inject: {:?} per call", started.elapsed() / 1000);
        let missing = plugin.inject(&request, &[], &[]).await.unwrap_err();
        assert!(
            matches!(missing, PluginError::Refused(ref m) if m.contains("token")),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn garbage_is_refused_at_load() {
        let engine = engine();
        assert!(matches!(
            LoadedPlugin::load(&engine, b"not wasm".to_vec()).await,
            Err(PluginError::Compile(_))
        ));
    }
}
