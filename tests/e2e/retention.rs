//! Retention (`--audit-retain-days`): old days of the trail leave the database for archive files
//! with signed checkpoints, while calls go on; `credgate audit verify --archive DIR` proves the
//! whole trail; and every way of hiding a change (a file edited or removed, a checkpoint edited
//! or removed, the live trail cut back) is caught.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use credgate::audit::archive::{read_file, write_file};
use credgate::audit::{AuditEvent, AuditKind, JournalBatch, JournaledEvent, link};
use credgate::store::DatabaseUrl;
use reqwest::Method;
use serde_json::Value;

use crate::proxy::Fixture;
use crate::support::{Gateway, Options, send};

const PER_DAY: i64 = 20_000;

fn midnight() -> DateTime<Utc> {
    credgate::clock::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
}

/// Writes `PER_DAY` calls' records a day for each of the days `ago` (oldest first) into the
/// database at `url`, as a gateway running then would have.
async fn fill(url: &str, midnight: DateTime<Utc>, ago: &[i64]) {
    let store = credgate::store::connect(&DatabaseUrl::new(url.to_owned()))
        .await
        .unwrap();
    let grant = uuid::Uuid::new_v4();
    for &d in ago {
        let day = midnight - chrono::Duration::days(d);
        for part in 0..(PER_DAY / 2_000) {
            let events: Vec<JournaledEvent> = (0..2_000)
                .map(|i| {
                    let n = part * 2_000 + i;
                    let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", "ok");
                    e.at = day + chrono::Duration::milliseconds(n * (86_000_000 / PER_DAY));
                    e.grant_id = Some(grant);
                    e.method = Some("GET".into());
                    e.path = Some(format!("/v1/items/{n}"));
                    e.status = Some(200);
                    JournaledEvent::new(e)
                })
                .collect();
            let batch = JournalBatch {
                journal: format!("history-{d}-{part}"),
                events,
                ..Default::default()
            };
            store.index_journal(&batch, None).await.unwrap();
        }
    }
    store.close().await;
}

fn archive_dir(gw: &Gateway) -> PathBuf {
    gw.data_dir.join("audit-archive")
}

async fn checkpoints(gw: &Gateway) -> Vec<Value> {
    let r = gw.get("/admin/v1/audit/checkpoints").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().unwrap().clone()
}

