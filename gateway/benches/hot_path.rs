//! Criterion benchmarks of the data plane's hot path, piece by piece: key check, grant
//! resolution (cache hit), decryption, each native injector, one Wasm injection (fresh
//! instance + call), a template signing the body with the host's HMAC, a minted token read
//! from the cache, one SigV4 signature, header validation, and keeping the credential out of
//! what comes back (a response's headers, on every call; a body, for `redact_responses`), and
//! a person's ID token checked against cached provider keys (RS256 and ES256).
//!
//! `cargo bench -p credgate --bench hot_path`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::SystemTime;

use credgate::crypto::{KeyRing, KeyRingSource, MasterKey, open_value, seal_value};
use credgate::inject::sigv4::{SigningOptions, sign_request};
use credgate::inject::{self, InjectRequest, Injector, Payload};
use credgate::plugin::WasmInjector;
use credgate::plugin::{Limits, LoadedPlugin, PluginEngine};
use credgate::redact::{Credential, SecretString};
use credgate::vault::token::{self, TokenKind};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value};
use url::Url;

fn credential(fields: &[(&str, &str)]) -> Credential {
    let mut c = Credential::new();
    for (k, v) in fields {
        c.insert(*k, SecretString::from(*v));
    }
    c
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let target = Url::parse("https://api.openai.com/v1/chat/completions").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let method = Method::POST;
    let empty = Map::<String, Value>::new();
    let bearer = credential(&[("token", "sk-proj-0123456789abcdefghijklmnopqrstuvwxyz")]);

    let issued = token::issue(TokenKind::App).unwrap();
    let presented = issued.token.expose().to_owned();
    c.bench_function("key check (prefix + constant-time hash compare)", |b| {
        b.iter(|| {
            let prefix = token::prefix_of(TokenKind::App, &presented).unwrap();
            assert_eq!(prefix, issued.prefix);
            assert!(token::verify(&presented, &issued.hash));
        })
    });

    // Grant and key resolution from the hot cache, over a real (SQLite) store that is reached
    // only on the first, missing, lookup.
    let dir = tempfile::tempdir().unwrap();
    let url = credgate::store::DatabaseUrl::new(format!("sqlite:{}", dir.path().join("bench.db").display()));
    let store = runtime.block_on(credgate::store::connect(&url)).unwrap();
    let (grant_id, key_prefix) = runtime.block_on(seed(store.as_ref(), &issued));
    let cache = credgate::cache::HotCache::new();
    c.bench_function("grant resolution (cache hit)", |b| {
        b.to_async(&runtime).iter(|| async {
            cache
                .grant(store.as_ref(), std::hint::black_box(grant_id))
                .await
                .unwrap()
                .unwrap()
        })
    });
    c.bench_function("key lookup (cache hit)", |b| {
        b.to_async(&runtime).iter(|| async {
            cache
                .api_key(store.as_ref(), std::hint::black_box(&key_prefix))
                .await
                .unwrap()
                .unwrap()
        })
    });

    let ring = KeyRing::new(vec![MasterKey::generate().unwrap()], KeyRingSource::Memory).unwrap();
    let sealed = seal_value(&ring, "secret-id", 1, &bearer.to_plaintext()).unwrap();
    c.bench_function("decrypt (unwrap data key + open value + parse)", |b| {
        b.iter(|| {
            let plain = open_value(&ring, "secret-id", 1, &sealed).unwrap();
            Credential::from_plaintext(&plain).unwrap()
        })
    });

    let request = InjectRequest {
        method: &method,
        url: &target,
        headers: &headers,
        payload: Payload::NotNeeded,
    };
    for (name, secret_type, credential, config) in [
        ("inject native bearer", "bearer", bearer.clone(), Map::new()),
        (
            "inject native api_key header",
            "api_key",
            bearer.clone(),
            serde_json::from_str::<Map<String, Value>>(r#"{"header": "x-api-key", "format": "Token {token}"}"#)
                .unwrap(),
        ),
        (
            "inject native basic",
            "basic",
            credential(&[("username", "api"), ("password", "key-0123456789")]),
            Map::new(),
        ),
    ] {
        let injector = inject::native(secret_type).unwrap();
        c.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let edits = injector.inject(&request, &credential, &config).await.unwrap();
                let mut h = headers.clone();
                let mut u = target.query().map(str::to_owned);
                inject::apply(edits, &mut h, &mut u).unwrap()
            })
        });
    }

    let engine = PluginEngine::new(Limits::default()).unwrap();
    let openai = credgate::plugin::bundled::BUNDLED
        .iter()
        .find(|(n, _)| *n == "openai")
        .unwrap()
        .1;
    let plugin = runtime.block_on(LoadedPlugin::load(&engine, openai.to_vec())).unwrap();
    let wasm = WasmInjector {
        plugin: Arc::new(plugin),
    };
    c.bench_function("inject wasm openai (fresh instance + call)", |b| {
        b.to_async(&runtime).iter(|| async {
            let edits = wasm.inject(&request, &bearer, &empty).await.unwrap();
            let mut h = headers.clone();
            let mut u = target.query().map(str::to_owned);
            inject::apply(edits, &mut h, &mut u).unwrap()
        })
    });

    // A template that signs the body: HMAC-SHA256 by the host over the query, the clock's
    // timestamp and a 1 KiB body handed over as bytes. Against the openai injection above, the
    // difference is what signing costs a call (besides buffering the body).
    let bundled = |name: &str| {
        credgate::plugin::bundled::BUNDLED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .to_vec()
    };
    let binance = WasmInjector {
        plugin: Arc::new(
            runtime
                .block_on(LoadedPlugin::load(&engine, bundled("binance")))
                .unwrap(),
        ),
    };
    let exchange = Url::parse("https://api.binance.com/api/v3/order?symbol=BTCUSDT").unwrap();
    let signed_request = InjectRequest {
        method: &method,
        url: &exchange,
        headers: &headers,
        payload: Payload::Bytes(bytes::Bytes::from(vec![b'a'; 1024])),
    };
    let keys = credential(&[("api_key", "bench-api-key"), ("secret", "bench-secret-0123456789")]);
    c.bench_function(
        "inject wasm binance (HMAC-SHA256 over query + 1 KiB body, clock)",
        |b| {
            b.to_async(&runtime).iter(|| async {
                let edits = binance.inject(&signed_request, &keys, &empty).await.unwrap();
                let mut h = headers.clone();
                let mut u = exchange.query().map(str::to_owned);
                inject::apply(edits, &mut h, &mut u).unwrap()
            })
        },
    );

    // A minted token's cost on a call once it is cached: the cache read and merging its fields
    // into the credential, before the injection itself (timed above). The token comes from a
    // token endpoint on loopback, minted once before the timing.
    let token_endpoint = runtime.block_on(token_endpoint());
    let minting: Arc<dyn Injector> = Arc::new(WasmInjector {
        plugin: Arc::new(
            runtime
                .block_on(LoadedPlugin::load(&engine, bundled("oauth2-client-credentials")))
                .unwrap(),
        ),
    });
    let minted_secret = Arc::new(credgate::cache::LiveSecret::new(
        secret_meta(
            "oauth2-client-credentials",
            serde_json::json!({"token_url": format!("{token_endpoint}/token"), "client_auth": "basic", "base_url": token_endpoint}),
        ),
        seal_value(&ring, "minted", 1, &credential(&[("t", "t")]).to_plaintext()).unwrap(),
    ));
    let client = credential(&[("client_id", "bench-client"), ("client_secret", "bench-client-secret")]);
    let upstream = credgate::outbound::client::Upstream::build(&credgate::outbound::client::UpstreamOptions {
        connect_timeout: std::time::Duration::from_secs(5),
        first_byte_timeout: std::time::Duration::from_secs(5),
        idle_timeout: std::time::Duration::from_secs(5),
        ca_file: None,
    })
    .unwrap();
    let minter = Arc::new(credgate::minting::Minter::new(Default::default()));
    let ctx = credgate::minting::MintContext {
        upstream,
        store: store.clone(),
        ring: Arc::new(ring.clone()),
        replica: uuid::Uuid::new_v4(),
    };
    runtime
        .block_on(minter.fields(&ctx, &minted_secret, &minting, &client))
        .unwrap()
        .unwrap();
    c.bench_function("minted token (cache hit) merged into the credential", |b| {
        b.to_async(&runtime).iter(|| async {
            let obtained = minter
                .fields(&ctx, &minted_secret, &minting, &client)
                .await
                .unwrap()
                .unwrap();
            let mut merged = client.clone();
            for (name, value) in obtained.fields.fields() {
                merged.insert(name, value.clone());
            }
            merged
        })
    });

    let aws = credential(&[
        ("access_key_id", "AKIDEXAMPLE"),
        ("secret_access_key", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    ]);
    let s3 = Url::parse("https://s3.us-east-1.amazonaws.com/bucket/key").unwrap();
    let payload = Payload::Sha256(hex::encode(<sha2::Sha256 as sha2::Digest>::digest([0u8; 1024])));
    let options = SigningOptions::for_service("us-east-1", "s3", SystemTime::now());
    c.bench_function("sigv4 signature (1 KiB body, hash given)", |b| {
        b.iter(|| sign_request("PUT", &s3, &headers, &payload, &aws, &options).unwrap())
    });

    // What every call pays to keep the credential out of the response headers: the needles,
    // then a look at a typical response's headers, none holding the value.
    let bearer_edits = || inject::Edits {
        set_headers: vec![(
            "authorization".into(),
            SecretString::from("Bearer sk-proj-0123456789abcdefghijklmnopqrstuvwxyz"),
        )],
        ..Default::default()
    };
    let mut response = HeaderMap::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("content-length", "1234"),
        ("date", "Sun, 06 Dec 2026 10:00:00 GMT"),
        ("x-request-id", "req_0123456789abcdef"),
        ("openai-processing-ms", "123"),
        ("cache-control", "no-cache, must-revalidate"),
        ("set-cookie", "__cf_bm=abcdef0123456789; path=/; secure; HttpOnly"),
        ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ] {
        response.insert(k, HeaderValue::from_static(v));
    }
    c.bench_function("response headers scrubbed (needles + 8 headers, no match)", |b| {
        b.iter(|| {
            let needles = credgate::proxy::scrub::Needles::new(&bearer, &bearer_edits());
            let mut h = response.clone();
            needles.scrub_headers(&mut h);
            h
        })
    });

    // `redact_responses`: 1 MiB of response body through the scrubber in 16 KiB chunks.
    let mut group = c.benchmark_group("redact_responses");
    group.throughput(criterion::Throughput::Bytes(1 << 20));
    let chunks: Vec<bytes::Bytes> = (0..64u8)
        .map(|i| {
            bytes::Bytes::from(
                (0..16 * 1024)
                    .map(|j| (j as u8).wrapping_mul(31) ^ i)
                    .collect::<Vec<u8>>(),
            )
        })
        .collect();
    // The same body through the same plumbing unscrubbed: the difference is the scrubber's.
    group.bench_function("pass 1 MiB body unscrubbed (16 KiB chunks)", |b| {
        b.to_async(&runtime).iter(|| async {
            use http_body_util::BodyExt;
            let frames = chunks
                .iter()
                .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(c.clone())));
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            body.collect().await.unwrap().to_bytes().len()
        })
    });
    group.bench_function("scrub 1 MiB body (16 KiB chunks)", |b| {
        b.to_async(&runtime).iter(|| async {
            use http_body_util::BodyExt;
            let frames = chunks
                .iter()
                .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(c.clone())));
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            let needles = credgate::proxy::scrub::Needles::new(&bearer, &bearer_edits());
            let scrubbed = credgate::proxy::scrub::ScrubbedBody::wrap(body, needles);
            scrubbed.collect().await.unwrap().to_bytes().len()
        })
    });
    group.finish();

    // A user token, as an identity provider signs it, against the keys credgate has cached.
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"iss": "https://idp.example", "aud": "credgate", "sub": "alice",
        "email": "alice@example.test", "groups": ["engineering", "oncall"], "iat": now, "exp": now + 600});
    let expect = credgate::identity::jwt::Expect {
        issuer: "https://idp.example",
        audience: "credgate",
        now,
    };
    for (name, (token, jwk)) in [
        ("user token verified, RS256 2048 (keys cached)", rs256_token(&claims)),
        ("user token verified, ES256 (keys cached)", es256_token(&claims)),
    ] {
        let keys = [jwk];
        c.bench_function(name, |b| {
            b.iter(|| credgate::identity::jwt::verify(std::hint::black_box(&token), &keys, &expect).unwrap())
        });
    }
    // The same token again, as an app sends it with every call while it lives.
    let (token, _) = rs256_token(&claims);
    let verified = credgate::identity::verified::Verified::default();
    let person = credgate::identity::User {
        issuer: "https://idp.example".into(),
        subject: "alice".into(),
        display: "alice@example.test".into(),
        groups: vec!["engineering".into(), "oncall".into()],
        expires: now + 600,
    };
    verified.put(&token, &person, 0);
    c.bench_function("user token seen before (verified-token cache hit)", |b| {
        b.iter(|| verified.get(std::hint::black_box(&token), now, |_| 0).unwrap())
    });

    c.bench_function("header validation (name + value)", |b| {
        b.iter(|| {
            credgate::edit_rules::check_header_name(std::hint::black_box("authorization")).unwrap();
            credgate::edit_rules::check_header_value(
                "authorization",
                std::hint::black_box(b"Bearer sk-proj-0123456789abcdefghijklmnopqrstuvwxyz"),
            )
            .unwrap();
        })
    });
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn jwk(value: Value) -> credgate::identity::jwt::Jwk {
    serde_json::from_value(value).unwrap()
}

