//! A page of the audit chain read past the driver's row path, for the walk of a long trail
//! (`credgate audit verify`, the archiver's seal): SQLite's file through the engine's C API
//! ([`sqlite`]), PostgreSQL's rows as one binary `COPY` ([`postgres`]).
//!
//! Through sqlx, each row was decoded on its own: columns looked up by name, a copy and an
//! allocation per column, and (SQLite) a hand-over from the driver's thread per row. That,
//! not the hashing, bounded the walk (BENCHMARKS.md, "Walking the chain from the database").
//!
//! A page is one buffer of text and the places of each record's values in it
//! ([`ChainPage`]): the walk checks the records where they lie, so reading one costs no
//! allocation of its own (a `StoredAudit` of a dozen strings cost more to build and free than
//! to check).
//!
//! Either reader gives a page only when every value is of the type credgate writes there.
//! Anything else (a row changed by hand: an id as text or of another length, a NULL where
//! credgate writes none, text that is no UTF-8) leaves the page to the row-by-row read, which
//! reads such a value as one no record has, so verification names the record. What these
//! readers give is therefore always exactly what the rows give.

pub mod postgres;
pub mod sqlite;

use uuid::Uuid;

use super::stored_body::{self, Columns, Repeated};
use crate::audit::{RecordRef, StoredAudit};

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

/// Records of the chain in order, as the walk checks them: every value's text in one buffer.
#[derive(Debug, Default)]
pub struct ChainPage {
    text: String,
    records: Vec<Places>,
    /// The time of the record being added, as its body spells it (kept to reuse its room).
    at: String,
}

/// Where a value lies in [`ChainPage::text`].
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

/// Where one record's values lie.
#[derive(Debug)]
struct Places {
    seq: i64,
    at: i64,
    id: Span,
    at_text: Option<Span>,
    kind: Span,
    action: Span,
    outcome: Span,
    principal_id: Option<Span>,
    grant_id: Option<Span>,
    secret_id: Option<Span>,
    request_id: Option<Span>,
    user_principal_id: Option<Span>,
    body: Span,
    hash: Span,
    /// Set by [`ChainPage::link`] and [`ChainPage::set_prev_hash`].
    prev_hash: Option<Span>,
}

/// Bytes a record takes in a page, about: its body put back, its hash and ids spelled.
const RECORD_BYTES: usize = 1024;

impl ChainPage {
    /// Room for `records` records (at most 16,384 reserved up front).
    pub fn with_capacity(records: usize) -> Self {
        Self::default().reused_for(records)
    }

