//! Keeping the credential out of what comes back.
//!
//! An upstream may reflect what it was sent: a redirect that keeps the query (`Location:
//! /docs/?key=<value>`), a `Link` or `Set-Cookie` built from the request, a debugging endpoint
//! that echoes headers in its body. Whatever the upstream sends, the app must not get back the
//! credential it is not allowed to hold. Response headers are always scrubbed; bodies only for
//! secrets with `redact_responses`, because that costs a pass over every byte.
//!
//! What is looked for ([`Needles`]): each credential field's value, and each injected token
//! that encodes one (the base64 of a Basic pair); each in the forms an upstream would reflect
//! it: as sent, percent-encoded (either hex case, `+` or `%20` for a space) and JSON-escaped.
//! Values shorter than [`MIN_LEN`] bytes are not looked for: they are not secrets worth the
//! name, and scrubbing them would mangle ordinary text.

use std::pin::Pin;
use std::task::{Context, Poll};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Either;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::inject::Edits;
use crate::redact::{Credential, SecretBytes};

/// Shorter values are not looked for.
pub const MIN_LEN: usize = 8;

/// What replaces a match in a header value.
const HEADER_MARK: &[u8] = b"[REDACTED]";

/// What a match in a body becomes: the same number of these bytes, so a `Content-Length`
/// stays true and nothing downstream has to buffer to recount.
const BODY_MARK: u8 = b'*';

/// RFC 3986's unreserved characters stay as they are; everything else is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Anchors shorter than this cannot tell a header apart from one holding the value.
const MIN_ANCHOR: usize = 4;

/// The byte strings that must not come back, in every form looked for.
///
/// Every call makes one, so the forms are worked out only when needed: a response header is
/// first searched for each value's *anchor*, its longest run of characters that no encoding
/// looked for changes (letters, digits, `-`, `.`, `_`). Only a header holding an anchor (or a
/// value with no usable anchor, or a body to scrub) costs the full search.
#[derive(Debug, Default)]
pub struct Needles {
    values: Vec<SecretBytes>,
    /// One per value; `None` when the value has no run of [`MIN_ANCHOR`] such characters.
    anchors: Vec<Option<(usize, usize)>>,
    forms: std::sync::OnceLock<Vec<SecretBytes>>,
}

