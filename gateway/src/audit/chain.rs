//! The hash chain over audit events: each record's hash covers the previous record's hash,
//! its sequence number and its exact stored body, so changing, inserting or deleting a record
//! anywhere but at the very end breaks every hash after it.

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::event::StoredAudit;
use crate::clock::to_micros;

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn link(prev_hash: &str, seq: i64, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"credgate-audit-v1\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Sequence number and hash of the last record: keep them somewhere else to detect a
    /// truncated tail later.
    pub head_seq: i64,
    pub head_hash: String,
    pub ok: bool,
    /// The first problem found, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Verifies records in `seq` order, continuing from `report` (so large trails can be checked
/// page by page). Stops at the first problem.
pub fn verify_records(report: &mut VerifyReport, rows: &[StoredAudit]) {
    if report.head_hash.is_empty() {
        report.head_hash = GENESIS.to_owned();
        report.ok = true;
    }
    for row in rows {
        if !report.ok {
            return;
        }
        let fail = |report: &mut VerifyReport, why: String| {
            report.ok = false;
            report.error = Some(format!("record {}: {why}", row.seq));
        };
        if row.seq != report.head_seq + 1 {
            return fail(
                report,
                format!("expected sequence number {}, a record is missing", report.head_seq + 1),
            );
        }
        if row.prev_hash != report.head_hash {
            return fail(report, "prev_hash does not match the previous record's hash".into());
        }
        if link(&row.prev_hash, row.seq, &row.body) != row.hash {
            return fail(
                report,
                "hash does not match its content (the record was changed)".into(),
            );
        }
        match row.to_record() {
            Err(e) => return fail(report, format!("body is not a valid event: {e}")),
            Ok(record) => {
                let e = &record.event;
                let consistent = e.id.to_string() == row.id
                    && to_micros(e.at) == row.at
                    && e.kind.as_str() == row.kind
                    && e.action == row.action
                    && e.outcome == row.outcome
                    && e.principal_id.map(|v| v.to_string()) == row.principal_id
                    && e.grant_id.map(|v| v.to_string()) == row.grant_id
                    && e.secret_id.map(|v| v.to_string()) == row.secret_id
                    && e.request_id == row.request_id;
                if !consistent {
                    return fail(
                        report,
                        "indexed columns differ from the hashed body (the record was changed)".into(),
                    );
                }
            }
        }
        report.records += 1;
        report.head_seq = row.seq;
        report.head_hash = row.hash.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditKind};

    fn chain(n: i64) -> Vec<StoredAudit> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = AuditEvent::new(AuditKind::Admin, "principal.create", "ok");
                e.principal_id = Some(uuid::Uuid::new_v4());
                let body = e.body();
                let hash = link(&prev, seq, &body);
                StoredAudit {
                    seq,
                    id: e.id.to_string(),
                    at: to_micros(e.at),
                    kind: "admin".into(),
                    action: e.action.clone(),
                    outcome: e.outcome.clone(),
                    principal_id: e.principal_id.map(|p| p.to_string()),
                    grant_id: None,
                    secret_id: None,
                    request_id: None,
                    body,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    fn verify(rows: &[StoredAudit]) -> VerifyReport {
        let mut r = VerifyReport::default();
        verify_records(&mut r, rows);
        r
    }

    #[test]
    fn intact_chain_verifies_in_pages() {
        let rows = chain(5);
        assert!(verify(&rows).ok);
        let mut r = VerifyReport::default();
        verify_records(&mut r, &rows[..2]);
        verify_records(&mut r, &rows[2..]);
        assert!(r.ok);
        assert_eq!((r.records, r.head_seq), (5, 5));
        assert_eq!(r.head_hash, rows[4].hash);
    }

    #[test]
    fn changed_deleted_or_reindexed_records_are_caught() {
        let mut rows = chain(4);
        rows[1].body = rows[1].body.replace("principal.create", "principal.delete");
        assert!(verify(&rows).error.unwrap().starts_with("record 2"));

        let mut rows = chain(4);
        rows.remove(2);
        assert!(verify(&rows).error.unwrap().contains("missing"));

        let mut rows = chain(4);
        rows[3].outcome = "conflict".into();
        assert!(verify(&rows).error.unwrap().contains("indexed columns"));

        // Recomputing one record's hash does not help: the next record's link breaks.
        let mut rows = chain(4);
        rows[1].body = rows[1].body.replace("\"ok\"", "\"conflict\"");
        rows[1].outcome = "conflict".into();
        rows[1].hash = link(&rows[1].prev_hash, 2, &rows[1].body);
        assert!(verify(&rows).error.unwrap().starts_with("record 3"));
    }
}
