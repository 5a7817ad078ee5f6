//! The data plane end to end: a real gateway, real upstreams on loopback.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Gateway, Options, Reply};
use crate::upstream::{TestCa, Upstream};

/// A gateway, an echo upstream, an agent with a key.
pub struct Fixture {
    pub gw: Gateway,
    pub up: Upstream,
    pub agent: String,
    pub key: String,
    pub key_id: String,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let up = Upstream::start().await;
        let gw = Gateway::start_with(options).await.unwrap();
        let agent = gw.create_principal("agent", "agent").await;
        let (key_id, key) = gw.issue_key(&agent).await;
        Self {
            gw,
            up,
            agent,
            key,
            key_id,
        }
    }

    /// A secret reachable on the loopback upstream (private and http allowed).
    pub async fn secret(&self, name: &str, secret_type: &str, credential: Value, config: Value) -> String {
        let mut config = config;
        if config.get("base_url").is_none() {
            config["base_url"] = json!(self.up.url);
        }
        self.gw
            .create_secret(json!({
                "name": name, "type": secret_type, "credential": credential, "config": config,
                "allow_private_destinations": true, "allow_insecure_http": true,
            }))
            .await
    }

    pub async fn grant(&self, secret: &str, policy: Value) -> String {
        self.gw.issue_grant(secret, &self.agent, policy).await
    }

    pub async fn bearer_grant(&self) -> (String, String) {
        let secret = self
            .secret("bearer", "bearer", json!({"token": "real-upstream-token"}), json!({}))
            .await;
        let grant = self.grant(&secret, json!({})).await;
        (secret, grant)
    }
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    Reply::from(req.send().await.unwrap()).await
}

fn request_id(r: &Reply) -> String {
    r.headers["x-credgate-request-id"].to_str().unwrap().to_owned()
}

