//! The data plane's second round of containment, each fault as the attacker or the client
//! that found it sent it: the path and query reach the upstream as written, nothing of a
//! credential comes back, and a grant's limits bind what the upstream will do.

use std::process::{Child, Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::proxy::Fixture;
use crate::support::{Options, Reply, raw_http};

async fn send(req: reqwest::RequestBuilder) -> Reply {
    Reply::from(req.send().await.unwrap()).await
}

fn canary() -> String {
    format!("canary-{}", uuid::Uuid::new_v4().simple())
}

/// The canary is nowhere credgate keeps or shows anything: the responses given, the log, the
/// audit trail, every file of the data directory (database and journal).
pub async fn assert_canary_nowhere(f: &Fixture, canary: &str, responses: &[String]) {
    for (i, text) in responses.iter().enumerate() {
        assert!(!text.contains(canary), "response {i} holds the canary: {text}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let audit = f.gw.get("/admin/v1/audit?limit=10000").await;
    assert!(!audit.text.contains(canary), "the audit trail holds the canary");
    assert!(!f.gw.metrics().await.contains(canary));
    assert!(!f.gw.logs().contains(canary), "the log holds the canary");
    crate::support::assert_no_file_holds(&f.gw.data_dir, canary, "the canary");
}

fn shown(r: &Reply) -> String {
    format!("{:?}\n{}", r.headers, r.text)
}

/// A stock `python3 -m http.server` serving a folder with a `docs/` directory: asked for
/// `/docs?page=1` it answers `301 Location: /docs/?page=1…`, keeping the query.
struct StaticSite {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl StaticSite {
    fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/index.html"), "<p>docs</p>").unwrap();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 43211 (http://127.0.0.1:43211/) ..."
        let port: u16 = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected http.server banner: {line}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_redirect_never_brings_a_query_credential_back() {
    let canary = canary();
    let site = StaticSite::start();
    let f = Fixture::with(Options {
        log: Some("debug".into()),
        ..Default::default()
    })
    .await;
    let secret = f
        .secret(
            "gemini",
            "api_key",
            json!({"token": canary}),
            json!({"query_param": "key", "base_url": site.url}),
        )
        .await;
    let grant = f.grant(&secret, json!({})).await;
    let r = send(f.gw.via_grant(Method::GET, &grant, "docs?page=1").bearer_auth(&f.key)).await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY, "{}", r.text);
    assert_eq!(r.headers["location"], "/docs/?page=1&key=[REDACTED]");
    assert_canary_nowhere(&f, &canary, &[shown(&r)]).await;
}

#[tokio::test]
async fn no_response_header_carries_an_injected_value() {
    let canary = canary();
    let f = Fixture::with(Options {
        log: Some("debug".into()),
        ..Default::default()
    })
    .await;
    let bearer = f.secret("b", "bearer", json!({"token": canary}), json!({})).await;
    let query = f
        .secret("q", "api_key", json!({"token": canary}), json!({"query_param": "key"}))
        .await;
    let spaced = f
        .secret(
            "s",
            "api_key",
            json!({"token": format!("{canary} /+&x")}),
            json!({"query_param": "key"}),
        )
        .await;
    let basic = f
        .secret("p", "basic", json!({"username": "user", "password": canary}), json!({}))
        .await;
    let header = f
        .secret(
            "h",
            "api_key",
            json!({"token": canary}),
            json!({"header": "Authorization", "format": "Token token={token}"}),
        )
        .await;
    let pair = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("user:{canary}"));
    let mut responses = Vec::new();
    for secret in [&bearer, &query, &spaced, &basic, &header] {
        let grant = f.grant(secret, json!({})).await;
        for r in [
            send(
                f.gw.via_grant(Method::GET, &grant, "reflect?page=1")
                    .bearer_auth(&f.key),
            )
            .await,
            send(f.gw.proxy(
                Method::GET,
                Some(&f.key),
                &grant,
                &format!("{}/reflect?page=1", f.up.url),
            ))
            .await,
        ] {
            assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY, "{}", r.text);
            let all = shown(&r);
            assert!(!all.contains(&pair), "the Basic pair came back: {all}");
            assert!(all.contains("[REDACTED]"), "{all}");
            assert!(r.headers["location"].to_str().unwrap().starts_with("/docs/?page=1"));
            responses.push(all);
        }
    }
    // The upstream did get the credential: the scrubbing is on the way back only.
    assert!(
        f.up.seen()
            .iter()
            .any(|s| s.header("authorization").as_deref() == Some(&format!("Bearer {canary}")))
    );
    assert_canary_nowhere(&f, &canary, &responses).await;
}

async fn redacting_secret(f: &Fixture, token: &str) -> String {
    f.gw.create_secret(json!({
        "name": "echoing", "type": "bearer", "credential": {"token": token},
        "config": {"base_url": f.up.url}, "redact_responses": true,
        "allow_private_destinations": true, "allow_insecure_http": true,
    }))
    .await
}

#[tokio::test]
async fn redact_responses_scrubs_an_echoed_body_as_it_streams() {
    let canary = canary();
    let f = Fixture::with(Options {
        log: Some("debug".into()),
        ..Default::default()
    })
    .await;
    let secret = redacting_secret(&f, &canary).await;
    let shown_secret = f.gw.get(&format!("/admin/v1/secrets/{secret}")).await;
    assert_eq!(shown_secret.json["redact_responses"], true);
    let grant = f.grant(&secret, json!({})).await;

    // `/drip` echoes the request three bytes at a time: the value is split across chunks.
    let response =
        f.gw.via_grant(Method::GET, &grant, "drip")
            .bearer_auth(&f.key)
            .header("range", "bytes=10-")
            .header("accept-encoding", "gzip, br")
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let declared: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let r = Reply::from(response).await;
    assert_eq!(r.text.len(), declared, "the length is unchanged by the scrubbing");
    let stars = "*".repeat(canary.len());
    assert_eq!(r.json["headers"]["authorization"][0], format!("Bearer {stars}"));
    // What could hide a value from the scrubber was not asked for.
    let seen = f.up.last();
    assert_eq!(seen.header("accept-encoding").as_deref(), Some("identity"));
    assert!(seen.header("range").is_none());

    // An upstream that compresses anyway is not passed on: its bytes cannot be scrubbed.
    let gz = send(f.gw.via_grant(Method::GET, &grant, "gzip").bearer_auth(&f.key)).await;
    gz.assert_error(502, "upstream_unreachable");

    assert_canary_nowhere(&f, &canary, &[shown(&r), shown(&gz)]).await;
}

#[tokio::test]
async fn a_scrubbed_event_stream_still_arrives_event_by_event() {
    let f = Fixture::new().await;
    let secret = redacting_secret(&f, &canary()).await;
    let grant = f.grant(&secret, json!({})).await;
    let response =
        f.gw.via_grant(Method::GET, &grant, "sse-gated")
            .bearer_auth(&f.key)
            .send()
            .await
            .unwrap();
    crate::proxy::assert_events_arrive_as_sent(response, &f.up).await;
}

/// Raw bytes to credgate, off the runtime's thread: the echo upstream runs on it.
async fn raw(base: &str, request: &str) -> String {
    let (base, request) = (base.to_owned(), request.to_owned());
    tokio::task::spawn_blocking(move || raw_http(&base, &request))
        .await
        .unwrap()
}

fn status_of(raw: &str) -> Option<u16> {
    raw.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

fn error_code_of(raw: &str) -> Value {
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    // The body may be chunked; the JSON object is on one line either way.
    let json = body.lines().find(|l| l.starts_with('{')).unwrap_or("null");
    serde_json::from_str::<Value>(json).unwrap_or(Value::Null)["error"]["code"].clone()
}

#[tokio::test]
async fn trace_track_and_connect_are_never_forwarded() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let host = f.gw.base.trim_start_matches("http://").to_owned();
    for method in ["TRACE", "TRACK", "CONNECT"] {
        for request in [
            format!(
                "{method} /v1/grants/{grant}/echo HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                f.key
            ),
            format!(
                "{method} /v1/proxy HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Bearer {}\r\nX-Credgate-Grant: {grant}\r\nX-Credgate-Target: {}/echo\r\nConnection: close\r\n\r\n",
                f.key, f.up.url
            ),
        ] {
            let raw = raw(&f.gw.base, &request).await;
            assert_eq!(status_of(&raw), Some(405), "{method}: {raw}");
            assert_eq!(error_code_of(&raw), "method_not_allowed", "{raw}");
            assert!(!raw.contains("real-upstream-token"), "{raw}");
        }
    }
    assert_eq!(f.up.count(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn override_headers_cannot_widen_a_grant() {
    let f = Fixture::new().await;
    let (secret, _) = f.bearer_grant().await;
    let grant = f
        .grant(
            &secret,
            json!({"allowed_methods": ["GET", "POST"], "allowed_path_prefixes": ["/v1/"]}),
        )
        .await;
    for (name, value) in [
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "PUT"),
        ("x-method-override", "TRACE"),
        ("x-http-method-override", ""),
    ] {
        let r = send(
            f.gw.via_grant(Method::POST, &grant, "v1/items")
                .bearer_auth(&f.key)
                .header(name, value),
        )
        .await;
        r.assert_error(403, "policy_violation");
    }
    assert_eq!(f.up.count(), 0);
    // A method the grant allows may be named.
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "v1/items")
            .bearer_auth(&f.key)
            .header("x-http-method-override", "get")
            .header("x-original-url", "/v1/admin")
            .header("x-rewrite-url", "/base/v1/admin")
            .header("x-original-method", "DELETE"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seen = f.up.last();
    assert_eq!(seen.header("x-http-method-override").as_deref(), Some("get"));
    for gone in ["x-original-url", "x-rewrite-url", "x-original-method"] {
        assert!(seen.header(gone).is_none(), "{gone} reached the upstream");
    }
}

#[tokio::test]
async fn upstream_content_cannot_run_on_credgates_origin() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let html = send(f.gw.via_grant(Method::GET, &grant, "html").bearer_auth(&f.key)).await;
    assert_eq!(html.status, StatusCode::OK);
    assert_eq!(html.headers["content-type"], "text/html");
    let refused = send(f.gw.via_grant(Method::GET, &grant, "html")).await;
    refused.assert_error(401, "unauthenticated");
    for r in [&html, &refused] {
        assert_eq!(r.headers["content-security-policy"], "sandbox");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
    // A plain link with the key under a name no SDK uses is not a call; the key is removed
    // all the same.
    let before = f.up.count();
    let link = send(f.gw.via_grant(Method::GET, &grant, &format!("html?k={}", f.key))).await;
    link.assert_error(401, "unauthenticated");
    assert_eq!(f.up.count(), before);
    for name in ["key", "api_key", "access_token", "token"] {
        let r = send(f.gw.via_grant(Method::GET, &grant, &format!("echo?{name}={}&x=1", f.key))).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text);
        assert_eq!(f.up.last().query.as_deref(), Some("x=1"));
    }
}

#[tokio::test]
async fn the_audit_trail_and_the_upstream_get_the_query_as_written() {
    let f = Fixture::new().await;
    let secret = f
        .secret(
            "q",
            "api_key",
            json!({"token": "value with space"}),
            json!({"query_param": "api_key"}),
        )
        .await;
    let grant = f.grant(&secret, json!({})).await;
    // Injection changes only its own parameter.
    let sent = "a=%2F%20b&flag&lower=%2f&semi=a;b";
    let r = send(
        f.gw.via_grant(Method::GET, &grant, &format!("x?{sent}"))
            .bearer_auth(&f.key),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        f.up.last().query.as_deref(),
        Some(format!("{sent}&api_key=value%20with%20space").as_str())
    );
    // The trail keeps what was sent, not a decoding of it.
    let r = send(
        f.gw.via_grant(Method::GET, &grant, "x?note=a%26key%3Dforged")
            .bearer_auth(&f.key),
    )
    .await;
    let id = r.headers["x-credgate-request-id"].to_str().unwrap().to_owned();
    let records = f.gw.audit_of(&id).await;
    assert_eq!(records[0]["path"], "/x?note=a%26key%3Dforged&api_key=[REDACTED]");

    // Explicit mode removes an app key from the target's query as base-URL mode does.
    let r = send(f.gw.proxy(
        Method::GET,
        Some(&f.key),
        &grant,
        &format!("{}/scrub?k={}&x=1", f.up.url, f.key),
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(f.up.last().query.as_deref(), Some("x=1&api_key=value%20with%20space"));
    let id = r.headers["x-credgate-request-id"].to_str().unwrap().to_owned();
    let records = f.gw.audit_of(&id).await;
    assert_eq!(records[0]["path"], "/scrub?x=1&api_key=[REDACTED]");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    crate::support::assert_no_file_holds(&f.gw.data_dir, &f.key, "the app key");
}

#[tokio::test]
async fn base_url_paths_reach_the_upstream_as_written() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    for path in [
        "x/a%2Fb",
        "x/a%25b",
        "x/a%3Bb",
        "api/v4/projects/group%2Fproject",
        "bucket/100%25.txt",
    ] {
        let r = send(f.gw.via_grant(Method::GET, &grant, path).bearer_auth(&f.key)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(f.up.last().path, format!("/{path}"));
    }
}

#[tokio::test]
async fn path_limits_cannot_be_escaped_by_any_encoding() {
    let f = Fixture::new().await;
    let (secret, _) = f.bearer_grant().await;
    let grant = f
        .grant(
            &secret,
            json!({"allowed_path_prefixes": ["/v1/chat/", "/api/v4/projects/"]}),
        )
        .await;
    let host = f.gw.base.trim_start_matches("http://").to_owned();
    let explicit = |target: &str| {
        format!(
            "GET /v1/proxy HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Bearer {}\r\nX-Credgate-Grant: {grant}\r\nX-Credgate-Target: {}{target}\r\nConnection: close\r\n\r\n",
            f.key, f.up.url
        )
    };
    let base = |path: &str| {
        format!(
            "GET /v1/grants/{grant}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            f.key
        )
    };
    for escape in [
        "/v1/chat/%2e%2e%2fadmin",
        "/v1/chat/..%5cadmin",
        "/v1/chat/..%00/admin",
        "/v1/chat/..;/admin",
        "/v1/chat/%2e%2e;x=1/admin",
        "/v1/chat/%252e%252e/admin",
        "/v1/chat/%c0%ae%c0%ae/admin",
    ] {
        for request in [explicit(escape), base(escape)] {
            let raw = raw(&f.gw.base, &request).await;
            assert_eq!(status_of(&raw), Some(400), "{escape}: {request}: {raw}");
            assert_eq!(error_code_of(&raw), "bad_request", "{raw}");
        }
    }
    assert_eq!(f.up.count(), 0, "no escape reached the upstream");
    // Encoded characters inside a segment stay part of it.
    let r = raw(&f.gw.base, &base("/api/v4/projects/group%2Fproject")).await;
    assert_eq!(status_of(&r), Some(200), "{r}");
    assert_eq!(f.up.last().path, "/api/v4/projects/group%2Fproject");
    let r = raw(&f.gw.base, &explicit("/v1/chat/%63ompletions")).await;
    assert_eq!(status_of(&r), Some(200), "{r}");
}

#[tokio::test]
async fn unknown_admin_tokens_cost_no_reload_yet_new_tokens_are_found() {
    if crate::support::postgres_skipped() {
        return;
    }
    let url = crate::support::fresh_postgres_url().await;
    let f = Fixture::with(Options {
        database_url: Some(url.clone()),
        ..Default::default()
    })
    .await;
    for i in 0..200 {
        let r =
            f.gw.http
                .get(format!("{}/admin/v1/secrets", f.gw.base))
                .bearer_auth(format!("cg_adm_{i:012}_{}", "b".repeat(43)))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // A token issued elsewhere (another replica, a racing first start) after this replica
    // loaded its table is found within the reload interval despite the flood.
    let store = credgate::store::connect(&credgate::store::DatabaseUrl::new(url))
        .await
        .unwrap();
    let issued = credgate::vault::token::issue(credgate::vault::token::TokenKind::Admin).unwrap();
    let record = credgate::vault::api_key::AdminToken {
        id: uuid::Uuid::new_v4(),
        name: "second".into(),
        scopes: vec![credgate::vault::scope::Scope::Admin],
        prefix: issued.prefix.clone(),
        hash: issued.hash.clone(),
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    let mut event = credgate::audit::AuditEvent::new(credgate::audit::AuditKind::Admin, "admin_token.create", "ok");
    event.actor = Some("system".into());
    store.insert_admin_token(&record, &event).await.unwrap();
    let mut status = StatusCode::UNAUTHORIZED;
    for _ in 0..40 {
        status =
            f.gw.http
                .get(format!("{}/admin/v1/secrets", f.gw.base))
                .bearer_auth(issued.token.expose())
                .send()
                .await
                .unwrap()
                .status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "the new token was never recognised");
}

async fn leak_fixture(extra: &[&str]) -> (Fixture, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        crate::plugins::fixtures::path("hostile-leak"),
        dir.path().join("hostile-leak.wasm"),
    )
    .unwrap();
    let mut args = vec!["--plugins-dir".to_owned(), dir.path().display().to_string()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let f = Fixture::with(Options {
        args,
        log: Some("debug".into()),
        ..Default::default()
    })
    .await;
    (f, dir)
}

#[tokio::test]
async fn plugin_text_never_reaches_the_app_or_the_audit_trail() {
    let canary = canary();
    let reversed: String = canary.chars().rev().collect();
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    let partial = canary[..canary.len() - 1].to_owned();
    let (f, _dir) = leak_fixture(&[]).await;
    let mut responses = Vec::new();
    for how in [
        "reversed",
        "hex",
        "partial",
        "header-name",
        "bad-name",
        "valid-name",
        "param-name",
    ] {
        let secret = f
            .secret(how, "hostile-leak", json!({"token": canary}), json!({"how": how}))
            .await;
        let grant = f.grant(&secret, json!({})).await;
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/x", f.up.url))).await;
        let message = r.assert_error(502, "provider_error");
        assert!(message.contains("`hostile-leak`"), "{how}: {message}");
        responses.push(shown(&r));
    }
    assert_eq!(f.up.count(), 0);
    for form in [&canary, &reversed, &hex, &partial] {
        assert_canary_nowhere(&f, form, &responses).await;
    }

    // The operator may ask for the plugin's own text in the log, to debug a template.
    let (g, _dir) = leak_fixture(&["--log-plugin-errors"]).await;
    let secret = g
        .secret(
            "r",
            "hostile-leak",
            json!({"token": canary}),
            json!({"how": "reversed"}),
        )
        .await;
    let grant = g.grant(&secret, json!({})).await;
    let r = send(g.gw.proxy(Method::GET, Some(&g.key), &grant, &format!("{}/x", g.up.url))).await;
    assert!(!shown(&r).contains(&reversed));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(g.gw.logs().contains(&reversed), "the flag logs the plugin's text");
}

#[tokio::test]
async fn an_upload_takes_over_a_bundled_provider_only_when_told_to() {
    let f = Fixture::new().await;
    let bytes = std::fs::read(crate::plugins::fixtures::path("impostor-openai")).unwrap();
    let upload = |query: &'static str| {
        f.gw.http
            .post(format!("{}/admin/v1/providers{query}", f.gw.base))
            .bearer_auth(&f.gw.admin_token)
            .header("content-type", "application/wasm")
            .body(bytes.clone())
    };
    let refused = send(upload("")).await;
    let message = refused.assert_error(409, "conflict");
    assert!(message.contains("replace_bundled=true"), "{message}");
    let shown = f.gw.get("/admin/v1/providers/openai").await;
    assert_eq!(shown.json["source"], "bundled", "nothing changed");

    let taken = send(upload("?replace_bundled=true")).await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.text);
    assert_eq!(taken.json["version"], "9.9.9");
    let audit = f.gw.get("/admin/v1/audit?limit=100").await;
    assert!(
        audit.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == "openai"
                && r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("replacing the bundled provider"))),
        "{}",
        audit.text
    );
}
