//! Bearer tokens credgate issues: app API keys (`cg_app_…`) and admin tokens (`cg_adm_…`).
//!
//! A token is `cg_<kind>_<prefix>_<secret>`. The prefix is public and indexes the stored
//! record; only a SHA-256 hash of the whole token is stored and it is compared in constant
//! time. The secret part carries 256 bits from the OS, so a fast hash is the right one (as for
//! GitHub's and Stripe's keys): there is nothing to brute-force.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crypto::{CryptoError, random_bytes};
use crate::redact::SecretString;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    App,
    Admin,
}

impl TokenKind {
    fn tag(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Admin => "adm",
        }
    }
}

const PREFIX_LEN: usize = 12;
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A freshly issued token: the full value (shown once) and what is stored.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: SecretString,
    pub prefix: String,
    pub hash: Vec<u8>,
}

pub fn issue(kind: TokenKind) -> Result<IssuedToken, CryptoError> {
    let prefix_bytes: [u8; PREFIX_LEN] = random_bytes()?;
    let prefix: String = prefix_bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let secret: [u8; 32] = random_bytes()?;
    let token = SecretString::new(format!(
        "cg_{}_{}_{}",
        kind.tag(),
        prefix,
        URL_SAFE_NO_PAD.encode(secret)
    ));
    let hash = hash(&token);
    Ok(IssuedToken { token, prefix, hash })
}

pub fn hash(token: &SecretString) -> Vec<u8> {
    Sha256::digest(token.expose().as_bytes()).to_vec()
}

/// The public prefix of a presented token of `kind`, or `None` if it is not shaped like one.
pub fn prefix_of(kind: TokenKind, presented: &str) -> Option<&str> {
    let rest = presented
        .strip_prefix("cg_")?
        .strip_prefix(kind.tag())?
        .strip_prefix('_')?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == PREFIX_LEN && prefix.bytes().all(|b| ALPHABET.contains(&b)) && secret.len() == 43)
        .then_some(prefix)
}

/// Does `presented` hash to `stored`? Constant time in the hash comparison.
pub fn verify(presented: &str, stored: &[u8]) -> bool {
    let digest = Sha256::digest(presented.as_bytes());
    digest[..].ct_eq(stored).into()
}

/// Whether a string looks like any credgate token, for the base-URL mode's key slot.
pub fn looks_like(kind: TokenKind, presented: &str) -> bool {
    prefix_of(kind, presented).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_parse_verify() {
        let t = issue(TokenKind::App).unwrap();
        let value = t.token.expose();
        assert!(value.starts_with("cg_app_"));
        assert_eq!(prefix_of(TokenKind::App, value), Some(t.prefix.as_str()));
        assert_eq!(prefix_of(TokenKind::Admin, value), None);
        assert!(verify(value, &t.hash));
        let mut wrong = value.to_owned();
        wrong.pop();
        wrong.push(if value.ends_with('A') { 'B' } else { 'A' });
        assert!(!verify(&wrong, &t.hash));
        assert_ne!(issue(TokenKind::App).unwrap().prefix, t.prefix);
    }

    #[test]
    fn malformed_tokens_have_no_prefix() {
        for bad in ["", "cg_app_", "cg_app_abc_def", "Bearer x", "cg_app_abcdefghijkm_short"] {
            assert_eq!(prefix_of(TokenKind::App, bad), None, "{bad}");
        }
    }
}
