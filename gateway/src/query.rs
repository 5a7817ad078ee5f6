//! A query string edited pair by pair, every other byte kept as the app wrote it.
//!
//! Decoding the whole query and encoding it again (as `url`'s `query_pairs_mut` does) changes
//! bytes the app chose (`%2f` becomes `%2F`, `flag` becomes `flag=`, `;` becomes `%3B`), which
//! breaks signatures computed over the query and cache keys. Here a pair is removed or added
//! whole and the others are copied byte for byte; names and values are decoded only to be
//! compared.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986's unreserved characters stay as they are in an added pair; everything else is
/// percent-encoded (a space as `%20`, which every server reads as a space, unlike `+`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// One `name=value` pair: its bytes as sent, and its decoded name and value.
#[derive(Debug)]
pub struct Pair<'a> {
    pub raw: &'a str,
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// The pairs of a query, in order; empty pieces (`a=1&&b=2`) are skipped.
pub fn pairs(query: &str) -> impl Iterator<Item = Pair<'_>> {
    query.split('&').filter(|raw| !raw.is_empty()).map(|raw| {
        let (name, value) = url::form_urlencoded::parse(raw.as_bytes())
            .next()
            .unwrap_or((Cow::Borrowed(""), Cow::Borrowed("")));
        Pair { raw, name, value }
    })
}

/// The query without the pairs `drop` picks (called with each decoded name and value), or
/// `None` if none is left. Unchanged, byte for byte, when nothing is dropped.
pub fn without(query: &str, mut drop: impl FnMut(&str, &str) -> bool) -> Option<String> {
    let kept: Vec<&str> = pairs(query)
        .filter(|p| !drop(&p.name, &p.value))
        .map(|p| p.raw)
        .collect();
    if kept.is_empty() {
        return None;
    }
    if kept.len() == pairs(query).count() {
        return Some(query.to_owned());
    }
    Some(kept.join("&"))
}

/// `query` with `name=value` added at the end, both encoded.
pub fn with(query: Option<&str>, name: &str, value: &str) -> String {
    let pair = format!(
        "{}={}",
        utf8_percent_encode(name, COMPONENT),
        utf8_percent_encode(value, COMPONENT)
    );
    match query {
        Some(q) if !q.is_empty() => format!("{q}&{pair}"),
        _ => pair,
    }
}

/// The query as sent, with the values of the named parameters replaced by `[REDACTED]`.
pub fn redacted(query: &str, names: &[String]) -> String {
    if names.is_empty() {
        return query.to_owned();
    }
    pairs(query)
        .map(|p| {
            if names.iter().any(|n| *n == p.name) {
                let raw_name = p.raw.split_once('=').map_or(p.raw, |(n, _)| n);
                Cow::Owned(format!("{raw_name}=[REDACTED]"))
            } else {
                Cow::Borrowed(p.raw)
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = "a=%2F%20b&flag&lower=%2f&semi=a;b";

    #[test]
    fn untouched_pairs_keep_their_bytes() {
        assert_eq!(without(SENT, |_, _| false).as_deref(), Some(SENT));
        assert_eq!(
            with(Some(SENT), "api_key", "k 1/2"),
            format!("{SENT}&api_key=k%201%2F2")
        );
        assert_eq!(
            without(&format!("{SENT}&key=x"), |n, _| n == "key").as_deref(),
            Some(SENT)
        );
        assert_eq!(without("key=x", |n, _| n == "key"), None);
    }

    #[test]
    fn names_are_compared_decoded() {
        assert_eq!(without("%6Bey=x&q=1", |n, _| n == "key").as_deref(), Some("q=1"));
        assert_eq!(without("q=1&a=b%20c", |_, v| v == "b c").as_deref(), Some("q=1"));
    }

    #[test]
    fn redaction_keeps_everything_else_as_sent() {
        assert_eq!(
            redacted("note=a%26key%3Dforged&key=secret", &["key".into()]),
            "note=a%26key%3Dforged&key=[REDACTED]"
        );
    }
}
