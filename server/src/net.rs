//! Outgoing connections to hosts that users name (url locations, git remotes): which addresses they may
//! reach, and a DNS resolver that answers only with those.
//!
//! An allowlist names hosts, but what a name resolves to is decided by whoever runs its DNS, at the
//! moment of each lookup. So the rule is checked on addresses, inside the resolver the HTTP client
//! connects through: the addresses checked are the addresses connected to, and a second lookup that
//! answers differently (DNS rebinding) never happens. Loopback, private, shared (CGNAT), link-local,
//! unspecified, multicast and reserved addresses — also written as IPv4-mapped, IPv4-compatible, NAT64
//! or 6to4 IPv6 — are refused unless private addresses are allowed
//! (`catalog.url_allow_private_addresses`). A host written as an address never reaches a resolver, so
//! callers check those with [`CheckedResolver::check_literal`].

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

type BoxError = Box<dyn StdError + Send + Sync>;

/// How host names become addresses: the system's resolver, or one a test supplies.
#[derive(Clone)]
pub struct Lookup(Arc<dyn Resolve>);

impl Lookup {
    /// The system's resolver (`getaddrinfo`, on tokio's blocking pool).
    pub fn system() -> Self {
        Self(Arc::new(SystemResolver))
    }

    /// Another resolver; tests map made-up names to the addresses they need.
    pub fn custom(resolver: impl Resolve + 'static) -> Self {
        Self(Arc::new(resolver))
    }
}

impl Default for Lookup {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup")
    }
}

struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A host was refused because it is, or resolves to, an address that is not public.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The host as written (a name, or an address).
    pub host: String,
    pub address: IpAddr,
    /// What the address is: "a loopback address", "a private address"...
    pub kind: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if literal(&self.host) == Some(self.address) {
            write!(f, "refused: {} is {}", self.host, self.kind)?;
        } else {
            write!(
                f,
                "refused: {} resolves to {}, {}",
                self.host, self.address, self.kind
            )?;
        }
        f.write_str("; set catalog.url_allow_private_addresses to allow it")
    }
}

/// The [`Refused`] somewhere in `error`'s chain of sources: an HTTP client wraps its resolver's errors
/// several layers deep.
pub fn refusal<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Refused> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refused) = error.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = error.source();
    }
    None
}

/// Resolves names through a [`Lookup`] and answers only when every address is allowed; a name with a
/// refused address is refused whole, so a client never connects to part of a name's addresses.
#[derive(Clone, Debug)]
pub struct CheckedResolver {
    lookup: Lookup,
    allow_private: bool,
}

impl CheckedResolver {
    pub fn new(lookup: Lookup, allow_private: bool) -> Self {
        Self {
            lookup,
            allow_private,
        }
    }

    /// Whether every address may be reached (`catalog.url_allow_private_addresses`).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Checks a host written as an address (`127.0.0.1`, `[::ffff:7f00:1]`), which no resolver sees. A
    /// name passes: it is checked when it is resolved.
    pub fn check_literal(&self, host: &str) -> Result<(), Refused> {
        match literal(host) {
            Some(address) => self.check_ip(host, address),
            None => Ok(()),
        }
    }

    fn check_ip(&self, host: &str, address: IpAddr) -> Result<(), Refused> {
        match non_public(address) {
            Some(kind) if !self.allow_private => Err(Refused {
                host: host.to_owned(),
                address,
                kind,
            }),
            _ => Ok(()),
        }
    }

