//! What the 0.2 contract grants a plugin, and nothing more: keyed hashes, digests and
//! signatures computed here (a private key is parsed here, never in the plugin), the time, and
//! random bytes. Each is a short host function; a loop of them is stopped by the call's
//! deadline like any other loop.

use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroize;

use super::bindings::{ClockHost, CryptoHost, HashAlgorithm, Instant, RandomHost, SignatureAlgorithm, TypesHost};
use super::sandbox::Sandbox;

/// Most random bytes one call returns.
const MAX_RANDOM: u32 = 1024;

impl TypesHost for Sandbox {}

impl CryptoHost for Sandbox {
    fn hmac(&mut self, algorithm: HashAlgorithm, mut key: Vec<u8>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        let algorithm = match algorithm {
            HashAlgorithm::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            HashAlgorithm::Sha256 => ring::hmac::HMAC_SHA256,
            HashAlgorithm::Sha512 => ring::hmac::HMAC_SHA512,
        };
        let tag = ring::hmac::sign(&ring::hmac::Key::new(algorithm, &key), &data);
        // The host's copy of a key the plugin passed (usually a credential field).
        key.zeroize();
        Ok(tag.as_ref().to_vec())
    }

    fn digest(&mut self, algorithm: HashAlgorithm, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        Ok(digest(algorithm, &data))
    }

    fn sign(
        &mut self,
        algorithm: SignatureAlgorithm,
        mut private_key_pem: String,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let signed = sign(algorithm, &private_key_pem, &data);
        private_key_pem.zeroize();
        Ok(signed)
    }
}

impl ClockHost for Sandbox {
    fn now(&mut self) -> wasmtime::Result<Instant> {
        let since = self.fixed_clock.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
        });
        Ok(Instant {
            seconds: since.as_secs(),
            nanoseconds: since.subsec_nanos(),
        })
    }
}

impl RandomHost for Sandbox {
    fn bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM {
            wasmtime::bail!("random: at most {MAX_RANDOM} bytes a call");
        }
        let mut out = vec![0u8; len as usize];
        getrandom::fill(&mut out).map_err(|e| wasmtime::format_err!("random: {e}"))?;
        Ok(out)
    }
}

/// The digest of `data`, as the host computes it for the plugin and for a declared body.
pub fn digest(algorithm: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    let algorithm = match algorithm {
        HashAlgorithm::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => &ring::digest::SHA256,
        HashAlgorithm::Sha512 => &ring::digest::SHA512,
    };
    ring::digest::digest(algorithm, data).as_ref().to_vec()
}

/// Signs `data` with the PEM key. Errors name what is wrong with the key, never its bytes.
fn sign(algorithm: SignatureAlgorithm, pem: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = || {
        PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| "the key is not a PEM PKCS#8 private key (BEGIN PRIVATE KEY)".to_owned())
    };
    match algorithm {
        SignatureAlgorithm::Rs256 => {
            let pair = match pkcs8() {
                Ok(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
                Err(_) => match PrivatePkcs1KeyDer::from_pem_slice(pem.as_bytes()) {
                    Ok(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
                    Err(_) => {
                        return Err(
                            "the key is not a PEM RSA private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)".into(),
                        );
                    }
                },
            }
            .map_err(|e| format!("the RSA key cannot be used: {e}"))?;
            let mut out = vec![0u8; pair.public().modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, data, &mut out)
                .map_err(|_| "the RSA signature failed".to_owned())?;
            Ok(out)
        }
        SignatureAlgorithm::Es256 => {
            let der = pkcs8()?;
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der.secret_pkcs8_der(),
                &rng,
            )
            .map_err(|e| format!("the key is not a P-256 key: {e}"))?;
            pair.sign(&rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "the ECDSA signature failed".into())
        }
        SignatureAlgorithm::EdDsa => {
            let der = pkcs8()?;
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
                .map_err(|e| format!("the key is not an Ed25519 key: {e}"))?;
            Ok(pair.sign(data).as_ref().to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::KeyPair as _;

    use super::*;

    #[test]
    fn hmacs_and_digests_match_published_vectors() {
        let mut sandbox = Sandbox::new(1 << 20);
        // RFC 4231, test case 2.
        let tag = sandbox
            .hmac(
                HashAlgorithm::Sha256,
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
            )
            .unwrap();
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 2202, test case 2.
        let tag = sandbox
            .hmac(
                HashAlgorithm::Sha1,
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
            )
            .unwrap();
        assert_eq!(hex::encode(tag), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert_eq!(
            hex::encode(digest(HashAlgorithm::Sha256, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest(HashAlgorithm::Sha512, b"").len(), 64);
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_without_being_quoted() {
        let pem = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
        for algorithm in [
            SignatureAlgorithm::Rs256,
            SignatureAlgorithm::Es256,
            SignatureAlgorithm::EdDsa,
        ] {
            let error = sign(algorithm, pem, b"x").unwrap_err();
            assert!(!error.contains("bm90IGEga2V5"), "{error}");
        }
        assert!(
            sign(SignatureAlgorithm::Rs256, "hello", b"x")
                .unwrap_err()
                .contains("PEM")
        );
    }

    #[test]
    fn an_es256_signature_is_r_and_s_and_verifies_with_the_public_key() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pkcs8.as_ref())
        );
        let signed = sign(SignatureAlgorithm::Es256, &pem, b"header.claims").unwrap();
        assert_eq!(signed.len(), 64, "JWS form: r || s");
        let public = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public)
            .verify(b"header.claims", &signed)
            .unwrap();
    }

    #[test]
    fn an_ed25519_signature_verifies_with_the_public_key() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pkcs8.as_ref())
        );
        let signed = sign(SignatureAlgorithm::EdDsa, &pem, b"message").unwrap();
        let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        signature::UnparsedPublicKey::new(&signature::ED25519, public)
            .verify(b"message", &signed)
            .unwrap();
        let mut sandbox = Sandbox::new(1 << 20);
        assert_eq!(sandbox.bytes(16).unwrap().len(), 16);
        assert!(sandbox.bytes(MAX_RANDOM + 1).is_err());
        assert!(sandbox.now().unwrap().seconds > 1_700_000_000);
    }
}
