//! Sealed heads: the live trail's newest record, signed by the trail's key and kept outside the
//! database, in `heads.jsonl` in the archive directory.
//!
//! Signed checkpoints prove the archived part of the trail. The live part is only chained: who
//! can write the database can rewrite a record and every hash after it, and the chain still
//! links. A seal kept in the database would not stop them either, since they could delete the
//! newer seals with the records. So each archiving pass appends the head it found to a file on
//! the archive's storage; `credgate audit verify --archive` checks the database against the
//! newest one, and the next pass checks it before archiving or sealing anything. A rewrite
//! then needs both the database and the archive directory, as a forged archive does.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::checkpoint::{AuditSigner, signature_valid};
use crate::clock::to_micros;

/// The file in the archive directory: one sealed head a line, oldest first.
pub const HEADS_FILE: &str = "heads.jsonl";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedHead {
    /// The record's sequence number and hash, as the database held them at `sealed_at`.
    pub seq: i64,
    pub hash: String,
    /// When the record was made.
    pub at: DateTime<Utc>,
    pub sealed_at: DateTime<Utc>,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 over [`SealedHead::signed_text`], base64.
    pub signature: String,
}

impl SealedHead {
    /// Signs the head `(seq, hash)` of a record made at `at`.
    pub fn seal(signer: &AuditSigner, seq: i64, hash: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let mut head = Self {
            seq,
            hash: hash.to_owned(),
            at,
            sealed_at: now,
            key_id: signer.info.id.clone(),
            signature: String::new(),
        };
        head.signature = signer.signature(&head.signed_text());
        head
    }

    /// Everything the signature covers, one field a line. Its first line is not a
    /// checkpoint's, so neither signature can stand for the other.
    pub fn signed_text(&self) -> String {
        format!(
            "credgate-audit-head-v1\n{}\n{}\n{}\n{}\n{}\n",
            self.seq,
            self.hash,
            to_micros(self.at),
            to_micros(self.sealed_at),
            self.key_id,
        )
    }

    /// Whether `public_key` (base64 Ed25519) signed exactly this head.
    pub fn signed_by(&self, public_key: &str) -> bool {
        signature_valid(public_key, self.signed_text().as_bytes(), &self.signature)
    }
}

/// Appends `head` to the heads file in `dir` and flushes it to disk.
pub fn append(dir: &Path, head: &SealedHead) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(HEADS_FILE);
    let created = !path.exists();
    let mut line = serde_json::to_vec(head).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    // One `write` of a whole line: appends never interleave, and a crash leaves at most a torn
    // last line, which [`newest`] passes over.
    file.write_all(&line)?;
    file.sync_data()?;
    if created {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The newest head in `dir`'s heads file; `None` when there is no file or no complete line.
/// The first line's signature is checked too, against the same `public_key` (base64 Ed25519):
/// whoever removed the trail's key from the database to seal with one of their own would
/// still have to rewrite the file from its start. Blocking.
pub fn newest(dir: &Path, public_key: &str) -> Result<Option<SealedHead>, String> {
    let path = dir.join(HEADS_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{HEADS_FILE}: cannot open: {e}")),
    };
    // (line number, line)
    let mut first: Option<(usize, String)> = None;
    let mut last: Option<(usize, String)> = None;
    let mut reader = BufReader::new(file);
    let mut number = 0;
    loop {
        let mut line = String::new();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("{HEADS_FILE}: cannot read: {e}"))?;
        // A line without its newline is a write a crash cut short: never sealed.
        if read == 0 || !line.ends_with('\n') {
            break;
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        if first.is_none() {
            first = Some((number, line.clone()));
        }
        last = Some((number, line));
    }
    if let Some((number, line)) = first {
        checked(number, &line, public_key)?;
    }
    last.map(|(number, line)| checked(number, &line, public_key))
        .transpose()
}

fn checked(number: usize, line: &str, public_key: &str) -> Result<SealedHead, String> {
    let head: SealedHead = serde_json::from_str(line.trim_end())
        .map_err(|_| format!("{HEADS_FILE} line {number}: not a sealed head (it was changed)"))?;
    if !head.signed_by(public_key) {
        return Err(format!(
            "{HEADS_FILE} line {number}: not signed by the trail's key (it was changed)"
        ));
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(id: &str) -> AuditSigner {
        AuditSigner::from_pkcs8(id.into(), crate::clock::now(), &AuditSigner::generate_pkcs8().unwrap()).unwrap()
    }

    #[test]
    fn the_newest_signed_line_is_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let key = signer("k1");
        let public = key.info.public_key.clone();
        assert_eq!(newest(dir.path(), &public).unwrap(), None, "no file yet");
        let now = crate::clock::now();
        let first = SealedHead::seal(&key, 10, &"a".repeat(64), now, now);
        let second = SealedHead::seal(&key, 20, &"b".repeat(64), now, now);
        append(dir.path(), &first).unwrap();
        append(dir.path(), &second).unwrap();
        assert_eq!(newest(dir.path(), &public).unwrap(), Some(second.clone()));

        // A torn last line (a crash in the middle of a write) is passed over.
        let path = dir.path().join(HEADS_FILE);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq":30,"hash":"#).unwrap();
        assert_eq!(newest(dir.path(), &public).unwrap(), Some(second));
    }

    #[test]
    fn a_changed_or_foreign_head_is_refused() {
        let key = signer("k1");
        let now = crate::clock::now();
        let head = SealedHead::seal(&key, 10, &"a".repeat(64), now, now);
        assert!(head.signed_by(&key.info.public_key));
        assert!(!head.signed_by(&signer("k2").info.public_key), "another key's");
        let changes: [fn(&mut SealedHead); 4] = [
            |h| h.seq += 1,
            |h| h.hash = "c".repeat(64),
            |h| h.at += chrono::Duration::seconds(1),
            |h| h.key_id.push('x'),
        ];
        for change in changes {
            let mut changed = head.clone();
            change(&mut changed);
            assert!(!changed.signed_by(&key.info.public_key), "{changed:?}");
        }

        let dir = tempfile::tempdir().unwrap();
        let mut forged = head.clone();
        forged.seq = 5;
        append(dir.path(), &head).unwrap();
        append(dir.path(), &forged).unwrap();
        let err = newest(dir.path(), &key.info.public_key).unwrap_err();
        assert!(err.contains("line 2: not signed by the trail's key"), "{err}");
        // A file begun by another key: sealed with one that replaced the trail's.
        let other = signer("k2");
        let dir2 = tempfile::tempdir().unwrap();
        append(dir2.path(), &SealedHead::seal(&key, 1, &"a".repeat(64), now, now)).unwrap();
        append(dir2.path(), &SealedHead::seal(&other, 2, &"b".repeat(64), now, now)).unwrap();
        let err = newest(dir2.path(), &other.info.public_key).unwrap_err();
        assert!(err.contains("line 1: not signed by the trail's key"), "{err}");
        std::fs::write(dir.path().join(HEADS_FILE), "not json\n").unwrap();
        let err = newest(dir.path(), &key.info.public_key).unwrap_err();
        assert!(err.contains("line 1: not a sealed head"), "{err}");
    }
}
