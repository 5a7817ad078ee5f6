//! The provider registry while traffic flows: upload, replace, remove, disable; the watched
//! directory; and many replicas on one PostgreSQL database.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::plugins::fixtures;
use crate::proxy::Fixture;
use crate::support::{Gateway, Options, Reply, fresh_postgres_url, postgres_skipped};
use crate::upstream::Upstream;

async fn send(req: reqwest::RequestBuilder) -> Reply {
    Reply::from(req.send().await.unwrap()).await
}

fn component(name: &str) -> Vec<u8> {
    std::fs::read(fixtures::path(name)).unwrap()
}

async fn upload(gw: &Gateway, bytes: Vec<u8>) -> Reply {
    let req = gw
        .http
        .post(format!("{}/admin/v1/providers", gw.base))
        .bearer_auth(&gw.admin_token)
        .header("content-type", "application/wasm")
        .body(bytes);
    send(req).await
}

/// Polls `check` until it holds or `limit` passes; returns how long it took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn versioned_secret(f: &Fixture, name: &str) -> String {
    let secret = f
        .secret(name, "acme-versioned", json!({"token": "acme-token"}), json!({}))
        .await;
    f.grant(&secret, json!({})).await
}

async fn version_seen(f: &Fixture, grant: &str) -> Reply {
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), grant, &format!("{}/v", f.up.url))).await;
    if r.status == StatusCode::OK {
        assert_eq!(
            f.up.last().header("authorization").as_deref(),
            Some("Bearer acme-token")
        );
    }
    r
}

