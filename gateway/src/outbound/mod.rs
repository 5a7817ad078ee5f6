//! Everything that goes out to an upstream, built in one place: the one outbound client
//! (pooled, TLS-verified, resolving through the destination checks) and the rules for where a
//! credential may be sent. Below the data plane and the shared state, which only hold it.

pub mod body;
pub mod client;
pub mod destination;
