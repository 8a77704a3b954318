//! The SSRF guard of the HTTP tools and webhooks: which addresses a tool may
//! connect to, checked on the address actually connected to.
//!
//! URLs are parsed with the WHATWG parser of the `url` crate, which turns
//! every IPv4 spelling (decimal `2130706433`, hex `0x7f000001`, octal
//! `0177.0.0.1`, short `127.1`, percent-encoded, full-width digits) into one
//! address before anything else looks at it. Host names are resolved by the
//! guard itself, inside the HTTP client's resolver, and every resolved
//! address is checked: the connection goes to the checked addresses only, so
//! a DNS answer that changes between check and connect cannot slip through.
//! IPv4-mapped, IPv4-compatible and 6to4 IPv6 forms are judged by the IPv4
//! address they embed.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Resolves host names to addresses. The system resolver is the default;
/// tests inject their own answers.
#[async_trait::async_trait]
pub trait DnsResolver: Send + Sync + 'static {
    /// Every address `host` resolves to.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` via tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl DnsResolver for SystemResolver {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0u16)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// Why the guard refused a URL or host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    /// Not a URL, or no host.
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// Only `http` and `https` are fetched.
    #[error("URL scheme {0:?} is not allowed (only http and https)")]
    Scheme(String),
    /// The host is, or resolves to, an address the guard refuses.
    #[error("{host} is {ip}, a {reason} address: refused by the SSRF guard")]
    Blocked {
        host: String,
        ip: IpAddr,
        reason: &'static str,
    },
    /// A name that always means this machine (`localhost`, `*.localhost`).
    #[error("host {0:?} names this machine: refused by the SSRF guard")]
    LocalName(String),
    /// The name did not resolve.
    #[error("cannot resolve host {host:?}: {message}")]
    Dns { host: String, message: String },
}

/// Why `ip` must not be reached, or `None` if it is a public address.
/// IPv4-mapped, IPv4-compatible and 6to4 IPv6 addresses are judged by the
/// IPv4 address they carry.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    let reason = match (a, b, c) {
        (0, _, _) => "this-network (0.0.0.0/8)",
        (10, _, _) => "private",
        (100, _, _) if b & 0xc0 == 64 => "shared (carrier-grade NAT)",
        (127, _, _) => "loopback",
        (169, 254, _) if c == 169 && d == 254 => "cloud metadata",
        (169, 254, _) => "link-local",
        (172, _, _) if b & 0xf0 == 16 => "private",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay",
        (192, 168, _) => "private",
        (198, _, _) if b & 0xfe == 18 => "benchmarking",
        (168, 63, 129) if d == 16 => "cloud metadata",
        _ if (224..240).contains(&a) => "multicast",
        _ if ip == Ipv4Addr::BROADCAST => "broadcast",
        _ if a >= 240 => "reserved",
        _ => return None,
    };
    Some(reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    let s = ip.segments();
    let reason = match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // ::a.b.c.d (IPv4-compatible, deprecated) and ::ffff:0:a.b.c.d
        // (IPv4-translated): never a legitimate destination.
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible",
        [0, 0, 0, 0, 0xffff, 0, _, _] => "IPv4-translated",
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => "NAT64",
        [0x64, 0xff9b, 1, ..] => "NAT64 local-use",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [0x2001, 0, ..] => "Teredo",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return v4_reason(v4).map(|_| "6to4 (embedding a non-public IPv4)");
        }
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique-local",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    };
    Some(reason)
}

/// An address block, `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `localhost.` -> `localhost`, lower case.
fn normalize_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn is_local_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "localhost.localdomain"
        || host.is_empty()
}

/// IPv4-mapped IPv6 compared as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The exceptions of one tool: `allow = ["10.0.0.5", "10.1.0.0/16",
/// "internal.example", "*.corp.example"]`.
#[derive(Debug, Clone, Default)]
struct AllowList {
    hosts: BTreeSet<String>,
    suffixes: Vec<String>,
    nets: Vec<Cidr>,
}

impl AllowList {
    fn parse(entries: &[String]) -> Result<AllowList, (usize, String)> {
        let mut list = AllowList::default();
        for (i, raw) in entries.iter().enumerate() {
            let entry = raw.trim();
            if let Some(net) = Cidr::parse(entry) {
                list.nets.push(net);
                continue;
            }
            if entry.contains('/') || entry.contains(':') {
                return Err((i, format!("{raw:?} is not a valid IP address or CIDR")));
            }
            let name = normalize_host(entry);
            let (suffix, bare) = match name.strip_prefix("*.") {
                Some(rest) => (true, rest.to_owned()),
                None => (false, name),
            };
            let valid = !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !valid {
                return Err((i, format!("{raw:?} is not a host name, IP address or CIDR")));
            }
            if suffix {
                list.suffixes.push(format!(".{bare}"));
            } else {
                list.hosts.insert(bare);
            }
        }
        Ok(list)
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.contains(host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let c = canonical(ip);
        self.nets.iter().any(|n| n.contains(ip) || n.contains(c))
    }
}

/// One tool's guard: the refused ranges minus its `allow` list, and the
/// resolver it uses.
#[derive(Clone)]
pub struct Guard {
    allow: AllowList,
    resolver: Arc<dyn DnsResolver>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("allow", &self.allow).finish()
    }
}

impl Guard {
    /// A guard with the `allow` exceptions (host names, `*.suffix`, IPs,
    /// CIDRs).
    ///
    /// # Errors
    /// The index of the first malformed entry and why.
    pub fn new(allow: &[String], resolver: Arc<dyn DnsResolver>) -> Result<Guard, (usize, String)> {
        Ok(Guard {
            allow: AllowList::parse(allow)?,
            resolver,
        })
    }

