//! The audit trail: one event per admin change and per data-plane call, hash-chained.

mod chain;
mod event;
mod writer;

pub use chain::{GENESIS, VerifyReport, link, verify_records};
pub use event::{AuditEvent, AuditKind, AuditRecord, StoredAudit};
pub use writer::{AuditError, AuditWriter};