#[tokio::test]
async fn upload_replace_remove_disable_through_the_api_and_the_cli() {
    let f = Fixture::new().await;
    let list = f.gw.get("/admin/v1/providers").await;
    let openai = list.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "openai")
        .unwrap()
        .clone();
    assert_eq!(
        (openai["source"].as_str(), openai["version"].as_str()),
        (Some("bundled"), Some("1.0.0"))
    );
    assert_eq!(openai["digest"].as_str().unwrap().len(), 64);

    // Upload v1: checked, stored, active.
    let r = upload(&f.gw, component("versioned-v1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (
            r.json["id"].as_str(),
            r.json["version"].as_str(),
            r.json["source"].as_str()
        ),
        (Some("acme-versioned"), Some("1.0.0"), Some("uploaded"))
    );
    assert_eq!(r.json["description"]["credential_fields"][0]["name"], "token");
    let grant = versioned_secret(&f, "acme").await;
    version_seen(&f, &grant).await;
    assert_eq!(f.up.last().header("x-acme-version").as_deref(), Some("1"));

    // Replace with v2 through the CLI: the next call uses it.
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("v2.wasm");
    std::fs::write(&v2, component("versioned-v2")).unwrap();
    let added = f.gw.cli(&["provider", "add", v2.to_str().unwrap()], None);
    assert_eq!(added.code, 0, "{added:?}");
    assert!(added.stdout.contains("2.0.0"), "{added:?}");
    assert_eq!(version_seen(&f, &grant).await.status, StatusCode::OK);
    assert_eq!(f.up.last().header("x-acme-version").as_deref(), Some("2"));
    let listed = f.gw.cli(&["provider", "list"], None);
    assert!(
        listed.stdout.contains("acme-versioned") && listed.stdout.contains("uploaded"),
        "{listed:?}"
    );
    let shown = f.gw.cli(&["provider", "show", "acme-versioned", "--json"], None);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["version"], "2.0.0");

    // Whatever is wrong is refused and changes nothing.
    let before = f.gw.get("/admin/v1/providers/acme-versioned").await.json["digest"].clone();
    let m = upload(&f.gw, b"\0asm not really".to_vec())
        .await
        .assert_error(400, "bad_request");
    assert!(!m.contains('\n'), "one line for a person to read: {m}");
    let m = upload(&f.gw, b"#!/bin/sh\necho not wasm\n".to_vec())
        .await
        .assert_error(400, "bad_request");
    assert!(m.contains("not WebAssembly"), "{m}");
    // The smallest valid core module: a module, not a component.
    let m = upload(&f.gw, b"\0asm\x01\0\0\0".to_vec())
        .await
        .assert_error(400, "bad_request");
    assert!(m.contains("core WebAssembly module, not a component"), "{m}");
    let m = upload(&f.gw, component("hostile-import"))
        .await
        .assert_error(400, "bad_request");
    assert!(m.contains("evil:plugin/network"), "{m}");
    upload(&f.gw, Vec::new()).await.assert_error(400, "bad_request");
    assert_eq!(
        f.gw.get("/admin/v1/providers/acme-versioned").await.json["digest"],
        before
    );

    // Removal is refused while secrets use it, unless forced; those secrets then fail clearly.
    let m =
        f.gw.delete("/admin/v1/providers/acme-versioned")
            .await
            .assert_error(409, "conflict");
    assert!(m.contains("1 secret"), "{m}");
    f.gw.delete("/admin/v1/providers/openai")
        .await
        .assert_error(409, "conflict");
    f.gw.delete("/admin/v1/providers/nope")
        .await
        .assert_error(404, "not_found");
    let removed = f.gw.cli(&["provider", "remove", "acme-versioned", "--force"], None);
    assert_eq!(removed.code, 0, "{removed:?}");
    let m = version_seen(&f, &grant).await.assert_error(502, "provider_error");
    assert!(m.contains("no provider is loaded for type `acme-versioned`"), "{m}");

    // Disabling works for any source, bundled included.
    let openai_secret = f.secret("oa", "openai", json!({"token": "oa"}), json!({})).await;
    let openai_grant = f.grant(&openai_secret, json!({})).await;
    f.gw.post("/admin/v1/providers/openai/disable", json!({}))
        .await
        .assert_error(409, "conflict");
    let disabled = f.gw.cli(&["provider", "disable", "openai", "--force", "--json"], None);
    assert_eq!(disabled.code, 0, "{disabled:?}");
    let m = send(f.gw.proxy(Method::GET, Some(&f.key), &openai_grant, &f.up.url))
        .await
        .assert_error(502, "provider_error");
    assert!(m.contains("disabled"), "{m}");
    f.gw.post("/admin/v1/providers/openai/enable", json!({})).await;
    assert_eq!(
        send(f.gw.proxy(Method::GET, Some(&f.key), &openai_grant, &f.up.url))
            .await
            .status,
        StatusCode::OK
    );

    // Every registry change is in the audit trail.
    let audit = f.gw.get("/admin/v1/audit?limit=200").await;
    let actions: Vec<(String, String)> = audit.json["data"]
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
        ("provider.upload", "ok"),
        ("provider.upload", "bad_request"),
        ("provider.remove", "conflict"),
        ("provider.remove", "ok"),
        ("provider.disable", "ok"),
        ("provider.enable", "ok"),
    ] {
        let found = within(Duration::from_secs(2), async || {
            let audit = f.gw.get("/admin/v1/audit?limit=200").await;
            audit.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == expected.0 && r["outcome"] == expected.1)
        })
        .await;
        assert!(found.is_some(), "{expected:?} missing from {actions:?}");
    }
}

