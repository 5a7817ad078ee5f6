//! The audit trail: one event per admin change and per data-plane call, hash-chained.
//! Data-plane events go through a local journal first (see [`journal`]); admin changes are
//! chained in the same transaction as the change.

mod chain;
mod event;
pub(crate) mod journal;

pub use chain::{GENESIS, VerifyReport, link, verify_records};
pub use event::{AuditEvent, AuditKind, AuditRecord, StoredAudit};
pub use journal::{JournalBatch, JournalError, JournaledEvent};
