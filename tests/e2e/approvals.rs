//! Calls that wait for a person, end to end: held with `202`, approved or denied by an
//! operator, made once by credgate, the response delivered to the app that asked; expiry,
//! revocation in between, `Prefer: wait`, a restart, and two replicas approving at once.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::proxy::Fixture;
use crate::support::{Gateway, Options, Reply, replicas_on_postgres, send};
use crate::upstream::Upstream;

/// POSTs to `/refunds` need approval; everything else goes through.
fn approval_policy() -> Value {
    json!({"require_approval": [{"methods": ["POST"], "path_prefixes": ["/refunds"]}], "approval_ttl_seconds": 300})
}

/// A held call's approval id, checked to be a proper `202`.
fn held(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let approval = &r.json["approval"];
    assert_eq!(approval["status"], "pending");
    let id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["x-credgate-approval"].to_str().unwrap(), id);
    let location = r.headers["location"].to_str().unwrap();
    assert!(
        location.starts_with("http://") && location.ends_with(&format!("/v1/approvals/{id}")),
        "{location}"
    );
    assert_eq!(approval["status_url"], location);
    assert!(
        approval["approval_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/portal/#/approvals/{id}")),
        "{approval}"
    );
    id
}

/// The app's view of an approval.
async fn app_view(gw: &Gateway, key: &str, id: &str, wait: u64) -> Reply {
    send(
        gw.http
            .get(format!("{}/v1/approvals/{id}?wait={wait}", gw.base))
            .bearer_auth(key),
    )
    .await
}

