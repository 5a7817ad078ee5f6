//! Completing a template's base URL and default hosts from a secret's config:
//! `https://{subdomain}.zendesk.com` with `subdomain = acme`.

/// The `{name}` placeholders of a template.
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("`{template}` has an unclosed `{{`"))?
            + start;
        let name = &rest[start + 1..end];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("`{template}` has a malformed placeholder"));
        }
        names.push(name.to_owned());
        rest = &rest[end + 1..];
    }
    Ok(names)
}

/// Fills every `{name}` from `lookup`.
pub fn complete<'a>(template: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
    let mut out = template.to_owned();
    for name in placeholders(template)? {
        let value = lookup(&name).ok_or_else(|| format!("config `{name}` is required to complete `{template}`"))?;
        out = out.replacen(&format!("{{{name}}}"), value, 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes() {
        assert_eq!(placeholders("https://{a}.x.com/{b}").unwrap(), ["a", "b"]);
        assert!(placeholders("https://{a.x.com").is_err());
        assert!(placeholders("https://{a b}.x.com").is_err());
        let lookup = |n: &str| (n == "subdomain").then_some("acme");
        assert_eq!(
            complete("https://{subdomain}.zendesk.com", lookup).unwrap(),
            "https://acme.zendesk.com"
        );
        assert!(complete("https://{region}.mailgun.net", lookup).is_err());
    }
}
