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
    to_hex(&link_digest(prev_hash, seq, body))
}

/// Whether `hash` is the link of the rest: [`link`] without building a string, for
/// verification, which does it for every record.
pub fn links_to(prev_hash: &str, seq: i64, body: &str, hash: &str) -> bool {
    link_hex(prev_hash, seq, body) == hash.as_bytes()
}

/// The link as the 32 bytes the database keeps (hex everywhere else: in the API, the archive
/// files, the checkpoints, and as the next record's `prev_hash` inside the hash).
pub fn link_digest(prev_hash: &str, seq: i64, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"credgate-audit-v1\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    let mut number = [0u8; 20];
    let mut at = number.len();
    let mut n = seq.unsigned_abs();
    loop {
        at -= 1;
        number[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if seq < 0 {
        h.update(b"-");
    }
    h.update(&number[at..]);
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().into()
}

fn link_hex(prev_hash: &str, seq: i64, body: &str) -> [u8; 64] {
    let mut hex = [0u8; 64];
    hex_into(&link_digest(prev_hash, seq, body), &mut hex);
    hex
}

/// Bytes as the lowercase hex the chain speaks (`hex::encode` collects characters one at a
/// time: a tenth of the walk's reading of a page, where every record's hash is spelled).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut hex = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut hex);
    // Hex digits are ASCII.
    String::from_utf8(hex).unwrap_or_default()
}

/// Writes `bytes` as lowercase hex into `out`, twice their length.
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Sequence number and hash of the last record: keep them somewhere else to detect a
    /// truncated tail later.
    pub head_seq: i64,
    pub head_hash: String,
    /// Records up to this one are in archive files (`--audit-retain-days`): the walk started
    /// after them, from their signed checkpoint. `credgate audit verify --archive DIR` proves
    /// them too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_through: Option<i64>,
    pub ok: bool,
    /// The first problem found, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl VerifyReport {
    /// Where a walk of the whole chain starts: nothing checked, the genesis hash before it.
    pub fn genesis() -> Self {
        Self {
            head_hash: GENESIS.to_owned(),
            ok: true,
            ..Default::default()
        }
    }

    /// Where a walk from a checkpoint starts: its record's number and hash.
    pub fn from_checkpoint(seq: i64, hash: &str) -> Self {
        Self {
            head_seq: seq,
            head_hash: hash.to_owned(),
            ok: true,
            ..Default::default()
        }
    }
}

/// The columns a record's body must agree with, read from the body without building the
/// whole event: a body names them once each, and nothing else of it is needed to verify.
#[derive(serde::Deserialize)]
struct Indexed<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    at: chrono::DateTime<chrono::Utc>,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    outcome: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    principal_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    grant_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    secret_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    request_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    user_principal_id: Option<std::borrow::Cow<'a, str>>,
}

/// One link of the chain as a verifier sees it: a row of the live trail, or a line of an
/// archive file.
pub trait Chained: Sync {
    fn seq(&self) -> i64;
    fn prev_hash(&self) -> &str;
    fn hash(&self) -> &str;
    /// What is wrong with the record on its own (its hash, its body, its columns), given the
    /// `prev_hash` it names: independent of every other record, so checked in parallel.
    fn own_fault(&self) -> Option<String>;
}

impl Chained for StoredAudit {
    fn seq(&self) -> i64 {
        self.seq
    }
    fn prev_hash(&self) -> &str {
        &self.prev_hash
    }
    fn hash(&self) -> &str {
        &self.hash
    }
    fn own_fault(&self) -> Option<String> {
        if !links_to(&self.prev_hash, self.seq, &self.body, &self.hash) {
            // The database keeps no `prev_hash` of its own: it is the hash of the record
            // before, so a rewritten predecessor (its hash recomputed to hide it) shows here.
            return Some(
                "hash does not match its content and the record before it (this record, or the one before it, was changed)"
                    .into(),
            );
        }
        let e: Indexed<'_> = match serde_json::from_str(&self.body) {
            Ok(e) => e,
            Err(e) => return Some(format!("body is not a valid event: {e}")),
        };
        let same =
            |column: &Option<String>, body: &Option<std::borrow::Cow<'_, str>>| column.as_deref() == body.as_deref();
        let consistent = e.id == self.id
            && to_micros(e.at) == self.at
            && e.kind == self.kind
            && e.action == self.action
            && e.outcome == self.outcome
            && same(&self.principal_id, &e.principal_id)
            && same(&self.grant_id, &e.grant_id)
            && same(&self.secret_id, &e.secret_id)
            && same(&self.request_id, &e.request_id)
            && same(&self.user_principal_id, &e.user_principal_id);
        (!consistent).then(|| "indexed columns differ from the hashed body (the record was changed)".into())
    }
}

