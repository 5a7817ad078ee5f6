//! The upstream URL of a call: the bytes of the path and query the app sent, and the parsed
//! URL the checks and the injector look at, kept in step.
//!
//! The upstream receives the path and query exactly as the app wrote them (`group%2Fproject`
//! stays one segment, `100%25.txt` stays encoded, `flag` stays without `=`), except for the
//! pairs credgate removes or adds. Paths that an upstream could read as climbing out of a
//! grant's prefix are refused, not resolved: see [`check_path`].

use http::HeaderMap;
use url::Url;

use crate::error::ApiError;

pub const GRANT_HEADER: &str = "x-credgate-grant";
pub const TARGET_HEADER: &str = "x-credgate-target";

/// Where a call goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Scheme, host and port, with the path and query below (as `url` spells them): what the
    /// destination checks and the injector see.
    pub url: Url,
    /// The path as sent.
    pub path: String,
    /// The query as sent, less what credgate removed, plus what it added.
    pub query: Option<String>,
}

impl Target {
    fn new(mut url: Url, path: String, query: Option<String>) -> Result<Self, ApiError> {
        check_path(&path)?;
        url.set_fragment(None);
        url.set_path(&path);
        let mut target = Self { url, path, query: None };
        target.set_query(query);
        Ok(target)
    }

    pub fn set_query(&mut self, query: Option<String>) {
        let query = query.filter(|q| !q.is_empty());
        self.url.set_query(query.as_deref());
        self.query = query;
    }

    /// The request target for the upstream, built from the bytes as sent.
    pub fn uri(&self) -> Result<http::Uri, ApiError> {
        let authority = &self.url[url::Position::BeforeHost..url::Position::AfterPort];
        let mut text = format!("{}://{authority}{}", self.url.scheme(), self.path);
        if let Some(query) = &self.query {
            text.push('?');
            text.push_str(query);
        }
        text.parse()
            .map_err(|_| ApiError::bad_request("the target URL cannot be sent as an HTTP request"))
    }
}

/// The raw query of the explicit target, so the app key can be found in it before anything
/// else is parsed.
pub fn explicit_query(headers: &HeaderMap) -> Option<String> {
    let text = headers.get(TARGET_HEADER)?.to_str().ok()?;
    let text = text.trim().split('#').next().unwrap_or_default();
    text.split_once('?').map(|(_, q)| q.to_owned())
}

