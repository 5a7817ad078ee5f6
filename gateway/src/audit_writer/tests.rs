//! The writer end to end against a real SQLite database: journaling, indexing, recovery,
//! backpressure and the open-call records.

use std::collections::HashSet;

use uuid::Uuid;

use super::indexer::assemble;
use super::tail::OUTCOME_DEFER;
use super::*;
use crate::audit::journal::JournalBatch;
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
async fn calls_that_open_together_share_one_write_and_each_goes_on_only_once_its_line_is_there() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite(tmp.path()).await;
    let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 10_000))
        .await
        .unwrap();
    let segment = tmp
        .path()
        .join("journal")
        .join(format!("{}.jsonl", writer.lock().segment_id));
    // Each line's action, `>` before an opening's.
    fn read(segment: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(segment)
            .unwrap()
            .lines()
            .map(|l| {
                let open = if l.starts_with('>') { ">" } else { "" };
                let event: AuditEvent = serde_json::from_str(l.trim_start_matches('>')).unwrap();
                format!("{open}{}", event.action)
            })
            .collect()
    }
    let lines = || read(&segment);
    // Eight calls ready at once on this one thread, as a burst of requests is.
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let (writer, segment) = (writer.clone(), segment.clone());
            let mine = format!(">call.{i}");
            tokio::spawn(async move {
                let mut opened = None;
                writer.open(&ev(&mine[1..]), &mut opened).await.unwrap();
                // What the credential leaving now relies on: the opening is in the file.
                assert!(
                    read(&segment).contains(&mine),
                    "{mine} is journaled before the call goes on"
                );
                opened.unwrap().close(|e| e.status = Some(200));
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    // One write took the eight openings, before any call went on (and so before any outcome).
    // Written one at a time, each call's outcome would sit between two openings.
    let want: Vec<String> = (0..8).map(|i| format!(">call.{i}")).collect();
    assert_eq!(lines()[..8], want[..], "{:?}", lines());
    // Alone, a call writes its own line.
    let mut opened = None;
    writer.open(&ev("alone"), &mut opened).await.unwrap();
    assert_eq!(lines().last().map(String::as_str), Some(">alone"));
    opened.unwrap().close(|_| {});
    writer.close();
    task.await.unwrap();
    let (report, actions) = chain(store.as_ref()).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(actions.len(), 9, "each call chained once: {actions:?}");
    assert!(store.open_calls(&journal_id(&tmp)).await.unwrap().is_empty());
}

#[tokio::test]
async fn lines_a_failed_write_left_queued_are_written_once_the_disk_is_back_without_new_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite(tmp.path()).await;
    let (writer, task) = AuditWriter::start(store.clone(), options(tmp.path(), 10_000))
        .await
        .unwrap();
    // /dev/full refuses every write with ENOSPC, as a full disk does.
    let full = std::fs::OpenOptions::new().append(true).open("/dev/full").unwrap();
    let disk = writer.lock().segment.swap_file(full);
    let mut opened = None;
    assert_eq!(
        writer.open(&ev("refused"), &mut opened).await,
        Err(AuditError::Unavailable),
        "a call whose opening cannot be written does not go on"
    );
    // As the data plane does: the refusal is the call's outcome, closing its opening.
    opened.unwrap().close(|e| e.outcome = "audit_unavailable".into());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(writer.stats().queued.load(Ordering::Relaxed), 2, "both lines wait");
    // The disk is back, and no call comes to write: the writer retries by itself.
    writer.lock().segment.swap_file(disk);
    assert!(writer.settle().await, "the waiting lines were written and indexed");
    let rows = store.audit_chain(0, 10).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.action.as_str(), r.outcome.as_str()))
            .collect::<Vec<_>>(),
        [("refused", "audit_unavailable")]
    );
    assert!(store.open_calls(&journal_id(&tmp)).await.unwrap().is_empty());
    writer.close();
    task.await.unwrap();
}

#[tokio::test]
async fn with_fsync_a_failed_rotation_flush_fails_the_callers_waiting_for_their_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite(tmp.path()).await;
    let mut options = options(tmp.path(), 10_000);
    options.fsync = true;
    let (writer, task) = AuditWriter::start(store.clone(), options).await.unwrap();
    writer.record(ev("flushed")).await.unwrap();
    // A line written and not yet flushed, then the flush a rotation makes of its segment
    // fails (as `Tail::rotate` records it): the syncer's next flush succeeds, on a segment
    // that may not hold that line.
    let end = writer.append_event(ev("written, never flushed")).unwrap();
    writer.lock().flush_failed = true;
    assert_eq!(writer.flushed(end).await, Err(AuditError::Unavailable));
    assert_eq!(writer.record(ev("after")).await, Err(AuditError::Unavailable));
    writer.close();
    task.await.unwrap();
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
