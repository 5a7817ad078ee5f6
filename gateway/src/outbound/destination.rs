//! Where a credential may go: scheme, allowed hosts, and the addresses behind the name.
//!
//! The host is compared with the secret's allowed hosts in one normal form (see
//! [`crate::vault::host`]). Every address the name resolves to is then classified; loopback,
//! private, link-local (cloud metadata at 169.254.169.254 included), CGNAT, ULA, NAT64, 6to4
//! and Teredo addresses are refused unless the secret allows private destinations, and
//! unspecified, multicast and reserved addresses always are. The outbound client resolves
//! through [`CheckedResolve`], which answers from the same short-lived cache and applies the
//! same rule, so the connection goes to an address that was checked: a name cannot pass the
//! check with one answer and connect to another (DNS rebinding).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::dns::Name;
use url::{Host, Url};

use crate::error::{ApiError, ErrorCode};
use crate::vault::SecretMeta;
use crate::vault::host::{HostPattern, canonical_ip, normalise_host};

/// How long a resolved name is trusted; the check and the connection share the answer.
const DNS_TTL: Duration = Duration::from_secs(10);
const DNS_CACHE_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpClass {
    Public,
    /// Reachable only inside a network; allowed when the secret says so.
    Private(&'static str),
    /// Never a destination.
    Never(&'static str),
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

pub fn classify(ip: IpAddr) -> IpClass {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> IpClass {
    use IpClass::*;
    const TABLE: &[([u8; 4], u32, IpClass)] = &[
        ([0, 0, 0, 0], 8, Never("unspecified (0.0.0.0/8)")),
        ([255, 255, 255, 255], 32, Never("broadcast")),
        ([224, 0, 0, 0], 4, Never("multicast")),
        ([240, 0, 0, 0], 4, Never("reserved (240.0.0.0/4)")),
        ([127, 0, 0, 0], 8, Private("loopback")),
        ([10, 0, 0, 0], 8, Private("private (10.0.0.0/8)")),
        ([172, 16, 0, 0], 12, Private("private (172.16.0.0/12)")),
        ([192, 168, 0, 0], 16, Private("private (192.168.0.0/16)")),
        (
            [169, 254, 0, 0],
            16,
            Private("link-local (169.254.0.0/16, cloud metadata)"),
        ),
        ([100, 64, 0, 0], 10, Private("carrier-grade NAT (100.64.0.0/10)")),
        ([192, 0, 0, 0], 24, Private("IETF protocol assignments (192.0.0.0/24)")),
        ([198, 18, 0, 0], 15, Private("benchmarking (198.18.0.0/15)")),
        ([192, 0, 2, 0], 24, Never("documentation (192.0.2.0/24)")),
        ([198, 51, 100, 0], 24, Never("documentation (198.51.100.0/24)")),
        ([203, 0, 113, 0], 24, Never("documentation (203.0.113.0/24)")),
    ];
    TABLE
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map_or(Public, |(_, _, class)| *class)
}

fn classify_v6(ip: Ipv6Addr) -> IpClass {
    use IpClass::*;
    const TABLE: &[([u16; 8], u32, IpClass)] = &[
        ([0, 0, 0, 0, 0, 0, 0, 0], 128, Never("unspecified (::)")),
        ([0, 0, 0, 0, 0, 0, 0, 1], 128, Private("loopback (::1)")),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Never("multicast")),
        ([0, 0, 0, 0, 0, 0, 0, 0], 96, Never("IPv4-compatible (::/96)")),
        ([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, Private("NAT64 (64:ff9b::/96)")),
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Private("NAT64 (64:ff9b:1::/48)")),
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, Private("6to4 (2002::/16)")),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Private("Teredo (2001::/32)")),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Private("unique local (fc00::/7)")),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Private("link-local (fe80::/10)")),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Private("site-local (fec0::/10)")),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Never("discard (100::/64)")),
        (
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            Never("documentation (2001:db8::/32)"),
        ),
    ];
    TABLE
        .iter()
        .find(|(net, bits, _)| in_v6(ip, *net, *bits))
        .map_or(Public, |(_, _, class)| *class)
}

/// Whether a secret's policy allows connecting to `ip`; the reason when it does not.
pub fn permitted(ip: IpAddr, allow_private: bool) -> Result<(), &'static str> {
    match classify(ip) {
        IpClass::Public => Ok(()),
        IpClass::Private(_) if allow_private => Ok(()),
        IpClass::Private(why) | IpClass::Never(why) => Err(why),
    }
}

