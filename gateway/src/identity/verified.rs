//! Tokens already verified, kept until they expire: an app sends the same person's token with
//! every call for as long as it lives (an hour, typically), and checking its signature again
//! each time would cost more than the rest of the call (RS256: about 23 µs; BENCHMARKS.md).
//! Found by the token's SHA-256, so the cache holds no token. Each entry remembers the
//! issuer's key generation it was verified in: once a read of the provider's keys finds one
//! gone (a retired key), every token verified before is checked again.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::User;
use super::jwt::SKEW_SECONDS;

/// Bound on tokens kept; past it the cache starts over (simple, and rare in practice).
const MAX_TOKENS: usize = 50_000;

#[derive(Debug, Default)]
pub struct Verified {
    tokens: Mutex<HashMap<[u8; 32], (User, u64)>>,
}

impl Verified {
    /// The person a token verified earlier names, if it has not expired by `now` (seconds)
    /// and its issuer's keys are of the `generation` it was verified in.
    pub fn get(&self, token: &str, now: i64, generation: impl Fn(&str) -> u64) -> Option<User> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match tokens.get(&key) {
            Some((user, seen)) if user.expires + SKEW_SECONDS > now && generation(&user.issuer) == *seen => {
                Some(user.clone())
            }
            Some(_) => {
                tokens.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps a token that just verified with the issuer's keys of `generation`.
    pub fn put(&self, token: &str, user: &User, generation: u64) {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if tokens.len() >= MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(key, (user.clone(), generation));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(expires: i64) -> User {
        User {
            issuer: "https://idp.example".into(),
            subject: "alice".into(),
            display: "alice".into(),
            groups: vec!["eng".into()],
            expires,
        }
    }

    #[test]
    fn a_token_is_found_until_it_expires_and_only_that_token() {
        let v = Verified::default();
        let first = |_: &str| 0;
        v.put("token-a", &user(1_000), 0);
        assert_eq!(v.get("token-a", 900, first).unwrap().subject, "alice");
        assert!(v.get("token-b", 900, first).is_none());
        assert!(
            v.get("token-a", 1_000 + SKEW_SECONDS, first).is_none(),
            "expired (with the skew)"
        );
        assert!(v.get("token-a", 900, first).is_none(), "and forgotten");
        v.put("token-a", &user(1_000), 0);
        assert!(v.get("token-a", 900, |_| 1).is_none(), "a key was retired since");
    }
}
