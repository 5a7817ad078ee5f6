//! Keyed hashes, digests, signatures and random bytes, computed by credgate's host (contract
//! 0.2): a plugin carries no crypto code, and a private key is parsed by the host.

use alloc::string::String;
use alloc::vec::Vec;

use crate::bindings::credgate::provider::{crypto as host, random};
pub use crate::types::Hash;

/// A signature scheme, as JSON Web Algorithms name them.
pub use host::SignatureAlgorithm as Signature;

/// HMAC of `data` under `key`.
pub fn hmac(algorithm: Hash, key: &[u8], data: &[u8]) -> Vec<u8> {
    host::hmac(algorithm, key, data)
}

/// The digest of `data`.
pub fn digest(algorithm: Hash, data: &[u8]) -> Vec<u8> {
    host::digest(algorithm, data)
}

/// Signs `data` with a PEM private key (PKCS#8; or PKCS#1 for RS256). The error says what is
/// wrong with the key without quoting it.
pub fn sign(algorithm: Signature, private_key_pem: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    host::sign(algorithm, private_key_pem, data)
}

/// `len` random bytes (at most 1024), for nonces.
pub fn random_bytes(len: u32) -> Vec<u8> {
    random::bytes(len)
}
