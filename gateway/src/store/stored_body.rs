//! How the database keeps a record's body: without the values its own columns hold.
//!
//! A body is the JSON the chain hashes. Its id, time, kind, action, outcome, request id and
//! principal, person, grant and secret ids are also columns (binary, indexed, filtered on), so
//! keeping them twice cost about half of every body (BENCHMARKS.md, "Where a record's bytes
//! are"). The fields every body opens with (id through request id) are left out of the stored
//! form whole; the ids further in are left empty (`"grant_id":""`). Reading the row puts the
//! column values back, byte for byte, so the hash, the API and archive files see the exact body
//! that was chained. A changed column therefore changes the body the hash covers, and
//! verification names the record.
//!
//! A whole body opens with `{"id":`, a stored one never does (its id is left out), so bodies
//! kept whole, as every record stored before this release was, read as they are. A body is
//! only shortened when its values come back exactly (checked as it is stored); any other is
//! kept whole. Reason and context stay in the stored JSON, where the filters read them.

use std::borrow::Cow;

use crate::audit::{AuditEvent, StoredAudit};
use crate::clock::{rfc3339, to_micros};

/// The fields every body opens with, in the order `AuditEvent` serialises them: left out of
/// the stored form whole. The last, `request_id`, is absent from some events.
const LEADING: [&str; 6] = ["id", "at", "kind", "action", "outcome", "request_id"];

/// The ids further in, each as it opens in the JSON, in order: stored with an empty value.
/// Other fields lie between and after them (actor, target, via_group_id, context, …).
const INNER: [&str; 4] = [
    "\"principal_id\":\"",
    "\"user_principal_id\":\"",
    "\"grant_id\":\"",
    "\"secret_id\":\"",
];

/// Where field `i` of [`INNER`] first opens in `text`. Its searcher is built once: walking
/// the trail restores hundreds of thousands of bodies a second.
fn find(text: &str, i: usize) -> Option<usize> {
    static FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; INNER.len()]> =
        std::sync::LazyLock::new(|| INNER.map(memchr::memmem::Finder::new));
    FINDERS[i].find(text.as_bytes())
}

/// How every whole body opens, and no stored one.
const WHOLE: &str = "{\"id\":";

/// The values of [`LEADING`] then [`INNER`] for one record, as its body's text has them;
/// `None` where the field is absent. A row's are borrowed: reading the trail makes one of these
/// a record, and walking it reads hundreds of thousands a second.
pub struct Repeated<'a>([Option<Cow<'a, str>>; LEADING.len() + INNER.len()], Spelled);

/// Whether the ids and the time were spelled by credgate (from an event, or from the binary
/// columns), so JSON escapes nothing in them; text read from a column may hold anything.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spelled {
    Here,
    ByTheRow,
}

/// The leading fields that are text columns, by index: kind, action, outcome, request id.
const TEXT_COLUMNS: std::ops::RangeInclusive<usize> = 2..=5;

/// Room for the leading fields put back (a typical call's take about 170 bytes).
const OPENING_BYTES: usize = 192;

impl<'a> Repeated<'a> {
    /// As the columns will hold them: the time in whole microseconds, so a finer one does
    /// not come back and its body is kept whole.
    pub fn of_event(e: &'a AuditEvent) -> Self {
        let id = |v: Option<uuid::Uuid>| v.map(|v| Cow::Owned(v.to_string()));
        Self(
            [
                Some(Cow::Owned(e.id.to_string())),
                Some(Cow::Owned(rfc3339(to_micros(e.at)))),
                Some(Cow::Borrowed(e.kind.as_str())),
                Some(Cow::Borrowed(&e.action)),
                Some(Cow::Borrowed(&e.outcome)),
                e.request_id.as_deref().map(Cow::Borrowed),
                id(e.principal_id),
                id(e.user_principal_id),
                id(e.grant_id),
                id(e.secret_id),
            ],
            Spelled::Here,
        )
    }

    /// From a row's columns (its body not yet restored).
    pub fn of_row(row: &'a StoredAudit) -> Self {
        let text = |v: &'a Option<String>| v.as_deref().map(Cow::Borrowed);
        Self(
            [
                Some(Cow::Borrowed(&row.id)),
                Some(Cow::Owned(rfc3339(row.at))),
                Some(Cow::Borrowed(&row.kind)),
                Some(Cow::Borrowed(&row.action)),
                Some(Cow::Borrowed(&row.outcome)),
                text(&row.request_id),
                text(&row.principal_id),
                text(&row.user_principal_id),
                text(&row.grant_id),
                text(&row.secret_id),
            ],
            Spelled::ByTheRow,
        )
    }

