//! The audit writer: each event is appended to the journal by the task that records it, the
//! caller goes on once it is there, and an indexer copies journaled events into the database's
//! hash chain behind the request path.
//!
//! The append happens inline: a `write` of the call's line to the page cache costs a few
//! microseconds, where handing each event to a writer thread and back cost two context
//! switches per call (most of the gateway's CPU on a busy core). With `--fsync-commits` the
//! flush to disk is a group commit: a syncer thread flushes whatever was written since its
//! last flush, and every caller waits for the flush that covers its line.
//!
//! A forwarded call is one record in the chain, not two: its opening is journaled before the
//! credential leaves ([`AuditWriter::open`]), its outcome when the response ends
//! ([`AuditWriter::close_call`]), and the indexer chains the outcome alone. Halving the rows,
//! index entries and hashes per call cut the gateway's CPU per call by a fifth. The outcome's
//! line waits to share the next line's `write`, so under load a call costs one `write`. A call
//! still in flight when its opening is indexed is kept in the database (`audit_open_calls`)
//! until its outcome comes, so neither a long stream nor a crash loses it.
//!
//! Lines accepted and not yet indexed are bounded by the capacity: past it the caller gets
//! [`AuditError::Unavailable`] at once, and the data plane answers `audit_unavailable` rather
//! than call out unaudited. So a database that stops taking writes is absorbed for a while,
//! then refuses calls, and catches up by itself when it returns; the journal keeps
//! everything accepted across a crash meanwhile.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use uuid::Uuid;

use crate::audit::AuditEvent;
use crate::audit::journal::{Entry, Journal, JournalBatch, JournalError, JournaledEvent, Line, OPEN, Segment};
use crate::store::{Store, StoreError};

/// Events indexed per database transaction at most: 13 binds each, within SQLite's 32,766 and
/// PostgreSQL's 65,535 per statement.
const INDEX_BATCH: usize = 2048;
/// How long the indexer lets events gather before a transaction. Every commit writes each page
/// it dirtied once, so fewer, larger commits cost less per event: 50 ms gave 15% more calls per
/// second than 10 ms on a saturated core (BENCHMARKS.md). Reads of the trail wait for it.
const INDEX_LINGER: Duration = Duration::from_millis(50);
/// A segment this large is closed and a new one started, so indexed ones can be deleted.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// How long the syncer lets lines gather before a flush. A flush takes about as long as a
/// call's own work, so flushing at once covers one or two calls and costs a flush each; a
/// short wait makes each flush cover several (PostgreSQL's `commit_delay`).
const SYNC_GATHER: Duration = Duration::from_micros(300);
/// The longest a read of the trail waits for the indexer to catch up.
const SETTLE: Duration = Duration::from_secs(2);
/// The longest pause between two attempts to index while the database refuses.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// How long a call's outcome line may wait to share the next line's `write`. Under load the
/// next call's opening comes sooner, so each call costs one `write` instead of two; when idle,
/// the outcome is written this long after the response ended.
const OUTCOME_DEFER: Duration = Duration::from_millis(5);
/// At most one log line per this long for events dropped while the writer refuses them.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    #[error("the audit trail cannot be written right now")]
    Unavailable,
}

/// Why the audit trail could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot index the audit journal left by the last run: {0}")]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug)]
pub struct AuditOptions {
    pub journal_dir: PathBuf,
    /// Flush the journal to disk before a caller goes on, so a record survives a power cut.
    pub fsync: bool,
    /// Events accepted and not yet indexed, at most.
    pub capacity: usize,
    /// Size at which a journal segment is closed and a new one started ([`SEGMENT_BYTES`]).
    pub segment_bytes: u64,
}

/// A journaled line on its way to the database, and where it ends in its segment.
struct Batch {
    segment: Arc<str>,
    end: u64,
    line: Line,
}

/// The outcome chained for a call whose outcome never came.
pub const INTERRUPTED: &str = "interrupted";

/// The journal's writing end, behind a mutex held for one `write`.
struct Tail {
    journal: Arc<Journal>,
    segment_bytes: u64,
    segment: Segment,
    segment_id: Arc<str>,
    /// `None` once closed.
    to_index: Option<mpsc::UnboundedSender<Batch>>,
    /// Bytes written by this process over all segments: the syncer's measure of progress.
    written: u64,
    /// The file the syncer flushes (the current segment's).
    sync_file: Arc<File>,
    fsync: bool,
    /// With `fsync`: a flush failed, so nothing written from here on could be vouched for.
    flush_failed: bool,
    /// Outcome lines waiting to share the next `write`, and each one's length and line.
    deferred: Vec<u8>,
    deferred_lines: Vec<(u64, Line)>,
}

/// How far the journal is flushed to disk (`--fsync-commits`).
#[derive(Clone, Copy, Debug, Default)]
struct Flushed {
    upto: u64,
    /// A flush failed. Sticky: Linux reports a write-back error once per open file, so a
    /// later flush that succeeds says nothing about the lines the failed one covered, and
    /// from here on every call is refused until credgate is restarted.
    failed: bool,
}

#[derive(Clone, Debug)]
pub struct AuditWriter {
    inner: Arc<Inner>,
}

