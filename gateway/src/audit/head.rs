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

use std::io::{BufRead, BufReader, Read, Write};
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

/// A line longer than this is no seal (a seal is about 300 bytes): reading stops there.
const LINE_LIMIT: u64 = 64 * 1024;

/// Appends `head` to the heads file in `dir` and flushes it to disk.
pub fn append(dir: &Path, head: &SealedHead) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(HEADS_FILE);
    let created = !path.exists();
    let mut line = serde_json::to_vec(head).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .open(&path)?;
    // A torn last line (a crash in the middle of a write) is cut off first: written onto, it
    // would make a whole line that is no seal, and every later check would fail on it.
    let len = file.metadata()?.len();
    let tail = read_tail(&file, len)?;
    match tail.iter().rposition(|b| *b == b'\n') {
        Some(end) if end + 1 == tail.len() => {}
        Some(end) => file.set_len(len - tail.len() as u64 + end as u64 + 1)?,
        None if tail.len() as u64 == len => file.set_len(0)?,
        None => {
            return Err(std::io::Error::other(format!(
                "{HEADS_FILE}: its last line is longer than any seal"
            )));
        }
    }
    // One `write` of a whole line: appends never interleave, and a crash leaves at most a torn
    // last line.
    file.write_all(&line)?;
    file.sync_data()?;
    if created {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The file's last [`LINE_LIMIT`] bytes (all of it, if shorter).
fn read_tail(file: &std::fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let from = len.saturating_sub(LINE_LIMIT);
    let mut tail = vec![0; usize::try_from(len - from).unwrap_or(0)];
    file.read_exact_at(&mut tail, from)?;
    Ok(tail)
}

/// The newest head in `dir`'s heads file; `None` when there is no file or no complete line.
/// The first line's signature is checked too, against the same `public_key` (base64 Ed25519):
/// whoever removed the trail's key from the database to seal with one of their own would
/// still have to rewrite the file from its start. Reads those two lines only, so a pass costs
/// the same after years of seals. Blocking.
pub fn newest(dir: &Path, public_key: &str) -> Result<Option<SealedHead>, String> {
    let path = dir.join(HEADS_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{HEADS_FILE}: cannot open: {e}")),
    };
    let cannot_read = |e: std::io::Error| format!("{HEADS_FILE}: cannot read: {e}");
    let len = file.metadata().map_err(cannot_read)?.len();
    // The last complete line: a line without its newline is a write a crash cut short.
    let tail = read_tail(&file, len).map_err(cannot_read)?;
    let complete = match tail.iter().rposition(|b| *b == b'\n') {
        Some(end) => tail[..end].trim_ascii_end(),
        None => return Ok(None),
    };
    if complete.is_empty() {
        return Ok(None);
    }
    let last = match complete.iter().rposition(|b| *b == b'\n') {
        Some(start) => &complete[start + 1..],
        None if tail.len() as u64 == len => complete,
        None => {
            return Err(format!(
                "{HEADS_FILE}: its last line is longer than any seal (it was changed)"
            ));
        }
    };
    let mut first = Vec::new();
    let mut reader = BufReader::new(file).take(LINE_LIMIT);
    while first.trim_ascii().is_empty() {
        first.clear();
        if reader.read_until(b'\n', &mut first).map_err(cannot_read)? == 0 {
            break;
        }
    }
    checked("line 1", &first, public_key)?;
    checked("the last line", last, public_key).map(Some)
}

fn checked(which: &str, line: &[u8], public_key: &str) -> Result<SealedHead, String> {
    let head: SealedHead = serde_json::from_slice(line.trim_ascii())
        .map_err(|_| format!("{HEADS_FILE}, {which}: not a sealed head (it was changed)"))?;
    if !head.signed_by(public_key) {
        return Err(format!(
            "{HEADS_FILE}, {which}: not signed by the trail's key (it was changed)"
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

        // A torn last line (a crash in the middle of a write) is passed over, and cut off by
        // the next append.
        let path = dir.path().join(HEADS_FILE);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq":30,"hash":"#).unwrap();
        assert_eq!(newest(dir.path(), &public).unwrap(), Some(second));
        let third = SealedHead::seal(&key, 30, &"c".repeat(64), now, now);
        append(dir.path(), &third).unwrap();
        assert_eq!(newest(dir.path(), &public).unwrap(), Some(third));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
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
        assert!(err.contains("the last line: not signed by the trail's key"), "{err}");
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
