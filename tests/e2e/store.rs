//! One store suite, run against SQLite and against the PostgreSQL server.

use std::sync::Arc;

use chrono::Duration;
use credgate::approvals::held::{HeldRequest, HeldResponse};
use credgate::approvals::{Approval, ApprovalStatus, Finished};
use credgate::audit::{AuditEvent, AuditKind, JournalBatch, JournaledEvent, StoredAudit, VerifyReport, verify_records};
use credgate::clock::now;
use credgate::crypto::{KeyRing, KeyRingSource, MasterKey, open_value, seal_value};
use credgate::masterkey::{KeyRingHandle, check_at_start, rewrap};
use credgate::redact::SecretBytes;
use credgate::store::{
    AuditQuery, CountBy, CountQuery, DatabaseUrl, GrantFilter, LimitKind, LimitRow, Store, StoreError,
};
use credgate::vault::api_key::AdminToken;
use credgate::vault::grant::GrantPolicyInput;
use credgate::vault::{ApiKey, Grant, GrantStatus, Principal, PrincipalKind, SecretMeta};
use uuid::Uuid;

use crate::support;

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::new(format!("sqlite:{}", dir.path().join("t.db").display()));
    (credgate::store::connect(&url).await.unwrap(), dir)
}

async fn postgres() -> Option<Arc<dyn Store>> {
    if support::postgres_skipped() {
        return None;
    }
    let url = support::fresh_postgres_url().await;
    Some(credgate::store::connect(&DatabaseUrl::new(url)).await.unwrap())
}

/// Generates `sqlite::<case>` and `postgres::<case>` for each case.
macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _dir) = super::sqlite().await;
                super::$case(store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(store) = super::postgres().await {
                    super::$case(store).await;
                }
            })*
        }
    };
}

store_suite!(
    principals_and_membership,
    deleting_a_principal_revokes_its_keys_and_grants,
    api_keys,
    secrets_rotate_and_delete,
    grants_by_status,
    every_change_is_audited_in_one_chain,
    reason_and_context_filters,
    records_read_back_as_the_exact_bodies_they_were_chained_with,
    concurrent_appends_keep_one_chain,
    journal_progress_commits_with_the_events,
    failed_changes_leave_no_record,
    rewrap_is_resumable,
    held_calls_move_forward_once_and_are_rewrapped,
    limit_rows_take_one_writer_at_a_time,
    minted_tokens_are_kept_per_version_and_minted_under_one_lease,
    calls_are_counted_per_minute_hour_and_day_with_the_trail,
    admin_tokens,
    external_identities,
    portal_sign_ins_and_sessions,
    time_ranges_of_the_trail,
    archiving_moves_whole_days_out_and_keeps_the_chain,
    a_cut_being_deleted_keeps_every_prev_hash,
    the_walk_reads_pages_ahead_and_checks_every_record_once,
    a_page_of_the_chain_reads_as_the_listing_reads_it,
    batches_of_any_size_chain_in_order_with_their_exact_bodies,
);

fn ev(action: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::Admin, action, "ok")
}

fn principal(kind: PrincipalKind, name: &str) -> Principal {
    Principal {
        id: Uuid::new_v4(),
        kind,
        name: name.into(),
        issuer: None,
        external_id: None,
        created_at: now(),
    }
}

fn ring() -> KeyRing {
    KeyRing::new(vec![MasterKey::generate().unwrap()], KeyRingSource::Memory).unwrap()
}

