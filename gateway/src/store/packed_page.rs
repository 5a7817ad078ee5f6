//! A page of the audit chain read from SQLite as one row: the engine joins each column of a
//! whole page into one string, so the walk of a long trail (`credgate audit verify`, the
//! archiver's seal) takes one row per page instead of one per record.
//!
//! Read row by row, the driver handed each record over on its own (a copy and an allocation
//! per column, a wake-up of the reading task per row): that, not the hashing, bounded the walk
//! (BENCHMARKS.md, "Walking the chain from the database"). PostgreSQL reads rows as they are:
//! its protocol sends them in bulk already, and joining them cost its server more than it
//! saved. One aggregate per column, rather than one string per record, spares the engine a
//! copy of each record for every field joined.
//!
//! Each column's values are joined by a separator none of them holds when the row is as
//! credgate wrote it: a comma between numbers and hex (ids and the hash in hex, empty when
//! NULL), the unit separator 0x1F between text (kind, action, outcome, the request id after
//! `=` or empty when NULL, and the stored body: JSON escapes every control character). A value
//! that holds its column's separator (only a row changed by hand can) splits into one piece
//! too many, so that column no longer has exactly as many pieces as the page has records: the
//! page is then read row by row, which reports such rows as it always has. So does anything
//! else unexpected: a number that does not parse, records out of order, text that is not
//! UTF-8. So does a NULL where credgate writes none (an aggregate would pass over it) and a
//! value of another type (see [`SQLITE`]). A value can therefore never move into another
//! record's place.

use uuid::Uuid;

use super::stored_body::{self, Repeated};
use crate::audit::StoredAudit;

/// The columns of a packed page, in the order [`unpack`] reads them, each with the separator
/// its values are joined by.
pub const COLUMNS: [(&str, char); 13] = [
    ("seq", ','),
    ("id", ','),
    ("at", ','),
    ("kind", TEXT),
    ("action", TEXT),
    ("outcome", TEXT),
    ("principal_id", ','),
    ("grant_id", ','),
    ("secret_id", ','),
    ("request_id", TEXT),
    ("user_principal_id", ','),
    ("hash", ','),
    ("body", TEXT),
];

/// Joins text values.
const TEXT: char = '\x1f';

/// The packing query: `$1` the first sequence number, `$2` how many records.
/// Columns: `n` the records read; `typed`, whether every value is of the type credgate writes
/// there; then [`COLUMNS`] (NULL when there are no records).
///
/// SQLite keeps whatever it is given, and a value of another type with the same bytes (an id
/// as text, an outcome as a blob) packs the same, yet no filter finds it; an aggregate passes
/// over a NULL, so a NULL in one row and a separator in another would leave the count right
/// and move values between records. Such a page is read row by row, where the value reads as
/// one no record has and verification names the record. SQLite orders NULL, numbers, text,
/// blobs, so `x > x''` holds for a non-empty blob alone, `x >= '' AND x < x''` for text alone,
/// `x < ''` for a number; for the columns that are never NULL, a NULL fails the check.
pub const SQLITE: &str = "SELECT count(*) AS n, \
     ifnull(min(ifnull(seq < '' AND id > x'' AND hash > x'' AND at < '' AND kind >= '' AND kind < x'' \
     AND action >= '' AND action < x'' AND outcome >= '' AND outcome < x'' AND body >= '' AND body < x'', 0) \
     AND ifnull(principal_id > x'', 1) AND ifnull(grant_id > x'', 1) AND ifnull(secret_id > x'', 1) \
     AND ifnull(user_principal_id > x'', 1) AND ifnull(request_id >= '' AND request_id < x'', 1)), 1) AS typed, \
     group_concat(seq, ',') AS seq, group_concat(hex(id), ',') AS id, \
     group_concat(at, ',') AS at, group_concat(kind, '\x1f') AS kind, group_concat(action, '\x1f') AS action, \
     group_concat(outcome, '\x1f') AS outcome, group_concat(hex(principal_id), ',') AS principal_id, \
     group_concat(hex(grant_id), ',') AS grant_id, group_concat(hex(secret_id), ',') AS secret_id, \
     group_concat(ifnull('=' || request_id, ''), '\x1f') AS request_id, \
     group_concat(hex(user_principal_id), ',') AS user_principal_id, group_concat(hex(hash), ',') AS hash, \
     group_concat(body, '\x1f') AS body \
     FROM (SELECT * FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2)";

