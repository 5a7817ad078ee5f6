//! Which headers cross credgate, each way.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// Hop-by-hop headers (RFC 9110 §7.6.1) and others that describe one connection, not the
/// message: never forwarded in either direction.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

fn is_hop_by_hop(name: &HeaderName, listed_in_connection: &[String]) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(name)
        || n == "keep-alive"
        || n == "proxy-connection"
        || n.starts_with("proxy-")
        || listed_in_connection.iter().any(|c| c == n)
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Headers that ask a server to run another method than the request line's. Where the
/// upstream honours them, the method they name must be one the grant allows.
pub const METHOD_OVERRIDES: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// S3's copy source: the object a `CopyObject` or `UploadPartCopy` reads.
pub const COPY_SOURCE: HeaderName = HeaderName::from_static("x-amz-copy-source");

/// Headers that ask a server (IIS, Symfony, some Spring setups) to route by another path or
/// method than the request line's: a way around a grant's path limits, never forwarded.
const REROUTES: &[&str] = &["x-original-url", "x-rewrite-url", "x-original-method"];

/// Whether a cookie is one of credgate's own (the portal's session and sign-in, whatever
/// prefix they carry). A browser sends them with any request to credgate's origin, a
/// data-plane link included; they must never reach an upstream, nor an upstream set them.
fn is_credgate_cookie(name: &str) -> bool {
    name.trim().to_ascii_lowercase().contains("credgate_")
}

/// A `Cookie` header without credgate's own cookies (`None` when nothing is left).
fn without_credgate_cookies(value: &HeaderValue) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let kept: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !is_credgate_cookie(pair.split('=').next().unwrap_or_default()))
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join("; ")).ok()
}

/// The caller's headers that may go upstream: no hop-by-hop, no `Proxy-*`, none of
/// credgate's own `X-Credgate-*` or cookies, no `Host` (set from the target URL), no `Expect`
/// (between the caller and credgate), no `Content-Length` (the body carries its own length).
pub fn to_upstream(incoming: &HeaderMap) -> HeaderMap {
    let listed = connection_tokens(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        let n = name.as_str();
        if is_hop_by_hop(name, &listed)
            || n.starts_with("x-credgate-")
            || name == header::HOST
            || name == header::EXPECT
            || name == header::CONTENT_LENGTH
            || REROUTES.contains(&n)
        {
            continue;
        }
        if name == header::COOKIE {
            if let Some(kept) = without_credgate_cookies(value) {
                out.append(name.clone(), kept);
            }
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Every data-plane response, the upstream's or credgate's own, is served on the origin of
/// the portal and admin API. The upstream's content must not run there: `sandbox` makes a
/// browser treat it as a unique origin with no script, and `nosniff` stops a JSON or text
/// body being read as HTML. Appended, so an upstream's own policy still applies as well.
pub fn contain(headers: &mut HeaderMap) {
    headers.append(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// The upstream's headers that go back to the caller: all but hop-by-hop ones, any
/// `X-Credgate-*` an upstream might send to pass itself off as credgate, and any cookie it
/// would set under the name of credgate's own (in a browser, on credgate's origin: a forged
/// sign-in or a session pushed aside).
pub fn to_caller(upstream: &HeaderMap) -> HeaderMap {
    let listed = connection_tokens(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if is_hop_by_hop(name, &listed) || name.as_str().starts_with("x-credgate-") {
            continue;
        }
        if name == header::SET_COOKIE
            && is_credgate_cookie(
                value
                    .to_str()
                    .unwrap_or("credgate_")
                    .split('=')
                    .next()
                    .unwrap_or_default(),
            )
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credgates_own_cookies_neither_leave_nor_come_back() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-credgate_session=s3cr3t; app=1; CREDGATE_signin=x"),
        );
        assert_eq!(to_upstream(&h).get(header::COOKIE).unwrap(), "app=1");
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-credgate_session=s3cr3t"),
        );
        assert!(to_upstream(&h).get(header::COOKIE).is_none());
        let mut up = HeaderMap::new();
        up.append(
            header::SET_COOKIE,
            HeaderValue::from_static("__Secure-credgate_signin=evil; Path=/portal/oidc"),
        );
        up.append(
            header::SET_COOKIE,
            HeaderValue::from_static("credgate_session=junk; Path=/admin/v1"),
        );
        up.append(header::SET_COOKIE, HeaderValue::from_static("upstream=1; Path=/"));
        let back = to_caller(&up);
        assert_eq!(back.get_all(header::SET_COOKIE).iter().count(), 1);
        assert_eq!(back.get(header::SET_COOKIE).unwrap(), "upstream=1; Path=/");
    }

    #[test]
    fn strips_what_is_not_end_to_end() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-custom-hop"),
            ("x-custom-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Bearer app"),
            ("x-credgate-grant", "g"),
            ("x-credgate-target", "t"),
            ("host", "credgate"),
            ("expect", "100-continue"),
            ("transfer-encoding", "chunked"),
            ("content-length", "5"),
            ("content-type", "application/json"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-original-method", "DELETE"),
            ("x-request-id", "abc"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let out = to_upstream(&h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "x-request-id"]);
        let mut up = HeaderMap::new();
        up.append("x-credgate-error", HeaderValue::from_static("fake"));
        up.append("content-length", HeaderValue::from_static("2"));
        up.append("transfer-encoding", HeaderValue::from_static("chunked"));
        let back = to_caller(&up);
        assert_eq!(
            back.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["content-length"]
        );
    }
}
