//! Types that hold credential material.
//!
//! Every plaintext value in credgate lives in one of these: their `Debug` prints
//! `[REDACTED]`, they have no `Display` and no `Serialize`, and they zero their memory when
//! dropped. Reading the value takes an explicit `expose()` call, which is easy to find in review.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes that must never be shown.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

/// A string that must never be shown.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than `String::deserialize`: serde's default error for a wrong type
        // quotes the value it got, and the value may be a credential put in the wrong place.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretString, E> {
                Ok(SecretString(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretString, E> {
                Ok(SecretString(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretString, E> {
                Err(E::custom("expected a string, got a boolean"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretString, E> {
                Err(E::custom("expected a string, got a number"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretString, E> {
                Err(E::custom("expected a string, got a number"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretString, E> {
                Err(E::custom("expected a string, got a number"))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<SecretString, E> {
                Err(E::custom("expected a string, got null"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<SecretString, A::Error> {
                Err(serde::de::Error::custom("expected a string, got an array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<SecretString, A::Error> {
                Err(serde::de::Error::custom("expected a string, got an object"))
            }
        }
        // `deserialize_any` so a wrong type reaches the visitor (whose message quotes nothing)
        // instead of the format's own "invalid type" error, which would.
        deserializer.deserialize_any(Visitor)
    }
}

/// The fields of one credential (`token`, `username`/`password`, `access_key_id`/…), by name.
///
/// Field names are not secret and show in `Debug`; values never do.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Credential(BTreeMap<String, SecretString>);

impl Credential {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, value: SecretString) {
        self.0.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }

    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The canonical plaintext that is sealed at rest: a JSON object of the fields.
    pub fn to_plaintext(&self) -> SecretBytes {
        // Written by hand into a zeroizing buffer so no intermediate `serde_json::Value`
        // holds a copy of the values after this returns.
        let mut out = Zeroizing::new(Vec::with_capacity(64));
        out.push(b'{');
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(&mut out, name);
            out.push(b':');
            write_json_string(&mut out, value.expose());
        }
        out.push(b'}');
        SecretBytes::new(std::mem::take(&mut *out))
    }

    /// Parses what [`Credential::to_plaintext`] produced.
    pub fn from_plaintext(plaintext: &SecretBytes) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(plaintext.expose())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for name in self.0.keys() {
            map.entry(name, &"[REDACTED]");
        }
        map.finish()
    }
}

impl Zeroize for Credential {
    fn zeroize(&mut self) {
        // Values zero themselves on drop; clearing drops them now.
        self.0.clear();
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let mut c = Credential::new();
        c.insert("token", SecretString::from("canary-value-123"));
        let shown = format!(
            "{c:?} {:?} {:?}",
            SecretString::from("canary-value-123"),
            SecretBytes::new(b"canary-value-123".to_vec())
        );
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("token"));
        assert!(shown.contains("[REDACTED]"));
    }

    #[test]
    fn plaintext_round_trips_with_awkward_characters() {
        let mut c = Credential::new();
        c.insert("password", SecretString::from("p\"a\\s\ns\u{1}wörd"));
        c.insert("username", SecretString::from("api"));
        let back = Credential::from_plaintext(&c.to_plaintext()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn wrong_json_type_error_does_not_quote_the_value() {
        let err = serde_json::from_str::<SecretString>("123456789")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("123456789"), "{err}");
    }
}
