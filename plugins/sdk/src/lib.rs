//! Write credgate provider plugins in Rust.
//!
//! A provider plugin tells credgate how to put a stored credential on an outgoing request.
//! Implement [`Provider`] for a type and export it with [`provider!`]; build with
//! `cargo build --release --target wasm32-wasip2` and check the result with
//! `credgate provider check target/wasm32-wasip2/release/<name>.wasm`.
//!
//! ```no_run
//! use credgate_plugin_sdk::prelude::*;
//!
//! struct Acme;
//!
//! impl Provider for Acme {
//!     fn describe() -> Description {
//!         Description::new("acme", "Acme API", env!("CARGO_PKG_VERSION"))
//!             .base_url("https://api.acme.example")
//!             .host("api.acme.example")
//!             .docs("https://docs.acme.example/auth")
//!             .credential(Field::secret("token", "API key"))
//!     }
//!
//!     fn inject(_request: &Request, credential: &Credential, _config: &Config) -> Result<Edits, Error> {
//!         Ok(Edits::new().set_header("authorization", format!("Bearer {}", credential.get("token")?)))
//!     }
//! }
//!
//! provider!(Acme);
//! ```
//!
//! Plugins are `#![no_std]` by default: the SDK supplies a bump allocator (an instance lives
//! for one call, so nothing needs freeing) and a panic handler, and the component then imports
//! nothing at all, which makes a fresh instance per call cost a few microseconds. A plugin
//! that needs the standard library enables the SDK's `std` feature instead.
//!
//! The plugin runs sandboxed: a fresh instance for every call (a global set in one call is
//! gone in the next), a deadline, a memory cap, and no files, environment or network. It gets
//! what the contract (`credgate:provider@0.2.0`) grants: keyed hashes, digests and signatures
//! computed by the host ([`crypto`]), the time ([`time`]), random bytes, and the request body
//! only if its description asks ([`Description::body_digest`], [`Description::body_bytes`]).
//! Whatever it returns is checked by credgate before it is applied.

#![cfg_attr(not(any(feature = "std", test)), no_std)]

#[doc(hidden)]
pub extern crate alloc;

pub mod crypto;
pub mod encoding;
mod format;
pub mod mint;
#[cfg(all(target_arch = "wasm32", not(feature = "std"), not(test)))]
mod runtime;
pub mod time;
mod types;

pub use format::{FormatError, Placeholder, expand, parse};
pub use mint::{Minted, TokenRequest, TokenResponse};
pub use types::{Body, Config, Credential, Description, Edits, Error, Field, Hash, Request, ValueKind};

/// The generated bindings of the `credgate:provider` WIT contract. [`provider!`] uses them;
/// plugins rarely need to.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated: one argument per record field
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/0.2",
        world: "provider",
        pub_export_macro: true,
        default_bindings_module: "credgate_plugin_sdk::bindings",
    });
}

/// Everything a plugin usually needs, in one `use`: the SDK's types and, for `#![no_std]`
/// plugins, `format!`, `String`, `Vec` and `ToString` from `alloc`.
pub mod prelude {
    pub use crate::{
        Body, Config, Credential, Description, Edits, Error, Field, Hash, Minted, Provider, Request, TokenRequest,
        TokenResponse, ValueKind, basic, crypto, encoding, mint, provider, time,
    };
    pub use alloc::borrow::ToOwned;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

/// A provider: describe it, optionally validate a secret, inject a credential.
pub trait Provider {
    /// What the provider is. Called once when credgate loads the plugin.
    fn describe() -> Description;

    /// Checks a secret when it is created or rotated, beyond what the description already lets
    /// credgate check (required fields, allowed values, value kinds). Config defaults are
    /// filled in. The default accepts everything.
    fn validate(_credential: &Credential, _config: &Config) -> Result<(), Error> {
        Ok(())
    }

    /// The edits that put the credential on `request`. For a template that mints, the
    /// credential holds the minted fields beside the stored ones.
    fn inject(request: &Request, credential: &Credential, config: &Config) -> Result<Edits, Error>;

    /// The token request that obtains short-lived fields from the stored credential; `None`
    /// (the default) for a template that mints nothing. Its host must be one of the
    /// description's [`Description::token_host`]s.
    fn mint(_credential: &Credential, _config: &Config) -> Result<Option<TokenRequest>, Error> {
        Ok(None)
    }

    /// Reads the token endpoint's answer to the request [`Provider::mint`] made.
    fn accept(_response: &TokenResponse, _credential: &Credential, _config: &Config) -> Result<Minted, Error> {
        Err(Error::Unsupported("this template mints nothing".into()))
    }
}

/// `Basic base64(username:password)`, the value of a Basic `Authorization` header.
pub fn basic(username: &str, password: &str) -> alloc::string::String {
    let mut joined = alloc::string::String::with_capacity(username.len() + password.len() + 1);
    joined.push_str(username);
    joined.push(':');
    joined.push_str(password);
    alloc::format!("Basic {}", encoding::base64(joined.as_bytes()))
}

/// Exports a [`Provider`] as the component's implementation of the contract.
#[macro_export]
macro_rules! provider {
    ($provider:ty) => {
        #[doc(hidden)]
        pub struct CredgateExport;

        impl $crate::bindings::Guest for CredgateExport {
            fn describe() -> $crate::bindings::credgate::provider::types::Description {
                <$provider as $crate::Provider>::describe().into_wit()
            }

            fn validate(
                credential: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
                config: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
            ) -> ::core::result::Result<(), $crate::bindings::credgate::provider::types::Error> {
                let credential = $crate::Credential::from_wit(credential);
                let config = $crate::Config::from_wit(config);
                <$provider as $crate::Provider>::validate(&credential, &config).map_err($crate::Error::into_wit)
            }

            fn inject(
                request: $crate::bindings::credgate::provider::types::Request,
                credential: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
                config: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
            ) -> ::core::result::Result<
                $crate::bindings::credgate::provider::types::Edits,
                $crate::bindings::credgate::provider::types::Error,
            > {
                let request = $crate::Request::from_wit(request);
                let credential = $crate::Credential::from_wit(credential);
                let config = $crate::Config::from_wit(config);
                <$provider as $crate::Provider>::inject(&request, &credential, &config)
                    .map($crate::Edits::into_wit)
                    .map_err($crate::Error::into_wit)
            }

            fn mint(
                credential: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
                config: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
            ) -> ::core::result::Result<
                ::core::option::Option<$crate::bindings::credgate::provider::types::TokenRequest>,
                $crate::bindings::credgate::provider::types::Error,
            > {
                let credential = $crate::Credential::from_wit(credential);
                let config = $crate::Config::from_wit(config);
                <$provider as $crate::Provider>::mint(&credential, &config)
                    .map(|request| request.map($crate::TokenRequest::into_wit))
                    .map_err($crate::Error::into_wit)
            }

            fn accept(
                response: $crate::bindings::credgate::provider::types::TokenResponse,
                credential: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
                config: $crate::alloc::vec::Vec<$crate::bindings::credgate::provider::types::Pair>,
            ) -> ::core::result::Result<
                $crate::bindings::credgate::provider::types::Minted,
                $crate::bindings::credgate::provider::types::Error,
            > {
                let response = $crate::TokenResponse::from_wit(response);
                let credential = $crate::Credential::from_wit(credential);
                let config = $crate::Config::from_wit(config);
                <$provider as $crate::Provider>::accept(&response, &credential, &config)
                    .map($crate::Minted::into_wit)
                    .map_err($crate::Error::into_wit)
            }
        }

        $crate::bindings::export!(CredgateExport with_types_in $crate::bindings);
    };
}
