//! Templates that sign each request (contract 0.2: the host's HMAC and clock, and the body as
//! declared), end to end through a real gateway to an exchange peer that checks every
//! signature with ccxt's own signing code (`tests/peers/exchange_oracle.py`).

use reqwest::Method;
use serde_json::{Value, json};

use crate::proxy::Fixture;
use crate::support::{PythonPeer, send};

const API_KEY: &str = "oracle-api-key-4471";
/// Canary secrets: never in a reply, a log or the trail.
const SECRET: &str = "c2lnbmluZy1jYW5hcnktc2VjcmV0LTk5MjE=";
const PASSPHRASE: &str = "canary-passphrase-5530";

/// The exchange peer.
struct Oracle(PythonPeer);

impl Oracle {
    fn start(exchange: &str) -> Self {
        let args = [
            "--exchange",
            exchange,
            "--api-key",
            API_KEY,
            "--secret",
            SECRET,
            "--password",
            PASSPHRASE,
        ];
        Self(PythonPeer::start("exchange_oracle.py", &args.map(std::ffi::OsStr::new)))
    }

    fn url(&self) -> &str {
        &self.0.url
    }

    async fn count(&self) -> u64 {
        self.0.get_json("/__oracle/count").await["count"].as_u64().unwrap()
    }
}

async fn exchange_grant(f: &Fixture, exchange: &str, oracle: &Oracle) -> String {
    let credential = match exchange {
        "okx" => json!({"api_key": API_KEY, "secret": SECRET, "passphrase": PASSPHRASE}),
        _ => json!({"api_key": API_KEY, "secret": SECRET}),
    };
    let secret = f
        .secret(exchange, exchange, credential, json!({"base_url": oracle.url()}))
        .await;
    f.grant(&secret, json!({})).await
}

/// Checks the peer's verdict, and that no secret came back.
fn assert_verified(reply: &crate::support::Reply, what: &str) -> Value {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert_eq!(reply.json["verified"], true, "{what}: {}", reply.text);
    for canary in [SECRET, PASSPHRASE] {
        assert!(!reply.text.contains(canary), "{what}: a secret came back");
    }
    reply.json.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_calls_are_signed_over_query_and_body_as_ccxt_signs_them() {
    let f = Fixture::new().await;
    let oracle = Oracle::start("binance");
    let grant = exchange_grant(&f, "binance", &oracle).await;
    // A GET with a query of its own, and one carrying a stale timestamp and a forged signature:
    // both are replaced, never signed over.
    for path in [
        "api/v3/account?recvWindow=5000&omitZeroBalances=true",
        "api/v3/account?timestamp=1&signature=forged",
    ] {
        let r = send(f.gw.via_grant(Method::GET, &grant, path).bearer_auth(&f.key)).await;
        let seen = assert_verified(&r, path);
        assert!(!seen["query"].as_str().unwrap().contains("forged"), "{seen}");
    }
    // A POST whose form body is part of what is signed.
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "api/v3/order")
            .bearer_auth(&f.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=0.1&timeInForce=GTC"),
    )
    .await;
    let seen = assert_verified(&r, "order");
    assert_eq!(seen["method"], "POST");
    assert!(seen["body"].as_str().unwrap().starts_with("symbol=BTCUSDT"), "{seen}");
    assert_eq!(oracle.count().await, 3);
    // The secrets sign and are never sent, logged, audited or stored in the clear; the trail
    // keeps the signed query with the signature redacted.
    let trail = f.gw.get("/admin/v1/audit?kind=proxy&limit=100").await;
    assert!(trail.text.contains("signature=[REDACTED]"), "{}", trail.text);
    for canary in [SECRET, PASSPHRASE] {
        assert!(!trail.text.contains(canary) && !f.gw.logs().contains(canary));
        crate::support::assert_no_file_holds(&f.gw.data_dir, canary, "the exchange secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_calls_are_signed_with_the_bodys_nonce_as_ccxt_signs_them() {
    let f = Fixture::new().await;
    let oracle = Oracle::start("kraken");
    let grant = exchange_grant(&f, "kraken", &oracle).await;
    let nonce = chrono::Utc::now().timestamp_millis();
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "0/private/Balance")
            .bearer_auth(&f.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("nonce={nonce}")),
    )
    .await;
    assert_verified(&r, "balance");
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "0/private/AddOrder")
            .bearer_auth(&f.key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "nonce={}&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
                nonce + 1
            )),
    )
    .await;
    assert_verified(&r, "order");
    // No nonce: the template refuses, and nothing reaches the exchange.
    let before = oracle.count().await;
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "0/private/Balance")
            .bearer_auth(&f.key)
            .body("pair=XBTUSD"),
    )
    .await;
    r.assert_error(502, "provider_error");
    assert_eq!(oracle.count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_calls_are_signed_with_timestamp_path_and_body_as_ccxt_signs_them() {
    let f = Fixture::new().await;
    let oracle = Oracle::start("okx");
    let grant = exchange_grant(&f, "okx", &oracle).await;
    let r = send(
        f.gw.via_grant(Method::GET, &grant, "api/v5/account/balance?ccy=BTC")
            .bearer_auth(&f.key),
    )
    .await;
    assert_verified(&r, "balance");
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "api/v5/trade/order")
            .bearer_auth(&f.key)
            .header("content-type", "application/json")
            .body(r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"2.15","sz":"2"}"#),
    )
    .await;
    assert_verified(&r, "order");
}

