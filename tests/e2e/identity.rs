//! ID tokens from a real OpenID Provider (`tests/peers/oidc`: oidc-provider, with a scripted
//! authorization-code login), verified by credgate's verifier against the keys the provider
//! publishes: the claims come through, another audience is refused, and a rotated-out key is
//! no longer trusted once the provider stops publishing it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::Peer;

use credgate::identity::jwt::{Expect, JwkSet, JwtError, verify};
use serde_json::Value;

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/oidc")
}

/// The provider, stopped when dropped.
pub(crate) struct Provider {
    _peer: Peer,
    pub issuer: String,
}

impl Provider {
    pub fn start() -> Self {
        crate::support::npm_ci(&peer_dir());
        let mut cmd = Command::new("node");
        cmd.args(["server.mjs", "--port", "0"])
            .current_dir(peer_dir())
            .stderr(Stdio::null());
        let peer = Peer::spawn(cmd, "the OpenID Provider");
        Self {
            issuer: peer.url.clone(),
            _peer: peer,
        }
    }

    /// An ID token for `user`, from the provider's real code flow.
    pub fn login(&self, user: &str) -> String {
        let out = Command::new("node")
            .args(["login.mjs", "--issuer", &self.issuer, "--user", user])
            .current_dir(peer_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// The keys it publishes now, found as a relying party finds them: through discovery.
    async fn keys(&self) -> JwkSet {
        let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
        reqwest::get(jwks_uri).await.unwrap().json().await.unwrap()
    }

    pub async fn control(&self, path: &str) {
        self.control_with(path, serde_json::json!({})).await;
    }

    /// A control call with a JSON body; its JSON answer.
    pub async fn control_with(&self, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// `claims` signed with the provider's current key, as they are.
    pub async fn sign(&self, claims: Value) -> String {
        let r = self
            .control_with("/__oidc/sign", serde_json::json!({"claims": claims}))
            .await;
        r["token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_from_a_real_provider_verify_and_a_retired_key_does_not() {
    crate::support::init();
    let provider = Provider::start();
    let now = chrono::Utc::now().timestamp();
    let expect = Expect {
        issuer: &provider.issuer,
        audience: "credgate-app",
        now,
    };
    let alice = provider.login("alice");
    let keys = provider.keys().await;
    let claims = verify(&alice, &keys.keys, &expect).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["engineering"]));
    let elsewhere = Expect {
        audience: "another-app",
        ..expect.clone()
    };
    assert_eq!(verify(&alice, &keys.keys, &elsewhere), Err(JwtError::Audience));
    assert_eq!(
        verify(
            &alice,
            &keys.keys,
            &Expect {
                now: now + 3600,
                ..expect.clone()
            }
        ),
        Err(JwtError::Expired)
    );

    // A new signing key: a new token names it, and is trusted once the keys are read again;
    // the old token still verifies while the old key is published, and not after.
    provider.control("/__oidc/rotate").await;
    let fresh = provider.login("alice");
    assert_eq!(
        verify(&fresh, &keys.keys, &expect),
        Err(JwtError::UnknownKey),
        "not with the keys read before"
    );
    let rotated = provider.keys().await;
    assert!(verify(&fresh, &rotated.keys, &expect).is_ok());
    assert!(verify(&alice, &rotated.keys, &expect).is_ok());
    provider.control("/__oidc/retire").await;
    let retired = provider.keys().await;
    assert_eq!(verify(&alice, &retired.keys, &expect), Err(JwtError::UnknownKey));
    assert!(verify(&fresh, &retired.keys, &expect).is_ok());
}

/// The issuer as credgate keeps it: discovery and keys read once and cached, read again when a
/// token names a key they lack (a rotation), and not more often than the floor however many
/// tokens with made-up key ids arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuers_keys_are_cached_and_read_again_on_rotation_within_a_floor() {
    crate::support::init();
    let provider = Provider::start();
    let upstream = credgate::outbound::client::Upstream::build(&credgate::outbound::client::UpstreamOptions {
        connect_timeout: std::time::Duration::from_secs(5),
        first_byte_timeout: std::time::Duration::from_secs(5),
        idle_timeout: std::time::Duration::from_secs(5),
        ca_file: None,
    })
    .unwrap();
    // A floor long enough that a login (a node process) fits in it on a loaded machine.
    let floor = std::time::Duration::from_secs(5);
    let issuer = credgate::identity::issuer::Issuer::new(&provider.issuer, "credgate-app").with_refetch_floor(floor);
    let now = || chrono::Utc::now().timestamp();
    let alice = provider.login("alice");
    assert_eq!(issuer.verify(&upstream, &alice, now()).await.unwrap()["sub"], "alice");
    let read_at = std::time::Instant::now();
    assert_eq!(issuer.verify(&upstream, &alice, now()).await.unwrap()["sub"], "alice");
    assert_eq!(issuer.fetches(), 1, "read once, then cached");

    // A token signed with a key the cache lacks, right after a read: within the floor, refused
    // without asking the provider again.
    provider.control("/__oidc/rotate").await;
    let fresh = provider.login("bob");
    let refused = issuer.verify(&upstream, &fresh, now()).await;
    assert!(
        matches!(
            refused,
            Err(credgate::identity::issuer::IssuerError::Token(JwtError::UnknownKey))
        ),
        "{refused:?}"
    );
    assert_eq!(issuer.fetches(), 1);
    // Past the floor: read again, and accepted.
    if let Some(left) = (floor + std::time::Duration::from_millis(200)).checked_sub(read_at.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let claims = issuer.verify(&upstream, &fresh, now()).await.unwrap();
    assert_eq!(claims["sub"], "bob");
    assert_eq!(issuer.fetches(), 2);
    // Tokens with made-up key ids, many: at most one more read per floor.
    let mut forged = fresh.clone();
    let (head, _) = fresh.split_once('.').unwrap();
    let made_up = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"alg":"RS256","kid":"made-up"}"#,
    );
    forged.replace_range(..head.len(), &made_up);
    for _ in 0..20 {
        assert!(issuer.verify(&upstream, &forged, now()).await.is_err());
    }
    assert!(issuer.fetches() <= 3, "{} reads for 20 forged tokens", issuer.fetches());

    // The provider goes down. Past the floor, a token naming an unknown key makes credgate
    // try to read the keys again and fail: the keys read before still check tokens, and the
    // unknown key is refused as such (not every user for an outage).
    let fetches = issuer.fetches();
    drop(provider);
    tokio::time::sleep(floor + std::time::Duration::from_millis(200)).await;
    let refused = issuer.verify(&upstream, &forged, now()).await;
    assert!(
        matches!(
            refused,
            Err(credgate::identity::issuer::IssuerError::Token(JwtError::UnknownKey))
        ),
        "{refused:?}"
    );
    assert_eq!(issuer.verify(&upstream, &fresh, now()).await.unwrap()["sub"], "bob");
    assert_eq!(issuer.fetches(), fetches, "no read succeeded");
}
