//! The audit trail at scale: fills a database with a chained trail of N records (as the
//! indexer writes it: batches of 2,048 in one transaction each), then times the reads the
//! admin API and the portal make, each filter on its own.
//!
//! `cargo bench -p credgate --bench audit_scale -- [records] [database URL]`
//! (default: 1,000,000 records into a fresh SQLite file under the temp directory;
//! `--fill-only` stops after the fill and keeps the database; `--walk-only` walks the chain of
//! the database given and nothing else; `--reads-only` skips archiving;
//! `--retention-only [--one-day]` skips the reads; `--bulk` drops the audit table's secondary
//! indexes for the fill and builds them after it, each in one pass, and prints both times: how
//! a trail of 100 M records is generated in about half an hour).
//! Prints the time the schema's migrations took (an upgrade, pointed at an existing database),
//! then a table: the fill rate, the file size per million records (SQLite), the body's bytes as
//! hashed and as stored, and each read's median
//! and p99 over 30 runs after one untimed run; then the reads of the call counts the overview
//! makes over the day the records are spread across. Those reads touch one row per bucket and
//! key (outcome and provider a minute; grant, outcome and provider an hour), not one per call:
//! a million records over a day already fill every such row (each of the 1,000 grants is
//! called every hour), so they cost what a day at 500 calls/s (43 M records) would. A
//! benchmark, never part of the test suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use credgate::audit::{AuditEvent, AuditKind, JournalBatch, JournaledEvent};
use credgate::store::{AuditQuery, CountBy, CountQuery, DatabaseUrl};
use uuid::Uuid;

