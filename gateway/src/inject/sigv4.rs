//! `aws_sigv4`: AWS Signature Version 4 with the aws-sigv4 crate.
//!
//! The caller's own signature (from an AWS SDK pointed at credgate, or presigned query
//! parameters) is removed and the request is signed anew with the stored keys. Region and
//! service come from the secret's config or from the host (`s3.us-east-1.amazonaws.com`).
//! The payload is hashed when the body is bounded; when the caller's SDK declared an unsigned
//! payload (`UNSIGNED-PAYLOAD`, `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with aws-chunked
//! checksums) that declaration is signed and the body streams through untouched.

use std::sync::LazyLock;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;
use serde_json::{Map, Value};
use url::Url;

use super::{BodyNeed, Edits, FieldSpec, InjectError, InjectRequest, Injector, Payload, ProviderDescription, field};
use crate::redact::{Credential, SecretString};

static DESCRIPTION: LazyLock<ProviderDescription> = LazyLock::new(|| ProviderDescription {
    // The AWS SDKs and CLI read these; `credgate run` gives them placeholders to sign with,
    // and credgate signs again with the real keys.
    env: vec!["AWS_ACCESS_KEY_ID".into(), "AWS_SECRET_ACCESS_KEY".into()],
    ..ProviderDescription::native(
        "aws_sigv4",
        "AWS Signature Version 4",
        vec![
            FieldSpec::text("access_key_id", "Access key id", true, ""),
            FieldSpec::text("secret_access_key", "Secret access key", true, ""),
            FieldSpec::text(
                "session_token",
                "Session token",
                false,
                "Only for temporary credentials.",
            ),
        ],
        vec![
            FieldSpec::text(
                "region",
                "Region",
                false,
                "Optional when the host names it (s3.us-east-1.amazonaws.com).",
            ),
            FieldSpec::text("service", "Service", false, "Optional when the host names it."),
            FieldSpec::text(
                "endpoint",
                "Endpoint",
                false,
                "Optional: an S3-compatible endpoint, used as the base URL. Give this or a base URL, not both.",
            ),
        ],
    )
});

fn check_config(config: &Map<String, Value>) -> Result<(), String> {
    for key in ["region", "service"] {
        if let Some(v) = config.get(key).and_then(Value::as_str)
            && (v.len() > 64
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(format!(
                "config `{key}` must be lower-case letters, digits and `-`, like `us-east-1` or `s3`"
            ));
        }
    }
    if config.contains_key("endpoint") && config.contains_key("base_url") {
        return Err("give config `endpoint` or `base_url`, not both".into());
    }
    Ok(())
}

/// A secret must be signable for every host it may be sent to: its config names the region
/// and service, or each host is one they can be read from (`s3.eu-west-1.amazonaws.com`).
/// Refused at creation rather than failing every call later; a secret's config and hosts are
/// fixed once created (rotation changes only the credential), so this holds for its life.
fn check_signable(config: &Map<String, Value>, hosts: &[String]) -> Result<(), String> {
    if config_str(config, "region").is_some() && config_str(config, "service").is_some() {
        return Ok(());
    }
    for host in hosts {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.as_str(),
        };
        let readable = detect(name.trim_start_matches("*.")).is_some_and(|(service, _)| !service.contains('*'));
        if !readable {
            return Err(format!(
                "aws_sigv4 cannot tell the AWS region and service for host `{host}`: set config `region` and `service`"
            ));
        }
    }
    Ok(())
}

/// Query parameters of a presigned request: the caller's signature, never forwarded. The
/// request is signed anew, in headers, with the stored keys. SigV4's, and the legacy SigV2
/// form some tools still produce for S3 (`aws s3 presign` with a custom endpoint):
/// `AWSAccessKeyId` (the app key, which authentication already took out), `Signature`,
/// `Expires`, and the query-API's `SignatureVersion` and `SignatureMethod`.
pub const PRESIGN_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
    "SignatureVersion",
    "SignatureMethod",
];

#[derive(Debug, Default)]
pub struct SigV4Injector;

/// How to sign: everything the signature depends on besides the request and the keys.
#[derive(Debug, Clone)]
pub struct SigningOptions {
    pub region: String,
    pub service: String,
    pub time: SystemTime,
    /// S3 signs the path as sent; other services sign it normalised.
    pub normalize_path: bool,
    /// S3 signs the path encoded once; other services encode it twice.
    pub double_encode: bool,
    /// Send `x-amz-content-sha256` (S3 requires it).
    pub payload_header: bool,
    /// Sign `x-amz-security-token` (almost every service); some add it after signing.
    pub sign_session_token: bool,
}

