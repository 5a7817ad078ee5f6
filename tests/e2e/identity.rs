//! ID tokens from a real OpenID Provider (`tests/peers/oidc`: oidc-provider, with a scripted
//! authorization-code login), verified by credgate's verifier against the keys the provider
//! publishes: the claims come through, another audience is refused, and a rotated-out key is
//! no longer trusted once the provider stops publishing it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use credgate::identity::jwt::{Expect, JwkSet, JwtError, verify};
use serde_json::Value;

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/oidc")
}

/// The provider, stopped when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start() -> Self {
        let mut child = Command::new("node")
            .args(["server.mjs", "--port", "0"])
            .current_dir(peer_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the OpenID Provider");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the provider said {first:?}"))
            .to_owned();
        Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        }
    }

    /// An ID token for `user`, from the provider's real code flow.
    fn login(&self, user: &str) -> String {
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

    async fn control(&self, path: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.issuer))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