struct Inner {
    tail: Mutex<Tail>,
    stats: WriterStats,
    capacity: usize,
    /// Present with `--fsync-commits`: wakes the syncer thread.
    syncer: Option<std::sync::mpsc::Sender<()>>,
    flushed: watch::Sender<Flushed>,
    /// Wakes the task that writes deferred outcome lines nobody else wrote.
    deferred: Arc<tokio::sync::Notify>,
    /// When a dropped event was last logged, in seconds since `started` (0: never).
    drop_logged_at: AtomicU64,
    started: std::time::Instant,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("capacity", &self.capacity)
            .field("fsync", &self.syncer.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct WriterStats {
    /// Events accepted and not yet indexed (or failed).
    pub queued: AtomicUsize,
    /// Events indexed into the database.
    pub written: AtomicU64,
    /// Events refused (queue full or closed) or not journaled (the write failed).
    pub failed: AtomicU64,
    /// Attempts to index a batch that the database refused (each retried).
    pub index_errors: AtomicU64,
    accepted: AtomicU64,
    /// Calls holding a [`Room`]: admitted and their opening not yet written.
    admitted: AtomicUsize,
    closed: AtomicBool,
    /// Events accepted and since indexed or failed: what [`AuditWriter::settle`] waits on.
    finished: watch::Sender<u64>,
}

impl WriterStats {
    fn finish(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
        self.finished.send_modify(|v| *v += n as u64);
    }
}

impl AuditWriter {
    /// Opens the journal, indexes what the last run left in it, then starts the indexer (and
    /// with `fsync`, the syncer thread). The returned task ends once [`close`](Self::close)
    /// was called and everything accepted is indexed.
    pub async fn start(
        store: Arc<dyn Store>,
        options: AuditOptions,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), StartError> {
        let journal = Arc::new(Journal::open(&options.journal_dir)?);
        let recovered = recover(store.as_ref(), &journal).await?;
        if recovered > 0 {
            tracing::info!(events = recovered, "indexed audit events journaled by the last run");
        }
        let segment = journal.create()?;
        let (to_index, from_journal) = mpsc::unbounded_channel();
        let sync_file = Arc::new(segment.sync_handle()?);
        let (syncer, woken) = match options.fsync {
            true => {
                let (wake, woken) = std::sync::mpsc::channel();
                (Some(wake), Some(woken))
            }
            false => (None, None),
        };
        let inner = Arc::new(Inner {
            tail: Mutex::new(Tail {
                journal: journal.clone(),
                segment_bytes: options.segment_bytes.max(1),
                segment_id: segment.id.as_str().into(),
                segment,
                to_index: Some(to_index),
                written: 0,
                sync_file,
                fsync: options.fsync,
                flush_failed: false,
                deferred: Vec::new(),
                deferred_lines: Vec::new(),
            }),
            stats: WriterStats {
                queued: AtomicUsize::new(0),
                written: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                index_errors: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                admitted: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                finished: watch::channel(0).0,
            },
            capacity: options.capacity.max(1),
            syncer,
            flushed: watch::channel(Flushed::default()).0,
            deferred: Arc::new(tokio::sync::Notify::new()),
            drop_logged_at: AtomicU64::new(0),
            started: std::time::Instant::now(),
        });
        if let Some(woken) = woken {
            // It holds the writer weakly: it ends when the last handle goes.
            let weak = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name("credgate-audit-sync".into())
                .spawn(move || sync_loop(&woken, &weak))
                .map_err(|e| JournalError::Io {
                    path: options.journal_dir.clone(),
                    source: e,
                })?;
        }
        let writer = Self { inner };
        tokio::spawn(deferred_loop(
            writer.inner.deferred.clone(),
            Arc::downgrade(&writer.inner),
        ));
        let task = tokio::spawn(index_loop(store, journal, from_journal, writer.clone()));
        Ok((writer, task))
    }

    /// Appends `event` to the journal and returns once it is there (with `--fsync-commits`,
    /// once it is on disk).
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        let end = self.append_event(event)?;
        self.flushed(end).await
    }

    /// Journals the opening of a call, before its credential leaves, and returns once it is
    /// there (with `--fsync-commits`, once it is on disk). The call's outcome is recorded
    /// later through the [`OpenCall`] put in `opened` as soon as the line is written (so also
    /// when the flush then fails, and the outcome is that refusal): that outcome is the call's
    /// one record in the chain, and the opening line is chained only if it never comes.
    pub async fn open(&self, event: &AuditEvent, opened: &mut Option<OpenCall>) -> Result<(), AuditError> {
        let id = event.id;
        let end = self.append(event.body(), Kind::Open, |body| Line::Open { id, body })?;
        *opened = Some(OpenCall {
            writer: self.clone(),
            event: Some(event.clone()),
        });
        self.flushed(end).await
    }

    async fn flushed(&self, end: u64) -> Result<(), AuditError> {
        let Some(syncer) = &self.inner.syncer else {
            return Ok(());
        };
        let mut flushed = self.inner.flushed.subscribe();
        let _ = syncer.send(());
        match flushed.wait_for(|f| f.failed || f.upto >= end).await {
            Ok(f) if !f.failed => Ok(()),
            _ => Err(AuditError::Unavailable),
        }
    }

    /// Records the outcome of a call opened with [`open`](Self::open), without waiting: its
    /// line shares the next line's `write` (at most [`OUTCOME_DEFER`] later). Should credgate
    /// stop before then, the opening is chained as `interrupted`, as for a call in flight.
    fn close_call(&self, event: AuditEvent) {
        let appended = self.append(event.body(), Kind::Outcome, |body| {
            Line::Event(JournaledEvent { event, body })
        });
        if appended.is_err() {
            self.dropped("a call's outcome");
        }
    }

    /// Appends `event` without waiting for a flush; a failure is logged and counted.
    pub fn record_detached(&self, event: AuditEvent) {
        match self.append_event(event) {
            Ok(_) => {
                if let Some(syncer) = &self.inner.syncer {
                    let _ = syncer.send(());
                }
            }
            Err(_) => self.dropped("an event"),
        }
    }

    /// Logs a dropped event, at most once per [`DROP_LOG_EVERY`]: while the backlog is full
    /// every refused call drops one, and a line for each would add work exactly when there is
    /// too much. `failed` in the metrics counts every one.
    fn dropped(&self, what: &str) {
        let now = self.inner.started.elapsed().as_secs();
        let last = self.inner.drop_logged_at.load(Ordering::Relaxed);
        if (last == 0 || now >= last + DROP_LOG_EVERY.as_secs())
            && self
                .inner
                .drop_logged_at
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                dropped_so_far = self.stats().failed.load(Ordering::Relaxed),
                "the audit journal is full, closed or failing; {what} was dropped (logged at most every {}s)",
                DROP_LOG_EVERY.as_secs()
            );
        }
    }

    fn append_event(&self, event: AuditEvent) -> Result<u64, AuditError> {
        // Serialised once: the journal line's body is also what the chain stores.
        self.append(event.body(), Kind::Event, |body| {
            Line::Event(JournaledEvent { event, body })
        })
    }

    /// Writes `body` as one line and hands `line(body)` to the indexer; returns the journal
    /// position after it (for an outcome, deferred, 0). Serialised before the lock: only the
    /// write itself is serialised between callers.
    fn append(&self, body: String, kind: Kind, line: impl FnOnce(String) -> Line) -> Result<u64, AuditError> {
        let stats = self.stats();
        let refuse = || {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            AuditError::Unavailable
        };
        if stats.closed.load(Ordering::Relaxed) {
            return Err(refuse());
        }
        // An outcome is never refused for capacity: its opening was taken, so refusing it would
        // leave a call that happened without its record. Calls in flight bound them.
        if stats.queued.fetch_add(1, Ordering::Relaxed) >= self.inner.capacity && kind != Kind::Outcome {
            stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(refuse());
        }
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let mut bytes = Vec::with_capacity(body.len() + 2);
        if kind == Kind::Open {
            bytes.push(OPEN);
        }
        bytes.extend_from_slice(body.as_bytes());
        bytes.push(b'\n');
        let line = line(body);
        let mut tail = self.lock();
        if tail.to_index.is_none() {
            // Closed since the check above.
            drop(tail);
            stats.finish(1);
            return Err(refuse());
        }
        if kind == Kind::Outcome {
            tail.deferred.extend_from_slice(&bytes);
            tail.deferred_lines.push((bytes.len() as u64, line));
            drop(tail);
            // Stores a permit while the task sleeps: no wake-up per call under load.
            self.inner.deferred.notify_one();
            return Ok(0);
        }
        match tail.write_out(Some((&bytes, line))) {
            Ok(_) => Ok(tail.written),
            Err(()) => {
                drop(tail);
                stats.finish(1);
                Err(refuse())
            }
        }
    }

    /// Writes the deferred outcome lines, if any; after a failure they stay deferred.
    fn write_deferred(&self) {
        let mut tail = self.lock();
        if !tail.deferred_lines.is_empty() {
            let _ = tail.write_out(None);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tail> {
        // A panic while holding the lock cannot leave a half-written line behind (a failed
        // write is cut back), so the state is usable after one.
        self.inner
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until every event accepted before this call is indexed, so a read of the audit
    /// trail sees the calls this gateway has already answered. Bounded by [`SETTLE`]: while
    /// the database refuses writes, reads answer with what is indexed. Returns whether it got
    /// there.
    pub async fn settle(&self) -> bool {
        let stats = self.stats();
        let target = stats.accepted.load(Ordering::Relaxed);
        let mut finished = stats.finished.subscribe();
        matches!(
            tokio::time::timeout(SETTLE, finished.wait_for(|n| *n >= target)).await,
            Ok(Ok(_))
        )
    }

    /// Stops taking events; what is journaled is indexed, then the task returned by
    /// [`start`](Self::start) ends. Events recorded after this are refused.
    pub fn close(&self) {
        let stats = self.stats();
        stats.closed.store(true, Ordering::Relaxed);
        // Calls waiting for room learn at once that none will come.
        stats.finished.send_modify(|_| {});
        let mut tail = self.lock();
        // Under the same lock as the sender's drop: an outcome deferred in between would
        // otherwise be left behind.
        if !tail.deferred_lines.is_empty() && tail.write_out(None).is_err() {
            let lost = std::mem::take(&mut tail.deferred_lines).len();
            tail.deferred.clear();
            stats.failed.fetch_add(lost as u64, Ordering::Relaxed);
            stats.finish(lost);
        }
        // Dropping the sender lets the indexer end once it has taken every batch.
        tail.to_index = None;
        drop(tail);
        self.inner.deferred.notify_one();
    }

    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Whether a new call's opening would be refused now: the backlog waiting to be indexed
    /// is at its capacity, or the writer is closed. Two atomic loads.
    pub fn backlogged(&self) -> bool {
        let stats = self.stats();
        stats.closed.load(Ordering::Relaxed) || stats.queued.load(Ordering::Relaxed) >= self.inner.capacity
    }

    /// Waits, at most `patience`, until the backlog has room for another call's opening, and
    /// holds that room for the call until the returned [`Room`] is dropped (once the opening
    /// is written). While the database indexes more slowly than calls arrive, this paces the
    /// calls to the rate the trail is indexed at, instead of refusing them the moment the
    /// backlog is full: a caller with a bounded number of connections sees slower answers, not
    /// errors. Holding the room matters: when a batch is indexed every waiter wakes, and
    /// without it all of them would do their work only for the ones past the freed room to be
    /// refused at the journal. A closed writer never has room. A refusal is counted with the
    /// writer's failures and logged at a bounded rate.
    pub async fn room(&self, patience: Duration) -> Option<Room> {
        let stats = self.stats();
        let admit = || loop {
            if stats.closed.load(Ordering::Relaxed) {
                return Err(true);
            }
            let admitted = stats.admitted.load(Ordering::Relaxed);
            // Counted twice for a moment (admitted, then queued once its opening is written,
            // until its room is dropped): conservative, never over capacity.
            if stats.queued.load(Ordering::Relaxed) + admitted >= self.inner.capacity {
                return Err(false);
            }
            if stats
                .admitted
                .compare_exchange_weak(admitted, admitted + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Room { writer: self.clone() });
            }
        };
        let deadline = tokio::time::Instant::now() + patience;
        // Subscribed before the first attempt, so no wake-up in between is lost: woken each
        // time a batch is indexed, and at close.
        let mut finished = stats.finished.subscribe();
        loop {
            match admit() {
                Ok(room) => return Some(room),
                Err(false) if tokio::time::Instant::now() < deadline => {
                    // At the deadline the loop makes one last attempt.
                    let _ = tokio::time::timeout_at(deadline, finished.changed()).await;
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    self.dropped("a call's record (the backlog stayed full)");
                    return None;
                }
            }
        }
    }
}

/// Room in the audit backlog held for one call, from [`AuditWriter::room`] until its opening
/// is written (drop it then) or the call ends without one.
#[derive(Debug)]
pub struct Room {
    writer: AuditWriter,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.writer.stats().admitted.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call whose opening is journaled ([`AuditWriter::open`]). [`close`](Self::close) records
/// its outcome; dropped without that (the request was cancelled while the call was in flight,
/// say the caller went away before the upstream answered), it records the call as `abandoned`.
#[derive(Debug)]
pub struct OpenCall {
    writer: AuditWriter,
    /// The opening event; `None` once the outcome is recorded.
    event: Option<AuditEvent>,
}

impl OpenCall {
    /// Records the outcome: the opening event as `finish` leaves it (same id).
    pub fn close(mut self, finish: impl FnOnce(&mut AuditEvent)) {
        if let Some(mut event) = self.event.take() {
            finish(&mut event);
            self.writer.close_call(event);
        }
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.at = crate::vault::now();
            event.outcome = "abandoned".into();
            event.message = Some("the request ended before the call did (the caller went away)".into());
            self.writer.close_call(event);
        }
    }
}

/// What a line is, which decides when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Written at once.
    Event,
    /// A call's opening: written at once, with the [`OPEN`] mark.
    Open,
    /// A call's outcome: deferred to share the next `write`.
    Outcome,
}