/// A small DNS cache shared by the destination check and the outbound connector.
type Answer = (Arc<Vec<IpAddr>>, Instant);

#[derive(Debug, Default)]
pub struct Resolver {
    cache: Mutex<HashMap<String, Answer>>,
}

impl Resolver {
    pub async fn lookup(&self, host: &str) -> std::io::Result<Arc<Vec<IpAddr>>> {
        if let Some((addrs, at)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(host)
            && at.elapsed() < DNS_TTL
        {
            return Ok(addrs.clone());
        }
        let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| canonical_ip(a.ip()))
            .collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"));
        }
        let addrs = Arc::new(addrs);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= DNS_CACHE_MAX {
            cache.clear();
        }
        cache.insert(host.to_owned(), (addrs.clone(), Instant::now()));
        Ok(addrs)
    }
}

/// The outbound client's resolver: the cached answer, filtered by the same rule. Asked only
/// when the client opens a new connection.
#[derive(Debug, Clone)]
pub struct CheckedResolve {
    pub resolver: Arc<Resolver>,
    pub allow_private: bool,
}

/// Every address of a host is one the secret may not reach.
#[derive(Debug, thiserror::Error)]
#[error("every address of this host is a blocked destination")]
pub struct AllBlocked;

type Resolving = Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, BoxError>> + Send>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<Name> for CheckedResolve {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .filter(|ip| permitted(**ip, allow_private).is_ok())
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if allowed.is_empty() {
                return Err(AllBlocked.into());
            }
            Ok(allowed.into_iter())
        })
    }
}

fn blocked(message: String) -> ApiError {
    ApiError::new(ErrorCode::BlockedDestination, message)
}

/// Checks `url` against the secret's rules and its allowed hosts. Runs before anything is
/// decrypted.
pub async fn check(
    url: &Url,
    secret: &SecretMeta,
    allowed_hosts: &[HostPattern],
    resolver: &Resolver,
) -> Result<(), ApiError> {
    match url.scheme() {
        "https" => {}
        "http" if secret.allow_insecure_http => {}
        "http" => return Err(blocked("plain http is not allowed for this secret (https only)".into())),
        other => return Err(blocked(format!("scheme `{other}` is not allowed"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(blocked("the target URL must not contain user info".into()));
    }
    let host = url.host().ok_or_else(|| blocked("the target URL has no host".into()))?;
    let name = normalise_host(&host).map_err(|why| blocked(format!("invalid host: {why}")))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let default_port = if url.scheme() == "http" { 80 } else { 443 };
    let allowed = allowed_hosts.iter().any(|p| p.matches(&name, port, default_port));
    if !allowed {
        let shown = if url.port().is_some() {
            format!("{name}:{port}")
        } else {
            name.clone()
        };
        return Err(blocked(format!(
            "host `{shown}` is not among this secret's allowed hosts"
        )));
    }
    let addrs: Vec<IpAddr> = match host {
        Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        Host::Domain(d) => match resolver.lookup(d.trim_end_matches('.')).await {
            Ok(addrs) => addrs.to_vec(),
            Err(_) => {
                return Err(ApiError::new(
                    ErrorCode::UpstreamUnreachable,
                    format!("cannot resolve host `{name}`"),
                ));
            }
        },
    };
    for ip in addrs {
        if let Err(why) = permitted(ip, secret.allow_private_destinations) {
            return Err(blocked(format!(
                "host `{name}` resolves to a {why} address; this secret does not allow it"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ip: &str) -> IpClass {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn classes() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "100.128.0.1",
            "172.32.0.1",
        ] {
            assert_eq!(v(public), IpClass::Public, "{public}");
        }
        for private in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(matches!(v(private), IpClass::Private(_)), "{private}");
        }
        for never in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::",
            "ff02::1",
            "::7f00:1",
        ] {
            assert!(matches!(v(never), IpClass::Never(_)), "{never}");
        }
        assert!(permitted("127.0.0.1".parse().unwrap(), true).is_ok());
        assert!(permitted("0.0.0.0".parse().unwrap(), true).is_err());
        assert!(permitted("169.254.169.254".parse().unwrap(), false).is_err());
    }
}
