//! Forward-proxy mode end to end: unmodified clients (curl, Python's requests and httpx,
//! reqwest) through `credgate run` or `HTTPS_PROXY`, credgate terminating their TLS with its
//! own CA, upstreams on loopback serving TLS with a test CA credgate is given.

use tokio::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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
        let pem = self.gw.proxy_ca().await;
        let proxy = reqwest::Proxy::all(self.proxy()).unwrap().basic_auth(user, &self.key);
        reqwest::Client::builder()
            .proxy(proxy)
            .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
            .build()
            .unwrap()
    }
}

/// The status line of a `CONNECT` (the tunnel is then dropped unused).
async fn connect_status(proxy: &str, key: &str, target: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(proxy.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Bearer {key}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(tcp).read_line(&mut line).await.unwrap();
    line.trim_end().to_owned()
}

/// The upstream saw the stored credential, in place of whatever the client sent.
fn assert_injected(seen: &crate::upstream::Seen) {
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some(format!("Bearer {TOKEN}").as_str()),
        "the stored credential reached the upstream"
    );
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
    assert_injected(&seen);
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
        !env.contains("MISTRAL_API_KEY="),
        "no Mistral grant, no Mistral variable: {env}"
    );
    // A grant of a template that declares its SDK's variable: `credgate run` sets it too.
    let mistral =
        f.gw.create_secret(json!({"name": "mistral", "type": "mistral", "credential": {"token": TOKEN}}))
            .await;
    f.gw.issue_grant(&mistral, &f.agent, json!({})).await;
    let with_mistral = text(&f.run(&[], &["env"]).await.stdout);
    assert!(with_mistral.contains("MISTRAL_API_KEY=credgate\n"), "{with_mistral}");
    let variables = reqwest::Client::new()
        .get(format!("{}/v1/environment", f.gw.base))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        variables["variables"],
        json!(["MISTRAL_API_KEY"]),
        "only what its grants' types declare"
    );
    let anonymous = reqwest::get(format!("{}/v1/environment", f.gw.base)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
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
        assert_injected(s);
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

    // A grant issued now lets the next tunnel in at once: the cached choice is dropped.
    let example =
        f.gw.create_secret(
            json!({"name": "example", "type": "bearer", "credential": {"token": "e"},
            "allowed_hosts": ["example.com"]}),
        )
        .await;
    f.gw.issue_grant(&example, &f.agent, json!({})).await;
    assert_eq!(
        connect_status(&proxy, &f.key, "example.com:443").await,
        "HTTP/1.1 200 OK",
        "the new grant is seen by the next CONNECT"
    );

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
    assert_injected(&f.up.last());
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
    assert_injected(&up.last());
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
    let first = gw.proxy_ca().await;
    assert!(first.starts_with("-----BEGIN CERTIFICATE-----"), "{first}");
    assert!(!first.contains("PRIVATE KEY"));
    gw.stop();
    let gw = Gateway::start_with(options).await.unwrap();
    let again = gw.proxy_ca().await;
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
    let bundle = gw.proxy_ca().await;
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
    let (ca_a, ca_b) = (a.proxy_ca().await, b.proxy_ca().await);
    assert!(ca_a.contains("BEGIN CERTIFICATE"));
    assert_eq!(ca_a, ca_b, "two replicas started together agree on one CA");
}

