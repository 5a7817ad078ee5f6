//! The audit journal: an append-only file of audit events on the gateway's own disk.
//!
//! A call's record is in the journal before its credential leaves: one `write` of one line
//! (and with `--fsync-commits` a share of a group `fdatasync`), where waiting for a database
//! commit cost most of a forwarded call's time. The indexer copies journaled events into the
//! database's hash chain behind the request path, and after a crash, on the next start,
//! whatever was journaled and not yet indexed. This is the durability of Vault's file audit
//! device with the database's queries and hash chain on top.
//!
//! Layout of the directory: `lock`, held exclusively by the one gateway writing there (two
//! replicas sharing a journal would index each other's events twice); and segments named
//! `<uuid v7>.jsonl` (so names sort in creation order), one event body per line. The database
//! keeps, per segment, how many bytes of it are indexed, updated in the same transaction as
//! the events, so every journaled event lands in the chain exactly once.
//!
//! A forwarded call is journaled twice and chained once. Its opening line, written before the
//! credential leaves, is the event body prefixed with [`OPEN`]; its outcome, written when the
//! response ends, is a plain line with the same event id, and only that one is chained. A call
//! whose outcome never came (credgate stopped mid-call) is chained as `interrupted` at the
//! next start, from its opening line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::event::AuditEvent;

const SUFFIX: &str = ".jsonl";
/// Marks the opening line of a call that is in flight.
pub const OPEN: u8 = b'>';

/// A journal directory, locked for this process.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    /// The directory's identity, kept in its `id` file across restarts: it marks the calls this
    /// journal keeps open in the shared database, so a gateway that restarts settles its own
    /// and never another replica's.
    id: String,
    /// Held for the life of the journal: the lock goes with the file.
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "the audit journal at {0} is in use by another credgate process; give each one its own --audit-journal-dir"
    )]
    Locked(PathBuf),
    #[error("audit journal at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("an earlier flush of the audit journal failed; restart credgate once the disk is fixed")]
    FlushFailed,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One journaled line read back, and where it ends in the segment.
#[derive(Debug)]
pub struct Entry {
    pub line: Line,
    pub end: u64,
}

/// A journaled line: an event to chain, or the opening of a call still in flight.
#[derive(Debug)]
// Most lines are events (every call's outcome): boxing them would add an allocation per call
// to save a copy into the indexer's channel.
#[allow(clippy::large_enum_variant)]
pub enum Line {
    /// An event for the chain, with its exact journaled body (the bytes the chain hashes).
    Event(JournaledEvent),
    /// A call in flight: its id and its body, as it would be chained if the call never ends.
    Open { id: uuid::Uuid, body: String },
}

/// An event and its body exactly as journaled, so it is serialised once, not again to chain it.
#[derive(Debug, Clone)]
pub struct JournaledEvent {
    pub event: AuditEvent,
    pub body: String,
}

impl JournaledEvent {
    pub fn new(event: AuditEvent) -> Self {
        let body = event.body();
        Self { event, body }
    }
}

/// What one indexing transaction does: chain events, and keep the calls still in flight where
/// a crash cannot lose them.
#[derive(Debug, Default)]
pub struct JournalBatch {
    /// The journal the lines come from ([`Journal::id`]): the owner of the calls it keeps.
    pub journal: String,
    pub events: Vec<JournaledEvent>,
    /// Calls in flight when the batch was indexed: id and opening body, kept in the database
    /// (their journal lines are behind the segment's indexed offset from now on).
    pub opened: Vec<(uuid::Uuid, String)>,
    /// Calls kept that way earlier whose outcome is in `events`.
    pub closed: Vec<uuid::Uuid>,
}

