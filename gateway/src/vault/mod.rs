//! The vault's entities: principals, API keys, secrets and grants, with their validation, and
//! the portal's sign-in sessions.
//!
//! These are plain data and rules; storing them is `store`'s job and serving them is `admin`'s.

pub mod api_key;
pub mod grant;
pub mod host;
pub mod path;
pub mod principal;
pub mod scope;
pub mod secret;
pub mod session;
pub mod token;

pub use api_key::ApiKey;
pub use grant::{Grant, GrantPolicy, GrantStatus};
pub use principal::{Principal, PrincipalKind};
pub use secret::SecretMeta;
