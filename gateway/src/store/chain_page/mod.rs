//! A page of the audit chain read past the driver's row path, for the walk of a long trail
//! (`credgate audit verify`, the archiver's seal): SQLite's file through the engine's C API
//! ([`sqlite`]), PostgreSQL's rows as one binary `COPY` ([`postgres`]).
//!
//! Through sqlx, each row was decoded on its own: columns looked up by name, a copy and an
//! allocation per column, and (SQLite) a hand-over from the driver's thread per row. That,
//! not the hashing, bounded the walk (BENCHMARKS.md, "Walking the chain from the database").
//!
//! Either reader gives a page only when every value is of the type credgate writes there.
//! Anything else (a row changed by hand: an id as text or of another length, a NULL where
//! credgate writes none, text that is no UTF-8) leaves the page to the row-by-row read, which
//! reads such a value as one no record has, so verification names the record. What these
//! readers give is therefore always exactly what the rows give.

pub mod postgres;
pub mod sqlite;

use uuid::Uuid;

use super::stored_body::{self, Repeated};
use crate::audit::{StoredAudit, to_hex};

/// The columns of a page, in the order both readers read them.
pub const COLUMNS: &str = "seq, id, at, kind, action, outcome, principal_id, grant_id, secret_id, request_id, \
                           user_principal_id, body, hash";

/// A record's values as read, borrowed from the page.
#[derive(Debug)]
pub struct Fields<'a> {
    pub seq: i64,
    pub id: Uuid,
    pub at: i64,
    pub kind: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub principal_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    pub secret_id: Option<Uuid>,
    pub request_id: Option<&'a str>,
    pub user_principal_id: Option<Uuid>,
    /// The body as stored (its leading fields left out, [`stored_body`]).
    pub body: &'a str,
    pub hash: &'a [u8],
}

impl Fields<'_> {
    /// The record as the row read gives it: ids and the hash spelled as the API spells them,
    /// the body put back whole, `prev_hash` left empty (the caller links the records).
    pub fn record(&self) -> StoredAudit {
        let id = |v: Option<Uuid>| v.map(id_text);
        let mut record = StoredAudit {
            seq: self.seq,
            id: id_text(self.id),
            at: self.at,
            kind: self.kind.to_owned(),
            action: self.action.to_owned(),
            outcome: self.outcome.to_owned(),
            principal_id: id(self.principal_id),
            grant_id: id(self.grant_id),
            secret_id: id(self.secret_id),
            request_id: self.request_id.map(str::to_owned),
            user_principal_id: id(self.user_principal_id),
            body: String::new(),
            prev_hash: String::new(),
            hash: to_hex(self.hash),
        };
        record.body =
            stored_body::restore(self.body, &Repeated::of_row(&record)).unwrap_or_else(|| self.body.to_owned());
        record
    }
}

/// An id spelled into a buffer of its length: `to_string` goes through the formatter and grows
/// its string, four times a record.
fn id_text(id: Uuid) -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text).to_owned()
}
