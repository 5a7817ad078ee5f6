//! The upstream URL of a call.

use http::HeaderMap;
use url::Url;

use crate::error::ApiError;

pub const GRANT_HEADER: &str = "x-credgate-grant";
pub const TARGET_HEADER: &str = "x-credgate-target";

/// Explicit mode: the absolute URL in `X-Credgate-Target`. Parsing resolves dot segments
/// (plain and percent-encoded), so the path the policy sees is the path the upstream gets.
pub fn explicit(headers: &HeaderMap) -> Result<Url, ApiError> {
    let text = headers
        .get(TARGET_HEADER)
        .ok_or_else(|| ApiError::bad_request("missing X-Credgate-Target: the absolute URL to call"))?
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Credgate-Target must be a plain-text URL"))?;
    let mut url = Url::parse(text.trim())
        .map_err(|e| ApiError::bad_request(format!("X-Credgate-Target is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("X-Credgate-Target must be an http(s) URL"));
    }
    url.set_fragment(None);
    Ok(url)
}

/// Base-URL mode: the secret's base URL, then the path after the grant id, then the query.
/// Dot segments are refused rather than resolved: they could only climb out of the base path.
pub fn base_url(base: &Url, path: &str, query: Option<&str>) -> Result<Url, ApiError> {
    for segment in path.split('/') {
        let lower = segment.to_ascii_lowercase();
        if matches!(lower.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.") {
            return Err(ApiError::bad_request("the path must not contain `.` or `..` segments"));
        }
        if lower.contains("%2f") || lower.contains("%5c") || segment.contains('\\') {
            return Err(ApiError::bad_request(
                "the path must not contain encoded slashes or backslashes",
            ));
        }
    }
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path.trim_start_matches('/'));
    url.set_path(&joined);
    url.set_query(query.filter(|q| !q.is_empty()));
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_base_path_and_query() {
        let base = Url::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            base_url(&base, "chat/completions", Some("a=1")).unwrap().as_str(),
            "https://api.openai.com/v1/chat/completions?a=1"
        );
        let base = Url::parse("https://api.example.com/").unwrap();
        assert_eq!(base_url(&base, "", None).unwrap().as_str(), "https://api.example.com/");
        assert_eq!(
            base_url(&base, "x/", None).unwrap().as_str(),
            "https://api.example.com/x/"
        );
        for bad in ["../admin", "a/%2e%2e/b", "a/%2F/b", "a\\b", "./x"] {
            assert!(base_url(&base, bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn explicit_targets() {
        let mut h = HeaderMap::new();
        assert!(explicit(&h).is_err());
        h.insert(
            TARGET_HEADER,
            "https://api.example.com/a/../b/%2e%2e/c?x=1#frag".parse().unwrap(),
        );
        assert_eq!(explicit(&h).unwrap().as_str(), "https://api.example.com/c?x=1");
        h.insert(TARGET_HEADER, "ftp://x/".parse().unwrap());
        assert!(explicit(&h).is_err());
        h.insert(TARGET_HEADER, "/relative".parse().unwrap());
        assert!(explicit(&h).is_err());
    }
}