/// boto3 and the aws CLI, unchanged, with the placeholder keys `credgate run` gives them:
/// credgate drops their signature and signs again with the stored keys, and s3s-fs (behind
/// TLS) verifies every signature strictly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_aws_cli_work_through_credgate_run_against_a_strict_s3() {
    let (access, secret_key) = ("AKIDFORWARDTEST", "fwd/s3cr3t+KEY");
    let s3 = crate::sigv4::S3::start(access, secret_key).await;
    let f = Forward::new().await;
    let front = crate::upstream::TlsFront::start(&f.ca, &s3.url).await;
    let host = front.url.trim_start_matches("https://").to_owned();
    let aws_secret = |name: &str, secret: &str| {
        json!({"name": name, "type": "aws_sigv4",
            "credential": {"access_key_id": access, "secret_access_key": secret},
            "config": {"region": "us-east-1", "service": "s3"},
            "allowed_hosts": [host], "allow_private_destinations": true})
    };
    let good = f.gw.create_secret(aws_secret("s3", secret_key)).await;
    let good = f.gw.issue_grant(&good, &f.agent, json!({})).await;
    let wrong = f.gw.create_secret(aws_secret("s3-wrong", "not-the-secret")).await;
    let wrong = f.gw.issue_grant(&wrong, &f.agent, json!({})).await;
    let venv = crate::python::venv();
    let python = venv.join("bin/python");
    let script = format!(
        r#"
import os, sys, boto3, botocore
from boto3.s3.transfer import TransferConfig
assert os.environ["AWS_ACCESS_KEY_ID"] == "credgate"
s3 = boto3.client("s3", endpoint_url="{url}", region_name="us-east-1",
                  config=botocore.config.Config(s3={{"addressing_style": "path"}}))
s3.create_bucket(Bucket="fwd")
s3.put_object(Bucket="fwd", Key="a.txt", Body=b"hello through the proxy")
print(s3.get_object(Bucket="fwd", Key="a.txt")["Body"].read().decode())
big = bytes(i % 251 for i in range(20 * 1024 * 1024))
import io
s3.upload_fileobj(io.BytesIO(big), "fwd", "big.bin",
                  Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
got = s3.get_object(Bucket="fwd", Key="big.bin")["Body"].read()
print(len(got), got == big)
print(sorted(o["Key"] for o in s3.list_objects_v2(Bucket="fwd")["Contents"]))
"#,
        url = front.url
    );
    let out = f
        .run(&["--grant", &good], &[python.to_str().unwrap(), "-c", &script])
        .await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "hello through the proxy\n20971520 True\n['a.txt', 'big.bin']\n"
    );

    // The aws CLI: a listing and a copy.
    let aws = venv.join("bin/aws");
    let out = f
        .run(
            &["--grant", &good, "--env", "AWS_DEFAULT_REGION=us-east-1"],
            &[
                aws.to_str().unwrap(),
                "--endpoint-url",
                &front.url,
                "s3",
                "ls",
                "s3://fwd",
            ],
        )
        .await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("big.bin"), "{}", text(&out.stdout));

    // A wrong stored secret: the strict server says so, in boto3's own error.
    let script = format!(
        r#"
import boto3, botocore
s3 = boto3.client("s3", endpoint_url="{url}", region_name="us-east-1",
                  config=botocore.config.Config(s3={{"addressing_style": "path"}}))
try:
    s3.list_objects_v2(Bucket="fwd")
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"])
"#,
        url = front.url
    );
    let out = f
        .run(&["--grant", &wrong], &[python.to_str().unwrap(), "-c", &script])
        .await;
    assert_eq!(text(&out.stdout), "SignatureDoesNotMatch\n", "{}", text(&out.stderr));
}

/// The Python fake of the OpenAI and Anthropic APIs (`sdk/python/tests/servers.py`) in a
/// process of its own, printing the `authorization` each request arrived with.
struct FakeVendor {
    child: tokio::process::Child,
    url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeVendor {
    async fn start() -> Self {
        use tokio::io::AsyncBufReadExt;
        let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python/tests");
        let script = format!(
            "import sys, time\nsys.path.insert(0, {tests:?})\nfrom servers import Upstream\nu = Upstream()\n\
             print(u.url, flush=True)\nn = 0\nwhile True:\n    time.sleep(0.02)\n    while n < len(u.seen):\n        \
             print('AUTH', u.seen[n].headers.get('authorization'), flush=True)\n        n += 1\n",
            tests = tests.display().to_string()
        );
        let mut child = Command::new(crate::python::venv().join("bin/python"))
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines.next_line().await.unwrap().expect("the fake prints its URL");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            url,
            lines: seen,
        }
    }