impl SigningOptions {
    pub fn for_service(region: &str, service: &str, time: SystemTime) -> Self {
        let s3 = service == "s3" || service == "s3express";
        Self {
            region: region.to_owned(),
            service: service.to_owned(),
            time,
            normalize_path: !s3,
            double_encode: !s3,
            payload_header: s3,
            sign_session_token: true,
        }
    }
}

fn config_str<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config.get(key).and_then(Value::as_str).filter(|v| !v.is_empty())
}

/// (service, region) from an AWS host name, e.g. `s3.us-east-1.amazonaws.com`,
/// `bucket.s3.eu-west-1.amazonaws.com`, `s3-us-west-2.amazonaws.com`, `sts.amazonaws.com`.
pub fn detect(host: &str) -> Option<(String, String)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let labels: Vec<&str> = rest.split('.').collect();
    let is_region = |l: &str| {
        let parts: Vec<&str> = l.split('-').collect();
        parts.len() >= 3
            && parts.last().is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            && parts[0].len() == 2
            && parts[0].chars().all(|c| c.is_ascii_lowercase())
    };
    if let Some(i) = labels.iter().position(|l| is_region(l)) {
        let service = if i == 0 { return None } else { labels[i - 1] };
        let service = if service.starts_with("s3") { "s3" } else { service };
        return Some((service.to_owned(), labels[i].to_owned()));
    }
    // Legacy dashed S3 endpoints: s3-us-west-2.amazonaws.com
    if let Some(region) = labels
        .last()
        .and_then(|l| l.strip_prefix("s3-"))
        .filter(|r| is_region(r))
    {
        return Some(("s3".into(), region.to_owned()));
    }
    // Global endpoints: sts.amazonaws.com, iam.amazonaws.com, bucket.s3.amazonaws.com
    let service = labels.last()?;
    let service = if service.starts_with("s3") { "s3" } else { service };
    Some((service.to_string(), "us-east-1".into()))
}

/// The region and service for a request: config first, then the host.
pub fn region_and_service(config: &Map<String, Value>, url: &Url) -> Result<(String, String), InjectError> {
    let detected = url.host_str().and_then(detect);
    let region = config_str(config, "region")
        .map(str::to_owned)
        .or_else(|| detected.as_ref().map(|(_, r)| r.clone()));
    let service = config_str(config, "service")
        .map(str::to_owned)
        .or_else(|| detected.as_ref().map(|(s, _)| s.clone()));
    match (region, service) {
        (Some(region), Some(service)) => Ok((region, service)),
        _ => Err(InjectError::Config(
            "cannot tell the AWS region and service from this host; set config `region` and `service`".into(),
        )),
    }
}

#[async_trait::async_trait]
impl Injector for SigV4Injector {
    fn description(&self) -> &ProviderDescription {
        &DESCRIPTION
    }

    async fn validate(&self, _: &Credential, config: &Map<String, Value>) -> Result<(), InjectError> {
        check_config(config).map_err(InjectError::Config)
    }

    fn check_hosts(&self, config: &Map<String, Value>, hosts: &[String]) -> Result<(), String> {
        check_signable(config, hosts)
    }

    fn body_need(&self, config: &Map<String, Value>, url: &Url) -> BodyNeed {
        let s3 = region_and_service(config, url).is_ok_and(|(_, s)| s == "s3");
        BodyNeed::Sha256 {
            may_stream_unsigned: s3,
        }
    }

    fn credential_headers(&self, _: &Map<String, Value>) -> Vec<String> {
        vec![
            "authorization".into(),
            "x-amz-date".into(),
            "x-amz-security-token".into(),
        ]
    }

    fn credential_params(&self, _: &Map<String, Value>) -> Vec<String> {
        PRESIGN_PARAMS.iter().map(|p| (*p).to_owned()).collect()
    }

    async fn inject(
        &self,
        request: &InjectRequest<'_>,
        credential: &Credential,
        config: &Map<String, Value>,
    ) -> Result<Edits, InjectError> {
        let (region, service) = region_and_service(config, request.url)?;
        let options = SigningOptions::for_service(&region, &service, SystemTime::now());
        sign_request(
            request.method.as_str(),
            request.url,
            request.headers,
            &request.payload,
            credential,
            &options,
        )
    }
}