/// Explicit mode: the absolute URL in `X-Credgate-Target`, with `query` (its query, already
/// rid of any app key) in place of its own.
pub fn explicit(headers: &HeaderMap, query: Option<String>) -> Result<Target, ApiError> {
    let text = headers
        .get(TARGET_HEADER)
        .ok_or_else(|| ApiError::bad_request("missing X-Credgate-Target: the absolute URL to call"))?
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Credgate-Target must be a plain-text URL"))?;
    // A fragment never goes on the wire.
    let text = text.trim().split('#').next().unwrap_or_default();
    let url = Url::parse(text)
        .map_err(|e| ApiError::bad_request(format!("X-Credgate-Target is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("X-Credgate-Target must be an http(s) URL"));
    }
    let raw: http::Uri = text
        .parse()
        .map_err(|_| ApiError::bad_request("X-Credgate-Target is not a valid request URL"))?;
    let path = match raw.path() {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    Target::new(url, path, query)
}

/// Base-URL mode: the secret's base URL, then the path after the grant id as sent, then the
/// query.
pub fn base_url(base: &Url, path: &str, query: Option<String>) -> Result<Target, ApiError> {
    check_path(path)?;
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path.trim_start_matches('/'));
    Target::new(base.clone(), joined, query)
}

/// The path an S3 `x-amz-copy-source` names (`bucket/key` or `/bucket/key`, URL-encoded,
/// perhaps with `?versionId=`), as S3 reads it: decoded, in path style. Checked like a
/// request's own path.
pub fn copy_source_path(value: &[u8]) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("x-amz-copy-source must name an object as `bucket/key`");
    let text = std::str::from_utf8(value).map_err(|_| bad())?.trim();
    let source = text.split('?').next().unwrap_or_default();
    check_path(source)?;
    let decoded = String::from_utf8(decode_once(source.as_bytes())).map_err(|_| bad())?;
    let path = format!("/{}", decoded.trim_start_matches('/'));
    check_path(&path)?;
    Ok(path)
}

/// Refuses a path that an upstream could read as climbing out of where it seems to go: a
/// `.` or `..` segment in any encoding (`%2e%2e`, `%252e`, `%u002e`, overlong `%c0%ae`), with
/// or without `;parameters` (Tomcat, Spring and Jetty read `..;` as `..`), and a backslash or
/// NUL in any encoding (servers that read `\` as `/`, or stop at NUL). Each layer of
/// percent-encoding is decoded in turn, so a server that decodes twice is covered too.
pub fn check_path(raw: &str) -> Result<(), ApiError> {
    match unsafe_part(raw) {
        None => Ok(()),
        Some(Unsafe::Dot) => Err(ApiError::bad_request(
            "the path must not contain `.` or `..` segments, in any encoding",
        )),
        Some(Unsafe::Separator) => Err(ApiError::bad_request(
            "the path must not contain a backslash or NUL, in any encoding",
        )),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Unsafe {
    Dot,
    Separator,
}

/// How many layers of encoding are looked through. Beyond this a path is refused outright if
/// it still changes when decoded: no real client encodes a path five times.
const LAYERS: usize = 4;

pub fn unsafe_part(raw: &str) -> Option<Unsafe> {
    let mut text = raw.as_bytes().to_vec();
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
        let decoded = decode_once(&text);
        if decoded == text {
            return None;
        }
        if layer == LAYERS {
            return Some(Unsafe::Dot);
        }
        text = decoded;
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
        while let Some(at) = memchr::memmem::find(&out, overlong) {
            out.splice(at..at + overlong.len(), [ascii]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_base_path_and_query_as_sent() {
        let base = Url::parse("https://api.openai.com/v1").unwrap();
        let t = base_url(&base, "chat/completions", Some("a=1".into())).unwrap();
        assert_eq!(t.uri().unwrap(), "https://api.openai.com/v1/chat/completions?a=1");
        let base = Url::parse("https://api.example.com/").unwrap();
        assert_eq!(
            base_url(&base, "", None).unwrap().uri().unwrap(),
            "https://api.example.com/"
        );
        let t = base_url(
            &base,
            "x/a%2Fb/100%25.txt/a%3Bb",
            Some("a=%2F%20b&flag&lower=%2f".into()),
        )
        .unwrap();
        assert_eq!(
            t.uri().unwrap(),
            "https://api.example.com/x/a%2Fb/100%25.txt/a%3Bb?a=%2F%20b&flag&lower=%2f"
        );
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

    #[test]
    fn explicit_targets_keep_their_bytes() {
        let mut h = HeaderMap::new();
        assert!(explicit(&h, None).is_err());
        h.insert(
            TARGET_HEADER,
            "https://api.example.com/a/x%2Fy?x=1#frag".parse().unwrap(),
        );
        assert_eq!(explicit_query(&h).as_deref(), Some("x=1"));
        let t = explicit(&h, Some("x=1".into())).unwrap();
        assert_eq!(t.uri().unwrap(), "https://api.example.com/a/x%2Fy?x=1");
        h.insert(TARGET_HEADER, "https://api.example.com/a/../b".parse().unwrap());
        assert!(explicit(&h, None).is_err());
        h.insert(TARGET_HEADER, "https://api.example.com".parse().unwrap());
        assert_eq!(explicit(&h, None).unwrap().uri().unwrap(), "https://api.example.com/");
        h.insert(TARGET_HEADER, "ftp://x/".parse().unwrap());
        assert!(explicit(&h, None).is_err());
        h.insert(TARGET_HEADER, "/relative".parse().unwrap());
        assert!(explicit(&h, None).is_err());
    }
}