/// The attack: a body past what the template declared it reads, sent to make credgate buffer
/// without bound. Refused with 413 before anything is decrypted or signed; nothing reaches the
/// exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_the_templates_declared_bound_is_refused_before_signing() {
    let f = Fixture::new().await;
    let oracle = Oracle::start("binance");
    let grant = exchange_grant(&f, "binance", &oracle).await;
    let big = "a".repeat(64 * 1024 + 1);
    let declared = send(
        f.gw.via_grant(Method::POST, &grant, "api/v3/order")
            .bearer_auth(&f.key)
            .body(big.clone()),
    )
    .await;
    let message = declared.assert_error(413, "payload_too_large");
    assert!(message.contains("65536"), "{message}");
    // Streamed without a length: counted as it comes, refused the same way.
    let stream = futures_util::stream::iter(
        big.into_bytes()
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let streamed = send(
        f.gw.via_grant(Method::POST, &grant, "api/v3/order")
            .bearer_auth(&f.key)
            .body(reqwest::Body::wrap_stream(stream)),
    )
    .await;
    streamed.assert_error(413, "payload_too_large");
    assert_eq!(oracle.count().await, 0);
    for canary in [SECRET, PASSPHRASE] {
        assert!(!f.gw.logs().contains(canary));
    }
}

/// A template that asks for the body's digest, not the body: credgate buffers the body (within
/// its own limit), hands over its SHA-256, and sends the body as it came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_digest_is_computed_by_credgate_and_the_body_sent_as_it_came() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        crate::plugins::fixtures::path("digest-signer"),
        dir.path().join("digest-signer.wasm"),
    )
    .unwrap();
    let f = Fixture::with(crate::support::Options {
        args: vec![
            "--plugins-dir".into(),
            dir.path().display().to_string(),
            "--max-body-bytes".into(),
            "4096".into(),
        ],
        ..Default::default()
    })
    .await;
    let secret = f
        .secret("digest", "digest-signer", json!({"secret": "digest-secret"}), json!({}))
        .await;
    let grant = f.grant(&secret, json!({})).await;
    let body = "x".repeat(3000);
    let r = send(
        f.gw.via_grant(Method::PUT, &grant, "upload")
            .bearer_auth(&f.key)
            .body(body.clone()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = f.up.last();
    assert_eq!(seen.body, body.as_bytes(), "the body as it came");
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    assert_eq!(seen.header("x-body-sha256"), Some(hex::encode(digest.as_ref())));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"digest-secret");
    assert_eq!(
        seen.header("x-body-signature"),
        Some(hex::encode(ring::hmac::sign(&key, digest.as_ref())))
    );
    // Past the gateway's own body limit: refused, nothing sent.
    let before = f.up.count();
    let r = send(
        f.gw.via_grant(Method::PUT, &grant, "upload")
            .bearer_auth(&f.key)
            .body("x".repeat(5000)),
    )
    .await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(f.up.count(), before);
}