/// A refusal's log line names the request it ends: its id, and its method and path, recorded
/// on the request's span only when it fails (a call that goes through formats the id alone).
#[tokio::test]
async fn a_refusals_log_line_names_the_request_its_method_and_path() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    // No key: refused before anything else.
    let r = send(f.gw.via_grant(Method::POST, &grant, "v1/refused/here?q=1")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let id = request_id(&r);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let logs = f.gw.logs();
        if let Some(line) = logs.lines().find(|l| l.contains(&id) && l.contains("request refused")) {
            break line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged for {id}: {logs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(line.contains("method=POST"), "{line}");
    assert!(
        line.contains(&format!("path=/v1/grants/{grant}/v1/refused/here")),
        "{line}"
    );
}

#[tokio::test]
async fn bearer_arrives_alone_with_the_request_intact() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let r = send(
        f.gw.proxy(
            Method::POST,
            Some(&f.key),
            &grant,
            &format!("{}/v1/chat/completions?stream=false&x=%2F1", f.up.url),
        )
        .header("authorization", "Bearer something-the-app-had")
        .header("content-type", "application/json")
        .header("x-custom", "kept")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .header("x-credgate-something", "dropped")
        .body(r#"{"model":"m","messages":[]}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.headers.contains_key("x-credgate-request-id"));
    let seen = f.up.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.query.as_deref(), Some("stream=false&x=%2F1"));
    assert_eq!(seen.body, br#"{"model":"m","messages":[]}"#);
    assert_eq!(seen.header_count("authorization"), 1, "exactly one credential");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Bearer real-upstream-token")
    );
    assert_eq!(seen.header("x-custom").as_deref(), Some("kept"));
    assert_eq!(seen.header("content-type").as_deref(), Some("application/json"));
    for gone in [
        "proxy-authorization",
        "x-credgate-grant",
        "x-credgate-target",
        "x-credgate-something",
        "x-hop",
    ] {
        assert!(seen.header(gone).is_none(), "{gone} reached the upstream");
    }
    assert!(
        !format!("{:?}", seen.headers).contains(&f.key),
        "the app key never reaches the upstream"
    );
}

#[tokio::test]
async fn api_key_header_format_and_query_and_basic() {
    let f = Fixture::new().await;
    let header = f
        .secret(
            "h",
            "api_key",
            json!({"token": "k-123"}),
            json!({"header": "Authorization", "format": "Token token={token}"}),
        )
        .await;
    let custom = f
        .secret(
            "x",
            "api_key",
            json!({"token": "k-456"}),
            json!({"header": "x-api-key"}),
        )
        .await;
    let query = f
        .secret(
            "q",
            "api_key",
            json!({"token": "k 7&8"}),
            json!({"query_param": "api_key"}),
        )
        .await;
    let basic = f
        .secret(
            "b",
            "basic",
            json!({"username": "api", "password": "p@ss:word"}),
            json!({}),
        )
        .await;
    let cases = [
        (header, vec![("authorization", "Token token=k-123")], None),
        (custom, vec![("x-api-key", "k-456")], None),
        (basic, vec![("authorization", "Basic YXBpOnBAc3M6d29yZA==")], None),
        (query, vec![], Some("q=1&api_key=k%207%268")),
    ];
    for (secret, headers, expected_query) in cases {
        let grant = f.grant(&secret, json!({})).await;
        let target = format!("{}/echo?q=1&api_key=app-sent-this", f.up.url);
        let r = send(
            f.gw.proxy(Method::GET, Some(&f.key), &grant, &target)
                .header("x-api-key", "app-sent")
                .header("authorization", "app-sent"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let seen = f.up.last();
        for (name, value) in &headers {
            assert_eq!(seen.header_count(name), 1, "{name}");
            assert_eq!(seen.header(name).as_deref(), Some(*value));
        }
        if let Some(q) = expected_query {
            assert_eq!(
                seen.query.as_deref(),
                Some(q),
                "the app's own api_key is replaced, other params kept"
            );
            let records = f.gw.audit_of(&request_id(&r)).await;
            let path = records[0]["path"].as_str().unwrap();
            assert!(
                path.contains("api_key=[REDACTED]") && !path.contains("k 7") && !path.contains("k+7"),
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn base_url_mode_takes_the_key_from_the_sdk_slot() {
    let f = Fixture::new().await;
    let secret = f
        .secret(
            "openai",
            "bearer",
            json!({"token": "sk-real"}),
            json!({"base_url": format!("{}/v1", f.up.url)}),
        )
        .await;
    let grant = f.grant(&secret, json!({})).await;
    // As the OpenAI SDK sends it: its api_key (here the app key) as a bearer token.
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "chat/completions?a=b")
            .bearer_auth(&f.key)
            .json(&json!({"model": "x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seen = f.up.last();
    assert_eq!(
        (seen.path.as_str(), seen.query.as_deref()),
        ("/v1/chat/completions", Some("a=b"))
    );
    assert_eq!(seen.header("authorization").as_deref(), Some("Bearer sk-real"));
    // In an x-api-key slot, for an api_key secret.
    let anthropic = f
        .secret(
            "anthropic",
            "api_key",
            json!({"token": "ant-real"}),
            json!({"header": "x-api-key"}),
        )
        .await;
    let grant = f.grant(&anthropic, json!({})).await;
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "/v1/messages")
            .header("x-api-key", &f.key)
            .body("{}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(f.up.last().header("x-api-key").as_deref(), Some("ant-real"));
    // And with Proxy-Authorization, in the root of the base URL.
    let r = send(
        f.gw.via_grant(Method::GET, &grant, "")
            .header("proxy-authorization", format!("Bearer {}", f.key)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(f.up.last().path, "/");
    // Dot segments cannot climb out of the base path (sent raw: a client would resolve them).
    for path in ["a/../../admin", "a/%2e%2e/%2E%2E/admin", "a/%2F..%2Fadmin"] {
        let before = f.up.count();
        let raw = crate::support::raw_http(
            &f.gw.base,
            &format!(
                "GET /v1/grants/{grant}/{path} HTTP/1.1\r\nHost: x\r\nx-api-key: {}\r\nConnection: close\r\n\r\n",
                f.key
            ),
        );
        assert!(raw.starts_with("HTTP/1.1 400"), "{path}: {raw}");
        assert!(raw.contains("bad_request"));
        assert_eq!(f.up.count(), before);
    }
}

#[tokio::test]
async fn upstream_errors_and_redirects_pass_through_untouched() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/status/503", f.up.url))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text, r#"{"upstream":"error"}"#);
    assert!(
        r.headers.get("x-credgate-error").is_none(),
        "an upstream error is not credgate's"
    );

    let other = Upstream::start().await;
    let to = format!("{}/stolen", other.url);
    let r = send(f.gw.proxy(
        Method::GET,
        Some(&f.key),
        &grant,
        &format!("{}/redirect?to={to}", f.up.url),
    ))
    .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    assert_eq!(r.headers["location"], to.as_str());
    assert_eq!(
        other.count(),
        0,
        "the redirect was not followed; the other host saw nothing"
    );
}

#[tokio::test]
async fn every_refusal_has_its_code_an_audit_record_and_no_upstream_call() {
    // A port nothing listens on. Not one bound and let go: a test running beside this one may
    // be given it for its own server meanwhile.
    let up_down = "127.0.0.1:9";
    let f = Fixture::with(Options {
        args: vec![
            "--upstream-first-byte-timeout".into(),
            "1".into(),
            "--max-body-bytes".into(),
            "1000".into(),
        ],
        ..Default::default()
    })
    .await;
    let (secret, grant) = f.bearer_grant().await;
    let target = format!("{}/ok", f.up.url);

    let other = f.gw.create_principal("agent", "other").await;
    let (_, other_key) = f.gw.issue_key(&other).await;
    let (revoked_key_id, revoked_key) = f.gw.issue_key(&f.agent).await;
    f.gw.delete(&format!("/admin/v1/keys/{revoked_key_id}")).await;
    let expiring = f.grant(&secret, json!({"ttl_seconds": 1})).await;
    let revoked = f.grant(&secret, json!({})).await;
    f.gw.delete(&format!("/admin/v1/grants/{revoked}")).await;
    let narrow = f
        .grant(
            &secret,
            json!({"allowed_methods": ["GET"], "allowed_path_prefixes": ["/v1/models"]}),
        )
        .await;
    let https_only =
        f.gw.create_secret(json!({"name": "strict", "type": "bearer", "credential": {"token": "t"},
        "allowed_hosts": [f.up.host_port()], "allow_private_destinations": true}))
            .await;
    let https_only = f.grant(&https_only, json!({})).await;
    let down = f
        .secret(
            "down",
            "bearer",
            json!({"token": "t"}),
            json!({"base_url": format!("http://{up_down}")}),
        )
        .await;
    let down = f.grant(&down, json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let ghost = uuid::Uuid::new_v4().to_string();
    let bad_key = format!("{}x", &f.key[..f.key.len() - 1]);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "no key",
            f.gw.proxy(Method::GET, None, &grant, &target),
            401,
            "unauthenticated",
        ),
        (
            "bad key",
            f.gw.proxy(Method::GET, Some(&bad_key), &grant, &target),
            401,
            "unauthenticated",
        ),
        (
            "revoked key",
            f.gw.proxy(Method::GET, Some(&revoked_key), &grant, &target),
            401,
            "unauthenticated",
        ),
        (
            "unknown grant",
            f.gw.proxy(Method::GET, Some(&f.key), &ghost, &target),
            404,
            "grant_not_found",
        ),
        (
            "malformed grant",
            f.gw.proxy(Method::GET, Some(&f.key), "nope", &target),
            404,
            "grant_not_found",
        ),
        (
            "another principal's grant",
            f.gw.proxy(Method::GET, Some(&other_key), &grant, &target),
            403,
            "forbidden",
        ),
        (
            "expired",
            f.gw.proxy(Method::GET, Some(&f.key), &expiring, &target),
            403,
            "grant_expired",
        ),
        (
            "revoked",
            f.gw.proxy(Method::GET, Some(&f.key), &revoked, &target),
            403,
            "grant_revoked",
        ),
        (
            "method",
            f.gw.proxy(Method::POST, Some(&f.key), &narrow, &format!("{}/v1/models", f.up.url)),
            403,
            "policy_violation",
        ),
        (
            "path",
            f.gw.proxy(Method::GET, Some(&f.key), &narrow, &format!("{}/v1/modelsx", f.up.url)),
            403,
            "policy_violation",
        ),
        (
            "host",
            f.gw.proxy(Method::GET, Some(&f.key), &grant, "http://127.0.0.2:1/x"),
            403,
            "blocked_destination",
        ),
        (
            "http not allowed",
            f.gw.proxy(Method::GET, Some(&f.key), &https_only, &target),
            403,
            "blocked_destination",
        ),
        (
            "no target",
            f.gw.http
                .get(format!("{}/v1/proxy", f.gw.base))
                .header("proxy-authorization", format!("Bearer {}", f.key))
                .header("x-credgate-grant", &grant),
            400,
            "bad_request",
        ),
        (
            "body too large",
            f.gw.proxy(Method::POST, Some(&f.key), &grant, &target)
                .body(vec![b'x'; 2000]),
            413,
            "payload_too_large",
        ),
    ];
    for (what, req, status, code) in cases {
        let before = f.up.count();
        let r = send(req).await;
        r.assert_error(status, code);
        assert_eq!(f.up.count(), before, "{what}: the upstream saw nothing");
        let records = f.gw.audit_of(&request_id(&r)).await;
        assert_eq!(records.len(), 1, "{what}: one audit record");
        assert_eq!(records[0]["outcome"], code, "{what}");
        assert_eq!(records[0]["action"], "proxy.request");
        assert!(
            records[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: the record says why"
        );
    }

    // Upstream failures: after the credential left, so the call's record is a `proxy.response`.
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &down, &format!("http://{up_down}/x"))).await;
    r.assert_error(502, "upstream_unreachable");
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/slow?ms=3000", f.up.url))).await;
    r.assert_error(504, "upstream_timeout");
    let records = f.gw.audit_of(&request_id(&r)).await;
    let recorded: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(recorded, [("proxy.response", "upstream_timeout")]);

    // A chunked body that grows past the limit is cut off.
    let chunks = futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 100])));
    let r = send(
        f.gw.proxy(Method::POST, Some(&f.key), &grant, &format!("{}/drain", f.up.url))
            .body(reqwest::Body::wrap_stream(chunks)),
    )
    .await;
    r.assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn group_members_may_use_the_groups_grants() {
    let f = Fixture::new().await;
    let team = f.gw.create_principal("group", "team").await;
    let secret = f.secret("s", "bearer", json!({"token": "t"}), json!({})).await;
    let grant = f.gw.issue_grant(&secret, &team, json!({})).await;
    let target = format!("{}/x", f.up.url);
    send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target))
        .await
        .assert_error(403, "forbidden");
    f.gw.post(
        &format!("/admin/v1/principals/{team}/members"),
        json!({"member_id": f.agent}),
    )
    .await;
    assert_eq!(
        send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target))
            .await
            .status,
        StatusCode::OK
    );
    f.gw.delete(&format!("/admin/v1/principals/{team}/members/{}", f.agent))
        .await;
    send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target))
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn changes_hold_from_the_very_next_request() {
    let f = Fixture::new().await;
    let (secret, grant) = f.bearer_grant().await;
    let target = format!("{}/x", f.up.url);
    let call = || send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target));
    assert_eq!(call().await.status, StatusCode::OK);
    // Rotation: same grant id, new value on the next call.
    let rotated =
        f.gw.post(
            &format!("/admin/v1/secrets/{secret}/rotate"),
            json!({"credential": {"token": "rotated-token"}}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(call().await.status, StatusCode::OK);
    assert_eq!(
        f.up.last().header("authorization").as_deref(),
        Some("Bearer rotated-token")
    );
    // Key revocation.
    f.gw.delete(&format!("/admin/v1/keys/{}", f.key_id)).await;
    call().await.assert_error(401, "unauthenticated");
    let (_, key) = f.gw.issue_key(&f.agent).await;
    assert_eq!(
        send(f.gw.proxy(Method::GET, Some(&key), &grant, &target)).await.status,
        StatusCode::OK
    );
    // Grant revocation.
    f.gw.delete(&format!("/admin/v1/grants/{grant}")).await;
    send(f.gw.proxy(Method::GET, Some(&key), &grant, &target))
        .await
        .assert_error(403, "grant_revoked");
    // Secret deletion.
    let g2 = f.grant(&secret, json!({})).await;
    assert_eq!(
        send(f.gw.proxy(Method::GET, Some(&key), &g2, &target)).await.status,
        StatusCode::OK
    );
    f.gw.delete(&format!("/admin/v1/secrets/{secret}")).await;
    send(f.gw.proxy(Method::GET, Some(&key), &g2, &target))
        .await
        .assert_error(403, "grant_revoked");
}

#[tokio::test]
async fn ssrf_forms_are_blocked_before_any_connection() {
    let f = Fixture::new().await;
    let forms = [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "100.64.0.1",
        "[fd00::1]",
        "[fe80::1]",
        "0.0.0.0",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "localhost",
        "LOCALHOST.",
    ];
    let allowed: Vec<String> = forms
        .iter()
        .map(|f| {
            let url = url::Url::parse(&format!("https://{f}/")).unwrap();
            credgate::vault::host::normalise_host(&url.host().unwrap())
                .map(|h| if h.contains(':') { format!("[{h}]") } else { h })
                .unwrap()
        })
        .collect();
    let secret =
        f.gw.create_secret(
            json!({"name": "ssrf", "type": "bearer", "credential": {"token": "t"}, "allowed_hosts": allowed}),
        )
        .await;
    let grant = f.grant(&secret, json!({})).await;
    for form in forms {
        let r = send(f.gw.proxy(
            Method::GET,
            Some(&f.key),
            &grant,
            &format!("https://{form}/latest/meta-data"),
        ))
        .await;
        let message = r.assert_error(403, "blocked_destination");
        assert!(
            message.contains("address") || message.contains("allowed"),
            "{form}: {message}"
        );
    }
    // Userinfo tricks do not move the host: the host here is 127.0.0.1, not allowed-looking.
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, "https://api.example.com@127.0.0.1/")).await;
    r.assert_error(403, "blocked_destination");
}

