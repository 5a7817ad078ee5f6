//! The canary: a unique credential value driven through every admin endpoint, CLI command and
//! error path. It must appear nowhere: not in the database files (sealed at rest), not in the
//! logs, not in any response.

use reqwest::Method;
use serde_json::json;

use crate::support::{Gateway, Options, Reply};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_canary_never_leaves_the_vault() {
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let gw = Gateway::start_with(Options {
        log: Some("debug".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut seen: Vec<String> = Vec::new();
    let mut record = |r: &Reply| seen.push(format!("{:?}\n{}", r.headers, r.text));

    let bot = gw.create_principal("agent", "bot").await;
    let team = gw.create_principal("group", "team").await;
    let created = gw
        .post(
            "/admin/v1/secrets",
            json!({"name": "canary", "type": "basic", "credential": {"username": "user", "password": canary},
                   "config": {"base_url": "https://api.example.com"}}),
        )
        .await;
    record(&created);
    let sid = created.json["id"].as_str().unwrap().to_owned();
    let api_key = gw
        .post(
            "/admin/v1/secrets",
            json!({"name": "canary2", "type": "api_key", "credential": {"token": canary},
        "config": {"query_param": "key"}, "allowed_hosts": ["x.example.com"]}),
        )
        .await;
    record(&api_key);
    let grant = gw
        .post(&format!("/admin/v1/secrets/{sid}/grants"), json!({"principal_id": bot}))
        .await;
    record(&grant);
    let gid = grant.json["grant_id"].as_str().unwrap().to_owned();
    record(
        &gw.post(
            &format!("/admin/v1/principals/{team}/members"),
            json!({"member_id": bot}),
        )
        .await,
    );
    record(
        &gw.post(&format!("/admin/v1/principals/{bot}/keys"), json!({"name": "k"}))
            .await,
    );

    // Every read.
    for path in [
        "/admin/v1/secrets".to_owned(),
        format!("/admin/v1/secrets/{sid}"),
        format!("/admin/v1/secrets/{sid}/grants"),
        "/admin/v1/grants".into(),
        format!("/admin/v1/grants/{gid}"),
        "/admin/v1/principals".into(),
        format!("/admin/v1/principals/{bot}"),
        format!("/admin/v1/principals/{team}"),
        "/admin/v1/keys".into(),
        "/admin/v1/audit?limit=1000".into(),
        "/admin/v1/audit?format=jsonl&limit=1000".into(),
        "/admin/v1/audit/verify".into(),
        "/admin/v1/keyring".into(),
        "/admin/v1/openapi.json".into(),
    ] {
        record(&gw.get(&path).await);
    }

    // A data-plane call with a made-up user token carrying the canary: refused (no issuer is
    // trusted), and the token is repeated nowhere.
    let (_, app_key) = gw.issue_key(&bot).await;
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let forged = format!(
        "{}.{}.{canary}",
        b64(r#"{"alg":"RS256"}"#),
        b64(&json!({"iss": "https://idp.example", "sub": canary}).to_string())
    );
    let r = crate::support::send(
        gw.proxy(Method::GET, Some(&app_key), &gid, "https://api.example.com/x")
            .header("x-credgate-user-token", &forged),
    )
    .await;
    r.assert_error(401, "user_token_invalid");
    record(&r);

    // Error paths that carry the canary in the request.
    for body in [
        json!({"name": "x", "type": "basic", "credential": {"username": "u", "password": canary}}),
        json!({"name": "x", "type": "basic", "credential": canary}),
        json!({"name": "x", "type": "bearer", "credential": {"token": canary, "extra": canary}, "allowed_hosts": ["a.com"]}),
        json!({"name": "x", "type": canary, "credential": {"token": canary}, "allowed_hosts": ["a.com"]}),
        json!({"name": "canary", "type": "bearer", "credential": {"token": canary}, "allowed_hosts": ["a.com"]}),
        json!({"name": "x", "type": "bearer", "credential": {"token": [canary]}, "allowed_hosts": ["a.com"]}),
        json!({"name": "x", "type": "bearer", "credential": {"token": canary}, "allowed_hosts": ["a.com"], "unknown": canary}),
    ] {
        let r = gw.post("/admin/v1/secrets", body).await;
        assert!(r.status.is_client_error(), "{}", r.text);
        record(&r);
    }
    record(
        &gw.post(
            &format!("/admin/v1/secrets/{sid}/rotate"),
            json!({"credential": {"pasword": canary}}),
        )
        .await,
    );
    record(
        &gw.post(
            &format!("/admin/v1/secrets/{sid}/rotate"),
            json!({"credential": canary}),
        )
        .await,
    );
    let big =
        json!({"name": "x", "type": "bearer", "credential": {"token": format!("{canary}{}", "x".repeat(2 << 20))}});
    // On its own connection: the server closes a connection whose body it refused to read.
    let lone = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = lone
        .post(format!("{}/admin/v1/secrets", gw.base))
        .bearer_auth(&gw.admin_token)
        .json(&big)
        .send()
        .await
        .unwrap();
    let r = Reply::from(r).await;
    r.assert_error(413, "payload_too_large");
    record(&r);
    let raw = gw
        .http
        .post(format!("{}/admin/v1/secrets", gw.base))
        .bearer_auth(&gw.admin_token)
        .body(format!("{{\"x\": \"{canary}\""))
        .header("content-type", "text/plain");
    record(&Reply::from(raw.send().await.unwrap()).await);
    let raw = gw
        .http
        .post(format!("{}/admin/v1/secrets", gw.base))
        .bearer_auth(&gw.admin_token)
        .body(format!("{{\"x\": \"{canary}\""))
        .header("content-type", "application/json");
    record(&Reply::from(raw.send().await.unwrap()).await);
    let unauth = gw
        .http
        .post(format!("{}/admin/v1/secrets", gw.base))
        .json(&json!({"credential": {"token": canary}}));
    record(&Reply::from(unauth.send().await.unwrap()).await);

    // Rotation to a second canary value, then the CLI over everything.
    let rotated = gw
        .post(
            &format!("/admin/v1/secrets/{sid}/rotate"),
            json!({"credential": {"username": "user", "password": format!("{canary}-v2")}}),
        )
        .await;
    record(&rotated);
    let mut cli_output = String::new();
    for (args, stdin) in [
        (
            vec![
                "secret",
                "create",
                "--name",
                "from-cli",
                "--type",
                "bearer",
                "--allowed-host",
                "a.example.com",
            ],
            Some(canary.clone()),
        ),
        (vec!["secret", "list"], None),
        (vec!["secret", "list", "--json"], None),
        (vec!["secret", "show", &sid], None),
        (
            vec!["secret", "rotate", &sid],
            Some(format!("{{\"username\": \"u\", \"password\": \"{canary}-v3\"}}")),
        ),
        (
            vec!["secret", "create", "--name", "bad", "--type", "bearer"],
            Some(canary.clone()),
        ),
        (
            vec![
                "secret",
                "create",
                "--name",
                "bad",
                "--type",
                "basic",
                "--allowed-host",
                "a.com",
            ],
            Some(format!("{{\"password\": {canary}")),
        ),
        (vec!["grant", "list"], None),
        (vec!["grant", "show", &gid], None),
        (vec!["principal", "list"], None),
        (vec!["key", "list"], None),
        (vec!["audit", "list", "--limit", "1000"], None),
        (vec!["audit", "export"], None),
        (vec!["audit", "verify"], None),
        (vec!["keyring", "status"], None),
        (vec!["keyring", "rotate"], None),
    ] {
        let run = gw.cli(&args, stdin.as_deref());
        cli_output.push_str(&run.stdout);
        cli_output.push_str(&run.stderr);
    }
    record(&gw.admin(Method::DELETE, &format!("/admin/v1/grants/{gid}"), None).await);
    record(
        &gw.admin(Method::DELETE, &format!("/admin/v1/secrets/{sid}"), None)
            .await,
    );

    for (i, text) in seen.iter().enumerate() {
        assert!(!text.contains(&canary), "response {i} holds the canary: {text}");
    }
    assert!(!cli_output.contains(&canary), "CLI output holds the canary");
    // Give the writer a moment for detached failure records, then read every byte on disk.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = gw.logs();
    assert!(logs.contains("DEBUG"), "the logs ran at debug level");
    assert!(!logs.contains(&canary), "the logs hold the canary");
    let files = crate::support::files_under(&gw.data_dir);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        assert!(!contains(&bytes, &canary), "{} holds the canary", path.display());
    }
    assert!(
        files.iter().any(|p| p.extension().is_some_and(|e| e == "jsonl")),
        "the audit journal was searched: {files:?}"
    );
    assert!(
        files.len() >= 5,
        "database, WAL, key, token and journal files were searched"
    );
}
