//! The host side of the `credgate:provider` contract, generated from `wit/` in one place.

// Exports are called asynchronously: a call runs on a fiber, so a plugin (and the WASI
// stubs it imports) never blocks a Tokio worker thread.
wasmtime::component::bindgen!({
    path: "../wit",
    world: "provider",
    exports: { default: async },
});

pub use self::credgate::provider::types::{Field, ValueKind};
