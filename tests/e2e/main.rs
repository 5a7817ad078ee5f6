//! End-to-end tests: a real `credgate` process on port 0, real databases (SQLite and the
//! PostgreSQL server), real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod upstream;

mod admin_api;
mod admin_tokens;
mod approvals;
mod authoring;
mod canary;
mod cli;
mod containment;
mod forward;
mod governance;
mod identity;
mod minting;
mod plugins;
mod portal;
mod proxy;
mod python;
mod registry;
mod retention;
mod signing;
mod sigv4;
mod startup;
mod stats;
mod store;
mod typescript;
mod upgrade;
mod user_tokens;
