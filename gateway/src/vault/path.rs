//! Paths as an upstream reads them: the rules that keep a grant's path limits binding.
//!
//! A grant's `allowed_path_prefixes` must bind the path the upstream will act on, not the
//! bytes credgate saw. Upstreams decode percent-escapes (some twice), read `\\` as `/`, drop
//! `;parameters` before resolving `..`, and accept IIS's `%u002e` or overlong UTF-8. So a
//! path with a dot segment, backslash or NUL in any of those forms is refused outright, and
//! what remains is matched by whole segments in RFC 3986 normal form.
//!
//! This file depends on nothing but `std`, so the fuzz target (`gateway/fuzz`) builds it alone.

use std::borrow::Cow;

/// RFC 3986 §6.2.2: percent-encoded unreserved characters decoded, every other escape in
/// upper case. Equal normal forms are the same path to any conforming server.
pub fn normalize(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            let c = (h * 16 + l) as u8;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(c as char);
            } else {
                out.push('%');
                out.push_str(&format!("{c:02X}"));
            }
            i += 3;
            continue;
        }
        // Not an escape: copied as it is (a lone `%`, as in an S3 key `100%.txt`).
        let ch = path[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    Cow::Owned(out)
}

/// Whether `path` is `prefix` or lies under it, by whole segments, both in normal form: `/v1/chat`
/// covers `/v1/chat/x`, not `/v1/chatty`; `/v1/chat/` covers `/v1/chat/x`.
pub fn under(prefix: &str, path: &str) -> bool {
    let path = normalize(path);
    let prefix = normalize(prefix);
    path == prefix
        || (path.starts_with(prefix.as_ref())
            && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')))
}

/// Why a path is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsafe {
    /// A `.` or `..` segment, in some encoding.
    Dot,
    /// A backslash or NUL, in some encoding.
    Separator,
}

/// How many layers of encoding are looked through. Beyond this a path is refused outright if
/// it still changes when decoded: no real client encodes a path five times.
const LAYERS: usize = 4;

/// What, if anything, makes a path unsafe to forward: a `.` or `..` segment in any encoding
/// (`%2e%2e`, `%252e`, `%u002e`, overlong `%c0%ae`), with or without `;parameters` (Tomcat,
/// Spring and Jetty read `..;` as `..`), or a backslash or NUL in any encoding (servers that
/// read `\\` as `/`, or stop at NUL). Each layer of percent-encoding is decoded in turn, so a
/// server that decodes twice is covered too.
pub fn unsafe_part(raw: &str) -> Option<Unsafe> {
    let mut text: Cow<'_, [u8]> = Cow::Borrowed(raw.as_bytes());
    for layer in 0..=LAYERS {
        if text.iter().any(|&b| b == b'\\' || b == 0) {
            return Some(Unsafe::Separator);
        }
        let dotted = text
            .split(|&b| b == b'/')
            .map(|segment| segment.split(|&b| b == b';').next().unwrap_or_default())
            .any(|segment| segment == b"." || segment == b"..");
        if dotted {
            return Some(Unsafe::Dot);
        }
        // Plain ASCII without `%` decodes to itself: the common case, with no allocation.
        if !text.contains(&b'%') && text.is_ascii() {
            return None;
        }
        let decoded = decode_once(&text);
        if decoded[..] == text[..] {
            return None;
        }
        if layer == LAYERS {
            return Some(Unsafe::Dot);
        }
        text = Cow::Owned(decoded);
    }
    None
}