/// Signs a request and returns the headers to set. Public so the official test vectors can
/// run through exactly this code.
pub fn sign_request(
    method: &str,
    url: &Url,
    headers: &HeaderMap,
    payload: &Payload,
    credential: &Credential,
    options: &SigningOptions,
) -> Result<Edits, InjectError> {
    let access_key_id = field(credential, "access_key_id")?;
    let secret = field(credential, "secret_access_key")?;
    let session_token = credential.get("session_token").map(|t| t.expose().to_owned());
    let identity: Identity =
        Credentials::new(access_key_id.expose(), secret.expose(), session_token, None, "credgate").into();

    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = if options.double_encode {
        PercentEncodingMode::Double
    } else {
        PercentEncodingMode::Single
    };
    settings.uri_path_normalization_mode = if options.normalize_path {
        UriPathNormalizationMode::Enabled
    } else {
        UriPathNormalizationMode::Disabled
    };
    settings.payload_checksum_kind = if options.payload_header {
        PayloadChecksumKind::XAmzSha256
    } else {
        PayloadChecksumKind::NoHeader
    };
    settings.session_token_mode = if options.sign_session_token {
        SessionTokenMode::Include
    } else {
        SessionTokenMode::Exclude
    };
    // `expect: 100-continue` is between the SDK and credgate; it is not forwarded.
    if let Some(excluded) = settings.excluded_headers.as_mut() {
        excluded.push("expect".into());
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&options.region)
        .name(&options.service)
        .time(options.time)
        .settings(settings)
        .build()
        .map_err(|e| InjectError::Config(format!("SigV4 parameters: {e}")))?
        .into();

    let mut signed_headers = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = value
            .to_str()
            .map_err(|_| InjectError::Config(format!("header `{name}` is not plain text and cannot be signed")))?;
        signed_headers.push((name.as_str(), value));
    }
    let body = match payload {
        Payload::Sha256(hash) => SignableBody::Precomputed(hash.clone()),
        Payload::Unsigned(kind) if kind == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => {
            SignableBody::StreamingUnsignedPayloadTrailer
        }
        Payload::Unsigned(_) => SignableBody::UnsignedPayload,
        Payload::Bytes(bytes) => SignableBody::Bytes(bytes),
        // Never asked for by this injector: it signs an empty body, as with nothing.
        Payload::NotNeeded | Payload::Digest(_) => SignableBody::Bytes(&[]),
    };
    let signable = SignableRequest::new(method, url.as_str(), signed_headers.into_iter(), body)
        .map_err(|e| InjectError::Config(format!("the request cannot be signed: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| InjectError::Failed {
            summary: "SigV4 signing failed",
            detail: e.to_string(),
        })?
        .into_parts();
    let (new_headers, _params) = instructions.into_parts();
    Ok(Edits {
        set_headers: new_headers
            .into_iter()
            .map(|h| (h.name().to_owned(), SecretString::new(h.value().to_owned())))
            .collect(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_region_and_service() {
        for (host, service, region) in [
            ("s3.us-east-1.amazonaws.com", "s3", "us-east-1"),
            ("my-bucket.s3.eu-west-1.amazonaws.com", "s3", "eu-west-1"),
            ("s3-us-west-2.amazonaws.com", "s3", "us-west-2"),
            ("s3.amazonaws.com", "s3", "us-east-1"),
            ("sts.amazonaws.com", "sts", "us-east-1"),
            ("dynamodb.ap-southeast-2.amazonaws.com", "dynamodb", "ap-southeast-2"),
            (
                "bedrock-runtime.us-gov-west-1.amazonaws.com",
                "bedrock-runtime",
                "us-gov-west-1",
            ),
            ("S3.US-EAST-1.AMAZONAWS.COM.", "s3", "us-east-1"),
        ] {
            assert_eq!(detect(host), Some((service.to_owned(), region.to_owned())), "{host}");
        }
        assert_eq!(detect("minio.internal"), None);
        assert_eq!(detect("amazonaws.com.evil.net"), None);
    }

    #[test]
    fn config_wins_over_the_host() {
        let config: Map<String, Value> =
            serde_json::from_str(r#"{"region": "eu-central-1", "service": "s3"}"#).unwrap();
        let url = Url::parse("http://127.0.0.1:9000/bucket").unwrap();
        assert_eq!(
            region_and_service(&config, &url).unwrap(),
            ("eu-central-1".into(), "s3".into())
        );
        assert!(region_and_service(&Map::new(), &url).is_err());
    }
}
