//! Provider plugins end to end: every bundled template through a real gateway to an echo
//! upstream, Custom, hostile components, and `credgate provider check`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::proxy::Fixture;
use crate::support::{Options, Reply};

pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

    /// The path of a test component by crate name.
    pub fn path(name: &str) -> &'static str {
        FIXTURES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no fixture {name}"))
    }
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    Reply::from(req.send().await.unwrap()).await
}

/// (id, credential, config, default base URL, default allowed hosts, headers that must arrive,
/// query parameters that must arrive), as PROVIDERS.md says each provider takes its key.
/// One provider's expectations.
type Case = (
    &'static str,
    Value,
    Value,
    &'static str,
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
);

fn catalogue() -> Vec<Case> {
    let bearer = |id: &'static str, base: &'static str, host: &'static str| {
        (
            id,
            json!({"token": "tok-1"}),
            json!({}),
            base,
            vec![host],
            vec![("authorization", "Bearer tok-1")],
            vec![],
        )
    };
    vec![
        bearer("openai", "https://api.openai.com/", "api.openai.com"),
        (
            "anthropic",
            json!({"token": "tok-1"}),
            json!({}),
            "https://api.anthropic.com/",
            vec!["api.anthropic.com"],
            vec![("x-api-key", "tok-1"), ("anthropic-version", "2023-06-01")],
            vec![],
        ),
        bearer("perplexity", "https://api.perplexity.ai/", "api.perplexity.ai"),
        bearer("xai", "https://api.x.ai/", "api.x.ai"),
        bearer("replicate", "https://api.replicate.com/", "api.replicate.com"),
        (
            "elevenlabs",
            json!({"token": "tok-1"}),
            json!({}),
            "https://api.elevenlabs.io/",
            vec!["api.elevenlabs.io"],
            vec![("xi-api-key", "tok-1")],
            vec![],
        ),
        (
            "google-gemini",
            json!({"token": "tok-1"}),
            json!({}),
            "https://generativelanguage.googleapis.com/",
            vec!["generativelanguage.googleapis.com"],
            vec![],
            vec![("key", "tok-1")],
        ),
        (
            "google-maps",
            json!({"token": "tok-1"}),
            json!({}),
            "https://maps.googleapis.com/",
            vec!["maps.googleapis.com"],
            vec![],
            vec![("key", "tok-1")],
        ),
        bearer("sendgrid", "https://api.sendgrid.com/", "api.sendgrid.com"),
        bearer("resend", "https://api.resend.com/", "api.resend.com"),
        (
            "brevo-api-key",
            json!({"token": "tok-1"}),
            json!({}),
            "https://api.brevo.com/v3",
            vec!["api.brevo.com"],
            vec![("api-key", "tok-1")],
            vec![],
        ),
        (
            "klaviyo",
            json!({"token": "tok-1"}),
            json!({}),
            "https://a.klaviyo.com/",
            vec!["a.klaviyo.com"],
            vec![("authorization", "Klaviyo-API-Key tok-1"), ("revision", "2024-07-15")],
            vec![],
        ),
        (
            "mailgun",
            json!({"token": "key-1"}),
            json!({"region": "api.eu"}),
            "https://api.eu.mailgun.net/",
            vec!["api.eu.mailgun.net"],
            vec![("authorization", "Basic YXBpOmtleS0x")],
            vec![],
        ),
        (
            "twilio",
            json!({"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "tw"}),
            json!({}),
            "https://api.twilio.com/",
            vec!["api.twilio.com"],
            vec![(
                "authorization",
                "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0dw==",
            )],
            vec![],
        ),
        (
            "datadog",
            json!({"token": "dd-1", "applicationKey": "app-1"}),
            json!({"siteParameter": "datadoghq.eu"}),
            "https://api.datadoghq.eu/api",
            vec!["api.datadoghq.eu"],
            vec![("dd-api-key", "dd-1"), ("dd-application-key", "app-1")],
            vec![],
        ),
        (
            "sentry",
            json!({"token": "tok-1"}),
            json!({}),
            "https://sentry.io/api",
            vec!["sentry.io"],
            vec![("authorization", "Bearer tok-1")],
            vec![],
        ),
        (
            "posthog",
            json!({"token": "tok-1"}),
            json!({"subdomain": "eu"}),
            "https://eu.posthog.com/",
            vec!["eu.posthog.com"],
            vec![("authorization", "Bearer tok-1")],
            vec![],
        ),
        (
            "mixpanel",
            json!({"username": "sa", "secret": "s3"}),
            json!({}),
            "https://mixpanel.com/",
            vec!["mixpanel.com", "*.mixpanel.com"],
            vec![("authorization", "Basic c2E6czM=")],
            vec![],
        ),
        (
            "amplitude",
            json!({"api_key": "ak", "secret_key": "sk"}),
            json!({}),
            "https://amplitude.com/",
            vec!["amplitude.com"],
            vec![("authorization", "Basic YWs6c2s=")],
            vec![],
        ),
        (
            "github-pat",
            json!({"token": "ghp-1"}),
            json!({}),
            "https://api.github.com/",
            vec!["api.github.com"],
            vec![
                ("authorization", "Bearer ghp-1"),
                ("x-github-api-version", "2022-11-28"),
                ("accept", "application/vnd.github+json"),
            ],
            vec![],
        ),
        (
            "gitlab-pat",
            json!({"token": "glpat-1"}),
            json!({"hostname": "gitlab.acme.io"}),
            "https://gitlab.acme.io/",
            vec!["gitlab.acme.io"],
            vec![("private-token", "glpat-1")],
            vec![],
        ),
        (
            "jira-basic",
            json!({"email": "me@acme.io", "token": "t"}),
            json!({"subdomain": "acme"}),
            "https://acme.atlassian.net/",
            vec!["acme.atlassian.net"],
            vec![("authorization", "Basic bWVAYWNtZS5pbzp0")],
            vec![],
        ),
        (
            "confluence-basic",
            json!({"email": "me@acme.io", "token": "t"}),
            json!({"subdomain": "acme"}),
            "https://acme.atlassian.net/",
            vec!["acme.atlassian.net"],
            vec![
                ("authorization", "Basic bWVAYWNtZS5pbzp0"),
                ("content-type", "application/json"),
            ],
            vec![],
        ),
        (
            "freshdesk",
            json!({"token": "fd"}),
            json!({"subdomain": "acme"}),
            "https://acme.freshdesk.com/",
            vec!["acme.freshdesk.com"],
            vec![("authorization", "Basic ZmQ6")],
            vec![],
        ),
        (
            "zendesk-api-key",
            json!({"username": "me@acme.io", "password": "zd"}),
            json!({"subdomain": "acme"}),
            "https://acme.zendesk.com/",
            vec!["acme.zendesk.com"],
            vec![("authorization", "Basic bWVAYWNtZS5pby90b2tlbjp6ZA==")],
            vec![],
        ),
        (
            "shopify-api-key",
            json!({"token": "shpat"}),
            json!({"subdomain": "acme"}),
            "https://acme.myshopify.com/",
            vec!["acme.myshopify.com"],
            vec![("x-shopify-access-token", "shpat")],
            vec![],
        ),
        (
            "apollo",
            json!({"token": "ap"}),
            json!({}),
            "https://app.apollo.io/api",
            vec!["app.apollo.io", "api.apollo.io"],
            vec![("x-api-key", "ap")],
            vec![],
        ),
        (
            "algolia",
            json!({"token": "al"}),
            json!({"APP_ID": "ABC123"}),
            "https://abc123.algolia.net/",
            vec!["abc123.algolia.net", "abc123-dsn.algolia.net"],
            vec![("x-algolia-application-id", "ABC123"), ("x-algolia-api-key", "al")],
            vec![],
        ),
        bearer("cloudflare", "https://api.cloudflare.com/client", "api.cloudflare.com"),
        bearer("vercel", "https://api.vercel.com/", "api.vercel.com"),
        (
            "supabase",
            json!({"token": "sb"}),
            json!({"projectUrl": "abcd.supabase.co"}),
            "https://abcd.supabase.co/",
            vec!["abcd.supabase.co"],
            vec![("authorization", "Bearer sb"), ("apikey", "sb")],
            vec![],
        ),
        bearer("airtable-pat", "https://api.airtable.com/", "api.airtable.com"),
        bearer(
            "brex-api-key",
            "https://platform.brexapis.com/",
            "platform.brexapis.com",
        ),
        (
            "okta-api-key",
            json!({"token": "ok"}),
            json!({"hostname": "acme.okta.com"}),
            "https://acme.okta.com/",
            vec!["acme.okta.com"],
            vec![("authorization", "SSWS ok")],
            vec![],
        ),
        (
            "callrail",
            json!({"token": "cr"}),
            json!({}),
            "https://api.callrail.com/",
            vec!["api.callrail.com"],
            vec![("authorization", "Token token=cr")],
            vec![],
        ),
        (
            "dynatrace",
            json!({"token": "dt"}),
            json!({"environmentId": "abc12345"}),
            "https://abc12345.live.dynatrace.com/",
            vec!["abc12345.live.dynatrace.com"],
            vec![("authorization", "Api-Token dt")],
            vec![],
        ),
        (
            "shippo",
            json!({"token": "sh"}),
            json!({}),
            "https://api.goshippo.com/",
            vec!["api.goshippo.com"],
            vec![("authorization", "ShippoToken sh")],
            vec![],
        ),
        (
            "quickbase",
            json!({"token": "qb"}),
            json!({"domain": "acme.quickbase.com"}),
            "https://api.quickbase.com/v1",
            vec!["api.quickbase.com"],
            vec![
                ("authorization", "QB-USER-TOKEN qb"),
                ("qb-realm-hostname", "acme.quickbase.com"),
            ],
            vec![],
        ),
        (
            "semrush",
            json!({"token": "se"}),
            json!({}),
            "https://api.semrush.com/",
            vec!["api.semrush.com"],
            vec![],
            vec![("key", "se")],
        ),
        (
            "peopledatalabs",
            json!({"token": "pd"}),
            json!({}),
            "https://api.peopledatalabs.com/",
            vec!["api.peopledatalabs.com"],
            vec![],
            vec![("api_key", "pd")],
        ),
        (
            "pipelinecrm",
            json!({"token": "pc", "appKey": "app"}),
            json!({}),
            "https://api.pipelinecrm.com/",
            vec!["api.pipelinecrm.com"],
            vec![],
            vec![("api_key", "pc"), ("app_key", "app")],
        ),
        bearer("stripe", "https://api.stripe.com/", "api.stripe.com"),
        bearer("slack", "https://slack.com/api", "slack.com"),
        (
            "notion",
            json!({"token": "secret_1"}),
            json!({}),
            "https://api.notion.com/",
            vec!["api.notion.com"],
            vec![("authorization", "Bearer secret_1"), ("notion-version", "2022-06-28")],
            vec![],
        ),
        (
            "linear",
            json!({"token": "lin_api_1"}),
            json!({}),
            "https://api.linear.app/",
            vec!["api.linear.app"],
            vec![("authorization", "lin_api_1")],
            vec![],
        ),
        bearer("mistral", "https://api.mistral.ai/", "api.mistral.ai"),
        bearer("cohere", "https://api.cohere.com/", "api.cohere.com"),
        bearer("groq", "https://api.groq.com/", "api.groq.com"),
        (
            "huggingface",
            json!({"token": "hf_1"}),
            json!({}),
            "https://huggingface.co/",
            vec!["huggingface.co", "*.huggingface.co"],
            vec![("authorization", "Bearer hf_1")],
            vec![],
        ),
        (
            "pinecone",
            json!({"token": "pc-1"}),
            json!({}),
            "https://api.pinecone.io/",
            vec!["api.pinecone.io", "*.pinecone.io"],
            vec![("api-key", "pc-1")],
            vec![],
        ),
        (
            "pagerduty",
            json!({"token": "pd"}),
            json!({}),
            "https://api.pagerduty.com/",
            vec!["api.pagerduty.com"],
            vec![("authorization", "Token token=pd")],
            vec![],
        ),
        bearer("hubspot", "https://api.hubapi.com/", "api.hubapi.com"),
        (
            "deepgram",
            json!({"token": "dg"}),
            json!({}),
            "https://api.deepgram.com/",
            vec!["api.deepgram.com"],
            vec![("authorization", "Token dg")],
            vec![],
        ),
        (
            "postmark",
            json!({"token": "pm"}),
            json!({}),
            "https://api.postmarkapp.com/",
            vec!["api.postmarkapp.com"],
            vec![("x-postmark-server-token", "pm")],
            vec![],
        ),
        (
            "mapbox",
            json!({"token": "pk.1"}),
            json!({}),
            "https://api.mapbox.com/",
            vec!["api.mapbox.com"],
            vec![],
            vec![("access_token", "pk.1")],
        ),
        bearer("openrouter", "https://openrouter.ai/api", "openrouter.ai"),
    ]
}

#[tokio::test]
async fn every_bundled_template_injects_what_its_provider_expects() {
    let f = Fixture::new().await;
    let catalogue = catalogue();
    // Every bundled template is covered, and nothing else is bundled.
    let mut covered: Vec<&str> = catalogue.iter().map(|c| c.0).collect();
    // Custom has its own tests here; the templates that sign each call, in signing.rs; the
    // ones that mint tokens, in minting.rs.
    covered.extend(["custom", "binance", "kraken", "okx"]);
    covered.extend([
        "oauth2-client-credentials",
        "oauth2-refresh-token",
        "microsoft-entra",
        "google-service-account",
        "github-app",
    ]);
    covered.sort();
    let mut bundled: Vec<&str> = credgate::plugin::bundled::BUNDLED.iter().map(|(id, _)| *id).collect();
    bundled.sort();
    assert_eq!(covered, bundled);
    assert_eq!(
        catalogue.len(),
        56,
        "every row of the provider catalogue but `aws` (native SigV4)"
    );

    for (id, credential, config, base_url, hosts, headers, query) in catalogue {
        // As an operator would create it: the template's base URL and hosts are filled in.
        let r =
            f.gw.post(
                "/admin/v1/secrets",
                json!({"name": format!("{id} default"), "type": id, "credential": credential, "config": config}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.text);
        assert_eq!(
            r.json["config"]["base_url"]
                .as_str()
                .map(|u| url::Url::parse(u).unwrap().to_string()),
            Some(base_url.to_owned()),
            "{id}"
        );
        assert_eq!(r.json["allowed_hosts"], json!(hosts), "{id}");
        assert!(!r.text.contains("tok-1"), "{id}: the credential is not echoed");

        // Pointed at the echo upstream, it injects exactly what the provider expects.
        let mut config = config.clone();
        config["base_url"] = json!(f.up.url);
        let secret =
            f.gw.create_secret(
                json!({"name": format!("{id} test"), "type": id, "credential": credential, "config": config,
                "allow_private_destinations": true, "allow_insecure_http": true}),
            )
            .await;
        let grant = f.grant(&secret, json!({})).await;
        let r = send(
            f.gw.via_grant(Method::GET, &grant, "v1/things?limit=2")
                .header("proxy-authorization", format!("Bearer {}", f.key)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{id}: {}", r.text);
        let seen = f.up.last();
        assert_eq!(seen.path, "/v1/things", "{id}");
        for (name, value) in &headers {
            assert_eq!(seen.header_count(name), 1, "{id}: one {name}");
            assert_eq!(seen.header(name).as_deref(), Some(*value), "{id}: {name}");
        }
        let got: Vec<(String, String)> = url::form_urlencoded::parse(seen.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let mut want: Vec<(String, String)> = vec![("limit".into(), "2".into())];
        want.extend(query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        assert_eq!(got, want, "{id}: query");
        let record =
            f.gw.audit_of(r.headers["x-credgate-request-id"].to_str().unwrap())
                .await;
        assert_eq!(record[0]["provider"], id);
        assert_eq!(record[0]["provider_version"], "1.0.0");
    }
}

#[tokio::test]
async fn template_config_and_credentials_are_validated_at_creation() {
    let f = Fixture::new().await;
    for (body, needle) in [
        (
            json!({"type": "datadog", "credential": {"token": "t"}, "config": {"siteParameter": "datadoghq.org"}}),
            "siteParameter",
        ),
        (
            json!({"type": "mailgun", "credential": {"token": "t"}, "config": {"region": "api.us"}}),
            "region",
        ),
        (
            json!({"type": "twilio", "credential": {"account_sid": "AC123", "auth_token": "t"}}),
            "account_sid",
        ),
        (
            json!({"type": "twilio", "credential": {"account_sid": "AC0123456789abcdef0123456789abcdef"}}),
            "auth_token",
        ),
        (
            json!({"type": "zendesk-api-key", "credential": {"username": "u", "password": "p"}}),
            "subdomain",
        ),
        (
            json!({"type": "zendesk-api-key", "credential": {"username": "u", "password": "p"}, "config": {"subdomain": "a.b"}}),
            "subdomain",
        ),
        (
            json!({"type": "okta-api-key", "credential": {"token": "t"}, "config": {"hostname": "https://acme.okta.com"}}),
            "hostname",
        ),
        (
            json!({"type": "openai", "credential": {"token": "t"}, "config": {"organisation": "x"}}),
            "organisation",
        ),
        (
            json!({"type": "openai", "credential": {"token": "t", "tokn": "x"}}),
            "tokn",
        ),
        (json!({"type": "openai", "credential": {}}), "token"),
        (
            json!({"type": "no-such-provider", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}),
            "unknown secret type",
        ),
    ] {
        let mut body = body.clone();
        body["name"] = json!("v");
        let m =
            f.gw.post("/admin/v1/secrets", body.clone())
                .await
                .assert_error(400, "bad_request");
        assert!(m.contains(needle), "{body}: {m}");
    }
    // Rotation is checked the same way.
    let twilio = f.gw.create_secret(json!({"name": "tw", "type": "twilio", "credential": {"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "t"}})).await;
    let m =
        f.gw.post(
            &format!("/admin/v1/secrets/{twilio}/rotate"),
            json!({"credential": {"account_sid": "XX", "auth_token": "t"}}),
        )
        .await
        .assert_error(400, "bad_request");
    assert!(m.contains("account_sid"), "{m}");
}

#[tokio::test]
async fn custom_injects_what_the_operator_configures() {
    let f = Fixture::new().await;
    let cases = [
        (
            json!({"api_key": "k1", "tenant": "acme"}),
            json!({"headers": [{"name": "x-api-key", "format": "Key {api_key}"}, {"name": "x-tenant", "format": "{tenant}"}]}),
            vec![("x-api-key", "Key k1"), ("x-tenant", "acme")],
            vec![],
        ),
        (
            json!({"token": "t 1"}),
            json!({"query": [{"name": "auth", "format": "{token}"}]}),
            vec![],
            vec![("auth", "t 1")],
        ),
        (
            json!({"user": "u", "password": "p:w"}),
            json!({"headers": [{"name": "authorization", "format": "Basic {base64:user:password}"}]}),
            vec![("authorization", "Basic dTpwOnc=")],
            vec![],
        ),
        (
            json!({"token": "raw"}),
            json!({"headers": [{"name": "authorization", "format": "{token}"}]}),
            vec![("authorization", "raw")],
            vec![],
        ),
        (
            json!({"token": "t"}),
            json!({"headers": [{"name": "x-j", "format": "{{\"k\": \"{token}\"}}"}]}),
            vec![("x-j", "{\"k\": \"t\"}")],
            vec![],
        ),
    ];
    for (i, (credential, mut config, headers, query)) in cases.into_iter().enumerate() {
        config["base_url"] = json!(f.up.url);
        let secret =
            f.gw.create_secret(
                json!({"name": format!("custom {i}"), "type": "custom", "credential": credential, "config": config,
                "allow_private_destinations": true, "allow_insecure_http": true}),
            )
            .await;
        let grant = f.grant(&secret, json!({})).await;
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/c?x=1", f.up.url))).await;
        assert_eq!(r.status, StatusCode::OK, "case {i}: {}", r.text);
        let seen = f.up.last();
        for (name, value) in headers {
            assert_eq!(seen.header(name).as_deref(), Some(value), "case {i}: {name}");
        }
        for (name, value) in query {
            let got: Vec<(String, String)> = url::form_urlencoded::parse(seen.query.as_deref().unwrap().as_bytes())
                .into_owned()
                .collect();
            assert!(got.contains(&(name.to_owned(), value.to_owned())), "case {i}: {got:?}");
        }
    }
    // Formats and fields are checked when the secret is created, not at request time.
    for (config, needle) in [
        (
            json!({"headers": [{"name": "x", "format": "{token:.4}"}]}),
            "placeholder",
        ),
        (json!({"headers": [{"name": "x", "format": "{tokne}"}]}), "tokne"),
        (
            json!({"headers": [{"name": "x", "format": "Bearer {token"}]}),
            "malformed",
        ),
        (
            json!({"headers": [{"name": "x", "format": "no placeholder"}]}),
            "no credential field",
        ),
        (json!({"headers": [{"name": "x", "fromat": "{token}"}]}), "fromat"),
        (json!({"headers": "x-api-key: {token}"}), "list"),
        (json!({}), "at least one"),
        (
            json!({"headers": [{"name": "x", "format": "{token}"}], "extra": 1}),
            "extra",
        ),
    ] {
        let r = f.gw.post("/admin/v1/secrets", json!({"name": "bad custom", "type": "custom", "credential": {"token": "t"}, "config": config, "allowed_hosts": ["x.com"]})).await;
        let m = r.assert_error(400, "bad_request");
        assert!(m.contains(needle), "{config}: {m}");
    }
    // A header name the rules forbid is refused when the call is made (the same rules as
    // native injection), and the credential does not leave.
    let forbidden =
        f.gw.create_secret(
            json!({"name": "forbidden custom", "type": "custom", "credential": {"token": "t"},
            "config": {"headers": [{"name": "host", "format": "{token}"}], "base_url": f.up.url},
            "allow_private_destinations": true, "allow_insecure_http": true}),
        )
        .await;
    let grant = f.grant(&forbidden, json!({})).await;
    let before = f.up.count();
    send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &f.up.url))
        .await
        .assert_error(502, "provider_error");
    assert_eq!(f.up.count(), before);
}

/// A gateway with every hostile component in its plugins directory.
pub(crate) async fn hostile_fixture() -> (Fixture, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in fixtures::FIXTURES.iter().filter(|(n, _)| n.starts_with("hostile-")) {
        std::fs::copy(path, dir.path().join(format!("{name}.wasm"))).unwrap();
    }
    let f = Fixture::with(Options {
        args: vec!["--plugins-dir".into(), dir.path().display().to_string()],
        ..Default::default()
    })
    .await;
    (f, dir)
}

#[tokio::test]
async fn hostile_components_fail_one_request_and_nothing_else() {
    let (f, _dir) = hostile_fixture().await;
    // The import the host does not offer was refused when loaded.
    let logs = f.gw.logs();
    assert!(
        logs.contains("hostile-import.wasm") && logs.contains("evil:plugin/network"),
        "{logs}"
    );
    let m =
        f.gw.post(
            "/admin/v1/secrets",
            json!({"name": "imp", "type": "hostile-import", "credential": {"token": "t"}, "allowed_hosts": ["x.com"]}),
        )
        .await
        .assert_error(400, "bad_request");
    assert!(m.contains("unknown secret type"));

    let good = f
        .secret("good", "openai", json!({"token": "good-token"}), json!({}))
        .await;
    let good = f.grant(&good, json!({})).await;
    let target = format!("{}/ok", f.up.url);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("hostile-loop", json!({}), "deadline"),
        // A loop in the host's crypto (HMAC over a megabyte, again and again): the same deadline.
        ("hostile-crypto-loop", json!({}), "deadline"),
        ("hostile-memory", json!({}), "out of memory"),
        // Depending on which runs out first, the guest's shadow stack in linear memory (an
        // out-of-bounds access) or the Wasm call stack (stack exhausted): a trap either way.
        ("hostile-recursion", json!({}), "plugin"),
        ("hostile-panic", json!({}), "trapped"),
        ("hostile-forbidden-header", json!({}), "host"),
        ("hostile-crlf", json!({}), "CR, LF"),
        ("hostile-huge-headers", json!({}), "longer than"),
        ("hostile-snoop", json!({"probe": "env"}), "trapped"),
        ("hostile-snoop", json!({"probe": "file"}), "trapped"),
        ("hostile-snoop", json!({"probe": "dir"}), "trapped"),
        ("hostile-snoop", json!({"probe": "clock"}), "trapped"),
    ];
    for (i, (id, config, needle)) in cases.into_iter().enumerate() {
        let secret = f
            .secret(&format!("h{i}"), id, json!({"token": "hostile-token"}), config.clone())
            .await;
        let grant = f.grant(&secret, json!({})).await;
        let before = f.up.count();
        // Bound: the deadline is 100 ms; a call that did not stop within 10 s would be a hang.
        let sent = tokio::time::timeout(
            Duration::from_secs(10),
            f.gw.proxy(Method::GET, Some(&f.key), &grant, &target).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{id} {config}: the request did not finish within 10 s"))
        .unwrap_or_else(|e| panic!("{id} {config}: {e}\n{}", f.gw.logs()));
        let r = Reply::from(sent).await;
        let message = r.assert_error(502, "provider_error");
        assert!(message.contains(needle), "{id} {config}: {message}");
        assert!(!message.contains("hostile-token"));
        assert_eq!(f.up.count(), before, "{id}: the upstream saw nothing");
        // The gateway serves the next request normally.
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &good, &target)).await;
        assert_eq!(r.status, StatusCode::OK, "after {id}: {}", r.text);
        assert_eq!(
            f.up.last().header("authorization").as_deref(),
            Some("Bearer good-token")
        );
    }
    let metrics = f.gw.metrics().await;
    assert!(
        metrics.contains(r#"credgate_provider_failures_total{provider="hostile-snoop"} 4"#),
        "{metrics}"
    );
    // A plugin that traps again and again is reported as such.
    let panicking = f
        .secret("again", "hostile-panic", json!({"token": "t"}), json!({}))
        .await;
    let panicking = f.grant(&panicking, json!({})).await;
    for _ in 0..3 {
        send(f.gw.proxy(Method::GET, Some(&f.key), &panicking, &target))
            .await
            .assert_error(502, "provider_error");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = f.gw.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("plugin fails repeatedly") && l.contains("hostile-panic")),
        "repeated traps are reported"
    );
}

#[tokio::test]
async fn every_call_gets_a_fresh_instance() {
    let (f, _dir) = hostile_fixture().await;
    let secret = f
        .secret("stateful", "hostile-stateful", json!({"token": "t"}), json!({}))
        .await;
    let grant = f.grant(&secret, json!({})).await;
    for _ in 0..3 {
        let r = send(f.gw.proxy(Method::GET, Some(&f.key), &grant, &format!("{}/s", f.up.url))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            f.up.last().header("x-calls").as_deref(),
            Some("1"),
            "a global does not survive from one call to the next"
        );
    }
}

#[tokio::test]
async fn provider_check_validates_and_shows_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let zendesk = write(
        "zendesk.wasm",
        credgate::plugin::bundled::BUNDLED
            .iter()
            .find(|(n, _)| *n == "zendesk-api-key")
            .unwrap()
            .1,
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::BIN)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(&[
        "provider",
        "check",
        &zendesk,
        "--credential",
        "username=me@acme.io",
        "--credential",
        "password=zd",
        "--config",
        "subdomain=acme",
        "--url",
        "https://acme.zendesk.com/api/v2/tickets.json",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("implements credgate:provider@0.2.0"));
    assert!(out.contains("GET https://acme.zendesk.com/api/v2/tickets.json"));
    assert!(
        out.contains("authorization: Basic bWVAYWNtZS5pby90b2tlbjp6ZA=="),
        "{out}"
    );
    let (code, out) = run(&["provider", "check", &zendesk, "--json"]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["description"]["id"], "zendesk-api-key");
    assert_eq!(report["description"]["config_fields"][0]["name"], "subdomain");
    let (code, out) = run(&[
        "provider",
        "check",
        &zendesk,
        "--credential",
        "username=u",
        "--credential",
        "password=p",
    ]);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("subdomain"));
    let import = fixtures::path("hostile-import");
    let (code, out) = run(&["provider", "check", import]);
    assert_eq!(code, 6);
    assert!(out.contains("evil:plugin/network"), "{out}");
    let junk = write("junk.wasm", b"\0asm junk");
    let (code, out) = run(&["provider", "check", &junk]);
    assert_eq!(code, 6);
    assert!(out.contains("cannot be compiled"), "{out}");
}

/// The plugin SDK lives in the plugins' own workspace (built for Wasm); its unit tests (the
/// format engine, base64) run here, on the host, so the one test command covers them.
#[test]
fn the_plugin_sdk_passes_its_own_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::path::PathBuf::from(env!("OUT_DIR")).join("sdk-tests");
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet", "--manifest-path"])
        .arg(root.join("plugins/Cargo.toml"))
        .args(["-p", "credgate-plugin-sdk"])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("test result: ok. 2 passed"), "{text}");
}

/// A component built for the first contract (0.1, no SDK) keeps loading beside 0.2 ones and
/// injects exactly as before; the registry says which contract each implements.
#[tokio::test]
async fn a_component_built_for_contract_0_1_keeps_loading_and_injecting() {
    let f = Fixture::new().await;
    let bytes = std::fs::read(fixtures::path("contract-v0-1")).unwrap();
    let req =
        f.gw.http
            .post(format!("{}/admin/v1/providers", f.gw.base))
            .bearer_auth(&f.gw.admin_token)
            .header("content-type", "application/wasm")
            .body(bytes);
    let r = send(req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["contract"], "0.1.0", "{}", r.text);
    assert!(
        r.json["description"].get("body").is_none(),
        "0.1 never reads the body: {}",
        r.text
    );
    let openai = f.gw.get("/admin/v1/providers/openai").await;
    assert_eq!(
        openai.json["contract"], "0.2.0",
        "the bundled templates are built with the SDK"
    );
    assert_eq!(
        openai.json["description"]["env"],
        json!(["OPENAI_API_KEY"]),
        "what `credgate run` sets"
    );
    let secret = f
        .secret("legacy", "contract-v0-1", json!({"token": "legacy-token"}), json!({}))
        .await;
    let grant = f.grant(&secret, json!({})).await;
    let r = send(
        f.gw.via_grant(Method::POST, &grant, "v1/things")
            .bearer_auth(&f.key)
            .body("a body 0.1 never sees"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = f.up.last();
    assert_eq!(seen.header("authorization").as_deref(), Some("Legacy legacy-token"));
    assert_eq!(seen.header("x-seen-method").as_deref(), Some("POST"));
    assert_eq!(seen.body, b"a body 0.1 never sees");
}