    /// The addresses of `host` (a name or an address, IPv6 in brackets or not), each checked. A refusal
    /// is a [`Refused`] (see [`refusal`]); other errors are the lookup's.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<IpAddr>, BoxError> {
        if let Some(address) = literal(host) {
            self.check_ip(host, address)?;
            return Ok(vec![address]);
        }
        let name = Name::from_str(host).map_err(|e| format!("{host:?} is not a host name: {e}"))?;
        Ok(self.resolve(name).await?.map(|a| a.ip()).collect())
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let checker = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = checker.lookup.0.resolve(name).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            for addr in &addrs {
                checker.check_ip(&host, addr.ip())?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The address a host is written as (IPv6 in brackets or not), or `None` for a name.
fn literal(host: &str) -> Option<IpAddr> {
    IpAddr::from_str(host.trim_start_matches('[').trim_end_matches(']')).ok()
}

/// What kind of address `address` is when it is not a public one ("a loopback address"), or `None`.
pub fn non_public(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

const PRIVATE: &str = "a private address";

fn non_public_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    Some(match (a, b) {
        // 0.0.0.0 and the rest of 0/8: connecting to them reaches this machine on Linux.
        (0, _) => "an unspecified address",
        (127, _) => "a loopback address",
        (10, _) | (172, 16..=31) | (192, 168) => PRIVATE,
        (100, 64..=127) => "a shared (carrier-grade NAT) address",
        (169, 254) => "a link-local address",
        (192, 0) if c == 0 => "a reserved (IETF protocol) address",
        (198, 18..=19) => "a benchmarking address",
        (224..=239, _) => "a multicast address",
        // 240/4, with the broadcast address 255.255.255.255.
        (240..=255, _) => "a reserved address",
        _ => return None,
    })
}

fn non_public_v6(address: Ipv6Addr) -> Option<&'static str> {
    if address.is_unspecified() {
        return Some("an unspecified address");
    }
    if address.is_loopback() {
        return Some("a loopback address");
    }
    if let Some(v4) = embedded_v4(address) {
        return non_public_v4(v4);
    }
    let first = address.segments()[0];
    if first & 0xfe00 == 0xfc00 {
        Some(PRIVATE) // fc00::/7, unique local
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if first & 0xffc0 == 0xfec0 {
        Some("a site-local address") // deprecated, still private
    } else if first & 0xff00 == 0xff00 {
        Some("a multicast address")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, when it is one written as IPv6: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let from = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match address.segments() {
        [0, 0, 0, 0, 0, 0xffff, high, low]
        | [0, 0, 0, 0, 0xffff, 0, high, low]
        | [0, 0, 0, 0, 0, 0, high, low]
        | [0x64, 0xff9b, 0, 0, 0, 0, high, low]
        | [0x2002, high, low, ..] => Some(from(high, low)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(address: &str) -> Option<&'static str> {
        non_public(address.parse().expect(address))
    }

    #[test]
    fn every_non_public_range_is_named() {
        for (address, expected) in [
            ("127.0.0.1", "a loopback address"),
            ("127.255.255.254", "a loopback address"),
            ("::1", "a loopback address"),
            ("10.0.0.1", PRIVATE),
            ("10.255.255.255", PRIVATE),
            ("172.16.0.1", PRIVATE),
            ("172.31.255.255", PRIVATE),
            ("192.168.1.1", PRIVATE),
            ("fc00::1", PRIVATE),
            ("fd12:3456::1", PRIVATE),
            ("100.64.0.1", "a shared (carrier-grade NAT) address"),
            ("100.127.255.255", "a shared (carrier-grade NAT) address"),
            ("169.254.169.254", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("febf::1", "a link-local address"),
            ("fec0::1", "a site-local address"),
            ("0.0.0.0", "an unspecified address"),
            ("0.1.2.3", "an unspecified address"),
            ("::", "an unspecified address"),
            ("224.0.0.1", "a multicast address"),
            ("ff02::1", "a multicast address"),
            ("255.255.255.255", "a reserved address"),
            ("240.0.0.1", "a reserved address"),
            ("192.0.0.8", "a reserved (IETF protocol) address"),
            ("198.18.0.1", "a benchmarking address"),
            // IPv4 written as IPv6 is judged as the IPv4 address it reaches.
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:10.1.2.3", PRIVATE),
            ("::ffff:169.254.169.254", "a link-local address"),
            ("::ffff:0:192.168.0.1", PRIVATE),
            ("::127.0.0.1", "a loopback address"),
            ("::172.16.0.1", PRIVATE),
            ("64:ff9b::7f00:1", "a loopback address"),
            ("64:ff9b::a9fe:a9fe", "a link-local address"),
            ("2002:7f00:1::", "a loopback address"),
            ("2002:c0a8:101::1", PRIVATE),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn public_addresses_and_the_edges_of_the_ranges_pass() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "223.255.255.255",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "fbff::1",
            "fe00::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert_eq!(kind(address), None, "{address}");
        }
    }

    #[test]
    fn refusals_name_the_host_the_address_and_the_setting() {
        let refused = Refused {
            host: "catalog.internal.test".into(),
            address: "127.0.0.1".parse().expect("ip"),
            kind: "a loopback address",
        };
        assert_eq!(
            refused.to_string(),
            "refused: catalog.internal.test resolves to 127.0.0.1, a loopback address; set catalog.url_allow_private_addresses to allow it"
        );
        let literal = Refused {
            host: "[::ffff:127.0.0.1]".into(),
            address: "::ffff:127.0.0.1".parse().expect("ip"),
            kind: "a loopback address",
        };
        assert!(
            literal
                .to_string()
                .starts_with("refused: [::ffff:127.0.0.1] is a loopback address;"),
            "{literal}"
        );
    }

    /// A resolver that knows one made-up name.
    struct OneName;

    impl Resolve for OneName {
        fn resolve(&self, name: Name) -> Resolving {
            let found = name.as_str() == "catalog.internal.test";
            Box::pin(async move {
                if !found {
                    return Err("no such host".into());
                }
                let addrs: Vec<SocketAddr> = vec![
                    "93.184.215.14:0".parse().expect("addr"),
                    "127.0.0.1:0".parse().expect("addr"),
                ];
                Ok(Box::new(addrs.into_iter()) as Addrs)
            })
        }
    }

    #[tokio::test]
    async fn a_name_with_any_refused_address_is_refused_whole() {
        let strict = CheckedResolver::new(Lookup::custom(OneName), false);
        let error = strict
            .resolve_checked("catalog.internal.test")
            .await
            .expect_err("refused");
        let refused = refusal(&*error).expect("a refusal");
        assert_eq!(refused.address, IpAddr::from([127, 0, 0, 1]));
        let literal = strict.resolve_checked("[::ffff:7f00:1]").await;
        assert!(refusal(&*literal.expect_err("refused")).is_some());
        let unknown = strict.resolve_checked("nowhere.test").await;
        assert!(refusal(&*unknown.expect_err("unknown")).is_none());

        let lenient = CheckedResolver::new(Lookup::custom(OneName), true);
        assert_eq!(
            lenient
                .resolve_checked("catalog.internal.test")
                .await
                .expect("allowed")
                .len(),
            2
        );
    }
}
