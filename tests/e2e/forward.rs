//! Forward-proxy mode end to end: unmodified clients (curl, Python's requests and httpx,
//! reqwest) through `credgate run` or `HTTPS_PROXY`, credgate terminating their TLS with its
//! own CA, upstreams on loopback serving TLS with a test CA credgate is given.

use tokio::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{BIN, Gateway, Options, raw_http};
use crate::upstream::{TestCa, Upstream};

const TOKEN: &str = "fwd-canary-7c1e0d9a";

/// A gateway with the forward proxy on, a TLS upstream it trusts, an agent with a key and a
/// bearer secret for the upstream's host granted to the agent.
struct Forward {
    gw: Gateway,
    up: Upstream,
    ca: TestCa,
    agent: String,
    key: String,
    key_id: String,
    secret: String,
    grant: String,
    /// `localhost:<port>`
    host: String,
}

impl Forward {
    async fn new() -> Self {
        Self::with(Vec::new()).await
    }

    async fn with(extra: Vec<String>) -> Self {
        let ca = TestCa::new();
        let up = Upstream::start_tls(&ca).await;
        let mut args = vec![
            "--proxy-listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--upstream-ca-file".to_owned(),
            ca.ca_file.display().to_string(),
        ];
        args.extend(extra);
        let gw = Gateway::start_with(Options {
            args,
            // The canary checks below read every log line there is.
            log: Some("debug".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let agent = gw.create_principal("agent", "agent").await;
        let (key_id, key) = gw.issue_key(&agent).await;
        let host = up.url.trim_start_matches("https://").to_owned();
        let secret = gw
            .create_secret(json!({"name": "fwd", "type": "bearer", "credential": {"token": TOKEN},
                "allowed_hosts": [host], "allow_private_destinations": true}))
            .await;
        let grant = gw.issue_grant(&secret, &agent, json!({})).await;
        Self {
            gw,
            up,
            ca,
            agent,
            key,
            key_id,
            secret,
            grant,
            host,
        }
    }

    fn proxy(&self) -> &str {
        self.gw.proxy.as_deref().expect("the forward proxy is listening")
    }

    /// `credgate run` with the app key in the environment and loopback proxied too. Awaited,
    /// not blocking: the upstream runs on this test's runtime.
    async fn run(&self, extra: &[&str], command: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .args(["--addr", &self.gw.base, "--proxy", self.proxy(), "--proxy-loopback"])
            .args(extra)
            .arg("--")
            .args(command)
            .env("CREDGATE_APP_KEY", &self.key)
            .env("OPENAI_API_KEY", "sk-real-key-the-child-must-not-see");
        cmd.output().await.expect("credgate run")
    }

    /// A reqwest client that uses the forward proxy and trusts credgate's CA.
    async fn client(&self, user: &str) -> reqwest::Client {
        let bundle = self
            .gw
            .http
            .get(format!("{}/v1/proxy-ca", self.gw.base))
            .send()
            .await
            .unwrap();
        let pem = bundle.text().await.unwrap();
        let proxy = reqwest::Proxy::all(self.proxy()).unwrap().basic_auth(user, &self.key);
        reqwest::Client::builder()
            .proxy(proxy)
            .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
            .build()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn curl_through_credgate_run_reaches_the_upstream_with_the_credential_it_never_holds() {
    let f = Forward::new().await;
    let url = format!("https://{}/status/200", f.host);
    let out = f.run(&[], &["curl", "-sS", "--fail-with-body", &url]).await;
    assert!(
        out.status.success(),
        "{}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        f.gw.logs()
    );
    assert_eq!(text(&out.stdout), r#"{"upstream":"error"}"#, "the upstream's own body");
    let seen = f.up.last();
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        seen.header("proxy-authorization"),
        None,
        "the app key stays at credgate"
    );

    // The record says how the call came in.
    let audit = f.gw.get(&format!("/admin/v1/audit?grant_id={}", f.grant)).await;
    let record = &audit.json["data"][0];
    assert_eq!(record["mode"], "forward", "{}", audit.text);
    assert_eq!(record["action"], "proxy.response");
    assert_eq!(record["host"], f.host.split(':').next().unwrap());

    // What the command sees: the proxy, credgate's CA, placeholders, and no credential.
    let env = f.run(&[], &["env"]).await;
    let env = text(&env.stdout);
    assert!(
        !env.contains(TOKEN),
        "the stored credential is not in the child's environment"
    );
    assert!(
        !env.contains("sk-real-key"),
        "a real key in the caller's environment is replaced"
    );
    assert!(env.contains("OPENAI_API_KEY=credgate\n"), "{env}");
    assert!(
        env.contains(&format!("HTTPS_PROXY=http://credgate:{}@", f.key)),
        "{env}"
    );
    assert!(!env.contains("CREDGATE_APP_KEY="), "{env}");
    let bundle = env
        .lines()
        .find_map(|l| l.strip_prefix("SSL_CERT_FILE="))
        .expect("a CA bundle");
    assert!(
        !std::path::Path::new(bundle).exists(),
        "the bundle is removed when the command ends"
    );

    // The canary sweep, for this mode: the stored value is nowhere but on the upstream's wire.
    let everything = f.gw.get("/admin/v1/audit?limit=1000").await;
    assert!(!everything.text.contains(TOKEN));
    assert!(!f.gw.logs().contains(TOKEN), "not in any log line");
    assert!(!f.gw.metrics().await.contains(TOKEN));
    crate::support::assert_no_file_holds(&f.gw.data_dir, TOKEN, "the database and the audit journal");
}

#[tokio::test]
async fn python_requests_and_httpx_work_unchanged_through_credgate_run() {
    let f = Forward::new().await;
    let python = crate::python::venv().join("bin/python");
    let url = format!("https://{}/status/201", f.host);
    let script = format!(
        "import requests, httpx\n\
         r = requests.post('{url}', json={{'a': 1}})\n\
         print(r.status_code)\n\
         with httpx.Client() as c:\n    print(c.get('{url}').status_code)\n"
    );
    let out = f.run(&[], &[python.to_str().unwrap(), "-c", &script]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "201\n201\n");
    let seen = f.up.seen();
    let last_two = &seen[seen.len() - 2..];
    assert_eq!(last_two[0].method, "POST");
    assert_eq!(last_two[0].body, br#"{"a": 1}"#);
    for s in last_two {
        assert_eq!(
            s.header("authorization").as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn no_key_is_407_and_a_host_without_a_grant_is_refused_before_any_tls() {
    let f = Forward::new().await;
    let proxy = f.proxy().to_owned();
    let connect = |auth: Option<String>, target: &str| {
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(auth) = auth {
            request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        raw_http(&proxy, &request)
    };
    let none = connect(None, &f.host);
    assert!(none.starts_with("HTTP/1.1 407"), "{none}");
    assert!(
        none.to_ascii_lowercase().contains("proxy-authenticate: basic"),
        "{none}"
    );
    assert!(none.contains(r#""code":"unauthenticated""#), "{none}");
    let wrong = connect(Some("Bearer cg_app_nottherightkey_x".into()), &f.host);
    assert!(wrong.starts_with("HTTP/1.1 407"), "{wrong}");

    let before = f.up.count();
    let elsewhere = connect(Some(format!("Bearer {}", f.key)), "example.com:443");
    assert!(elsewhere.starts_with("HTTP/1.1 403"), "{elsewhere}");
    assert!(elsewhere.contains(r#""code":"forbidden""#), "{elsewhere}");
    assert!(
        elsewhere.contains("none of your grants allows example.com:443"),
        "{elsewhere}"
    );
    // Another principal's grant, named as the proxy user: refused too.
    let other = f.gw.create_principal("agent", "other").await;
    let theirs = f.gw.issue_grant(&f.secret, &other, json!({})).await;
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{theirs}:{}", f.key),
    );
    let named = connect(Some(format!("Basic {basic}")), &f.host);
    assert!(named.starts_with("HTTP/1.1 403"), "{named}");
    assert_eq!(f.up.count(), before, "nothing reached the upstream");

    let audit = f.gw.get("/admin/v1/audit?action=proxy.connect").await;
    let refusals = audit.json["data"].as_array().unwrap();
    assert!(
        refusals
            .iter()
            .any(|r| r["host"] == "example.com:443" && r["outcome"] == "forbidden" && r["key_id"] == f.key_id.as_str()),
        "{}",
        audit.text
    );
    assert!(f.gw.metrics().await.contains("credgate_forward_refused_total 2"));
}

#[tokio::test]
async fn a_client_that_does_not_trust_credgates_ca_sends_nothing() {
    let f = Forward::new().await;
    let before = f.up.count();
    let url = format!("https://{}/status/200", f.host);
    let proxy = f.proxy().replace("http://", &format!("http://credgate:{}@", f.key));
    // Only the upstream's own CA: credgate's leaf certificate does not verify.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--proxy",
            &proxy,
            "--cacert",
            &f.ca.ca_file.display().to_string(),
            &url,
        ])
        .env_remove("HTTPS_PROXY")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("SSL certificate problem") || text(&out.stderr).contains("certificate"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(f.up.count(), before, "the handshake failed; no request went upstream");
}

#[tokio::test]
async fn a_grant_revoked_mid_tunnel_stops_the_next_request_in_the_same_tunnel() {
    let f = Forward::new().await;
    let client = f.client("credgate").await;
    let url = format!("https://{}/status/200", f.host);
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let revoked = f.gw.delete(&format!("/admin/v1/grants/{}", f.grant)).await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    let before = f.up.count();
    let second = client.get(&url).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "grant_revoked");
    assert_eq!(f.up.count(), before);
    // The same tunnel: one CONNECT was intercepted.
    assert!(f.gw.metrics().await.contains("credgate_forward_tunnels_total 1"));
}

#[tokio::test]
async fn with_two_grants_for_a_host_each_request_names_one() {
    let f = Forward::new().await;
    let second_secret =
        f.gw.create_secret(
            json!({"name": "fwd2", "type": "bearer", "credential": {"token": "second-token"},
            "allowed_hosts": [f.host], "allow_private_destinations": true}),
        )
        .await;
    let second = f.gw.issue_grant(&second_secret, &f.agent, json!({})).await;
    let client = f.client("credgate").await;
    let url = format!("https://{}/status/200", f.host);
    let ambiguous = client.get(&url).send().await.unwrap();
    assert_eq!(ambiguous.status(), StatusCode::BAD_REQUEST);
    let body = ambiguous.text().await.unwrap();
    assert!(body.contains("2 of your grants allow"), "{body}");
    assert!(
        !body.contains("fwd2") && !body.contains(&second_secret),
        "names no secret: {body}"
    );
    let named = client
        .get(&url)
        .header("x-credgate-grant", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), StatusCode::OK);
    assert_eq!(
        f.up.last().header("authorization").as_deref(),
        Some("Bearer second-token")
    );
    assert_eq!(f.up.last().header("x-credgate-grant"), None);
    // The proxy user name picks the grant for the whole tunnel.
    let by_user = f.client(&f.grant).await;
    assert_eq!(by_user.get(&url).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        f.up.last().header("authorization").as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn plain_http_through_the_proxy_is_injected_too() {
    let up = Upstream::start().await;
    let gw = Gateway::start_with(Options {
        args: vec!["--proxy-listen".into(), "127.0.0.1:0".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let agent = gw.create_principal("agent", "a").await;
    let (_, key) = gw.issue_key(&agent).await;
    let host = up.url.trim_start_matches("http://").to_owned();
    let secret = gw
        .create_secret(
            json!({"name": "plain", "type": "bearer", "credential": {"token": TOKEN},
            "allowed_hosts": [host], "allow_private_destinations": true, "allow_insecure_http": true}),
        )
        .await;
    gw.issue_grant(&secret, &agent, json!({})).await;
    let proxy = gw
        .proxy
        .as_deref()
        .unwrap()
        .replace("http://", &format!("http://credgate:{key}@"));
    let out = Command::new("curl")
        .args([
            "-sS",
            "--proxy",
            &proxy,
            &format!("{}/status/202", up.url),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(text(&out.stdout), "202", "{}", text(&out.stderr));
    assert_eq!(
        up.last().header("authorization").as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(up.last().header("proxy-authorization"), None);
}

#[tokio::test]
async fn the_ca_is_kept_across_restarts_shown_without_its_key_and_rotated_in_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let options = Options {
        data_dir: Some(data.clone()),
        ..Default::default()
    };
    let mut gw = Gateway::start_with(options.clone()).await.unwrap();
    let first = gw
        .http
        .get(format!("{}/v1/proxy-ca", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(first.starts_with("-----BEGIN CERTIFICATE-----"), "{first}");
    assert!(!first.contains("PRIVATE KEY"));
    gw.stop();
    let gw = Gateway::start_with(options).await.unwrap();
    let again = gw
        .http
        .get(format!("{}/v1/proxy-ca", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(first, again, "a restart presents the same CA");

    let export = gw.cli(&["ca", "export"], None);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert_eq!(export.stdout, first);
    let show = gw.cli(&["ca", "show"], None);
    assert!(
        show.stdout.contains("SHA-256") && !show.stdout.contains("PRIVATE"),
        "{}",
        show.stdout
    );

    // A staged rotation: the new CA is trusted at once and signs only after the grace period.
    let rotated = gw
        .admin(Method::POST, "/admin/v1/proxy-ca/rotate?grace_seconds=3600", None)
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let data = rotated.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data.iter().filter(|c| c["active"] == true).count(), 1);
    assert_eq!(
        data[0]["certificate_pem"].as_str(),
        Some(first.as_str()),
        "the old one still signs"
    );
    let bundle = gw
        .http
        .get(format!("{}/v1/proxy-ca", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    // At once: the new one signs and the old one leaves the bundle.
    let now = gw
        .admin(Method::POST, "/admin/v1/proxy-ca/rotate?grace_seconds=0", None)
        .await;
    let data = now.json["data"].as_array().unwrap();
    assert_eq!(
        data.len(),
        1,
        "the CA pending from the first rotation is superseded: {}",
        now.text
    );
    assert_eq!(data[0]["active"], true);
    assert_ne!(data[0]["certificate_pem"].as_str(), Some(first.as_str()));
    let audit = gw.get("/admin/v1/audit?action=proxy_ca.rotate").await;
    assert_eq!(audit.json["data"].as_array().map(Vec::len), Some(2), "{}", audit.text);
}

#[tokio::test]
async fn replicas_on_one_postgresql_present_the_same_ca() {
    if crate::support::postgres_skipped() {
        return;
    }
    let url = crate::support::fresh_postgres_url().await;
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let start = || {
        Gateway::start_with(Options {
            database_url: Some(url.clone()),
            env: vec![
                ("CREDGATE_MASTER_KEY".into(), key.clone()),
                ("CREDGATE_ADMIN_TOKEN".into(), "forward-replicas-admin-token".into()),
            ],
            ..Default::default()
        })
    };
    let (a, b) = tokio::join!(start(), start());
    let (a, b) = (a.unwrap(), b.unwrap());
    let get = |gw: &Gateway| {
        let req = gw.http.get(format!("{}/v1/proxy-ca", gw.base));
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let (ca_a, ca_b) = (get(&a).await, get(&b).await);
    assert!(ca_a.contains("BEGIN CERTIFICATE"));
    assert_eq!(ca_a, ca_b, "two replicas started together agree on one CA");
}
