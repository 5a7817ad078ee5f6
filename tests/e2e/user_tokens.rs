//! Apps acting for a person: `X-Credgate-User-Token` with an ID token from a real OpenID
//! Provider (`tests/peers/oidc`). A grant to the person, or to a group their token names,
//! opens only with a valid token of theirs; every forgery an attacker would try is refused
//! before anything is decrypted, and neither the credential nor the token leaks.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::identity::Provider;
use crate::support::{Gateway, Options, Reply, send};
use crate::upstream::Upstream;

const CANARY: &str = "user-token-canary-5b1f0e";

struct World {
    gw: Gateway,
    up: Upstream,
    provider: Provider,
    key: String,
    agent: String,
    secret: String,
}

async fn world(extra: &[&str]) -> World {
    let provider = Provider::start();
    let mut args = vec![
        "--oidc-issuer".to_owned(),
        provider.issuer.clone(),
        "--oidc-audience".into(),
        "credgate-app".into(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let gw = Gateway::start_with(Options {
        args,
        ..Default::default()
    })
    .await
    .expect("gateway starts");
    let up = Upstream::start().await;
    let agent = gw.create_principal("agent", "assistant").await;
    let (_, key) = gw.issue_key(&agent).await;
    let secret = gw
        .create_secret(json!({"name": "crm", "type": "bearer", "credential": {"token": CANARY},
            "config": {"base_url": up.url}, "allow_private_destinations": true, "allow_insecure_http": true}))
        .await;
    World {
        gw,
        up,
        provider,
        key,
        agent,
        secret,
    }
}

/// A group principal with an external id at `issuer` (the name in its groups claim).
async fn external_group(gw: &Gateway, issuer: &str, name: &str, external_id: &str) -> String {
    let r = gw
        .post(
            "/admin/v1/principals",
            json!({"kind": "group", "name": name, "issuer": issuer, "external_id": external_id}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().unwrap().to_owned()
}

impl World {
    async fn call(&self, grant: &str, token: Option<&str>) -> Reply {
        let mut req = self
            .gw
            .via_grant(Method::GET, grant, "/records")
            .header("proxy-authorization", format!("Bearer {}", self.key));
        if let Some(token) = token {
            req = req.header("x-credgate-user-token", token);
        }
        send(req).await
    }

    async fn principal_by_external(&self, external_id: &str) -> Option<Value> {
        let all = self.gw.get("/admin/v1/principals?kind=user").await;
        all.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["external_id"] == external_id)
            .cloned()
    }

    async fn record(&self, reply: &Reply) -> Value {
        let id = reply.headers.get("x-credgate-request-id").unwrap().to_str().unwrap();
        self.gw.audit_of(id).await.pop().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_token_opens_their_grants_and_their_groups_and_nothing_else() {
    let w = world(&[]).await;
    let engineering = external_group(&w.gw, &w.provider.issuer, "Engineering", "engineering").await;
    // Bob is created by an operator before his first call.
    let bob =
        w.gw.post(
            "/admin/v1/principals",
            json!({"kind": "user", "name": "Bob", "issuer": w.provider.issuer, "external_id": "bob"}),
        )
        .await;
    assert_eq!(bob.status, 201, "{}", bob.text);
    let bob = bob.json["id"].as_str().unwrap().to_owned();
    let to_engineering = w.gw.issue_grant(&w.secret, &engineering, json!({})).await;
    let to_bob = w.gw.issue_grant(&w.secret, &bob, json!({})).await;
    let to_app = w.gw.issue_grant(&w.secret, &w.agent, json!({})).await;

    // Without a token, the app's own grant works and the group's does not.
    assert_eq!(w.call(&to_app, None).await.status, 200);
    let message = w.call(&to_engineering, None).await.assert_error(403, "forbidden");
    assert!(message.contains("X-Credgate-User-Token"), "{message}");
    assert_eq!(w.up.count(), 1);

    // Alice, in engineering by her token: the group's grant opens; she is created on first sight.
    let alice_token = w.provider.login("alice");
    let r = w.call(&to_engineering, Some(&alice_token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = w.up.last();
    assert_eq!(seen.headers["authorization"], format!("Bearer {CANARY}"));
    assert!(
        seen.headers.get("x-credgate-user-token").is_none(),
        "the token never goes upstream"
    );
    assert!(!seen.headers.iter().any(|(_, v)| v.as_bytes() == alice_token.as_bytes()));
    let alice = w.principal_by_external("alice").await.expect("alice was provisioned");
    assert_eq!(alice["name"], "alice@example.test");
    assert_eq!(alice["issuer"], w.provider.issuer);
    let alice_id = alice["id"].as_str().unwrap().to_owned();
    let record = w.record(&r).await;
    assert_eq!(record["principal_id"], w.agent, "the app's principal");
    assert_eq!(record["user_principal_id"], alice_id.as_str(), "and the person");
    assert_eq!(record["via_group_id"], engineering.as_str(), "and the group");
    let provisioned = w.gw.get("/admin/v1/audit?action=principal.provision").await;
    assert_eq!(provisioned.json["data"][0]["target"], alice_id.as_str());
    assert_eq!(
        provisioned.json["data"][0]["actor"],
        format!("oidc:{}", w.provider.issuer)
    );
    // Her second call finds her; no second principal.
    assert_eq!(w.call(&to_engineering, Some(&alice_token)).await.status, 200);
    let users = w.gw.get("/admin/v1/principals?kind=user").await;
    assert_eq!(users.json["data"].as_array().unwrap().len(), 2, "{}", users.text);
    // Alice cannot use Bob's grant; Bob (in finance) cannot use engineering's; Bob his own.
    let bob_token = w.provider.login("bob");
    w.call(&to_bob, Some(&alice_token)).await.assert_error(403, "forbidden");
    w.call(&to_engineering, Some(&bob_token))
        .await
        .assert_error(403, "forbidden");
    let r = w.call(&to_bob, Some(&bob_token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let record = w.record(&r).await;
    assert_eq!(record["user_principal_id"], bob.as_str(), "the pre-created principal");
    assert!(record.get("via_group_id").is_none());

    // Alice leaves engineering: her next token has no group, and the grant is closed to her.
    w.provider
        .control_with("/__oidc/groups", json!({"user": "alice", "groups": []}))
        .await;
    let after_leaving = w.provider.login("alice");
    w.call(&to_engineering, Some(&after_leaving))
        .await
        .assert_error(403, "forbidden");

    // The trail filtered by the person: both of Alice's calls, none of Bob's; the chain
    // (which compares the person's column with the hashed body) verifies.
    let hers = w.gw.get(&format!("/admin/v1/audit?user_principal_id={alice_id}")).await;
    let hers = hers.json["data"].as_array().unwrap();
    assert!(hers.len() >= 2 && hers.iter().all(|r| r["user_principal_id"] == alice_id.as_str()));
    let cli = w.gw.cli(&["audit", "list", "--user", &bob, "--json"], None);
    let bobs: Value = serde_json::from_str(&cli.stdout).unwrap();
    assert!(!bobs.as_array().unwrap().is_empty());
    assert!(
        bobs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["user_principal_id"] == bob.as_str())
    );
    assert_eq!(w.gw.get("/admin/v1/audit/verify").await.json["ok"], true);

    // Nothing of the credential or the tokens in the logs, the trail or any answer.
    let trail = w.gw.get("/admin/v1/audit?limit=1000").await.text;
    for needle in [CANARY, alice_token.as_str(), bob_token.as_str()] {
        assert!(!trail.contains(needle), "the audit trail holds a secret");
        assert!(!w.gw.logs().contains(needle), "the logs hold a secret");
    }
}

/// The attacks on a user token, each the exact request an attacker would send, each refused
/// with `user_token_invalid` (or `forbidden`) before the credential is decrypted: the upstream
/// never sees a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_foreign_and_rotated_out_tokens_are_refused() {
    let w = world(&[]).await;
    let engineering = external_group(&w.gw, &w.provider.issuer, "eng", "engineering").await;
    let grant = w.gw.issue_grant(&w.secret, &engineering, json!({})).await;
    let valid = w.provider.login("alice");
    assert_eq!(w.call(&grant, Some(&valid)).await.status, 200);
    // The provider's keys were read during that call: the floor counts from no later than now.
    let read_at = Instant::now();
    let calls = w.up.count();
    let now = chrono::Utc::now().timestamp();
    let claims = |change: Value| {
        let mut c = json!({"iss": w.provider.issuer, "aud": "credgate-app", "sub": "alice",
            "groups": ["engineering"], "iat": now, "exp": now + 300});
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let refused = |reply: Reply, why: &str| {
        let message = reply.assert_error(401, "user_token_invalid");
        assert!(message.contains(why), "{message}");
    };
    // Signed by the provider's real key, but expired, for another app, or not yet valid.
    refused(
        w.call(&grant, Some(&w.provider.sign(claims(json!({"exp": now - 3600}))).await))
            .await,
        "expired",
    );
    refused(
        w.call(
            &grant,
            Some(&w.provider.sign(claims(json!({"aud": "another-app"}))).await),
        )
        .await,
        "another audience",
    );
    refused(
        w.call(&grant, Some(&w.provider.sign(claims(json!({"nbf": now + 3600}))).await))
            .await,
        "not valid yet",
    );
    // Another issuer: one credgate does not trust, and one that claims to be the trusted one
    // but is signed by a key it never published.
    let stranger = Provider::start();
    let foreign = stranger.login("alice");
    refused(w.call(&grant, Some(&foreign)).await, "not one credgate trusts");
    let impostor = stranger.sign(claims(json!({}))).await;
    refused(w.call(&grant, Some(&impostor)).await, "names no key");
    // alg none, and HS256 keyed with the provider's public key.
    let (head, rest) = valid.split_once('.').unwrap();
    let body = rest.split_once('.').unwrap().0;
    let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#));
    refused(w.call(&grant, Some(&none)).await, "algorithm");
    let kid = serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()["kid"].clone();
    let jwks: Value = reqwest::get(format!("{}/jwks", w.provider.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let hs_head = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": kid}).to_string());
    let input = format!("{hs_head}.{body}");
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes()),
        input.as_bytes(),
    );
    refused(
        w.call(
            &grant,
            Some(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))),
        )
        .await,
        "algorithm",
    );
    // Claims changed after signing: another person's group.
    let tampered = format!(
        "{head}.{}.{}",
        URL_SAFE_NO_PAD.encode(claims(json!({"sub": "mallory"})).to_string()),
        valid.rsplit_once('.').unwrap().1
    );
    refused(w.call(&grant, Some(&tampered)).await, "signature");
    for garbage in ["", "not-a-jwt", "a.b.c"] {
        refused(w.call(&grant, Some(garbage)).await, "not a JWT");
    }
    // Two tokens at once.
    let two = send(
        w.gw.via_grant(Method::GET, &grant, "/records")
            .header("proxy-authorization", format!("Bearer {}", w.key))
            .header("x-credgate-user-token", &valid)
            .header("x-credgate-user-token", &valid),
    )
    .await;
    refused(two, "send one user token");
    assert_eq!(w.up.count(), calls, "no refused call reached the upstream");

    // The provider rotates its key and retires the old one. A token with the new key is
    // accepted once credgate reads the keys again (at most every 10 s for unknown keys); the
    // token signed with the retired key is not, from then on.
    w.provider.control("/__oidc/rotate").await;
    w.provider.control("/__oidc/retire").await;
    let fresh = w.provider.login("alice");
    if let Some(left) = Duration::from_millis(10_300).checked_sub(read_at.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let r = w.call(&grant, Some(&fresh)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    refused(w.call(&grant, Some(&valid)).await, "names no key");

    let trail = w.gw.get("/admin/v1/audit?limit=1000").await.text;
    let logs = w.gw.logs();
    for needle in [CANARY, valid.as_str(), fresh.as_str(), impostor.as_str()] {
        assert!(!trail.contains(needle), "the audit trail holds a secret");
        assert!(!logs.contains(needle), "the logs hold a secret");
    }
}

/// An issuer that does not provision users: only people an operator created are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_provisioning_only_known_people_are_accepted() {
    let w = world(&["--oidc-provision-users", "false"]).await;
    let grant = w.gw.issue_grant(&w.secret, &w.agent, json!({})).await;
    let token = w.provider.login("alice");
    let message = w.call(&grant, Some(&token)).await.assert_error(403, "forbidden");
    assert!(message.contains("not known to credgate"), "{message}");
    assert!(w.principal_by_external("alice").await.is_none());
    // An operator creates her, with the CLI.
    let created = w.gw.cli(
        &[
            "principal",
            "create",
            "--kind",
            "user",
            "--name",
            "Alice",
            "--issuer",
            &w.provider.issuer,
            "--external-id",
            "alice",
        ],
        None,
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(created.stdout.contains("alice"), "{}", created.stdout);
    let listed = w.gw.cli(&["principal", "list", "--kind", "user"], None);
    assert!(listed.stdout.contains("EXTERNAL ID"), "{}", listed.stdout);
    // Known now, at once (the cache forgot that she was unknown).
    assert_eq!(w.call(&grant, Some(&token)).await.status, 200);
}

/// A browser that holds a portal session and follows a data-plane link: the session cookie
/// never reaches the upstream, and an upstream cannot plant cookies under credgate's names on
/// its origin (a forged sign-in, or a session pushed aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credgates_cookies_neither_reach_an_upstream_nor_come_from_one() {
    let w = world(&[]).await;
    let grant = w.gw.issue_grant(&w.secret, &w.agent, json!({})).await;
    let r = send(
        w.gw.via_grant(Method::GET, &grant, "/set-cookies")
            .header("proxy-authorization", format!("Bearer {}", w.key))
            .header(
                "cookie",
                "__Host-credgate_session=the-operators-session; app=1; __Secure-credgate_signin=s",
            ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = w.up.last();
    assert_eq!(
        seen.headers["cookie"], "app=1",
        "only the app's own cookie goes upstream"
    );
    let set: Vec<_> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        set,
        ["upstream=1; Path=/"],
        "the upstream's own cookie comes back, no other"
    );
}

/// A call for a person through their group's grant, held for approval: the operator sees the
/// person, and the call made on approval is recorded for them, though their token may be gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_held_for_a_person_is_made_for_them_once_approved() {
    let w = world(&[]).await;
    let group = external_group(&w.gw, &w.provider.issuer, "eng", "engineering").await;
    let grant =
        w.gw.issue_grant(&w.secret, &group, json!({"require_approval": [{"methods": ["GET"]}]}))
            .await;
    let held = w.call(&grant, Some(&w.provider.login("alice"))).await;
    assert_eq!(held.status, 202, "{}", held.text);
    let id = held.json["approval"]["id"].as_str().unwrap().to_owned();
    let alice = w.principal_by_external("alice").await.unwrap()["id"].clone();
    let pending = w.gw.get(&format!("/admin/v1/approvals/{id}")).await;
    assert_eq!(pending.json["user_principal_id"], alice, "{}", pending.text);
    assert_eq!(pending.json["principal_id"], w.agent.as_str());
    assert_eq!(w.up.count(), 0);
    let approved = w.gw.post(&format!("/admin/v1/approvals/{id}/approve"), json!({})).await;
    assert_eq!(approved.json["status"], "executed", "{}", approved.text);
    assert_eq!(w.up.last().headers["authorization"], format!("Bearer {CANARY}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trail = w.gw.get(&format!("/admin/v1/audit?grant_id={grant}&limit=50")).await;
    let made = trail.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "proxy.response" && r["mode"] == "approval")
        .cloned()
        .expect("the call made on approval is recorded");
    assert_eq!(made["user_principal_id"], alice);
}

/// Several issuers from a file: a token of each trusted one works; a mistake in the file (an
/// issuer over plain http elsewhere than loopback) stops credgate at start with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_issuers_come_from_a_file_and_a_bad_one_stops_the_start() {
    let provider = Provider::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oidc.json");
    std::fs::write(
        &file,
        serde_json::to_string(&json!({"issuers": [
            {"issuer": "https://login.example.com", "audience": "credgate"},
            {"issuer": provider.issuer, "audience": "credgate-app", "groups_claim": "groups", "provision_users": true},
        ]}))
        .unwrap(),
    )
    .unwrap();
    let gw = Gateway::start_with(Options {
        args: vec!["--oidc-config".into(), file.display().to_string()],
        ..Default::default()
    })
    .await
    .expect("gateway starts");
    let agent = gw.create_principal("agent", "assistant").await;
    let (_, key) = gw.issue_key(&agent).await;
    let up = Upstream::start().await;
    let secret = gw
        .create_secret(json!({"name": "crm", "type": "bearer", "credential": {"token": CANARY},
            "config": {"base_url": up.url}, "allow_private_destinations": true, "allow_insecure_http": true}))
        .await;
    let group = external_group(&gw, &provider.issuer, "eng", "engineering").await;
    let grant = gw.issue_grant(&secret, &group, json!({})).await;
    let r = send(
        gw.via_grant(Method::GET, &grant, "/records")
            .header("proxy-authorization", format!("Bearer {key}"))
            .header("x-credgate-user-token", provider.login("alice")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    std::fs::write(
        &file,
        r#"{"issuers": [{"issuer": "http://login.example.com", "audience": "credgate"}]}"#,
    )
    .unwrap();
    let failure = Gateway::start_with(Options {
        args: vec!["--oidc-config".into(), file.display().to_string()],
        ..Default::default()
    })
    .await
    .err()
    .expect("refused at start");
    assert!(failure.output.contains("must be https"), "{}", failure.output);
}