/// The native types are in the registry beside the templates, described the same way, so the
/// CLI and the portal read every type's fields from one place; and they are built in.
#[tokio::test]
async fn the_native_types_are_listed_and_described_like_templates_and_cannot_be_switched_off() {
    let gw = Gateway::start().await;
    let list = gw.get("/admin/v1/providers").await;
    let data = list.json["data"].as_array().unwrap();
    let natives: Vec<&str> = data
        .iter()
        .filter(|p| p["source"] == "native")
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(natives, ["bearer", "api_key", "basic", "aws_sigv4"], "{}", list.text);
    assert!(data.iter().any(|p| p["id"] == "openai" && p["source"] == "bundled"));
    let bearer = &data[0];
    assert_eq!(bearer["version"], "native");
    assert!(
        bearer.get("digest").is_none() && bearer.get("size").is_none(),
        "{bearer}"
    );

    let basic = gw.get("/admin/v1/providers/basic").await;
    assert_eq!(basic.status, StatusCode::OK);
    let fields: Vec<(&str, bool, bool)> = basic.json["description"]["credential_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["required"].as_bool().unwrap(),
                f["allow_empty"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(fields, [("username", true, false), ("password", true, true)]);
    let sigv4 = gw.get("/admin/v1/providers/aws_sigv4").await;
    let config: Vec<&str> = sigv4.json["description"]["config_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(config, ["region", "service", "endpoint"]);

    for (method, path) in [
        (Method::POST, "/admin/v1/providers/bearer/disable?force=true"),
        (Method::POST, "/admin/v1/providers/bearer/enable"),
        (Method::DELETE, "/admin/v1/providers/basic?force=true"),
    ] {
        let r = gw.admin(method.clone(), path, None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{method} {path}: {}", r.text);
        assert!(r.text.contains("native type"), "{}", r.text);
    }
    // Still serving: a secret of a native type is checked against its description.
    let refused = gw
        .post(
            "/admin/v1/secrets",
            json!({"name": "b", "type": "basic", "credential": {"username": "u"}, "allowed_hosts": ["api.example.com"]}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("`password` is required"), "{}", refused.text);
    let made = gw
        .post(
            "/admin/v1/secrets",
            json!({"name": "b", "type": "basic", "credential": {"username": "key", "password": ""}, "allowed_hosts": ["api.example.com"]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
}

#[tokio::test]
async fn uploads_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut gw = Gateway::start_with(Options {
        data_dir: Some(data.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(upload(&gw, component("versioned-v2")).await.status, StatusCode::CREATED);
    gw.stop();
    let gw = Gateway::start_with(Options {
        data_dir: Some(data),
        ..Default::default()
    })
    .await
    .unwrap();
    let shown = gw.get("/admin/v1/providers/acme-versioned").await;
    assert_eq!(
        (shown.json["version"].as_str(), shown.json["source"].as_str()),
        (Some("2.0.0"), Some("uploaded"))
    );
}

#[tokio::test]
async fn a_stream_in_flight_finishes_on_the_version_it_started_with() {
    let f = Fixture::new().await;
    assert_eq!(
        upload(&f.gw, component("versioned-v1")).await.status,
        StatusCode::CREATED
    );
    let grant = versioned_secret(&f, "stream").await;
    let response =
        f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/sse-gated", f.up.url))
            .send()
            .await
            .unwrap();
    let streaming_id = response.headers()["x-credgate-request-id"].to_str().unwrap().to_owned();
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    assert_eq!(stream.next().await.unwrap().unwrap(), "data: first\n\n");
    assert_eq!(f.up.last().header("x-acme-version").as_deref(), Some("1"));

    // Replaced while the stream is open.
    assert_eq!(upload(&f.gw, component("versioned-v2")).await.status, StatusCode::OK);
    assert_eq!(version_seen(&f, &grant).await.status, StatusCode::OK);
    assert_eq!(
        f.up.last().header("x-acme-version").as_deref(),
        Some("2"),
        "new requests use the new version"
    );

    f.up.open_gate();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(
        String::from_utf8(rest).unwrap(),
        "data: second\n\ndata: [DONE]\n\n",
        "the old stream completed unchanged"
    );
    let records = f.gw.audit_n(&streaming_id, 1).await;
    assert_eq!(records[0]["outcome"], "ok");
    assert_eq!(records[0]["provider_version"], "1.0.0");
}

#[tokio::test]
async fn the_watched_directory_loads_replaces_and_unloads_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::with(Options {
        args: vec!["--plugins-dir".into(), dir.path().display().to_string()],
        ..Default::default()
    })
    .await;
    // Written elsewhere and renamed in, as an operator's tooling should.
    let place = |name: &str, bytes: &[u8]| {
        let tmp = dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, dir.path().join(name)).unwrap();
    };
    let listed = async |id: &str| {
        f.gw.get("/admin/v1/providers").await.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id)
    };
    assert!(!listed("acme-versioned").await);

    place("acme.wasm", &component("versioned-v1"));
    let took = within(Duration::from_secs(1), async || listed("acme-versioned").await).await;
    assert!(took.is_some(), "a dropped-in component is served within a second");
    let shown = f.gw.get("/admin/v1/providers/acme-versioned").await;
    assert_eq!(shown.json["source"], "directory");
    let grant = versioned_secret(&f, "dir").await;
    version_seen(&f, &grant).await;
    assert_eq!(f.up.last().header("x-acme-version").as_deref(), Some("1"));

    place("acme.wasm", &component("versioned-v2"));
    let took = within(Duration::from_secs(1), async || {
        version_seen(&f, &grant).await;
        f.up.last().header("x-acme-version").as_deref() == Some("2")
    })
    .await;
    assert!(took.is_some(), "a replaced file is served within a second");

    // A corrupt file is reported and ignored; the rest keeps serving.
    place("junk.wasm", b"\0asm\x01\0\0\0 truncated");
    let reported = within(Duration::from_secs(2), async || f.gw.logs().contains("junk.wasm")).await;
    assert!(reported.is_some(), "the bad file is reported");
    assert_eq!(version_seen(&f, &grant).await.status, StatusCode::OK);

    std::fs::remove_file(dir.path().join("acme.wasm")).unwrap();
    let took = within(Duration::from_secs(1), async || !listed("acme-versioned").await).await;
    assert!(took.is_some(), "a removed file is unloaded within a second");
    version_seen(&f, &grant).await.assert_error(502, "provider_error");
    let audit = f.gw.get("/admin/v1/audit?action=provider.load&limit=10").await;
    assert!(
        audit.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "refused" && r["actor"] == "system:plugins-dir")
    );
}

/// Two gateway processes on one PostgreSQL database.
struct Replicas {
    a: Gateway,
    b: Gateway,
    url: String,
}

async fn replicas() -> Option<Replicas> {
    if postgres_skipped() {
        return None;
    }
    let url = fresh_postgres_url().await;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let options = || Options {
        database_url: Some(url.clone()),
        env: vec![
            ("CREDGATE_MASTER_KEY".into(), key.clone()),
            ("CREDGATE_ADMIN_TOKEN".into(), "replicas-share-this-admin-token".into()),
        ],
        args: vec!["--resync-seconds".into(), "2".into()],
        ..Default::default()
    };
    let a = Gateway::start_with(options()).await.unwrap();
    let b = Gateway::start_with(options()).await.unwrap();
    Some(Replicas { a, b, url })
}

async fn replica_id(gw: &Gateway) -> String {
    let ready: Value = gw
        .http
        .get(format!("{}/readyz", gw.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["replica"].as_str().unwrap().to_owned()
}

struct Setup {
    up: Upstream,
    agent: String,
    key: String,
    secret: String,
}

async fn setup(gw: &Gateway) -> Setup {
    let up = Upstream::start().await;
    let agent = gw.create_principal("agent", "replicated").await;
    let (_, key) = gw.issue_key(&agent).await;
    let secret = gw
        .create_secret(
            json!({"name": "rep", "type": "bearer", "credential": {"token": "v1"}, "config": {"base_url": up.url},
            "allow_private_destinations": true, "allow_insecure_http": true}),
        )
        .await;
    Setup { up, agent, key, secret }
}

#[tokio::test]
async fn changes_reach_the_other_replica_within_a_second() {
    let Some(r) = replicas().await else { return };
    let s = setup(&r.a).await;
    let grant = r.a.issue_grant(&s.secret, &s.agent, json!({})).await;
    let call = |gw: &Gateway, grant: &str| gw.proxy(Method::GET, Some(&s.key), grant, &format!("{}/x", s.up.url));
    assert_eq!(
        send(call(&r.b, &grant)).await.status,
        StatusCode::OK,
        "B serves what A created"
    );

    // Revoked on A: B refuses within a second.
    r.a.delete(&format!("/admin/v1/grants/{grant}")).await;
    let took = within(Duration::from_secs(1), async || {
        send(call(&r.b, &grant)).await.status == StatusCode::FORBIDDEN
    })
    .await;
    assert!(took.is_some(), "B still served a revoked grant after a second");

    // Uploaded on A: B serves it within a second.
    assert_eq!(
        upload(&r.a, component("versioned-v1")).await.status,
        StatusCode::CREATED
    );
    let took = within(Duration::from_secs(1), async || {
        r.b.get("/admin/v1/providers/acme-versioned").await.status == StatusCode::OK
    })
    .await;
    assert!(took.is_some(), "B did not load the upload within a second");
    let acme = r
        .a
        .create_secret(json!({"name": "acme", "type": "acme-versioned", "credential": {"token": "t"}, "config": {"base_url": s.up.url},
            "allow_private_destinations": true, "allow_insecure_http": true}))
        .await;
    let acme_grant = r.a.issue_grant(&acme, &s.agent, json!({})).await;
    assert_eq!(send(call(&r.b, &acme_grant)).await.status, StatusCode::OK);
    assert_eq!(s.up.last().header("x-acme-version").as_deref(), Some("1"));

    // B's notification connection is killed: it still converges, through the resync.
    let b_id = replica_id(&r.b).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&r.url)
        .await
        .unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'credgate-listener-{b_id}'"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(killed.len(), 1, "B's listener connection was found and terminated");
    let second = r.a.issue_grant(&s.secret, &s.agent, json!({})).await;
    assert_eq!(send(call(&r.b, &second)).await.status, StatusCode::OK);
    r.a.delete(&format!("/admin/v1/grants/{second}")).await;
    let took = within(Duration::from_secs(8), async || {
        send(call(&r.b, &second)).await.status == StatusCode::FORBIDDEN
    })
    .await;
    assert!(took.is_some(), "B never converged after losing its notifications");

    // One audit chain across both replicas.
    assert_eq!(r.b.get("/admin/v1/audit/verify").await.json["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steady_load_through_two_replicas_survives_rotation_and_replacement() {
    let Some(r) = replicas().await else { return };
    let s = setup(&r.a).await;
    let native = r.a.issue_grant(&s.secret, &s.agent, json!({})).await;
    assert_eq!(
        upload(&r.a, component("versioned-v1")).await.status,
        StatusCode::CREATED
    );
    let acme = r
        .a
        .create_secret(json!({"name": "acme", "type": "acme-versioned", "credential": {"token": "t"}, "config": {"base_url": s.up.url},
            "allow_private_destinations": true, "allow_insecure_http": true}))
        .await;
    let acme = r.a.issue_grant(&acme, &s.agent, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, gw) in [&r.a, &r.b, &r.a, &r.b].into_iter().enumerate() {
        let grant = if i % 2 == 0 { native.clone() } else { acme.clone() };
        let req = gw.proxy(Method::GET, Some(&s.key), &grant, &format!("{}/load", s.up.url));
        let (failures, done) = (failures.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            // Bounded: stops when told, or after 3000 calls.
            while !done.load(std::sync::atomic::Ordering::Relaxed) && n < 3000 {
                n += 1;
                let r = req.try_clone().unwrap().send().await;
                match r {
                    Ok(r) if r.status() == StatusCode::OK => {}
                    Ok(r) => {
                        let line = format!("{} {}", r.status(), r.text().await.unwrap_or_default());
                        failures.lock().unwrap().push(line);
                    }
                    Err(e) => failures.lock().unwrap().push(e.to_string()),
                }
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let rotated =
        r.a.post(
            &format!("/admin/v1/secrets/{}/rotate", s.secret),
            json!({"credential": {"token": "v2"}}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upload(&r.b, component("versioned-v2")).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut calls = 0;
    for w in workers {
        calls += w.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(calls > 100, "the load ran ({calls} calls)");
    // Both changes took effect on both replicas.
    let seen = s.up.seen();
    assert!(
        seen.iter()
            .any(|x| x.header("authorization").as_deref() == Some("Bearer v2"))
    );
    assert!(seen.iter().any(|x| x.header("x-acme-version").as_deref() == Some("2")));
}
