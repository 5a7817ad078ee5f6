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
//! line waits to share the next line's `write`, and the openings of calls that run together
//! share one `write` (each caller yields once before writing what is queued), so under load a
//! `write` serves several calls. A call still in flight when its opening is indexed is kept
//! in the database (`audit_open_calls`) until its outcome comes, so neither a long stream nor
//! a crash loses it.
//!
//! Lines accepted and not yet indexed are bounded by the capacity: past it the caller gets
//! [`AuditError::Unavailable`] at once, and the data plane answers `audit_unavailable` rather
//! than call out unaudited. So a database that stops taking writes is absorbed for a while,
//! then refuses calls, and catches up by itself when it returns; the journal keeps
//! everything accepted across a crash meanwhile.
//!
//! Here: the writer's API (recording, room in the backlog, open calls, stats); in [`tail`] the
//! journal's writing end and group commit; in [`indexer`] the copy into the database.

mod indexer;
mod tail;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::audit::AuditEvent;
use crate::audit::journal::{Journal, JournalError, JournaledEvent, Line, OPEN};
use crate::store::{Store, StoreError};

use indexer::{index_loop, recover};
pub use tail::SEGMENT_BYTES;
use tail::{Flushed, Tail, deferred_loop, sync_loop};

/// The longest a read of the trail waits for the indexer to catch up.
const SETTLE: Duration = Duration::from_secs(2);
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

/// The outcome chained for a call whose outcome never came.
pub const INTERRUPTED: &str = "interrupted";

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
        // Set while the line waits: a call cancelled meanwhile is recorded as abandoned, and
        // its outcome line always follows its opening line in the journal.
        *opened = Some(OpenCall {
            writer: self.clone(),
            event: Some(event.clone()),
        });
        // The other calls ready to run now reach their own opening first and queue it behind
        // this one; the first of them back writes them all at once. A `write` to the journal
        // was the largest single cost of a call's audit (BENCHMARKS.md), and under load this
        // shares it between the calls that arrived together; alone, a call writes its own.
        tokio::task::yield_now().await;
        self.written_through(end)?;
        self.flushed(end).await
    }

    /// Returns once the journal is written up to `end`: at once if another call's `write`
    /// took the line along, else after writing every queued line.
    fn written_through(&self, end: u64) -> Result<(), AuditError> {
        let mut tail = self.lock();
        // A flush failed while the line waited (a rotation's flush, say): from then on no
        // opening can be vouched for, written or not.
        if tail.flush_failed {
            return Err(AuditError::Unavailable);
        }
        if tail.written >= end {
            return Ok(());
        }
        // On failure the lines stay queued, in order: the caller is refused, and should a
        // later write take them along, its refusal's record follows its opening and closes it.
        match tail.write_out(None) {
            Ok(_) if tail.written >= end => Ok(()),
            _ => Err(AuditError::Unavailable),
        }
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
    /// line shares the next line's `write` (at most [`tail::OUTCOME_DEFER`] later). Should credgate
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
    /// position after it (for an opening, where it will end once written; for an outcome,
    /// deferred, 0). Serialised before the lock: under it, callers take turns only to copy a
    /// line into the queue or to write.
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
        // A line written at once is made before the lock; a queued one is copied straight
        // into the next `write`'s buffer under it, with no copy of its own.
        let now = (kind == Kind::Event).then(|| {
            let mut bytes = Vec::with_capacity(body.len() + 1);
            bytes.extend_from_slice(body.as_bytes());
            bytes.push(b'\n');
            bytes
        });
        let mut tail = self.lock();
        if tail.to_index.is_none() {
            // Closed since the check above.
            drop(tail);
            stats.finish(1);
            return Err(refuse());
        }
        // Refused now, as `write_out` refuses an event: after a failed flush no opening can be
        // vouched for.
        if kind == Kind::Open && tail.flush_failed {
            drop(tail);
            stats.finish(1);
            return Err(refuse());
        }
        if let Some(bytes) = now {
            return match tail.write_out(Some((&bytes, line(body)))) {
                Ok(_) => Ok(tail.written),
                Err(()) => {
                    drop(tail);
                    stats.finish(1);
                    Err(refuse())
                }
            };
        }
        let queued = tail.deferred.len();
        if kind == Kind::Open {
            tail.deferred.push(OPEN);
        }
        tail.deferred.extend_from_slice(body.as_bytes());
        tail.deferred.push(b'\n');
        let len = (tail.deferred.len() - queued) as u64;
        tail.deferred_lines.push((len, line(body)));
        if kind == Kind::Open {
            // Where the line will end: queued lines are the next bytes written.
            return Ok(tail.written + tail.deferred.len() as u64);
        }
        drop(tail);
        // Stores a permit while the task sleeps: no wake-up per call under load.
        self.inner.deferred.notify_one();
        Ok(0)
    }

    /// Writes the queued lines, if any; returns whether some still wait (the write failed: they
    /// stay queued, in order).
    fn write_deferred(&self) -> bool {
        let mut tail = self.lock();
        !tail.deferred_lines.is_empty() && tail.write_out(None).is_err()
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
            event.at = crate::clock::now();
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
    /// A call's opening, with the [`OPEN`] mark: queued, and written by its caller (or along
    /// with another call's line) before the caller goes on.
    Open,
    /// A call's outcome: deferred to share the next `write`.
    Outcome,
}

#[cfg(test)]
mod tests;
