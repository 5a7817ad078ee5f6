//! The indexer: copies journaled lines into the database's hash chain behind the request
//! path, in batches; recovers what a previous run left in the journal; deletes segments once
//! indexed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::tail::Batch;
use super::{AuditWriter, INTERRUPTED, StartError};
use crate::audit::AuditEvent;
use crate::audit::journal::{Entry, Journal, JournalBatch, JournaledEvent, Line};
use crate::store::Store;

/// Events indexed per database transaction at most. The chain takes them in statements of at
/// most 256 rows (`store::sql`); the calls kept in flight, 3 binds each, go in one statement,
/// within SQLite's 32,766 binds and PostgreSQL's 65,535.
pub(super) const INDEX_BATCH: usize = 2048;
/// How long the indexer lets events gather before a transaction. Every commit writes each page
/// it dirtied once, so fewer, larger commits cost less per event: 50 ms gave 15% more calls per
/// second than 10 ms on a saturated core (BENCHMARKS.md). Reads of the trail wait for it.
const INDEX_LINGER: Duration = Duration::from_millis(50);
/// The longest pause between two attempts to index while the database refuses.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Turns journaled lines, in journal order, into one indexing transaction. Events are chained;
/// a call opened and ended within the lines is chained once, as its outcome; a call still in
/// flight after them is kept in the database until its outcome comes (`kept` tracks which, so
/// that outcome also removes it there).
pub(super) fn assemble(journal: &str, lines: impl IntoIterator<Item = Line>, kept: &mut HashSet<Uuid>) -> JournalBatch {
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
pub(super) async fn recover(store: &dyn Store, journal: &Journal) -> Result<usize, StartError> {
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

pub(super) async fn index_loop(
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
