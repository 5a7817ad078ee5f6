//! JSON Web Tokens signed by an OpenID Provider, verified against its published keys (JWKS):
//! RS256 and ES256 only. `none` and every HMAC algorithm are refused, so a public key can
//! never be used as a shared secret. Errors say which check failed, never a claim's value.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Clocks disagree: `exp` and `nbf` are checked with this much leeway, in seconds.
pub const SKEW_SECONDS: i64 = 60;

/// One key of a provider's JWKS (RSA or P-256).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

/// A JWKS document: `{"keys": [...]}`.
#[derive(Clone, Debug, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// What a token must say to be accepted.
#[derive(Clone, Debug)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Why a token was refused. Fixed texts: a token's content is the caller's, never echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a JWT (three base64url parts, JSON header and claims)")]
    Malformed,
    #[error("the token's algorithm is not accepted (RS256 or ES256 only; never none or HMAC)")]
    Algorithm,
    #[error("the token is not an ID token (an access token, or critical extensions)")]
    NotIdToken,
    #[error("the token names no key the issuer publishes (its keys may have rotated)")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token has expired, or has no expiry")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// Checks a signature over a message with a key.
type Verifier = fn(&Jwk, &[u8], &[u8]) -> bool;

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// Extensions the token says must be understood: credgate understands none.
    #[serde(default)]
    crit: Option<Value>,
}

/// The token's claims, once its signature, issuer, audience and times hold.
pub fn verify(token: &str, keys: &[Jwk], expect: &Expect<'_>) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed);
    let header: Header = serde_json::from_slice(&decode(head)?).map_err(|_| JwtError::Malformed)?;
    let signature_bytes = decode(sig)?;
    let signed = &token.as_bytes()[..head.len() + 1 + body.len()];
    // An OAuth access token in JWT form (RFC 9068) is for an API, not a statement of who the
    // person is, even when its audience matches.
    if header.crit.is_some()
        || header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"))
    {
        return Err(JwtError::NotIdToken);
    }
    let (kty, verify_with): (&str, Verifier) = match header.alg.as_str() {
        "RS256" => ("RSA", verify_rs256),
        "ES256" => ("EC", verify_es256),
        _ => return Err(JwtError::Algorithm),
    };
    // The key the header names; a token without `kid` may use the one key of its type.
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| k.kty == kty && k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == header.alg))
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .collect();
    let key = match candidates.as_slice() {
        [key] => *key,
        _ => return Err(JwtError::UnknownKey),
    };
    if !verify_with(key, signed, &signature_bytes) {
        return Err(JwtError::Signature);
    }
    let claims: Map<String, Value> = serde_json::from_slice(&decode(body)?).map_err(|_| JwtError::Malformed)?;
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(JwtError::Issuer);
    }
    // With several audiences, the party it was issued to must be credgate's (OpenID Connect
    // Core 3.1.3.7): else a token for another app that merely lists credgate would do.
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expect.audience,
        Some(Value::Array(auds)) if auds.len() == 1 => auds[0].as_str() == Some(expect.audience),
        Some(Value::Array(auds)) => {
            auds.iter().any(|a| a.as_str() == Some(expect.audience))
                && claims.get("azp").and_then(Value::as_str) == Some(expect.audience)
        }
        _ => false,
    };
    if !audience_ok {
        return Err(JwtError::Audience);
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + SKEW_SECONDS > expect.now => {}
        _ => return Err(JwtError::Expired),
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf - SKEW_SECONDS > expect.now
    {
        return Err(JwtError::NotYetValid);
    }
    Ok(claims)
}

fn verify_rs256(key: &Jwk, message: &[u8], sig: &[u8]) -> bool {
    let (Some(n), Some(e)) = (key.n.as_deref(), key.e.as_deref()) else {
        return false;
    };
    let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
        return false;
    };
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
        .is_ok()
}

