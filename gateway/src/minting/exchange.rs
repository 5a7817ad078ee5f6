//! One token request, sent by credgate for a minting type: only to the type's token hosts
//! (completed from the secret's config), under the destination rules every call follows, with
//! the answer's body bounded. The endpoint's body is never quoted in an error: it may hold a
//! token, or echo what was sent.

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Either, Full};
use serde_json::Value;

use crate::cache::LiveSecret;
use crate::inject::mint::{TokenBody, TokenRequest, TokenResponse};
use crate::outbound::client::Upstream;
use crate::redact::SecretString;
use crate::vault::host::HostPattern;

/// Largest token answer read.
const MAX_ANSWER: usize = 64 * 1024;
/// Longest a token request may take, for its answer's head and again for its body: short, so
/// that the minting lease (crate::minting) always outlasts it.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Why a token request failed. Messages are fixed texts: they quote nothing the template
/// wrote (a host or header name it built could carry a credential) and no answer body.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum ExchangeError {
    /// The request the type described may not be sent (a host outside its token hosts, a
    /// private address the secret does not allow).
    #[error("the token request was refused: {0}")]
    Refused(&'static str),
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(&'static str),
    /// It answered, with a status other than 2xx.
    #[error("the token endpoint answered {0}")]
    Status(u16),
}

/// The type's token hosts, completed from the secret's config: `{name}` takes the field's
/// value, or, for a URL, its host and port.
pub fn token_hosts(templates: &[String], config: &serde_json::Map<String, Value>) -> Result<Vec<HostPattern>, String> {
    templates
        .iter()
        .map(|template| {
            let completed = crate::inject::complete_placeholders(template, |name| {
                config.get(name).and_then(Value::as_str).map(host_of)
            })?;
            HostPattern::parse(&completed)
        })
        .collect()
}

/// `https://login.example.com:8443/x` → `login.example.com:8443`; anything else as it is.
fn host_of(value: &str) -> &str {
    let Some((_, rest)) = value.split_once("://") else {
        return value;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority)
}

/// Whether `url`'s host and port are among `hosts`.
pub fn on_token_hosts(url: &url::Url, hosts: &[HostPattern]) -> bool {
    let default_port = if url.scheme() == "http" { 80 } else { 443 };
    let port = url.port_or_known_default().unwrap_or(default_port);
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    hosts.iter().any(|h| h.matches(host, port, default_port))
}

/// Sends `request` and reads a 2xx answer.
pub async fn send(
    upstream: &Upstream,
    secret: &LiveSecret,
    hosts: &[HostPattern],
    request: TokenRequest,
) -> Result<TokenResponse, ExchangeError> {
    let url = &request.url;
    if !on_token_hosts(url, hosts) {
        return Err(ExchangeError::Refused(
            "its host is not among the template's token hosts",
        ));
    }
    crate::outbound::destination::check(url, &secret.meta, hosts, &upstream.resolver)
        .await
        .map_err(|e| {
            ExchangeError::Refused(match e.code {
                crate::error::ErrorCode::BlockedDestination => {
                    "the token endpoint is not a destination this secret allows (https, and no private or loopback address, unless the secret allows them)"
                }
                _ => "the token endpoint's host cannot be resolved",
            })
        })?;
    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(request.url.as_str())
        .header(header::ACCEPT, "application/json");
    for (name, value) in &request.headers {
        crate::edit_rules::check_header_name(name)
            .map_err(|_| ExchangeError::Refused("a header it sets has a name credgate does not send"))?;
        let mut value = http::HeaderValue::from_str(value.expose())
            .map_err(|_| ExchangeError::Refused("a header it sets has a value no header may carry"))?;
        value.set_sensitive(true);
        builder = builder.header(name.as_str(), value);
    }
    let body: Bytes = match request.body {
        TokenBody::None => Bytes::new(),
        TokenBody::Form(fields) => {
            builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in &fields {
                form.append_pair(name, value.expose());
            }
            Bytes::from(form.finish())
        }
        TokenBody::Json(text) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(text.expose().to_owned())
        }
    };
    let http_request = builder
        .body(Either::Right(Full::new(body)))
        .map_err(|_| ExchangeError::Refused("it is not a request credgate can send"))?;
    let client = upstream.client(secret.meta.allow_private_destinations);
    let sent = tokio::time::timeout(TIMEOUT, client.request(http_request))
        .await
        .map_err(|_| ExchangeError::Unreachable("no answer in time"))?;
    let response = sent.map_err(|e| {
        ExchangeError::Unreachable(match e.is_connect() {
            true => "cannot connect",
            false => "the request failed",
        })
    })?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(ExchangeError::Status(status));
    }
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER);
    let body = tokio::time::timeout(TIMEOUT, body.collect())
        .await
        .map_err(|_| ExchangeError::Unreachable("the answer did not arrive in time"))?
        .map_err(|_| ExchangeError::Unreachable("the answer is larger than 64 KiB, or broken"))?
        .to_bytes();
    let body = String::from_utf8(body.to_vec()).map_err(|_| ExchangeError::Unreachable("the answer is not text"))?;
    Ok(TokenResponse {
        status,
        headers,
        body: SecretString::new(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_fields_complete_token_hosts_with_their_host_and_port() {
        let config = serde_json::json!({"token_url": "http://127.0.0.1:4444/oauth/token", "tenant": "acme"});
        let hosts = token_hosts(
            &["{token_url}".into(), "login.{tenant}.example".into()],
            config.as_object().unwrap(),
        )
        .unwrap();
        assert!(hosts[0].matches("127.0.0.1", 4444, 80));
        assert!(!hosts[0].matches("127.0.0.1", 4445, 80));
        assert!(hosts[1].matches("login.acme.example", 443, 443));
        assert!(token_hosts(&["{missing}".into()], config.as_object().unwrap()).is_err());
    }
}