fn secret_meta(name: &str) -> SecretMeta {
    let at = now();
    SecretMeta {
        id: Uuid::new_v4(),
        name: name.into(),
        slug: credgate::vault::secret::slugify(name).unwrap(),
        secret_type: "bearer".into(),
        config: serde_json::Map::new(),
        allowed_hosts: vec!["api.example.com".into()],
        allow_private_destinations: false,
        allow_insecure_http: false,
        redact_responses: false,
        version: 1,
        credential_fields: vec!["token".into()],
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

async fn add_secret(store: &dyn Store, ring: &KeyRing, name: &str, value: &str) -> SecretMeta {
    let meta = secret_meta(name);
    let sealed = seal_value(
        ring,
        &meta.id.to_string(),
        1,
        &SecretBytes::new(value.as_bytes().to_vec()),
    )
    .unwrap();
    store.insert_secret(&meta, &sealed, &ev("secret.create")).await.unwrap();
    meta
}

fn grant(secret: Uuid, principal: Uuid, ttl: i64) -> Grant {
    Grant {
        grant_id: Uuid::new_v4(),
        secret_id: secret,
        principal_id: principal,
        grant_policy: GrantPolicyInput {
            ttl_seconds: Some(ttl),
            ..Default::default()
        }
        .resolve(now())
        .unwrap(),
        created_at: now(),
        revoked_at: None,
        revoked_reason: None,
    }
}

fn api_key(principal: Uuid) -> ApiKey {
    let issued = credgate::vault::token::issue(credgate::vault::token::TokenKind::App).unwrap();
    ApiKey {
        id: Uuid::new_v4(),
        principal_id: principal,
        name: Some("ci".into()),
        prefix: issued.prefix,
        hash: issued.hash,
        created_at: now(),
        expires_at: None,
        revoked_at: None,
    }
}

async fn verify(store: &dyn Store) -> VerifyReport {
    let mut report = VerifyReport::genesis();
    loop {
        let page = store.audit_chain(report.head_seq, 500).await.unwrap();
        if page.is_empty() {
            break;
        }
        verify_records(&mut report, &page);
    }
    report
}

/// `walk_chain` reads pages ahead of the one it checks: any page size gives the walk one page
/// after the other gives, from the start or from a head kept earlier.
async fn the_walk_reads_pages_ahead_and_checks_every_record_once(store: Arc<dyn Store>) {
    let events: Vec<_> = (0..23).map(|i| ev(&format!("step.{i}"))).collect();
    store.append_audit(&events).await.unwrap();
    let serial = verify(&*store).await;
    assert!(serial.ok && serial.records == 23, "{serial:?}");
    for page in [1, 2, 5, 22, 23, 500] {
        let mut report = VerifyReport::genesis();
        credgate::store::walk_chain(&store, &mut report, page).await.unwrap();
        assert_eq!(report, serial, "pages of {page}");
        let kept = store.audit_chain(9, 1).await.unwrap().remove(0);
        let mut report = VerifyReport::from_checkpoint(kept.seq, &kept.hash);
        credgate::store::walk_chain(&store, &mut report, page).await.unwrap();
        assert_eq!(
            (report.records, report.head_seq, report.ok),
            (13, 23, true),
            "pages of {page}"
        );
        assert_eq!(report.head_hash, serial.head_hash);
    }
}

/// The indexer chains a batch in statements of a power of two rows each (kept prepared): a
/// batch of any size, one after another, makes one chain in order, every body as it was given,
/// every record found by its columns.
async fn batches_of_any_size_chain_in_order_with_their_exact_bodies(store: Arc<dyn Store>) {
    let grant = Uuid::new_v4();
    let mut given = Vec::new();
    // 1,000 is 256 three times, 128, 64, 32 and 8; then a batch of one, and one of 257.
    for size in [1000, 1, 257] {
        let events: Vec<JournaledEvent> = (0..size)
            .map(|i| {
                let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", "ok");
                e.request_id = Some(format!("req-{}", given.len()));
                if i % 7 == 0 {
                    e.grant_id = Some(grant);
                }
                let e = JournaledEvent::new(e);
                given.push(e.body.clone());
                e
            })
            .collect();
        let batch = JournalBatch {
            journal: "sizes".into(),
            events,
            ..Default::default()
        };
        store.index_journal(&batch, None).await.unwrap();
    }
    let report = verify(&*store).await;
    assert!(report.ok && report.records == 1258, "{report:?}");
    let chained: Vec<StoredAudit> = store.audit_chain(0, 2000).await.unwrap();
    assert_eq!(
        chained.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=1258).collect::<Vec<i64>>()
    );
    assert!(
        chained.iter().map(|r| &r.body).eq(given.iter()),
        "bodies in the order given"
    );
    // The columns were bound to their own records: each request id finds its one record.
    for n in [0, 255, 256, 999, 1000, 1001, 1257] {
        let found = store
            .audit_events(&AuditQuery {
                request_id: Some(format!("req-{n}")),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "request {n}");
        assert_eq!(found[0].seq, n as i64 + 1, "request {n}");
    }
    let by_grant = store
        .audit_events(&AuditQuery {
            grant_id: Some(grant),
            limit: 2000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_grant.len(), 143 + 1 + 37, "every seventh record of each batch");
}

/// The walk reads its pages past the driver's rows (SQLite's file through the engine's C API,
/// PostgreSQL's binary `COPY`); the listing reads a row at a time. Each record reads the same
/// both ways, every optional column filled and empty, text of every kind in the body.
async fn a_page_of_the_chain_reads_as_the_listing_reads_it(store: Arc<dyn Store>) {
    let events: Vec<_> = (0..12)
        .map(|i| {
            let mut e = AuditEvent::new(
                AuditKind::Proxy,
                "proxy.response",
                if i % 3 == 0 { "denied" } else { "ok" },
            );
            e.principal_id = (i % 2 == 0).then(Uuid::new_v4);
            e.grant_id = (i % 3 != 1).then(Uuid::new_v4);
            e.secret_id = (i % 4 != 2).then(Uuid::new_v4);
            e.user_principal_id = (i % 5 == 0).then(Uuid::new_v4);
            e.request_id = (i != 7).then(|| format!("req-{i}-\u{e9}"));
            e.reason = Some(format!(
                "ticket {i}: \u{fc}n\u{ef}c\u{f6}d\u{e9} \" \\ \u{1f} \u{1f600}"
            ));
            e
        })
        .collect();
    store.append_audit(&events).await.unwrap();
    let mut listed = store
        .audit_events(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    listed.sort_by_key(|r| r.seq);
    let unlinked = |r: &StoredAudit| StoredAudit {
        prev_hash: String::new(),
        ..r.clone()
    };
    let chain = store.audit_chain(0, 100).await.unwrap();
    assert_eq!(chain.len(), 12);
    assert_eq!(
        chain.iter().map(unlinked).collect::<Vec<_>>(),
        listed.iter().map(unlinked).collect::<Vec<_>>()
    );
    assert!(
        chain
            .iter()
            .any(|r| r.user_principal_id.is_some() && r.request_id.is_some())
    );
    assert!(chain.iter().any(|r| r.grant_id.is_none() && r.request_id.is_none()));
    // A page from the middle links its first record to the one before it.
    let middle = store.audit_chain(4, 3).await.unwrap();
    assert_eq!(middle.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(middle[0].prev_hash, chain[3].hash);
    assert_eq!(middle, chain[4..7]);
}

/// Binary `COPY` sends a field's bytes without its type. A principal column changed by hand to
/// `bytea` with the same 16 bytes would read as it did, yet no filter on the principal would
/// find the record: the walk reads such a table row by row, and names the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_column_retyped_with_its_bytes_kept_does_not_pass_the_walk() {
    if support::postgres_skipped() {
        return;
    }
    let url = support::fresh_postgres_url().await;
    let store = credgate::store::connect(&DatabaseUrl::new(url.clone())).await.unwrap();
    let mut called = ev("proxy.response");
    called.principal_id = Some(Uuid::new_v4());
    store.append_audit(&[ev("a"), called, ev("c")]).await.unwrap();
    let mut report = VerifyReport::genesis();
    credgate::store::walk_chain(&store, &mut report, 100).await.unwrap();
    assert!(report.ok && report.records == 3, "{report:?}");
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE audit_events ALTER COLUMN principal_id TYPE bytea USING uuid_send(principal_id)")
        .execute(&db)
        .await
        .unwrap();
    let mut report = VerifyReport::genesis();
    credgate::store::walk_chain(&store, &mut report, 100).await.unwrap();
    assert!(!report.ok, "{report:?}");
    assert!(
        report.error.as_deref().unwrap_or_default().starts_with("record 2:"),
        "{report:?}"
    );
}

/// A record deleted from the middle of the trail: the pages read ahead were guessed from
/// sequence numbers without gaps, and the walk still stops at the missing record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walk_reading_ahead_names_a_record_deleted_from_the_middle() {
    let (store, dir) = sqlite().await;
    let events: Vec<_> = (0..30).map(|i| ev(&format!("step.{i}"))).collect();
    store.append_audit(&events).await.unwrap();
    let db = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite:{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq BETWEEN 12 AND 14")
        .execute(&db)
        .await
        .unwrap();
    for page in [1, 4, 11, 500] {
        let mut report = VerifyReport::genesis();
        credgate::store::walk_chain(&store, &mut report, page).await.unwrap();
        assert!(!report.ok, "pages of {page}");
        assert_eq!(report.records, 11, "pages of {page}");
        assert_eq!(
            report.error.as_deref(),
            Some("record 15: expected sequence number 12, a record is missing"),
            "pages of {page}"
        );
    }
}

async fn principals_and_membership(store: Arc<dyn Store>) {
    let alice = principal(PrincipalKind::User, "alice");
    let team = principal(PrincipalKind::Group, "team");
    store.insert_principal(&alice, &ev("principal.create")).await.unwrap();
    store.insert_principal(&team, &ev("principal.create")).await.unwrap();
    assert_eq!(store.principal(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(store.principals().await.unwrap(), vec![alice.clone(), team.clone()]);

    let dup = principal(PrincipalKind::Agent, "alice");
    assert!(matches!(
        store.insert_principal(&dup, &ev("principal.create")).await,
        Err(StoreError::Conflict(_))
    ));

    assert!(store.add_member(team.id, alice.id, now(), &ev("m.add")).await.unwrap());
    assert!(
        !store.add_member(team.id, alice.id, now(), &ev("m.add")).await.unwrap(),
        "second add changes nothing"
    );
    assert_eq!(store.members(team.id).await.unwrap(), vec![alice.id]);
    assert_eq!(store.groups_of(alice.id).await.unwrap(), vec![team.id]);
    let ghost = Uuid::new_v4();
    assert!(matches!(
        store.add_member(team.id, ghost, now(), &ev("m.add")).await,
        Err(StoreError::Missing(_))
    ));
    assert!(store.remove_member(team.id, alice.id, &ev("m.remove")).await.unwrap());
    assert!(!store.remove_member(team.id, alice.id, &ev("m.remove")).await.unwrap());
    assert!(store.members(team.id).await.unwrap().is_empty());
    assert_eq!(store.principal(Uuid::new_v4()).await.unwrap(), None);
}

async fn deleting_a_principal_revokes_its_keys_and_grants(store: Arc<dyn Store>) {
    let ring = ring();
    let bot = principal(PrincipalKind::Agent, "bot");
    let team = principal(PrincipalKind::Group, "team");
    store.insert_principal(&bot, &ev("principal.create")).await.unwrap();
    store.insert_principal(&team, &ev("principal.create")).await.unwrap();
    store.add_member(team.id, bot.id, now(), &ev("m.add")).await.unwrap();
    let key = api_key(bot.id);
    store.insert_api_key(&key, &ev("key.issue")).await.unwrap();
    let secret = add_secret(store.as_ref(), &ring, "s", "v").await;
    let g = grant(secret.id, bot.id, 3600);
    store.insert_grant(&g, &ev("grant.issue")).await.unwrap();

    assert!(
        store
            .delete_principal(bot.id, now(), &ev("principal.delete"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_principal(bot.id, now(), &ev("principal.delete"))
            .await
            .unwrap()
    );
    assert_eq!(store.principal(bot.id).await.unwrap(), None);
    assert!(store.api_key(key.id).await.unwrap().unwrap().revoked_at.is_some());
    let g = store.grant(g.grant_id).await.unwrap().unwrap();
    assert_eq!(g.status(now()), GrantStatus::Revoked);
    assert_eq!(g.revoked_reason.as_deref(), Some("principal_deleted"));
    assert!(store.members(team.id).await.unwrap().is_empty());
    // No new keys or grants for a principal that is gone.
    assert!(matches!(
        store.insert_api_key(&api_key(bot.id), &ev("key.issue")).await,
        Err(StoreError::Missing(_))
    ));
    assert!(matches!(
        store
            .insert_grant(&grant(secret.id, bot.id, 60), &ev("grant.issue"))
            .await,
        Err(StoreError::Missing(_))
    ));
}

async fn api_keys(store: Arc<dyn Store>) {
    let bot = principal(PrincipalKind::System, "svc");
    store.insert_principal(&bot, &ev("principal.create")).await.unwrap();
    let key = api_key(bot.id);
    store.insert_api_key(&key, &ev("key.issue")).await.unwrap();
    assert_eq!(store.api_key_by_prefix(&key.prefix).await.unwrap(), Some(key.clone()));
    assert_eq!(store.api_key_by_prefix("nosuchprefix").await.unwrap(), None);
    assert_eq!(store.api_keys(Some(bot.id)).await.unwrap(), vec![key.clone()]);
    assert_eq!(store.api_keys(Some(Uuid::new_v4())).await.unwrap(), vec![]);
    assert_eq!(store.api_keys(None).await.unwrap().len(), 1);
    assert!(store.revoke_api_key(key.id, now(), &ev("key.revoke")).await.unwrap());
    assert!(!store.revoke_api_key(key.id, now(), &ev("key.revoke")).await.unwrap());
    assert!(!store.api_key(key.id).await.unwrap().unwrap().is_usable(now()));
}

async fn secrets_rotate_and_delete(store: Arc<dyn Store>) {
    let ring = ring();
    let meta = add_secret(store.as_ref(), &ring, "OpenAI prod", "value-1").await;
    assert_eq!(store.secret(meta.id).await.unwrap(), Some(meta.clone()));
    let sealed1 = store.sealed_value(meta.id, 1).await.unwrap().unwrap();
    assert_eq!(
        open_value(&ring, &meta.id.to_string(), 1, &sealed1).unwrap().expose(),
        b"value-1"
    );

    // Same slug while the first is live: conflict.
    let same_slug = secret_meta("openai  PROD");
    let sealed = seal_value(&ring, &same_slug.id.to_string(), 1, &SecretBytes::new(b"x".to_vec())).unwrap();
    assert!(matches!(
        store.insert_secret(&same_slug, &sealed, &ev("secret.create")).await,
        Err(StoreError::Conflict(_))
    ));

    let sealed2 = seal_value(&ring, &meta.id.to_string(), 2, &SecretBytes::new(b"value-2".to_vec())).unwrap();
    assert!(
        store
            .rotate_secret(meta.id, 1, &sealed2, now(), &ev("secret.rotate"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_secret(meta.id, 1, &sealed2, now(), &ev("secret.rotate"))
            .await
            .unwrap(),
        "stale version"
    );
    let current = store.secret(meta.id).await.unwrap().unwrap();
    assert_eq!(current.version, 2);
    assert_eq!(
        store.sealed_value(meta.id, 1).await.unwrap(),
        None,
        "the old value is destroyed"
    );
    let sealed = store.sealed_value(meta.id, 2).await.unwrap().unwrap();
    assert_eq!(
        open_value(&ring, &meta.id.to_string(), 2, &sealed).unwrap().expose(),
        b"value-2"
    );

    let bot = principal(PrincipalKind::Agent, "bot");
    store.insert_principal(&bot, &ev("principal.create")).await.unwrap();
    let g = grant(meta.id, bot.id, 3600);
    store.insert_grant(&g, &ev("grant.issue")).await.unwrap();
    assert_eq!(store.active_grant_counts(now()).await.unwrap(), vec![(meta.id, 1)]);

    assert!(store.delete_secret(meta.id, now(), &ev("secret.delete")).await.unwrap());
    assert!(!store.delete_secret(meta.id, now(), &ev("secret.delete")).await.unwrap());
    assert_eq!(store.secret(meta.id).await.unwrap(), None);
    assert_eq!(store.sealed_value(meta.id, 2).await.unwrap(), None);
    assert!(store.kek_usage().await.unwrap().is_empty(), "no sealed value remains");
    let g = store.grant(g.grant_id).await.unwrap().unwrap();
    assert_eq!(g.revoked_reason.as_deref(), Some("secret_deleted"));
    // The name is free again once the secret is deleted.
    store
        .insert_secret(&same_slug, &sealed_for(&ring, &same_slug), &ev("secret.create"))
        .await
        .unwrap();
    assert!(
        store
            .insert_grant(&grant(meta.id, bot.id, 60), &ev("grant.issue"))
            .await
            .is_err(),
        "no grants of a deleted secret"
    );
}

fn sealed_for(ring: &KeyRing, meta: &SecretMeta) -> credgate::crypto::SealedValue {
    seal_value(
        ring,
        &meta.id.to_string(),
        meta.version,
        &SecretBytes::new(b"x".to_vec()),
    )
    .unwrap()
}

async fn grants_by_status(store: Arc<dyn Store>) {
    let ring = ring();
    let secret = add_secret(store.as_ref(), &ring, "s", "v").await;
    let other = add_secret(store.as_ref(), &ring, "t", "v").await;
    let bot = principal(PrincipalKind::Agent, "bot");
    store.insert_principal(&bot, &ev("principal.create")).await.unwrap();
    let active = grant(secret.id, bot.id, 3600);
    let short = grant(secret.id, bot.id, 1);
    let revoked = grant(other.id, bot.id, 3600);
    for g in [&active, &short, &revoked] {
        store.insert_grant(g, &ev("grant.issue")).await.unwrap();
    }
    assert!(
        store
            .revoke_grant(revoked.grant_id, now(), "revoked", &ev("grant.revoke"))
            .await
            .unwrap()
    );
    let later = now() + Duration::seconds(2);
    let ids = |gs: Vec<Grant>| gs.into_iter().map(|g| g.grant_id).collect::<Vec<_>>();
    let by = |status| GrantFilter {
        status: Some(status),
        ..Default::default()
    };
    assert_eq!(
        ids(store.grants(&by(GrantStatus::Active), later).await.unwrap()),
        vec![active.grant_id]
    );
    assert_eq!(
        ids(store.grants(&by(GrantStatus::Expired), later).await.unwrap()),
        vec![short.grant_id]
    );
    assert_eq!(
        ids(store.grants(&by(GrantStatus::Revoked), later).await.unwrap()),
        vec![revoked.grant_id]
    );
    let of_secret = GrantFilter {
        secret_id: Some(secret.id),
        ..Default::default()
    };
    assert_eq!(store.grants(&of_secret, later).await.unwrap().len(), 2);
    let of_nobody = GrantFilter {
        principal_id: Some(Uuid::new_v4()),
        ..Default::default()
    };
    assert!(store.grants(&of_nobody, later).await.unwrap().is_empty());
    assert_eq!(store.grant(active.grant_id).await.unwrap(), Some(active));
}

/// Reason (contains, any ASCII case, `%` and `_` literal) and context (key = value as text)
/// are read from the hashed body, the same on both engines.
async fn reason_and_context_filters(store: Arc<dyn Store>) {
    let mut refund = ev("ctx.refund");
    refund.reason = Some("Refund 100% of order_7 for ticket T-9".into());
    refund.context = Some(serde_json::from_str(r#"{"ticket": "T-9", "attempt": 2, "tags": ["x"]}"#).unwrap());
    let mut other = ev("ctx.other");
    other.reason = Some("Read the order list".into());
    other.context = Some(serde_json::from_str(r#"{"ticket": "T-10", "attempt": 1}"#).unwrap());
    store.append_audit(&[refund, other]).await.unwrap();
    let actions = |rows: Vec<StoredAudit>| rows.iter().map(|r| r.action.clone()).collect::<Vec<_>>();
    let find = |reason: Option<&str>, context: &[(&str, &str)]| AuditQuery {
        reason: reason.map(str::to_owned),
        context: context
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        limit: 10,
        ..Default::default()
    };
    for (query, expected) in [
        (find(Some("ORDER"), &[]), vec!["ctx.other", "ctx.refund"]),
        (find(Some("100%"), &[]), vec!["ctx.refund"]),
        (find(Some("order_7"), &[]), vec!["ctx.refund"]),
        // `_` and `%` are literal: neither matches any character.
        (find(Some("order_1"), &[]), vec![]),
        (find(Some("1%0"), &[]), vec![]),
        (find(None, &[("ticket", "T-9")]), vec!["ctx.refund"]),
        (find(None, &[("attempt", "1")]), vec!["ctx.other"]),
        (
            find(Some("order"), &[("ticket", "T-10"), ("attempt", "1")]),
            vec!["ctx.other"],
        ),
        (find(None, &[("ticket", "T-1")]), vec![]),
        (find(None, &[("missing", "T-9")]), vec![]),
    ] {
        let what = format!("{:?} {:?}", query.reason, query.context);
        assert_eq!(actions(store.audit_events(&query).await.unwrap()), expected, "{what}");
    }
}

/// The database keeps bodies without the values their columns hold; every read (a page, a
/// filter, the chain walk) gives back the body byte for byte as it was hashed, whatever the
/// event holds: every column set, context keys named like columns, values that look like
/// fields, a request id JSON escapes, an admin change with few fields.
async fn records_read_back_as_the_exact_bodies_they_were_chained_with(store: Arc<dyn Store>) {
    let mut call = AuditEvent::new(AuditKind::Proxy, "proxy.response", "upstream_error");
    call.request_id = Some(Uuid::now_v7().simple().to_string());
    call.principal_id = Some(Uuid::new_v4());
    call.user_principal_id = Some(Uuid::new_v4());
    call.via_group_id = Some(Uuid::new_v4());
    call.grant_id = Some(Uuid::new_v4());
    call.secret_id = Some(Uuid::new_v4());
    call.host = Some("api.openai.com".into());
    call.status = Some(502);
    call.latency_ms = Some(3.5);
    call.reason = Some("\"grant_id\":\"\" then \\ \"outcome\":\"ok\"".into());
    call.context = Some(
        serde_json::json!({"grant_id": "", "principal_id": call.principal_id, "outcome": "ok"})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let mut odd = call.clone();
    odd.id = Uuid::now_v7();
    odd.request_id = Some("req \"7\" \\ é".into());
    odd.context = None;
    let mut admin = ev("principal.create");
    admin.actor = Some("admin:bootstrap".into());
    let events = [call.clone(), odd.clone(), admin.clone()];
    store.append_audit(&events).await.unwrap();

    let page = store
        .audit_events(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let chain = store.audit_chain(0, 10).await.unwrap();
    let by_grant = store
        .audit_events(&AuditQuery {
            grant_id: call.grant_id,
            context: vec![("outcome".into(), "ok".into())],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let by_request = store
        .audit_events(&AuditQuery {
            request_id: odd.request_id.clone(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    for (read, e) in [
        (&page[2], &call),
        (&page[1], &odd),
        (&page[0], &admin),
        (&chain[0], &call),
        (&chain[1], &odd),
        (&chain[2], &admin),
        (&by_request[0], &odd),
        (&by_grant[0], &call),
    ] {
        assert_eq!(read.body, e.body(), "{}", e.action);
        assert_eq!(&read.to_record().unwrap().event, e);
    }
    assert_eq!(by_grant.len(), 1, "only the first call says outcome=ok in its context");
    assert_eq!(by_request.len(), 1);
    let report = verify(&*store).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 3);
}

async fn every_change_is_audited_in_one_chain(store: Arc<dyn Store>) {
    let p = principal(PrincipalKind::User, "u");
    let mut e = ev("principal.create");
    e.principal_id = Some(p.id);
    e.request_id = Some("req-1".into());
    store.insert_principal(&p, &e).await.unwrap();
    store.append_audit(&[ev("a.one"), ev("a.two")]).await.unwrap();
    let newest = store
        .audit_events(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["a.two", "a.one", "principal.create"]
    );
    let by_principal = store
        .audit_events(&AuditQuery {
            principal_id: Some(p.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_principal.len(), 1);
    assert_eq!(by_principal[0].to_record().unwrap().event, e);
    let by_request = store
        .audit_events(&AuditQuery {
            request_id: Some("req-1".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_request.len(), 1);
    let paged = store
        .audit_events(&AuditQuery {
            before_seq: Some(3),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(paged[0].seq, 2);
    let report = verify(store.as_ref()).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 3);
}

async fn concurrent_appends_keep_one_chain(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                store
                    .append_audit(&[ev(&format!("t{t}.{i}")), ev(&format!("t{t}.{i}b"))])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = verify(store.as_ref()).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 160);
}

async fn journal_progress_commits_with_the_events(store: Arc<dyn Store>) {
    let journal = Uuid::new_v4().to_string();
    let batch = |actions: &[&str]| JournalBatch {
        journal: journal.clone(),
        events: actions.iter().map(|a| JournaledEvent::new(ev(a))).collect(),
        ..Default::default()
    };
    let segment = Uuid::now_v7().to_string();
    assert_eq!(store.journal_indexed(&segment).await.unwrap(), None);
    store
        .index_journal(&batch(&["j.one"]), Some((&segment, 120)))
        .await
        .unwrap();
    // A call in flight is kept with the batch that passed its opening line.
    let call = ev("proxy.response");
    let mut two = batch(&["j.two", "j.three"]);
    two.opened.push((call.id, call.body()));
    store.index_journal(&two, Some((&segment, 360))).await.unwrap();
    assert_eq!(store.journal_indexed(&segment).await.unwrap(), Some(360));
    assert_eq!(store.open_calls(&journal).await.unwrap(), [(call.id, call.body())]);
    assert!(
        store.open_calls(&Uuid::new_v4().to_string()).await.unwrap().is_empty(),
        "kept per journal"
    );
    // The same batch again (a retry after a commit whose answer was lost) adds nothing.
    store.index_journal(&two, Some((&segment, 360))).await.unwrap();
    let other = Uuid::now_v7().to_string();
    assert_eq!(
        store.journal_indexed(&other).await.unwrap(),
        None,
        "progress is per segment"
    );
    // Its outcome, in a later batch, is chained and forgets the kept opening.
    let mut outcome = call.clone();
    outcome.outcome = "ok".into();
    let three = JournalBatch {
        journal: journal.clone(),
        events: vec![JournaledEvent::new(outcome)],
        opened: vec![],
        closed: vec![call.id],
    };
    store.index_journal(&three, Some((&segment, 480))).await.unwrap();
    assert!(store.open_calls(&journal).await.unwrap().is_empty());
    let report = verify(store.as_ref()).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 4);
    store.forget_journal_segment(&segment).await.unwrap();
    assert_eq!(store.journal_indexed(&segment).await.unwrap(), None);
}

async fn failed_changes_leave_no_record(store: Arc<dyn Store>) {
    let p = principal(PrincipalKind::User, "dup");
    store.insert_principal(&p, &ev("principal.create")).await.unwrap();
    let again = principal(PrincipalKind::User, "dup");
    assert!(store.insert_principal(&again, &ev("principal.create")).await.is_err());
    assert!(
        !store
            .revoke_grant(Uuid::new_v4(), now(), "revoked", &ev("grant.revoke"))
            .await
            .unwrap()
    );
    let all = store
        .audit_events(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "only the change that happened is recorded");
}

async fn rewrap_is_resumable(store: Arc<dyn Store>) {
    let old = ring();
    check_at_start(store.as_ref(), &old).await.unwrap();
    let mut secrets = Vec::new();
    for i in 0..10 {
        secrets.push(add_secret(store.as_ref(), &old, &format!("s{i}"), &format!("value-{i}")).await);
    }
    let rotated = old.with_new_active(MasterKey::generate().unwrap()).unwrap();
    check_at_start(store.as_ref(), &rotated).await.unwrap();
    let handle = KeyRingHandle::new(rotated.clone());

    // Interrupted after 4: every value still opens, under whichever key wraps it.
    let first = rewrap(store.as_ref(), &handle, Some(4)).await.unwrap();
    assert_eq!((first.rewrapped, first.remaining), (4, 6));
    for (i, s) in secrets.iter().enumerate() {
        let sealed = store.sealed_value(s.id, 1).await.unwrap().unwrap();
        assert_eq!(
            open_value(&rotated, &s.id.to_string(), 1, &sealed).unwrap().expose(),
            format!("value-{i}").as_bytes()
        );
    }
    let usage = store.kek_usage().await.unwrap();
    assert_eq!(usage.iter().map(|(_, n)| n).sum::<i64>(), 10);

    // Resumed: finishes the rest and nothing more.
    let second = rewrap(store.as_ref(), &handle, None).await.unwrap();
    assert_eq!((second.rewrapped, second.remaining), (6, 0));
    assert_eq!(
        store.kek_usage().await.unwrap(),
        vec![(rotated.active().id().to_owned(), 10)]
    );

    // The old key can now leave the ring; a ring without the new key is refused.
    let only_new = KeyRing::new(
        vec![MasterKey::from_base64(&rotated_key_b64(&rotated)).unwrap()],
        KeyRingSource::Memory,
    )
    .unwrap();
    check_at_start(store.as_ref(), &only_new).await.unwrap();
    assert!(
        check_at_start(store.as_ref(), &old).await.is_err(),
        "data is sealed under a key the old ring lacks"
    );
    for (i, s) in secrets.iter().enumerate() {
        let sealed = store.sealed_value(s.id, 1).await.unwrap().unwrap();
        assert_eq!(
            open_value(&only_new, &s.id.to_string(), 1, &sealed).unwrap().expose(),
            format!("value-{i}").as_bytes()
        );
    }
}

/// An approval's row only moves forward, one writer per step, and its sealed parts follow the
/// master key like a credential's.
async fn held_calls_move_forward_once_and_are_rewrapped(store: Arc<dyn Store>) {
    let old = ring();
    check_at_start(store.as_ref(), &old).await.unwrap();
    let at = now();
    let held = |ttl: i64| {
        let id = Uuid::now_v7();
        let request = HeldRequest {
            method: "POST".into(),
            url: "https://api.example.com/v1/refunds".into(),
            headers: http::HeaderMap::new(),
            body: b"{\"amount\": 1}".to_vec(),
        };
        Approval {
            id,
            status: ApprovalStatus::Pending,
            grant_id: Uuid::new_v4(),
            secret_id: Uuid::new_v4(),
            principal_id: Uuid::new_v4(),
            user_principal_id: None,
            key_id: Uuid::new_v4(),
            request_id: "req".into(),
            method: "POST".into(),
            host: "api.example.com".into(),
            path: "/v1/refunds".into(),
            reason: Some("why".into()),
            context: Some(serde_json::from_str(r#"{"ticket": "T-1"}"#).unwrap()),
            body_bytes: 13,
            created_at: at,
            expires_at: at + Duration::seconds(ttl),
            ttl_seconds: ttl,
            decided_at: None,
            decided_by: None,
            note: None,
            finished_at: None,
            failure: None,
            response_status: None,
            request: Some(request.seal(&old, id).unwrap()),
            response: None,
        }
    };
    let made = held(300);
    let late = held(1);
    store.insert_approval(&made).await.unwrap();
    store.insert_approval(&late).await.unwrap();
    assert_eq!(store.approval(made.id).await.unwrap().unwrap(), made);
    assert_eq!(store.pending_approvals(at).await.unwrap(), 2);

    // Approved twice at once: one wins, and its decision is audited.
    let decide = |by: &'static str| {
        let store = store.clone();
        async move {
            store
                .decide_approval(
                    made.id,
                    ApprovalStatus::Executing,
                    by,
                    None,
                    at,
                    &ev("approval.approve"),
                )
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(decide("admin:a"), decide("admin:b"));
    assert!(a ^ b, "exactly one decision wins");
    assert!(
        !store
            .decide_approval(
                made.id,
                ApprovalStatus::Denied,
                "admin:c",
                None,
                at,
                &ev("approval.deny")
            )
            .await
            .unwrap()
    );
    let response = HeldResponse {
        status: 201,
        headers: http::HeaderMap::new(),
        body: b"made".to_vec(),
        truncated: false,
    };
    let finished = Finished {
        status: ApprovalStatus::Executed,
        at,
        keep_until: at + Duration::seconds(300),
        response_status: Some(201),
        response: Some(response.seal(&old, made.id).unwrap()),
        failure: None,
    };
    assert!(store.finish_approval(made.id, &finished).await.unwrap());
    assert!(
        !store.finish_approval(made.id, &finished).await.unwrap(),
        "finished once"
    );
    let row = store.approval(made.id).await.unwrap().unwrap();
    assert_eq!(row.status, ApprovalStatus::Executed);
    assert!(row.request.is_none(), "the held request is dropped once made");

    // Too late: expired by the sweep, never decidable.
    let later = at + Duration::seconds(2);
    assert!(
        !store
            .decide_approval(
                late.id,
                ApprovalStatus::Executing,
                "admin:a",
                None,
                later,
                &ev("approval.approve")
            )
            .await
            .unwrap()
    );
    let ended = store
        .sweep_approvals(later, later - Duration::minutes(15))
        .await
        .unwrap();
    assert_eq!(ended.iter().map(|a| a.id).collect::<Vec<_>>(), vec![late.id]);
    let swept = store.approval(late.id).await.unwrap().unwrap();
    assert_eq!((swept.status, swept.request.is_none()), (ApprovalStatus::Expired, true));

    // A new master key: the kept response is re-wrapped with the rest.
    let rotated = old.with_new_active(MasterKey::generate().unwrap()).unwrap();
    check_at_start(store.as_ref(), &rotated).await.unwrap();
    let done = rewrap(store.as_ref(), &KeyRingHandle::new(rotated.clone()), None)
        .await
        .unwrap();
    assert_eq!((done.rewrapped, done.remaining), (1, 0));
    assert_eq!(
        store.kek_usage().await.unwrap(),
        vec![(rotated.active().id().to_owned(), 1)]
    );
    let kept = store.approval(made.id).await.unwrap().unwrap().response.unwrap();
    assert_eq!(HeldResponse::open(&rotated, made.id, &kept).unwrap(), response);
    // Past its keeping time the response goes too.
    store.sweep_approvals(at + Duration::seconds(301), at).await.unwrap();
    assert!(store.approval(made.id).await.unwrap().unwrap().response.is_none());
}

/// Replicas leasing from one limit row at once: each change sees the one before it, whether
/// the row exists yet or not (two first writers race to create it).
async fn limit_rows_take_one_writer_at_a_time(store: Arc<dyn Store>) {
    let grant = Uuid::new_v4();
    let writers = (0..8).map(|i| {
        let store = store.clone();
        async move {
            store
                .update_limit(grant, LimitKind::Quota, &mut |row| LimitRow {
                    value: row.map_or(0, |r| r.value) + 1,
                    at: i,
                })
                .await
                .unwrap()
        }
    });
    let mut seen: Vec<i64> = futures_util::future::join_all(writers)
        .await
        .into_iter()
        .map(|row| row.value)
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=8).collect::<Vec<_>>(), "every increment saw the one before");
    let row = store.limit_row(grant, LimitKind::Quota).await.unwrap().unwrap();
    assert_eq!(row.value, 8);
    assert!(
        store.limit_row(grant, LimitKind::Rate).await.unwrap().is_none(),
        "kinds are apart"
    );
}

/// A minted token is kept sealed per secret version (a newer one drops the older), and the
/// minting lease has one holder at a time until it expires or is given back.
async fn minted_tokens_are_kept_per_version_and_minted_under_one_lease(store: Arc<dyn Store>) {
    let secret = Uuid::new_v4();
    let ring = ring();
    let location = format!("minted/{secret}");
    let seal = |version: i64, value: &str| {
        seal_value(&ring, &location, version, &SecretBytes::new(value.as_bytes().to_vec())).unwrap()
    };
    assert!(store.minted_token(secret, 1).await.unwrap().is_none());
    store
        .put_minted_token(secret, 1, &seal(1, "token-one"), 1_000)
        .await
        .unwrap();
    let (sealed, expires_at) = store.minted_token(secret, 1).await.unwrap().unwrap();
    assert_eq!(expires_at, 1_000);
    let opened = open_value(&ring, &location, 1, &sealed).unwrap();
    assert_eq!(opened.expose(), b"token-one");
    store
        .put_minted_token(secret, 2, &seal(2, "token-two"), 2_000)
        .await
        .unwrap();
    assert!(
        store.minted_token(secret, 1).await.unwrap().is_none(),
        "the older version's is gone"
    );
    assert_eq!(store.minted_token(secret, 2).await.unwrap().unwrap().1, 2_000);

    // One holder at a time; its own lease it may extend; an expired one anyone may take.
    assert!(store.lease_minting(secret, "a", 100, 10).await.unwrap());
    assert!(!store.lease_minting(secret, "b", 150, 50).await.unwrap());
    assert!(store.lease_minting(secret, "a", 200, 60).await.unwrap());
    assert!(store.lease_minting(secret, "b", 400, 250).await.unwrap(), "a's expired");
    store.release_minting(secret, "a").await.unwrap();
    assert!(
        !store.lease_minting(secret, "c", 500, 300).await.unwrap(),
        "a gives back only its own"
    );
    store.release_minting(secret, "b").await.unwrap();
    assert!(store.lease_minting(secret, "c", 500, 300).await.unwrap());

    // A token goes with the value it was minted from: rotating or deleting the secret drops it.
    let meta = add_secret(store.as_ref(), &ring, "minting", "client-secret").await;
    let minted = |version: i64| {
        seal_value(
            &ring,
            &format!("minted/{}", meta.id),
            version,
            &SecretBytes::new(b"t".to_vec()),
        )
        .unwrap()
    };
    store.put_minted_token(meta.id, 1, &minted(1), 9_000).await.unwrap();
    let next = seal_value(&ring, &meta.id.to_string(), 2, &SecretBytes::new(b"{}".to_vec())).unwrap();
    assert!(
        store
            .rotate_secret(meta.id, 1, &next, now(), &ev("secret.rotate"))
            .await
            .unwrap()
    );
    assert!(store.minted_token(meta.id, 1).await.unwrap().is_none(), "rotated away");
    store.put_minted_token(meta.id, 2, &minted(2), 9_000).await.unwrap();
    assert!(store.delete_secret(meta.id, now(), &ev("secret.delete")).await.unwrap());
    assert!(
        store.minted_token(meta.id, 2).await.unwrap().is_none(),
        "deleted with its secret"
    );
}

/// Every data-plane call the trail records is counted in its minute, hour and day, in the
/// transaction that chains it (a retried batch is not counted twice), and read back summed per
/// bucket.
async fn calls_are_counted_per_minute_hour_and_day_with_the_trail(store: Arc<dyn Store>) {
    let base: chrono::DateTime<chrono::Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
    let (grant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let call = |minute: i64, outcome: &str, provider: Option<&str>, grant: Option<Uuid>| {
        let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", outcome);
        e.at = base + Duration::minutes(minute) + Duration::seconds(7);
        e.provider = provider.map(str::to_owned);
        e.grant_id = grant;
        JournaledEvent::new(e)
    };
    let mut refused = AuditEvent::new(AuditKind::Proxy, "proxy.request", "unauthenticated");
    refused.at = base + Duration::seconds(1);
    let events = vec![
        call(0, "ok", Some("openai"), Some(grant)),
        call(0, "ok", Some("openai"), Some(grant)),
        call(1, "policy_violation", Some("openai"), Some(grant)),
        call(61, "ok", Some("bearer"), Some(other)),
        JournaledEvent::new(refused),
        // Not calls: an admin change, a refused tunnel.
        JournaledEvent::new(ev("grant.issue")),
        JournaledEvent::new(AuditEvent::new(AuditKind::Proxy, "proxy.connect", "forbidden")),
    ];
    let batch = JournalBatch {
        journal: Uuid::new_v4().to_string(),
        events,
        ..Default::default()
    };
    let segment = Uuid::now_v7().to_string();
    store.index_journal(&batch, Some((&segment, 100))).await.unwrap();
    store.index_journal(&batch, Some((&segment, 100))).await.unwrap();
    let read = |bucket_seconds: i64, by: CountBy, grant_id: Option<Uuid>| {
        let store = store.clone();
        async move {
            store
                .call_counts(&CountQuery {
                    from: base,
                    to: base + Duration::hours(3),
                    bucket_seconds,
                    by,
                    grant_id,
                    secret_id: None,
                    principal_id: None,
                })
                .await
                .unwrap()
                .into_iter()
                .map(|r| ((r.bucket - base).num_minutes(), r.key, r.calls))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(60, CountBy::Outcome, None).await,
        vec![
            (0, "ok".to_owned(), 2),
            (0, "unauthenticated".to_owned(), 1),
            (1, "policy_violation".to_owned(), 1),
            (61, "ok".to_owned(), 1),
        ]
    );
    assert_eq!(
        read(3600, CountBy::Provider, None).await,
        vec![
            (0, String::new(), 1),
            (0, "openai".to_owned(), 3),
            (60, "bearer".to_owned(), 1)
        ]
    );
    assert_eq!(
        read(3600, CountBy::Outcome, Some(grant)).await,
        vec![(0, "ok".to_owned(), 2), (0, "policy_violation".to_owned(), 1)]
    );
    // Buckets start at multiples of their size since the epoch: 3 h buckets at 09:00, 12:00.
    let by_grant = read(10_800, CountBy::Grant, None).await;
    assert!(by_grant.contains(&(-60, grant.to_string(), 3)), "{by_grant:?}");
    assert!(by_grant.contains(&(-60, other.to_string(), 1)), "{by_grant:?}");
    // The day's rows: every call of the batch once, in the day that began at midnight.
    let day = read(86_400, CountBy::Outcome, None).await;
    assert_eq!(
        day,
        vec![
            (-600, "ok".to_owned(), 3),
            (-600, "policy_violation".to_owned(), 1),
            (-600, "unauthenticated".to_owned(), 1),
        ]
    );
    let by_principal = read(86_400, CountBy::Principal, None).await;
    assert_eq!(by_principal.iter().map(|r| r.2).sum::<i64>(), 5, "{by_principal:?}");
    // Per grant there are no minute rows: asking for them is refused, not answered wrongly.
    let refused = store
        .call_counts(&CountQuery {
            from: base,
            to: base + Duration::hours(1),
            bucket_seconds: 60,
            by: CountBy::Grant,
            grant_id: None,
            secret_id: None,
            principal_id: None,
        })
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

fn rotated_key_b64(ring: &KeyRing) -> String {
    // Round-trip through a file, the way an operator would carry the key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    ring.save_file(&path).unwrap();
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_owned()
}

async fn admin_tokens(store: Arc<dyn Store>) {
    assert!(store.admin_tokens().await.unwrap().is_empty());
    let issued = credgate::vault::token::issue(credgate::vault::token::TokenKind::Admin).unwrap();
    let t = AdminToken {
        id: Uuid::new_v4(),
        name: "first".into(),
        scopes: vec![credgate::vault::scope::Scope::Admin],
        prefix: issued.prefix,
        hash: issued.hash,
        created_at: now(),
        revoked_at: None,
    };
    store.insert_admin_token(&t, &ev("admin_token.create")).await.unwrap();
    assert_eq!(store.admin_tokens().await.unwrap(), vec![t.clone()]);
    // Scopes come back as stored; revoking is once.
    let scoped = AdminToken {
        id: Uuid::new_v4(),
        name: "ci".into(),
        scopes: vec![
            credgate::vault::scope::Scope::SecretsRead,
            credgate::vault::scope::Scope::GrantsWrite,
        ],
        prefix: "cg_adm_scopedprefix".into(),
        hash: vec![1; 32],
        created_at: now(),
        revoked_at: None,
    };
    store
        .insert_admin_token(&scoped, &ev("admin_token.create"))
        .await
        .unwrap();
    let found = store.admin_tokens().await.unwrap();
    assert_eq!(found.iter().find(|x| x.id == scoped.id).unwrap().scopes, scoped.scopes);
    assert!(
        store
            .revoke_admin_token(scoped.id, now(), &ev("admin_token.revoke"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_admin_token(scoped.id, now(), &ev("admin_token.revoke"))
            .await
            .unwrap()
    );
    let found = store.admin_tokens().await.unwrap();
    assert!(found.iter().find(|x| x.id == scoped.id).unwrap().revoked_at.is_some());
}

/// Users and groups of an OpenID Provider: found by (issuer, kind, external id), one of each
/// kind per identity, the same name under another issuer or kind being another principal.
async fn external_identities(store: Arc<dyn Store>) {
    let issuer = "https://idp.example";
    let mut alice = principal(PrincipalKind::User, "alice@example.test");
    alice.issuer = Some(issuer.into());
    alice.external_id = Some("alice".into());
    store
        .insert_principal(&alice, &ev("principal.provision"))
        .await
        .unwrap();
    let found = store
        .principal_by_external(issuer, PrincipalKind::User, "alice")
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&alice));
    assert_eq!(store.principal(alice.id).await.unwrap().as_ref(), Some(&alice));
    // The same identity again (another replica provisioning at once): refused as a conflict.
    let mut twin = principal(PrincipalKind::User, "alice (2)");
    twin.issuer = alice.issuer.clone();
    twin.external_id = alice.external_id.clone();
    assert!(matches!(
        store.insert_principal(&twin, &ev("principal.provision")).await,
        Err(StoreError::Conflict(_))
    ));
    // A group named like her, and her namesake at another issuer, are others.
    let mut group = principal(PrincipalKind::Group, "alice's group");
    group.issuer = alice.issuer.clone();
    group.external_id = Some("alice".into());
    store.insert_principal(&group, &ev("principal.create")).await.unwrap();
    let mut elsewhere = principal(PrincipalKind::User, "alice elsewhere");
    elsewhere.issuer = Some("https://other.example".into());
    elsewhere.external_id = Some("alice".into());
    store
        .insert_principal(&elsewhere, &ev("principal.provision"))
        .await
        .unwrap();
    assert_eq!(
        store
            .principal_by_external(issuer, PrincipalKind::Group, "alice")
            .await
            .unwrap()
            .map(|p| p.id),
        Some(group.id)
    );
    assert!(
        store
            .principal_by_external(issuer, PrincipalKind::User, "bob")
            .await
            .unwrap()
            .is_none()
    );
    // Principals without an external id are as many as wanted.
    for name in ["bot-1", "bot-2"] {
        store
            .insert_principal(&principal(PrincipalKind::Agent, name), &ev("principal.create"))
            .await
            .unwrap();
    }
}

/// A sign-in in flight is finished once; a session is found until it expires or ends.
async fn portal_sign_ins_and_sessions(store: Arc<dyn Store>) {
    use credgate::vault::session::{PortalSession, SigninAttempt};
    let attempt = SigninAttempt {
        state_hash: "ab".repeat(32),
        verifier: "verifier".into(),
        nonce: "nonce".into(),
        expires_at: now() + chrono::Duration::minutes(10),
    };
    store.insert_signin(&attempt).await.unwrap();
    assert_eq!(
        store.take_signin(&attempt.state_hash, now()).await.unwrap(),
        Some(attempt.clone())
    );
    assert_eq!(
        store.take_signin(&attempt.state_hash, now()).await.unwrap(),
        None,
        "once"
    );
    let stale = SigninAttempt {
        state_hash: "cd".repeat(32),
        expires_at: now() - chrono::Duration::seconds(1),
        ..attempt.clone()
    };
    store.insert_signin(&stale).await.unwrap();
    assert_eq!(
        store.take_signin(&stale.state_hash, now()).await.unwrap(),
        None,
        "expired"
    );

    let session = PortalSession {
        id_hash: "ef".repeat(32),
        actor: "oidc:alice (alice@example.test)".into(),
        scopes: vec![
            credgate::vault::scope::Scope::AuditRead,
            credgate::vault::scope::Scope::SecretsRead,
        ],
        created_at: now(),
        expires_at: now() + chrono::Duration::hours(8),
    };
    store.insert_session(&session, &ev("portal.signin")).await.unwrap();
    let listed = store.portal_sessions(now()).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id_hash.as_str()).collect::<Vec<_>>(),
        [session.id_hash.as_str()]
    );
    assert!(
        store
            .portal_sessions(now() + chrono::Duration::hours(9))
            .await
            .unwrap()
            .is_empty()
    );
    let found = store.portal_session(&session.id_hash, now()).await.unwrap().unwrap();
    assert_eq!(
        (found.actor.as_str(), &found.scopes),
        (session.actor.as_str(), &session.scopes)
    );
    assert!(
        store
            .portal_session(&session.id_hash, now() + chrono::Duration::hours(9))
            .await
            .unwrap()
            .is_none(),
        "not past its expiry"
    );
    assert!(
        store
            .delete_session(&session.id_hash, &ev("portal.signout"))
            .await
            .unwrap()
    );
    assert!(store.portal_session(&session.id_hash, now()).await.unwrap().is_none());
    assert!(
        !store
            .delete_session(&session.id_hash, &ev("portal.signout"))
            .await
            .unwrap()
    );
    let report = verify(store.as_ref()).await;
    assert!(
        report.ok && report.records == 2,
        "sign-in and sign-out are in the chain: {report:?}"
    );
}

/// A time range reads the newest records whose `at` is in it, as a scan of the whole trail
/// would, also when records arrive out of time order (a long call's record is appended when
/// it ends, with the time it began), across batches, and combined with another filter.
async fn time_ranges_of_the_trail(store: Arc<dyn Store>) {
    let start = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let grant = Uuid::new_v4();
    // 600 records, one every 2 s over 20 minutes, in batches of 100; every 50th began 7
    // minutes before it was appended (a long call), and every 3rd is the grant's.
    let mut all: Vec<AuditEvent> = Vec::new();
    for chunk in 0..6 {
        let events: Vec<JournaledEvent> = (0..100)
            .map(|i| {
                let k = chunk * 100 + i;
                let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", "ok");
                e.at = start + Duration::seconds(2 * k);
                if k % 50 == 49 {
                    e.at -= Duration::minutes(7);
                }
                if k % 3 == 0 {
                    e.grant_id = Some(grant);
                }
                all.push(e.clone());
                JournaledEvent::new(e)
            })
            .collect();
        let batch = JournalBatch {
            journal: "ranges".into(),
            events,
            ..Default::default()
        };
        store.index_journal(&batch, None).await.unwrap();
    }
    // What a scan would answer: the newest (by position in the trail) in the range.
    let expected = |since: Option<chrono::DateTime<chrono::Utc>>,
                    until: Option<chrono::DateTime<chrono::Utc>>,
                    grant_only: bool,
                    limit: usize| {
        all.iter()
            .rev()
            .filter(|e| since.is_none_or(|s| e.at >= s) && until.is_none_or(|u| e.at < u))
            .filter(|e| !grant_only || e.grant_id == Some(grant))
            .take(limit)
            .map(|e| e.id.to_string())
            .collect::<Vec<_>>()
    };
    let minute = |m: i64| start + Duration::minutes(m);
    for (since, until, grant_only, limit) in [
        (Some(minute(3)), Some(minute(4)), false, 50),
        (Some(minute(3)), Some(minute(4)), true, 50),
        (Some(minute(0)), Some(minute(1) + Duration::seconds(1)), false, 50),
        (Some(minute(12)), None, false, 500),
        (None, Some(minute(5)), false, 500),
        (Some(minute(-10)), Some(minute(0)), false, 50),
        (Some(minute(30)), Some(minute(40)), false, 50),
        (
            Some(minute(2) + Duration::microseconds(1)),
            Some(minute(2) + Duration::seconds(3)),
            false,
            50,
        ),
    ] {
        let got: Vec<String> = store
            .audit_events(&AuditQuery {
                since,
                until,
                grant_id: grant_only.then_some(grant),
                limit: limit as i64,
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(
            got,
            expected(since, until, grant_only, limit),
            "{since:?}..{until:?} grant={grant_only}"
        );
    }
}

/// Appends `per_day` records a day for each of `days` (oldest first), spread over each day.
async fn fill_days(store: &dyn Store, days: &[chrono::DateTime<chrono::Utc>], per_day: i64) {
    for (d, day) in days.iter().enumerate() {
        let events: Vec<JournaledEvent> = (0..per_day)
            .map(|i| {
                let mut e = AuditEvent::new(AuditKind::Proxy, "proxy.response", "ok");
                e.at = *day + Duration::seconds(i * (86_000 / per_day));
                e.grant_id = Some(Uuid::new_v4());
                JournaledEvent::new(e)
            })
            .collect();
        let batch = JournalBatch {
            journal: format!("fill-{d}"),
            events,
            ..Default::default()
        };
        store.index_journal(&batch, None).await.unwrap();
    }
}

async fn archiving_moves_whole_days_out_and_keeps_the_chain(store: Arc<dyn Store>) {
    use credgate::audit::archive::{read_file, verify_archive};
    use credgate::audit_archiver::archive_before;
    let ring = ring();
    check_at_start(store.as_ref(), &ring).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let today = now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let days: Vec<_> = (1..=5).rev().map(|d| today - Duration::days(d)).collect();
    fill_days(store.as_ref(), &days, 100).await;
    // Today's records too, the newest among them.
    fill_days(store.as_ref(), &[today], 10).await;
    let me = Uuid::new_v4();

    // Another replica holds the lease: nothing happens here.
    let other = Uuid::new_v4();
    assert!(
        store
            .take_archive_lease(other, now(), now() + Duration::minutes(10))
            .await
            .unwrap()
    );
    let idle = archive_before(store.as_ref(), &ring, dir.path(), now() - Duration::days(3), me)
        .await
        .unwrap();
    assert!(idle.checkpoints.is_empty());
    store.release_archive_lease(other).await.unwrap();

    // Keep 3 days: the days that ended 3 days ago or earlier go (days -5, -4 and -3... of
    // which -3 ends at today - 2 days, after the cut-off: so -5 and -4 only).
    let cutoff = now() - Duration::days(3);
    let done = archive_before(store.as_ref(), &ring, dir.path(), cutoff, me)
        .await
        .unwrap();
    let periods: Vec<&str> = done.checkpoints.iter().map(|c| c.period.as_str()).collect();
    let expected: Vec<String> = days
        .iter()
        .filter(|d| **d + Duration::days(1) <= cutoff)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(periods, expected);
    assert_eq!(done.pruned, 100 * expected.len() as u64);
    let first = &done.checkpoints[0];
    assert_eq!((first.first_seq, first.last_seq, first.records), (1, 100, 100));
    assert_eq!(first.first_prev_hash, credgate::audit::GENESIS);

    // The files hold the records exactly as chained; the live trail starts after them.
    let archived = read_file(&dir.path().join(&first.file)).unwrap();
    assert_eq!(archived.len(), 100);
    assert_eq!(archived.last().unwrap().hash, first.head_hash);
    let live = store.audit_chain(0, 1).await.unwrap();
    let last = done.checkpoints.last().unwrap();
    assert_eq!(live[0].seq, last.last_seq + 1);
    assert_eq!(live[0].prev_hash, last.head_hash);
    let archived_until = days[expected.len() - 1] + Duration::days(1);
    let left = store
        .audit_events(&AuditQuery {
            until: Some(archived_until),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(left.is_empty(), "records of the archived days left: {left:?}");
    assert_eq!(
        store
            .audit_events(&AuditQuery {
                action: Some("audit.archive".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        expected.len(),
        "each file's checkpoint is on the record"
    );

    // The archive proves itself against the key; the live trail continues it.
    let key = store.audit_signing_key().await.unwrap().unwrap().public_key;
    let checkpoints = store.audit_checkpoints().await.unwrap();
    let proof = verify_archive(dir.path(), &key, &checkpoints);
    assert!(proof.ok, "{proof:?}");
    assert_eq!(
        (proof.files, proof.records),
        (expected.len() as u64, 100 * expected.len() as u64)
    );
    let mut report = VerifyReport::from_checkpoint(proof.head_seq, &proof.head_hash);
    loop {
        let page = store.audit_chain(report.head_seq, 500).await.unwrap();
        if page.is_empty() {
            break;
        }
        verify_records(&mut report, &page);
    }
    assert!(report.ok, "{report:?}");

    // Run again: nothing new to archive. A day later: the next day goes too.
    let again = archive_before(store.as_ref(), &ring, dir.path(), cutoff, me)
        .await
        .unwrap();
    assert!(again.checkpoints.is_empty() && again.pruned == 0);
    let later = archive_before(store.as_ref(), &ring, dir.path(), cutoff + Duration::days(1), me)
        .await
        .unwrap();
    assert_eq!(later.checkpoints.len(), 1);
    assert_eq!(later.checkpoints[0].first_seq, last.last_seq + 1);

    // The signing key is sealed like a credential: a rotation's re-wrap moves it too.
    assert!(
        store
            .kek_usage()
            .await
            .unwrap()
            .iter()
            .any(|(id, n)| id == ring.active().id() && *n == 1)
    );
    let rotated = ring.with_new_active(MasterKey::generate().unwrap()).unwrap();
    check_at_start(store.as_ref(), &rotated).await.unwrap();
    let moved = rewrap(store.as_ref(), &KeyRingHandle::new(rotated.clone()), None)
        .await
        .unwrap();
    assert_eq!(moved.rewrapped, 1);
    assert!(
        credgate::audit_archiver::load_signer(store.as_ref(), &rotated)
            .await
            .unwrap()
            .is_some_and(|s| s.info.public_key == key)
    );

    // Far ahead: everything goes but the newest record, and the chain goes on after it.
    let head = store.audit_head().await.unwrap().unwrap();
    let all = archive_before(store.as_ref(), &rotated, dir.path(), now() + Duration::days(30), me)
        .await
        .unwrap();
    let newest = all.checkpoints.last().unwrap();
    assert_eq!(newest.last_seq, head.0 - 1, "the newest record stays");
    let left = store.audit_chain(0, 100).await.unwrap();
    assert_eq!(left[0].seq, head.0);
    assert!(left.iter().skip(1).all(|r| r.action == "audit.archive"), "{left:?}");
    fill_days(store.as_ref(), &[today], 1).await;
    let proof = verify_archive(dir.path(), &key, &store.audit_checkpoints().await.unwrap());
    assert!(proof.ok, "{proof:?}");
    let mut report = VerifyReport::from_checkpoint(proof.head_seq, &proof.head_hash);
    verify_records(&mut report, &store.audit_chain(proof.head_seq, 1000).await.unwrap());
    assert!(report.ok && report.records as usize == left.len() + 1, "{report:?}");
}

/// Archived records leave the database a few thousand per transaction. While a cut is being
/// deleted, every record still there reads back whole: its `prev_hash` (not stored: the hash
/// of the record before) is found for each, because the newest of the cut go first.
async fn a_cut_being_deleted_keeps_every_prev_hash(store: Arc<dyn Store>) {
    let events: Vec<AuditEvent> = (0..30).map(|i| ev(&format!("step.{i}"))).collect();
    store.append_audit(&events).await.unwrap();
    let all = store.audit_chain(0, 100).await.unwrap();
    assert_eq!(all.len(), 30);
    let newest_first = |n: usize| AuditQuery {
        limit: n as i64,
        ..Default::default()
    };

    assert_eq!(store.prune_audit(20, 5).await.unwrap(), 5);
    let left = store.audit_events(&newest_first(100)).await.unwrap();
    let expected: Vec<StoredAudit> = all[..15].iter().chain(&all[20..]).rev().cloned().collect();
    assert_eq!(left[..9], expected[..9]);
    // Record 21's predecessor is gone: the archiver's checkpoint names it (none made here).
    assert_eq!((left[9].seq, left[9].prev_hash.as_str()), (21, ""));
    assert_eq!(left[10..], expected[10..], "the rest of the cut keeps its links");

    let mut pruned = 5;
    loop {
        let n = store.prune_audit(20, 5).await.unwrap();
        if n == 0 {
            break;
        }
        pruned += n;
    }
    assert_eq!(pruned, 20);
    let left = store.audit_events(&newest_first(100)).await.unwrap();
    assert_eq!(
        left.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (21..=30).rev().collect::<Vec<_>>()
    );
    // Time ranges still find what is left (each minute's span of numbers is kept or dropped
    // whole).
    let since = store
        .audit_events(&AuditQuery {
            since: Some(now() - Duration::hours(1)),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(since.len(), 10);
}