fn verify_es256(key: &Jwk, message: &[u8], sig: &[u8]) -> bool {
    if key.crv.as_deref() != Some("P-256") {
        return false;
    }
    let (Some(x), Some(y)) = (key.x.as_deref(), key.y.as_deref()) else {
        return false;
    };
    let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(x), URL_SAFE_NO_PAD.decode(y)) else {
        return false;
    };
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair as _};
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_796_580_000;

    struct Signer {
        pair: EcdsaKeyPair,
        jwk: Jwk,
    }

    fn signer(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some(kid.into()),
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode(&point[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&point[33..])),
        };
        Signer { pair, jwk }
    }

    fn token(signer: &Signer, header: Value, claims: Value) -> String {
        let text = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = signer.pair.sign(&SystemRandom::new(), text.as_bytes()).unwrap();
        format!("{text}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "aud": "credgate", "sub": "alice", "exp": NOW + 600, "iat": NOW})
    }

    const EXPECT: Expect<'static> = Expect {
        issuer: "https://idp.example",
        audience: "credgate",
        now: NOW,
    };

    #[test]
    fn a_signed_token_verifies_and_every_check_can_refuse_it() {
        let s = signer("k1");
        let keys = [s.jwk.clone()];
        let header = json!({"alg": "ES256", "kid": "k1"});
        let ok = token(&s, header.clone(), claims());
        assert_eq!(verify(&ok, &keys, &EXPECT).unwrap()["sub"], "alice");

        let with = |change: Value| {
            let mut c = claims();
            for (k, v) in change.as_object().unwrap() {
                c[k] = v.clone();
            }
            token(&s, header.clone(), c)
        };
        assert_eq!(
            verify(&with(json!({"iss": "https://evil.example"})), &keys, &EXPECT),
            Err(JwtError::Issuer)
        );
        assert_eq!(
            verify(&with(json!({"aud": ["other"]})), &keys, &EXPECT),
            Err(JwtError::Audience)
        );
        assert_eq!(
            verify(&with(json!({"aud": ["other", "credgate"]})), &keys, &EXPECT),
            Err(JwtError::Audience),
            "several audiences need azp"
        );
        assert!(
            verify(
                &with(json!({"aud": ["other", "credgate"], "azp": "credgate"})),
                &keys,
                &EXPECT
            )
            .is_ok()
        );
        assert!(verify(&with(json!({"aud": ["credgate"]})), &keys, &EXPECT).is_ok());
        assert_eq!(
            verify(
                &token(&s, json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}), claims()),
                &keys,
                &EXPECT
            ),
            Err(JwtError::NotIdToken)
        );
        assert_eq!(
            verify(
                &token(&s, json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}), claims()),
                &keys,
                &EXPECT
            ),
            Err(JwtError::NotIdToken)
        );
        assert_eq!(
            verify(&with(json!({"exp": NOW - 61})), &keys, &EXPECT),
            Err(JwtError::Expired)
        );
        assert!(
            verify(&with(json!({"exp": NOW - 30})), &keys, &EXPECT).is_ok(),
            "within the skew"
        );
        assert_eq!(
            verify(&with(json!({"nbf": NOW + 120})), &keys, &EXPECT),
            Err(JwtError::NotYetValid)
        );
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            verify(&token(&s, header.clone(), no_exp), &keys, &EXPECT),
            Err(JwtError::Expired)
        );

        // Tampered claims, an unknown key, a rotated-out key.
        let (head, rest) = ok.split_once('.').unwrap();
        let sig = rest.rsplit_once('.').unwrap().1;
        let forged = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(json!({"sub": "mallory"}).to_string())
        );
        assert_eq!(verify(&forged, &keys, &EXPECT), Err(JwtError::Signature));
        let other = signer("k2");
        assert_eq!(
            verify(
                &token(&other, json!({"alg": "ES256", "kid": "k2"}), claims()),
                &keys,
                &EXPECT
            ),
            Err(JwtError::UnknownKey)
        );
        assert_eq!(
            verify(
                &token(&other, json!({"alg": "ES256", "kid": "k1"}), claims()),
                &keys,
                &EXPECT
            ),
            Err(JwtError::Signature),
            "another key claiming the known kid"
        );
    }

    #[test]
    fn none_and_hmac_forgeries_are_refused_before_any_key_is_used() {
        let s = signer("k1");
        let keys = [s.jwk.clone()];
        let body = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()));
        assert_eq!(verify(&none, &keys, &EXPECT), Err(JwtError::Algorithm));
        // HS256 keyed with the public key's bytes: the classic confusion.
        let head = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "k1"}).to_string());
        let signing_input = format!("{head}.{body}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.jwk.x.as_deref().unwrap().as_bytes());
        let tag = ring::hmac::sign(&key, signing_input.as_bytes());
        let hs = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(verify(&hs, &keys, &EXPECT), Err(JwtError::Algorithm));
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert_eq!(verify(bad, &keys, &EXPECT), Err(JwtError::Malformed), "{bad}");
        }
    }
}
