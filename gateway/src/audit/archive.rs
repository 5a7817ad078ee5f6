//! Archive files: the records retention moves out of the database, one file per period, as
//! zstd-compressed JSON lines. Each line is one record exactly as it was chained:
//!
//! ```text
//! {"seq":41,"prev_hash":"<64 hex>","hash":"<64 hex>","body":{…the event, byte for byte…}}
//! ```
//!
//! The body is written verbatim (not re-serialised), so the hash still covers exactly those
//! bytes and `zstdcat FILE | jq .body.action` reads it like any event. A file is proven by its
//! [`Checkpoint`]: its SHA-256, its span of records and the hashes at both ends, signed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zstd::stream::read::Decoder;
use zstd::stream::write::Encoder;

use super::chain::{Chained, VerifyReport, verify_in_order};
use super::checkpoint::Checkpoint;
use super::event::StoredAudit;

/// zstd's compression level for archive files.
const LEVEL: i32 = 3;

/// Records checked at a time while reading a file.
const VERIFY_BATCH: usize = 4_096;
/// Decompressed bytes handed at a time from the thread that reads a file to the one that
/// checks it: about 6,000 records, few enough hand-overs to cost nothing.
const VERIFY_CHUNK: usize = 4 << 20;

/// One line of an archive file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedRecord {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The event's JSON, the exact bytes the hash covers.
    pub body: String,
}

/// A line of a file as verification reads it: views into the line, nothing copied.
struct LineView<'a> {
    seq: i64,
    prev_hash: &'a str,
    hash: &'a str,
    body: &'a str,
}

impl Chained for LineView<'_> {
    fn seq(&self) -> i64 {
        self.seq
    }
    fn prev_hash(&self) -> &str {
        self.prev_hash
    }
    fn hash(&self) -> &str {
        self.hash
    }
    fn own_fault(&self) -> Option<String> {
        // The hash alone: each record's body and columns were checked when it was archived,
        // and the signed checkpoint and the chain fix every byte since.
        (!super::chain::links_to(self.prev_hash, self.seq, self.body, self.hash))
            .then(|| "hash does not match its content (the record was changed)".into())
    }
}

/// A period's file name: its period and its span of records, so names sort in chain order and
/// never repeat.
pub fn file_name(period: &str, first_seq: i64, last_seq: i64) -> String {
    format!("audit-{period}-{first_seq:012}-{last_seq:012}.jsonl.zst")
}

/// The span of records a file's name says it holds.
pub fn span_of(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_prefix("audit-")?.strip_suffix(".jsonl.zst")?;
    let mut parts = stem.rsplitn(3, '-');
    let mut number = || {
        let part = parts.next().filter(|p| p.len() == 12)?;
        part.parse::<i64>().ok()
    };
    let last = number()?;
    let first = number()?;
    Some((first, last))
}

/// Appends a record's line to `out`.
pub fn write_line(row: &StoredAudit, out: &mut Vec<u8>) {
    // The hashes are hex and the body is compact JSON (no raw newline), so nothing needs
    // escaping and the line can be read back by position.
    let _ = write!(
        out,
        "{{\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"body\":",
        row.seq, row.prev_hash, row.hash
    );
    out.extend_from_slice(row.body.as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Reads a line back, strictly: exactly what [`write_line`] writes.
pub fn parse_line(line: &str) -> Result<ArchivedRecord, String> {
    let v = view(line)?;
    Ok(ArchivedRecord {
        seq: v.seq,
        prev_hash: v.prev_hash.to_owned(),
        hash: v.hash.to_owned(),
        body: v.body.to_owned(),
    })
}

fn view(line: &str) -> Result<LineView<'_>, String> {
    let bad = || "not an archive line".to_owned();
    let rest = line.strip_prefix("{\"seq\":").ok_or_else(bad)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let seq: i64 = rest[..digits].parse().map_err(|_| bad())?;
    let rest = rest[digits..].strip_prefix(",\"prev_hash\":\"").ok_or_else(bad)?;
    let (prev_hash, rest) = hex64(rest).ok_or_else(bad)?;
    let rest = rest.strip_prefix("\",\"hash\":\"").ok_or_else(bad)?;
    let (hash, rest) = hex64(rest).ok_or_else(bad)?;
    let body = rest
        .strip_prefix("\",\"body\":")
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(bad)?;
    Ok(LineView {
        seq,
        prev_hash,
        hash,
        body,
    })
}

fn hex64(text: &str) -> Option<(&str, &str)> {
    let hex = text.get(..64)?;
    hex.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then(|| (hex, &text[64..]))
}

/// Counts and hashes the bytes that pass through, on their way to or from the file.
struct Hashing<T> {
    inner: T,
    sha: Sha256,
    bytes: u64,
}

impl<T: Write> Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A file being written: under a temporary name of its own until [`finish`](Self::finish) has it
/// on disk, so a crash never leaves a half file under a period's name, and two writers never
/// share one.
pub struct ArchiveWriter {
    encoder: Encoder<'static, Hashing<std::fs::File>>,
    dir: PathBuf,
    temp: PathBuf,
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("temp", &self.temp)
            .finish_non_exhaustive()
    }
}

