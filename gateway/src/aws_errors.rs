//! credgate's refusals in the shapes AWS SDKs parse.
//!
//! An AWS SDK pointed at credgate (boto3 with `endpoint_url=…/v1/grants/<id>`, the aws CLI)
//! reads any error body as its service's error format; credgate's JSON makes it raise a
//! parser error instead of a `ClientError`. When the request came from an AWS SDK (it carries
//! the SDK's own signature: a SigV4 or SigV2 `Authorization`, or presigned query parameters),
//! credgate answers its own refusals in that service's shape, with credgate's code as the
//! error code and its message, so the app sees `ClientError` with `Code == "grant_revoked"`.
//! `X-Credgate-Error` and the status are the same as for any caller.

use http::HeaderMap;

/// Which error format the calling SDK parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsShape {
    /// S3: `<Error><Code>…</Code><Message>…</Message></Error>`.
    S3Xml,
    /// The query protocol (SQS, SNS, STS, IAM, …): `<ErrorResponse><Error>…</Error></ErrorResponse>`.
    QueryXml,
    /// The JSON protocols (`X-Amz-Target`, `application/x-amz-json-1.x`, rest-json):
    /// `{"__type": …, "message": …}` and `x-amzn-ErrorType`.
    Json,
}

/// The shape the caller's SDK expects, if the request came from an AWS SDK.
pub fn shape_of(headers: &HeaderMap, query: Option<&str>) -> Option<AwsShape> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let query = query.unwrap_or_default();
    let presigned = crate::query::pairs(query).any(|p| {
        p.name.eq_ignore_ascii_case("x-amz-signature")
            || p.name.eq_ignore_ascii_case("x-amz-credential")
            || p.name == "AWSAccessKeyId"
    });
    let signed = authorization.starts_with("AWS4-HMAC-SHA256 ") || authorization.starts_with("AWS ");
    if !signed && !presigned {
        return None;
    }
    let content_type = header("content-type").to_ascii_lowercase();
    if !header("x-amz-target").is_empty() || content_type.starts_with("application/x-amz-json") {
        return Some(AwsShape::Json);
    }
    // The service is in the signature's scope: `Credential=<key>/<date>/<region>/<service>/…`;
    // a presigned or SigV2 request is S3's.
    let service = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|scope| scope.split(['/', ',']).nth(3))
        .unwrap_or("s3");
    if service == "s3" || service == "s3express" {
        return Some(AwsShape::S3Xml);
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Some(AwsShape::QueryXml);
    }
    Some(AwsShape::Json)
}

/// The body and its content type. `client_fault` is the query protocol's `Sender` (else
/// `Receiver`).
pub fn render(
    shape: AwsShape,
    code: &str,
    message: &str,
    request_id: &str,
    client_fault: bool,
) -> (Vec<u8>, &'static str) {
    let (code_x, message_x, id_x) = (xml_escape(code), xml_escape(message), xml_escape(request_id));
    match shape {
        AwsShape::S3Xml => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code_x}</Code><Message>{message_x}</Message><RequestId>{id_x}</RequestId></Error>"
            )
            .into_bytes(),
            "application/xml",
        ),
        AwsShape::QueryXml => {
            let kind = if client_fault { "Sender" } else { "Receiver" };
            (
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{code_x}</Code><Message>{message_x}</Message></Error><RequestId>{id_x}</RequestId></ErrorResponse>"
                )
                .into_bytes(),
                "text/xml",
            )
        }
        AwsShape::Json => (
            serde_json::json!({"__type": code, "message": message, "Message": message})
                .to_string()
                .into_bytes(),
            "application/x-amz-json-1.1",
        ),
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_sdk_is_told_by_its_signature() {
        let s3 = "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x";
        let sqs = "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x";
        assert_eq!(shape_of(&headers(&[]), None), None);
        assert_eq!(shape_of(&headers(&[("authorization", "Bearer x")]), None), None);
        assert_eq!(
            shape_of(&headers(&[("authorization", s3)]), None),
            Some(AwsShape::S3Xml)
        );
        assert_eq!(
            shape_of(&headers(&[]), Some("X-Amz-Signature=a&X-Amz-Credential=b")),
            Some(AwsShape::S3Xml)
        );
        assert_eq!(
            shape_of(&headers(&[]), Some("AWSAccessKeyId=k&Signature=s&Expires=1")),
            Some(AwsShape::S3Xml)
        );
        assert_eq!(
            shape_of(
                &headers(&[
                    ("authorization", sqs),
                    ("content-type", "application/x-www-form-urlencoded")
                ]),
                None
            ),
            Some(AwsShape::QueryXml)
        );
        assert_eq!(
            shape_of(
                &headers(&[("authorization", sqs), ("x-amz-target", "AmazonSQS.ListQueues")]),
                None
            ),
            Some(AwsShape::Json)
        );
    }

    #[test]
    fn messages_are_escaped() {
        let (body, _) = render(AwsShape::S3Xml, "policy_violation", "path `<a&b>`", "r1", true);
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains("<Code>policy_violation</Code><Message>path `&lt;a&amp;b&gt;`</Message>"));
    }
}