    async fn authorizations(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            if self.lines.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for FakeVendor {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The openai SDK, unchanged, with `OPENAI_API_KEY` the placeholder: chat and streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_chats_and_streams_through_credgate_run() {
    let vendor = FakeVendor::start().await;
    let f = Forward::new().await;
    let front = crate::upstream::TlsFront::start(&f.ca, &vendor.url).await;
    let host = front.url.trim_start_matches("https://").to_owned();
    let secret =
        f.gw.create_secret(
            json!({"name": "openai", "type": "openai", "credential": {"token": "sk-fwd-canary-1f2e"},
            "config": {"base_url": front.url}, "allowed_hosts": [host], "allow_private_destinations": true}),
        )
        .await;
    f.gw.issue_grant(&secret, &f.agent, json!({})).await;
    let script = format!(
        r#"
import os
from openai import OpenAI
assert os.environ["OPENAI_API_KEY"] == "credgate"
c = OpenAI(base_url="{url}/v1")
r = c.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
print(r.choices[0].message.content)
s = c.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}], stream=True)
print("".join(chunk.choices[0].delta.content or "" for chunk in s))
"#,
        url = front.url
    );
    let python = crate::python::venv().join("bin/python");
    let out = f.run(&[], &[python.to_str().unwrap(), "-c", &script]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "Hello\nHello\n");
    assert_eq!(
        vendor.authorizations(2).await,
        ["AUTH Bearer sk-fwd-canary-1f2e", "AUTH Bearer sk-fwd-canary-1f2e"],
        "the stored key, in place of the placeholder"
    );
    assert!(!f.gw.logs().contains("sk-fwd-canary-1f2e"));
}

/// A WebSocket echo server on loopback that keeps the `authorization` of each handshake.
#[allow(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback fixes its error type"
)]
async fn websocket_echo() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use futures_util::{SinkExt, StreamExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let record = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, res| {
                    let auth = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    keep.lock().unwrap().push(auth.to_owned());
                    Ok(res)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() || message.is_binary() {
                        let _ = ws.send(message).await;
                    }
                }
            });
        }
    });
    (url, seen)
}