/// What a finished file is: what its checkpoint records of it.
#[derive(Clone, Debug)]
pub struct WrittenFile {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

impl ArchiveWriter {
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // A fresh name, created only if nothing is there (never through a link someone else
        // put in the directory).
        let temp = dir.join(format!(".audit-{}.partial", uuid::Uuid::new_v4().simple()));
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        Ok(Self {
            // Level 3, zstd's default: a sixth of gzip's time for a smaller file.
            encoder: Encoder::new(
                Hashing {
                    inner: file,
                    sha: Sha256::new(),
                    bytes: 0,
                },
                LEVEL,
            )?,
            dir: dir.to_owned(),
            temp,
        })
    }

    /// Compresses and writes lines (blocking: run it off the async threads).
    pub fn write(&mut self, lines: &[u8]) -> std::io::Result<()> {
        self.encoder.write_all(lines)
    }

    /// Ends the stream, flushes the file to disk and gives it its name.
    pub fn finish(self, name: &str) -> std::io::Result<WrittenFile> {
        let hashing = self.encoder.finish()?;
        hashing.inner.sync_all()?;
        std::fs::rename(&self.temp, self.dir.join(name))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(WrittenFile {
            name: name.to_owned(),
            sha256: hex::encode(hashing.sha.finalize()),
            bytes: hashing.bytes,
        })
    }
}

/// Proves one file against its checkpoint (whose signature the caller checked): the file's
/// bytes are the ones signed, and its records are the checkpoint's span, each linked to the one
/// before, the first to `first_prev_hash`, the last hashing to `head_hash`. Returns the records
/// checked, or the first problem. Blocking.
pub fn verify_file(dir: &Path, checkpoint: &Checkpoint) -> Result<u64, String> {
    verify_file_with(dir, checkpoint, &[])
}

/// [`verify_file`], also checking that each record `anchor.0` in it has the hash `anchor.1`.
fn verify_file_with(dir: &Path, checkpoint: &Checkpoint, anchors: &[(i64, &str)]) -> Result<u64, String> {
    let path = dir.join(&checkpoint.file);
    let open = || std::fs::File::open(&path).map_err(|e| format!("{}: cannot open: {e}", checkpoint.file));
    // The bytes first: only the file that was signed is ever decompressed (so a file made to
    // expand without end is refused before it is read).
    let mut hashing = Hashing {
        inner: open()?,
        sha: Sha256::new(),
        bytes: 0,
    };
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| format!("{}: cannot read: {e}", checkpoint.file))?;
    if hex::encode(hashing.sha.finalize()) != checkpoint.file_sha256 {
        return Err(format!(
            "{}: its SHA-256 is not the checkpoint's (the file was changed)",
            checkpoint.file
        ));
    }
    let mut report = VerifyReport::from_checkpoint(checkpoint.first_seq - 1, &checkpoint.first_prev_hash);
    walk(&mut open()?, &mut report, anchors).map_err(|e| format!("{}: {e}", checkpoint.file))?;
    if !report.ok {
        return Err(format!("{}: {}", checkpoint.file, report.error.unwrap_or_default()));
    }
    if report.head_seq != checkpoint.last_seq
        || report.head_hash != checkpoint.head_hash
        || report.records != u64::try_from(checkpoint.records).unwrap_or(0)
    {
        return Err(format!(
            "{}: it ends at record {}, the checkpoint at {} (records are missing)",
            checkpoint.file, report.head_seq, checkpoint.last_seq
        ));
    }
    Ok(report.records)
}

/// Reads the records of a compressed stream into `report`, a batch at a time; the record
/// `anchor.0` of each anchor, if it is there, must hash to `anchor.1`.
///
/// Two threads: one decompresses the stream into chunks of whole lines, the calling one parses
/// and hashes them. On one thread each step waited for the other, and a single day's file (the
/// common case: one file, nothing to spread over cores) was checked at 1.10–1.15 M records a
/// second; with the two overlapped, 1.43–1.52 M (a million records, BENCHMARKS.md). Hashing is
/// the longer half: decompressing alone runs at 3.4 M.
fn walk(reader: &mut (impl Read + Send), report: &mut VerifyReport, anchors: &[(i64, &str)]) -> Result<(), String> {
    walk_in_chunks(reader, report, anchors, VERIFY_CHUNK)
}

