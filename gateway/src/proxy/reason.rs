//! What the app says about its call: `X-Credgate-Reason` (why, in its own words) and
//! `X-Credgate-Context` (a JSON object of its own: a ticket, a task, a user). Both go into the
//! call's audit record and, for a call that waits for approval, before the operator who
//! decides; neither is forwarded (no `X-Credgate-*` header is).
//!
//! Read after authentication, so that only a known caller's words reach the audit trail.

use http::HeaderMap;
use serde_json::{Map, Value};

use super::call::{Call, Failure, refuse};
use crate::error::ErrorCode;

pub const REASON_HEADER: &str = "x-credgate-reason";
pub const CONTEXT_HEADER: &str = "x-credgate-context";
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 256;
/// Largest context, in bytes of JSON as sent.
pub const MAX_CONTEXT_BYTES: usize = 4096;

/// The phase: validates both headers and records them in the call's event.
pub fn read(call: &mut Call, caller: &HeaderMap) -> Result<(), Failure> {
    let (reason, context) = parse(caller).map_err(|message| refuse(ErrorCode::BadRequest, message))?;
    call.event.reason = reason;
    call.event.context = context;
    Ok(())
}

/// What the app says about its call: why, and a JSON object of its own.
pub type Annotation = (Option<String>, Option<Map<String, Value>>);

/// The reason and context a request carries; an error message naming the header at fault.
pub fn parse(caller: &HeaderMap) -> Result<Annotation, String> {
    Ok((reason(caller)?, context(caller)?))
}

fn one<'a>(caller: &'a HeaderMap, name: &str) -> Result<Option<&'a [u8]>, String> {
    let mut values = caller.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("send {name} once"));
    }
    Ok(first.map(|v| v.as_bytes()))
}

/// Whether `text` holds something shaped like a credgate app key or admin token: the audit
/// trail would keep it, so such a reason or context is refused rather than recorded.
fn holds_a_token(text: &str) -> bool {
    text.contains("cg_app_") || text.contains("cg_adm_")
}

fn reason(caller: &HeaderMap) -> Result<Option<String>, String> {
    let Some(bytes) = one(caller, REASON_HEADER)? else {
        return Ok(None);
    };
    // Header values are bytes; a reason in any language arrives as UTF-8.
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("{REASON_HEADER} must be UTF-8 text"))?
        .trim();
    if text.chars().any(char::is_control) {
        return Err(format!("{REASON_HEADER} must be one line of text"));
    }
    if holds_a_token(text) {
        return Err(format!("{REASON_HEADER} must not carry a credgate key"));
    }
    let chars = text.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(format!(
            "{REASON_HEADER} is {chars} characters long; at most {MAX_REASON_CHARS}"
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn context(caller: &HeaderMap) -> Result<Option<Map<String, Value>>, String> {
    let Some(bytes) = one(caller, CONTEXT_HEADER)? else {
        return Ok(None);
    };
    if bytes.len() > MAX_CONTEXT_BYTES {
        return Err(format!(
            "{CONTEXT_HEADER} is {} bytes long; at most {MAX_CONTEXT_BYTES}",
            bytes.len()
        ));
    }
    if holds_a_token(&String::from_utf8_lossy(bytes)) {
        return Err(format!("{CONTEXT_HEADER} must not carry a credgate key"));
    }
    // The parser's own message is left out: it can quote the input.
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok((!map.is_empty()).then_some(map)),
        Ok(_) => Err(format!("{CONTEXT_HEADER} must be a JSON object")),
        Err(_) => Err(format!("{CONTEXT_HEADER} is not valid JSON")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        h
    }

    #[test]
    fn accepted() {
        let h = headers(&[
            (REASON_HEADER, "  résumé the ticket's refund  ".as_bytes()),
            (CONTEXT_HEADER, br#"{"ticket": "T-1", "attempt": 2}"#),
        ]);
        let (reason, context) = parse(&h).unwrap();
        assert_eq!(reason.as_deref(), Some("résumé the ticket's refund"));
        let context = context.unwrap();
        assert_eq!(context["ticket"], "T-1");
        assert_eq!(context["attempt"], 2);
        assert_eq!(parse(&HeaderMap::new()).unwrap(), (None, None));
    }

    #[test]
    fn refused() {
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        let big = format!(r#"{{"k": "{}"}}"#, "y".repeat(MAX_CONTEXT_BYTES));
        for (name, value, says) in [
            (REASON_HEADER, long.as_bytes(), "at most 256"),
            (REASON_HEADER, b"\xff\xfe".as_slice(), "UTF-8"),
            (REASON_HEADER, b"a\tb".as_slice(), "one line"),
            (CONTEXT_HEADER, big.as_bytes(), "at most 4096"),
            (CONTEXT_HEADER, b"[1, 2]".as_slice(), "JSON object"),
            (CONTEXT_HEADER, br#"{"canary-value"#.as_slice(), "not valid JSON"),
            (REASON_HEADER, b"see cg_app_abc".as_slice(), "credgate key"),
            (CONTEXT_HEADER, br#"{"k": "cg_adm_x"}"#.as_slice(), "credgate key"),
        ] {
            let message = parse(&headers(&[(name, value)])).unwrap_err();
            assert!(message.contains(says) && message.contains(name), "{message}");
            assert!(!message.contains("canary"), "the input is never quoted: {message}");
        }
        let twice = headers(&[(REASON_HEADER, b"a"), (REASON_HEADER, b"b")]);
        assert!(parse(&twice).unwrap_err().contains("once"));
    }
}