impl Tail {
    /// Writes the deferred lines and then `now`, if any, in one `write`, and hands them to the
    /// indexer. On failure (logged here) nothing is handed over and the deferred lines stay
    /// deferred, for the next write: only `now` is lost.
    fn write_out(&mut self, now: Option<(&[u8], Line)>) -> Result<u64, ()> {
        let (bytes, line) = match now {
            Some((bytes, line)) => (bytes, Some(line)),
            None => (&[][..], None),
        };
        // After a failed flush no new line can be vouched for; outcomes, which no caller waits
        // on, are still written, so calls refused meanwhile keep their record.
        if line.is_some() && self.flush_failed {
            tracing::error!("an audit event was refused: an earlier flush of the journal failed");
            return Err(());
        }
        let written = if self.deferred.is_empty() {
            self.append(bytes)
        } else {
            let mut all = std::mem::take(&mut self.deferred);
            let deferred = all.len();
            all.extend_from_slice(bytes);
            let written = self.append(&all);
            // Kept for the next deferred lines: emptied once written, else back to the
            // deferred lines alone (the failed write was cut back from the segment).
            all.truncate(if written.is_ok() { 0 } else { deferred });
            self.deferred = all;
            written
        };
        let end = match written {
            Ok(end) => end,
            Err(e) => {
                tracing::error!(error = %e, "audit events could not be journaled");
                return Err(());
            }
        };
        let now = line.map(|line| (bytes.len() as u64, line));
        let written_bytes = self.deferred_lines.iter().map(|(n, _)| n).sum::<u64>() + bytes.len() as u64;
        let mut at = end - written_bytes;
        // Drained, not taken: the vector's room is kept for the next deferred lines.
        for (n, line) in self.deferred_lines.drain(..).chain(now) {
            at += n;
            if let Some(to_index) = &self.to_index {
                // The indexer holds the receiver until every sender is gone.
                let _ = to_index.send(Batch {
                    segment: self.segment_id.clone(),
                    end: at,
                    line,
                });
            }
        }
        Ok(end)
    }

