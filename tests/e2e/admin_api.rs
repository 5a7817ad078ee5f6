//! The admin API through a real server: every endpoint, and every documented error.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Gateway, Options, fresh_postgres_url, postgres_skipped};

#[tokio::test]
async fn principals_members_and_keys() {
    let gw = Gateway::start().await;
    let alice = gw.create_principal("user", "alice").await;
    let team = gw.create_principal("group", "team").await;
    let bot = gw.create_principal("agent", "bot").await;

    let list = gw.get("/admin/v1/principals").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json["data"].as_array().unwrap().len(), 3);
    let agents = gw.get("/admin/v1/principals?kind=agent").await;
    assert_eq!(agents.json["data"][0]["name"], "bot");
    assert_eq!(agents.json["data"].as_array().unwrap().len(), 1);

    let added = gw
        .post(
            &format!("/admin/v1/principals/{team}/members"),
            json!({"member_id": alice}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.json["added"], true);
    let again = gw
        .post(
            &format!("/admin/v1/principals/{team}/members"),
            json!({"member_id": alice}),
        )
        .await;
    assert_eq!(
        (again.status, again.json["added"].clone()),
        (StatusCode::OK, json!(false))
    );
    let shown = gw.get(&format!("/admin/v1/principals/{team}")).await;
    assert_eq!(shown.json["members"], json!([alice]));
    assert_eq!(
        gw.get(&format!("/admin/v1/principals/{alice}")).await.json["groups"],
        json!([team])
    );

    // Membership rules.
    gw.post(
        &format!("/admin/v1/principals/{alice}/members"),
        json!({"member_id": bot}),
    )
    .await
    .assert_error(400, "bad_request");
    let team2 = gw.create_principal("group", "team2").await;
    gw.post(
        &format!("/admin/v1/principals/{team}/members"),
        json!({"member_id": team2}),
    )
    .await
    .assert_error(400, "bad_request");
    let removed = gw.delete(&format!("/admin/v1/principals/{team}/members/{alice}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    gw.delete(&format!("/admin/v1/principals/{team}/members/{alice}"))
        .await
        .assert_error(404, "not_found");

    // Keys: shown once, listed as metadata, revocable; not for groups.
    let issued = gw
        .post(
            &format!("/admin/v1/principals/{bot}/keys"),
            json!({"name": "ci", "ttl_seconds": 3600}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let key = issued.json["key"].as_str().unwrap();
    let prefix = issued.json["prefix"].as_str().unwrap();
    assert!(key.starts_with(&format!("cg_app_{prefix}_")));
    assert!(issued.json["expires_at"].is_string());
    let key_id = issued.json["id"].as_str().unwrap();
    let listed = gw.get(&format!("/admin/v1/principals/{bot}/keys")).await;
    assert_eq!(listed.json["data"].as_array().unwrap().len(), 1);
    assert!(!listed.text.contains(key), "a listed key never shows its value");
    assert!(listed.json["data"][0].get("hash").is_none());
    assert!(!gw.get(&format!("/admin/v1/keys/{key_id}")).await.text.contains(key));
    assert_eq!(
        gw.get(&format!("/admin/v1/keys?principal_id={bot}")).await.json["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let no_body = gw
        .admin(Method::POST, &format!("/admin/v1/principals/{alice}/keys"), None)
        .await;
    assert_eq!(
        no_body.status,
        StatusCode::CREATED,
        "a key needs no parameters: {}",
        no_body.text
    );
    gw.post(&format!("/admin/v1/principals/{team}/keys"), json!({}))
        .await
        .assert_error(400, "bad_request");
    let revoked = gw.delete(&format!("/admin/v1/keys/{key_id}")).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.json["revoked_at"].is_string());
    assert_eq!(
        gw.delete(&format!("/admin/v1/keys/{key_id}")).await.status,
        StatusCode::OK,
        "revoking twice is harmless"
    );

    // Deleting a principal revokes its keys.
    let alice_key = no_body.json["id"].as_str().unwrap();
    assert_eq!(
        gw.delete(&format!("/admin/v1/principals/{alice}")).await.status,
        StatusCode::NO_CONTENT
    );
    gw.get(&format!("/admin/v1/principals/{alice}"))
        .await
        .assert_error(404, "not_found");
    assert!(gw.get(&format!("/admin/v1/keys/{alice_key}")).await.json["revoked_at"].is_string());
}

#[tokio::test]
async fn secrets_and_grants() {
    let gw = Gateway::start().await;
    let bot = gw.create_principal("agent", "bot").await;
    let created = gw
        .post(
            "/admin/v1/secrets",
            json!({"name": "Stripe live", "type": "api_key", "credential": {"token": "sk_live_x"},
                   "config": {"header": "authorization", "format": "Bearer {token}", "base_url": "https://api.stripe.com/v1"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let s = created.json.clone();
    assert_eq!(s["slug"], "stripe-live");
    assert_eq!(s["type"], "api_key");
    assert_eq!(s["version"], 1);
    assert_eq!(s["allowed_hosts"], json!(["api.stripe.com"]));
    assert_eq!(s["credential_fields"], json!(["token"]));
    assert_eq!(s["allow_private_destinations"], false);
    assert!(s.get("credential").is_none());
    assert!(!created.text.contains("sk_live_x"));
    let id = s["id"].as_str().unwrap();

    let dup = gw
        .post("/admin/v1/secrets", json!({"name": "stripe LIVE", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["a.example.com"]}))
        .await;
    dup.assert_error(409, "conflict");

    let grant = gw
        .post(
            &format!("/admin/v1/secrets/{id}/grants"),
            json!({"principal_id": bot, "grant_policy": {"ttl_seconds": 600, "allowed_methods": ["get", "POST"], "allowed_path_prefixes": ["/v1/charges"]}}),
        )
        .await;
    assert_eq!(grant.status, StatusCode::CREATED, "{}", grant.text);
    assert_eq!(grant.json["status"], "active");
    assert_eq!(grant.json["grant_policy"]["allowed_methods"], json!(["GET", "POST"]));
    let grant_id = grant.json["grant_id"].as_str().unwrap();
    assert_eq!(
        gw.get(&format!("/admin/v1/secrets/{id}")).await.json["active_grants"],
        1
    );
    assert_eq!(
        gw.get(&format!("/admin/v1/secrets/{id}/grants")).await.json["data"][0]["grant_id"],
        grant_id
    );
    assert_eq!(
        gw.get(&format!("/admin/v1/grants?principal_id={bot}&status=active"))
            .await
            .json["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        gw.get("/admin/v1/grants?status=revoked").await.json["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        gw.get(&format!("/admin/v1/grants/{grant_id}")).await.json["secret_id"],
        id
    );

    // Rotation: new version, same ids, grant untouched.
    let rotated = gw
        .post(
            &format!("/admin/v1/secrets/{id}/rotate"),
            json!({"credential": {"token": "sk_live_y"}}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(
        (rotated.json["id"].as_str(), rotated.json["version"].as_i64()),
        (Some(id), Some(2))
    );
    assert_eq!(
        gw.get(&format!("/admin/v1/grants/{grant_id}")).await.json["status"],
        "active"
    );
    gw.post(
        &format!("/admin/v1/secrets/{id}/rotate"),
        json!({"credential": {"password": "x"}}),
    )
    .await
    .assert_error(400, "bad_request");

    let revoked = gw.delete(&format!("/admin/v1/grants/{grant_id}")).await;
    assert_eq!(
        (revoked.status, revoked.json["status"].clone()),
        (StatusCode::OK, json!("revoked"))
    );
    assert_eq!(revoked.json["revoked_reason"], "revoked");

    let g2 = gw.issue_grant(id, &bot, json!({})).await;
    assert_eq!(
        gw.delete(&format!("/admin/v1/secrets/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    gw.get(&format!("/admin/v1/secrets/{id}"))
        .await
        .assert_error(404, "not_found");
    let g2 = gw.get(&format!("/admin/v1/grants/{g2}")).await;
    assert_eq!(
        (g2.json["status"].as_str(), g2.json["revoked_reason"].as_str()),
        (Some("revoked"), Some("secret_deleted"))
    );
    gw.post(&format!("/admin/v1/secrets/{id}/grants"), json!({"principal_id": bot}))
        .await
        .assert_error(404, "not_found");
    assert!(
        gw.get("/admin/v1/secrets").await.json["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn validation_errors_have_the_documented_shape() {
    let gw = Gateway::start().await;
    let bot = gw.create_principal("agent", "bot").await;
    // Unknown and misspelt fields are refused, not ignored.
    let m = gw
        .post(
            "/admin/v1/principals",
            json!({"kind": "user", "name": "x", "nmae": "y"}),
        )
        .await
        .assert_error(400, "bad_request");
    assert!(m.contains("nmae"), "{m}");
    gw.post("/admin/v1/principals", json!({"kind": "robot", "name": "x"}))
        .await
        .assert_error(400, "bad_request");
    gw.post("/admin/v1/principals", json!({"kind": "user"}))
        .await
        .assert_error(400, "bad_request");
    gw.post("/admin/v1/principals", json!({"kind": "user", "name": ""}))
        .await
        .assert_error(400, "bad_request");
    gw.post("/admin/v1/principals", json!({"kind": "user", "name": 5}))
        .await
        .assert_error(400, "bad_request");
    gw.post("/admin/v1/principals", json!({"kind": "user", "name": "bot"}))
        .await
        .assert_error(409, "conflict");

    let secret = |body: serde_json::Value| async { gw.post("/admin/v1/secrets", body).await };
    for (body, needle) in [
        (
            json!({"name": "a", "type": "bearer", "credential": {"token": "t"}}),
            "allowed_hosts",
        ),
        (
            json!({"name": "a", "type": "bearer", "credential": {"tokn": "t"}, "allowed_hosts": ["x.com"]}),
            "tokn",
        ),
        (
            json!({"name": "a", "type": "beerer", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}),
            "unknown secret type",
        ),
        (
            json!({"name": "a", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["https://x.com"]}),
            "not a URL",
        ),
        (
            json!({"name": "a", "type": "api_key", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}),
            "header",
        ),
        (
            json!({"name": "a", "type": "api_key", "credential": {"token": "t"}, "config": {"header": "content-length"}, "allowed_hosts": ["x.com"]}),
            "content-length",
        ),
        (
            json!({"name": "a", "type": "bearer", "credential": {"token": "t"}, "config": {"base_url": "http://x.com"}}),
            "allow_insecure_http",
        ),
        (
            json!({"name": "a", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["x.com"], "allow_privat": true}),
            "allow_privat",
        ),
        (
            json!({"name": "!!", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}),
            "letter",
        ),
    ] {
        let m = secret(body.clone()).await.assert_error(400, "bad_request");
        assert!(m.contains(needle), "{body}: {m}");
    }

    let sid = gw
        .create_secret(
            json!({"name": "ok", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}),
        )
        .await;
    for policy in [
        json!({"ttl_seconds": 0}),
        json!({"ttl_seconds": "soon"}),
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
        json!({"ttl_seconds": 10, "expires_at": "2999-01-01T00:00:00Z"}),
        json!({"allowed_methods": []}),
        json!({"allowed_path_prefixes": ["v1"]}),
        json!({"allowed_path_prefixes": ["/a/../b"]}),
        json!({"ttl": 10}),
    ] {
        gw.post(
            &format!("/admin/v1/secrets/{sid}/grants"),
            json!({"principal_id": bot, "grant_policy": policy}),
        )
        .await
        .assert_error(400, "bad_request");
    }
    let ghost = uuid::Uuid::new_v4();
    gw.post(
        &format!("/admin/v1/secrets/{sid}/grants"),
        json!({"principal_id": ghost}),
    )
    .await
    .assert_error(404, "not_found");

    // Unknown ids, malformed ids, unknown routes, wrong methods.
    for path in [
        "/admin/v1/principals/",
        "/admin/v1/secrets/",
        "/admin/v1/grants/",
        "/admin/v1/keys/",
    ] {
        gw.get(&format!("{path}{ghost}")).await.assert_error(404, "not_found");
        gw.get(&format!("{path}not-a-uuid"))
            .await
            .assert_error(404, "not_found");
    }
    gw.get("/admin/v1/nothing-here").await.assert_error(404, "not_found");
    gw.admin(Method::PUT, "/admin/v1/principals", None)
        .await
        .assert_error(405, "method_not_allowed");
    gw.get("/admin/v1/grants?status=sleeping")
        .await
        .assert_error(400, "bad_request");
    gw.get("/admin/v1/grants?colour=red")
        .await
        .assert_error(400, "bad_request");

    // Body problems: not JSON, wrong media type, too large.
    let raw = |ct: &'static str, body: &'static str| {
        gw.http
            .post(format!("{}/admin/v1/principals", gw.base))
            .bearer_auth(&gw.admin_token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    crate::support::Reply::from(raw("application/json", "{not json").await.unwrap())
        .await
        .assert_error(400, "bad_request");
    crate::support::Reply::from(raw("text/plain", "{}").await.unwrap())
        .await
        .assert_error(415, "unsupported_media_type");
    let big = json!({"kind": "user", "name": "x".repeat(2 * 1024 * 1024)});
    gw.post("/admin/v1/principals", big)
        .await
        .assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn admin_token_is_required_and_checked() {
    let gw = Gateway::start().await;
    let no_token = crate::support::Reply::from(
        gw.http
            .get(format!("{}/admin/v1/principals", gw.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    no_token.assert_error(401, "unauthenticated");
    for bad in [
        "nope",
        "cg_adm_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        &format!("{}x", gw.admin_token),
    ] {
        let r = crate::support::Reply::from(
            gw.http
                .get(format!("{}/admin/v1/secrets", gw.base))
                .bearer_auth(bad)
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_error(401, "unauthenticated");
    }
    let wrong_kind = crate::support::Reply::from(
        gw.http
            .post(format!("{}/admin/v1/principals", gw.base))
            .basic_auth("admin", Some(&gw.admin_token))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    wrong_kind.assert_error(401, "unauthenticated");
    // Health and the API description need no token.
    assert_eq!(
        gw.http
            .get(format!("{}/healthz", gw.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = gw.http.get(format!("{}/readyz", gw.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key("x-credgate-request-id"));
}

#[tokio::test]
async fn operator_supplied_admin_token() {
    let token = "an-operator-chosen-admin-token";
    let gw = Gateway::start_with(Options {
        env: vec![("CREDGATE_ADMIN_TOKEN".into(), token.into())],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        !gw.data_dir.join("admin-token").exists(),
        "no token is generated when the operator supplies one"
    );
    assert!(!gw.logs().contains("shown this once"));
    assert_eq!(gw.get("/admin/v1/principals").await.status, StatusCode::OK);
    let short = Gateway::start_with(Options {
        env: vec![("CREDGATE_ADMIN_TOKEN".into(), "short".into())],
        ..Default::default()
    })
    .await;
    assert!(short.is_err_and(|f| f.output.contains("at least 16")));
}

#[tokio::test]
async fn audit_records_changes_and_failed_attempts() {
    let gw = Gateway::start().await;
    let bot = gw.create_principal("agent", "bot").await;
    gw.post("/admin/v1/principals", json!({"kind": "agent", "name": "bot"}))
        .await
        .assert_error(409, "conflict");
    let sid = gw
        .create_secret(json!({"name": "s", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}))
        .await;
    let gid = gw.issue_grant(&sid, &bot, json!({"ttl_seconds": 60})).await;
    gw.delete(&format!("/admin/v1/grants/{gid}")).await;

    // Failed attempts are written asynchronously; wait for them to land.
    let mut all = serde_json::Value::Null;
    for _ in 0..50 {
        all = gw.get("/admin/v1/audit?limit=100").await.json;
        if all["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "conflict")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let actions: Vec<(String, String)> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("principal.create", "ok"),
        ("principal.create", "conflict"),
        ("secret.create", "ok"),
        ("grant.issue", "ok"),
        ("grant.revoke", "ok"),
    ] {
        assert!(
            actions.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {actions:?}"
        );
    }
    let revoke = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "grant.revoke")
        .unwrap();
    assert_eq!(revoke["grant_id"], gid.as_str());
    assert!(revoke["actor"].as_str().unwrap().starts_with("admin:"));
    assert!(revoke["request_id"].is_string() && revoke["hash"].is_string() && revoke["seq"].is_i64());

    let by_grant = gw.get(&format!("/admin/v1/audit?grant_id={gid}")).await;
    assert_eq!(by_grant.json["data"].as_array().unwrap().len(), 2);
    let failures = gw.get("/admin/v1/audit?outcome=conflict").await;
    assert_eq!(failures.json["data"].as_array().unwrap().len(), 1);
    let page = gw.get("/admin/v1/audit?limit=2").await;
    let next = page.json["next_before"].as_i64().unwrap();
    let older = gw.get(&format!("/admin/v1/audit?limit=2&before={next}")).await;
    assert!(older.json["data"][0]["seq"].as_i64().unwrap() < next);
    let lines = gw.get("/admin/v1/audit?format=jsonl&limit=3").await;
    assert_eq!(lines.headers["content-type"], "application/x-ndjson");
    assert_eq!(lines.text.lines().count(), 3);
    for line in lines.text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    gw.get("/admin/v1/audit?limit=0").await.assert_error(400, "bad_request");
    gw.get("/admin/v1/audit?since=yesterday")
        .await
        .assert_error(400, "bad_request");

    let verify = gw.get("/admin/v1/audit/verify").await;
    assert_eq!(verify.json["ok"], true, "{}", verify.text);
    let all = verify.json["records"].as_u64().unwrap();
    assert!(all >= 6);

    // From a checkpoint: only what came after it is walked, linked to it.
    let (seq, hash) = (
        verify.json["head_seq"].as_i64().unwrap(),
        verify.json["head_hash"].as_str().unwrap().to_owned(),
    );
    gw.create_principal("agent", "after-the-checkpoint").await;
    let more = gw
        .get(&format!("/admin/v1/audit/verify?after_seq={seq}&after_hash={hash}"))
        .await;
    assert_eq!(more.json["ok"], true, "{}", more.text);
    assert_eq!(more.json["records"], 1);
    assert_eq!(more.json["head_seq"], seq + 1);
    // A checkpoint that is not this chain's does not verify.
    let forged = gw
        .get(&format!(
            "/admin/v1/audit/verify?after_seq={seq}&after_hash={}",
            "ab".repeat(32)
        ))
        .await;
    assert_eq!(forged.json["ok"], false, "{}", forged.text);
    assert!(forged.json["error"].as_str().unwrap().contains("rewritten"));
    // A checkpoint past the trail's end: the trail was cut back below it.
    let ahead = gw
        .get(&format!(
            "/admin/v1/audit/verify?after_seq={}&after_hash={hash}",
            seq + 100
        ))
        .await;
    assert_eq!(ahead.json["ok"], false, "{}", ahead.text);
    assert!(ahead.json["error"].as_str().unwrap().contains("cut back"));
    gw.get(&format!("/admin/v1/audit/verify?after_seq={seq}"))
        .await
        .assert_error(400, "bad_request");
    gw.get("/admin/v1/audit/verify?after_seq=1&after_hash=nothex")
        .await
        .assert_error(400, "bad_request");
}

/// Puts `value` into a text column of record `seq`, as whoever can write the database would.
async fn set_text(db: &sqlx::SqlitePool, column: &str, seq: i64, value: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE audit_events SET {column} = ? WHERE seq = ?"
    )))
    .bind(value)
    .bind(seq)
    .execute(db)
    .await
    .unwrap();
}

/// Someone with write access to the database changes the live trail: each change is named by
/// the record it hides behind. The database keeps ids and hashes as bytes, no `prev_hash` of
/// its own, and bodies without the values their columns hold, so these are the changes left to
/// make: a column (it is part of the body the hash covers), or a whole body with its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trail_changed_in_the_database_fails_verification_at_that_record() {
    let gw = Gateway::start().await;
    for name in ["a", "b", "c", "d"] {
        gw.create_principal("agent", name).await;
    }
    assert_eq!(gw.get("/admin/v1/audit/verify").await.json["ok"], true);
    let url = format!("sqlite:{}", gw.data_dir.join("credgate.db").display());
    let db = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let (id, stored, outcome): (Vec<u8>, String, String) =
        sqlx::query_as("SELECT id, body, outcome FROM audit_events WHERE seq = 3")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        !stored.contains("\"outcome\"") && !stored.contains(&uuid::Uuid::from_slice(&id).unwrap().to_string()),
        "the stored body does not repeat its columns: {stored}"
    );
    // The walk's verdict: where it stopped and why.
    let fails_with = |prefix: &'static str| {
        let gw = &gw;
        async move {
            let walk = gw.get("/admin/v1/audit/verify").await;
            assert_eq!(walk.json["ok"], false, "{}", walk.text);
            let error = walk.json["error"].as_str().unwrap();
            assert!(error.starts_with(prefix), "{error}");
        }
    };
    let passes = || async {
        let walk = gw.get("/admin/v1/audit/verify").await;
        assert_eq!(walk.json["ok"], true, "restored: {}", walk.text);
    };
    let restore_id = || async {
        sqlx::query("UPDATE audit_events SET id = ? WHERE seq = 3")
            .bind(&id)
            .execute(&db)
            .await
            .unwrap();
        passes().await;
    };

    // A column that no longer holds an id (SQLite keeps whatever it is given).
    sqlx::query("UPDATE audit_events SET id = 'not-an-id' WHERE seq = 3")
        .execute(&db)
        .await
        .unwrap();
    fails_with("record 3: hash does not match its content").await;
    assert_eq!(
        gw.get("/admin/v1/audit?limit=10").await.status,
        StatusCode::OK,
        "the trail still reads"
    );
    restore_id().await;
    // Another record's id, well formed: the body read back is not the one hashed.
    sqlx::query("UPDATE audit_events SET id = (SELECT id FROM audit_events WHERE seq = 2) WHERE seq = 3")
        .execute(&db)
        .await
        .unwrap();
    fails_with("record 3: hash does not match its content").await;
    restore_id().await;
    // The outcome column changed: every filter and count would see `denied`.
    set_text(&db, "outcome", 3, "denied").await;
    fails_with("record 3: hash does not match its content").await;
    set_text(&db, "outcome", 3, &outcome).await;
    passes().await;

    // A column holding control characters with the record's other columns after it (what
    // would move values into other records' places in a reader that joined a page's values
    // by a separator): the column's value is what the body is rebuilt from, the listing shows
    // it as it is, and the walk names the record.
    let action: String = sqlx::query_scalar("SELECT action FROM audit_events WHERE seq = 3")
        .fetch_one(&db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_events SET action = action || char(31) || outcome || char(31) || hex(principal_id) \
         || char(31) || hex(grant_id) || char(31) || hex(secret_id) || char(31) || ifnull('=' || request_id, '') \
         || char(31) || hex(user_principal_id) || char(31) || hex(hash) || char(31) || octet_length(body) \
         || char(31) || body WHERE seq = 3",
    )
    .execute(&db)
    .await
    .unwrap();
    fails_with("record 3: hash does not match its content").await;
    let listed = gw.get("/admin/v1/audit?limit=10").await;
    assert_eq!(listed.status, StatusCode::OK, "the trail still reads");
    let shown = listed.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["seq"] == 3)
        .map(|r| r["action"].as_str().unwrap().to_owned());
    assert_eq!(
        shown.as_deref().map(|a| a.split('\u{1f}').next()),
        Some(Some(action.as_str())),
        "{}",
        listed.text
    );
    assert!(shown.unwrap().contains('\u{1f}'), "listed as the column holds it");
    set_text(&db, "action", 3, &action).await;
    passes().await;

    // A value given another type with the same bytes: it reads back as it did, yet the
    // filters no longer find the record. The walk must not pass it.
    let principal: String = gw.get("/admin/v1/audit?limit=10").await.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["seq"] == 3)
        .and_then(|r| r["principal_id"].as_str())
        .expect("record 3 names a principal")
        .to_owned();
    let found = |filter: String| {
        let gw = &gw;
        async move {
            let page = gw.get(&format!("/admin/v1/audit?{filter}")).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            page.json["data"].as_array().unwrap().iter().any(|r| r["seq"] == 3)
        }
    };
    for (column, retype, back, filter) in [
        ("principal_id", "TEXT", "BLOB", format!("principal_id={principal}")),
        ("outcome", "BLOB", "TEXT", format!("outcome={outcome}")),
    ] {
        assert!(found(filter.clone()).await, "{column}: found before");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE audit_events SET {column} = CAST({column} AS {retype}) WHERE seq = 3"
        )))
        .execute(&db)
        .await
        .unwrap();
        assert!(!found(filter.clone()).await, "{column}: the filter misses it now");
        fails_with("record 3: hash does not match its content").await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE audit_events SET {column} = CAST({column} AS {back}) WHERE seq = 3"
        )))
        .execute(&db)
        .await
        .unwrap();
        assert!(found(filter).await, "{column}: restored");
        assert_eq!(
            gw.get("/admin/v1/audit/verify").await.json["ok"],
            true,
            "{column}: restored"
        );
    }

    // A NULL where credgate writes none (its NOT NULL dropped from the schema, which whoever
    // can write the file can do), and the next record holding both values, as if one had
    // moved a place: record 2's outcome is gone and record 3's holds both. No filter on the
    // outcome finds either, and the walk must not pass them.
    sqlx::query("PRAGMA writable_schema = ON").execute(&db).await.unwrap();
    let dropped = sqlx::query(
        "UPDATE sqlite_schema SET sql = replace(sql, 'outcome            TEXT NOT NULL', 'outcome TEXT') \
         WHERE name = 'audit_events'",
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(dropped.rows_affected(), 1);
    sqlx::query("PRAGMA writable_schema = OFF").execute(&db).await.unwrap();
    db.close().await;
    let db = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let outcome_2: String = sqlx::query_scalar("SELECT outcome FROM audit_events WHERE seq = 2")
        .fetch_one(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET outcome = NULL WHERE seq = 2")
        .execute(&db)
        .await
        .unwrap();
    set_text(&db, "outcome", 3, &format!("{outcome_2}\u{1f}{outcome}")).await;
    fails_with("record 2: hash does not match its content").await;
    set_text(&db, "outcome", 2, &outcome_2).await;
    set_text(&db, "outcome", 3, &outcome).await;
    passes().await;

    // Record 3 rewritten whole, its columns and its own hash made to agree with the new body:
    // the record after it no longer links.
    let store = credgate::store::connect(&credgate::store::DatabaseUrl::new(url))
        .await
        .unwrap();
    let body = store.audit_chain(2, 1).await.unwrap().remove(0).body;
    assert_ne!(body, stored, "read back whole");
    let prev: Vec<u8> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = 2")
        .fetch_one(&db)
        .await
        .unwrap();
    let forged = body.replacen(&format!("\"outcome\":\"{outcome}\""), "\"outcome\":\"denied\"", 1);
    assert_ne!(forged, body);
    let hash = credgate::audit::link_digest(&hex::encode(prev), 3, &forged);
    sqlx::query("UPDATE audit_events SET body = ?, outcome = 'denied', hash = ? WHERE seq = 3")
        .bind(&forged)
        .bind(hash.to_vec())
        .execute(&db)
        .await
        .unwrap();
    fails_with("record 4: hash does not match its content and the record before it").await;
    db.close().await;
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let gw = Gateway::start().await;
    let doc = crate::support::Reply::from(
        gw.http
            .get(format!("{}/admin/v1/openapi.json", gw.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.json["paths"].as_object().unwrap();
    for path in [
        "/admin/v1/principals",
        "/admin/v1/principals/{id}",
        "/admin/v1/principals/{id}/members",
        "/admin/v1/principals/{id}/members/{member_id}",
        "/admin/v1/principals/{id}/keys",
        "/admin/v1/keys",
        "/admin/v1/keys/{id}",
        "/admin/v1/secrets",
        "/admin/v1/secrets/{id}",
        "/admin/v1/secrets/{id}/rotate",
        "/admin/v1/secrets/{id}/grants",
        "/admin/v1/grants",
        "/admin/v1/grants/{grant_id}",
        "/admin/v1/audit",
        "/admin/v1/audit/verify",
        "/admin/v1/keyring",
        "/admin/v1/keyring/rotate",
        "/admin/v1/keyring/rewrap",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    assert!(doc.json["components"]["securitySchemes"]["admin_token"].is_object());
    assert!(doc.json["components"]["schemas"]["CreateSecret"].is_object());
}

#[tokio::test]
async fn the_same_api_runs_on_postgres() {
    if postgres_skipped() {
        return;
    }
    let url = fresh_postgres_url().await;
    let gw = Gateway::start_with(Options {
        database_url: Some(url.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let bot = gw.create_principal("agent", "bot").await;
    let sid = gw.create_secret(json!({"name": "s", "type": "basic", "credential": {"username": "u", "password": "p"}, "allowed_hosts": ["x.com"]})).await;
    let gid = gw.issue_grant(&sid, &bot, json!({})).await;
    assert_eq!(
        gw.get(&format!("/admin/v1/grants/{gid}")).await.json["status"],
        "active"
    );
    let ready = gw
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(ready["database"], "postgres");
    assert_eq!(gw.get("/admin/v1/audit/verify").await.json["ok"], true);
}
