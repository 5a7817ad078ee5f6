//! The rules every injected header and query parameter must pass, native or Wasm, and that a
//! secret's configured header and parameter names are checked against when it is created. A
//! leaf, below both the injectors and the vault.
//!
//! An injector decides *what* to add; these rules decide whether it may. They stop a
//! credential value (or a hostile template) from smuggling a second request line (CR/LF),
//! rewriting the request's framing (`content-length`, `transfer-encoding`), its destination
//! (`host`, `x-forwarded-*`) or its session (`cookie`).

/// Header names no injection may set or remove.
const FORBIDDEN: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "cookie",
    "set-cookie",
    "forwarded",
    "via",
];

/// Forbidden as prefixes: proxy credentials, forwarding metadata and credgate's own headers.
const FORBIDDEN_PREFIXES: &[&str] = &["proxy-", "x-forwarded-", "x-credgate-", ":"];

pub const MAX_HEADER_NAME_LEN: usize = 128;
pub const MAX_HEADER_VALUE_LEN: usize = 16 * 1024;
pub const MAX_EDITS: usize = 32;
/// Bound on the bytes of all injected headers and query parameters together.
pub const MAX_TOTAL_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("header name `{0}` is not a valid token")]
    BadName(String),
    #[error("header `{0}` may not be set by an injection")]
    ForbiddenName(String),
    #[error("the value for `{0}` contains CR, LF or NUL")]
    ControlCharacter(String),
    #[error("the value for `{0}` is longer than {MAX_HEADER_VALUE_LEN} bytes")]
    TooLong(String),
    #[error("an injection may make at most {MAX_EDITS} edits")]
    TooMany,
    #[error("injected headers and parameters exceed {MAX_TOTAL_BYTES} bytes")]
    TooLarge,
    #[error("query parameter name `{0}` is not valid")]
    BadParam(String),
}

impl EditError {
    /// The rule that was broken, without the name: a name may have been built from the
    /// credential by a hostile plugin.
    pub fn summary(&self) -> &'static str {
        match self {
            Self::BadName(_) => "the injection produced a header name that is not a valid token",
            Self::ForbiddenName(_) => {
                "the injection touched a header no injection may set (host, content-length, cookie, proxy-*, …)"
            }
            Self::ControlCharacter(_) => "the injection produced a value with CR, LF or NUL",
            Self::TooLong(_) => "the injection produced a value longer than 16 KiB",
            Self::TooMany => "the injection made more than 32 edits",
            Self::TooLarge => "the injected headers and parameters exceed 32 KiB",
            Self::BadParam(_) => "the injection produced an invalid query parameter name",
        }
    }
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header name an injection may touch (compared case-insensitively).
pub fn check_header_name(name: &str) -> Result<(), EditError> {
    if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN || !name.bytes().all(is_tchar) {
        return Err(EditError::BadName(shorten(name)));
    }
    let lower = name.to_ascii_lowercase();
    if FORBIDDEN.contains(&lower.as_str()) || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(EditError::ForbiddenName(lower));
    }
    Ok(())
}

/// A value that can go on the wire as one header line. `name` is only for the message: the
/// value itself is never quoted in an error, since it usually holds the credential.
pub fn check_header_value(name: &str, value: &[u8]) -> Result<(), EditError> {
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(EditError::TooLong(shorten(name)));
    }
    // Visible ASCII, space, tab and obs-text are what HTTP allows; CR, LF and NUL are what
    // smuggling needs, and other controls have no business in a credential header.
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(EditError::ControlCharacter(shorten(name)));
    }
    Ok(())
}

/// A query parameter name: non-empty, bounded, no characters that would need escaping to
/// mean what they say.
pub fn check_param_name(name: &str) -> Result<(), EditError> {
    if name.is_empty()
        || name.len() > MAX_HEADER_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~[]".contains(&b))
    {
        return Err(EditError::BadParam(shorten(name)));
    }
    Ok(())
}

pub fn check_param_value(name: &str, value: &[u8]) -> Result<(), EditError> {
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(EditError::TooLong(shorten(name)));
    }
    if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(EditError::ControlCharacter(shorten(name)));
    }
    Ok(())
}

fn shorten(name: &str) -> String {
    name.chars().take(64).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["authorization", "X-Api-Key", "dd-api-key", "anthropic-version"] {
            check_header_name(ok).unwrap();
        }
        for bad in ["", "bad name", "x:y", "x\r\ny", "ünï"] {
            assert!(matches!(check_header_name(bad), Err(EditError::BadName(_))), "{bad}");
        }
        for forbidden in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "cookie",
            "Proxy-Authorization",
            "x-forwarded-for",
            "X-Credgate-Grant",
        ] {
            assert!(
                matches!(check_header_name(forbidden), Err(EditError::ForbiddenName(_))),
                "{forbidden}"
            );
        }
    }

    #[test]
    fn values() {
        check_header_value("a", b"Bearer abc\tdef").unwrap();
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"a\x7fb"] {
            assert!(matches!(
                check_header_value("a", bad),
                Err(EditError::ControlCharacter(_))
            ));
        }
        let big = vec![b'a'; MAX_HEADER_VALUE_LEN + 1];
        assert!(matches!(check_header_value("a", &big), Err(EditError::TooLong(_))));
    }

    #[test]
    fn errors_never_quote_values() {
        let err = check_header_value("authorization", b"secret-canary\r\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("canary"));
    }
}
