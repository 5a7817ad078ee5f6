//! Operators' admin tokens, named and scoped: what each scope opens and refuses, the name in
//! the records a token causes, revocation on the next call, and the CLI.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Gateway, Reply, send};

async fn as_token(gw: &Gateway, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut req = gw.http.request(method, format!("{}{path}", gw.base)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    send(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_tokens_open_what_their_scopes_name_and_nothing_else() {
    let gw = Gateway::start().await;
    let created = gw
        .post(
            "/admin/v1/admin-tokens",
            json!({"name": "ci-deployer", "scopes": ["grants:write", "secrets:read"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["scopes"], json!(["secrets:read", "grants:write"]));
    let token = created.json["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cg_adm_"));
    let id = created.json["id"].as_str().unwrap().to_owned();

    let agent = gw.create_principal("agent", "deployed").await;
    let secret = gw
        .create_secret(
            json!({"name": "s", "type": "bearer", "credential": {"token": "scoped-canary"},
            "allowed_hosts": ["api.example.com"]}),
        )
        .await;
    // Any valid token may ask what it is, whatever its scopes.
    let who = as_token(&gw, &token, Method::GET, "/admin/v1/whoami", None).await;
    assert_eq!(who.status, 200, "{}", who.text);
    assert_eq!(who.json["scopes"], json!(["secrets:read", "grants:write"]));
    assert!(who.json["actor"].as_str().unwrap().contains("ci-deployer"));
    // Within its scopes: reading secrets and issuing a grant.
    let listed = as_token(&gw, &token, Method::GET, "/admin/v1/secrets", None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let issued = as_token(
        &gw,
        &token,
        Method::POST,
        &format!("/admin/v1/secrets/{secret}/grants"),
        Some(json!({"principal_id": agent})),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    // Outside them: creating a secret, reading the trail, managing tokens.
    for (method, path, body, scope) in [
        (
            Method::POST,
            "/admin/v1/secrets".to_owned(),
            Some(json!({"name": "x", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": ["a.com"]})),
            "secrets:write",
        ),
        (Method::GET, "/admin/v1/audit".to_owned(), None, "audit:read"),
        (Method::GET, "/admin/v1/admin-tokens".to_owned(), None, "admin"),
        (Method::POST, "/admin/v1/keyring/rotate".to_owned(), None, "admin"),
        (
            Method::DELETE,
            format!("/admin/v1/secrets/{secret}"),
            None,
            "secrets:write",
        ),
    ] {
        let r = as_token(&gw, &token, method.clone(), &path, body).await;
        let message = r.assert_error(403, "forbidden_scope");
        assert!(message.contains(scope), "{method} {path}: {message}");
    }
    assert_eq!(
        gw.get(&format!("/admin/v1/secrets/{secret}")).await.status,
        200,
        "not deleted"
    );

    // The grant it issued names it in the trail.
    let trail = gw.get("/admin/v1/audit?action=grant.issue").await;
    let actor = trail.json["data"][0]["actor"].as_str().unwrap().to_owned();
    assert!(actor.contains("ci-deployer") && actor.contains(&id), "{actor}");

    // Revoked: refused from the next call.
    let revoked = gw.delete(&format!("/admin/v1/admin-tokens/{id}")).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    as_token(&gw, &token, Method::GET, "/admin/v1/secrets", None)
        .await
        .assert_error(401, "unauthenticated");
    let listed = gw.get("/admin/v1/admin-tokens").await;
    let row = listed.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert!(
        row["revoked_at"].is_string() && row.get("token").is_none() && row.get("hash").is_none(),
        "{row}"
    );

    // Bad requests are refused in the documented shape.
    gw.post("/admin/v1/admin-tokens", json!({"name": "x", "scopes": ["everything"]}))
        .await
        .assert_error(400, "bad_request");
    gw.post("/admin/v1/admin-tokens", json!({"name": "x", "scopes": []}))
        .await
        .assert_error(400, "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_and_revokes_admin_tokens() {
    let gw = Gateway::start().await;
    let created = gw.cli(
        &[
            "admin-token",
            "create",
            "--name",
            "auditor",
            "--scope",
            "audit:read",
            "--json",
        ],
        None,
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    let issued: Value = serde_json::from_str(&created.stdout).unwrap();
    let token = issued["token"].as_str().unwrap();
    let trail = as_token(&gw, token, Method::GET, "/admin/v1/audit", None).await;
    assert_eq!(trail.status, 200, "{}", trail.text);
    as_token(&gw, token, Method::GET, "/admin/v1/secrets", None)
        .await
        .assert_error(403, "forbidden_scope");
    let listed = gw.cli(&["admin-token", "list"], None);
    assert!(
        listed.stdout.contains("auditor") && listed.stdout.contains("audit:read"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(token));
    let id = issued["id"].as_str().unwrap();
    let revoked = gw.cli(&["admin-token", "revoke", id], None);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    as_token(&gw, token, Method::GET, "/admin/v1/audit", None)
        .await
        .assert_error(401, "unauthenticated");
}
