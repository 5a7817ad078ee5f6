//! The host side of the `credgate:provider` contracts, generated from `wit/` in one place: 0.2,
//! which the host speaks internally, and 0.1, whose components keep loading; [`v0_1`]'s
//! conversions carry its calls over to 0.2's types.

// Exports are called asynchronously: a call runs on a fiber, so a plugin (and the WASI
// stubs it imports) never blocks a Tokio worker thread. The imports 0.2 grants (crypto,
// clock, random) are short host functions; they may trap (an input over its bound).
mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2",
        world: "provider",
        exports: { default: async },
        imports: { default: trappable },
    });
}

pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1",
        world: "provider",
        exports: { default: async },
    });

    use self::credgate::provider::types as old;
    use super::v0_2::credgate::provider::types as new;

    pub fn pairs(pairs: &[new::Pair]) -> Vec<old::Pair> {
        pairs
            .iter()
            .map(|p| old::Pair {
                name: p.name.clone(),
                value: p.value.clone(),
            })
            .collect()
    }

    fn new_pairs(pairs: Vec<old::Pair>) -> Vec<new::Pair> {
        pairs
            .into_iter()
            .map(|p| new::Pair {
                name: p.name,
                value: p.value,
            })
            .collect()
    }

    /// The request without its body: 0.1 never sees one.
    pub fn request(r: &new::Request) -> old::Request {
        old::Request {
            method: r.method.clone(),
            url: r.url.clone(),
            headers: pairs(&r.headers),
        }
    }

    pub fn edits(e: old::Edits) -> new::Edits {
        new::Edits {
            set_headers: new_pairs(e.set_headers),
            remove_headers: e.remove_headers,
            set_query: new_pairs(e.set_query),
        }
    }

    pub fn error(e: old::Error) -> new::Error {
        match e {
            old::Error::InvalidConfig(m) => new::Error::InvalidConfig(m),
            old::Error::InvalidCredential(m) => new::Error::InvalidCredential(m),
            old::Error::Unsupported(m) => new::Error::Unsupported(m),
        }
    }

    fn field(f: old::Field) -> new::Field {
        new::Field {
            name: f.name,
            label: f.label,
            help: f.help,
            required: f.required,
            kind: match f.kind {
                old::ValueKind::Text => new::ValueKind::Text,
                old::ValueKind::Url => new::ValueKind::Url,
                old::ValueKind::Host => new::ValueKind::Host,
                old::ValueKind::Label => new::ValueKind::Label,
                old::ValueKind::Json => new::ValueKind::Json,
            },
            allowed_values: f.allowed_values,
            default_value: f.default_value,
        }
    }

    /// A 0.1 description: it never asks for the body, and mints nothing.
    pub fn description(d: old::Description) -> new::Description {
        new::Description {
            id: d.id,
            display_name: d.display_name,
            version: d.version,
            credential_fields: d.credential_fields.into_iter().map(field).collect(),
            open_credential_fields: d.open_credential_fields,
            config_fields: d.config_fields.into_iter().map(field).collect(),
            base_url: d.base_url,
            default_hosts: d.default_hosts,
            docs_url: d.docs_url,
            body: new::BodyAccess::None,
            env: Vec::new(),
            token_hosts: Vec::new(),
        }
    }
}

pub use self::v0_2::credgate::provider::clock::{Host as ClockHost, Instant};
pub use self::v0_2::credgate::provider::crypto::{Host as CryptoHost, SignatureAlgorithm};
pub use self::v0_2::credgate::provider::random::Host as RandomHost;
pub use self::v0_2::credgate::provider::types::{
    Body, BodyAccess, Description, Edits, Error, Field, HashAlgorithm, Host as TypesHost, Minted, Pair, Request,
    TokenBody, TokenRequest, TokenResponse, ValueKind,
};
pub use self::v0_2::{Provider, ProviderPre};
