//! A page of the audit chain read from SQLite's file through the engine's C API, on a blocking
//! thread and a connection of its own, for the walk of a long trail (`credgate audit verify`,
//! the archiver's seal).
//!
//! Through sqlx, each row crossed from the driver's worker thread to the reading task on its
//! own: a copy and an allocation per column, a wake-up per row. That, not the hashing, bounded
//! the walk (BENCHMARKS.md, "Walking the chain from the database"). Here the values are read
//! where SQLite keeps them, and only the strings a record is made of are allocated.
//!
//! The page is read only when every value is of the type credgate writes there. Anything else
//! (a row changed by hand: an id as text or of another length, a NULL where credgate writes
//! none, text that is no UTF-8) leaves the page to the row-by-row read, which reads such a
//! value as one no record has, so verification names the record. What this read gives is
//! therefore always exactly what the rows give.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use uuid::Uuid;

use super::stored_body::{self, Repeated};
use crate::audit::StoredAudit;

/// Up to `limit` records from `from_seq` on, in order, bodies put back whole (`prev_hash`
/// left empty: the caller links them). `Ok(None)` when a value is not what credgate writes.
///
/// The page is one statement, so one read transaction: a snapshot, whatever is appended
/// meanwhile. The connection is read-only, so it can never checkpoint or change the file, and
/// is opened for the page: that costs a few tens of microseconds against a page's
/// milliseconds, and keeps nothing open that the store's own pool does not know of.
pub fn read(file: &Path, from_seq: i64, limit: i64) -> rusqlite::Result<Option<Vec<StoredAudit>>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = Connection::open_with_flags(file, flags)?;
    // As long as the store's own connections wait, should a checkpoint hold the WAL's index.
    db.busy_timeout(Duration::from_secs(10))?;
    let mut statement = db.prepare(
        "SELECT seq, id, at, kind, action, outcome, principal_id, grant_id, secret_id, request_id, \
         user_principal_id, body, hash FROM audit_events WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
    )?;
    let mut rows = statement.query((from_seq, limit))?;
    let mut records = Vec::with_capacity(usize::try_from(limit.clamp(0, 16_384)).unwrap_or(0));
    while let Some(row) = rows.next()? {
        match record(row)? {
            Some(record) => records.push(record),
            None => return Ok(None),
        }
    }
    Ok(Some(records))
}

/// One record, `None` when a value is not of the type credgate writes there.
fn record(row: &Row<'_>) -> rusqlite::Result<Option<StoredAudit>> {
    let value = |i: usize| row.get_ref(i);
    let (Some(seq), Some(id), Some(at)) = (integer(value(0)?), id_text(value(1)?), integer(value(2)?)) else {
        return Ok(None);
    };
    let (Some(kind), Some(action), Some(outcome)) = (text(value(3)?), text(value(4)?), text(value(5)?)) else {
        return Ok(None);
    };
    let (Some(principal_id), Some(grant_id), Some(secret_id)) = (
        nullable(value(6)?, id_text),
        nullable(value(7)?, id_text),
        nullable(value(8)?, id_text),
    ) else {
        return Ok(None);
    };
    let (Some(request_id), Some(user_principal_id)) = (nullable(value(9)?, text), nullable(value(10)?, id_text)) else {
        return Ok(None);
    };
    let (Some(stored), ValueRef::Blob(hash)) = (text_ref(value(11)?), value(12)?) else {
        return Ok(None);
    };
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
        hash: hex_text(hash),
    };
    record.body = stored_body::restore(stored, &Repeated::of_row(&record)).unwrap_or_else(|| stored.to_owned());
    Ok(Some(record))
}

fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(v) => Some(v),
        _ => None,
    }
}

/// An id as credgate keeps it, 16 bytes, spelled as the API spells it.
fn id_text(value: ValueRef<'_>) -> Option<String> {
    let ValueRef::Blob(bytes) = value else {
        return None;
    };
    // Spelled into a buffer of its length: `to_string` goes through the formatter and
    // grows its string, four times a record.
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    Some(
        Uuid::from_slice(bytes)
            .ok()?
            .hyphenated()
            .encode_lower(&mut text)
            .to_owned(),
    )
}

/// Bytes as lowercase hex, as the chain speaks its hashes (`hex::encode` collects characters
/// one at a time, a tenth of the page's reading before this).
fn hex_text(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
}

fn text_ref(value: ValueRef<'_>) -> Option<&str> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

fn text(value: ValueRef<'_>) -> Option<String> {
    text_ref(value).map(str::to_owned)
}

/// A column credgate leaves NULL or fills with what `read` reads: `Some(None)` for NULL.
fn nullable<T>(value: ValueRef<'_>, read: fn(ValueRef<'_>) -> Option<T>) -> Option<Option<T>> {
    match value {
        ValueRef::Null => Some(None),
        value => read(value).map(Some),
    }
}