/// The records of a packed page (its [`COLUMNS`]' text, in order), bodies put back whole
/// (`prev_hash` left empty: the caller links them). `None` when the columns do not unpack into
/// exactly `count` records in sequence order, each field as the packing wrote it: read that
/// page row by row.
pub fn unpack(columns: [&str; COLUMNS.len()], count: usize) -> Option<Vec<StoredAudit>> {
    let mut pieces = std::array::from_fn::<_, { COLUMNS.len() }, _>(|i| columns[i].split(COLUMNS[i].1));
    let mut records: Vec<StoredAudit> = Vec::with_capacity(count);
    for _ in 0..count {
        let mut next = pieces.iter_mut().map(Iterator::next);
        let mut field = || next.next().flatten();
        let record = record(&mut field)?;
        // In the inner query's order, though SQLite does not promise an aggregate's.
        if records.last().is_some_and(|r| r.seq >= record.seq) {
            return None;
        }
        records.push(record);
    }
    // Not one piece more in any column: a value held its separator.
    if pieces.iter_mut().any(|p| p.next().is_some()) {
        return None;
    }
    Some(records)
}

/// One record from its fields, in [`COLUMNS`] order.
fn record<'a>(field: &mut impl FnMut() -> Option<&'a str>) -> Option<StoredAudit> {
    let seq = field()?.parse().ok()?;
    let id = uuid_text(field()?).unwrap_or_default();
    let at = field()?.parse().ok()?;
    let kind = field()?.to_owned();
    let action = field()?.to_owned();
    let outcome = field()?.to_owned();
    let principal_id = uuid_text(field()?);
    let grant_id = uuid_text(field()?);
    let secret_id = uuid_text(field()?);
    let request_id = match field()? {
        "" => None,
        v => Some(v.strip_prefix('=')?.to_owned()),
    };
    let user_principal_id = uuid_text(field()?);
    let mut hash = field()?.to_owned();
    hash.make_ascii_lowercase();
    let stored = field()?;
    let mut record = StoredAudit {
        seq,
        id,
        at,
        kind,
        action,
        outcome,
        principal_id,
        grant_id,
        secret_id,
        request_id,
        user_principal_id,
        body: String::new(),
        prev_hash: String::new(),
        hash,
    };
    record.body = match stored_body::restore(stored, &Repeated::of_row(&record)) {
        Some(whole) => whole,
        None => stored.to_owned(),
    };
    Some(record)
}

/// An id column as the API spells it, `None` for NULL. What is not an id (only a row changed
/// by hand holds one) reads as the nil id, as the row-by-row read has it, so the trail still
/// lists and verification names the record.
fn uuid_text(packed: &str) -> Option<String> {
    if packed.is_empty() {
        return None;
    }
    Some(Uuid::try_parse(packed).unwrap_or(Uuid::nil()).hyphenated().to_string())
}