impl Journal {
    /// Opens (creating it, mode 0700) and locks `dir`.
    pub fn open(dir: &Path) -> Result<Self, JournalError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(at(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(at(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(JournalError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(at(&lock_path)(e)),
        }
        let id = identity(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            id,
            _lock: lock,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The segments present, oldest first.
    pub fn segments(&self) -> Result<Vec<String>, JournalError> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .map_err(at(&self.dir))?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let id = name.strip_suffix(SUFFIX)?;
                uuid::Uuid::parse_str(id).ok().map(|_| id.to_owned())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn path(&self, segment: &str) -> PathBuf {
        self.dir.join(format!("{segment}{SUFFIX}"))
    }

    /// Starts a new segment (mode 0600).
    pub fn create(&self) -> Result<Segment, JournalError> {
        let id = uuid::Uuid::now_v7().to_string();
        let path = self.path(&id);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(at(&path))?;
        // The new name must survive a power cut as well as the lines written into it.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(at(&self.dir))?;
        Ok(Segment { id, file, len: 0, path })
    }

    /// The complete lines of `segment` after byte `from`. A last line without its newline
    /// (a write cut short by a crash of the machine) was never acknowledged and is left out;
    /// a line that is not an event is logged and skipped, so one damaged line cannot hold
    /// back the rest of the trail.
    pub fn read_from(&self, segment: &str, from: u64) -> Result<Vec<Entry>, JournalError> {
        let path = self.path(segment);
        let mut file = File::open(&path).map_err(at(&path))?;
        file.seek(SeekFrom::Start(from)).map_err(at(&path))?;
        let mut reader = BufReader::new(file);
        let mut entries = Vec::new();
        let mut pos = from;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(at(&path))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            let start = pos;
            pos += n as u64;
            match parse(&line[..n - 1]) {
                Ok(line) => entries.push(Entry { line, end: pos }),
                Err(e) => tracing::error!(
                    segment,
                    offset = start,
                    error = %e,
                    "a line of the audit journal is not an event; skipped"
                ),
            }
        }
        Ok(entries)
    }

    /// Deletes a segment whose lines are all indexed, durably: its progress row is deleted
    /// next, and a segment that came back after a power cut without its row would be indexed
    /// a second time.
    pub fn remove(&self, segment: &str) -> Result<(), JournalError> {
        let path = self.path(segment);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(&path)(e)),
            _ => {}
        }
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(at(&self.dir))
    }
}

/// Reads the directory's `id` file, creating it (durably) on first use.
fn identity(dir: &Path) -> Result<String, JournalError> {
    let path = dir.join("id");
    match fs::read_to_string(&path) {
        Ok(text) if uuid::Uuid::parse_str(text.trim()).is_ok() => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(at(&path)(io::Error::new(
                io::ErrorKind::InvalidData,
                "the journal's id file does not hold a UUID",
            )));
        }
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(&path)(e)),
        Err(_) => {}
    }
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = dir.join("id.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(at(&tmp))?;
    file.write_all(id.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(at(&tmp))?;
    fs::rename(&tmp, &path).map_err(at(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))?;
    Ok(id)
}

fn parse(line: &[u8]) -> Result<Line, serde_json::Error> {
    let (open, json) = match line.split_first() {
        Some((&OPEN, rest)) => (true, rest),
        _ => (false, line),
    };
    let event: AuditEvent = serde_json::from_slice(json)?;
    // The body is kept byte for byte: it is what the chain hashes.
    let body = String::from_utf8_lossy(json).into_owned();
    Ok(match open {
        true => Line::Open { id: event.id, body },
        false => Line::Event(JournaledEvent { event, body }),
    })
}

/// The segment being written.
#[derive(Debug)]
pub struct Segment {
    pub id: String,
    file: File,
    len: u64,
    path: PathBuf,
}

impl Segment {
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Flushes what was written to the disk.
    pub fn flush(&self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(at(&self.path))
    }

    /// A second handle on the segment's file, for flushing it from another thread.
    pub fn sync_handle(&self) -> Result<File, JournalError> {
        self.file.try_clone().map_err(at(&self.path))
    }

    /// Appends whole lines (to the page cache: [`flush`](Self::flush) puts them on disk). On
    /// failure the segment is cut back to where it was, so a half-written line never joins the
    /// next one into a damaged line.
    pub fn append(&mut self, lines: &[u8]) -> Result<u64, JournalError> {
        let written = self.file.write_all(lines);
        if let Err(e) = written {
            if let Err(cut) = self.file.set_len(self.len) {
                // The partial line stays: end it, so the next line starts a line of its own
                // (the damaged one is skipped when read back), and count bytes from the file's
                // real end, so stored offsets keep pointing at line starts.
                tracing::error!(error = %cut, "the audit journal could not be cut back after a failed write");
                let _ = self.file.write_all(b"\n");
                if let Ok(meta) = self.file.metadata() {
                    self.len = meta.len();
                }
            }
            return Err(at(&self.path)(e));
        }
        self.len += lines.len() as u64;
        Ok(self.len)
    }
}

#[cfg(test)]
impl Segment {
    /// Puts `file` in the segment's place (a test's failing disk) and returns the one it held.
    pub fn swap_file(&mut self, file: File) -> File {
        std::mem::replace(&mut self.file, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    fn line(action: &str) -> Vec<u8> {
        let mut out = AuditEvent::new(AuditKind::Proxy, action, "allowed").body().into_bytes();
        out.push(b'\n');
        out
    }

    fn action(entry: &Entry) -> &str {
        match &entry.line {
            Line::Event(e) => &e.event.action,
            Line::Open { .. } => "(open)",
        }
    }

    #[test]
    fn events_read_back_from_any_offset_and_a_torn_tail_is_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(tmp.path()).unwrap();
        let mut seg = journal.create().unwrap();
        let one = seg.append(&line("a.one")).unwrap();
        let mut two = line("a.two");
        two.extend_from_slice(b"not json\n");
        two.extend(line("a.three"));
        let end = seg.append(&two).unwrap();
        seg.flush().unwrap();
        // A crash of the machine mid-write: half a line, no newline.
        let torn = line("a.four");
        seg.append(&torn[..torn.len() / 2]).unwrap();

        let all = journal.read_from(&seg.id, 0).unwrap();
        let actions: Vec<&str> = all.iter().map(action).collect();
        assert_eq!(actions, ["a.one", "a.two", "a.three"]);
        assert_eq!(all[0].end, one);
        assert_eq!(all[2].end, end);
        let rest = journal.read_from(&seg.id, one).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(action(&rest[0]), "a.two");
    }

    #[test]
    fn opening_lines_read_back_as_open_calls_and_bodies_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(tmp.path()).unwrap();
        let mut seg = journal.create().unwrap();
        let event = AuditEvent::new(AuditKind::Proxy, "proxy.request", "allowed");
        let body = event.body();
        let mut lines = vec![OPEN];
        lines.extend_from_slice(body.as_bytes());
        lines.push(b'\n');
        lines.extend_from_slice(body.as_bytes());
        lines.push(b'\n');
        seg.append(&lines).unwrap();
        let read = journal.read_from(&seg.id, 0).unwrap();
        match &read[0].line {
            Line::Open { id, body: open } => assert_eq!((*id, open), (event.id, &body)),
            other => panic!("expected an opening line, got {other:?}"),
        }
        match &read[1].line {
            Line::Event(e) => assert_eq!((&e.event, &e.body), (&event, &body)),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn one_process_per_journal_and_segments_sort_oldest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(tmp.path()).unwrap();
        assert!(matches!(Journal::open(tmp.path()), Err(JournalError::Locked(_))));
        let a = journal.create().unwrap().id;
        let b = journal.create().unwrap().id;
        fs::write(tmp.path().join("notes.txt"), "ignored").unwrap();
        assert_eq!(journal.segments().unwrap(), [a.clone(), b.clone()]);
        journal.remove(&a).unwrap();
        journal.remove(&a).unwrap();
        assert_eq!(journal.segments().unwrap(), [b]);
        let id = journal.id().to_owned();
        drop(journal);
        let again = Journal::open(tmp.path()).expect("the lock goes with the process's handle");
        assert_eq!(again.id(), id, "a journal keeps its identity across restarts");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(Journal::open(other.path()).unwrap().id(), id);
    }

    #[test]
    fn a_failed_write_is_reported_and_leaves_offsets_at_line_starts() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(tmp.path()).unwrap();
        let mut seg = journal.create().unwrap();
        let one = seg.append(&line("a.one")).unwrap();
        // /dev/full refuses every write with ENOSPC, as a full disk does, and cannot be cut
        // back either: the count then follows the file's real end.
        let full = OpenOptions::new().append(true).open("/dev/full").unwrap();
        let real = std::mem::replace(&mut seg.file, full);
        assert!(seg.append(&line("a.two")).is_err());
        assert_eq!(seg.len(), seg.file.metadata().unwrap().len());
        // Back on the real file, nothing of the failed line reached it.
        seg.file = real;
        seg.len = one;
        seg.append(&line("a.three")).unwrap();
        let read = journal.read_from(&seg.id, 0).unwrap();
        let actions: Vec<&str> = read.iter().map(action).collect();
        assert_eq!(actions, ["a.one", "a.three"]);
        assert_eq!(read[1].end, seg.len());
    }
}