#[tokio::test]
async fn credential_with_crlf_is_refused_at_injection() {
    let f = Fixture::new().await;
    let secret = f
        .secret("crlf", "bearer", json!({"token": "abc\r\nX-Injected: 1"}), json!({}))
        .await;
    let grant = f.grant(&secret, json!({})).await;
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/x", f.up.url))).await;
    let message = r.assert_error(502, "provider_error");
    assert!(message.contains("CR, LF"), "{message}");
    assert!(!message.contains("abc"));
    assert_eq!(f.up.count(), 0);
}

#[tokio::test]
async fn server_sent_events_arrive_as_they_are_sent() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let response =
        f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/sse-gated", f.up.url))
            .send()
            .await
            .unwrap();
    assert_events_arrive_as_sent(response, &f.up).await;
}

/// `/sse-gated`'s events arrive one by one: the upstream holds the rest of the stream until
/// the first event has arrived here, so a gateway that buffered would never deliver it and
/// the wait would time out.
pub async fn assert_events_arrive_as_sent(response: reqwest::Response, up: &Upstream) {
    use futures_util::StreamExt;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
        .await
        .expect("first event while the upstream is still sending");
    assert_eq!(first.unwrap().unwrap(), "data: first\n\n");
    up.open_gate();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
        .await
        .unwrap()
    {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(String::from_utf8(rest).unwrap(), "data: second\n\ndata: [DONE]\n\n");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn large_transfers_stream_with_flat_memory() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let pid = f.gw.pid();
    // Warm up the connection pools and allocator.
    let _ = send(f.gw.proxy(
        Method::GET,
        Some(&f.key),
        &grant,
        &format!("{}/bytes?n=1048576", f.up.url),
    ))
    .await;
    let before = rss_kib(pid);
    let total: u64 = 256 * 1024 * 1024;
    let response =
        f.gw.proxy(
            Method::GET,
            Some(&f.key),
            &grant,
            &format!("{}/bytes?n={total}", f.up.url),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-length"], total.to_string().as_str());
    let mut stream = response.bytes_stream();
    use futures_util::StreamExt;
    let mut received = 0u64;
    let mut peak = before;
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len() as u64;
        if received % (16 * 1024 * 1024) < 65536 {
            peak = peak.max(rss_kib(pid));
        }
    }
    assert_eq!(received, total);
    // Streaming, not buffering: the gateway's memory does not grow with the body (256 MiB).
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "gateway RSS grew from {before} KiB to {peak} KiB"
    );

    // An upload of the same size streams too (with a known length, sent on as Content-Length).
    let before = rss_kib(pid);
    let chunks = futures_util::stream::iter((0..256).map(|_| Ok::<_, std::io::Error>(vec![b'u'; 1024 * 1024])));
    let f2 = Fixture::with(Options {
        args: vec!["--max-body-bytes".into(), (1u64 << 30).to_string()],
        ..Default::default()
    })
    .await;
    let (_, grant2) = f2.bearer_grant().await;
    let body = reqwest::Body::wrap_stream(chunks);
    let r = send(
        f2.gw
            .proxy(Method::PUT, Some(&f2.key), &grant2, &format!("{}/drain", f2.up.url))
            .header("content-length", total.to_string())
            .body(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seen = f2.up.last();
    assert_eq!(String::from_utf8(seen.body.clone()).unwrap(), total.to_string());
    assert_eq!(
        seen.header("content-length").as_deref(),
        Some(total.to_string().as_str())
    );
    let _ = before;
}

#[tokio::test]
async fn https_upstream_verified_with_the_operators_ca() {
    let ca = TestCa::new();
    let up = Upstream::start_tls(&ca).await;
    let trusted = Gateway::start_with(Options {
        args: vec!["--upstream-ca-file".into(), ca.ca_file.display().to_string()],
        ..Default::default()
    })
    .await
    .unwrap();
    let untrusted = Gateway::start().await;
    for (gw, expect_ok) in [(&trusted, true), (&untrusted, false)] {
        let agent = gw.create_principal("agent", "a").await;
        let (_, key) = gw.issue_key(&agent).await;
        // https, no insecure switch; loopback needs the private switch only.
        let secret = gw
            .create_secret(
                json!({"name": "tls", "type": "bearer", "credential": {"token": "tls-token"},
            "config": {"base_url": up.url}, "allow_private_destinations": true}),
            )
            .await;
        let grant = gw.issue_grant(&secret, &agent, json!({})).await;
        let before = up.count();
        let r = send(gw.proxy(Method::GET, Some(&key), &grant, &format!("{}/secure", up.url))).await;
        if expect_ok {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert_eq!(up.last().header("authorization").as_deref(), Some("Bearer tls-token"));
        } else {
            r.assert_error(502, "upstream_unreachable");
            assert_eq!(
                up.count(),
                before,
                "no request, so no credential, reached the untrusted upstream"
            );
        }
    }
}

#[tokio::test]
async fn the_gateway_serves_tls_itself() {
    let ca = TestCa::new();
    let gw = Gateway::start_with(Options {
        args: vec![
            "--tls-cert".into(),
            ca.cert_file.display().to_string(),
            "--tls-key".into(),
            ca.key_file.display().to_string(),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let root = reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_file).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([root])
        .build()
        .unwrap();
    let port = gw.base.rsplit(':').next().unwrap();
    let r = client
        .get(format!("https://localhost:{port}/admin/v1/principals"))
        .bearer_auth(&gw.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let plain = reqwest::get(format!("http://localhost:{port}/healthz")).await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain http is not served on a TLS listener"
    );
}

#[tokio::test]
async fn calls_are_audited_and_counted() {
    let f = Fixture::new().await;
    let (secret, grant) = f.bearer_grant().await;
    let unused = f.gw.get(&format!("/admin/v1/secrets/{secret}")).await;
    assert_eq!(unused.json["last_used_at"], Value::Null, "{}", unused.text);
    let r = send(
        f.gw.proxy(Method::POST, Some(&f.key), &grant, &format!("{}/v1/x?y=1", f.up.url))
            .body("hello"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let records = f.gw.audit_n(&request_id(&r), 1).await;
    // The list and the secret both say when its credential was last used: at the call.
    let list = f.gw.get("/admin/v1/secrets").await;
    let listed = list.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == secret.as_str())
        .unwrap();
    assert_eq!(listed["last_used_at"], records[0]["at"], "{listed}");
    assert_eq!(
        f.gw.get(&format!("/admin/v1/secrets/{secret}")).await.json["last_used_at"],
        records[0]["at"]
    );
    // One record per call, written when its response ended.
    assert_eq!(records.len(), 1, "{records:?}");
    let res = &records[0];
    assert_eq!(
        (res["action"].as_str(), res["outcome"].as_str()),
        (Some("proxy.response"), Some("ok"))
    );
    {
        let record = res;
        assert_eq!(record["kind"], "proxy");
        assert_eq!(record["grant_id"], grant.as_str());
        assert_eq!(record["secret_id"], secret.as_str());
        assert_eq!(record["principal_id"], f.agent.as_str());
        assert_eq!(record["key_id"], f.key_id.as_str());
        assert_eq!(record["secret_version"], 1);
        assert_eq!(record["provider"], "bearer");
        assert_eq!(record["method"], "POST");
        assert_eq!(record["host"], "127.0.0.1");
        assert_eq!(record["path"], "/v1/x?y=1");
    }
    assert_eq!(res["status"], 200);
    assert_eq!(res["bytes_in"], 5);
    assert!(res["bytes_out"].as_u64().unwrap() > 0);
    assert!(res["latency_ms"].as_f64().is_some() && res["upstream_latency_ms"].as_f64().is_some());
    let metrics = f.gw.metrics().await;
    assert!(
        metrics.contains(r#"credgate_calls_total{outcome="ok",provider="bearer"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("credgate_injection_duration_seconds_bucket"));
    assert!(metrics.contains("credgate_audit_queue_depth"));
    assert!(!metrics.contains("real-upstream-token"));
    assert_eq!(f.gw.get("/admin/v1/audit/verify").await.json["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_audit_record_of_an_answered_call() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let target = format!("{}/ok", f.up.url);
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let req = f.gw.proxy(Method::GET, Some(&f.key), &grant, &target);
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            // Bounded: at most 400 calls per worker; the kill ends it sooner.
            for _ in 0..400 {
                let Some(attempt) = req.try_clone() else { break };
                match attempt.send().await {
                    Ok(r) if r.status() == StatusCode::OK => {
                        let id = r.headers()["x-credgate-request-id"].to_str().unwrap().to_owned();
                        if r.bytes().await.is_ok() {
                            answered.lock().unwrap().push(id);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }));
    }
    // Kill while calls are in flight.
    while answered.lock().unwrap().len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut gw = f.gw;
    let data_dir = gw.data_dir.clone();
    gw.kill();
    for w in workers {
        let _ = w.await;
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 200);

    let restarted = Gateway::start_with(Options {
        data_dir: Some(data_dir),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut recorded = std::collections::HashSet::new();
    let mut before: Option<i64> = None;
    loop {
        let page = match before {
            Some(b) => {
                restarted
                    .get(&format!("/admin/v1/audit?action=proxy.response&limit=1000&before={b}"))
                    .await
            }
            None => restarted.get("/admin/v1/audit?action=proxy.response&limit=1000").await,
        };
        for record in page.json["data"].as_array().unwrap() {
            recorded.insert(record["request_id"].as_str().unwrap().to_owned());
        }
        match page.json["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let missing: Vec<&String> = answered.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls have no audit record",
        missing.len(),
        answered.len()
    );
    let verify = restarted.get("/admin/v1/audit/verify").await;
    assert_eq!(verify.json["ok"], true, "{}", verify.text);
    drop(gw);
}

#[tokio::test]
async fn the_canary_never_leaves_through_the_data_plane() {
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let f = Fixture::with(Options {
        log: Some("debug".into()),
        args: vec!["--upstream-first-byte-timeout".into(), "1".into()],
        ..Default::default()
    })
    .await;
    // A port nothing listens on (not one bound and let go, which a test beside this one may be
    // given meanwhile).
    let down = "127.0.0.1:9";
    let mut responses: Vec<String> = Vec::new();
    let mut keep = |r: &Reply| responses.push(format!("{:?}\n{}", r.headers, r.text));

    let bearer = f.secret("c1", "bearer", json!({"token": canary}), json!({})).await;
    let query = f
        .secret("c2", "api_key", json!({"token": canary}), json!({"query_param": "key"}))
        .await;
    let crlf = f
        .secret(
            "c3",
            "bearer",
            json!({"token": format!("{canary}\r\nX-Evil: 1")}),
            json!({}),
        )
        .await;
    let basic = f
        .secret("c4", "basic", json!({"username": "u", "password": canary}), json!({}))
        .await;
    let unreachable = f
        .secret(
            "c5",
            "api_key",
            json!({"token": canary}),
            json!({"query_param": "key", "base_url": format!("http://{down}")}),
        )
        .await;
    let other = f.gw.create_principal("agent", "intruder").await;
    let (_, other_key) = f.gw.issue_key(&other).await;
    for secret in [&bearer, &query, &crlf, &basic, &unreachable] {
        let grant = f
            .grant(secret, json!({"allowed_path_prefixes": ["/status", "/slow"]}))
            .await;
        let base = if secret == &unreachable {
            format!("http://{down}")
        } else {
            f.up.url.clone()
        };
        for (key, path) in [
            (f.key.as_str(), "/status/200?x=1"),
            (f.key.as_str(), "/status/500"),
            (f.key.as_str(), "/slow?ms=2000"),
            (f.key.as_str(), "/forbidden-path"),
            (other_key.as_str(), "/status/200"),
        ] {
            keep(&send(f.gw.proxy(Method::GET, Some(key), &grant, &format!("{base}{path}"))).await);
        }
        keep(&send(f.gw.via_grant(Method::GET, &grant, "status/200").bearer_auth(&f.key)).await);
    }
    // Every upstream answer here is the upstream's fixed text, never an echo of the headers.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let audit = f.gw.get("/admin/v1/audit?limit=10000").await;
    keep(&audit);
    assert!(audit.text.contains("key=[REDACTED]"));
    let metrics = f.gw.metrics().await;
    for (i, text) in responses.iter().enumerate() {
        assert!(!text.contains(&canary), "response {i} holds the canary: {text}");
    }
    assert!(!metrics.contains(&canary));
    let logs = f.gw.logs();
    assert!(logs.contains("DEBUG"));
    assert!(!logs.contains(&canary), "the logs hold the canary");
    crate::support::assert_no_file_holds(&f.gw.data_dir, &canary, "the canary");
    // The upstream did receive it, in the right places: that is the point.
    assert!(
        f.up.seen()
            .iter()
            .any(|s| s.header("authorization").as_deref() == Some(&format!("Bearer {canary}")))
    );
}

#[tokio::test]
async fn a_caller_that_disconnects_cancels_the_upstream_call() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    let response =
        f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/sse-gated", f.up.url))
            .send()
            .await
            .unwrap();
    let id = response.headers()["x-credgate-request-id"].to_str().unwrap().to_owned();
    let mut stream = response.bytes_stream();
    use futures_util::StreamExt;
    assert_eq!(stream.next().await.unwrap().unwrap(), "data: first\n\n");
    drop(stream);
    // The stream never ended upstream (its gate stays shut): credgate records the call as
    // abandoned once the caller is gone, which is when it drops the upstream connection.
    let records = f.gw.audit_n(&id, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "proxy.response");
    assert_eq!(records[0]["outcome"], "abandoned");
}

#[tokio::test]
async fn an_upstream_that_pauses_past_the_idle_timeout_is_cut_off() {
    let f = Fixture::with(Options {
        args: vec!["--upstream-idle-timeout".into(), "1".into()],
        ..Default::default()
    })
    .await;
    let (_, grant) = f.bearer_grant().await;
    let response =
        f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/sse-gated", f.up.url))
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["x-credgate-request-id"].to_str().unwrap().to_owned();
    let mut stream = response.bytes_stream();
    use futures_util::StreamExt;
    assert_eq!(stream.next().await.unwrap().unwrap(), "data: first\n\n");
    // The upstream's gate stays shut: after a second of silence credgate ends the response
    // with an error instead of holding the caller (and a slot in flight) for as long as the
    // upstream likes.
    let cut = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .expect("credgate ends a stalled stream by itself");
    assert!(
        matches!(cut, Some(Err(_))),
        "the caller sees the stream fail, not end cleanly: {cut:?}"
    );
    let records = f.gw.audit_n(&id, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "proxy.response");
    assert_eq!(records[0]["outcome"], "upstream_error");
    assert_eq!(records[0]["status"], 200);
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_times_out_as_a_connection() {
    // The kernel completes the TCP handshake on this socket's backlog, but nothing ever
    // answers the TLS ClientHello: the connect timeout covers the TLS handshake too, long
    // before the 300 s first-byte timeout would.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let f = Fixture::with(Options {
        args: vec!["--upstream-connect-timeout".into(), "1".into()],
        ..Default::default()
    })
    .await;
    let secret = f
        .secret(
            "silent",
            "bearer",
            json!({"token": "t"}),
            json!({"base_url": format!("https://{addr}")}),
        )
        .await;
    let grant = f.grant(&secret, json!({})).await;
    let started = std::time::Instant::now();
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("https://{addr}/x"))).await;
    r.assert_error(504, "upstream_timeout");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "answered by the connect timeout, not the first-byte one"
    );
    let records = f.gw.audit_of(&request_id(&r)).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "proxy.response");
    assert_eq!(records[0]["outcome"], "upstream_timeout");
    drop(silent);
}

#[tokio::test]
async fn a_caller_that_leaves_before_the_upstream_answers_leaves_one_abandoned_record() {
    let f = Fixture::new().await;
    let (_, grant) = f.bearer_grant().await;
    // The credential has left when the caller gives up: the call must still have its record.
    let gave_up =
        f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/slow?ms=1500", f.up.url))
            .timeout(std::time::Duration::from_millis(300))
            .send()
            .await;
    assert!(gave_up.is_err(), "the caller gives up first");
    let mut records = Vec::new();
    for _ in 0..100 {
        let r = f.gw.get(&format!("/admin/v1/audit?grant_id={grant}&kind=proxy")).await;
        records = r.json["data"].as_array().cloned().unwrap_or_default();
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "proxy.response");
    assert_eq!(records[0]["outcome"], "abandoned", "{records:?}");
    assert!(
        records[0]["message"].as_str().is_some_and(|m| m.contains("went away")),
        "{records:?}"
    );
    let verify = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(verify.json["ok"], true, "{}", verify.text);
}

/// A fixture whose gateway runs on a fresh PostgreSQL database (and that database's URL), or
/// `None` where PostgreSQL is explicitly skipped.
async fn on_fresh_postgres(args: &[&str]) -> Option<(Fixture, String)> {
    if crate::support::postgres_skipped() {
        return None;
    }
    let url = crate::support::fresh_postgres_url().await;
    let f = Fixture::with(Options {
        database_url: Some(url.clone()),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    })
    .await;
    Some((f, url))
}

/// Makes every further audit insert into `url`'s database fail, as a full disk or a revoked
/// privilege would; the returned pool lifts it with [`database_accepts_audit`].
async fn database_refuses_audit(url: &str) -> sqlx::PgPool {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::raw_sql("ALTER TABLE audit_events ADD CONSTRAINT audit_refused CHECK (false) NOT VALID")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

async fn database_accepts_audit(pool: &sqlx::PgPool) {
    sqlx::raw_sql("ALTER TABLE audit_events DROP CONSTRAINT audit_refused")
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn calls_are_refused_once_the_audit_backlog_is_full_and_resume_by_themselves() {
    // Four events: two calls' worth (a record before forwarding, one at the end).
    let Some((f, url)) = on_fresh_postgres(&["--audit-queue", "4"]).await else {
        return;
    };
    let (_, grant) = f.bearer_grant().await;
    let target = format!("{}/x", f.up.url);
    assert_eq!(
        send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target))
            .await
            .status,
        StatusCode::OK
    );
    // Reading the trail waits for the indexer: nothing is pending from here.
    let trail = f.gw.get("/admin/v1/audit").await;
    assert!(trail.json["data"].as_array().unwrap().len() >= 2, "{}", trail.text);
    let pool = database_refuses_audit(&url).await;

    // The journal takes the records while the database refuses them, until the backlog is
    // full; then calls are refused before the credential leaves.
    let mut answered = Vec::new();
    let mut refused = false;
    for _ in 0..10 {
        let before = f.up.count();
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target)).await;
        if r.status == StatusCode::OK {
            answered.push(request_id(&r));
            continue;
        }
        r.assert_error(503, "audit_unavailable");
        assert_eq!(r.headers["retry-after"], "1");
        assert_eq!(f.up.count(), before, "the credential never left");
        refused = true;
        break;
    }
    assert!(refused, "a full audit backlog refuses calls");
    assert!(!answered.is_empty() && answered.len() <= 4, "{answered:?}");

    // The indexer meets the refusal (and keeps retrying)...
    let mut counted = false;
    for _ in 0..100 {
        if !f.gw.metrics().await.contains("credgate_audit_index_errors_total 0") {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(counted, "the database's refusals are counted");
    // ...until the database comes back: it catches up by itself and calls go through again.
    database_accepts_audit(&pool).await;
    let mut resumed = false;
    for _ in 0..100 {
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target)).await;
        if r.status == StatusCode::OK {
            resumed = true;
            break;
        }
        r.assert_error(503, "audit_unavailable");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(resumed, "calls resume once the database takes writes again");
    for id in &answered {
        let records = f.gw.audit_n(id, 1).await;
        assert_eq!(
            records.len(),
            1,
            "the call answered during the outage is audited: {records:?}"
        );
        assert_eq!(records[0]["action"], "proxy.response");
        assert_eq!(records[0]["outcome"], "ok");
    }
    let verify = f.gw.get("/admin/v1/audit/verify").await;
    assert_eq!(verify.json["ok"], true, "{}", verify.text);
    // The refusals are counted, as calls and as records the trail could not take.
    let metrics = f.gw.metrics().await;
    assert!(
        metrics.contains(r#"credgate_calls_total{outcome="audit_unavailable",provider="none"}"#),
        "{metrics}"
    );
    assert!(!metrics.contains("credgate_audit_failures_total 0"), "{metrics}");
}

#[tokio::test]
async fn calls_journaled_during_an_outage_are_indexed_after_a_crash() {
    let Some((f, url)) = on_fresh_postgres(&[]).await else {
        return;
    };
    let (_, grant) = f.bearer_grant().await;
    let target = format!("{}/x", f.up.url);
    let pool = database_refuses_audit(&url).await;
    let mut answered = Vec::new();
    for _ in 0..5 {
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &target)).await;
        assert_eq!(r.status, StatusCode::OK, "the journal takes the records: {}", r.text);
        answered.push(request_id(&r));
    }
    // Killed with every one of those records journaled and none in the database.
    let mut gw = f.gw;
    let data_dir = gw.data_dir.clone();
    gw.kill();
    database_accepts_audit(&pool).await;

    let restarted = Gateway::start_with(Options {
        data_dir: Some(data_dir.clone()),
        database_url: Some(url),
        ..Default::default()
    })
    .await
    .unwrap();
    for id in &answered {
        // Its outcome, or (if the kill came between the answer and the outcome's line) its
        // opening, chained as interrupted: journaled before the kill, indexed at the restart.
        let records = restarted.audit_n(id, 1).await;
        assert_eq!(records.len(), 1, "indexed exactly once: {records:?}");
        assert_eq!(records[0]["action"], "proxy.response", "{records:?}");
        assert!(
            records[0]["outcome"] == "ok" || records[0]["outcome"] == "interrupted",
            "{records:?}"
        );
    }
    let verify = restarted.get("/admin/v1/audit/verify").await;
    assert_eq!(verify.json["ok"], true, "{}", verify.text);
    // Indexed segments are deleted: only the restarted gateway's own is left.
    let segments = std::fs::read_dir(data_dir.join("audit-journal"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".jsonl"))
        .count();
    assert_eq!(segments, 1);
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let f = Fixture::with(Options {
        args: vec!["--log-format".into(), "json".into()],
        log: Some("debug".into()),
        ..Default::default()
    })
    .await;
    let (_, grant) = f.bearer_grant().await;
    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, "http://127.0.0.2:1/x")).await;
    r.assert_error(403, "blocked_destination");
    let id = request_id(&r);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let lines: Vec<Value> =
        f.gw.logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
    assert!(lines.len() > 3, "log lines are JSON objects");
    let refusal = lines
        .iter()
        .find(|l| l["code"] == "blocked_destination")
        .expect("the refusal is logged");
    assert_eq!(refusal["span"]["request_id"], id.as_str());
}

#[tokio::test]
async fn past_the_in_flight_limit_calls_are_shed_fast_and_service_recovers() {
    use futures_util::StreamExt;
    let f = Fixture::with(Options {
        args: vec!["--max-in-flight".into(), "2".into()],
        ..Options::default()
    })
    .await;
    let (_, grant) = f.bearer_grant().await;
    let open = || async {
        let response =
            f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/sse-gated", f.up.url))
                .send()
                .await
                .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut stream = response.bytes_stream();
        assert_eq!(stream.next().await.unwrap().unwrap(), "data: first\n\n");
        stream
    };
    // Two streaming calls hold both permits until their responses end.
    let first = open().await;
    let _second = open().await;
    assert_eq!(f.up.count(), 2);

    let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/shed", f.up.url))).await;
    r.assert_error(503, "overloaded");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(f.up.count(), 2, "a shed call never reaches the upstream");
    let metrics = f.gw.metrics().await;
    assert!(
        metrics.contains(r#"credgate_calls_total{outcome="overloaded",provider="none"} 1"#),
        "{metrics}"
    );

    // When one stream ends its permit returns, and the next call goes through.
    drop(first);
    let mut answered = None;
    for _ in 0..100 {
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/after", f.up.url))).await;
        if r.status != StatusCode::SERVICE_UNAVAILABLE {
            answered = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = answered.expect("a permit comes back when a stream ends");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(f.up.last().path, "/after");
}
