//! One secret version sealed in an envelope: a fresh data key seals the value, the key ring
//! wraps the data key. Both layers bind the secret's id and version.

use super::aead::{self, SymmetricKey};
use super::{CryptoError, KeyRing};
use crate::redact::SecretBytes;

/// What is stored for one secret version. None of it is secret on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue {
    /// Id of the master key that wrapped `wrapped_key`.
    pub kek_id: String,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

fn location(secret_id: &str, version: i64) -> Vec<u8> {
    format!("{secret_id}/{version}").into_bytes()
}

pub fn seal_value(
    ring: &KeyRing,
    secret_id: &str,
    version: i64,
    plaintext: &SecretBytes,
) -> Result<SealedValue, CryptoError> {
    let aad = location(secret_id, version);
    let data_key = SymmetricKey::generate()?;
    let ciphertext = aead::seal(&data_key, plaintext.expose(), &[b"value/".as_slice(), &aad].concat())?;
    let (kek_id, wrapped_key) = ring.wrap(&data_key, &aad)?;
    Ok(SealedValue {
        kek_id,
        wrapped_key,
        ciphertext,
    })
}

pub fn open_value(
    ring: &KeyRing,
    secret_id: &str,
    version: i64,
    sealed: &SealedValue,
) -> Result<SecretBytes, CryptoError> {
    let aad = location(secret_id, version);
    let data_key = ring.unwrap(&sealed.kek_id, &sealed.wrapped_key, &aad)?;
    aead::open(&data_key, &sealed.ciphertext, &[b"value/".as_slice(), &aad].concat())
}

/// Re-wraps the data key under the ring's active master key. The value's ciphertext is
/// unchanged, so a re-wrap never exposes or re-encrypts the value itself.
pub fn rewrap_value(
    ring: &KeyRing,
    secret_id: &str,
    version: i64,
    sealed: &SealedValue,
) -> Result<SealedValue, CryptoError> {
    let aad = location(secret_id, version);
    let data_key = ring.unwrap(&sealed.kek_id, &sealed.wrapped_key, &aad)?;
    let (kek_id, wrapped_key) = ring.wrap(&data_key, &aad)?;
    Ok(SealedValue {
        kek_id,
        wrapped_key,
        ciphertext: sealed.ciphertext.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyRingSource, MasterKey};

    fn ring() -> KeyRing {
        KeyRing::new(vec![MasterKey::generate().unwrap()], KeyRingSource::Memory).unwrap()
    }

    #[test]
    fn round_trip() {
        let ring = ring();
        let sealed = seal_value(&ring, "s1", 1, &SecretBytes::new(b"v".to_vec())).unwrap();
        assert_eq!(open_value(&ring, "s1", 1, &sealed).unwrap().expose(), b"v");
        assert!(!sealed.ciphertext.windows(1).all(|w| w == b"v"));
    }

    #[test]
    fn moved_to_another_secret_or_version_fails() {
        let ring = ring();
        let sealed = seal_value(&ring, "s1", 1, &SecretBytes::new(b"value".to_vec())).unwrap();
        assert_eq!(open_value(&ring, "s2", 1, &sealed), Err(CryptoError::Authentication));
        assert_eq!(open_value(&ring, "s1", 2, &sealed), Err(CryptoError::Authentication));
        // Swapping in another version's ciphertext with this version's wrapped key fails too.
        let other = seal_value(&ring, "s1", 2, &SecretBytes::new(b"value".to_vec())).unwrap();
        let mixed = SealedValue {
            ciphertext: other.ciphertext,
            ..sealed.clone()
        };
        assert!(open_value(&ring, "s1", 1, &mixed).is_err());
    }

    #[test]
    fn tampering_with_either_layer_fails() {
        let ring = ring();
        let sealed = seal_value(&ring, "s1", 1, &SecretBytes::new(b"value".to_vec())).unwrap();
        for i in 0..sealed.wrapped_key.len() {
            let mut bad = sealed.clone();
            bad.wrapped_key[i] ^= 0x80;
            assert!(open_value(&ring, "s1", 1, &bad).is_err());
        }
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 0x80;
            assert!(open_value(&ring, "s1", 1, &bad).is_err());
        }
    }

    #[test]
    fn rewrap_moves_to_the_active_key_and_keeps_the_value() {
        let old = ring();
        let sealed = seal_value(&old, "s1", 3, &SecretBytes::new(b"value".to_vec())).unwrap();
        let new = old.with_new_active(MasterKey::generate().unwrap()).unwrap();
        let moved = rewrap_value(&new, "s1", 3, &sealed).unwrap();
        assert_eq!(moved.kek_id, new.active().id());
        assert_eq!(moved.ciphertext, sealed.ciphertext);
        assert_eq!(open_value(&new, "s1", 3, &moved).unwrap().expose(), b"value");
        assert_eq!(open_value(&new, "s1", 3, &sealed).unwrap().expose(), b"value");
    }
}