/// A WebSocket inside a tunnel: the handshake gets the credential (in place of the client's
/// placeholder), then frames stream both ways; the call's record is closed when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_is_upgraded_with_the_credential_in_a_tunnel_and_in_base_url_mode() {
    use futures_util::{SinkExt, StreamExt};
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let (backend, seen) = websocket_echo().await;
    let f = Forward::new().await;
    let front = crate::upstream::TlsFront::start(&f.ca, &backend).await;
    let host = front.url.trim_start_matches("https://").to_owned();
    let secret =
        f.gw.create_secret(
            json!({"name": "ws", "type": "bearer", "credential": {"token": "ws-canary-5d1"},
            "allowed_hosts": [host], "allow_private_destinations": true}),
        )
        .await;
    let grant = f.gw.issue_grant(&secret, &f.agent, json!({})).await;

    // CONNECT by hand, then TLS trusting credgate's CA, then the WebSocket handshake.
    let mut tcp = tokio::net::TcpStream::connect(f.proxy().trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(
        format!(
            "CONNECT {host} HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Bearer {}\r\n\r\n",
            f.key
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(text(&head).starts_with("HTTP/1.1 200"), "{}", text(&head));
    let pem = f.gw.proxy_ca().await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let mut request = format!("wss://{host}/socket").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer credgate".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(response.status(), 101);
    for word in ["hello", "through", "credgate"] {
        ws.send(Message::text(word)).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(word));
    }
    ws.close(None).await.unwrap();
    drop(ws);
    assert_eq!(
        *seen.lock().unwrap(),
        ["Bearer ws-canary-5d1"],
        "the credential, not the placeholder"
    );

    // The record: the handshake's 101, closed with the bytes each way once the socket ended.
    let mut record = json!(null);
    for _ in 0..100 {
        let audit =
            f.gw.get(&format!("/admin/v1/audit?grant_id={grant}&action=proxy.response"))
                .await;
        if let Some(r) = audit.json["data"].as_array().and_then(|d| d.first()) {
            record = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(record["status"], 101, "{record}");
    assert_eq!(record["mode"], "forward");
    assert!(
        record["bytes_in"].as_u64().unwrap() > 0 && record["bytes_out"].as_u64().unwrap() > 0,
        "{record}"
    );
    assert!(!f.gw.logs().contains("ws-canary-5d1"));

    // The same handshake in base-URL mode, on the main listener.
    let based =
        f.gw.create_secret(
            json!({"name": "ws-base", "type": "bearer", "credential": {"token": "ws-base-token"},
            "config": {"base_url": front.url}, "allow_private_destinations": true}),
        )
        .await;
    let based = f.gw.issue_grant(&based, &f.agent, json!({})).await;
    let tcp = tokio::net::TcpStream::connect(f.gw.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut request = format!("{}/v1/grants/{based}/socket", f.gw.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("proxy-authorization", format!("Bearer {}", f.key).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    ws.send(Message::text("base")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("base"));
    assert_eq!(
        seen.lock().unwrap().last().map(String::as_str),
        Some("Bearer ws-base-token")
    );
}

/// `--proxy-passthrough` tunnels a listed host untouched, but only to public addresses: a
/// listed host that resolves to loopback is refused like any private destination, audited.
/// (A passthrough to a public address cannot be shown here: the test machine has no route
/// to one.)
#[tokio::test]
async fn a_passthrough_host_on_a_private_address_is_refused() {
    let f = Forward::with(vec!["--proxy-passthrough".into(), "localhost,registry.invalid".into()]).await;
    let proxy = f.proxy().to_owned();
    let before = f.up.count();
    let status = connect_status(&proxy, &f.key, "localhost:443").await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden", "listed, but loopback");
    let status = connect_status(&proxy, &f.key, "registry.invalid:443").await;
    assert_eq!(status, "HTTP/1.1 502 Bad Gateway", "listed, but it does not resolve");
    assert_eq!(f.up.count(), before);
    let audit = f.gw.get("/admin/v1/audit?action=proxy.connect").await;
    let outcomes: Vec<&str> = audit.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"blocked_destination") && outcomes.contains(&"upstream_unreachable"),
        "{}",
        audit.text
    );
    assert!(f.gw.metrics().await.contains("credgate_forward_passthroughs_total 0"));
}

/// `git clone` over HTTPS, unchanged, from a smart-HTTP server (`git http-backend` behind
/// Python's CGI server, behind TLS) that answers `401` unless the Basic credential names the
/// stored user: the clone works only because credgate put the credential on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clones_over_https_through_credgate_run() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    // Python's CGI server runs scripts as `nobody` when started as root: it must read the repo.
    std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    let source = root.join("source");
    std::fs::create_dir(&source).unwrap();
    git(&source, &["init", "-q", "-b", "main"]);
    std::fs::write(source.join("README"), "cloned through credgate\n").unwrap();
    git(&source, &["add", "README"]);
    git(
        &source,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "first",
        ],
    );
    let repos = root.join("repos");
    std::fs::create_dir(&repos).unwrap();
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            source.to_str().unwrap(),
            repos.join("repo.git").to_str().unwrap(),
        ],
    );
    let site = root.join("site");
    std::fs::create_dir_all(site.join("cgi-bin")).unwrap();
    let script = site.join("cgi-bin/git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$REMOTE_USER\" != gitbot ]; then\n  printf 'Status: 401 Unauthorized\\r\\nWWW-Authenticate: Basic realm=\"git\"\\r\\n\\r\\n'\n  exit 0\nfi\n\
             export GIT_PROJECT_ROOT={} GIT_HTTP_EXPORT_ALL=1\n\
             export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'\nexec git http-backend\n",
            repos.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Command::new("python3")
        .args(["-m", "http.server", "--cgi", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(&site)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let f = Forward::new().await;
    let front = crate::upstream::TlsFront::start(&f.ca, &format!("127.0.0.1:{port}")).await;
    let host = front.url.trim_start_matches("https://").to_owned();
    let secret =
        f.gw.create_secret(
            json!({"name": "git", "type": "basic", "credential": {"username": "gitbot", "password": "git-canary-93a"},
            "allowed_hosts": [host], "allow_private_destinations": true}),
        )
        .await;
    f.gw.issue_grant(&secret, &f.agent, json!({})).await;
    let dest = root.join("clone");
    let url = format!("{}/cgi-bin/git/repo.git", front.url);
    let out = f
        .run(
            &["--env", "GIT_TERMINAL_PROMPT=0", "--env", "GIT_CONFIG_GLOBAL=/dev/null"],
            &["git", "clone", &url, dest.to_str().unwrap()],
        )
        .await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dest.join("README")).unwrap_or_else(|e| panic!(
            "{e}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )),
        "cloned through credgate\n"
    );
    assert!(!f.gw.logs().contains("git-canary-93a"));
}

/// Node's own `fetch`: Node 20 reads no `HTTPS_PROXY` by itself (`NODE_USE_ENV_PROXY`, which
/// `credgate run` sets, is Node 24's), so the script installs undici's `EnvHttpProxyAgent`,
/// the documented way; `NODE_EXTRA_CA_CERTS` from `credgate run` makes it trust credgate's CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_fetch_works_through_credgate_run() {
    let f = Forward::new().await;
    let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node");
    crate::support::npm_ci(&clients);
    let modules = clients.join("node_modules");
    let url = format!("https://{}/status/200", f.host);
    let script = format!(
        "const {{ EnvHttpProxyAgent, setGlobalDispatcher, fetch }} = require('undici');\n\
         setGlobalDispatcher(new EnvHttpProxyAgent());\n\
         fetch('{url}').then(async (r) => console.log(r.status, await r.text()));\n"
    );
    let node_path = format!("NODE_PATH={}", modules.display());
    let out = f.run(&["--env", &node_path], &["node", "-e", &script]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "200 {\"upstream\":\"error\"}\n");
    assert_injected(&f.up.last());
}

/// A tunnel is let in because a grant allows the host, but each request still meets the
/// destination rules: a secret that does not allow private addresses cannot reach loopback.
#[tokio::test]
async fn a_request_in_a_tunnel_to_a_private_address_is_refused_without_the_private_switch() {
    let f = Forward::new().await;
    let strict =
        f.gw.create_secret(
            json!({"name": "strict", "type": "bearer", "credential": {"token": "strict-token"},
            "allowed_hosts": [f.host]}),
        )
        .await;
    let strict = f.gw.issue_grant(&strict, &f.agent, json!({})).await;
    let client = f.client(&strict).await;
    let before = f.up.count();
    let r = client
        .get(format!("https://{}/status/200", f.host))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "blocked_destination", "{body}");
    assert_eq!(f.up.count(), before, "nothing reached the upstream");
}

/// A host on a public address, in a network namespace of this test's own (a veth pair with
/// `45.0.0.1/30` on this side and `45.0.0.2/30` inside, a plain HTTP server there): the only way
/// to give a passthrough a public destination on a machine with no route out.
struct PublicHost {
    netns: String,
    _server: tokio::process::Child,
}

impl PublicHost {
    const ADDR: &'static str = "45.0.0.2";

    async fn start() -> Self {
        let netns = format!("cgpass{}", std::process::id());
        let veth = format!("cgp{}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .expect("iproute2's ip");
            assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
        };
        let _ = std::process::Command::new("ip").args(["netns", "del", &netns]).output();
        ip(&["netns", "add", &netns]);
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "cgpeer0", "netns", &netns,
        ]);
        ip(&["addr", "add", "45.0.0.1/30", "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&[
            "netns",
            "exec",
            &netns,
            "ip",
            "addr",
            "add",
            "45.0.0.2/30",
            "dev",
            "cgpeer0",
        ]);
        ip(&["netns", "exec", &netns, "ip", "link", "set", "cgpeer0", "up"]);
        let site = tempfile::tempdir().unwrap().keep();
        std::fs::write(site.join("hello.txt"), "straight from the public host\n").unwrap();
        let server = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns,
                "python3",
                "-m",
                "http.server",
                "8099",
                "--bind",
                Self::ADDR,
            ])
            .current_dir(&site)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect((Self::ADDR, 8099)).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Self { netns, _server: server }
    }
}

impl Drop for PublicHost {
    fn drop(&mut self) {
        // Deleting the namespace takes its end of the veth pair, and so the pair.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

/// `--proxy-passthrough` to a public address: tunnelled untouched (no interception, no
/// credential), audited as `proxy.passthrough`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_host_is_tunnelled_untouched() {
    let public = PublicHost::start().await;
    let f = Forward::with(vec!["--proxy-passthrough".into(), format!("{}:8099", PublicHost::ADDR)]).await;
    let proxy = f.proxy().replace("http://", &format!("http://credgate:{}@", f.key));
    // `-p`: a CONNECT tunnel even for http, as any client does for https.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-p",
            "--proxy",
            &proxy,
            &format!("http://{}:8099/hello.txt", PublicHost::ADDR),
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "straight from the public host\n");
    let audit = f.gw.get("/admin/v1/audit?action=proxy.passthrough").await;
    let record = &audit.json["data"][0];
    assert_eq!(record["host"], format!("{}:8099", PublicHost::ADDR), "{}", audit.text);
    assert_eq!(record["key_id"], f.key_id.as_str());
    assert!(f.gw.metrics().await.contains("credgate_forward_passthroughs_total 1"));
    drop(public);
}