/// One layer of percent-decoding as lenient servers do it: `%XX`, IIS's `%uXXXX`, and the
/// overlong UTF-8 forms of `.`, `/` and `\`.
pub fn decode_once(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            if let (Some(Some(h)), Some(Some(l))) = (text.get(i + 1).map(|&b| hex(b)), text.get(i + 2).map(|&b| hex(b)))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            if matches!(text.get(i + 1), Some(b'u' | b'U'))
                && let Some(code) = text
                    .get(i + 2..i + 6)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
            {
                let mut buf = [0u8; 4];
                out.extend_from_slice(code.encode_utf8(&mut buf).as_bytes());
                i += 6;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    // Overlong encodings, which a lax UTF-8 decoder reads as the ASCII character.
    for (overlong, ascii) in [
        (&[0xc0, 0xae][..], b'.'),
        (&[0xe0, 0x80, 0xae][..], b'.'),
        (&[0xc0, 0xaf][..], b'/'),
        (&[0xe0, 0x80, 0xaf][..], b'/'),
        (&[0xc1, 0x9c][..], b'\\'),
        (&[0xc0, 0x80][..], 0),
    ] {
        while let Some(at) = out.windows(overlong.len()).position(|w| w == overlong) {
            out.splice(at..at + overlong.len(), [ascii]);
        }
    }
    out
}

/// Whether a grant limited to `prefix` lets `path` through: the path is safe
/// ([`unsafe_part`]) and under the prefix ([`under`]). What the data plane decides.
pub fn admits(prefix: &str, path: &str) -> bool {
    unsafe_part(path).is_none() && under(prefix, path)
}

/// The property [`admits`] must have, for the property test and the fuzz target: however
/// many times an upstream decodes an admitted path (up to one layer more than credgate looks
/// through), reading `\` as `/`, dropping `;parameters` and resolving dot segments, it stays
/// under the prefix.
pub fn stays_under(prefix: &str, path: &str) -> bool {
    let want: Vec<String> = segments(prefix.as_bytes());
    let mut text = path.as_bytes().to_vec();
    for _ in 0..=LAYERS + 1 {
        let got = segments(&text);
        if got.len() < want.len() || got[..want.len()] != want[..] {
            return false;
        }
        text = decode_once(&text);
    }
    true
}

/// Whether any server could read `path` as under `prefix`: the reverse of [`admits`], for
/// rules that hold a call (an approval) rather than let it through, where a reading missed is a
/// way around. True if the path is under the prefix as sent, or as a lenient server reads it
/// after any number of decoding layers up to one more than credgate looks through (`\` as `/`,
/// `;parameters` dropped, empty and dot segments resolved), in any ASCII case.
pub fn reaches(prefix: &str, path: &str) -> bool {
    if under(prefix, path) {
        return true;
    }
    let lower =
        |segments: Vec<String>| -> Vec<String> { segments.into_iter().map(|s| s.to_ascii_lowercase()).collect() };
    let want = lower(segments(prefix.as_bytes()));
    let mut text = path.as_bytes().to_vec();
    for _ in 0..=LAYERS + 1 {
        let got = lower(segments(&text));
        if got.len() >= want.len() && got[..want.len()] == want[..] {
            return true;
        }
        text = decode_once(&text);
    }
    false
}

/// Path segments as a lenient server reads them: `\` as `/`, `;parameters` dropped, dot
/// segments resolved, each in RFC 3986 normal form. A trailing empty segment is dropped, so
/// a prefix `/a/` is the segments `[a]`.
fn segments(path: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(path);
    let mut out: Vec<String> = Vec::new();
    for raw in text.split(['/', '\\']) {
        let segment = raw.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(normalize(s).into_owned()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_prefix_is_reached_however_a_server_reads_the_path() {
        for path in [
            "/v1/refunds",
            "/v1/refunds/re_1",
            "/v1/refunds;x=1",
            "/v1//refunds",
            "/v1%2Frefunds",
            "/v1%252Frefunds",
            "/V1/Refunds",
            "/v1/%72efunds",
            "/v1\\refunds",
        ] {
            assert!(reaches("/v1/refunds", path), "{path}");
        }
        for path in ["/v1/refundsx", "/v1/charges", "/v2/refunds", "/refunds"] {
            assert!(!reaches("/v1/refunds", path), "{path}");
        }
    }

    #[test]
    fn escapes_in_any_encoding_are_refused() {
        for bad in [
            "../admin",
            "a/%2e%2e/b",
            "a/%2E%2e%2fadmin",
            "a/%252e%252e/b",
            "a/..;/admin",
            "a/..;x=1/admin",
            "a/%2e%2e;/admin",
            "a/%u002e%u002e/b",
            "a/%c0%ae%c0%ae/b",
            "./x",
            "a\\b",
            "a/..%5cadmin",
            "a/..%00/admin",
            "a/%255c",
            "a/x%25252525252e",
        ] {
            assert!(unsafe_part(bad).is_some(), "{bad}");
        }
        for good in [
            "a/group%2Fproject",
            "a/100%.txt",
            "a/100%25.txt",
            "a/..x/b",
            "a/.well-known",
            "a/x;v=1",
        ] {
            assert_eq!(unsafe_part(good), None, "{good}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// For any path admitted under a prefix, every decoding of it stays under the prefix.
        #[test]
        fn admitted_paths_stay_under_their_prefix(
            tail in proptest::collection::vec(
                proptest::sample::select(vec![
                    "/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "\\", "%25", "%00", ";", ";x=1",
                    "a", "v1", "api", "%u002e", "%U002F", "%c0%ae", "%c0%af", "%e0%80%ae", "%252e", "%2525", "%",
                    "%7e", "~", "%61", "%3b",
                ]),
                0..12,
            ),
            from_root in proptest::bool::ANY,
        ) {
            let prefix = "/api/v1/";
            let path = if from_root { format!("/{}", tail.concat()) } else { format!("{prefix}{}", tail.concat()) };
            if admits(prefix, &path) {
                proptest::prop_assert!(stays_under(prefix, &path), "{path} escapes {prefix}");
            }
        }
    }

    #[test]
    fn the_oracle_sees_escapes() {
        assert!(stays_under("/api/v1/", "/api/v1/x%2Fy"));
        assert!(!stays_under("/api/v1/", "/api/v1/%2e%2e/%2e%2e/admin"));
        assert!(!stays_under("/api/v1/", "/api/v1/..;/..;/admin"));
        assert!(!admits("/api/v1/", "/api/v1/..;/..;/admin"));
        assert!(admits("/api/v1/", "/api/v%31/x"));
    }
}
