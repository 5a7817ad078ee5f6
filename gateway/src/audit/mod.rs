//! The audit trail: one event per admin change and per data-plane call, hash-chained.
//! Data-plane events go through a local journal first (see [`journal`]); admin changes are
//! chained in the same transaction as the change. Past `--audit-retain-days`, old records move
//! to archive files ([`archive`]) proven by signed checkpoints ([`Checkpoint`]); each archiving
//! pass seals the live trail's head outside the database ([`head`]).

pub mod archive;
mod chain;
mod checkpoint;
mod event;
pub mod head;
pub(crate) mod journal;

pub use chain::{
    Chained, GENESIS, RecordRef, VerifyReport, link, link_digest, push_hex, to_hex, verify_in_order, verify_records,
};
pub use checkpoint::{AuditSigner, Checkpoint, SigningKeyInfo};
pub use event::{AuditEvent, AuditKind, AuditRecord, StoredAudit};
pub use journal::{JournalBatch, JournalError, JournaledEvent};
