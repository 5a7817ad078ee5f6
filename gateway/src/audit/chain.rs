//! The hash chain over audit events: each record's hash covers the previous record's hash,
//! its sequence number and its exact stored body, so changing, inserting or deleting a record
//! anywhere but at the very end breaks every hash after it.

use std::borrow::Cow;

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
    let mut hex = String::with_capacity(bytes.len() * 2);
    push_hex(bytes, &mut hex);
    hex
}

/// [`to_hex`] appended to `out`.
pub fn push_hex(bytes: &[u8], out: &mut String) {
    let mut buffer = [0u8; 64];
    for part in bytes.chunks(buffer.len() / 2) {
        let hex = &mut buffer[..part.len() * 2];
        hex_into(part, hex);
        // Hex digits are ASCII.
        out.push_str(std::str::from_utf8(hex).unwrap_or_default());
    }
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
    id: Cow<'a, str>,
    /// As the body spells it: compared as text first, parsed only when the text differs.
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(default, borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    grant_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    secret_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user_principal_id: Option<Cow<'a, str>>,
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

/// A record of the live trail as verification reads it, every value borrowed: from a
/// [`StoredAudit`], or from a page of the walk, whose records share one buffer (building a
/// `StoredAudit`, a dozen strings, cost more than checking it).
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub at: i64,
    /// `at` as the body spells it, where the reader has it at hand (it put it back there).
    pub at_text: Option<&'a str>,
    pub kind: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub principal_id: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub secret_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub user_principal_id: Option<&'a str>,
    pub body: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl StoredAudit {
    /// The record as verification reads it.
    pub fn as_ref_record(&self) -> RecordRef<'_> {
        RecordRef {
            seq: self.seq,
            id: &self.id,
            at: self.at,
            at_text: None,
            kind: &self.kind,
            action: &self.action,
            outcome: &self.outcome,
            principal_id: self.principal_id.as_deref(),
            grant_id: self.grant_id.as_deref(),
            secret_id: self.secret_id.as_deref(),
            request_id: self.request_id.as_deref(),
            user_principal_id: self.user_principal_id.as_deref(),
            body: &self.body,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
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
        self.as_ref_record().own_fault()
    }
}

impl Chained for RecordRef<'_> {
    fn seq(&self) -> i64 {
        self.seq
    }
    fn prev_hash(&self) -> &str {
        self.prev_hash
    }
    fn hash(&self) -> &str {
        self.hash
    }
    fn own_fault(&self) -> Option<String> {
        if !links_to(self.prev_hash, self.seq, self.body, self.hash) {
            // The database keeps no `prev_hash` of its own: it is the hash of the record
            // before, so a rewritten predecessor (its hash recomputed to hide it) shows here.
            return Some(
                "hash does not match its content and the record before it (this record, or the one before it, was changed)"
                    .into(),
            );
        }
        let e: Indexed<'_> = match serde_json::from_str(self.body) {
            Ok(e) => e,
            Err(e) => return Some(format!("body is not a valid event: {e}")),
        };
        let same = |column: Option<&str>, body: &Option<Cow<'_, str>>| column == body.as_deref();
        // The same text is the same time; other text (a finer time in a body kept whole, an
        // offset other than Z) is parsed as the event's own type reads it.
        let at = if self.at_text == Some(&*e.at) {
            true
        } else {
            match e.at.parse::<chrono::DateTime<chrono::FixedOffset>>() {
                Ok(at) => to_micros(at.to_utc()) == self.at,
                Err(err) => return Some(format!("body is not a valid event: its time {:?}: {err}", e.at)),
            }
        };
        let consistent = e.id == self.id
            && at
            && e.kind == self.kind
            && e.action == self.action
            && e.outcome == self.outcome
            && same(self.principal_id, &e.principal_id)
            && same(self.grant_id, &e.grant_id)
            && same(self.secret_id, &e.secret_id)
            && same(self.request_id, &e.request_id)
            && same(self.user_principal_id, &e.user_principal_id);
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
    fn a_time_is_compared_as_text_first_and_as_a_time_when_the_text_differs() {
        // One record whose body holds `at` as written, its column `column_at`.
        let check = |at: &str, column_at: i64, at_text: Option<&str>| {
            let body = format!(
                r#"{{"id":"{id}","at":"{at}","kind":"admin","action":"principal.create","outcome":"ok"}}"#,
                id = uuid::Uuid::nil()
            );
            let hash = link(GENESIS, 1, &body);
            let id = uuid::Uuid::nil().to_string();
            RecordRef {
                seq: 1,
                id: &id,
                at: column_at,
                at_text,
                kind: "admin",
                action: "principal.create",
                outcome: "ok",
                principal_id: None,
                grant_id: None,
                secret_id: None,
                request_id: None,
                user_principal_id: None,
                body: &body,
                prev_hash: GENESIS,
                hash: &hash,
            }
            .own_fault()
        };
        let at = 1_796_000_000_123_456;
        let spelled = crate::clock::rfc3339(at);
        for at_text in [None, Some(spelled.as_str())] {
            assert_eq!(check(&spelled, at, at_text), None, "{at_text:?}");
            // The column a microsecond off: the text differs, and so does the time.
            let off = crate::clock::rfc3339(at + 1);
            let off_text = at_text.map(|_| off.as_str());
            assert!(
                check(&spelled, at + 1, off_text).unwrap().contains("indexed columns"),
                "{at_text:?}"
            );
            // Other text for the same time: a finer one in a body kept whole, another offset.
            assert_eq!(check("2026-11-30T00:53:20.123456789Z", at, at_text), None);
            assert_eq!(check("2026-11-30T01:53:20.123456+01:00", at, at_text), None);
            // No time at all.
            let fault = check("yesterday", at, at_text).unwrap();
            assert!(fault.starts_with("body is not a valid event"), "{fault}");
        }
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
