//! Templates that mint short-lived tokens (contract 0.2), end to end: a real gateway, and a
//! real authorization server (`tests/peers/token_server.py`: Authlib's OAuth 2.0 server, the
//! Google JWT-bearer grant checked with google-auth's verifier, a GitHub App exchange checked
//! with PyJWT) whose protected API accepts only the tokens it issued.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::proxy::Fixture;
use crate::support::{PythonPeer, Reply, send};

/// Canary values: never in a reply, a log, the trail or a file.
const CLIENT_SECRET_BASIC: &str = "basic-secret";
const CLIENT_SECRET_POST: &str = "post-secret";

/// The authorization server, with the key files it wrote.
struct TokenServer {
    peer: PythonPeer,
    url: String,
    dir: tempfile::TempDir,
}

impl TokenServer {
    fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let account = dir.path().join("service-account.json");
        let github = dir.path().join("github-app.pem");
        let mut all: Vec<&std::ffi::OsStr> = [
            "--tenant",
            "acme-tenant",
            "--github-app-id",
            "4242",
            "--github-installation-id",
            "99",
        ]
        .map(std::ffi::OsStr::new)
        .to_vec();
        all.extend([std::ffi::OsStr::new("--write-service-account"), account.as_os_str()]);
        all.extend([std::ffi::OsStr::new("--write-github-key"), github.as_os_str()]);
        all.extend(args.iter().map(std::ffi::OsStr::new));
        let peer = PythonPeer::start("token_server.py", &all);
        Self {
            url: peer.url.clone(),
            peer,
            dir,
        }
    }

    async fn counts(&self) -> Value {
        self.peer.get_json("/__tokens/count").await
    }

    async fn token_requests(&self) -> u64 {
        self.counts().await["token_requests"].as_u64().unwrap()
    }

    /// One of its switches: `/__tokens/fail`, `/__tokens/delay`.
    async fn switch(&self, path: &str, body: Value) {
        reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

/// A secret of `kind` whose API is the token server's, and a grant of it.
async fn grant(f: &Fixture, server: &TokenServer, kind: &str, credential: Value, mut config: Value) -> String {
    config["base_url"] = json!(server.url);
    let name = format!("{kind}-{}", uuid::Uuid::new_v4().simple());
    let secret = f.secret(&name, kind, credential, config).await;
    f.grant(&secret, json!({})).await
}

async fn echo(f: &Fixture, grant: &str) -> Reply {
    send(f.gw.via_grant(Method::GET, grant, "api/echo").bearer_auth(&f.key)).await
}

fn assert_ok(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert_eq!(reply.json["ok"], true, "{what}: {}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_are_minted_once_for_many_calls_with_either_client_authentication() {
    let f = Fixture::new().await;
    let server = TokenServer::start(&[]);
    let token_url = format!("{}/oauth/token", server.url);
    let basic = grant(
        &f,
        &server,
        "oauth2-client-credentials",
        json!({"client_id": "basic-client", "client_secret": CLIENT_SECRET_BASIC}),
        json!({"token_url": token_url, "scope": "read"}),
    )
    .await;
    let r = echo(&f, &basic).await;
    assert_ok(&r, "basic");
    assert_eq!(
        (r.json["client"].as_str(), r.json["scope"].as_str()),
        (Some("basic-client"), Some("read"))
    );
    // Twenty calls at once on a cached token: no other token request.
    let calls = (0..20).map(|_| echo(&f, &basic));
    for r in futures_util::future::join_all(calls).await {
        assert_ok(&r, "concurrent");
    }
    assert_eq!(server.token_requests().await, 1);

    // The secret in the form instead (client_secret_post): a token of its own, minted while
    // twenty calls wait for it, once.
    let post = grant(
        &f,
        &server,
        "oauth2-client-credentials",
        json!({"client_id": "post-client", "client_secret": CLIENT_SECRET_POST}),
        json!({"token_url": token_url, "client_auth": "post"}),
    )
    .await;
    // The token endpoint takes 300 ms, so all twenty arrive while the one request is out.
    server.switch("/__tokens/delay", json!({"ms": 300})).await;
    let calls = (0..20).map(|_| echo(&f, &post));
    for r in futures_util::future::join_all(calls).await {
        assert_ok(&r, "post");
        assert_eq!(r.json["client"], "post-client");
    }
    assert_eq!(
        server.token_requests().await,
        2,
        "one token request however many calls waited"
    );
    let metrics = f.gw.metrics().await;
    assert!(metrics.contains("credgate_token_requests_total 2"), "{metrics}");

    // The client secrets and the tokens stay in credgate: not in replies, logs, the trail or
    // its files.
    let trail = f.gw.get("/admin/v1/audit?kind=proxy&limit=100").await;
    for canary in [CLIENT_SECRET_BASIC, CLIENT_SECRET_POST] {
        assert!(!trail.text.contains(canary) && !f.gw.logs().contains(canary));
        crate::support::assert_no_file_holds(&f.gw.data_dir, canary, "the client secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_refreshed_ahead_of_expiry_while_calls_keep_using_it() {
    let f = Fixture::new().await;
    // Twelve-second tokens: used until five seconds before they expire, refreshed from two
    // seconds into their life (ten seconds ahead, the least credgate keeps).
    let server = TokenServer::start(&["--expires-in", "12"]);
    let g = grant(
        &f,
        &server,
        "oauth2-client-credentials",
        json!({"client_id": "basic-client", "client_secret": CLIENT_SECRET_BASIC}),
        json!({"token_url": format!("{}/oauth/token", server.url)}),
    )
    .await;
    assert_ok(&echo(&f, &g).await, "first");
    assert_eq!(server.token_requests().await, 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Due for a refresh: answered at once with the cached token; the refresh runs behind it.
    assert_ok(&echo(&f, &g).await, "while refreshing");
    let mut refreshed = false;
    for _ in 0..50 {
        if server.token_requests().await == 2 {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refreshed, "a refresh was made: {}", server.counts().await);
    assert_ok(&echo(&f, &g).await, "after the refresh");
    assert_eq!(server.token_requests().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_fails_calls_with_its_status_only_and_is_retried_with_backoff() {
    let f = Fixture::new().await;
    let server = TokenServer::start(&[]);
    let g = grant(
        &f,
        &server,
        "oauth2-client-credentials",
        json!({"client_id": "basic-client", "client_secret": CLIENT_SECRET_BASIC}),
        json!({"token_url": format!("{}/oauth/token", server.url)}),
    )
    .await;
    server
        .switch("/__tokens/fail", json!({"status": 503, "times": 1}))
        .await;
    let r = echo(&f, &g).await;
    let message = r.assert_error(502, "provider_error");
    assert!(message.contains("503"), "{message}");
    assert!(
        !r.text.contains("token-endpoint-body-marker"),
        "the endpoint's body is never echoed"
    );
    // Not asked again per call: backing off.
    let r = echo(&f, &g).await;
    let message = r.assert_error(502, "provider_error");
    assert!(message.contains("next try"), "{message}");
    assert_eq!(server.token_requests().await, 1);
    assert!(!f.gw.logs().contains("token-endpoint-body-marker"));
    // After the backoff (a second after the first failure) it is asked again, and answers.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_ok(&echo(&f, &g).await, "after the backoff");
    assert_eq!(server.token_requests().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_google_and_github_app_tokens_are_minted_and_accepted_by_the_real_verifiers() {
    let f = Fixture::new().await;
    let server = TokenServer::start(&[]);
    let entra = grant(
        &f,
        &server,
        "microsoft-entra",
        json!({"client_id": "post-client", "client_secret": CLIENT_SECRET_POST}),
        json!({"tenant": "acme-tenant", "login_url": server.url}),
    )
    .await;
    assert_ok(&echo(&f, &entra).await, "entra");

    // The service account's own key file, as Google issues it; the assertion is checked with
    // google-auth's verifier against its public key.
    let google = grant(
        &f,
        &server,
        "google-service-account",
        json!({"key_json": server.file("service-account.json")}),
        json!({"token_url": format!("{}/google/token", server.url), "scope": "https://www.googleapis.com/auth/devstorage.read_only"}),
    )
    .await;
    let r = echo(&f, &google).await;
    assert_ok(&r, "google");

    // The app's PKCS#1 key, as GitHub generates it; the app JWT is checked with PyJWT.
    let github = grant(
        &f,
        &server,
        "github-app",
        json!({"private_key": server.file("github-app.pem")}),
        json!({"app_id": "4242", "installation_id": "99"}),
    )
    .await;
    assert_ok(&echo(&f, &github).await, "github");
    let by_grant = &server.counts().await["by_grant"];
    assert_eq!(server.token_requests().await, 3, "{by_grant}");
    let key = server.file("service-account.json");
    let pem: Value = serde_json::from_str(&key).unwrap();
    let private_key = pem["private_key"].as_str().unwrap();
    let body_line = private_key.lines().nth(1).unwrap();
    for canary in [body_line, server.file("github-app.pem").lines().nth(1).unwrap()] {
        assert!(!f.gw.logs().contains(canary));
        crate::support::assert_no_file_holds(&f.gw.data_dir, canary, "a private key");
    }
}

/// The attacks on minting: a token endpoint on a loopback address for a secret that does not
/// allow private destinations, and a template that sends its token request to a host it did
/// not declare when it was loaded. Both are refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_to_private_or_undeclared_hosts_are_refused() {
    let server = TokenServer::start(&[]);
    let (f, _dir) = crate::plugins::hostile_fixture().await;
    let private =
        f.gw.create_secret(json!({
            "name": "private-token", "type": "oauth2-client-credentials",
            "credential": {"client_id": "basic-client", "client_secret": CLIENT_SECRET_BASIC},
            "config": {"base_url": "http://1.1.1.1", "token_url": format!("{}/oauth/token", server.url)},
            "allow_insecure_http": true,
        }))
        .await;
    let g = f.grant(&private, json!({})).await;
    let r = send(f.gw.via_grant(Method::GET, &g, "api/echo").bearer_auth(&f.key)).await;
    let message = r.assert_error(502, "provider_error");
    assert!(
        message.contains("token request was refused") && message.contains("loopback"),
        "{message}"
    );

    let undeclared = f
        .secret(
            "undeclared",
            "hostile-token-host",
            json!({"client_secret": CLIENT_SECRET_BASIC}),
            json!({"elsewhere": format!("{}/oauth/token", server.url)}),
        )
        .await;
    let g = f.grant(&undeclared, json!({})).await;
    let r = send(f.gw.via_grant(Method::GET, &g, "anything").bearer_auth(&f.key)).await;
    let message = r.assert_error(502, "provider_error");
    assert!(message.contains("not among"), "{message}");
    assert_eq!(server.token_requests().await, 0, "nothing reached the token server");

    // A template that mints a real token and puts it in a header's name: refused before the
    // call leaves, and the token is in no reply or log.
    let echo_secret = f
        .secret(
            "echo",
            "hostile-echo-token",
            json!({"client_id": "post-client", "client_secret": CLIENT_SECRET_POST}),
            json!({"token_url": format!("{}/oauth/token", server.url)}),
        )
        .await;
    let g = f.grant(&echo_secret, json!({})).await;
    let r = send(f.gw.via_grant(Method::GET, &g, "anything").bearer_auth(&f.key)).await;
    let message = r.assert_error(502, "provider_error");
    assert!(message.contains("name carried a credential value"), "{message}");
    assert_eq!(server.token_requests().await, 1, "the token was minted, then held back");
    assert_eq!(f.up.count(), 0, "nothing reached the upstream");
}

/// A refresh token the provider rotates on use (Authlib's server revokes the old one): the
/// new one becomes the secret's next version, sealed and audited, and the token minted with it
/// is kept for that version; a refresh ahead of expiry rotates again. The old refresh token is
/// never used twice: the server would refuse it, and the calls would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_rotated_on_use_becomes_the_secrets_next_version() {
    let f = Fixture::new().await;
    let server = TokenServer::start(&["--refresh-token", "first-refresh-token", "--expires-in", "12"]);
    let secret = f
        .secret(
            "refreshing",
            "oauth2-refresh-token",
            json!({"client_id": "refresh-client", "client_secret": "refresh-secret", "refresh_token": "first-refresh-token"}),
            json!({"base_url": server.url, "token_url": format!("{}/oauth/token", server.url)}),
        )
        .await;
    let g = f.grant(&secret, json!({})).await;
    let r = echo(&f, &g).await;
    assert_ok(&r, "first");
    assert_eq!(r.json["grant"], "refresh_token");
    let version = async |f: &Fixture| f.gw.get(&format!("/admin/v1/secrets/{secret}")).await.json["version"].as_i64();
    assert_eq!(
        version(&f).await,
        Some(2),
        "the rotated refresh token is the secret's version 2"
    );
    let rotations =
        f.gw.get(&format!("/admin/v1/audit?action=secret.rotate&secret_id={secret}"))
            .await;
    let record = &rotations.json["data"][0];
    assert_eq!(record["secret_version"], 2, "{}", rotations.text);
    assert!(
        record["actor"].as_str().unwrap().contains("oauth2-refresh-token"),
        "{}",
        rotations.text
    );
    // Calls keep using the token minted with it: no other token request.
    for _ in 0..5 {
        assert_ok(&echo(&f, &g).await, "cached");
    }
    assert_eq!(server.token_requests().await, 1);
    // Due for a refresh two seconds in: it uses version 2's refresh token, and rotates again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_ok(&echo(&f, &g).await, "while refreshing");
    let mut rotated_again = false;
    for _ in 0..50 {
        if version(&f).await == Some(3) {
            rotated_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated_again, "{}", server.counts().await);
    assert_ok(&echo(&f, &g).await, "after the refresh");
    let counts = server.counts().await;
    assert_eq!(counts["token_requests"], 2, "{counts}");
    assert_eq!(counts["failed"], 0, "no refresh token was used twice: {counts}");
    assert!(!f.gw.logs().contains("first-refresh-token"));
    crate::support::assert_no_file_holds(&f.gw.data_dir, "first-refresh-token", "the refresh token");
}

/// Two replicas on one PostgreSQL database, calls on both at once: one token request in all
/// (one replica holds the minting lease, the other uses the token it stored), one rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_minted_token_and_one_rotation() {
    let Some(replicas) = crate::support::replicas_on_postgres(2).await else {
        return;
    };
    let server = TokenServer::start(&["--refresh-token", "shared-refresh-token"]);
    let gw = &replicas[0];
    let agent = gw.create_principal("agent", "minting").await;
    let (_, key) = gw.issue_key(&agent).await;
    let secret = gw
        .create_secret(json!({
            "name": "shared-refresh", "type": "oauth2-refresh-token",
            "credential": {"client_id": "refresh-client", "client_secret": "refresh-secret", "refresh_token": "shared-refresh-token"},
            "config": {"base_url": server.url, "token_url": format!("{}/oauth/token", server.url)},
            "allow_private_destinations": true, "allow_insecure_http": true,
        }))
        .await;
    let g = gw.issue_grant(&secret, &agent, json!({})).await;
    server.switch("/__tokens/delay", json!({"ms": 300})).await;
    let calls = (0..12).map(|i| {
        let gw = &replicas[i % 2];
        send(gw.via_grant(Method::GET, &g, "api/echo").bearer_auth(&key))
    });
    for r in futures_util::future::join_all(calls).await {
        assert_ok(&r, "on either replica");
    }
    let counts = server.counts().await;
    assert_eq!(counts["token_requests"], 1, "{counts}");
    assert_eq!(counts["failed"], 0, "{counts}");
    let shown = gw.get(&format!("/admin/v1/secrets/{secret}")).await;
    assert_eq!(shown.json["version"], 2, "{}", shown.text);
}
