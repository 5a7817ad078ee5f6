//! AES-256-GCM with a random 96-bit nonce, in one self-describing byte format.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::CryptoError;
use crate::redact::SecretBytes;

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// First byte of every sealed blob, so the format can change without guessing.
const FORMAT_V1: u8 = 1;

/// A 256-bit key. Zeroed on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct SymmetricKey(Zeroizing<[u8; KEY_LEN]>);

impl SymmetricKey {
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::KeyLength {
            expected: KEY_LEN,
            got: bytes.len(),
        })?;
        Ok(Self(Zeroizing::new(array)))
    }

    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut key[..]).map_err(|_| CryptoError::Random)?;
        Ok(Self(key))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> Result<Aes256Gcm, CryptoError> {
        Aes256Gcm::new_from_slice(self.0.as_ref()).map_err(|_| CryptoError::KeyLength {
            expected: KEY_LEN,
            got: self.0.len(),
        })
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey([REDACTED])")
    }
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| CryptoError::Random)?;
    Ok(out)
}

/// Seals `plaintext` under `key`, binding `aad`: `[1][nonce 12][ciphertext + tag 16]`.
pub fn seal(key: &SymmetricKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes()?;
    let nonce = Nonce::from(nonce_bytes);
    let ciphertext = key
        .cipher()?
        .encrypt(&nonce, Payload { msg: plaintext, aad })
        .map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens what [`seal`] produced with the same key and associated data.
pub fn open(key: &SymmetricKey, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != FORMAT_V1 {
        return Err(CryptoError::Malformed);
    }
    let nonce_bytes: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
        .try_into()
        .map_err(|_| CryptoError::Malformed)?;
    let nonce = Nonce::from(nonce_bytes);
    let plaintext = key
        .cipher()?
        .decrypt(
            &nonce,
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad,
            },
        )
        .map_err(|_| CryptoError::Authentication)?;
    Ok(SecretBytes::new(plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = SymmetricKey::generate().unwrap();
        let sealed = seal(&key, b"hello", b"aad").unwrap();
        assert_eq!(open(&key, &sealed, b"aad").unwrap().expose(), b"hello");
    }

    #[test]
    fn tampering_with_any_byte_fails() {
        let key = SymmetricKey::generate().unwrap();
        let sealed = seal(&key, b"a credential value", b"secret-1|1").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                open(&key, &bad, b"secret-1|1").is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
        assert!(open(&key, &sealed[..sealed.len() - 1], b"secret-1|1").is_err());
    }

    #[test]
    fn other_aad_or_key_fails() {
        let key = SymmetricKey::generate().unwrap();
        let sealed = seal(&key, b"value", b"secret-1|1").unwrap();
        assert_eq!(open(&key, &sealed, b"secret-1|2"), Err(CryptoError::Authentication));
        let other = SymmetricKey::generate().unwrap();
        assert_eq!(open(&other, &sealed, b"secret-1|1"), Err(CryptoError::Authentication));
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let key = SymmetricKey::generate().unwrap();
        assert_ne!(seal(&key, b"same", b"").unwrap(), seal(&key, b"same", b"").unwrap());
    }

    #[test]
    fn wrong_key_lengths_are_refused() {
        for len in [0, 16, 31, 33, 64] {
            assert_eq!(
                SymmetricKey::from_slice(&vec![7u8; len]).unwrap_err(),
                CryptoError::KeyLength { expected: 32, got: len }
            );
        }
        assert!(SymmetricKey::from_slice(&[7u8; 32]).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let key = SymmetricKey::from_slice(&[0xAB; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "SymmetricKey([REDACTED])");
    }
}