    /// From a record's columns as text, every one borrowed: reading a page builds one of
    /// these for each record and nothing else. The ids must be spelled from their bytes and
    /// the time by [`rfc3339`], as [`Columns`] says: nothing in them is checked for escaping.
    pub fn of_columns(columns: Columns<'a>) -> Self {
        let Columns {
            id,
            at,
            kind,
            action,
            outcome,
            request_id,
            principal_id,
            user_principal_id,
            grant_id,
            secret_id,
        } = columns;
        let text = |v: Option<&'a str>| v.map(Cow::Borrowed);
        Self(
            [
                Some(Cow::Borrowed(id)),
                Some(Cow::Borrowed(at)),
                Some(Cow::Borrowed(kind)),
                Some(Cow::Borrowed(action)),
                Some(Cow::Borrowed(outcome)),
                text(request_id),
                text(principal_id),
                text(user_principal_id),
                text(grant_id),
                text(secret_id),
            ],
            Spelled::Here,
        )
    }

    /// `{"id":"…","at":"…",…` through the last leading field present, as the body opens.
    fn opening(&self) -> String {
        let mut out = String::with_capacity(OPENING_BYTES);
        self.push_opening(&mut out);
        out
    }

    /// [`Self::opening`] appended to `out`.
    fn push_opening(&self, out: &mut String) {
        let open = out.len();
        out.push('{');
        for (i, (key, value)) in LEADING.iter().zip(&self.0).enumerate() {
            if let Some(value) = value {
                if out.len() > open + 1 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(key);
                out.push_str("\":\"");
                push_text(out, value, self.may_escape(i));
                out.push('"');
            }
        }
    }

    /// Whether value `i` may hold what JSON escapes.
    fn may_escape(&self, i: usize) -> bool {
        self.1 == Spelled::ByTheRow || TEXT_COLUMNS.contains(&i)
    }

    /// Each of [`INNER`] present, by its index there, with its value.
    fn inner(&self) -> impl Iterator<Item = (usize, &str)> {
        self.0[LEADING.len()..]
            .iter()
            .enumerate()
            .filter_map(|(i, value)| value.as_deref().map(|v| (i, v)))
    }
}

/// A record's column values as text, borrowed, for [`Repeated::of_columns`]: the ids as
/// credgate spells an id's 16 bytes (hyphenated, lowercase), the time as [`rfc3339`] spells the
/// column's microseconds, the rest as the text columns hold it.
pub struct Columns<'a> {
    pub id: &'a str,
    pub at: &'a str,
    pub kind: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub request_id: Option<&'a str>,
    pub principal_id: Option<&'a str>,
    pub user_principal_id: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub secret_id: Option<&'a str>,
}

/// Whether JSON escapes something in `v`: such a value is never left out of a stored body.
fn escapes(v: &str) -> bool {
    // No early return: the loop compiles to vector compares.
    v.bytes()
        .fold(false, |found, b| found | (b == b'"') | (b == b'\\') | (b < 0x20))
}

/// A column's value inside a JSON string. Only a column changed by hand needs escaping (a value
/// that does is never left out of the body), and escaped it still gives a body that parses, so
/// the trail lists and verification names the record.
fn push_text(out: &mut String, v: &str, may_escape: bool) {
    if may_escape && escapes(v) {
        let quoted = serde_json::Value::from(v).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
    } else {
        out.push_str(v);
    }
}