/// A token signed with a fresh RSA 2048 key (openssl makes it: ring makes no RSA keys), and
/// the key's JWK.
fn rs256_token(claims: &Value) -> (String, credgate::identity::jwt::Jwk) {
    use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
    // PKCS#1: the form ring reads whatever OpenSSL's version.
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .expect("openssl makes the benchmark's RSA key");
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::PrivatePkcs1KeyDer::from_pem_slice(&out.stdout).unwrap();
    let pair = RsaKeyPair::from_der(der.secret_pkcs1_der()).unwrap();
    let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public_key().into();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","kid":"r1"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let key = jwk(
        serde_json::json!({"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig",
        "n": b64(&public.n), "e": b64(&public.e)}),
    );
    (format!("{input}.{}", b64(&sig)), key)
}

/// The same with a P-256 key.
fn es256_token(claims: &Value) -> (String, credgate::identity::jwt::Jwk) {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256","kid":"e1"}"#),
        b64(claims.to_string().as_bytes())
    );
    let sig = pair.sign(&rng, input.as_bytes()).unwrap();
    let key = jwk(
        serde_json::json!({"kty": "EC", "kid": "e1", "crv": "P-256", "alg": "ES256",
        "x": b64(&point[1..33]), "y": b64(&point[33..])}),
    );
    (format!("{input}.{}", b64(sig.as_ref())), key)
}