/// The columns of a packed page as the SQLite query writes them, for tests of the reading.
#[cfg(test)]
fn pack(records: &[(StoredAudit, String)]) -> [String; COLUMNS.len()] {
    let hex_id = |v: &Option<String>| {
        v.as_deref()
            .map_or(String::new(), |v| v.replace('-', "").to_uppercase())
    };
    let fields = |(r, stored): &(StoredAudit, String)| -> [String; COLUMNS.len()] {
        [
            r.seq.to_string(),
            r.id.replace('-', "").to_uppercase(),
            r.at.to_string(),
            r.kind.clone(),
            r.action.clone(),
            r.outcome.clone(),
            hex_id(&r.principal_id),
            hex_id(&r.grant_id),
            hex_id(&r.secret_id),
            r.request_id.as_deref().map_or(String::new(), |v| format!("={v}")),
            hex_id(&r.user_principal_id),
            r.hash.to_uppercase(),
            stored.clone(),
        ]
    };
    let rows: Vec<_> = records.iter().map(fields).collect();
    std::array::from_fn(|i| {
        rows.iter()
            .map(|row| row[i].as_str())
            .collect::<Vec<_>>()
            .join(&COLUMNS[i].1.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditKind, GENESIS, link};
    use crate::clock::to_micros;

    fn record(seq: i64, request_id: Option<&str>, reason: &str) -> (StoredAudit, String) {
        let mut e = AuditEvent::new(AuditKind::Proxy, "credential.use", "ok");
        e.principal_id = Some(Uuid::new_v4());
        e.grant_id = Some(Uuid::new_v4());
        e.request_id = request_id.map(str::to_owned);
        e.reason = Some(reason.to_owned());
        let body = e.body();
        let r = StoredAudit {
            seq,
            id: e.id.to_string(),
            at: to_micros(e.at),
            kind: "proxy".into(),
            action: e.action.clone(),
            outcome: e.outcome.clone(),
            principal_id: e.principal_id.map(|v| v.to_string()),
            grant_id: e.grant_id.map(|v| v.to_string()),
            secret_id: None,
            request_id: e.request_id.clone(),
            user_principal_id: None,
            hash: link(GENESIS, seq, &body),
            body: body.clone(),
            prev_hash: String::new(),
        };
        let stored = stored_body::shorten(&body, &Repeated::of_event(&e)).unwrap_or(body);
        (r, stored)
    }

    fn read(columns: &[String; COLUMNS.len()], count: usize) -> Option<Vec<StoredAudit>> {
        unpack(columns.each_ref().map(String::as_str), count)
    }

    #[test]
    fn a_page_unpacks_to_the_records_as_stored_whole() {
        // A body may hold any character JSON leaves unescaped, multi-byte ones too.
        let records = vec![
            record(7, Some("req-1"), "plain"),
            record(8, None, "with \u{1f} escaped, ünïcödé €, and a comma"),
            record(9, Some(""), ""),
        ];
        let want: Vec<_> = records.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(read(&pack(&records), 3).expect("unpacks"), want);
        // One record alone, and none out of order.
        assert_eq!(read(&pack(&records[1..2]), 1).expect("unpacks"), want[1..2]);
        let reversed: Vec<_> = records.iter().rev().cloned().collect();
        assert_eq!(read(&pack(&reversed), 3), None);
    }

    #[test]
    fn a_value_holding_its_separator_or_any_other_surprise_sends_the_page_row_by_row() {
        let records = vec![record(1, Some("req"), "why"), record(2, None, "")];
        let page = pack(&records);
        assert!(read(&page, 2).is_some());
        // Fewer or more records than the database counted.
        assert!(read(&page, 1).is_none());
        assert!(read(&page, 3).is_none());
        // Each column with one separator too many inside a value: one piece too many.
        for (i, (name, separator)) in COLUMNS.iter().enumerate() {
            let mut shifted = page.clone();
            shifted[i].insert(0, *separator);
            assert!(read(&shifted, 2).is_none(), "{name}");
        }
        // Text columns whose values hold the comma are read as they are.
        let mut commas = records.clone();
        commas[0].0.action = "a,b".into();
        assert_eq!(read(&pack(&commas), 2).expect("unpacks")[0].action, "a,b");
        // A request id without its marker, a time or a sequence number that is no number.
        for (column, value) in [(9, "req"), (2, "noon"), (0, "1.5")] {
            let mut bad = page.clone();
            let rest = bad[column].split_once(COLUMNS[column].1).unwrap().1.to_owned();
            bad[column] = format!("{value}{}{rest}", COLUMNS[column].1);
            assert!(read(&bad, 2).is_none(), "{column}");
        }
    }

    #[test]
    fn an_id_that_is_no_id_reads_as_the_nil_id() {
        let (mut r, stored) = record(1, None, "");
        r.grant_id = Some("not-a-uuid".into());
        let read = read(&pack(&[(r, stored)]), 1).expect("unpacks");
        assert_eq!(
            read[0].grant_id.as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
    }
}
