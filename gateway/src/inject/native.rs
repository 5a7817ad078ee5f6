//! The native types: the injectors built into credgate. This is the one list of them; the
//! admin API lists them beside the provider templates (`GET /admin/v1/providers`), the CLI
//! and the portal read their fields from there, and a template may not take their ids.

use std::sync::{Arc, LazyLock};

use super::{ApiKeyInjector, BasicInjector, BearerInjector, Injector, SigV4Injector};

/// The version a native type reports: it is part of the gateway, not separately versioned.
pub const NATIVE_VERSION: &str = "native";

static NATIVE: LazyLock<[Arc<dyn Injector>; 4]> = LazyLock::new(|| {
    [
        Arc::new(BearerInjector),
        Arc::new(ApiKeyInjector),
        Arc::new(BasicInjector),
        Arc::new(SigV4Injector),
    ]
});

/// Every native type, in the order they are offered.
pub fn natives() -> &'static [Arc<dyn Injector>] {
    NATIVE.as_slice()
}

/// The native injector with this id.
pub fn native(id: &str) -> Option<Arc<dyn Injector>> {
    natives().iter().find(|i| i.id() == id).cloned()
}

pub fn is_native(id: &str) -> bool {
    natives().iter().any(|i| i.id() == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_native_type_is_found_by_its_own_id() {
        let ids: Vec<&str> = natives().iter().map(|i| i.id()).collect();
        assert_eq!(ids, ["bearer", "api_key", "basic", "aws_sigv4"]);
        for id in ids {
            assert_eq!(native(id).unwrap().id(), id);
            assert_eq!(native(id).unwrap().version(), NATIVE_VERSION);
        }
        assert!(native("openai").is_none());
        assert!(!is_native("custom"));
    }
}