/// A principal, its key, a secret and a grant, for the cache benchmarks.
async fn seed(store: &dyn credgate::store::Store, issued: &token::IssuedToken) -> (uuid::Uuid, String) {
    use credgate::audit::{AuditEvent, AuditKind};
    use credgate::clock::now;
    use credgate::vault::{ApiKey, Grant, Principal, PrincipalKind, SecretMeta};
    let event = || AuditEvent::new(AuditKind::Admin, "bench.seed", "ok");
    let principal = Principal {
        id: uuid::Uuid::new_v4(),
        kind: PrincipalKind::Agent,
        name: "bench".into(),
        issuer: None,
        external_id: None,
        created_at: now(),
    };
    store.insert_principal(&principal, &event()).await.unwrap();
    let key = ApiKey {
        id: uuid::Uuid::new_v4(),
        principal_id: principal.id,
        name: None,
        prefix: issued.prefix.clone(),
        hash: issued.hash.clone(),
        created_at: now(),
        expires_at: None,
        revoked_at: None,
    };
    store.insert_api_key(&key, &event()).await.unwrap();
    let meta = SecretMeta {
        id: uuid::Uuid::new_v4(),
        name: "bench".into(),
        slug: "bench".into(),
        secret_type: "bearer".into(),
        config: Map::new(),
        allowed_hosts: vec!["api.openai.com".into()],
        allow_private_destinations: false,
        allow_insecure_http: false,
        redact_responses: false,
        version: 1,
        credential_fields: vec!["token".into()],
        created_at: now(),
        updated_at: now(),
        deleted_at: None,
    };
    let ring = KeyRing::new(vec![MasterKey::generate().unwrap()], KeyRingSource::Memory).unwrap();
    let sealed = seal_value(
        &ring,
        &meta.id.to_string(),
        1,
        &credential(&[("token", "t")]).to_plaintext(),
    )
    .unwrap();
    store.insert_secret(&meta, &sealed, &event()).await.unwrap();
    let grant = Grant {
        grant_id: uuid::Uuid::new_v4(),
        secret_id: meta.id,
        principal_id: principal.id,
        grant_policy: credgate::vault::grant::GrantPolicyInput::default()
            .resolve(now())
            .unwrap(),
        created_at: now(),
        revoked_at: None,
        revoked_reason: None,
    };
    store.insert_grant(&grant, &event()).await.unwrap();
    (grant.grant_id, key.prefix)
}

/// A token endpoint on loopback answering every request with an hour-long token; its base URL.
async fn token_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"access_token": "bench-token", "expires_in": 3600}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn secret_meta(secret_type: &str, config: Value) -> credgate::vault::SecretMeta {
    let now = credgate::clock::now();
    credgate::vault::SecretMeta {
        id: uuid::Uuid::new_v4(),
        name: "bench".into(),
        slug: "bench".into(),
        secret_type: secret_type.into(),
        config: config.as_object().unwrap().clone(),
        allowed_hosts: vec!["127.0.0.1".into()],
        allow_private_destinations: true,
        allow_insecure_http: true,
        redact_responses: false,
        version: 1,
        credential_fields: vec!["client_id".into(), "client_secret".into()],
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
