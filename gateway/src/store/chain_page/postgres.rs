//! PostgreSQL: a page read as one `COPY … TO STDOUT (FORMAT binary)`. The server sends the
//! page as a stream of bytes, parsed here on a blocking thread, instead of a message per row
//! that sqlx decodes column by column, by name, on the async worker that reads the socket.
//!
//! The binary format is PostgreSQL's own (documented with `COPY`): a signature, flags and a
//! header extension; then each row as its count of fields and each field as its length (-1
//! for NULL) and its bytes in the type's binary form; then -1. `bigint` is 8 bytes big-endian,
//! `uuid` its 16 bytes, `text` the bytes in the client encoding (UTF-8, as sqlx sets it),
//! `bytea` the bytes as they are.

use uuid::Uuid;

use super::{ChainPage, Fields};

/// The statement for up to `limit` records from `from_seq` on, in order. `COPY` takes no
/// bound parameters, so the two numbers are written in: integers, nothing else.
pub fn statement(from_seq: i64, limit: i64) -> String {
    format!(
        "COPY (SELECT {} FROM audit_events WHERE seq >= {from_seq} ORDER BY seq LIMIT {limit}) \
         TO STDOUT (FORMAT binary)",
        super::COLUMNS
    )
}

/// Counts the columns of `audit_events` whose type is the one [`parse`] reads there: 13 when
/// the table is as credgate made it. Binary `COPY` sends a field's bytes without its type, so
/// a column changed by hand to another type with the same bytes (an id made `bytea`) would
/// otherwise read as it did, yet no filter would find the record; the row read names it.
pub const TYPES_AS_READ: &str = "SELECT count(*) FROM pg_attribute a JOIN (VALUES ('seq', 'bigint'), \
     ('id', 'uuid'), ('at', 'bigint'), ('kind', 'text'), ('action', 'text'), ('outcome', 'text'), \
     ('principal_id', 'uuid'), ('grant_id', 'uuid'), ('secret_id', 'uuid'), ('request_id', 'text'), \
     ('user_principal_id', 'uuid'), ('body', 'text'), ('hash', 'bytea')) AS t (name, type) \
     ON a.attname = t.name AND format_type(a.atttypid, NULL) = t.type \
     WHERE a.attrelid = 'audit_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped";

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The records of a page as [`statement`]'s `COPY` sent it, in the room of `into`. `None` when anything is not as
/// that statement and the schema make it (another column count or length, a NULL where
/// credgate writes none, text that is no UTF-8, bytes left over): the page is then read row
/// by row.
pub fn parse(data: &[u8], into: ChainPage) -> Option<ChainPage> {
    let mut input = Input(data);
    if input.take(SIGNATURE.len())? != SIGNATURE {
        return None;
    }
    // No flag is set in a copy without OIDs; a set one would change the rows' layout.
    if input.u32()? != 0 {
        return None;
    }
    let extension = usize::try_from(input.u32()?).ok()?;
    input.take(extension)?;
    // A record's stored form is about a quarter of its room in the page.
    let mut page = into.reused_for(data.len() / 256);
    loop {
        match input.i16()? {
            -1 => break,
            13 => page.push(&input.fields()?),
            _ => return None,
        }
    }
    input.0.is_empty().then_some(page)
}