/// [`walk`], handing `chunk_bytes` at a time between its threads.
fn walk_in_chunks(
    reader: &mut (impl Read + Send),
    report: &mut VerifyReport,
    anchors: &[(i64, &str)],
    chunk_bytes: usize,
) -> Result<(), String> {
    let decoder = Decoder::new(reader).map_err(|e| format!("cannot read: {e}"))?;
    std::thread::scope(|scope| {
        // One chunk being checked, one decompressed ahead; their buffers come back for reuse.
        let (full, filled) = std::sync::mpsc::sync_channel(1);
        let (empty, emptied) = std::sync::mpsc::channel();
        scope.spawn(move || decompress(decoder, chunk_bytes, &full, &emptied));
        // Ends when the reading thread has sent its last chunk; returning early drops the
        // receiver, and the reading thread stops at its next chunk.
        for chunk in filled {
            let chunk: Vec<u8> = chunk?;
            check_lines(&chunk, report, anchors)?;
            if !report.ok {
                return Ok(());
            }
            let _ = empty.send(chunk);
        }
        Ok(())
    })
}

/// The reading half of [`walk`]: decompressed lines in chunks of about `chunk_bytes`, each
/// ending at a line's end (the last one at the stream's end).
fn decompress(
    mut decoder: impl Read,
    chunk_bytes: usize,
    full: &std::sync::mpsc::SyncSender<Result<Vec<u8>, String>>,
    emptied: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut chunk = emptied.try_recv().unwrap_or_else(|_| Vec::with_capacity(chunk_bytes));
        chunk.clear();
        chunk.append(&mut carry);
        let want = chunk_bytes.saturating_sub(chunk.len()).max(1) as u64;
        let read = match (&mut decoder).take(want).read_to_end(&mut chunk) {
            Ok(n) => n,
            Err(e) => {
                let _ = full.send(Err(format!("cannot read: {e}")));
                return;
            }
        };
        let end = (read as u64) < want;
        if !end {
            match memchr::memrchr(b'\n', &chunk) {
                Some(last) => carry.extend_from_slice(&chunk[last + 1..]),
                None => {
                    let _ = full.send(Err(format!("not an archive line (no line end in {chunk_bytes} bytes)")));
                    return;
                }
            }
            chunk.truncate(chunk.len() - carry.len());
        }
        if full.send(Ok(chunk)).is_err() || end {
            return;
        }
    }
}

/// The checking half of [`walk`]: the lines of one chunk, a batch at a time.
fn check_lines(chunk: &[u8], report: &mut VerifyReport, anchors: &[(i64, &str)]) -> Result<(), String> {
    let text =
        std::str::from_utf8(chunk).map_err(|_| format!("after record {}: cannot read: not UTF-8", report.head_seq))?;
    let mut lines = text.split_terminator('\n').peekable();
    while lines.peek().is_some() {
        let batch = lines
            .by_ref()
            .take(VERIFY_BATCH)
            .enumerate()
            .map(|(i, t)| view(t).map_err(|e| format!("after record {}: {e}", report.head_seq + i as i64)))
            .collect::<Result<Vec<_>, _>>()?;
        verify_in_order(report, &batch);
        if let Some((seq, _)) = anchors
            .iter()
            .find(|(seq, hash)| batch.iter().any(|r| r.seq == *seq && r.hash != *hash))
            && report.ok
        {
            report.ok = false;
            report.error = Some(format!(
                "record {seq}: its hash is not the one you kept or that was sealed (the trail was rewritten before it was archived)"
            ));
        }
        if !report.ok {
            return Ok(());
        }
    }
    Ok(())
}

/// What `verify_archive` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveReport {
    /// Files proven, and the records in them.
    pub files: u64,
    pub records: u64,
    /// The last archived record's number and hash: where the live trail must continue.
    pub head_seq: i64,
    pub head_hash: String,
    pub ok: bool,
    /// The first problem, in chain order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Archive files in the directory that no checkpoint names: a failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreferenced: Vec<String>,
}

/// Proves the archived part of the trail: every checkpoint signed by `public_key`, each
/// continuing the one before from the genesis hash, and each file in `dir` matching its
/// checkpoint (files checked side by side, one per core). Blocking.
pub fn verify_archive(dir: &Path, public_key: &str, checkpoints: &[Checkpoint]) -> ArchiveReport {
    verify_archive_from(dir, public_key, checkpoints, &[])
}