fn refund(f: &Fixture, grant: &str) -> reqwest::RequestBuilder {
    f.gw.via_grant(Method::POST, grant, "refunds")
        .bearer_auth(&f.key)
        .header("content-type", "application/json")
        .header("x-credgate-reason", "refund order 1009")
        .header("x-credgate-context", r#"{"ticket": "T-9"}"#)
        .body(r#"{"amount": 1250, "currency": "eur"}"#)
}

fn metric(text: &str, outcome: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("credgate_approvals_total") && l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn an_approved_call_is_made_once_and_its_response_reaches_the_app() {
    let f = Fixture::new().await;
    let secret = f
        .secret("payments", "bearer", json!({"token": "sk-live-payments"}), json!({}))
        .await;
    let grant = f.grant(&secret, approval_policy()).await;

    let r = send(refund(&f, &grant)).await;
    let id = held(&r);
    assert_eq!(f.up.count(), 0, "a held call is not made");
    // Calls no rule matches go through as ever.
    assert_eq!(
        send(f.gw.via_grant(Method::GET, &grant, "refunds").bearer_auth(&f.key))
            .await
            .status,
        200
    );
    assert_eq!(f.up.count(), 1);

    // The app sees it pending; another principal does not see it at all.
    let view = app_view(&f.gw, &f.key, &id, 0).await;
    assert_eq!(view.json["approval"]["status"], "pending", "{}", view.text);
    let stranger = f.gw.create_principal("agent", "stranger").await;
    let (_, stranger_key) = f.gw.issue_key(&stranger).await;
    app_view(&f.gw, &stranger_key, &id, 0)
        .await
        .assert_error(404, "not_found");
    send(f.gw.http.get(format!("{}/v1/approvals/{id}", f.gw.base)))
        .await
        .assert_error(401, "unauthenticated");

    // The operator sees who, what, why and a preview of the body.
    let pending = f.gw.get("/admin/v1/approvals?status=pending").await;
    let listed = &pending.json["data"][0];
    assert_eq!(listed["id"], id.as_str(), "{}", pending.text);
    assert_eq!(listed["method"], "POST");
    assert_eq!(listed["path"], "/refunds");
    assert_eq!(listed["reason"], "refund order 1009");
    assert_eq!(listed["context"]["ticket"], "T-9");
    assert_eq!(listed["principal_id"], f.agent.as_str());
    assert!(listed["body_preview"].as_str().unwrap().contains("\"amount\": 1250"));

    // Approve: the call is made, with the credential, once.
    let approved =
        f.gw.post(
            &format!("/admin/v1/approvals/{id}/approve"),
            json!({"note": "customer confirmed"}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.json["status"], "executed", "{}", approved.text);
    assert_eq!(approved.json["response_status"], 200);
    assert!(approved.json["decided_by"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(f.up.count(), 2);
    let made = f.up.last();
    assert_eq!(made.method, "POST");
    assert_eq!(made.path, "/refunds");
    assert_eq!(made.body, br#"{"amount": 1250, "currency": "eur"}"#);
    assert_eq!(made.header("authorization").as_deref(), Some("Bearer sk-live-payments"));
    assert!(made.header("x-credgate-reason").is_none());
    assert!(
        !format!("{:?}", made.headers).contains("cg_app_"),
        "no app key upstream"
    );
    // Never twice.
    f.gw.post(&format!("/admin/v1/approvals/{id}/approve"), json!({}))
        .await
        .assert_error(409, "conflict");
    f.gw.post(&format!("/admin/v1/approvals/{id}/deny"), json!({}))
        .await
        .assert_error(409, "conflict");
    assert_eq!(f.up.count(), 2);

    // The app reads the outcome and the upstream's response.
    let view = app_view(&f.gw, &f.key, &id, 1).await;
    let approval = &view.json["approval"];
    assert_eq!(approval["status"], "executed", "{}", view.text);
    assert_eq!(approval["note"], "customer confirmed");
    assert_eq!(approval["response"]["status"], 200);
    let response = send(
        f.gw.http
            .get(format!("{}/v1/approvals/{id}/response", f.gw.base))
            .bearer_auth(&f.key),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json["path"], "/refunds",
        "the upstream's own body: {}",
        response.text
    );
    assert_eq!(response.json["body"], r#"{"amount": 1250, "currency": "eur"}"#);

    // Audited: the held call, the decision (by whom), the call made.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trail = f.gw.get(&format!("/admin/v1/audit?grant_id={grant}&limit=50")).await;
    let records = trail.json["data"].as_array().unwrap();
    let held_record = records.iter().find(|r| r["outcome"] == "approval_pending").unwrap();
    assert_eq!(held_record["status"], 202);
    assert_eq!(held_record["target"], id.as_str());
    assert_eq!(held_record["reason"], "refund order 1009");
    let decision = records.iter().find(|r| r["action"] == "approval.approve").unwrap();
    assert!(decision["actor"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(decision["message"], "customer confirmed");
    let made = records
        .iter()
        .find(|r| r["action"] == "proxy.response" && r["mode"] == "approval")
        .unwrap();
    assert_eq!(made["outcome"], "ok");
    assert_eq!(made["target"], id.as_str());
    assert_eq!(made["reason"], "refund order 1009");
    let metrics = f.gw.metrics().await;
    for outcome in ["requested", "approved", "executed"] {
        assert_eq!(metric(&metrics, outcome), 1.0, "{outcome}");
    }
    assert_eq!(f.gw.get("/admin/v1/audit/verify").await.json["ok"], true);
}

#[tokio::test]
async fn denied_expired_and_revoked_calls_are_never_made() {
    let f = Fixture::new().await;
    let secret = f.secret("payments", "bearer", json!({"token": "t"}), json!({})).await;
    let grant = f.grant(&secret, approval_policy()).await;

    // Denied: the app learns it, with the note; nothing is sent.
    let denied = held(&send(refund(&f, &grant)).await);
    let r =
        f.gw.post(
            &format!("/admin/v1/approvals/{denied}/deny"),
            json!({"note": "not this customer"}),
        )
        .await;
    assert_eq!(r.json["status"], "denied", "{}", r.text);
    let view = app_view(&f.gw, &f.key, &denied, 0).await;
    assert_eq!(view.json["approval"]["status"], "denied");
    assert_eq!(view.json["approval"]["note"], "not this customer");
    let answer = send(
        f.gw.http
            .get(format!("{}/v1/approvals/{denied}/response", f.gw.base))
            .bearer_auth(&f.key),
    )
    .await;
    assert!(
        answer
            .assert_error(403, "approval_denied")
            .contains("not this customer")
    );
    f.gw.post(&format!("/admin/v1/approvals/{denied}/approve"), json!({}))
        .await
        .assert_error(409, "conflict");

    // Revoked between the request and the approval: failed, nothing sent.
    let revoked_grant = f.grant(&secret, approval_policy()).await;
    let orphan = held(&send(refund(&f, &revoked_grant)).await);
    assert_eq!(
        f.gw.delete(&format!("/admin/v1/grants/{revoked_grant}")).await.status,
        200
    );
    let r =
        f.gw.post(&format!("/admin/v1/approvals/{orphan}/approve"), json!({}))
            .await;
    assert_eq!(r.json["status"], "failed", "{}", r.text);
    assert!(
        r.json["failure"].as_str().unwrap().starts_with("grant_revoked"),
        "{}",
        r.text
    );

    // Expired: nobody decided in time. Here the hour passes in the database: the approval's
    // expiry is moved into the past.
    let late = held(&send(refund(&f, &grant)).await);
    let url = format!("sqlite:{}", f.gw.data_dir.join("credgate.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE approvals SET expires_at = expires_at - 400000000 WHERE id = $1")
        .bind(&late)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    assert_eq!(
        app_view(&f.gw, &f.key, &late, 0).await.json["approval"]["status"],
        "expired"
    );
    let refused =
        f.gw.post(&format!("/admin/v1/approvals/{late}/approve"), json!({}))
            .await;
    assert!(refused.assert_error(409, "conflict").contains("expired"));
    // The sweep records it (every 5 s) and drops what was held.
    let mut swept = false;
    for _ in 0..40 {
        let trail = f.gw.get("/admin/v1/audit?action=approval.expire").await;
        if trail.json["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|r| r["target"] == late.as_str()))
        {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(swept, "the expiry is audited");
    assert_eq!(f.up.count(), 0, "no held call was ever made");
    let metrics = f.gw.metrics().await;
    assert_eq!(metric(&metrics, "denied"), 1.0);
    assert_eq!(metric(&metrics, "failed"), 1.0);
    assert_eq!(metric(&metrics, "expired"), 1.0);
}

#[tokio::test]
async fn prefer_wait_holds_the_call_open_until_it_is_made() {
    let f = Fixture::new().await;
    let secret = f.secret("payments", "bearer", json!({"token": "t"}), json!({})).await;
    let grant = f.grant(&secret, approval_policy()).await;

    // Nobody decides within the second: the 202, after about a second.
    let started = std::time::Instant::now();
    let r = send(refund(&f, &grant).header("prefer", "wait=1")).await;
    held(&r);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Approved while the app waits: the app's own call answers with the upstream's response.
    let waiting = tokio::spawn(refund(&f, &grant).header("prefer", "wait=20").send());
    let mut id = None;
    for _ in 0..100 {
        let pending = f.gw.get("/admin/v1/approvals?status=pending").await;
        id = pending.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .find(|a| Some(a.as_str()) != r.json["approval"]["id"].as_str());
        if id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("the waiting call is listed");
    assert_eq!(
        f.gw.post(&format!("/admin/v1/approvals/{id}/approve"), json!({}))
            .await
            .status,
        200
    );
    let answer = Reply::from(waiting.await.unwrap().unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json["path"], "/refunds",
        "the upstream's response: {}",
        answer.text
    );
    assert_eq!(answer.headers["x-credgate-approval"].to_str().unwrap(), id);
    assert_eq!(f.up.count(), 1);
}

#[tokio::test]
async fn a_restart_keeps_pending_approvals_and_big_bodies_are_refused() {
    let f = Fixture::with(Options {
        args: vec!["--approval-max-body".into(), "1000".into()],
        ..Default::default()
    })
    .await;
    let secret = f.secret("payments", "bearer", json!({"token": "t"}), json!({})).await;
    let grant = f.grant(&secret, approval_policy()).await;
    let big = send(
        f.gw.via_grant(Method::POST, &grant, "refunds")
            .bearer_auth(&f.key)
            .body("x".repeat(1001)),
    )
    .await;
    big.assert_error(413, "payload_too_large");
    let id = held(&send(refund(&f, &grant)).await);

    let Fixture { mut gw, up, key, .. } = f;
    let data_dir = gw.data_dir.clone();
    gw.kill();
    let gw = Gateway::start_with(Options {
        data_dir: Some(data_dir),
        ..Default::default()
    })
    .await
    .unwrap();
    let pending = gw.get("/admin/v1/approvals?status=pending").await;
    assert_eq!(pending.json["data"][0]["id"], id.as_str(), "{}", pending.text);
    let approved = gw.post(&format!("/admin/v1/approvals/{id}/approve"), json!({})).await;
    assert_eq!(approved.json["status"], "executed", "{}", approved.text);
    assert_eq!(up.count(), 1);
    assert_eq!(up.last().body, br#"{"amount": 1250, "currency": "eur"}"#);
    assert_eq!(app_view(&gw, &key, &id, 0).await.json["approval"]["status"], "executed");
}

#[tokio::test]
async fn two_replicas_approving_at_once_make_the_call_once() {
    let Some(replicas) = replicas_on_postgres(2).await else {
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    let up = Upstream::start().await;
    let agent = a.create_principal("agent", "payer").await;
    let (_, key) = a.issue_key(&agent).await;
    let secret = a
        .create_secret(
            json!({"name": "payments", "type": "bearer", "credential": {"token": "t"},
            "config": {"base_url": up.url}, "allow_private_destinations": true, "allow_insecure_http": true}),
        )
        .await;
    let grant = a.issue_grant(&secret, &agent, approval_policy()).await;
    for round in 0..5 {
        let r = send(
            a.via_grant(Method::POST, &grant, "refunds")
                .bearer_auth(&key)
                .body(format!("{{\"round\": {round}}}")),
        )
        .await;
        let id = held(&r);
        let path = format!("/admin/v1/approvals/{id}/approve");
        let (on_a, on_b) = tokio::join!(a.post(&path, json!({})), b.post(&path, json!({})));
        let statuses = [on_a.status.as_u16(), on_b.status.as_u16()];
        assert!(statuses.contains(&200) && statuses.contains(&409), "{statuses:?}");
        // The app reads the outcome from the replica that did not make the call, too.
        let view = app_view(b, &key, &id, 10).await;
        assert_eq!(view.json["approval"]["status"], "executed", "{}", view.text);
        assert_eq!(up.count(), round + 1, "one upstream call per approval");
    }
}

/// Ways around an approval rule, each tried as an attacker would send it: a method-override
/// header naming the held method, a WebSocket handshake (which cannot wait), and the app key
/// revoked while the call waits (an operator's approval must not revive a cut-off agent).
#[tokio::test]
async fn approval_rules_cannot_be_walked_around() {
    let f = Fixture::new().await;
    let secret = f.secret("payments", "bearer", json!({"token": "t"}), json!({})).await;
    let grant = f
        .grant(
            &secret,
            json!({"require_approval": [{"methods": ["DELETE"]}, {"path_prefixes": ["/live"]}]}),
        )
        .await;

    // POST that asks the upstream to run DELETE: held like a DELETE.
    let overridden = send(
        f.gw.via_grant(Method::POST, &grant, "things/1")
            .bearer_auth(&f.key)
            .header("x-http-method-override", "delete"),
    )
    .await;
    held(&overridden);
    assert_eq!(f.up.count(), 0);

    // The held path as some server would read it, however it is spelt; and an S3 copy that
    // reads from it.
    let before = f.gw.get("/admin/v1/approvals?status=pending").await.json["data"]
        .as_array()
        .unwrap()
        .len();
    for path in [
        "live;x=1/a",
        "LIVE/a",
        "x/..%2F..%2Flive",
        "%6Cive/a",
        "live%2Fa",
        "/live//a",
    ] {
        let r = send(f.gw.via_grant(Method::GET, &grant, path).bearer_auth(&f.key)).await;
        assert!(
            r.status == StatusCode::ACCEPTED || r.status == StatusCode::BAD_REQUEST,
            "{path}: held or refused, never made: {} {}",
            r.status,
            r.text
        );
    }
    let copy = send(
        f.gw.via_grant(Method::PUT, &grant, "bucket/new-object")
            .bearer_auth(&f.key)
            .header("x-amz-copy-source", "/live/secret-object"),
    )
    .await;
    held(&copy);
    let now_pending = f.gw.get("/admin/v1/approvals?status=pending").await.json["data"]
        .as_array()
        .unwrap()
        .len();
    assert!(now_pending >= before + 5, "{before} then {now_pending}");
    assert_eq!(f.up.count(), 0);

    // A WebSocket handshake to a held path: refused, not let through.
    let base = f.gw.base.clone();
    let request = format!(
        "GET /v1/grants/{grant}/live/socket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Proxy-Authorization: Bearer {}\r\n\r\n",
        f.key
    );
    let raw = tokio::task::spawn_blocking(move || crate::support::raw_http(&base, &request))
        .await
        .unwrap();
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    assert!(raw.contains("policy_violation") && raw.contains("WebSocket"), "{raw}");
    assert_eq!(f.up.count(), 0);

    // The agent's key is revoked while its call waits: approving makes nothing.
    let waiting = held(&send(f.gw.via_grant(Method::DELETE, &grant, "things/2").bearer_auth(&f.key)).await);
    assert_eq!(f.gw.delete(&format!("/admin/v1/keys/{}", f.key_id)).await.status, 200);
    let r =
        f.gw.post(&format!("/admin/v1/approvals/{waiting}/approve"), json!({}))
            .await;
    assert_eq!(r.json["status"], "failed", "{}", r.text);
    assert!(
        r.json["failure"].as_str().unwrap().starts_with("unauthenticated"),
        "{}",
        r.text
    );
    assert_eq!(f.up.count(), 0, "no way around the rule reached the upstream");
}

/// The canary sweep for held calls: the credential behind an approval rule, calls held,
/// approved, denied; the response kept and read back.
#[tokio::test]
async fn the_canary_never_leaves_through_held_calls() {
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let f = Fixture::with(Options {
        log: Some("debug".into()),
        ..Default::default()
    })
    .await;
    // The upstream echoes the request, credential included: the kept response is scrubbed as a
    // live one would be.
    let secret =
        f.gw.create_secret(json!({"name": "c", "type": "bearer", "credential": {"token": canary},
            "config": {"base_url": f.up.url}, "allow_private_destinations": true, "allow_insecure_http": true,
            "redact_responses": true}))
            .await;
    let grant = f
        .grant(&secret, json!({"require_approval": [{"methods": ["POST"]}]}))
        .await;
    let mut responses = Vec::new();
    let mut keep = |r: &Reply| responses.push(format!("{:?}\n{}", r.headers, r.text));
    let hold = || {
        f.gw.via_grant(Method::POST, &grant, "echo")
            .bearer_auth(&f.key)
            .body("{}")
    };
    let first = send(hold()).await;
    keep(&first);
    let second = send(hold()).await;
    keep(&second);
    let (first, second) = (held(&first), held(&second));
    keep(&f.gw.get("/admin/v1/approvals?status=pending").await);
    keep(
        &f.gw
            .post(&format!("/admin/v1/approvals/{first}/approve"), json!({}))
            .await,
    );
    keep(
        &f.gw
            .post(&format!("/admin/v1/approvals/{second}/deny"), json!({}))
            .await,
    );
    for id in [&first, &second] {
        keep(&app_view(&f.gw, &f.key, id, 0).await);
        keep(&f.gw.get(&format!("/admin/v1/approvals/{id}")).await);
        keep(
            &send(
                f.gw.http
                    .get(format!("{}/v1/approvals/{id}/response", f.gw.base))
                    .bearer_auth(&f.key),
            )
            .await,
        );
    }
    assert_eq!(f.up.last().header("authorization"), Some(format!("Bearer {canary}")));
    crate::containment::assert_canary_nowhere(&f, &canary, &responses).await;
}

/// The operator's side from the command line: a grant with limits and an approval rule, then
/// list, show, approve and deny. (A runtime with a second worker: the CLI blocks one while the
/// gateway calls this test's upstream.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_decide_from_the_command_line() {
    let f = Fixture::new().await;
    let secret = f.secret("payments", "bearer", json!({"token": "t"}), json!({})).await;
    let issued = f.gw.cli(
        &[
            "grant",
            "issue",
            &secret,
            "--principal",
            &f.agent,
            "--require-approval",
            "POST:/refunds",
            "--approval-ttl",
            "5m",
            "--rate-limit",
            "100/60s",
            "--quota",
            "1000/day",
            "--json",
        ],
        None,
    );
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    let grant: Value = serde_json::from_str(&issued.stdout).unwrap();
    let policy = &grant["grant_policy"];
    assert_eq!(
        policy["require_approval"],
        json!([{"methods": ["POST"], "path_prefixes": ["/refunds"]}])
    );
    assert_eq!(policy["approval_ttl_seconds"], 300);
    assert_eq!(policy["rate_limit"], json!({"requests": 100, "per_seconds": 60}));
    assert_eq!(policy["quota"], json!({"calls": 1000, "period": "day"}));
    let grant = grant["grant_id"].as_str().unwrap().to_owned();
    let bad = f.gw.cli(
        &[
            "grant",
            "issue",
            &secret,
            "--principal",
            &f.agent,
            "--rate-limit",
            "many",
        ],
        None,
    );
    assert_eq!(bad.code, 6, "invalid input: {}", bad.stderr);

    let first = held(&send(refund(&f, &grant)).await);
    let second = held(&send(refund(&f, &grant)).await);
    let list = f.gw.cli(&["approval", "list"], None);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains(&first) && list.stdout.contains(&second),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("POST 127.0.0.1/refunds") && list.stdout.contains("refund order 1009"));
    let shown = f.gw.cli(&["approval", "show", &first, "--json"], None);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert!(shown["body_preview"].as_str().unwrap().contains("1250"));

    let approved =
        f.gw.cli(&["approval", "approve", &first, "--note", "checked", "--json"], None);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let approved: Value = serde_json::from_str(&approved.stdout).unwrap();
    assert_eq!(approved["status"], "executed");
    assert_eq!(approved["note"], "checked");
    let denied = f.gw.cli(&["approval", "deny", &second], None);
    assert_eq!(denied.code, 0, "{}", denied.stderr);
    assert!(denied.stdout.contains("denied"));
    let again = f.gw.cli(&["approval", "approve", &second], None);
    assert_eq!(again.code, 5, "a decided approval is a conflict: {}", again.stderr);
    assert_eq!(f.up.count(), 1);
    let by_reason = f.gw.cli(
        &[
            "audit",
            "list",
            "--reason",
            "REFUND",
            "--context",
            "ticket=T-9",
            "--json",
        ],
        None,
    );
    let records: Value = serde_json::from_str(&by_reason.stdout).unwrap();
    assert!(records.as_array().unwrap().len() >= 3, "{records}");
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["reason"] == "refund order 1009")
    );
}