    /// Appends whole lines, starting a new segment first when this one is full.
    fn append(&mut self, line: &[u8]) -> Result<u64, JournalError> {
        if self.segment.len() >= self.segment_bytes
            && let Err(e) = self.rotate()
        {
            tracing::warn!(error = %e, "cannot start a new audit journal segment; the current one grows");
            if self.flush_failed {
                return Err(e);
            }
        }
        let end = self.segment.append(line)?;
        self.written += line.len() as u64;
        Ok(end)
    }

    fn rotate(&mut self) -> Result<(), JournalError> {
        // With `fsync`, what the syncer has not flushed of the old segment is flushed before
        // anything lands in a new one, whose flushes cannot vouch for the old lines. Without,
        // the kernel writes it back as for any file, and the rotation stays cheap (it runs
        // under the lock every appender takes).
        if self.fsync
            && let Err(e) = self.segment.flush()
        {
            self.flush_failed = true;
            return Err(e);
        }
        let next = self.journal.create()?;
        let sync_file = Arc::new(next.sync_handle()?);
        self.segment_id = next.id.as_str().into();
        self.segment = next;
        self.sync_file = sync_file;
        Ok(())
    }
}

/// The group commit of `--fsync-commits`: flush whatever was written since the last flush,
/// then tell every caller how far that reached. Ends with the writer.
fn sync_loop(woken: &std::sync::mpsc::Receiver<()>, inner: &std::sync::Weak<Inner>) {
    while woken.recv().is_ok() {
        std::thread::sleep(SYNC_GATHER);
        // Every wake-up that came meanwhile is covered by this flush.
        while woken.try_recv().is_ok() {}
        let Some(inner) = inner.upgrade() else { return };
        let (file, upto) = {
            let tail = inner.tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (tail.sync_file.clone(), tail.written)
        };
        match file.sync_data() {
            Ok(()) => inner.flushed.send_modify(|f| f.upto = f.upto.max(upto)),
            Err(e) => {
                tracing::error!(error = %e, "the audit journal could not be flushed to disk; calls are refused until credgate is restarted");
                inner
                    .tail
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .flush_failed = true;
                inner.flushed.send_modify(|f| f.failed = true);
            }
        }
    }
}

