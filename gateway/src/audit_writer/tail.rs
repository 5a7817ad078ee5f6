//! The journal's writing end: one mutex held for one `write`, the lines queued to share the
//! next `write` (outcomes, and openings whose callers write them after a yield), segment
//! rotation, and the group commit of `--fsync-commits` (a syncer thread flushes whatever was
//! written since its last flush, and every caller waits for the flush that covers its line).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{AuditWriter, Inner};
use crate::audit::journal::{Journal, JournalError, Line, Segment};

/// A segment this large is closed and a new one started, so indexed ones can be deleted.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// How long the syncer lets lines gather before a flush. A flush takes about as long as a
/// call's own work, so flushing at once covers one or two calls and costs a flush each; a
/// short wait makes each flush cover several (PostgreSQL's `commit_delay`).
const SYNC_GATHER: Duration = Duration::from_micros(300);
/// How long a call's outcome line may wait to share the next line's `write`. Under load the
/// next call's opening comes sooner, so each call costs one `write` instead of two; when idle,
/// the outcome is written this long after the response ended.
pub(super) const OUTCOME_DEFER: Duration = Duration::from_millis(5);
/// The longest pause between two attempts to write lines a failed write left queued.
const RETRY_AT_MOST: Duration = Duration::from_secs(1);

/// A journaled line on its way to the database, and where it ends in its segment.
pub(super) struct Batch {
    pub(super) segment: Arc<str>,
    pub(super) end: u64,
    pub(super) line: Line,
}

/// The journal's writing end, behind a mutex held for one `write`.
pub(super) struct Tail {
    pub(super) journal: Arc<Journal>,
    pub(super) segment_bytes: u64,
    pub(super) segment: Segment,
    pub(super) segment_id: Arc<str>,
    /// `None` once closed.
    pub(super) to_index: Option<mpsc::UnboundedSender<Batch>>,
    /// Bytes written by this process over all segments: the syncer's measure of progress.
    pub(super) written: u64,
    /// The file the syncer flushes (the current segment's).
    pub(super) sync_file: Arc<File>,
    pub(super) fsync: bool,
    /// With `fsync`: a flush failed, so nothing written from here on could be vouched for.
    pub(super) flush_failed: bool,
    /// Lines waiting to share the next `write` (outcomes and openings), and each one's length
    /// and line.
    pub(super) deferred: Vec<u8>,
    pub(super) deferred_lines: Vec<(u64, Line)>,
}

/// How far the journal is flushed to disk (`--fsync-commits`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Flushed {
    pub(super) upto: u64,
    /// A flush failed. Sticky: Linux reports a write-back error once per open file, so a
    /// later flush that succeeds says nothing about the lines the failed one covered, and
    /// from here on every call is refused until credgate is restarted.
    pub(super) failed: bool,
}

impl Tail {
    /// Writes the deferred lines and then `now`, if any, in one `write`, and hands them to the
    /// indexer. On failure (logged here) nothing is handed over and the deferred lines stay
    /// deferred, for the next write: only `now` is lost.
    pub(super) fn write_out(&mut self, now: Option<(&[u8], Line)>) -> Result<u64, ()> {
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
pub(super) fn sync_loop(woken: &std::sync::mpsc::Receiver<()>, inner: &std::sync::Weak<Inner>) {
    while woken.recv().is_ok() {
        std::thread::sleep(SYNC_GATHER);
        // Every wake-up that came meanwhile is covered by this flush.
        while woken.try_recv().is_ok() {}
        let Some(inner) = inner.upgrade() else { return };
        let lock = || inner.tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (file, upto) = {
            let tail = lock();
            (tail.sync_file.clone(), tail.written)
        };
        let synced = file.sync_data();
        // A rotation flushes the segment it leaves, under the lock; if that flush failed, the
        // lines it covered may not be on disk, and a flush of the new segment (or of the old
        // one again: Linux reports a write-back error once) says nothing about them.
        if lock().flush_failed {
            inner.flushed.send_modify(|f| f.failed = true);
            continue;
        }
        match synced {
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

/// Writes queued lines (outcomes, and openings whose caller went away or was refused) that no
/// other line took along within [`OUTCOME_DEFER`]. Ends with the writer.
///
/// After a failed write it tries again, backing off up to [`RETRY_AT_MOST`], until the lines are
/// written: the lines of calls refused meanwhile (an opening and its refusal each) keep their
/// room in the backlog until then, and once the backlog is full no new call writes anything,
/// so without this a disk that came back would never be written to again.
pub(super) async fn deferred_loop(wake: Arc<tokio::sync::Notify>, inner: std::sync::Weak<Inner>) {
    loop {
        wake.notified().await;
        let mut pause = OUTCOME_DEFER;
        loop {
            tokio::time::sleep(pause).await;
            let Some(inner) = inner.upgrade() else { return };
            let writer = AuditWriter { inner };
            let waiting = writer.write_deferred();
            if let Some(syncer) = &writer.inner.syncer {
                // Nobody waits on outcomes, but with `--fsync-commits` they reach the disk soon too.
                let _ = syncer.send(());
            }
            if writer.stats().closed.load(Ordering::Relaxed) {
                return;
            }
            if !waiting {
                break;
            }
            pause = (pause * 2).min(RETRY_AT_MOST);
        }
    }
}