/// Verifies records in `seq` order, continuing from `report` (so large trails can be checked
/// page by page, or from a checkpoint: a report whose `head_seq` and `head_hash` were kept).
/// Stops at the first problem. The links between records are checked in order; each record's
/// own hash and columns on every core at once.
pub fn verify_records<T: Chained>(report: &mut VerifyReport, rows: &[T]) {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = rows.len().div_ceil(threads).max(256);
    // The first record, in order, with a fault of its own.
    let own: Option<(usize, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .find_map(|(i, row)| row.own_fault().map(|why| (n * chunk + i, why)))
                })
            })
            .collect();
        handles.into_iter().find_map(|h| h.join().unwrap_or(None))
    });
    link_records(report, rows, own);
}

/// [`verify_records`] on the calling thread alone: for callers that already keep every core
/// busy (archive files verified side by side).
pub fn verify_in_order<T: Chained>(report: &mut VerifyReport, rows: &[T]) {
    let own = rows
        .iter()
        .enumerate()
        .find_map(|(i, row)| row.own_fault().map(|why| (i, why)));
    link_records(report, rows, own);
}

/// The walk in order, given the first record with a fault of its own.
fn link_records<T: Chained>(report: &mut VerifyReport, rows: &[T], own: Option<(usize, String)>) {
    if report.head_hash.is_empty() {
        report.head_hash = GENESIS.to_owned();
        report.ok = true;
    }
    if !report.ok || rows.is_empty() {
        return;
    }
    for (i, row) in rows.iter().enumerate() {
        let fail = |report: &mut VerifyReport, why: String| {
            report.ok = false;
            report.error = Some(format!("record {}: {why}", row.seq()));
        };
        if row.seq() != report.head_seq + 1 {
            return fail(
                report,
                format!("expected sequence number {}, a record is missing", report.head_seq + 1),
            );
        }
        if row.prev_hash() != report.head_hash {
            return fail(report, "prev_hash does not match the previous record's hash".into());
        }
        if let Some((at, why)) = &own
            && *at == i
        {
            return fail(report, why.clone());
        }
        report.records += 1;
        report.head_seq = row.seq();
        report.head_hash.clear();
        report.head_hash.push_str(row.hash());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditKind};

    #[test]
    fn hex_is_every_byte_in_two_lowercase_digits() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&bytes), hex::encode(&bytes));
        assert_eq!(to_hex(&[]), "");
        assert_eq!(link("a", 1, "{}"), hex::encode(link_digest("a", 1, "{}")));
    }

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
                    user_principal_id: None,
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
    fn a_link_is_the_hex_sha256_of_its_parts() {
        for seq in [0, 1, 9, 10, 12_345, i64::MAX, -3] {
            let mut h = Sha256::new();
            h.update(format!("credgate-audit-v1\n{GENESIS}\n{seq}\n{{}}"));
            let expected = hex::encode(h.finalize());
            assert_eq!(link(GENESIS, seq, "{}"), expected);
            assert!(links_to(GENESIS, seq, "{}", &expected));
            assert!(!links_to(GENESIS, seq, "{ }", &expected));
        }
    }

    #[test]
    fn a_checkpoint_continues_the_walk() {
        let rows = chain(10);
        let mut first = VerifyReport::default();
        verify_records(&mut first, &rows[..6]);
        // Only the head is kept: the rest is walked from it.
        let mut from = VerifyReport {
            head_seq: first.head_seq,
            head_hash: first.head_hash.clone(),
            ok: true,
            ..Default::default()
        };
        verify_records(&mut from, &rows[6..]);
        assert!(from.ok && from.records == 4 && from.head_seq == 10);
        let mut wrong = VerifyReport {
            head_seq: 6,
            head_hash: GENESIS.to_owned(),
            ok: true,
            ..Default::default()
        };
        verify_records(&mut wrong, &rows[6..]);
        assert!(
            wrong.error.unwrap().contains("prev_hash"),
            "a checkpoint that is not the chain's"
        );
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

        let mut rows = chain(4);
        rows[2].principal_id = None;
        assert!(verify(&rows).error.unwrap().starts_with("record 3: indexed columns"));

        // A person's column that the body does not name.
        let mut rows = chain(4);
        rows[1].user_principal_id = Some(uuid::Uuid::new_v4().to_string());
        assert!(verify(&rows).error.unwrap().starts_with("record 2: indexed columns"));

        // Faults of their own in several records, on different cores: the first is named.
        let mut rows = chain(3000);
        for seq in [2500usize, 900, 1700] {
            rows[seq - 1].body.push(' ');
        }
        assert!(verify(&rows).error.unwrap().starts_with("record 900:"));

        // Recomputing one record's hash does not help: the next record's link breaks.
        let mut rows = chain(4);
        rows[1].body = rows[1].body.replace("\"ok\"", "\"conflict\"");
        rows[1].outcome = "conflict".into();
        rows[1].hash = link(&rows[1].prev_hash, 2, &rows[1].body);
        assert!(verify(&rows).error.unwrap().starts_with("record 3"));
    }
}
