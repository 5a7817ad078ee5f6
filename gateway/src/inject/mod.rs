//! Credential injection: turning a request and a credential into the request the upstream
//! sees.

pub mod validate;