/// Writes deferred outcome lines that no other line took along within [`OUTCOME_DEFER`].
/// Ends with the writer.
async fn deferred_loop(wake: Arc<tokio::sync::Notify>, inner: std::sync::Weak<Inner>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(OUTCOME_DEFER).await;
        let Some(inner) = inner.upgrade() else { return };
        let writer = AuditWriter { inner };
        writer.write_deferred();
        if let Some(syncer) = &writer.inner.syncer {
            // Nobody waits on outcomes, but with `--fsync-commits` they reach the disk soon too.
            let _ = syncer.send(());
        }
        if writer.stats().closed.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// Turns journaled lines, in journal order, into one indexing transaction. Events are chained;
/// a call opened and ended within the lines is chained once, as its outcome; a call still in
/// flight after them is kept in the database until its outcome comes (`kept` tracks which, so
/// that outcome also removes it there).
fn assemble(journal: &str, lines: impl IntoIterator<Item = Line>, kept: &mut HashSet<Uuid>) -> JournalBatch {
    let mut batch = JournalBatch {
        journal: journal.to_owned(),
        ..Default::default()
    };
    let mut opened: HashMap<Uuid, String> = HashMap::new();
    for line in lines {
        match line {
            Line::Open { id, body } => {
                opened.insert(id, body);
            }
            Line::Event(e) => {
                if opened.remove(&e.event.id).is_none() && kept.remove(&e.event.id) {
                    batch.closed.push(e.event.id);
                }
                batch.events.push(e);
            }
        }
    }
    for (id, body) in opened {
        kept.insert(id);
        batch.opened.push((id, body));
    }
    batch
}

/// Indexes every segment a previous run left, oldest first, and deletes each once done; then
/// chains every call that was still in flight when that run stopped as `interrupted`.
async fn recover(store: &dyn Store, journal: &Journal) -> Result<usize, StartError> {
    let mut kept: HashSet<Uuid> = store
        .open_calls(journal.id())
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut total = 0;
    for segment in journal.segments()? {
        let from = store.journal_indexed(&segment).await?.unwrap_or(0);
        let mut entries = journal
            .read_from(&segment, u64::try_from(from).unwrap_or(0))?
            .into_iter()
            .peekable();
        while entries.peek().is_some() {
            let chunk: Vec<Entry> = entries.by_ref().take(INDEX_BATCH).collect();
            let end = chunk.last().map_or(0, |e| e.end);
            let batch = assemble(journal.id(), chunk.into_iter().map(|e| e.line), &mut kept);
            store
                .index_journal(&batch, Some((&segment, i64::try_from(end).unwrap_or(i64::MAX))))
                .await?;
            total += batch.events.len();
        }
        retire(store, journal, &segment).await;
    }
    let open = store.open_calls(journal.id()).await?;
    for chunk in open.chunks(INDEX_BATCH) {
        let mut batch = JournalBatch {
            journal: journal.id().to_owned(),
            ..Default::default()
        };
        for (id, body) in chunk {
            batch.closed.push(*id);
            match serde_json::from_str::<AuditEvent>(body) {
                Ok(mut event) => {
                    event.outcome = INTERRUPTED.into();
                    event.message =
                        Some("credgate stopped while this call was in flight; its result is unknown".into());
                    batch.events.push(JournaledEvent::new(event));
                }
                // Written by credgate from an event, so this is damage to the database.
                Err(e) => tracing::error!(call = %id, error = %e, "a kept call opening is not an event; dropped"),
            }
        }
        store.index_journal(&batch, None).await?;
        total += batch.events.len();
    }
    Ok(total)
}

/// Deletes an indexed segment, then its progress row (in that order: a crash between the
/// two leaves a row for a file that is gone, never a file whose progress is forgotten).
async fn retire(store: &dyn Store, journal: &Journal, segment: &str) {
    if let Err(e) = journal.remove(segment) {
        tracing::error!(error = %e, "an indexed audit journal segment could not be deleted");
        return;
    }
    if let Err(e) = store.forget_journal_segment(segment).await {
        tracing::warn!(error = %e, segment, "the progress row of a deleted journal segment stays");
    }
}

async fn index_loop(
    store: Arc<dyn Store>,
    journal: Arc<Journal>,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    writer: AuditWriter,
) {
    let stats = writer.stats();
    let mut current: Option<Arc<str>> = None;
    let mut carry: Option<Batch> = None;
    // Calls of this run kept in the database while in flight (recovery emptied the table).
    let mut kept = HashSet::new();
    loop {
        let first = match carry.take() {
            Some(b) => b,
            None => match rx.recv().await {
                Some(b) => b,
                None => break,
            },
        };
        if current.as_deref() != Some(&*first.segment)
            && let Some(done) = current.replace(first.segment.clone())
        {
            // Batches arrive in journal order: the previous segment is indexed to its end.
            retire(store.as_ref(), &journal, &done).await;
        }
        // Let a batch gather, unless a full one already waits (catching up after an outage).
        // Not merely "something waits": under steady load something always does, and
        // indexing without the pause went back to many small, costly transactions.
        if !stats.closed.load(Ordering::Relaxed) && rx.len() < INDEX_BATCH {
            tokio::time::sleep(INDEX_LINGER).await;
        }
        let Batch { segment, mut end, line } = first;
        let mut lines = Vec::with_capacity(rx.len().min(INDEX_BATCH) + 1);
        lines.push(line);
        while lines.len() < INDEX_BATCH {
            match rx.try_recv() {
                Ok(next) if next.segment == segment => {
                    end = next.end;
                    lines.push(next.line);
                }
                Ok(next) => {
                    carry = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        let accepted = lines.len();
        let batch = assemble(journal.id(), lines, &mut kept);
        let mut pause = Duration::from_millis(50);
        // Journaled events must reach the database: retry until they do. Meanwhile the queue
        // fills, and past its capacity calls are refused.
        while let Err(e) = store
            .index_journal(&batch, Some((&segment, i64::try_from(end).unwrap_or(i64::MAX))))
            .await
        {
            stats.index_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, events = batch.events.len(), "audit events could not be indexed; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RETRY);
        }
        stats.written.fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        stats.finish(accepted);
    }
    // Closed and drained: every segment is indexed to its end.
    let last = writer.lock().segment_id.clone();
    if let Some(current) = current
        && current != last
    {
        retire(store.as_ref(), &journal, &current).await;
    }
    retire(store.as_ref(), &journal, &last).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditKind, VerifyReport, verify_records};
    use crate::store::DatabaseUrl;

    async fn sqlite(dir: &std::path::Path) -> Arc<dyn Store> {
        let url = DatabaseUrl::new(format!("sqlite:{}", dir.join("credgate.db").display()));
        let store = crate::store::open_with(&url, false).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    fn options(dir: &std::path::Path, capacity: usize) -> AuditOptions {
        AuditOptions {
            journal_dir: dir.join("journal"),
            fsync: false,
            capacity,
            segment_bytes: SEGMENT_BYTES,
        }
    }

    async fn chain(store: &dyn Store) -> (VerifyReport, Vec<String>) {
        let rows = store.audit_chain(0, 10_000).await.unwrap();
        let mut report = VerifyReport::default();
        verify_records(&mut report, &rows);
        (report, rows.into_iter().map(|r| r.action).collect())
    }

    fn ev(action: &str) -> AuditEvent {
        AuditEvent::new(AuditKind::Proxy, action, "allowed")
    }

    /// Another connection holding the database's write lock, as a stuck database would:
    /// nothing can be indexed until it commits.
    async fn hold_write_lock(dir: &std::path::Path) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let url = format!("sqlite:{}", dir.join("credgate.db").display());
        let mut blocker = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
        blocker
    }

    /// The id of the journal a writer under `tmp` uses.
    fn journal_id(tmp: &tempfile::TempDir) -> String {
        std::fs::read_to_string(tmp.path().join("journal").join("id")).unwrap()
    }

    #[tokio::test]
    async fn recorded_events_are_journaled_then_indexed_in_order_and_the_journal_emptied() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 10_000))
            .await
            .unwrap();
        for i in 0..300 {
            writer.record(ev(&format!("call.{i}"))).await.unwrap();
        }
        writer.record_detached(ev("call.last"));
        assert!(writer.settle().await, "the indexer catches up");
        let (report, actions) = chain(store.as_ref()).await;
        assert!(report.ok, "{report:?}");
        assert_eq!(actions.len(), 301);
        assert_eq!(actions[0], "call.0");
        assert_eq!(actions[300], "call.last");

        writer.close();
        assert_eq!(writer.record(ev("too.late")).await, Err(AuditError::Unavailable));
        task.await.unwrap();
        assert_eq!(writer.stats().written.load(Ordering::Relaxed), 301);
        drop(writer);
        let journal = Journal::open(&tmp.path().join("journal")).unwrap();
        assert!(journal.segments().unwrap().is_empty(), "indexed segments are deleted");
    }

    #[tokio::test]
    async fn what_a_crash_left_in_the_journal_is_indexed_once_at_the_next_start() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        // A run that died after journaling these lines, the first batch of them indexed:
        // events, and calls opened (`>`) and ended in the same batch, in a later one, or never.
        let call = |name: &str| {
            let mut e = ev(name);
            e.outcome = "ok".into();
            e
        };
        let (early, late, kept_ends, kept_hangs, hangs) = (
            call("early"),
            call("late"),
            call("kept.ends"),
            call("kept.hangs"),
            call("hangs"),
        );
        // Another replica's call in flight, kept in the same database: not this journal's to settle.
        let elsewhere = call("elsewhere");
        let other_journal = Uuid::new_v4().to_string();
        store
            .index_journal(
                &JournalBatch {
                    journal: other_journal.clone(),
                    opened: vec![(elsewhere.id, elsewhere.body())],
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        let journal_id;
        let segment = {
            let journal = Journal::open(&tmp.path().join("journal")).unwrap();
            let mut segment = journal.create().unwrap();
            let id = segment.id.clone();
            journal_id = journal.id().to_owned();
            let mut write = |e: &AuditEvent, open: bool| {
                let mut line = if open { vec![OPEN] } else { vec![] };
                line.extend(e.body().into_bytes());
                line.push(b'\n');
                segment.append(&line).unwrap()
            };
            let mut lines = vec![];
            let mut end = 0;
            for (e, open) in [
                (&ev("before.0"), false),
                (&early, true),
                (&kept_ends, true),
                (&early, false),
                (&kept_hangs, true),
            ] {
                end = write(e, open);
                lines.push(if open {
                    Line::Open {
                        id: e.id,
                        body: e.body(),
                    }
                } else {
                    Line::Event(JournaledEvent::new(e.clone()))
                });
            }
            let first = assemble(&journal_id, lines, &mut HashSet::new());
            assert_eq!(first.opened.len(), 2, "two calls were in flight after the first batch");
            store.index_journal(&first, Some((&id, end as i64))).await.unwrap();
            // Not indexed: the rest.
            write(&ev("before.1"), false);
            write(&late, true);
            write(&kept_ends, false);
            write(&hangs, true);
            write(&late, false);
            id
        };

        let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 10_000))
            .await
            .unwrap();
        let rows = store.audit_chain(0, 100).await.unwrap();
        let mut report = VerifyReport::default();
        verify_records(&mut report, &rows);
        assert!(report.ok, "{report:?}");
        let records: Vec<(Uuid, String, String)> = rows
            .iter()
            .map(|r| {
                let record = r.to_record().unwrap();
                (record.event.id, record.event.action, record.event.outcome)
            })
            .collect();
        let ok = |e: &AuditEvent| (e.id, e.action.clone(), "ok".to_owned());
        let interrupted = |e: &AuditEvent| (e.id, e.action.clone(), INTERRUPTED.to_owned());
        assert_eq!(
            records[1..],
            [
                ok(&early),
                (records[2].0, "before.1".into(), "allowed".into()),
                ok(&kept_ends),
                ok(&late),
                interrupted(&kept_hangs),
                interrupted(&hangs),
            ],
            "one record per call; calls that never ended are chained as interrupted"
        );
        assert!(store.open_calls(&journal_id).await.unwrap().is_empty());
        assert_eq!(
            store.open_calls(&other_journal).await.unwrap(),
            [(elsewhere.id, elsewhere.body())],
            "another journal's calls are left to it"
        );
        assert_eq!(
            store.journal_indexed(&segment).await.unwrap(),
            None,
            "the segment is retired"
        );
        writer.record(ev("after")).await.unwrap();
        writer.close();
        task.await.unwrap();
        assert_eq!(chain(store.as_ref()).await.1.len(), 8);
    }

    #[tokio::test]
    async fn an_outcome_shares_the_next_write_or_is_written_soon_after() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 10_000))
            .await
            .unwrap();
        let journaled = || {
            let segment = writer.lock().segment_id.to_string();
            let text = std::fs::read_to_string(tmp.path().join("journal").join(format!("{segment}.jsonl"))).unwrap();
            text.lines()
                .map(|l| {
                    let open = l.starts_with('>');
                    let event: AuditEvent = serde_json::from_str(l.trim_start_matches('>')).unwrap();
                    (event.action, open)
                })
                .collect::<Vec<_>>()
        };
        let (a, b, c) = (ev("a"), ev("b"), ev("c"));
        let (mut call_a, mut call_b, mut call_c) = (None, None, None);
        writer.open(&a, &mut call_a).await.unwrap();
        call_a.unwrap().close(|_| {});
        assert_eq!(journaled(), [("a".into(), true)], "the outcome waits");
        writer.open(&b, &mut call_b).await.unwrap();
        assert_eq!(
            journaled(),
            [("a".into(), true), ("a".into(), false), ("b".into(), true)],
            "and goes out with the next line"
        );
        call_b.unwrap().close(|_| {});
        tokio::time::sleep(OUTCOME_DEFER * 10).await;
        assert_eq!(journaled().last(), Some(&("b".into(), false)), "or on its own, soon");
        writer.open(&c, &mut call_c).await.unwrap();
        call_c.unwrap().close(|_| {});
        writer.close();
        task.await.unwrap();
        let (report, actions) = chain(store.as_ref()).await;
        assert!(report.ok, "{report:?}");
        assert_eq!(actions, ["a", "b", "c"], "closing writes what waits");
        assert!(store.open_calls(&journal_id(&tmp)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_call_dropped_mid_flight_is_abandoned_and_outcomes_pass_a_full_queue() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 2)).await.unwrap();
        // The database takes no writes, so the queue fills up.
        let mut blocker = hold_write_lock(tmp.path()).await;
        let (dropped, ended) = (ev("dropped"), ev("ended"));
        let (mut dropped_call, mut ended_call) = (None, None);
        writer.open(&dropped, &mut dropped_call).await.unwrap();
        writer.open(&ended, &mut ended_call).await.unwrap();
        assert_eq!(
            writer.record(ev("refused")).await,
            Err(AuditError::Unavailable),
            "the queue is full"
        );
        // Both calls' outcomes are taken anyway: their openings were.
        drop(dropped_call);
        ended_call.unwrap().close(|e| e.outcome = "ok".into());
        sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
        tokio::time::sleep(OUTCOME_DEFER * 4).await;
        writer.close();
        task.await.unwrap();
        let rows = store.audit_chain(0, 100).await.unwrap();
        let outcomes: Vec<(String, String)> = rows.iter().map(|r| (r.action.clone(), r.outcome.clone())).collect();
        assert_eq!(
            outcomes,
            [("dropped".into(), "abandoned".into()), ("ended".into(), "ok".into())]
        );
        assert!(store.open_calls(&journal_id(&tmp)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_call_is_chained_once_when_it_ends_even_if_it_outlives_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 10_000))
            .await
            .unwrap();
        let quick = ev("quick");
        let long = ev("long");
        let (mut quick_call, mut long_call) = (None, None);
        writer.open(&quick, &mut quick_call).await.unwrap();
        writer.open(&long, &mut long_call).await.unwrap();
        quick_call.unwrap().close(|_| {});
        assert!(writer.settle().await);
        assert_eq!(
            chain(store.as_ref()).await.1,
            ["quick"],
            "a call in flight is not chained yet"
        );
        let kept: Vec<Uuid> = store
            .open_calls(&journal_id(&tmp))
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(kept, [long.id], "but kept where a crash cannot lose it");
        writer.record(ev("other")).await.unwrap();
        long_call.unwrap().close(|e| e.outcome = "ok".into());
        tokio::time::sleep(OUTCOME_DEFER * 4).await;
        assert!(writer.settle().await);
        let (report, actions) = chain(store.as_ref()).await;
        assert!(report.ok, "{report:?}");
        assert_eq!(actions, ["quick", "other", "long"]);
        assert!(store.open_calls(&journal_id(&tmp)).await.unwrap().is_empty());
        writer.close();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn past_its_capacity_the_writer_refuses_at_once_and_recovers_when_the_database_does() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 2)).await.unwrap();
        // Another connection holds the database's write lock, as a stuck database would:
        // nothing can be indexed meanwhile.
        let mut blocker = hold_write_lock(tmp.path()).await;
        writer.record(ev("one")).await.unwrap();
        assert!(!writer.backlogged());
        // Room held for one call counts against the capacity until it is dropped.
        let held = writer.room(Duration::ZERO).await.expect("room for one more");
        assert!(writer.room(Duration::ZERO).await.is_none(), "the held room is taken");
        assert_eq!(writer.stats().failed.load(Ordering::Relaxed), 1, "a refusal is counted");
        drop(held);
        writer.record(ev("two")).await.unwrap();
        assert!(writer.backlogged(), "the backlog is full");
        let started = std::time::Instant::now();
        assert!(
            writer.room(Duration::from_millis(100)).await.is_none(),
            "no room while nothing is indexed"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "it waited its patience out"
        );
        assert_eq!(writer.record(ev("three")).await, Err(AuditError::Unavailable));
        assert_eq!(writer.stats().failed.load(Ordering::Relaxed), 3);

        // A call waiting for room gets it as soon as the backlog is indexed.
        let waiting = {
            let writer = writer.clone();
            tokio::spawn(async move { writer.room(Duration::from_secs(30)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "it waits while the database is stuck");
        sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
        assert!(waiting.await.unwrap(), "room once the backlog is indexed");
        let mut recorded = false;
        for _ in 0..100 {
            if writer.record(ev("four")).await.is_ok() {
                recorded = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(recorded, "room again once the backlog is indexed");
        writer.close();
        assert!(writer.backlogged(), "a closed writer takes nothing more");
        assert!(writer.room(Duration::from_secs(30)).await.is_none(), "and has no room");
        task.await.unwrap();
        assert_eq!(chain(store.as_ref()).await.1, ["one", "two", "four"]);
    }

    #[tokio::test]
    async fn closing_the_writer_answers_the_calls_waiting_for_room_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 1)).await.unwrap();
        let mut blocker = hold_write_lock(tmp.path()).await;
        writer.record(ev("one")).await.unwrap();
        let waiting = {
            let writer = writer.clone();
            tokio::spawn(async move { writer.room(Duration::from_secs(30)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "it waits while the database is stuck");
        writer.close();
        let answered = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("answered at close, not after its 30 s of patience");
        assert!(!answered.unwrap(), "no room from a closed writer");
        sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn full_segments_are_closed_and_deleted_once_indexed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let mut options = options(tmp.path(), 10_000);
        // A few events per segment.
        options.segment_bytes = 2048;
        let (writer, task) = AuditWriter::start(store.clone(), options).await.unwrap();
        for i in 0..40 {
            writer.record(ev(&format!("call.{i}"))).await.unwrap();
        }
        assert!(writer.settle().await);
        let actions = chain(store.as_ref()).await.1;
        assert_eq!(actions.len(), 40);
        assert!(actions.iter().enumerate().all(|(i, a)| *a == format!("call.{i}")));
        let open = std::fs::read_dir(tmp.path().join("journal"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".jsonl"))
            .count();
        assert_eq!(open, 1, "only the segment being written is left");
        writer.close();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn with_fsync_callers_go_on_after_the_flush_that_covers_them() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sqlite(tmp.path()).await;
        let mut options = options(tmp.path(), 10_000);
        options.fsync = true;
        let (writer, task) = AuditWriter::start(store.clone(), options).await.unwrap();
        let calls = (0..50).map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.record(ev(&format!("call.{i}"))).await })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await.unwrap().unwrap();
        }
        let written = writer.lock().written;
        assert!(
            writer.inner.flushed.borrow().upto >= written,
            "every acknowledged line is flushed"
        );
        assert!(writer.settle().await);
        assert_eq!(chain(store.as_ref()).await.1.len(), 50);
        writer.close();
        task.await.unwrap();
    }
}