    /// Checks one address against the refused ranges and the allow list.
    ///
    /// # Errors
    /// [`SsrfError::Blocked`] naming `host` and the reason.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), SsrfError> {
        if self.allow.allows_ip(ip) {
            return Ok(());
        }
        match blocked_reason(ip) {
            None => Ok(()),
            Some(reason) => Err(SsrfError::Blocked {
                host: host.to_owned(),
                ip,
                reason,
            }),
        }
    }

    /// Parses `raw` and checks what can be checked without DNS: the scheme,
    /// an IP-literal host, a local name. Host names are checked again, on
    /// their resolved addresses, when the client connects ([`Guard::resolve`]).
    ///
    /// # Errors
    /// Why the URL is refused.
    pub fn check_url_str(&self, raw: &str) -> Result<Url, SsrfError> {
        let url = Url::parse(raw.trim()).map_err(|e| SsrfError::BadUrl {
            url: raw.to_owned(),
            reason: e.to_string(),
        })?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// As [`Guard::check_url_str`] for a parsed URL (e.g. a redirect target).
    ///
    /// # Errors
    /// Why the URL is refused.
    pub fn check_url(&self, url: &Url) -> Result<(), SsrfError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SsrfError::Scheme(url.scheme().to_owned()));
        }
        match url.host() {
            None => Err(SsrfError::BadUrl {
                url: url.to_string(),
                reason: "no host".to_owned(),
            }),
            Some(Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(&format!("[{ip}]"), IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                let name = normalize_host(name);
                if !self.allow.allows_host(&name) && is_local_name(&name) {
                    return Err(SsrfError::LocalName(name));
                }
                Ok(())
            }
        }
    }

    /// Resolves `host` and checks every address; all must pass (a name
    /// resolving to one public and one private address is refused).
    /// Hosts in the allow list skip the address check.
    ///
    /// # Errors
    /// [`SsrfError::Blocked`], [`SsrfError::LocalName`] or [`SsrfError::Dns`].
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, SsrfError> {
        let name = normalize_host(host);
        if let Ok(ip) = name.parse::<IpAddr>() {
            self.check_ip(&name, ip)?;
            return Ok(vec![ip]);
        }
        let allowed_name = self.allow.allows_host(&name);
        if !allowed_name && is_local_name(&name) {
            return Err(SsrfError::LocalName(name));
        }
        let ips = self
            .resolver
            .lookup(&name)
            .await
            .map_err(|e| SsrfError::Dns {
                host: name.clone(),
                message: e.to_string(),
            })?;
        if ips.is_empty() {
            return Err(SsrfError::Dns {
                host: name,
                message: "no addresses".to_owned(),
            });
        }
        if !allowed_name {
            for ip in &ips {
                self.check_ip(&name, *ip)?;
            }
        }
        Ok(ips)
    }
}

/// The HTTP client's resolver: resolution and check in one step, so the
/// client connects only to addresses the guard has seen.
pub(crate) struct GuardResolver(pub(crate) Arc<Guard>);

impl reqwest::dns::Resolve for GuardResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = guard.resolve(&host).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for (ip, blocked) in [
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("10.1.2.3", true),
            ("100.64.0.1", true),
            ("100.100.100.200", true),
            ("100.128.0.1", false),
            ("127.0.0.1", true),
            ("127.255.255.254", true),
            ("169.254.169.254", true),
            ("169.254.0.1", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.0.0.192", true),
            ("192.168.1.1", true),
            ("198.18.0.1", true),
            ("198.19.255.255", true),
            ("198.20.0.1", false),
            ("224.0.0.1", true),
            ("239.255.255.255", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("168.63.129.16", true),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("::", true),
            ("::1", true),
            ("::127.0.0.1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:8.8.8.8", false),
            ("::ffff:0:127.0.0.1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::808:808", true),
            ("64:ff9b:1::1", true),
            ("2002:7f00:1::1", true),
            ("2002:a9fe:a9fe::1", true),
            ("2002:808:808::1", false),
            ("2001:0:4136:e378::1", true),
            ("2001:db8::1", true),
            ("fc00::1", true),
            ("fd00:ec2::254", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("2606:4700:4700::1111", false),
            ("2a00:1450:4001::1", false),
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(blocked_reason(parsed).is_some(), blocked, "{ip}");
        }
        assert_eq!(
            blocked_reason("169.254.169.254".parse().unwrap()),
            Some("cloud metadata")
        );
    }

    #[test]
    fn allow_list_entries() {
        let guard = Guard::new(
            &[
                "10.0.0.5".into(),
                "192.168.0.0/16".into(),
                "[fd00::1]".into(),
                "Internal.Example.".into(),
                "*.corp.example".into(),
            ],
            Arc::new(SystemResolver),
        )
        .unwrap();
        let ok = |ip: &str| guard.check_ip("h", ip.parse().unwrap()).is_ok();
        assert!(ok("10.0.0.5"));
        assert!(ok("::ffff:10.0.0.5"));
        assert!(!ok("10.0.0.6"));
        assert!(ok("192.168.44.1"));
        assert!(ok("fd00::1"));
        assert!(!ok("fd00::2"));
        assert!(guard.allow.allows_host("internal.example"));
        assert!(guard.allow.allows_host("a.corp.example"));
        assert!(!guard.allow.allows_host("corp.example.evil"));
        for bad in [
            "10.0.0.0/33",
            "1.2.3.4/x",
            "fd00::/129",
            "a b",
            "http://x",
            "",
        ] {
            assert!(
                Guard::new(&[bad.to_owned()], Arc::new(SystemResolver)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn cidr_edges() {
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("127.0.0.1".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fdff::1".parse().unwrap()));
        assert!(!v6.contains("fe00::1".parse().unwrap()));
    }
}