impl Needles {
    /// From the credential that was injected and the edits that carried it.
    pub fn new(credential: &Credential, edits: &Edits) -> Self {
        let fields = || {
            credential
                .fields()
                .map(|(_, v)| v.expose().as_bytes())
                .filter(|v| v.len() >= MIN_LEN)
        };
        let mut values: Vec<SecretBytes> = fields().map(|v| SecretBytes::new(v.to_vec())).collect();
        // Tokens of injected values that encode a field value, such as a Basic pair's base64:
        // the value is in there, only not verbatim. (A token holding a value verbatim is
        // already covered by the value.)
        let injected = edits
            .set_headers
            .iter()
            .chain(edits.set_query.iter())
            .map(|(_, v)| v.expose());
        for value in injected {
            for token in value.split([' ', ',', ';']).filter(|t| t.len() >= MIN_LEN) {
                if fields().any(|v| memchr::memmem::find(token.as_bytes(), v).is_some()) {
                    continue;
                }
                if let Some(decoded) = decode_base64(token)
                    && fields().any(|v| memchr::memmem::find(&decoded, v).is_some())
                {
                    values.push(SecretBytes::new(token.as_bytes().to_vec()));
                }
            }
        }
        let anchors = values.iter().map(|v| anchor(v.expose())).collect();
        Self {
            values,
            anchors,
            forms: std::sync::OnceLock::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every form of every value, longest first (where one form contains another, the whole
    /// of it goes).
    fn forms(&self) -> &[SecretBytes] {
        self.forms.get_or_init(|| {
            let mut forms: Vec<Vec<u8>> = Vec::with_capacity(self.values.len() * 6);
            for value in &self.values {
                for form in encodings(value.expose()) {
                    if !forms.contains(&form) {
                        forms.push(form);
                    }
                }
            }
            forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
            forms.into_iter().map(SecretBytes::new).collect()
        })
    }

    /// Whether `bytes` may hold a form of some value: it holds a value's anchor, or some value
    /// has none.
    fn may_hold(&self, bytes: &[u8]) -> bool {
        self.values
            .iter()
            .zip(&self.anchors)
            .any(|(value, anchor)| match anchor {
                Some((start, end)) => memchr::memmem::find(bytes, &value.expose()[*start..*end]).is_some(),
                None => true,
            })
    }

    /// Replaces every occurrence in every header value with `[REDACTED]`.
    pub fn scrub_headers(&self, headers: &mut HeaderMap) {
        if self.values.is_empty() {
            return;
        }
        for value in headers.values_mut() {
            let bytes = value.as_bytes();
            if !self.may_hold(bytes)
                || !self
                    .forms()
                    .iter()
                    .any(|f| memchr::memmem::find(bytes, f.expose()).is_some())
            {
                continue;
            }
            let mut text = bytes.to_vec();
            for form in self.forms() {
                text = replace_all(&text, form.expose(), HEADER_MARK);
            }
            // The mark is plain ASCII and the rest was a valid value, so this cannot fail; if
            // it somehow did, nothing of the value is better than some of it.
            *value = HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("[REDACTED]"));
        }
    }

    /// The longest form, in bytes: how much of a stream may have to wait for the next chunk.
    fn longest(&self) -> usize {
        self.forms().first().map_or(0, SecretBytes::len)
    }
}

/// The longest run of characters every encoding leaves as they are, if long enough.
fn anchor(value: &[u8]) -> Option<(usize, usize)> {
    let kept = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for (i, b) in value.iter().enumerate() {
        if !kept(b) {
            start = i + 1;
            continue;
        }
        if best.is_none_or(|(s, e)| i + 1 - start > e - s) {
            best = Some((start, i + 1));
        }
    }
    best.filter(|(s, e)| e - s >= MIN_ANCHOR)
}

fn decode_base64(token: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(token).ok())
}

/// A value as sent, percent-encoded three ways, and JSON-escaped.
fn encodings(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![value.to_vec()];
    if let Ok(text) = std::str::from_utf8(value) {
        let upper = utf8_percent_encode(text, COMPONENT).to_string();
        out.push(lower_hex(&upper).into_bytes());
        out.push(upper.replace("%20", "+").into_bytes());
        out.push(
            url::form_urlencoded::byte_serialize(value)
                .collect::<String>()
                .into_bytes(),
        );
        out.push(upper.into_bytes());
        if let Ok(json) = serde_json::to_string(text) {
            let inner = &json[1..json.len() - 1];
            out.push(inner.as_bytes().to_vec());
            out.push(inner.replace('/', "\\/").into_bytes());
        }
    }
    out.retain(|f| !f.is_empty());
    out
}

fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut after_percent = 0;
    for c in encoded.chars() {
        if c == '%' {
            after_percent = 2;
            out.push(c);
        } else if after_percent > 0 {
            after_percent -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = memchr::memmem::find(rest, needle) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(with);
        rest = &rest[i + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A response body with every form of the credential overwritten as it streams.
///
/// Each chunk is searched together with the few bytes held back from the one before: only a
/// tail that could still be the start of a match waits for the next chunk (never more than the
/// longest form, less one byte), so memory stays bounded and a stream of events still arrives
/// event by event. Matches are overwritten byte for byte, so lengths do not change.
pub struct ScrubbedBody<B> {
    inner: B,
    needles: Needles,
    finder: AhoCorasick,
    /// The bytes a form begins with: only where one of these is can a held tail start.
    firsts: [bool; 256],
    carry: BytesMut,
    /// Trailers that arrived while bytes were still held back: sent after them.
    trailers: Option<HeaderMap>,
    done: bool,
}

impl<B> std::fmt::Debug for ScrubbedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrubbedBody").field("held", &self.carry.len()).finish()
    }
}

impl<B> ScrubbedBody<B> {
    /// The body scrubbed, or as it is when there is nothing to look for.
    pub fn wrap(inner: B, needles: Needles) -> Either<B, Self> {
        if needles.is_empty() {
            return Either::Left(inner);
        }
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(needles.forms().iter().map(SecretBytes::expose))
        {
            Ok(finder) => Either::Right(Self {
                firsts: std::array::from_fn(|b| needles.forms().iter().any(|f| f.expose().first() == Some(&(b as u8)))),
                inner,
                needles,
                finder,
                carry: BytesMut::new(),
                trailers: None,
                done: false,
            }),
            // Only a pattern set too large for the automaton fails, and a few dozen short
            // values never are; should it happen, headers are still scrubbed.
            Err(e) => {
                tracing::error!(error = %e, "cannot build the response scrubber");
                Either::Left(inner)
            }
        }
    }

    /// Overwrites the matches in `carry + data`, and returns what can go out now.
    fn scrub(&mut self, data: &[u8]) -> Bytes {
        self.carry.extend_from_slice(data);
        let mut last_end = 0;
        let mut found = Vec::new();
        for m in self.finder.find_iter(&self.carry[..]) {
            found.push((m.start(), m.end()));
        }
        for (start, end) in found {
            self.carry[start..end].fill(BODY_MARK);
            last_end = end;
        }
        let hold = self.held_tail(last_end);
        let out = self.carry.split_to(self.carry.len() - hold);
        out.freeze()
    }

    /// The length of the longest tail of `carry` (after `from`) that a form starts with.
    fn held_tail(&self, from: usize) -> usize {
        let len = self.carry.len();
        let earliest = len.saturating_sub(self.needles.longest().saturating_sub(1)).max(from);
        for start in earliest..len {
            if !self.firsts[usize::from(self.carry[start])] {
                continue;
            }
            let tail = &self.carry[start..];
            if self.needles.forms().iter().any(|f| f.expose().starts_with(tail)) {
                return len - start;
            }
        }
        0
    }
}

impl<B> Body for ScrubbedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                if !this.carry.is_empty() {
                    // Nothing can complete a match any more: the tail goes out as it is.
                    return Poll::Ready(Some(Ok(Frame::data(this.carry.split().freeze()))));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.scrub(&data);
                        if out.is_empty() {
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    Err(frame) => {
                        if let Ok(mut trailers) = frame.into_trailers() {
                            this.needles.scrub_headers(&mut trailers);
                            this.trailers = Some(trailers);
                        }
                        this.done = true;
                    }
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => this.done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.carry.is_empty() && self.trailers.is_none() && (self.done || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // Same-length replacement: the total is the upstream's, plus what is held back.
        let inner = self.inner.size_hint();
        let held = self.carry.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::SecretString;
    use http_body_util::{BodyExt, StreamBody};

    fn needles(token: &str) -> Needles {
        let mut credential = Credential::new();
        credential.insert("token", SecretString::from(token));
        Needles::new(&credential, &Edits::default())
    }

    #[test]
    fn headers_lose_every_form_of_the_value() {
        let n = needles("s3cr3t value/x");
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("location", "/docs/?page=1&key=s3cr3t+value%2Fx"),
            ("link", "</a?key=s3cr3t%20value%2fx>; rel=next"),
            ("set-cookie", "k=s3cr3t value/x; Path=/"),
            ("x-echo", "{\"key\":\"s3cr3t value\\/x\"}"),
            ("content-type", "text/plain"),
        ] {
            h.insert(name, HeaderValue::from_str(value).unwrap());
        }
        n.scrub_headers(&mut h);
        assert_eq!(h["location"], "/docs/?page=1&key=[REDACTED]");
        assert_eq!(h["link"], "</a?key=[REDACTED]>; rel=next");
        assert_eq!(h["set-cookie"], "k=[REDACTED]; Path=/");
        assert_eq!(h["x-echo"], "{\"key\":\"[REDACTED]\"}");
        assert_eq!(h["content-type"], "text/plain");
    }

    #[test]
    fn a_basic_pair_is_found_in_its_base64() {
        let mut credential = Credential::new();
        credential.insert("username", SecretString::from("u"));
        credential.insert("password", SecretString::from("password-canary"));
        let basic = base64::engine::general_purpose::STANDARD.encode("u:password-canary");
        let edits = Edits {
            set_headers: vec![("authorization".into(), SecretString::new(format!("Basic {basic}")))],
            ..Default::default()
        };
        let n = Needles::new(&credential, &edits);
        let mut h = HeaderMap::new();
        h.insert("x-echo", HeaderValue::from_str(&format!("Basic {basic}")).unwrap());
        n.scrub_headers(&mut h);
        assert_eq!(h["x-echo"], "Basic [REDACTED]");
    }

    #[test]
    fn a_value_without_an_anchor_is_still_found() {
        let n = needles("!@#$%^&*()+=");
        let mut h = HeaderMap::new();
        h.insert(
            "location",
            HeaderValue::from_static("/x?k=%21%40%23%24%25%5E%26%2A%28%29%2B%3D"),
        );
        h.insert("x-other", HeaderValue::from_static("nothing here"));
        n.scrub_headers(&mut h);
        assert_eq!(h["location"], "/x?k=[REDACTED]");
        assert_eq!(h["x-other"], "nothing here");
    }

    #[test]
    fn short_values_are_not_looked_for() {
        let n = needles("abc");
        assert!(n.is_empty());
    }

    async fn through(token: &str, chunks: &[&str]) -> Vec<Bytes> {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c.as_bytes()))))
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let Either::Right(mut body) = ScrubbedBody::wrap(body, needles(token)) else {
            panic!("nothing to look for")
        };
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(frame.unwrap().into_data().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_value_split_across_chunks_is_still_found() {
        let out = through(
            "canary-0123456789",
            &["{\"auth\":\"Bearer can", "ary-01234", "56789\"}"],
        )
        .await;
        let joined: Vec<u8> = out.iter().flat_map(|b| b.to_vec()).collect();
        assert_eq!(
            String::from_utf8(joined).unwrap(),
            "{\"auth\":\"Bearer *****************\"}"
        );
    }

    #[tokio::test]
    async fn events_that_cannot_start_a_match_are_not_held() {
        let out = through(
            "canary-0123456789",
            &["data: one\n\n", "data: c", "anary-0123456789\n\n"],
        )
        .await;
        assert_eq!(out[0], "data: one\n\n", "the first event went out whole, at once");
        // Only the `c` that might begin the value waited.
        assert_eq!(out[1], "data: ");
        assert_eq!(out[2], "*****************\n\n");
    }
}