    /// This page emptied, with room for `records` records: the walk reads every page into the
    /// room of one it checked, since fresh memory for each costs the kernel's zeroing of it.
    pub fn reused_for(mut self, records: usize) -> Self {
        let records = records.min(16_384);
        self.text.clear();
        self.records.clear();
        self.text.reserve(records * RECORD_BYTES);
        self.records.reserve(records);
        self
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The last record's sequence number.
    pub fn last_seq(&self) -> Option<i64> {
        self.records.last().map(|r| r.seq)
    }

    /// Adds a record as a reader read it: ids and the hash spelled as the API spells them, the
    /// body put back whole, no `prev_hash` yet.
    pub fn push(&mut self, f: &Fields<'_>) {
        let mut spelled = [[0u8; uuid::fmt::Hyphenated::LENGTH]; 5];
        let [id, principal_id, grant_id, secret_id, user_principal_id] = &mut spelled;
        let id = spell(Some(f.id), id).unwrap_or_default();
        let principal_id = spell(f.principal_id, principal_id);
        let grant_id = spell(f.grant_id, grant_id);
        let secret_id = spell(f.secret_id, secret_id);
        let user_principal_id = spell(f.user_principal_id, user_principal_id);
        let Self { text, records, at } = self;
        at.clear();
        crate::clock::rfc3339_into(f.at, at);
        let repeated = Repeated::of_columns(Columns {
            id,
            at,
            kind: f.kind,
            action: f.action,
            outcome: f.outcome,
            request_id: f.request_id,
            principal_id,
            user_principal_id,
            grant_id,
            secret_id,
        });
        let start = text.len();
        if !stored_body::restore_into(f.body, &repeated, text) {
            text.push_str(f.body);
        }
        let body = Span { start, end: text.len() };
        records.push(Places {
            seq: f.seq,
            at: f.at,
            id: put(text, id),
            // Only a time chrono can hold is spelled as itself: every other comes out as the
            // epoch's (`clock::from_micros`), whose text a body at the epoch would match.
            at_text: chrono::DateTime::from_timestamp_micros(f.at).map(|_| put(text, at)),
            kind: put(text, f.kind),
            action: put(text, f.action),
            outcome: put(text, f.outcome),
            principal_id: principal_id.map(|v| put(text, v)),
            grant_id: grant_id.map(|v| put(text, v)),
            secret_id: secret_id.map(|v| put(text, v)),
            request_id: f.request_id.map(|v| put(text, v)),
            user_principal_id: user_principal_id.map(|v| put(text, v)),
            body,
            hash: {
                let start = text.len();
                crate::audit::push_hex(f.hash, text);
                Span { start, end: text.len() }
            },
            prev_hash: None,
        });
    }

    /// Adds a record read row by row (its body already put back).
    pub fn push_record(&mut self, r: &StoredAudit) {
        let text = &mut self.text;
        let mut opt = |v: &Option<String>| v.as_deref().map(|v| put(text, v));
        let (principal_id, grant_id, secret_id, request_id, user_principal_id) = (
            opt(&r.principal_id),
            opt(&r.grant_id),
            opt(&r.secret_id),
            opt(&r.request_id),
            opt(&r.user_principal_id),
        );
        let prev_hash = (!r.prev_hash.is_empty()).then(|| put(text, &r.prev_hash));
        self.records.push(Places {
            seq: r.seq,
            at: r.at,
            id: put(text, &r.id),
            at_text: None,
            kind: put(text, &r.kind),
            action: put(text, &r.action),
            outcome: put(text, &r.outcome),
            principal_id,
            grant_id,
            secret_id,
            request_id,
            user_principal_id,
            body: put(text, &r.body),
            hash: put(text, &r.hash),
            prev_hash,
        });
    }

    /// The page of records read row by row.
    pub fn of_records(records: &[StoredAudit]) -> Self {
        let mut page = Self::with_capacity(records.len());
        for r in records {
            page.push_record(r);
        }
        page
    }

    /// Links each record to the one before it in the page, drops record `after_seq` (read only
    /// for its hash, the next one's `prev_hash`), and keeps the first `limit`. Gives the
    /// records whose predecessor is not in the page, by index: the caller finds their
    /// `prev_hash` ([`Self::set_prev_hash`]).
    pub fn link(&mut self, after_seq: i64, limit: usize) -> Vec<usize> {
        let mut before: Option<(i64, Span)> = None;
        for r in &mut self.records {
            let (seq, hash) = (r.seq, r.hash);
            r.prev_hash = before
                .replace((seq, hash))
                .filter(|(prev, _)| prev.checked_add(1) == Some(seq))
                .map(|(_, hash)| hash);
        }
        if self.records.first().is_some_and(|r| r.seq == after_seq) {
            self.records.remove(0);
        }
        self.records.truncate(limit);
        (0..self.records.len())
            .filter(|&i| self.records[i].prev_hash.is_none())
            .collect()
    }

    /// The sequence number of record `i` of the page.
    pub fn seq(&self, i: usize) -> i64 {
        self.records[i].seq
    }

    pub fn set_prev_hash(&mut self, i: usize, hash: &str) {
        let span = put(&mut self.text, hash);
        self.records[i].prev_hash = Some(span);
    }

    /// The records where they lie, for verification (`prev_hash` empty where none is set).
    pub fn records(&self) -> Vec<RecordRef<'_>> {
        let at = |span: Span| &self.text[span.start..span.end];
        let opt = |span: Option<Span>| span.map(at);
        self.records
            .iter()
            .map(|r| RecordRef {
                seq: r.seq,
                id: at(r.id),
                at: r.at,
                at_text: opt(r.at_text),
                kind: at(r.kind),
                action: at(r.action),
                outcome: at(r.outcome),
                principal_id: opt(r.principal_id),
                grant_id: opt(r.grant_id),
                secret_id: opt(r.secret_id),
                request_id: opt(r.request_id),
                user_principal_id: opt(r.user_principal_id),
                body: at(r.body),
                prev_hash: r.prev_hash.map_or("", at),
                hash: at(r.hash),
            })
            .collect()
    }

