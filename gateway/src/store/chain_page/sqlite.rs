//! SQLite: a page read from the database file through the engine's C API (rusqlite, on the
//! same libsqlite3-sys as sqlx), on a blocking thread and a connection of its own. The values
//! are read where SQLite keeps them; no row crosses between threads.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use uuid::Uuid;

use super::{ChainPage, Fields};

/// Up to `limit` records from `from_seq` on, in order, in the room of `into`. `Ok(None)` when a
/// value is not what credgate writes.
///
/// The page is one statement, so one read transaction: a snapshot, whatever is appended
/// meanwhile. The connection is read-only, so it can never checkpoint or change the file, and
/// is opened for the page: that costs a few tens of microseconds against a page's
/// milliseconds, and keeps nothing open that the store's own pool does not know of.
pub fn read(file: &Path, from_seq: i64, limit: i64, into: ChainPage) -> rusqlite::Result<Option<ChainPage>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = Connection::open_with_flags(file, flags)?;
    // As long as the store's own connections wait, should a checkpoint hold the WAL's index.
    db.busy_timeout(Duration::from_secs(10))?;
    // The file mapped, not copied out of the page cache a page at a time (`pread` was a tenth
    // of the walk's CPU). SQLite maps what its read snapshot covers, up to its build's cap
    // (2 GB of the file; it reads past that as before). Its own caveat: an I/O error on a
    // mapped page is a signal, not an error. Nothing credgate does shrinks the file.
    db.pragma_update(None, "mmap_size", 1_i64 << 40)?;
    let mut statement = db.prepare(&format!(
        "SELECT {} FROM audit_events WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        super::COLUMNS
    ))?;
    let mut rows = statement.query((from_seq, limit))?;
    let mut page = into.reused_for(usize::try_from(limit).unwrap_or(0));
    while let Some(row) = rows.next()? {
        match fields(row)? {
            Some(fields) => page.push(&fields),
            None => return Ok(None),
        }
    }
    Ok(Some(page))
}

/// One row's values, `None` when one is not of the type credgate writes there.
fn fields<'r>(row: &'r Row<'_>) -> rusqlite::Result<Option<Fields<'r>>> {
    let value = |i: usize| row.get_ref(i);
    let (Some(seq), Some(id), Some(at)) = (integer(value(0)?), uuid(value(1)?), integer(value(2)?)) else {
        return Ok(None);
    };
    let (Some(kind), Some(action), Some(outcome)) = (text(value(3)?), text(value(4)?), text(value(5)?)) else {
        return Ok(None);
    };
    let (Some(principal_id), Some(grant_id), Some(secret_id)) = (
        nullable(value(6)?, uuid),
        nullable(value(7)?, uuid),
        nullable(value(8)?, uuid),
    ) else {
        return Ok(None);
    };
    let (Some(request_id), Some(user_principal_id)) = (nullable(value(9)?, text), nullable(value(10)?, uuid)) else {
        return Ok(None);
    };
    let (Some(body), ValueRef::Blob(hash)) = (text(value(11)?), value(12)?) else {
        return Ok(None);
    };
    Ok(Some(Fields {
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
        body,
        hash,
    }))
}

fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(v) => Some(v),
        _ => None,
    }
}

/// An id as credgate keeps it: 16 bytes.
fn uuid(value: ValueRef<'_>) -> Option<Uuid> {
    match value {
        ValueRef::Blob(bytes) => Uuid::from_slice(bytes).ok(),
        _ => None,
    }
}

fn text(value: ValueRef<'_>) -> Option<&str> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// A column credgate leaves NULL or fills with what `read` reads: `Some(None)` for NULL.
fn nullable<'v, T>(value: ValueRef<'v>, read: fn(ValueRef<'v>) -> Option<T>) -> Option<Option<T>> {
    match value {
        ValueRef::Null => Some(None),
        value => read(value).map(Some),
    }
}
