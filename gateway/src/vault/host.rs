//! Allowed hosts: where a secret may be sent.
//!
//! A pattern is `name`, `name:port` or `*.suffix` (optionally `:port`). Without a port it
//! allows only the scheme's default port, so allowing `api.example.com` never allows a debug
//! listener on another port of the same machine. Hosts are compared in one normal form:
//! lower case, no trailing dot, IPv4 in dotted decimal (the URL parser already folds numeric
//! forms such as `2130706433` or `0x7f.1`), IPv4-mapped IPv6 folded to IPv4.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use url::Host;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    /// `Some(".example.com")` for `*.example.com`; matches strict subdomains only.
    suffix: Option<String>,
    /// Exact normalised host when `suffix` is `None`.
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let err = |why: &str| format!("allowed host `{}`: {why}", truncate(text));
        let text = text.trim();
        if text.is_empty() {
            return Err(err("must not be empty"));
        }
        if text.contains(['/', '?', '#', '@', ' ']) || text.contains("://") {
            return Err(err("give a host name, `name:port` or `*.suffix`, not a URL"));
        }
        let (host_part, port) = split_port(text).map_err(|why| err(&why))?;
        if let Some(rest) = host_part.strip_prefix("*.") {
            let name = normalise_name(rest).map_err(|why| err(&why))?;
            if !name.contains('.') {
                return Err(err(
                    "a wildcard must cover a domain with at least two labels, like `*.example.com`",
                ));
            }
            return Ok(Self {
                suffix: Some(format!(".{name}")),
                host: String::new(),
                port,
            });
        }
        if host_part.contains('*') {
            return Err(err("`*` is only allowed as a whole first label (`*.example.com`)"));
        }
        let host = if host_part.starts_with('[') {
            let inner = host_part.trim_start_matches('[').trim_end_matches(']');
            let ip: Ipv6Addr = inner.parse().map_err(|_| err("not a valid IPv6 address"))?;
            normalise_ip(IpAddr::V6(ip))
        } else {
            match Host::parse(host_part) {
                Ok(Host::Domain(d)) => normalise_name(&d).map_err(|why| err(&why))?,
                Ok(Host::Ipv4(ip)) => normalise_ip(IpAddr::V4(ip)),
                Ok(Host::Ipv6(ip)) => normalise_ip(IpAddr::V6(ip)),
                Err(_) => return Err(err("not a valid host name")),
            }
        };
        Ok(Self {
            suffix: None,
            host,
            port,
        })
    }

    /// Whether a normalised `host` on `port` (the effective port, default filled in) is allowed.
    pub fn matches(&self, host: &str, port: u16, default_port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => port == default_port,
        };
        let host_ok = match &self.suffix {
            Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
            None => self.host == host,
        };
        port_ok && host_ok
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.suffix {
            Some(suffix) => write!(f, "*{suffix}")?,
            None if self.host.contains(':') => write!(f, "[{}]", self.host)?,
            None => f.write_str(&self.host)?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The normal form of a URL's host used for matching and for the SSRF checks.
pub fn normalise_host(host: &Host<&str>) -> Result<String, String> {
    match host {
        Host::Domain(d) => normalise_name(d),
        Host::Ipv4(ip) => Ok(normalise_ip(IpAddr::V4(*ip))),
        Host::Ipv6(ip) => Ok(normalise_ip(IpAddr::V6(*ip))),
    }
}

/// Folds IPv4-mapped IPv6 (`::ffff:127.0.0.1`) to IPv4 so one address has one spelling.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn normalise_ip(ip: IpAddr) -> String {
    canonical_ip(ip).to_string()
}

fn normalise_name(name: &str) -> Result<String, String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err("host name must be 1 to 253 characters".into());
    }
    if !name.is_ascii() {
        return Err("host name must be ASCII (use its punycode `xn--` form)".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each label of a host name must be 1 to 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("host names hold only letters, digits, `-` and `_`".into());
        }
    }
    Ok(name)
}

fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    if text.starts_with('[') {
        return match text.find(']') {
            Some(end) if end + 1 == text.len() => Ok((text, None)),
            Some(end) => {
                let port = text[end + 1..].strip_prefix(':').ok_or("expected `:port` after `]`")?;
                Ok((&text[..=end], Some(parse_port(port)?)))
            }
            None => Err("unclosed `[`".into()),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((text, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err("port must be a number from 1 to 65535".into()),
        Ok(port) => Ok(port),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(url: &str) -> (String, u16) {
        let url = url::Url::parse(url).unwrap();
        (
            normalise_host(&url.host().unwrap()).unwrap(),
            url.port_or_known_default().unwrap(),
        )
    }

    #[test]
    fn exact_and_port() {
        let p = HostPattern::parse("API.Example.com.").unwrap();
        assert_eq!(p.to_string(), "api.example.com");
        let (h, port) = host_of("https://api.example.COM./v1");
        assert!(p.matches(&h, port, 443));
        assert!(!p.matches(&h, 8443, 443));
        let p = HostPattern::parse("api.example.com:8443").unwrap();
        assert!(p.matches("api.example.com", 8443, 443));
        assert!(!p.matches("api.example.com", 443, 443));
    }

    #[test]
    fn wildcard_covers_subdomains_only() {
        let p = HostPattern::parse("*.example.com").unwrap();
        assert!(p.matches("a.example.com", 443, 443));
        assert!(p.matches("a.b.example.com", 443, 443));
        assert!(!p.matches("example.com", 443, 443));
        assert!(!p.matches("badexample.com", 443, 443));
        assert!(!p.matches("a.example.com.evil.net", 443, 443));
        assert!(HostPattern::parse("*.com").is_err());
        assert!(HostPattern::parse("a.*.com").is_err());
    }

    #[test]
    fn numeric_and_mapped_forms_fold() {
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(host_of(url).0, "127.0.0.1", "{url}");
        }
        let p = HostPattern::parse("[::1]:8080").unwrap();
        assert!(p.matches("::1", 8080, 80));
        assert_eq!(p.to_string(), "[::1]:8080");
    }

    #[test]
    fn refuses_urls_and_junk() {
        for bad in [
            "",
            "https://a.com",
            "a.com/path",
            "user@a.com",
            "a.com:0",
            "a.com:99999",
            "exa mple.com",
            "ex!ample.com",
            "[::1",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
