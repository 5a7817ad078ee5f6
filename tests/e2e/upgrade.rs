//! A database an earlier release made, opened by this one: what migrations rewrite (the audit
//! trail's columns, 0021) reads back the same and still verifies, on both engines.

use std::sync::Arc;

use credgate::audit::{AuditEvent, AuditKind, GENESIS, StoredAudit, VerifyReport, link, verify_records};
use credgate::clock::to_micros;
use credgate::store::{AuditQuery, DatabaseUrl, Store};
use uuid::Uuid;

use crate::support;

/// The release before binary audit columns: migrations up to 0020.
const BEFORE: i64 = 20;

/// A trail as releases up to 0020 kept it: ids and hashes as text, `prev_hash` in its own
/// column. Two grants of one secret, one principal, a person on every third call, and admin
/// records with no ids at all. Returns the records as they were inserted.
fn old_trail(n: i64) -> (Vec<StoredAudit>, Uuid, String) {
    let (principal, user, secret) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let grants = [Uuid::new_v4(), Uuid::new_v4()];
    let mut prev = GENESIS.to_owned();
    let mut rows = Vec::new();
    for seq in 1..=n {
        let e = if seq % 5 == 0 {
            AuditEvent::new(AuditKind::Admin, "grant.create", "ok")
        } else {
            let mut e = AuditEvent::new(
                AuditKind::Proxy,
                "proxy.response",
                if seq % 7 == 0 { "denied" } else { "ok" },
            );
            e.principal_id = Some(principal);
            e.grant_id = Some(grants[(seq % 2) as usize]);
            e.secret_id = Some(secret);
            e.request_id = Some(format!("req-{seq}"));
            e.user_principal_id = (seq % 3 == 0).then_some(user);
            e.status = Some(200);
            e
        };
        let body = e.body();
        let hash = link(&prev, seq, &body);
        let text = |v: Option<Uuid>| v.map(|v| v.to_string());
        rows.push(StoredAudit {
            seq,
            id: e.id.to_string(),
            at: to_micros(e.at),
            kind: e.kind.as_str().to_owned(),
            action: e.action.clone(),
            outcome: e.outcome.clone(),
            principal_id: text(e.principal_id),
            grant_id: text(e.grant_id),
            secret_id: text(e.secret_id),
            request_id: e.request_id.clone(),
            user_principal_id: text(e.user_principal_id),
            body,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    (rows, grants[0], user.to_string())
}

/// The INSERT an 0020 database took for `rows` (values written out: they are all made above,
/// and the bodies' quotes are doubled).
fn insert_sql(rows: &[StoredAudit]) -> String {
    let text = |v: &Option<String>| {
        v.as_ref()
            .map_or("NULL".to_owned(), |v| format!("'{}'", v.replace('\'', "''")))
    };
    let values: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "({}, '{}', {}, '{}', '{}', '{}', {}, {}, {}, {}, {}, '{}', '{}', '{}')",
                r.seq,
                r.id,
                r.at,
                r.kind,
                r.action,
                r.outcome,
                text(&r.principal_id),
                text(&r.grant_id),
                text(&r.secret_id),
                text(&r.request_id),
                text(&r.user_principal_id),
                r.body.replace('\'', "''"),
                r.prev_hash,
                r.hash
            )
        })
        .collect();
    format!(
        "INSERT INTO audit_events (seq, id, at, kind, action, outcome, principal_id, grant_id, secret_id, \
         request_id, user_principal_id, body, prev_hash, hash) VALUES {}",
        values.join(", ")
    )
}

/// Opens the upgraded database the way the gateway does (migrating it) and checks the trail:
/// every record as it was, the chain verifying end to end, filtered reads with their
/// `prev_hash`, and new records going on from the old head.
async fn check_upgraded(store: Arc<dyn Store>, old: &[StoredAudit], grant: Uuid, user: &str) {
    let n = old.len() as i64;
    let rows = store.audit_chain(0, n + 10).await.unwrap();
    assert_eq!(rows.len(), old.len());
    for (got, want) in rows.iter().zip(old) {
        assert_eq!(got, want, "record {}", want.seq);
    }
    let mut report = VerifyReport::default();
    verify_records(&mut report, &rows);
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (report.records, report.head_hash.as_str()),
        (n as u64, old.last().unwrap().hash.as_str())
    );

    // Pages of the chain start mid-trail: the first record's prev_hash is read from the one
    // before it.
    let page = store.audit_chain(40, 3).await.unwrap();
    assert_eq!(page, old[40..43]);

    // The filters the portal uses, newest first, each record whole.
    let by_grant = store
        .audit_events(&AuditQuery {
            grant_id: Some(grant),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let grant = grant.to_string();
    let want: Vec<_> = old
        .iter()
        .rev()
        .filter(|r| r.grant_id.as_deref() == Some(grant.as_str()))
        .take(10)
        .cloned()
        .collect();
    assert_eq!(by_grant, want);
    let by_user = store
        .audit_events(&AuditQuery {
            user_principal_id: Some(user.parse().unwrap()),
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_user.len(),
        old.iter()
            .filter(|r| r.user_principal_id.as_deref() == Some(user))
            .count()
    );
    assert!(by_user.iter().all(|r| r.user_principal_id.as_deref() == Some(user)));
    let first = store
        .audit_events(&AuditQuery {
            request_id: Some("req-1".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first, old[..1]);
    assert_eq!(first[0].prev_hash, GENESIS);

    // The chain goes on from the old head.
    store
        .append_audit(&[AuditEvent::new(AuditKind::Admin, "principal.create", "ok")])
        .await
        .unwrap();
    let rows = store.audit_chain(0, n + 10).await.unwrap();
    assert_eq!(rows.len(), old.len() + 1);
    assert_eq!(rows[old.len()].prev_hash, old.last().unwrap().hash);
    let mut report = VerifyReport::default();
    verify_records(&mut report, &rows);
    assert!(report.ok, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_trail_from_before_binary_columns_reads_and_verifies_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("old.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::migrate!("migrations/sqlite").run_to(BEFORE, &pool).await.unwrap();
    let (old, grant, user) = old_trail(300);
    sqlx::raw_sql(sqlx::AssertSqlSafe(insert_sql(&old)))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = credgate::store::connect(&DatabaseUrl::new(url)).await.unwrap();
    check_upgraded(store, &old, grant, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_trail_from_before_binary_columns_reads_and_verifies_the_same() {
    if support::postgres_skipped() {
        return;
    }
    let url = support::fresh_postgres_url().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::migrate!("migrations/postgres")
        .run_to(BEFORE, &pool)
        .await
        .unwrap();
    let (old, grant, user) = old_trail(300);
    sqlx::raw_sql(sqlx::AssertSqlSafe(insert_sql(&old)))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = credgate::store::connect(&DatabaseUrl::new(url)).await.unwrap();
    check_upgraded(store, &old, grant, &user).await;
}

/// A database this release has written keeps bodies the release before could not read (it
/// would report every new record as changed): that release refuses to start on it instead,
/// because migration 0022 is one it does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_from_before_stored_bodies_refuses_a_database_this_one_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("new.db").display());
    let store = credgate::store::connect(&DatabaseUrl::new(url.clone())).await.unwrap();
    store.close().await;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let mut before = sqlx::migrate!("migrations/sqlite");
    before.migrations = before.migrations.iter().filter(|m| m.version < 22).cloned().collect();
    match before.run(&pool).await {
        Err(sqlx::migrate::MigrateError::VersionMissing(22)) => {}
        other => panic!("the release before started on it: {other:?}"),
    }
}
