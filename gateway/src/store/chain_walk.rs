//! The walk of the audit chain in the database, as `GET /admin/v1/audit/verify` makes it.
//!
//! Reading a page is the engine's work on one connection (one core), checking it is ours on
//! every core. Done one after the other, each waited for the other; so pages are read ahead,
//! several at once on connections of their own, while the oldest is checked. Where a page will
//! start is guessed (sequence numbers run without gaps in a trail as credgate writes it); a
//! page read from a wrong guess is dropped and read again from where the walk really is.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::{Result, Store};
use crate::audit::{StoredAudit, VerifyReport, verify_records};

/// Pages read ahead of the one being checked.
const READ_AHEAD: usize = 2;

/// Checks the records after `report`'s head, `page` at a time, up to the newest or the first
/// fault (`report.ok` false, `report.error` naming the record).
pub async fn walk_chain(store: &Arc<dyn Store>, report: &mut VerifyReport, page: i64) -> Result<()> {
    let read = |after: i64| -> (i64, JoinHandle<Result<Vec<StoredAudit>>>) {
        let store = store.clone();
        (after, tokio::spawn(async move { store.audit_chain(after, page).await }))
    };
    let mut ahead: VecDeque<_> = (0..READ_AHEAD as i64)
        .map(|i| read(report.head_seq + i * page))
        .collect();
    let result = loop {
        let Some((after, reading)) = ahead.pop_front() else {
            break Ok(());
        };
        let records = match reading.await {
            Ok(Ok(records)) => records,
            Ok(Err(e)) => break Err(e),
            // Only a panic ends a read this walk did not abort: carry it on.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        if after != report.head_seq {
            // A gap moved the pages: start again from the walk's head.
            abort(&mut ahead);
            ahead.extend((0..READ_AHEAD as i64).map(|i| read(report.head_seq + i * page)));
            continue;
        }
        if records.is_empty() {
            break Ok(());
        }
        let next = ahead.back().map_or(after, |(a, _)| *a) + page;
        ahead.push_back(read(next));
        verify_records(report, &records);
        if !report.ok {
            break Ok(());
        }
    };
    abort(&mut ahead);
    result
}

fn abort(ahead: &mut VecDeque<(i64, JoinHandle<Result<Vec<StoredAudit>>>)>) {
    for (_, reading) in ahead.drain(..) {
        reading.abort();
    }
}
