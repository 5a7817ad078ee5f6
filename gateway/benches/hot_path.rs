//! Criterion benchmarks of the data plane's hot path, piece by piece: key check, grant
//! resolution (cache hit), decryption, each native injector, one Wasm injection (fresh
//! instance + call), one SigV4 signature, header validation, and keeping the credential out of
//! what comes back (a response's headers, on every call; a body, for `redact_responses`).
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

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
