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
use crate::vault::path::{Unsafe, decode_once, unsafe_part};

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
    absolute(text, query)
}

/// An absolute URL as sent (its own query replaced by `query`): the explicit target, or the
/// target of a call held for approval.
pub fn absolute(text: &str, query: Option<String>) -> Result<Target, ApiError> {
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

/// Forward-proxy mode: the tunnel's scheme, host and port, and the request's own path (an
/// absolute-form request names the same host: the tunnel was opened for it).
pub fn forward(scheme: &str, host: &str, port: u16, path: &str, query: Option<String>) -> Result<Target, ApiError> {
    let host_text = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let url = Url::parse(&format!("{scheme}://{host_text}:{port}/"))
        .map_err(|_| ApiError::bad_request("the proxy target is not a valid URL"))?;
    let path = if path.is_empty() { "/" } else { path };
    Target::new(url, path.to_owned(), query)
}

/// Base-URL mode: the secret's base URL, then the path after the grant id as sent, then the
/// query.
pub fn base_url(base: &Url, path: &str, query: Option<String>) -> Result<Target, ApiError> {
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

/// Refuses a path that an upstream could read as climbing out of where it seems to go (see
/// [`crate::vault::path`]), in credgate's error shape.
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
