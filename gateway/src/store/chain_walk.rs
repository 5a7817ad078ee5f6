//! The walk of the audit chain in the database, as `GET /admin/v1/audit/verify` makes it.
//!
//! Reading a page is the engine's work on one connection (one core), checking it is ours on
//! every core. Done one after the other, each waited for the other; so pages are read ahead,
//! several at once on connections of their own, while the oldest is checked. Where a page
//! read ahead starts is a guess (sequence numbers run without gaps in a trail as credgate
//! writes it, and a gap stops the walk at the missing record anyway); after a short page (the
//! trail ended when it was read, and may have grown since) the guesses are dropped and the
//! walk reads on from where it really is.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::{ChainPage, Result, Store};
use crate::audit::{VerifyReport, verify_records};

/// Pages read ahead of the one being checked.
const READ_AHEAD: usize = 2;

/// Checks the records after `report`'s head, `page` at a time, up to the newest or the first
/// fault (`report.ok` false, `report.error` naming the record).
pub async fn walk_chain(store: &Arc<dyn Store>, report: &mut VerifyReport, page: i64) -> Result<()> {
    let read = |after: i64, into: ChainPage| -> Reading {
        let store = store.clone();
        (
            after,
            tokio::spawn(async move { store.audit_chain_page(after, page, into).await }),
        )
    };
    // The page checked last, whose room the next read fills: the pages in flight (one being
    // checked, the others read ahead) keep their memory for the whole walk.
    let mut spare: Option<ChainPage> = None;
    let mut ahead = Ahead(VecDeque::from([read(report.head_seq, ChainPage::default())]));
    while let Some((after, reading)) = ahead.0.pop_front() {
        if after != report.head_seq {
            reading.abort();
            ahead.abort();
            ahead
                .0
                .push_back(read(report.head_seq, spare.take().unwrap_or_default()));
            continue;
        }
        let records = match reading.await {
            Ok(page) => page?,
            // Only a panic ends a read this walk did not abort: carry it on.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let Some(last) = records.last_seq() else { break };
        while ahead.0.len() < READ_AHEAD {
            let from = ahead.0.back().map_or(last, |(a, _)| a.saturating_add(page));
            ahead.0.push_back(read(from, spare.take().unwrap_or_default()));
        }
        // Off the async workers, so the reads just started run meanwhile.
        let checked = std::mem::take(report);
        let (checked, records) = tokio::task::spawn_blocking(move || {
            let mut checked = checked;
            verify_records(&mut checked, &records.records());
            (checked, records)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        *report = checked;
        if !report.ok {
            break;
        }
        spare = Some(records);
    }
    Ok(())
}

type Reading = (i64, JoinHandle<Result<ChainPage>>);

/// The pages being read ahead: aborted when the walk ends, however it ends (a client gone
/// drops the walk between two pages).
struct Ahead(VecDeque<Reading>);

impl Ahead {
    fn abort(&mut self) {
        for (_, reading) in self.0.drain(..) {
            reading.abort();
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.abort();
    }
}