/// The body as the database keeps it, or `None` to keep `body` whole: when a value is not where
/// the fixed field order puts it, needs escaping, or would not come back exactly.
pub fn shorten(body: &str, repeated: &Repeated<'_>) -> Option<String> {
    // A value JSON would escape is not in the body as it is in the column.
    if repeated.0.iter().flatten().any(|v| escapes(v)) {
        return None;
    }
    // What follows the leading fields: `}`, or `,` and the rest.
    let opening = repeated.opening();
    let rest = body.strip_prefix(opening.as_str())?;
    let rest = rest.strip_prefix(',').or_else(|| (rest == "}").then_some(rest))?;
    let mut out = String::with_capacity(rest.len() + 1);
    out.push('{');
    let mut from = 0;
    for (i, value) in repeated.inner() {
        // The first opening of a field past the one before it is the event's own: string values
        // cannot hold an unescaped quote, and the only nested object (context) comes last.
        let start = from + find(&rest[from..], i)? + INNER[i].len();
        if !(rest[start..].starts_with(value) && rest[start + value.len()..].starts_with('"')) {
            return None;
        }
        out.push_str(&rest[from..start]);
        from = start + value.len();
    }
    out.push_str(&rest[from..]);
    // Kept short only if reading it gives back every byte the chain hashed.
    let mut back = opening;
    back.reserve(out.len());
    push_rest(rest_of(&out)?, repeated, &mut back);
    (back == body).then_some(out)
}

/// The body a stored one stands for: the columns' values put back, or `None` when `stored` is
/// whole or is no JSON object (read it as it is: only a row changed by hand holds anything but
/// the two forms, and its hash then names it). Where a field cannot be found (the row was
/// changed), the rest is left as stored: the hash, or the columns' check against the body,
/// names the record.
pub fn restore(stored: &str, repeated: &Repeated<'_>) -> Option<String> {
    let mut out = String::with_capacity(stored.len() + OPENING_BYTES);
    restore_into(stored, repeated, &mut out).then_some(out)
}

/// [`restore`] appended to `out`: `false`, and nothing appended, where `restore` gives `None`.
pub fn restore_into(stored: &str, repeated: &Repeated<'_>, out: &mut String) -> bool {
    let Some(rest) = rest_of(stored) else {
        return false;
    };
    repeated.push_opening(out);
    push_rest(rest, repeated, out);
    true
}

/// What a stored body holds after its `{`: `None` when it is whole or no JSON object.
fn rest_of(stored: &str) -> Option<&str> {
    if stored.starts_with(WHOLE) {
        return None;
    }
    stored.strip_prefix('{')
}