    /// The records as the rest of the store gives them.
    pub fn to_records(&self) -> Vec<StoredAudit> {
        let owned = |v: Option<&str>| v.map(str::to_owned);
        self.records()
            .into_iter()
            .map(|r| StoredAudit {
                seq: r.seq,
                id: r.id.to_owned(),
                at: r.at,
                kind: r.kind.to_owned(),
                action: r.action.to_owned(),
                outcome: r.outcome.to_owned(),
                principal_id: owned(r.principal_id),
                grant_id: owned(r.grant_id),
                secret_id: owned(r.secret_id),
                request_id: owned(r.request_id),
                user_principal_id: owned(r.user_principal_id),
                body: r.body.to_owned(),
                prev_hash: r.prev_hash.to_owned(),
                hash: r.hash.to_owned(),
            })
            .collect()
    }
}

/// Appends `value` to the page's text, giving its place.
fn put(text: &mut String, value: &str) -> Span {
    let start = text.len();
    text.push_str(value);
    Span { start, end: text.len() }
}

/// An id spelled as the API spells it, into `buffer`.
fn spell(id: Option<Uuid>, buffer: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> Option<&str> {
    id.map(|id| &*id.hyphenated().encode_lower(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditKind, GENESIS, VerifyReport, link, link_digest, verify_records};
    use crate::clock::to_micros;

    /// Records `seqs` of a chain as the database keeps them (bodies shortened, hashes as
    /// bytes), and each one's whole body and hex hash.
    fn stored(seqs: &[i64]) -> Vec<(AuditEvent, String, String, [u8; 32])> {
        let mut prev = GENESIS.to_owned();
        let mut out = Vec::new();
        for seq in 1..=seqs.iter().copied().max().unwrap_or(0) {
            let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", "ok");
            e.request_id = Some(format!("req-{seq}"));
            e.principal_id = Some(Uuid::new_v4());
            e.grant_id = (seq % 2 == 0).then(Uuid::new_v4);
            let body = e.body();
            let digest = link_digest(&prev, seq, &body);
            prev = link(&prev, seq, &body);
            let short = stored_body::shorten(&body, &Repeated::of_event(&e)).expect("shortened");
            if seqs.contains(&seq) {
                out.push((e, body, short, digest));
            }
        }
        out
    }

    fn page_of(records: &[(AuditEvent, String, String, [u8; 32])], seqs: &[i64]) -> ChainPage {
        page_of_into(ChainPage::default(), records, seqs)
    }

    fn page_of_into(
        mut page: ChainPage,
        records: &[(AuditEvent, String, String, [u8; 32])],
        seqs: &[i64],
    ) -> ChainPage {
        for ((e, _, short, digest), seq) in records.iter().zip(seqs) {
            page.push(&Fields {
                seq: *seq,
                id: e.id,
                at: to_micros(e.at),
                kind: e.kind.as_str(),
                action: &e.action,
                outcome: &e.outcome,
                principal_id: e.principal_id,
                grant_id: e.grant_id,
                secret_id: e.secret_id,
                request_id: e.request_id.as_deref(),
                user_principal_id: e.user_principal_id,
                body: short,
                hash: digest,
            });
        }
        page
    }

    #[test]
    fn a_page_links_its_records_and_verifies_where_they_lie() {
        let seqs = [5, 6, 7, 8];
        let records = stored(&seqs);
        let mut page = page_of(&records, &seqs);
        // Record 5 is read for its hash only; two are asked for.
        assert_eq!(page.link(5, 2), Vec::<usize>::new());
        assert_eq!((page.len(), page.last_seq()), (2, Some(7)));
        let read = page.records();
        assert_eq!(read[0].prev_hash, crate::audit::to_hex(&records[0].3));
        for (r, (e, body, _, digest)) in read.iter().zip(&records[1..]) {
            assert_eq!(r.body, body.as_str(), "the body as the chain hashed it");
            assert_eq!(r.hash, crate::audit::to_hex(digest));
            assert_eq!(r.id, e.id.to_string());
            assert_eq!(r.principal_id, e.principal_id.map(|p| p.to_string()).as_deref());
            assert_eq!(r.at_text, Some(crate::clock::rfc3339(r.at).as_str()));
        }
        let mut report = VerifyReport::from_checkpoint(5, read[0].prev_hash);
        verify_records(&mut report, &read);
        assert!(report.ok, "{:?}", report.error);
        assert_eq!((report.records, report.head_seq), (2, 7));
        // The records as the rest of the store gives them: the same values, owned.
        let owned = page.to_records();
        assert_eq!(owned.len(), 2);
        assert_eq!(
            (owned[1].seq, owned[1].body.as_str(), owned[1].prev_hash.as_str()),
            (7, records[2].1.as_str(), read[1].prev_hash)
        );
        assert_eq!(
            ChainPage::of_records(&owned).to_records(),
            owned,
            "rows read back as they were"
        );
    }

    #[test]
    fn a_page_read_into_the_room_of_another_holds_nothing_of_it() {
        let records = stored(&[1, 2, 3]);
        let old = page_of(&records[..2], &[1, 2]);
        let mut page = old.reused_for(10);
        assert!(page.is_empty() && page.last_seq().is_none());
        page = page_of_into(page, &records[2..], &[3]);
        assert_eq!(page.link(2, 10), vec![0], "record 2 is not in this page");
        let read = page.records();
        assert_eq!(
            (read.len(), read[0].seq, read[0].body, read[0].prev_hash),
            (1, 3, records[2].1.as_str(), "")
        );
    }

    #[test]
    fn a_time_beyond_what_a_date_holds_is_not_taken_for_the_text_it_is_spelled_as() {
        // A record stamped at the epoch, its column then set past the last date chrono holds:
        // spelled, that time reads as the epoch's, so the body put back is the one hashed.
        let mut e = AuditEvent::new(AuditKind::Admin, "principal.create", "ok");
        e.at = crate::clock::from_micros(0);
        let body = e.body();
        let short = stored_body::shorten(&body, &Repeated::of_event(&e)).expect("shortened");
        let digest = link_digest(GENESIS, 1, &body);
        let mut page = ChainPage::default();
        page.push(&Fields {
            seq: 1,
            id: e.id,
            at: 9_000_000_000_000_000_000,
            kind: e.kind.as_str(),
            action: &e.action,
            outcome: &e.outcome,
            principal_id: None,
            grant_id: None,
            secret_id: None,
            request_id: None,
            user_principal_id: None,
            body: &short,
            hash: &digest,
        });
        page.link(0, 1);
        page.set_prev_hash(0, GENESIS);
        let read = page.records();
        assert_eq!((read[0].body, read[0].at_text), (body.as_str(), None));
        let fault = first_fault(&page);
        assert!(fault.starts_with("record 1: indexed columns"), "{fault}");
    }

    #[test]
    fn a_record_whose_predecessor_is_not_in_the_page_is_named_for_its_hash() {
        let seqs = [1, 2, 4];
        let records = stored(&[1, 2, 3, 4]);
        let kept: Vec<_> = records
            .iter()
            .filter(|r| r.0.request_id.as_deref() != Some("req-3"))
            .cloned()
            .collect();
        let mut page = page_of(&kept, &seqs);
        assert_eq!(page.link(0, 10), vec![0, 2], "record 1 and record 4");
        assert_eq!(page.records()[1].prev_hash, crate::audit::to_hex(&kept[0].3));
        page.set_prev_hash(2, "before-4");
        assert_eq!(page.records()[2].prev_hash, "before-4");
        assert_eq!(page.records()[0].prev_hash, "", "none set yet");
    }

    #[test]
    fn a_column_changed_in_the_page_changes_the_body_the_hash_covers() {
        let seqs = [1, 2];
        let mut records = stored(&seqs);
        records[1].0.outcome = "denied".into();
        let mut page = page_of(&records, &seqs);
        assert_eq!(page.link(0, 10), vec![0]);
        page.set_prev_hash(0, GENESIS);
        let read = page.records();
        assert!(read[1].body.contains(r#""outcome":"denied""#), "{}", read[1].body);
        let fault = first_fault(&page);
        assert!(fault.starts_with("record 2: hash does not match"), "{fault}");
    }

    /// What verifying the page from the genesis hash names first.
    fn first_fault(page: &ChainPage) -> String {
        let mut report = VerifyReport::genesis();
        verify_records(&mut report, &page.records());
        report.error.expect("a fault is found")
    }
}