// The gateway's allocator, so the walks and fills cost here what they cost in `credgate`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 2048;
const PRINCIPALS: usize = 200;
const GRANTS: usize = 1_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    // `--retention-only`: fill, then archive and verify the archive (no read timings).
    let retention_only = std::env::args().any(|a| a == "--retention-only");
    // With `--retention-only`, `--one-day` puts every record in one UTC day: one archive file,
    // as a trail retained a day at a time makes, verified with nothing beside it.
    let days = if std::env::args().any(|a| a == "--one-day") {
        1
    } else {
        2
    };
    // `--fill-only`: fill and print the sizes, then stop and keep the database (to time an
    // upgrade of it, or to read it from outside).
    let fill_only = std::env::args().any(|a| a == "--fill-only");
    // `--reads-only`: fill and time the reads and the walk, without archiving (large trails).
    let reads_only = std::env::args().any(|a| a == "--reads-only");
    let records: usize = args.first().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("credgate-audit-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("audit.db");
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| format!("sqlite:{}", file.display()));
    // The file whose size is measured: the one the URL names.
    let file = url.strip_prefix("sqlite:").map_or(file, |path| {
        std::path::PathBuf::from(path.split('?').next().unwrap_or(path))
    });
    let store = credgate::store::open_with(&DatabaseUrl::new(url.clone()), false)
        .await
        .unwrap();
    // Pointed at an existing database this is its upgrade: timed, since a migration that
    // rewrites the trail takes time in proportion to it.
    let migrating = Instant::now();
    store.migrate().await.unwrap();
    println!("schema migrated in {:.2} s", migrating.elapsed().as_secs_f64());
    // `--walk-only`: the walks alone, over the trail already in the database (one a
    // `--fill-only` run kept), to time or profile them on their own.
    if std::env::args().any(|a| a == "--walk-only") {
        walks(&store).await;
        store.close().await;
        return;
    }

    // A realistic spread: many principals and grants, one grant hot (a tenth of the calls),
    // mostly `ok`, a few refusals.
    let principals: Vec<Uuid> = (0..PRINCIPALS).map(|_| Uuid::new_v4()).collect();
    let grants: Vec<(Uuid, Uuid, Uuid)> = (0..GRANTS)
        .map(|i| (Uuid::new_v4(), Uuid::new_v4(), principals[i % PRINCIPALS]))
        .collect();
    // The records are spread over the last day, as a day of traffic would be: what the per-minute
    // call counts (and the overview's reads of them) see.
    let day_start = credgate::clock::now() - chrono::Duration::days(1);
    let step = 86_400_000_000 / records.max(1) as i64;
    // For retention alone, two whole UTC days (two files of equal size, as a retained archive's
    // days are; or one), instead of the last 24 hours (which split wherever the clock is).
    let (day_start, step) = if retention_only {
        let midnight = credgate::clock::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        (midnight - chrono::Duration::days(days), step * days)
    } else {
        (day_start, step)
    };
    // `--bulk`: the trail's secondary indexes are dropped for the fill and built after it in one
    // pass each (timed on their own), as a loader of a very large trail would.
    let bulk = std::env::args().any(|a| a == "--bulk");
    let indexes = if bulk { drop_indexes(&url).await } else { Vec::new() };
    // The events are made on a thread of their own, a few batches ahead, so the fill times the
    // store's writing rather than this loop.
    let (batches, ready) = std::sync::mpsc::sync_channel::<Vec<JournaledEvent>>(4);
    let made = {
        let grants = grants.clone();
        std::thread::spawn(move || {
            let mut rare_request = String::new();
            let mut middle = day_start;
            let mut hashed_bytes = 0usize;
            let mut written = 0usize;
            while written < records {
                let n = BATCH.min(records - written);
                let events: Vec<JournaledEvent> = (0..n)
                    .map(|i| {
                        let k = written + i;
                        let (grant, secret, principal) = if k.is_multiple_of(10) {
                            grants[0]
                        } else {
                            grants[(k * 7919) % GRANTS]
                        };
                        let outcome = match k % 1000 {
                            0 => "grant_revoked",
                            1..=4 => "upstream_error",
                            _ => "ok",
                        };
                        let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", outcome);
                        e.at = day_start + chrono::Duration::microseconds(step * k as i64);
                        e.principal_id = Some(principal);
                        e.grant_id = Some(grant);
                        e.secret_id = Some(secret);
                        e.request_id = Some(Uuid::now_v7().simple().to_string());
                        e.method = Some("POST".into());
                        e.host = Some("api.openai.com".into());
                        e.path = Some("/v1/chat/completions".into());
                        e.status = Some(200);
                        e.provider = Some("openai".into());
                        e.latency_ms = Some(12.5);
                        if k == records / 2 {
                            rare_request = e.request_id.clone().unwrap_or_default();
                            middle = e.at;
                        }
                        JournaledEvent::new(e)
                    })
                    .collect();
                hashed_bytes += events.iter().map(|e| e.body.len()).sum::<usize>();
                written += n;
                if batches.send(events).is_err() {
                    break;
                }
            }
            (rare_request, middle, hashed_bytes as f64 / records.max(1) as f64)
        })
    };
    let started = Instant::now();
    let mut written = 0usize;
    let mut reported = Instant::now();
    for events in ready {
        written += events.len();
        let batch = JournalBatch {
            journal: "bench".into(),
            events,
            ..Default::default()
        };
        store.index_journal(&batch, None).await.unwrap();
        if reported.elapsed() > Duration::from_secs(60) {
            reported = Instant::now();
            eprintln!(
                "{written} records in {:.0} s ({:.0}/s)",
                started.elapsed().as_secs_f64(),
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let (rare_request, middle, hashed_body) = made.join().unwrap();
    let loaded = started.elapsed();
    if bulk {
        let building = Instant::now();
        create_indexes(&url, &indexes).await;
        println!(
            "{records} records loaded in {:.0} s ({:.0}/s), {} indexes built in {:.0} s",
            loaded.as_secs_f64(),
            records as f64 / loaded.as_secs_f64(),
            indexes.len(),
            building.elapsed().as_secs_f64()
        );
    }
    let fill = started.elapsed();
    let (size, body) = sizes(&url, &file).await;

    println!(
        "| records | backend | fill (records/s) | MiB per million records | bytes a record | body bytes a record: hashed | stored |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    println!(
        "| {records} | {} | {:.0} | {:.0} | {:.0} | {hashed_body:.0} | {body:.0} |",
        store.backend(),
        records as f64 / fill.as_secs_f64(),
        size as f64 / (1 << 20) as f64 / (records as f64 / 1e6),
        size as f64 / records as f64,
    );
    println!();
    if fill_only {
        store.close().await;
        println!("kept: {url}");
        return;
    }
    if !retention_only {
        let hot = grants[0];
        let cold = grants[GRANTS - 1];
        let queries: Vec<(&str, AuditQuery)> = vec![
            ("newest 50, no filter", AuditQuery::default()),
            (
                "grant (hot: a tenth of the trail)",
                AuditQuery {
                    grant_id: Some(hot.0),
                    ..Default::default()
                },
            ),
            (
                "grant (one of 1,000)",
                AuditQuery {
                    grant_id: Some(cold.0),
                    ..Default::default()
                },
            ),
            (
                "principal",
                AuditQuery {
                    principal_id: Some(cold.2),
                    ..Default::default()
                },
            ),
            (
                "secret",
                AuditQuery {
                    secret_id: Some(cold.1),
                    ..Default::default()
                },
            ),
            (
                "outcome (rare)",
                AuditQuery {
                    outcome: Some("grant_revoked".into()),
                    ..Default::default()
                },
            ),
            (
                "action",
                AuditQuery {
                    action: Some("proxy.response".into()),
                    ..Default::default()
                },
            ),
            (
                "request id",
                AuditQuery {
                    request_id: Some(rare_request.clone()),
                    ..Default::default()
                },
            ),
            (
                "time range (a second, mid-trail)",
                AuditQuery {
                    since: Some(middle),
                    until: Some(middle + chrono::Duration::seconds(1)),
                    ..Default::default()
                },
            ),
            (
                "time range (an hour, mid-trail)",
                AuditQuery {
                    since: Some(middle),
                    until: Some(middle + chrono::Duration::hours(1)),
                    ..Default::default()
                },
            ),
            (
                "time range (the whole day)",
                AuditQuery {
                    since: Some(day_start),
                    until: Some(day_start + chrono::Duration::days(1)),
                    ..Default::default()
                },
            ),
            (
                "time range (a second) and a grant",
                AuditQuery {
                    since: Some(middle),
                    until: Some(middle + chrono::Duration::seconds(1)),
                    grant_id: Some(hot.0),
                    ..Default::default()
                },
            ),
        ];
        println!("| read (limit 50) | rows | median ms | p99 ms |");
        println!("|---|---:|---:|---:|");
        for (name, mut query) in queries {
            query.limit = 50;
            // Once untimed: the first run plans the statement and reads the pages in.
            store.audit_events(&query).await.unwrap();
            let mut times = Vec::new();
            let mut rows = 0;
            for _ in 0..30 {
                let t = Instant::now();
                rows = store.audit_events(&query).await.unwrap().len();
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "| {name} | {rows} | {:.2} | {:.2} |",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.99).as_secs_f64() * 1e3
            );
        }
        println!();
        println!("| stats read over the day (GET /admin/v1/stats) | series | median ms | p99 ms |");
        println!("|---|---:|---:|---:|");
        let day = |by: CountBy, bucket_seconds: i64, grant_id: Option<Uuid>| CountQuery {
            from: day_start,
            to: day_start + chrono::Duration::days(1),
            bucket_seconds,
            by,
            grant_id,
            secret_id: None,
            principal_id: None,
        };
        for (name, query) in [
            (
                "by outcome, 12-minute buckets (the overview's chart)",
                day(CountBy::Outcome, 720, None),
            ),
            ("by provider, 12-minute buckets", day(CountBy::Provider, 720, None)),
            ("by grant, hourly (busiest grants)", day(CountBy::Grant, 3600, None)),
            ("by principal, hourly", day(CountBy::Principal, 3600, None)),
            ("one grant (hot), hourly", day(CountBy::Outcome, 3600, Some(hot.0))),
            ("one secret, by grant, hourly", {
                let mut q = day(CountBy::Grant, 3600, None);
                q.secret_id = Some(cold.1);
                q
            }),
        ] {
            store.call_counts(&query).await.unwrap();
            let mut times = Vec::new();
            let mut series = 0;
            for _ in 0..30 {
                let t = Instant::now();
                let rows = store.call_counts(&query).await.unwrap();
                times.push(t.elapsed());
                let mut keys: Vec<String> = rows.into_iter().map(|r| r.key).collect();
                keys.sort();
                keys.dedup();
                series = keys.len();
            }
            times.sort();
            println!(
                "| {name} | {series} | {:.2} | {:.2} |",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.99).as_secs_f64() * 1e3
            );
        }

        walks(&store).await;
    }

    if reads_only {
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    // Retention: every whole day moved to archive files (as --audit-retain-days would; here
    // all of them, so all but the newest record), then the archive proven as `credgate audit
    // verify --archive` proves it: files side by side, each record's hash and link.
    let ring = credgate::crypto::KeyRing::new(
        vec![credgate::crypto::MasterKey::generate().unwrap()],
        credgate::crypto::KeyRingSource::Memory,
    )
    .unwrap();
    credgate::masterkey::check_at_start(store.as_ref(), &ring)
        .await
        .unwrap();
    let archive = dir.join("archive");
    let t = Instant::now();
    let done = credgate::audit_archiver::archive_before(
        store.as_ref(),
        &ring,
        &archive,
        credgate::clock::now() + chrono::Duration::days(2),
        Uuid::new_v4(),
    )
    .await
    .unwrap();
    let moved = t.elapsed();
    let archived: i64 = done.checkpoints.iter().map(|c| c.records).sum();
    let bytes: i64 = done.checkpoints.iter().map(|c| c.file_bytes).sum();
    let key = store.audit_signing_key().await.unwrap().unwrap().public_key;
    let checkpoints = store.audit_checkpoints().await.unwrap();
    let t = Instant::now();
    let proof = credgate::audit::archive::verify_archive(&archive, &key, &checkpoints);
    let proved = t.elapsed();
    assert!(proof.ok, "{proof:?}");
    assert_eq!(proof.records as i64, archived);
    // The part of that which is decompressing and splitting lines alone, files side by side.
    let t = Instant::now();
    std::thread::scope(|scope| {
        for c in &checkpoints {
            let path = archive.join(&c.file);
            scope.spawn(move || {
                use std::io::BufRead;
                let file = std::fs::File::open(path).unwrap();
                let mut lines =
                    std::io::BufReader::with_capacity(1 << 16, zstd::stream::read::Decoder::new(file).unwrap());
                let mut line = String::new();
                while lines.read_line(&mut line).unwrap() > 0 {
                    line.clear();
                }
            });
        }
    });
    let inflated = t.elapsed();
    // The files one at a time (each file's check is two threads: one decompresses, one hashes),
    // to compare with the files side by side above.
    let t = Instant::now();
    for c in &checkpoints {
        credgate::audit::archive::verify_file(&archive, c).unwrap();
    }
    let one_core = t.elapsed();
    let per_file: Vec<String> = checkpoints.iter().map(|c| c.records.to_string()).collect();
    println!("files hold {} records", per_file.join(" + "));
    println!();
    println!("| retention | records | files | seconds | records/s | file bytes a record |");
    println!("|---|---:|---:|---:|---:|---:|");
    let per = bytes as f64 / archived.max(1) as f64;
    for (name, took) in [
        ("archived (read, verified, compressed, signed, deleted)", moved),
        ("archive verified (`verify --archive`)", proved),
        ("of which decompressing and splitting lines", inflated),
        ("each file on its own, one after another", one_core),
    ] {
        println!(
            "| {name} | {archived} | {} | {:.2} | {:.0} | {per:.0} |",
            checkpoints.len(),
            took.as_secs_f64(),
            archived as f64 / took.as_secs_f64()
        );
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The trail's bytes on disk (the SQLite file, or PostgreSQL's table with its indexes and
/// toast), and the average length of a record's body as stored (without the values its columns
/// hold), over the first million records.
async fn sizes(url: &str, file: &std::path::Path) -> (u64, f64) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let row: (i64, f64) = sqlx::query_as(
            "SELECT pg_total_relation_size('audit_events')::BIGINT, (SELECT AVG(octet_length(body))::FLOAT8 FROM audit_events WHERE seq <= 1000000)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        return (row.0 as u64, row.1);
    }
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let body: f64 = sqlx::query_scalar("SELECT AVG(LENGTH(CAST(body AS BLOB))) FROM audit_events WHERE seq <= 1000000")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let wal = file.with_extension("db-wal");
    let size =
        std::fs::metadata(file).map(|m| m.len()).unwrap_or(0) + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    (size, body)
}

/// Runs `$body` with `$pool` connected to `$url`, whichever engine it names (the bench has no
/// engine-independent driver).
macro_rules! with_pool {
    ($url:expr, |$pool:ident| $body:block) => {
        if $url.starts_with("postgres") {
            let $pool = sqlx::PgPool::connect($url).await.unwrap();
            let out = $body;
            $pool.close().await;
            out
        } else {
            let $pool = sqlx::SqlitePool::connect($url).await.unwrap();
            let out = $body;
            $pool.close().await;
            out
        }
    };
}

/// The audit table's secondary indexes, as the SQL that makes each, dropped.
async fn drop_indexes(url: &str) -> Vec<String> {
    let list = if url.starts_with("postgres") {
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_events' AND indexname <> 'audit_events_pkey'"
    } else {
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL"
    };
    with_pool!(url, |pool| {
        let made: Vec<String> = sqlx::query_scalar(list).fetch_all(&pool).await.unwrap();
        for sql in &made {
            // `CREATE [UNIQUE] INDEX name ON ...`: the word before `ON`.
            let name = sql.split(" ON ").next().unwrap().rsplit(' ').next().unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
                .execute(&pool)
                .await
                .unwrap();
        }
        made
    })
}

async fn create_indexes(url: &str, made: &[String]) {
    with_pool!(url, |pool| {
        for sql in made {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap();
        }
    })
}

/// The whole chain walked as `credgate audit verify` walks it (`store::walk_chain`: pages of
/// 10,000 read ahead while the oldest is checked); the reads alone beside it, one page after
/// the other, to tell the database's part from the checking's.
async fn walks(store: &std::sync::Arc<dyn credgate::store::Store>) {
    let walk = |check: bool| {
        let store = store.clone();
        async move {
            let t = Instant::now();
            let mut report = credgate::audit::VerifyReport::genesis();
            if check {
                credgate::store::walk_chain(&store, &mut report, 10_000).await.unwrap();
                assert!(report.ok, "{:?}", report.error);
                return (report.records as usize, t.elapsed());
            }
            let mut read = 0usize;
            loop {
                let page = store
                    .audit_chain_page(report.head_seq, 10_000, credgate::store::ChainPage::default())
                    .await
                    .unwrap();
                let Some(last) = page.last_seq() else { break };
                read += page.len();
                report.head_seq = last;
            }
            (read, t.elapsed())
        }
    };
    println!();
    println!("| the whole chain, in order | records | seconds | records/s |");
    println!("|---|---:|---:|---:|");
    for (name, check) in [("read only", false), ("read and verified", true)] {
        let (n, took) = walk(check).await;
        println!(
            "| {name} | {n} | {:.2} | {:.0} |",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    }
}