/// The rest of a stored body (past its `{`) appended to the opening in `out`, with the ids
/// further in put back.
fn push_rest(rest: &str, repeated: &Repeated<'_>, out: &mut String) {
    if rest == "}" {
        out.push('}');
        return;
    }
    out.push(',');
    let mut from = 0;
    for (i, value) in repeated.inner() {
        let Some(at) = find(&rest[from..], i) else { break };
        let field = INNER[i];
        // Past the field's opening quote, at its closing one.
        let end = from + at + field.len();
        out.push_str(&rest[from..end]);
        push_text(out, value, repeated.may_escape(LEADING.len() + i));
        from = end;
    }
    out.push_str(&rest[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;
    use uuid::Uuid;

    fn call() -> AuditEvent {
        let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", "ok");
        e.request_id = Some(Uuid::now_v7().simple().to_string());
        e.principal_id = Some(Uuid::new_v4());
        e.user_principal_id = Some(Uuid::new_v4());
        e.via_group_id = Some(Uuid::new_v4());
        e.grant_id = Some(Uuid::new_v4());
        e.secret_id = Some(Uuid::new_v4());
        e.secret_version = Some(3);
        e.provider = Some("openai".into());
        e.method = Some("POST".into());
        e.host = Some("api.openai.com".into());
        e.path = Some("/v1/chat/completions".into());
        e.status = Some(200);
        e.latency_ms = Some(12.25);
        e
    }

    /// Reads back what `shorten` kept, as the store does.
    fn round_trip(e: &AuditEvent) -> (String, String) {
        let body = e.body();
        let repeated = Repeated::of_event(e);
        let stored = shorten(&body, &repeated).unwrap_or_else(|| body.clone());
        let read = restore(&stored, &repeated).unwrap_or_else(|| stored.clone());
        assert_eq!(read, body, "every byte the chain hashed comes back");
        (body, stored)
    }

    #[test]
    fn a_call_is_kept_without_its_columns_values_and_reads_back_byte_for_byte() {
        let e = call();
        let (body, stored) = round_trip(&e);
        assert!(!stored.starts_with(WHOLE), "{stored}");
        for value in [
            e.id.to_string(),
            e.request_id.clone().unwrap(),
            e.principal_id.unwrap().to_string(),
            e.grant_id.unwrap().to_string(),
            e.secret_id.unwrap().to_string(),
        ] {
            assert!(body.contains(&value) && !stored.contains(&value), "{value} in {stored}");
        }
        // What no column holds stays where the filters and readers find it.
        assert!(stored.contains(&e.via_group_id.unwrap().to_string()));
        assert!(stored.contains("\"host\":\"api.openai.com\""));
        assert!(stored.len() + 280 < body.len(), "{} of {}", stored.len(), body.len());
        let parsed: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(parsed["host"], "api.openai.com", "the stored form is JSON still");
    }

    #[test]
    fn an_admin_change_with_few_fields_reads_back_too() {
        let mut e = AuditEvent::new(AuditKind::Admin, "principal.create", "conflict");
        e.actor = Some("admin:bootstrap".into());
        e.target = Some(Uuid::new_v4().to_string());
        let (_, stored) = round_trip(&e);
        assert!(stored.starts_with("{\"actor\":"), "{stored}");
        // Nothing but the leading fields: nothing is left of it but the braces.
        let (_, stored) = round_trip(&AuditEvent::new(AuditKind::Admin, "audit.archive", "ok"));
        assert_eq!(stored, "{}");
    }

    #[test]
    fn context_keys_named_like_columns_and_values_that_look_like_fields_do_not_move_values() {
        let mut e = call();
        e.reason = Some("\"grant_id\":\"x\" \\ \"secret_id\":\"".into());
        let context = serde_json::json!({
            "principal_id": e.principal_id.unwrap().to_string(),
            "grant_id": "",
            "outcome": "ok",
        });
        e.context = context.as_object().cloned();
        let (_, stored) = round_trip(&e);
        assert!(!stored.starts_with(WHOLE), "{stored}");
        let parsed: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            parsed["context"], context,
            "the app's own context is kept as it said it"
        );
        assert_eq!(parsed["reason"], e.reason.clone().unwrap().as_str());
    }

    #[test]
    fn a_body_whose_values_would_not_come_back_exactly_is_kept_whole() {
        // A request id JSON escapes, and a time finer than the column's microseconds.
        let mut e = call();
        e.request_id = Some("a\"b".into());
        let (body, stored) = round_trip(&e);
        assert_eq!(stored, body);
        let mut e = call();
        e.at += chrono::Duration::nanoseconds(1);
        let (body, stored) = round_trip(&e);
        assert_eq!(stored, body);
        // A whole body (every record stored before this release) reads as it is.
        assert_eq!(restore(&body, &Repeated::of_event(&e)), None);
    }

    #[test]
    fn a_changed_column_changes_the_body_the_hash_covers() {
        let e = call();
        let body = e.body();
        let stored = shorten(&body, &Repeated::of_event(&e)).unwrap();
        let mut changed = e.clone();
        changed.outcome = "denied".into();
        let read = restore(&stored, &Repeated::of_event(&changed)).unwrap();
        assert_ne!(read, body);
        assert!(read.contains("\"outcome\":\"denied\""), "{read}");
        // A column emptied (a grant id set to NULL) leaves its field empty: still not the body.
        changed = e.clone();
        changed.grant_id = None;
        assert_ne!(restore(&stored, &Repeated::of_event(&changed)).unwrap(), body);
        // A stored body cut to no JSON object is read as it is (the hash names it), so the
        // reason and context filters never meet text their engines refuse.
        let cut = &stored[stored.find(',').unwrap()..];
        assert_eq!(restore(cut, &Repeated::of_event(&e)), None);
    }

    #[test]
    fn a_column_changed_to_text_json_escapes_still_reads_as_an_event() {
        let e = call();
        let body = e.body();
        let stored = shorten(&body, &Repeated::of_event(&e)).unwrap();
        let mut changed = e.clone();
        changed.action = "proxy.response\",\"outcome\":\"ok\u{1f}\\".into();
        let read = restore(&stored, &Repeated::of_event(&changed)).unwrap();
        assert_ne!(read, body);
        let parsed: AuditEvent = serde_json::from_str(&read).unwrap();
        assert_eq!(
            parsed.action, changed.action,
            "the column's value, not a field it imitates"
        );
        assert_eq!(parsed.outcome, e.outcome);
    }
}
