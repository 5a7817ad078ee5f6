//! The request a held call will make, and the response it got: what is sealed in the
//! approval's row, and a preview of the body for the operator who decides.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{REQUEST_SEAL, RESPONSE_SEAL};
use crate::crypto::{CryptoError, KeyRing, SealedValue, open_value, seal_value};
use crate::redact::SecretBytes;

/// The held request: the target as the call would reach it (app key removed, nothing injected)
/// and the headers and body the app sent. Injection happens when it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRequest {
    pub method: String,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The upstream's answer, kept for the app. A body over the keeping limit is cut there and
/// marked `truncated`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub truncated: bool,
}

/// Both, as sealed: header values and bodies in base64, so bytes that are not UTF-8 survive.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: String,
    #[serde(default)]
    truncated: bool,
}

fn headers_out(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), STANDARD.encode(value.as_bytes())))
        .collect()
}

fn headers_in(pairs: Vec<(String, String)>) -> Result<HeaderMap, CryptoError> {
    let corrupt = || CryptoError::Malformed;
    let mut out = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let bytes = STANDARD.decode(value).map_err(|_| corrupt())?;
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| corrupt())?;
        let mut value = HeaderValue::from_bytes(&bytes).map_err(|_| corrupt())?;
        value.set_sensitive(true);
        out.append(name, value);
    }
    Ok(out)
}

fn seal(ring: &KeyRing, id: Uuid, part: i64, wire: &Wire) -> Result<SealedValue, CryptoError> {
    let plain = SecretBytes::new(serde_json::to_vec(wire).map_err(|_| CryptoError::Malformed)?);
    seal_value(ring, &id.to_string(), part, &plain)
}

fn open(ring: &KeyRing, id: Uuid, part: i64, sealed: &SealedValue) -> Result<Wire, CryptoError> {
    let plain = open_value(ring, &id.to_string(), part, sealed)?;
    serde_json::from_slice(plain.expose()).map_err(|_| CryptoError::Malformed)
}

impl HeldRequest {
    pub fn seal(&self, ring: &KeyRing, approval: Uuid) -> Result<SealedValue, CryptoError> {
        let wire = Wire {
            method: Some(self.method.clone()),
            url: Some(self.url.clone()),
            status: None,
            headers: headers_out(&self.headers),
            body: STANDARD.encode(&self.body),
            truncated: false,
        };
        seal(ring, approval, REQUEST_SEAL, &wire)
    }

    pub fn open(ring: &KeyRing, approval: Uuid, sealed: &SealedValue) -> Result<Self, CryptoError> {
        let wire = open(ring, approval, REQUEST_SEAL, sealed)?;
        let corrupt = || CryptoError::Malformed;
        Ok(Self {
            method: wire.method.ok_or_else(corrupt)?,
            url: wire.url.ok_or_else(corrupt)?,
            headers: headers_in(wire.headers)?,
            body: STANDARD.decode(wire.body).map_err(|_| corrupt())?,
        })
    }
}

impl HeldResponse {
    pub fn seal(&self, ring: &KeyRing, approval: Uuid) -> Result<SealedValue, CryptoError> {
        let wire = Wire {
            method: None,
            url: None,
            status: Some(self.status),
            headers: headers_out(&self.headers),
            body: STANDARD.encode(&self.body),
            truncated: self.truncated,
        };
        seal(ring, approval, RESPONSE_SEAL, &wire)
    }

    pub fn open(ring: &KeyRing, approval: Uuid, sealed: &SealedValue) -> Result<Self, CryptoError> {
        let wire = open(ring, approval, RESPONSE_SEAL, sealed)?;
        let corrupt = || CryptoError::Malformed;
        Ok(Self {
            status: wire.status.ok_or_else(corrupt)?,
            headers: headers_in(wire.headers)?,
            body: STANDARD.decode(wire.body).map_err(|_| corrupt())?,
            truncated: wire.truncated,
        })
    }
}

/// Most bytes of a body shown to the operator deciding.
pub const PREVIEW_BYTES: usize = 2048;

/// The start of a body as the operator sees it: text as text (cut at a character boundary),
/// anything else as a note of its size.
pub fn preview(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let head = &body[..body.len().min(PREVIEW_BYTES)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A character cut by the limit: keep what is whole.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
        Err(_) => return format!("({} bytes, not text)", body.len()),
    };
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return format!("({} bytes, not text)", body.len());
    }
    if body.len() > head.len() {
        format!("{text}… ({} bytes in all)", body.len())
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyRingSource, MasterKey};

    fn ring() -> KeyRing {
        let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        KeyRing::new(vec![MasterKey::from_base64(&key).unwrap()], KeyRingSource::Memory).unwrap()
    }

    #[test]
    fn a_held_call_round_trips_sealed_and_only_under_its_own_id() {
        let ring = ring();
        let id = Uuid::new_v4();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-bytes", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let request = HeldRequest {
            method: "POST".into(),
            url: "https://api.example.com/v1/refunds?x=1".into(),
            headers,
            body: b"{\"amount\": 100, \"canary\": \"app-data\"}".to_vec(),
        };
        let sealed = request.seal(&ring, id).unwrap();
        assert!(
            !sealed.ciphertext.windows(8).any(|w| w == b"app-data"),
            "sealed, not encoded"
        );
        assert_eq!(HeldRequest::open(&ring, id, &sealed).unwrap(), request);
        assert!(
            HeldRequest::open(&ring, Uuid::new_v4(), &sealed).is_err(),
            "bound to its approval"
        );
        assert!(HeldResponse::open(&ring, id, &sealed).is_err(), "and to its part");
        let response = HeldResponse {
            status: 201,
            headers: HeaderMap::new(),
            body: vec![0, 159, 146, 150],
            truncated: true,
        };
        let sealed = response.seal(&ring, id).unwrap();
        assert_eq!(HeldResponse::open(&ring, id, &sealed).unwrap(), response);
    }

    #[test]
    fn previews_show_text_and_describe_the_rest() {
        assert_eq!(preview(b"{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(preview(&[0, 1, 2, 255]), "(4 bytes, not text)");
        let long = "é".repeat(PREVIEW_BYTES);
        let shown = preview(long.as_bytes());
        assert!(shown.ends_with(&format!("… ({} bytes in all)", long.len())), "{shown}");
        assert!(shown.chars().filter(|c| *c == 'é').count() == PREVIEW_BYTES / 2);
        assert_eq!(preview(b""), "");
    }
}
