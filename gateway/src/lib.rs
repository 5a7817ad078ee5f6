//! credgate: a credential-injection gateway.
//!
//! Operators store credentials once, write-only and encrypted, and issue *grants* of them to
//! principals. Apps send requests through credgate with a grant id; credgate checks who is
//! calling, the grant's policy and the destination, injects the credential, forwards the
//! request and records an audit event. The `credgate` binary is a thin shell over this crate.

pub mod admin;
pub mod admin_tokens;
pub mod approvals;
pub mod audit;
pub mod audit_archiver;
pub mod audit_writer;
pub mod aws_errors;
pub mod bootstrap;
pub mod ca;
pub mod cache;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod edit_rules;
pub mod error;
pub mod forward_proxy;
pub mod identity;
pub mod inject;
pub mod limits;
pub mod listener;
pub mod masterkey;
pub mod metrics;
pub mod minting;
pub mod outbound;
pub mod plugin;
pub mod portal;
pub mod proxy;
pub mod query;
pub mod redact;
pub mod request_id;
pub mod server;
pub mod shed;
pub mod signin;
pub mod state;
pub mod store;
pub mod vault;
