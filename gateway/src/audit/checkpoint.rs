//! Checkpoints: what the database keeps of each archive file, signed by the trail's signing
//! key. A checkpoint names a span of records, the hash the first links to and the hash of the
//! last (the chain's head at the cut), and the file's bytes by SHA-256. Nobody holding only the
//! database or the files can forge one, so a trail cut back, a file swapped or records dropped
//! between files all fail verification.

use chrono::{DateTime, Utc};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::clock::to_micros;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// The UTC day the file's records were made in, `YYYY-MM-DD`.
    pub period: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// The hash the file's first record links to: the previous file's `head_hash` (or the
    /// genesis hash).
    pub first_prev_hash: String,
    /// The hash of the file's last record: the next file, or the live trail, links to it.
    pub head_hash: String,
    pub records: i64,
    /// The earliest and latest `at` among the file's records.
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The file's name in the archive directory.
    pub file: String,
    pub file_sha256: String,
    pub file_bytes: i64,
    pub created_at: DateTime<Utc>,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 over [`Checkpoint::signed_text`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// Everything the signature covers, one field a line: no field can move into another.
    pub fn signed_text(&self) -> String {
        format!(
            "credgate-audit-checkpoint-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.period,
            self.first_seq,
            self.last_seq,
            self.first_prev_hash,
            self.head_hash,
            self.records,
            to_micros(self.first_at),
            to_micros(self.last_at),
            self.file,
            self.file_sha256,
            self.file_bytes,
            to_micros(self.created_at),
            self.key_id,
        )
    }

    /// Whether `public_key` (base64 Ed25519) signed exactly this checkpoint.
    pub fn signed_by(&self, public_key: &str) -> bool {
        signature_valid(public_key, self.signed_text().as_bytes(), &self.signature)
    }
}

/// Whether `signature` (base64) is `public_key`'s (base64 Ed25519) over `text`.
pub(super) fn signature_valid(public_key: &str, text: &[u8], signature: &str) -> bool {
    let (Ok(key), Ok(signature)) = (B64.decode(public_key), B64.decode(signature)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key).verify(text, &signature).is_ok()
}

/// The public half of the trail's signing key: what a verifier needs, and what an operator may
/// keep elsewhere to pin (`credgate audit verify --public-key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyInfo {
    pub id: String,
    /// Ed25519, base64.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
}

/// The trail's signing key, opened. Never serialised; its private half exists in memory only
/// while a checkpoint is signed.
pub struct AuditSigner {
    pub info: SigningKeyInfo,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// From the key's PKCS#8 document.
    pub fn from_pkcs8(info_id: String, created_at: DateTime<Utc>, pkcs8: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| "the sealed signing key is not Ed25519".to_owned())?;
        Ok(Self {
            info: SigningKeyInfo {
                id: info_id,
                public_key: B64.encode(pair.public_key().as_ref()),
                created_at,
            },
            pair,
        })
    }

    /// A new key's PKCS#8 document.
    pub fn generate_pkcs8() -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map(|doc| zeroize::Zeroizing::new(doc.as_ref().to_vec()))
            .map_err(|_| "cannot generate a signing key".to_owned())
    }

    /// Signs `checkpoint` (setting its key id and signature).
    pub fn sign(&self, checkpoint: &mut Checkpoint) {
        checkpoint.key_id.clone_from(&self.info.id);
        checkpoint.signature = self.signature(&checkpoint.signed_text());
    }

    /// The signature over `text`, base64.
    pub(super) fn signature(&self, text: &str) -> String {
        B64.encode(self.pair.sign(text.as_bytes()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_field() {
        let pkcs8 = AuditSigner::generate_pkcs8().unwrap();
        let signer = AuditSigner::from_pkcs8("k1".into(), crate::clock::now(), &pkcs8).unwrap();
        let mut cp = Checkpoint {
            period: "2026-12-01".into(),
            first_seq: 1,
            last_seq: 10,
            first_prev_hash: "0".repeat(64),
            head_hash: "a".repeat(64),
            records: 10,
            first_at: crate::clock::now(),
            last_at: crate::clock::now(),
            file: "audit-2026-12-01-000000000001-000000000010.jsonl.zst".into(),
            file_sha256: "b".repeat(64),
            file_bytes: 1234,
            created_at: crate::clock::now(),
            key_id: String::new(),
            signature: String::new(),
        };
        signer.sign(&mut cp);
        assert_eq!(cp.key_id, "k1");
        assert!(cp.signed_by(&signer.info.public_key));
        let other = AuditSigner::from_pkcs8(
            "k2".into(),
            crate::clock::now(),
            &AuditSigner::generate_pkcs8().unwrap(),
        )
        .unwrap();
        assert!(!cp.signed_by(&other.info.public_key), "another key's");
        let changes: [fn(&mut Checkpoint); 6] = [
            |c| c.last_seq += 1,
            |c| c.head_hash = "c".repeat(64),
            |c| c.first_prev_hash = "1".repeat(64),
            |c| c.file_sha256 = "d".repeat(64),
            |c| c.records -= 1,
            |c| c.file.push('x'),
        ];
        for change in changes {
            let mut changed = cp.clone();
            change(&mut changed);
            assert!(!changed.signed_by(&signer.info.public_key), "{changed:?}");
        }
        assert!(!cp.signed_by("not base64"));
    }
}
