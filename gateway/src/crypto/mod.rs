//! Envelope encryption of credential values.
//!
//! Each secret version gets its own random data key; the value is sealed under it with
//! AES-256-GCM and the secret's id and version as associated data, so a ciphertext moved to
//! another secret or version fails to open. The data key is itself sealed ("wrapped") by the
//! active master key of a [`KeyRing`]. Rotating the master key re-wraps the small data keys and
//! never touches the values.

mod aead;
mod envelope;
mod keyring;

pub use aead::{KEY_LEN, SymmetricKey, open, random_bytes, seal};
pub use envelope::{SealedValue, open_value, rewrap_value, seal_value};
pub use keyring::{KeyCheck, KeyRing, KeyRingSource, MasterKey};

/// Why a cryptographic operation failed. Never carries key or plaintext material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("a key must be {expected} bytes, got {got}")]
    KeyLength { expected: usize, got: usize },
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed data failed authentication (wrong key, moved or tampered with)")]
    Authentication,
    #[error("master key `{0}` is not in the key ring")]
    UnknownMasterKey(String),
    #[error("the operating system's random source failed")]
    Random,
    #[error("{0}")]
    KeyRing(String),
}