/// The bytes not read yet.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    /// A field's bytes, `Some(None)` for NULL.
    fn field(&mut self) -> Option<Option<&'a [u8]>> {
        match i32::from_be_bytes(self.take(4)?.try_into().ok()?) {
            -1 => Some(None),
            n => self.take(usize::try_from(n).ok()?).map(Some),
        }
    }

    fn bigint(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.field()??.try_into().ok()?))
    }

    fn uuid(&mut self) -> Option<Option<Uuid>> {
        self.field()?
            .map(|bytes| Uuid::from_slice(bytes).ok())
            .map_or(Some(None), |id| id.map(Some))
    }

    fn text(&mut self) -> Option<Option<&'a str>> {
        self.field()?
            .map(|bytes| std::str::from_utf8(bytes).ok())
            .map_or(Some(None), |text| text.map(Some))
    }

    /// One row's thirteen fields, in [`super::COLUMNS`] order.
    fn fields(&mut self) -> Option<Fields<'a>> {
        Some(Fields {
            seq: self.bigint()?,
            id: self.uuid()??,
            at: self.bigint()?,
            kind: self.text()??,
            action: self.text()??,
            outcome: self.text()??,
            principal_id: self.uuid()?,
            grant_id: self.uuid()?,
            secret_id: self.uuid()?,
            request_id: self.text()?,
            user_principal_id: self.uuid()?,
            body: self.text()??,
            hash: self.field()??,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::StoredAudit;

    /// The page as the rest of the store reads it.
    fn parsed(data: &[u8]) -> Option<Vec<StoredAudit>> {
        parse(data, ChainPage::default()).map(|page| page.to_records())
    }

    /// A field as `COPY` sends it.
    fn field(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                out.extend_from_slice(&i32::try_from(b.len()).unwrap().to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }

    /// A row's fields, NULL as `None`.
    type Values = Vec<Option<Vec<u8>>>;
    /// An edit of a row's fields.
    type Change = fn(&mut Values);

    /// A row of thirteen fields as the statement selects them; `change` edits them first.
    fn row(out: &mut Vec<u8>, seq: i64, change: Change) {
        let id = Uuid::from_u128(u128::try_from(seq).unwrap());
        let mut fields: Values = vec![
            Some(seq.to_be_bytes().to_vec()),
            Some(id.as_bytes().to_vec()),
            Some(1_796_000_000_000_000i64.to_be_bytes().to_vec()),
            Some(b"proxy".to_vec()),
            Some(b"proxy.response".to_vec()),
            Some(b"ok".to_vec()),
            Some(id.as_bytes().to_vec()),
            None,
            None,
            Some("req-\u{e9}".as_bytes().to_vec()),
            None,
            Some(br#"{"reason":"why"}"#.to_vec()),
            Some(vec![0xab; 32]),
        ];
        change(&mut fields);
        out.extend_from_slice(&i16::try_from(fields.len()).unwrap().to_be_bytes());
        for f in &fields {
            field(out, f.as_deref());
        }
    }

    fn copy(rows: &[(i64, Change)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        for (seq, change) in rows {
            row(&mut out, *seq, *change);
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn a_copy_parses_into_the_records_with_their_bodies_whole() {
        let records = parsed(&copy(&[(7, |_| {}), (8, |f| f[9] = None)])).expect("parses");
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(
            (r.seq, r.at, r.kind.as_str(), r.outcome.as_str()),
            (7, 1_796_000_000_000_000, "proxy", "ok")
        );
        assert_eq!(r.id, "00000000-0000-0000-0000-000000000007");
        assert_eq!(r.principal_id.as_deref(), Some(r.id.as_str()));
        assert_eq!(
            (r.grant_id.as_deref(), r.request_id.as_deref()),
            (None, Some("req-\u{e9}"))
        );
        assert_eq!(r.hash, "ab".repeat(32));
        assert!(
            r.body
                .starts_with(r#"{"id":"00000000-0000-0000-0000-000000000007","at":"#),
            "{}",
            r.body
        );
        assert!(r.body.ends_with(r#""reason":"why"}"#), "{}", r.body);
        assert_eq!(records[1].request_id, None);
        // No records at all.
        assert_eq!(parsed(&copy(&[])), Some(Vec::new()));
    }

    #[test]
    fn anything_the_statement_does_not_send_leaves_the_page_to_the_rows() {
        let bad: [(&str, Change); 7] = [
            ("a NULL id", |f| f[1] = None),
            ("a NULL outcome", |f| f[5] = None),
            ("a short id", |f| f[6] = Some(vec![1, 2])),
            ("a sequence number of four bytes", |f| {
                f[0] = Some(7i32.to_be_bytes().to_vec())
            }),
            ("text that is no UTF-8", |f| f[11] = Some(vec![b'{', 0xff, b'}'])),
            ("a column more", |f| f.push(None)),
            ("a column less", |f| {
                f.pop();
            }),
        ];
        for (name, change) in bad {
            assert_eq!(parsed(&copy(&[(1, |_| {}), (2, change)])), None, "{name}");
        }
        let good = copy(&[(1, |_| {})]);
        // Cut short anywhere, flags set, bytes after the end, another signature.
        for cut in 0..good.len() {
            assert_eq!(parsed(&good[..cut]), None, "cut at {cut}");
        }
        let mut flagged = good.clone();
        flagged[SIGNATURE.len()] = 1;
        assert_eq!(parsed(&flagged), None);
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(parsed(&longer), None);
        let mut other = good;
        other[0] = b'X';
        assert_eq!(parsed(&other), None);
    }
}