/// Waits until `files` archive files are signed and their records gone from the database,
/// making a data-plane call between looks when `call` is given; returns how many it made.
async fn await_archive(gw: &Gateway, files: usize, call: Option<(&str, &str)>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut calls = 0;
    loop {
        if let Some((grant, key)) = call {
            let r = send(gw.via_grant(Method::GET, grant, "status/200").bearer_auth(key)).await;
            assert_eq!(r.status, 200, "a call while archiving: {}", r.text);
            calls += 1;
        }
        let cps = checkpoints(gw).await;
        if cps.len() == files {
            let end = cps.last().unwrap()["last_seq"].as_i64().unwrap();
            let oldest = gw.get("/admin/v1/audit/verify").await;
            // Pruned once the oldest record left is the one after the last file.
            let first = gw.get(&format!("/admin/v1/audit?before={}&limit=1", end + 1)).await;
            if first.json["data"].as_array().unwrap().is_empty() && oldest.json["ok"] == true {
                return calls;
            }
        }
        assert!(cps.len() <= files, "more files than days: {cps:?}");
        assert!(Instant::now() < deadline, "archiving did not finish: {}", gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn verify_archive(gw: &Gateway, dir: &Path, extra: &[&str]) -> (i32, Value, String) {
    let dir = dir.to_string_lossy().into_owned();
    let mut args = vec!["audit", "verify", "--json", "--archive", dir.as_str()];
    args.extend_from_slice(extra);
    let run = gw.cli(&args, None);
    let report = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (run.code, report, run.stderr)
}

/// The live trail verified from a kept head: `seq` (a checkpoint's number) and its hash.
async fn verify_after(gw: &Gateway, seq: &Value, hash: &str) -> crate::support::Reply {
    gw.get(&format!("/admin/v1/audit/verify?after_seq={seq}&after_hash={hash}"))
        .await
}

async fn sqlite_pool(gw: &Gateway) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite:{}", gw.data_dir.join("credgate.db").display()))
        .await
        .unwrap()
}

async fn sql(pool: &sqlx::SqlitePool, statement: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_days_move_to_signed_files_and_the_whole_trail_still_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    credgate::bootstrap::prepare_data_dir(&data).unwrap();
    // Six days of history; keeping three, the three oldest whole days go.
    let today = midnight();
    fill(
        &format!("sqlite:{}", data.join("credgate.db").display()),
        today,
        &[6, 5, 4, 3, 2, 1],
    )
    .await;
    let f = Fixture::with(Options {
        data_dir: Some(data.clone()),
        args: vec!["--audit-retain-days".into(), "3".into()],
        ..Default::default()
    })
    .await;
    let (_, grant) = f.bearer_grant().await;
    let calls = await_archive(&f.gw, 3, Some((&grant, &f.key))).await;
    assert!(calls > 0);

    // Three files, one per day, holding exactly those days' records as chained.
    let cps = checkpoints(&f.gw).await;
    let periods: Vec<String> = cps.iter().map(|c| c["period"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = [6, 5, 4]
        .iter()
        .map(|d| (today - chrono::Duration::days(*d)).format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(periods, expected);
    let dir = archive_dir(&f.gw);
    let mut archived = 0;
    for c in &cps {
        let records = read_file(&dir.join(c["file"].as_str().unwrap())).unwrap();
        assert_eq!(records.len() as i64, c["records"].as_i64().unwrap());
        assert_eq!(records.first().unwrap().seq, c["first_seq"].as_i64().unwrap());
        assert_eq!(&records.last().unwrap().hash, c["head_hash"].as_str().unwrap());
        let body: Value = serde_json::from_str(&records[0].body).unwrap();
        assert_eq!(body["action"], "proxy.response", "the body is the event as chained");
        archived += records.len() as i64;
    }
    assert_eq!(archived, 3 * PER_DAY);
    let listed = f.gw.get("/admin/v1/audit/checkpoints").await;
    let public_key = listed.json["signing_key"]["public_key"].as_str().unwrap().to_owned();
    // The gateway's own time, which a seal's age is measured by.
    let said = chrono::DateTime::parse_from_rfc3339(listed.json["now"].as_str().unwrap()).unwrap();
    assert!(
        (credgate::clock::now() - said.with_timezone(&chrono::Utc))
            .num_seconds()
            .abs()
            < 60,
        "{}",
        listed.text
    );

    // The whole trail proves itself: files, then the database after them.
    let (code, report, stderr) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["archive_files"], 3);
    assert_eq!(report["archived_records"], 3 * PER_DAY);
    assert_eq!(report["ok"], true);
    assert!(report["live_records"].as_i64().unwrap() >= 3 * PER_DAY);
    let (code, _, _) = verify_archive(&f.gw, &dir, &["--public-key", &public_key]);
    assert_eq!(code, 0);
    // A head kept from before the cut is checked where it now is: in a file.
    let kept = read_file(&dir.join(cps[0]["file"].as_str().unwrap())).unwrap()[41].clone();
    let head = format!("{}:{}", kept.seq, kept.hash);
    assert_eq!(verify_archive(&f.gw, &dir, &["--from", &head]).0, 0);
    let rewritten = format!("{}:{}", kept.seq, "b".repeat(64));
    let (code, report, _) = verify_archive(&f.gw, &dir, &["--from", &rewritten]);
    assert_eq!(code, 8);
    assert!(
        report["error"].as_str().unwrap().contains("not the one you kept"),
        "{report}"
    );
    let live = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(live.json["ok"], true, "{}", live.text);
    assert_eq!(live.json["archived_through"], cps[2]["last_seq"]);
    // A checkpoint kept from before the cut works from the newest file's end; one inside the
    // archive is sent there.
    let from_end = verify_after(&f.gw, &cps[1]["last_seq"], cps[1]["head_hash"].as_str().unwrap()).await;
    assert_eq!(from_end.json["ok"], false, "the records after it are archived too");
    assert!(
        from_end.json["error"].as_str().unwrap().contains("in an archive file"),
        "{}",
        from_end.text
    );
    let from_last = verify_after(&f.gw, &cps[2]["last_seq"], cps[2]["head_hash"].as_str().unwrap()).await;
    assert_eq!(from_last.json["ok"], true, "{}", from_last.text);
    let inside = verify_after(&f.gw, &Value::from(5), &"a".repeat(64)).await;
    assert_eq!(inside.json["ok"], false);
    assert!(
        inside.json["error"].as_str().unwrap().contains("in an archive file"),
        "{}",
        inside.text
    );

    // On the record, and counted.
    let actions = |action: &'static str| {
        let gw = &f.gw;
        async move {
            gw.get(&format!("/admin/v1/audit?action={action}&limit=100")).await.json["data"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(actions("audit.archive").await, 3);
    assert_eq!(actions("audit.signing_key.create").await, 1);
    assert!(
        f.gw.metrics()
            .await
            .contains(&format!("credgate_audit_archived_records_total {}", 3 * PER_DAY))
    );

    // A gateway that signs with another key than the one kept is refused.
    let stranger = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=";
    let (code, _, stderr) = verify_archive(&f.gw, &dir, &["--public-key", stranger]);
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.contains("another key"), "{stderr}");

    // A record changed inside a file (its hashes recomputed to hide it): the file's bytes are
    // not the ones signed.
    let second = dir.join(cps[1]["file"].as_str().unwrap());
    let original = std::fs::read(&second).unwrap();
    let mut records = read_file(&second).unwrap();
    records[10].body = records[10].body.replace("\"ok\"", "\"denied\"");
    for i in 10..records.len() {
        if i > 10 {
            records[i].prev_hash = records[i - 1].hash.clone();
        }
        records[i].hash = link(&records[i].prev_hash, records[i].seq, &records[i].body);
    }
    write_file(&second, &records).unwrap();
    let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8);
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(cps[1]["file"].as_str().unwrap()) && error.contains("SHA-256"),
        "{error}"
    );

    std::fs::write(&second, &original).unwrap();

    // A file removed.
    std::fs::rename(&second, tmp.path().join("moved")).unwrap();
    let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8);
    assert!(report["error"].as_str().unwrap().contains("cannot open"), "{report}");
    std::fs::rename(tmp.path().join("moved"), &second).unwrap();
    assert_eq!(verify_archive(&f.gw, &dir, &[]).0, 0, "restored");

    // A checkpoint edited in the database (to match an edited file, say): its signature fails,
    // in the CLI's proof and in the gateway's own walk, which starts from the newest one.
    let db = sqlite_pool(&f.gw).await;
    let newest = cps[2]["first_seq"].as_i64().unwrap();
    sql(
        &db,
        &format!("UPDATE audit_checkpoints SET records = records - 1 WHERE first_seq = {newest}"),
    )
    .await;
    let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8);
    assert!(report["error"].as_str().unwrap().contains("not signed"), "{report}");
    let walk = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(walk.json["ok"], false);
    assert!(
        walk.json["error"].as_str().unwrap().contains("not signed"),
        "{}",
        walk.text
    );
    sql(
        &db,
        &format!("UPDATE audit_checkpoints SET records = records + 1 WHERE first_seq = {newest}"),
    )
    .await;

    // The newest checkpoint removed, so the live trail would seem to start after the one
    // before: the records of the missing file are missing from every walk.
    sql(&db, "CREATE TABLE kept AS SELECT * FROM audit_checkpoints").await;
    sql(
        &db,
        &format!("DELETE FROM audit_checkpoints WHERE first_seq = {newest}"),
    )
    .await;
    let walk = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(walk.json["ok"], false, "{}", walk.text);
    assert!(
        walk.json["error"].as_str().unwrap().contains("missing"),
        "{}",
        walk.text
    );
    let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8);
    assert!(
        report["error"].as_str().unwrap().contains("no checkpoint names"),
        "the file is still there: {report}"
    );
    sql(&db, "DELETE FROM audit_checkpoints").await;
    sql(&db, "INSERT INTO audit_checkpoints SELECT * FROM kept").await;
    assert_eq!(verify_archive(&f.gw, &dir, &[]).0, 0, "restored");

    // The live trail cut back after the last file.
    let after = cps[2]["last_seq"].as_i64().unwrap();
    sql(&db, &format!("DELETE FROM audit_events WHERE seq <= {}", after + 5)).await;
    let walk = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(walk.json["ok"], false);
    assert!(
        walk.json["error"]
            .as_str()
            .unwrap()
            .contains(&format!("expected sequence number {}", after + 1)),
        "{}",
        walk.text
    );
    let (code, _, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8);

    // Every record left in the database deleted: nothing follows the newest checkpoint.
    sql(&db, "DELETE FROM audit_events").await;
    let walk = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(walk.json["ok"], false, "{}", walk.text);
    assert!(
        walk.json["error"].as_str().unwrap().contains("no record follows"),
        "{}",
        walk.text
    );
    // The chain goes on from the newest checkpoint, never from the start again.
    f.gw.create_principal("agent", "after-the-cut").await;
    let newest = f.gw.get("/admin/v1/audit?limit=1").await;
    assert_eq!(newest.json["data"][0]["seq"], after + 1, "{}", newest.text);
    assert_eq!(newest.json["data"][0]["prev_hash"], cps[2]["head_hash"]);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_changed_before_archiving_is_never_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    credgate::bootstrap::prepare_data_dir(&data).unwrap();
    let url = format!("sqlite:{}", data.join("credgate.db").display());
    fill(&url, midnight(), &[3, 2]).await;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    // Someone with the database rewrites one old call's outcome (kept in its column only: the
    // stored body leaves it out, and reading the record puts it back into what is hashed).
    sql(&pool, "UPDATE audit_events SET outcome = 'denied' WHERE seq = 77").await;
    pool.close().await;
    let gw = Gateway::start_with(Options {
        data_dir: Some(data),
        args: vec!["--audit-retain-days".into(), "1".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !gw.metrics().await.contains("credgate_audit_archive_errors_total 1") {
        assert!(Instant::now() < deadline, "{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(checkpoints(&gw).await.is_empty(), "nothing signed");
    assert!(
        gw.logs().contains("record 77: hash does not match"),
        "the log names the record: {}",
        gw.logs()
    );
    let first = gw.get("/admin/v1/audit?before=2&limit=1").await;
    assert_eq!(first.json["data"][0]["seq"], 1, "nothing deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_archive_once_between_them() {
    if crate::support::postgres_skipped() {
        return;
    }
    let url = crate::support::fresh_postgres_url().await;
    fill(&url, midnight(), &[4, 3, 2]).await;
    let shared = tempfile::tempdir().unwrap();
    let options = Options {
        database_url: Some(url),
        env: vec![
            (
                "CREDGATE_MASTER_KEY".into(),
                "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into(),
            ),
            ("CREDGATE_ADMIN_TOKEN".into(), "replicas-share-this-admin-token".into()),
        ],
        args: vec![
            "--audit-retain-days".into(),
            "2".into(),
            "--audit-archive-dir".into(),
            shared.path().to_string_lossy().into_owned(),
            "--audit-archive-interval-seconds".into(),
            "1".into(),
        ],
        ..Default::default()
    };
    let a = Gateway::start_with(options.clone()).await.unwrap();
    let b = Gateway::start_with(options).await.unwrap();
    // Days 4 and 3 before today ended two days ago or earlier.
    let deadline = Instant::now() + Duration::from_secs(120);
    while checkpoints(&a).await.len() < 2 {
        assert!(Instant::now() < deadline, "{}\n{}", a.logs(), b.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both keep trying every second; give them a few more tries at the same days.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cps = checkpoints(&b).await;
    assert_eq!(cps.len(), 2, "{cps:?}");
    assert_eq!(
        a.get("/admin/v1/audit?action=audit.archive&limit=10").await.json["data"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "each day archived once"
    );
    for gw in [&a, &b] {
        let metrics = gw.metrics().await;
        assert!(
            metrics.contains("credgate_audit_archive_errors_total 0"),
            "no pass failed: {metrics}"
        );
    }
    let files: Vec<String> = std::fs::read_dir(shared.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let archives = files.iter().filter(|f| f.starts_with("audit-")).count();
    assert_eq!(archives, 2, "one file a day: {files:?}");
    assert_eq!(files.len(), 3, "and the sealed heads, no leftovers: {files:?}");
    assert!(files.contains(&"heads.jsonl".to_owned()), "{files:?}");
    assert_eq!(
        a.get("/admin/v1/audit?action=audit.signing_key.create&limit=10")
            .await
            .json["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one signing key"
    );
    // The local CLI reads the token where the gateway would have written it.
    std::fs::create_dir_all(&b.data_dir).unwrap();
    std::fs::write(b.data_dir.join("admin-token"), &b.admin_token).unwrap();
    let run = b.cli(
        &[
            "audit",
            "verify",
            "--json",
            "--archive",
            &shared.path().to_string_lossy(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["archived_records"], 2 * PER_DAY);
}

/// The newest head sealed in the archive directory's heads file, as JSON.
fn newest_sealed(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("heads.jsonl")).ok()?;
    text.lines().last().map(|l| serde_json::from_str(l).unwrap())
}

/// A data-plane call through `grant`, answered.
async fn call(f: &Fixture, grant: &str) {
    let r = send(f.gw.via_grant(Method::GET, grant, "status/200").bearer_auth(&f.key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A gateway archiving every second over a trail of one old day (archived) and one recent day
/// (live), with a call on top, once its newest record is sealed: the gateway, the archive
/// directory, the sealed head's sequence number, and the grant the call used.
async fn sealed_gateway(tmp: &Path) -> (Fixture, PathBuf, i64, String) {
    let data = tmp.join("data");
    credgate::bootstrap::prepare_data_dir(&data).unwrap();
    fill(
        &format!("sqlite:{}", data.join("credgate.db").display()),
        midnight(),
        &[4, 1],
    )
    .await;
    let f = Fixture::with(Options {
        data_dir: Some(data),
        args: vec![
            "--audit-retain-days".into(),
            "3".into(),
            "--audit-archive-interval-seconds".into(),
            "1".into(),
        ],
        ..Default::default()
    })
    .await;
    let (_, grant) = f.bearer_grant().await;
    call(&f, &grant).await;
    let dir = archive_dir(&f.gw);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let newest = f.gw.get("/admin/v1/audit?limit=1").await.json["data"][0]["seq"].clone();
        if checkpoints(&f.gw).await.len() == 1
            && let Some(sealed) = newest_sealed(&dir)
            && sealed["seq"] == newest
        {
            let (code, report, stderr) = verify_archive(&f.gw, &dir, &[]);
            assert_eq!(code, 0, "{report} {stderr}");
            assert_eq!(report["sealed_head_seq"], newest, "{report}");
            return (f, dir, newest.as_i64().unwrap(), grant);
        }
        assert!(Instant::now() < deadline, "no head sealed: {}", f.gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the archiver's next pass to fail, and returns its log.
async fn await_archive_error(gw: &Gateway) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gw.metrics().await.contains("credgate_audit_archive_errors_total 1") {
        assert!(Instant::now() < deadline, "{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.logs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_trail_rewritten_with_every_hash_recomputed_is_caught_by_its_sealed_head() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, dir, sealed, grant) = sealed_gateway(tmp.path()).await;
    let heads = std::fs::read_to_string(dir.join("heads.jsonl")).unwrap();

    // The attack: someone with write access to the database (not to the archive directory)
    // turns a live record's outcome from `ok` to `denied`, then recomputes its hash and every
    // later one, as credgate would have chained them.
    let url = format!("sqlite:{}", f.gw.data_dir.join("credgate.db").display());
    let first_live = checkpoints(&f.gw).await[0]["last_seq"].as_i64().unwrap() + 1;
    let target = first_live + 100;
    let db = sqlite_pool(&f.gw).await;
    sql(
        &db,
        &format!("UPDATE audit_events SET outcome = 'denied' WHERE seq = {target}"),
    )
    .await;
    let store = credgate::store::connect(&DatabaseUrl::new(url)).await.unwrap();
    let mut prev = store.audit_chain(target - 1, 1).await.unwrap()[0].prev_hash.clone();
    let mut after = target - 1;
    let mut rewrite = String::from("BEGIN;");
    loop {
        let page = store.audit_chain(after, 1_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            prev = link(&prev, r.seq, &r.body);
            rewrite.push_str(&format!(
                "UPDATE audit_events SET hash = unhex('{prev}') WHERE seq = {};",
                r.seq
            ));
        }
    }
    rewrite.push_str("COMMIT;");
    sql(&db, &rewrite).await;
    store.close().await;
    let changed =
        f.gw.get(&format!("/admin/v1/audit?before={}&limit=1", target + 1))
            .await;
    assert_eq!(changed.json["data"][0]["outcome"], "denied", "{}", changed.text);

    // The database's own walk cannot tell: every link holds.
    let walk = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(walk.json["ok"], true, "{}", walk.text);

    // The sealed head, kept outside the database, can.
    let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8, "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("record {sealed}: its hash is not the checkpoint's")) && error.contains("sealed at"),
        "{error}"
    );
    // And the archiver stops: it neither archives nor seals over the rewritten trail, though a
    // new call gives it a newer head to seal.
    call(&f, &grant).await;
    let logs = await_archive_error(&f.gw).await;
    assert!(
        logs.contains(&format!("record {sealed}: its hash is not the one sealed at")),
        "{logs}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("heads.jsonl")).unwrap(),
        heads,
        "nothing sealed since"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_trail_cut_back_below_its_sealed_head_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, dir, sealed, grant) = sealed_gateway(tmp.path()).await;
    let heads = std::fs::read_to_string(dir.join("heads.jsonl")).unwrap();
    // The attack: the newest records deleted (the calls they record never happened), and a
    // call made since, so the trail grows past the seal's number again.
    let db = sqlite_pool(&f.gw).await;
    sql(&db, &format!("DELETE FROM audit_events WHERE seq > {}", sealed - 3)).await;
    call(&f, &grant).await;
    let walk = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(walk.json["ok"], true, "the shorter trail links: {}", walk.text);
    let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8, "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("record {sealed}: the checkpoint's record is gone")),
        "{error}"
    );
    let logs = await_archive_error(&f.gw).await;
    assert!(
        logs.contains(&format!("record {sealed}: missing, yet it was sealed")),
        "{logs}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("heads.jsonl")).unwrap(),
        heads,
        "nothing sealed since"
    );

    // Someone with the archive directory alone cannot move the seal: a line they write is not
    // signed by the trail's key.
    let mut forged = newest_sealed(&dir).unwrap();
    forged["seq"] = (sealed - 3).into();
    let mut text = std::fs::read_to_string(dir.join("heads.jsonl")).unwrap();
    text.push_str(&format!("{forged}\n"));
    std::fs::write(dir.join("heads.jsonl"), text).unwrap();
    let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
    assert_eq!(code, 8, "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("not signed by the trail's key"),
        "{report}"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_do_not_link_after_the_last_seal_are_never_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", tmp.path().join("credgate.db").display());
    let store = credgate::store::connect(&DatabaseUrl::new(url.clone())).await.unwrap();
    let ring = credgate::crypto::KeyRing::new(
        vec![credgate::crypto::MasterKey::generate().unwrap()],
        credgate::crypto::KeyRingSource::Memory,
    )
    .unwrap();
    credgate::masterkey::check_at_start(store.as_ref(), &ring)
        .await
        .unwrap();
    let dir = tmp.path().join("archive");
    let calls = |n: usize, journal: &str| JournalBatch {
        journal: journal.to_owned(),
        events: (0..n)
            .map(|_| JournaledEvent::new(AuditEvent::new(AuditKind::Proxy, "proxy.response", "ok")))
            .collect(),
        ..Default::default()
    };
    // Nothing is old enough to archive: a pass only seals.
    let pass = || {
        credgate::audit_archiver::archive_before(
            store.as_ref(),
            &ring,
            &dir,
            midnight() - chrono::Duration::days(30),
            uuid::Uuid::new_v4(),
        )
    };
    store.index_journal(&calls(100, "first"), None).await.unwrap();
    let first = pass().await.unwrap().sealed.expect("a first seal");
    let (head, _) = store.audit_head().await.unwrap().unwrap();
    assert_eq!(first.seq, head);

    // Records after the seal, one of them changed in the database without its hash: the next
    // pass walks from the seal and refuses to seal over it.
    store.index_journal(&calls(50, "second"), None).await.unwrap();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let changed = first.seq + 20;
    sql(
        &pool,
        &format!("UPDATE audit_events SET outcome = 'denied' WHERE seq = {changed}"),
    )
    .await;
    let heads = std::fs::read_to_string(dir.join("heads.jsonl")).unwrap();
    let err = pass().await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("record {changed}: hash does not match")) && err.contains("nothing is sealed over it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("heads.jsonl")).unwrap(),
        heads,
        "nothing sealed"
    );

    // Put back, the same pass seals the new head.
    sql(
        &pool,
        &format!("UPDATE audit_events SET outcome = 'ok' WHERE seq = {changed}"),
    )
    .await;
    let second = pass().await.unwrap().sealed.expect("a second seal");
    assert_eq!(second.seq, first.seq + 50);
    assert!(pass().await.unwrap().sealed.is_none(), "nothing new, nothing sealed");
    pool.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_past_any_pass_is_reported_not_obeyed_in_silence() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, dir, _, grant) = sealed_gateway(tmp.path()).await;
    let last_pass = |metrics: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("credgate_audit_archive_last_pass_timestamp_seconds "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let ran = last_pass(&f.gw.metrics().await);
    assert!(ran > credgate::clock::now().timestamp() - 60, "a recent pass: {ran}");

    // The attack: someone with the database takes the archiving lease for a year, so that no
    // pass runs and nothing is sealed again while they rewrite the live trail.
    let year = credgate::clock::to_micros(credgate::clock::now() + chrono::Duration::days(365));
    let db = sqlite_pool(&f.gw).await;
    sql(
        &db,
        &format!(
            "INSERT INTO audit_archiver (id, holder, until) VALUES (1, 'someone', {year}) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until = excluded.until"
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f.gw.logs().contains("the archiving lease is held until") {
        assert!(Instant::now() < deadline, "{}", f.gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = f.gw.metrics().await;
    assert!(
        !metrics.contains("credgate_audit_archive_errors_total 0"),
        "counted: {metrics}"
    );
    // From here no pass runs: a call made now stays unsealed, and the last pass's time stays.
    let heads = std::fs::read_to_string(dir.join("heads.jsonl")).unwrap();
    let ran = last_pass(&metrics);
    call(&f, &grant).await;

    // A lease renewed with a plausible expiry would pass the gateway's check; the proof of the
    // trail warns once the seal is more than three passes old (here a second apart) with calls
    // made since. A warning, not a failure: a long pass seals late too.
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let (code, report, _) = verify_archive(&f.gw, &dir, &[]);
        assert_eq!(code, 0, "the trail itself is intact: {report}");
        if report["warning"].is_string() {
            break report;
        }
        assert!(Instant::now() < deadline, "no warning: {report}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        report["warning"]
            .as_str()
            .unwrap()
            .contains("no pass has sealed them yet"),
        "{report}"
    );
    let after = f.gw.metrics().await;
    assert_eq!(last_pass(&after), ran, "no pass has run since: {after}");
    assert_eq!(
        std::fs::read_to_string(dir.join("heads.jsonl")).unwrap(),
        heads,
        "nothing sealed"
    );
    db.close().await;
}