/// [`verify_archive`], also checking heads kept from earlier (`SEQ`, `HASH`: an earlier
/// verification's, a sealed one) whose records are archived: the archive must hold each record
/// with that hash.
pub fn verify_archive_from(
    dir: &Path,
    public_key: &str,
    checkpoints: &[Checkpoint],
    kept: &[(i64, &str)],
) -> ArchiveReport {
    let mut report = ArchiveReport {
        head_hash: super::GENESIS.to_owned(),
        ok: true,
        ..Default::default()
    };
    let fail = |report: &mut ArchiveReport, why: String| {
        report.ok = false;
        report.error = Some(why);
    };
    for c in checkpoints {
        if !c.signed_by(public_key) {
            fail(
                &mut report,
                format!(
                    "{}: its checkpoint is not signed by the trail's key (it was changed)",
                    c.file
                ),
            );
            return report;
        }
        if c.first_seq != report.head_seq + 1 || c.first_prev_hash != report.head_hash {
            let why = format!(
                "{}: it does not continue the file before it (records {} to {} are missing)",
                c.file,
                report.head_seq + 1,
                c.first_seq - 1
            );
            fail(&mut report, why);
            return report;
        }
        report.head_seq = c.last_seq;
        report.head_hash.clone_from(&c.head_hash);
    }
    if kept.iter().any(|(seq, hash)| *seq == 0 && *hash != super::GENESIS) {
        fail(&mut report, "record 0: the genesis hash is all zeros".into());
        return report;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let results: Vec<(usize, Result<u64, String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(checkpoints.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(c) = checkpoints.get(i) else { return done };
                        let anchors: Vec<(i64, &str)> = kept
                            .iter()
                            .copied()
                            .filter(|(seq, _)| (c.first_seq..=c.last_seq).contains(seq))
                            .collect();
                        done.push((i, verify_file_with(dir, c, &anchors)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    let mut results = results;
    results.sort_by_key(|(i, _)| *i);
    if results.len() != checkpoints.len() {
        fail(&mut report, "a file's check stopped without a result".into());
        return report;
    }
    for (_, result) in results {
        match result {
            Ok(records) => {
                report.files += 1;
                report.records += records;
            }
            Err(why) => {
                fail(&mut report, why);
                break;
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let named: std::collections::HashSet<&str> = checkpoints.iter().map(|c| c.file.as_str()).collect();
        let mut extra: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("audit-") && n.ends_with(".jsonl.zst") && !named.contains(n.as_str()))
            .collect();
        extra.sort();
        // Files of the trail that no checkpoint names: their checkpoints were removed (a
        // crash between a file and its checkpoint leaves none: the next pass writes that file
        // again under the same name, and signs it).
        if report.ok && !extra.is_empty() {
            fail(
                &mut report,
                format!(
                    "{} archive file(s) that no checkpoint names, from {} (their checkpoints were removed?)",
                    extra.len(),
                    extra[0]
                ),
            );
        }
        report.unreferenced = extra;
    }
    report
}

/// Reads every record of an archive file (for tools and tests; verification streams instead).
pub fn read_file(path: &Path) -> std::io::Result<Vec<ArchivedRecord>> {
    let lines = BufReader::new(Decoder::new(std::fs::File::open(path)?)?);
    lines
        .lines()
        .map(|line| line.and_then(|l| parse_line(&l).map_err(std::io::Error::other)))
        .collect()
}

/// Writes records as an archive file would hold them (for tools and tests).
pub fn write_file(path: &Path, records: &[ArchivedRecord]) -> std::io::Result<()> {
    let mut encoder = Encoder::new(std::fs::File::create(path)?, LEVEL)?;
    for r in records {
        writeln!(
            encoder,
            "{{\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"body\":{}}}",
            r.seq, r.prev_hash, r.hash, r.body
        )?;
    }
    encoder.finish()?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_says_its_span() {
        let name = file_name("2026-12-01", 1, 12_345);
        assert_eq!(name, "audit-2026-12-01-000000000001-000000012345.jsonl.zst");
        assert_eq!(span_of(&name), Some((1, 12_345)));
        assert_eq!(span_of("audit-2026-12-01.jsonl.zst"), None);
    }

    /// A file of `n` chained records and the checkpoint that names it as it is (unsigned: the
    /// file check trusts its caller for the signature).
    fn chained_file(dir: &Path, records: &[ArchivedRecord]) -> Checkpoint {
        let name = file_name("2026-12-01", records[0].seq, records[records.len() - 1].seq);
        write_file(&dir.join(&name), records).unwrap();
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        Checkpoint {
            period: "2026-12-01".into(),
            first_seq: records[0].seq,
            last_seq: records[records.len() - 1].seq,
            first_prev_hash: records[0].prev_hash.clone(),
            head_hash: records[records.len() - 1].hash.clone(),
            records: records.len() as i64,
            first_at: crate::clock::now(),
            last_at: crate::clock::now(),
            file: name,
            file_sha256: hex::encode(Sha256::digest(&bytes)),
            file_bytes: bytes.len() as i64,
            created_at: crate::clock::now(),
            key_id: String::new(),
            signature: String::new(),
        }
    }

    fn records(n: i64) -> Vec<ArchivedRecord> {
        let mut prev = super::super::GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let body = format!("{{\"n\":{seq}}}");
                let hash = super::super::link(&prev, seq, &body);
                ArchivedRecord {
                    seq,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                    body,
                }
            })
            .collect()
    }

    #[test]
    fn a_file_is_checked_record_by_record_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        // More than two batches, so a batch's first link is to the one before it.
        let good = records(10_000);
        let cp = chained_file(dir.path(), &good);
        assert_eq!(verify_file(dir.path(), &cp), Ok(10_000));
        // A body changed and its hash left: the record's own fault.
        let mut changed = good.clone();
        changed[5_000].body = "{\"n\":0}".into();
        // A record at a batch's start linked to something else than the record before it.
        let mut unlinked = good.clone();
        unlinked[8_192].prev_hash = "f".repeat(64);
        unlinked[8_192].hash = super::super::link(&unlinked[8_192].prev_hash, 8_193, &unlinked[8_192].body);
        for (records, want) in [
            (changed, "record 5001: hash does not match"),
            (unlinked, "record 8193: prev_hash does not match"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let cp = chained_file(dir.path(), &records);
            let err = verify_file(dir.path(), &cp).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn lines_split_across_the_reading_threads_chunks_are_checked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let good = records(3_000);
        let cp = chained_file(dir.path(), &good);
        let walked = |records: &[ArchivedRecord], chunk: usize| {
            let dir = tempfile::tempdir().unwrap();
            let cp = chained_file(dir.path(), records);
            let mut report = VerifyReport::from_checkpoint(0, super::super::GENESIS);
            let mut file = std::fs::File::open(dir.path().join(&cp.file)).unwrap();
            walk_in_chunks(&mut file, &mut report, &[], chunk).map(|()| report)
        };
        // Chunks of 1,000 bytes end mid-line (a line is about 170): every line is put back
        // together, and none is counted twice or lost.
        let report = walked(&good, 1_000).unwrap();
        assert!(report.ok, "{:?}", report.error);
        assert_eq!((report.records, report.head_seq), (3_000, 3_000));
        assert_eq!(report.head_hash, cp.head_hash);
        // A record changed in a later chunk is found there.
        let mut changed = good.clone();
        changed[2_500].body = "{\"n\":0}".into();
        let report = walked(&changed, 1_000).unwrap();
        assert_eq!((report.ok, report.records), (false, 2_500));
        assert!(report.error.unwrap().starts_with("record 2501: hash does not match"));
        // A line longer than a chunk is not a line of an archive file.
        let err = walked(&good, 100).unwrap_err();
        assert!(err.contains("no line end in 100 bytes"), "{err}");
    }

    #[test]
    fn a_line_reads_back_exactly() {
        let row = StoredAudit {
            seq: 7,
            id: String::new(),
            at: 0,
            kind: String::new(),
            action: String::new(),
            outcome: String::new(),
            principal_id: None,
            grant_id: None,
            secret_id: None,
            request_id: None,
            user_principal_id: None,
            body: r#"{"id":"x","note":"a \"quoted\" }\n"}"#.into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
        };
        let mut out = Vec::new();
        write_line(&row, &mut out);
        let text = String::from_utf8(out).unwrap();
        let line = text.strip_suffix('\n').unwrap();
        let back = parse_line(line).unwrap();
        assert_eq!(
            (
                back.seq,
                back.prev_hash.as_str(),
                back.hash.as_str(),
                back.body.as_str()
            ),
            (7, row.prev_hash.as_str(), row.hash.as_str(), row.body.as_str())
        );
        // The line is JSON an operator's tools read.
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["body"]["note"], "a \"quoted\" }\n");
        // The frame is read strictly; what is inside the body is the hash's to check.
        for broken in [
            &line[1..],
            &line.replace("\"body\":", "\"body\" :"),
            &line.replace("\"seq\":7", "\"seq\":x"),
            &line.replace(&"a".repeat(64), &"A".repeat(64)),
        ] {
            assert!(parse_line(broken).is_err(), "{broken}");
        }
    }
}
