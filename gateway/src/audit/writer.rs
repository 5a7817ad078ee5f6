//! The group-commit writer: events from many requests are written in one transaction, and
//! each caller learns when its own event is durable.
//!
//! While one batch is being committed the next one gathers, so the commit rate, not the
//! request rate, bounds the database's work. The queue is bounded: when it is full the
//! caller gets [`AuditError::Unavailable`] at once rather than waiting without limit, and the
//! data plane answers `audit_unavailable` instead of calling out unaudited.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::event::AuditEvent;
use crate::store::Store;

/// Events written per transaction at most.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    #[error("the audit trail cannot be written right now")]
    Unavailable,
}

struct Pending {
    event: AuditEvent,
    done: Option<oneshot::Sender<Result<(), AuditError>>>,
}

#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
    stats: Arc<WriterStats>,
    /// Asks the writer to finish: background tasks hold handles for the life of the process,
    /// so "every handle dropped" never comes at shutdown on its own.
    closing: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Default)]
pub struct WriterStats {
    /// Events accepted and not yet written.
    pub queued: AtomicUsize,
    pub written: AtomicU64,
    pub failed: AtomicU64,
}

impl AuditWriter {
    /// Starts the writer task. It runs until every `AuditWriter` clone is dropped, after
    /// writing what was queued.
    pub fn spawn(store: Arc<dyn Store>, capacity: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let closing = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(run(store, rx, stats.clone(), closing.clone()));
        (Self { tx, stats, closing }, task)
    }

    /// Queues `event` and waits until it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        self.enqueue(Pending {
            event,
            done: Some(done),
        })?;
        wait.await.unwrap_or(Err(AuditError::Unavailable))
    }

    /// Queues `event` without waiting; a failure is logged and counted.
    pub fn record_detached(&self, event: AuditEvent) {
        if self.enqueue(Pending { event, done: None }).is_err() {
            tracing::error!("audit queue is full or closed; an event was dropped");
        }
    }

    fn enqueue(&self, pending: Pending) -> Result<(), AuditError> {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.try_send(pending).map_err(|_| {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            AuditError::Unavailable
        })
    }

    /// Stops taking events; the writer task writes what is queued and ends. Events recorded
    /// after this are refused as `Unavailable`.
    pub fn close(&self) {
        // A stored permit: the writer sees it even if it is busy writing right now.
        self.closing.notify_one();
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Pending>,
    stats: Arc<WriterStats>,
    closing: Arc<tokio::sync::Notify>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut closed = false;
    loop {
        let next = if closed {
            rx.recv().await
        } else {
            tokio::select! {
                next = rx.recv() => next,
                () = closing.notified() => {
                    // No new events from here on; `recv` drains the queue, then ends.
                    rx.close();
                    closed = true;
                    continue;
                }
            }
        };
        let Some(first) = next else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let events: Vec<AuditEvent> = batch.iter().map(|p| p.event.clone()).collect();
        let result = store.append_audit(&events).await;
        let n = batch.len();
        stats.queued.fetch_sub(n, Ordering::Relaxed);
        let outcome = match result {
            Ok(()) => {
                stats.written.fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                stats.failed.fetch_add(n as u64, Ordering::Relaxed);
                tracing::error!(error = %e, events = n, "audit batch could not be written");
                Err(AuditError::Unavailable)
            }
        };
        for p in batch.drain(..) {
            if let Some(done) = p.done {
                let _ = done.send(outcome.clone());
            }
        }
    }
}
