//! Where webhooks may be sent: the address policy, the URL check, and a DNS resolver for
//! reqwest that applies the policy when a connection is made.
//!
//! A webhook URL is chosen by a tenant, and switchyard runs beside things a tenant must not
//! reach (the database, FreeSWITCH's event socket, a cloud's metadata service at
//! 169.254.169.254). So, unless the operator allows private targets, a delivery is never made
//! to a loopback, private, link-local or shared (CGNAT) address, and never (whatever the
//! operator says) to an address that no web server can hold: unspecified, multicast, broadcast,
//! documentation, benchmarking or reserved space. The ranges are IANA's special-purpose
//! registries (RFC 6890 and its updates) for IPv4 and IPv6; IPv6 forms that carry an IPv4
//! address (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are
//! judged by the IPv4 address inside.
//!
//! When it is checked: a name is checked when it is resolved for a connection, by
//! [`VettedResolver`], which hands the connector only the addresses that pass. Checking the
//! URL once when the endpoint is saved would not do: the name's owner can answer a public
//! address then and 127.0.0.1 at delivery time (DNS rebinding). Since the connector connects
//! to exactly what the resolver returned, there is no gap between check and use. A URL whose
//! host is an IP address is never resolved (hyper's connector skips the resolver for
//! literals), so [`Target::parse`] checks literal addresses, and every delivery must go
//! through a [`Target`].
//!
//! The client ([`client`]) also follows no redirects (a redirect could point anywhere, and
//! Standard Webhooks counts a 3xx as a failure), ignores proxy settings from the environment
//! (through a proxy, the resolver would vet the proxy's address, not the target's), and gives
//! every request 15 s.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A whole request, connect to last body byte, gets this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest URL accepted: it is stored with the endpoint and shown in every delivery log.
pub const MAX_URL_LEN: usize = 2048;

/// How many refused addresses an error names (a name can resolve to dozens).
const MAX_NAMED_ADDRESSES: usize = 8;

/// What kind of address an IP address is, as far as webhooks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressClass {
    /// Globally routable: always allowed.
    Public,
    // Allowed when the operator allows private targets:
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7 (unique local), fec0::/10 (old site-local),
    /// 64:ff9b:1::/48 (local-use NAT64).
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 100.64/10, carrier-grade NAT (RFC 6598): inside a provider's network.
    SharedAddressSpace,
    // Never allowed:
    /// 0.0.0.0, :: (connecting to it reaches the local host on Linux).
    Unspecified,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 0/8, 192.0.0/24, 192.88.99/24, 198.18/15, 240/4; ::/96, 100::/64, 2001::/23,
    /// 5f00::/16, and IPv6 outside 2000::/3 not named above.
    Reserved,
}

impl AddressClass {
    /// Whether allowing private targets lets this class through.
    pub fn operator_may_allow(self) -> bool {
        matches!(
            self,
            AddressClass::Public
                | AddressClass::Loopback
                | AddressClass::Private
                | AddressClass::LinkLocal
                | AddressClass::SharedAddressSpace
        )
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::SharedAddressSpace => "shared (carrier-grade NAT)",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        })
    }
}

/// The class of `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether a webhook may be delivered to `ip`.
pub fn allowed(ip: IpAddr, allow_private: bool) -> bool {
    permits(classify(ip), allow_private)
}

fn permits(class: AddressClass, allow_private: bool) -> bool {
    class == AddressClass::Public || (allow_private && class.operator_may_allow())
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    // Most specific first: 0.0.0.0 is inside 0/8, 255.255.255.255 inside 240/4.
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([0, 0, 0, 0], 32, Unspecified),
        ([255, 255, 255, 255], 32, Broadcast),
        ([0, 0, 0, 0], 8, Reserved),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Reserved),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map_or(Public, |&(_, _, class)| class)
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    let bits = u128::from(ip);
    let in_net = |net: u128, prefix: u32| {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits & mask == net & mask
    };
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if ip.is_unspecified() {
        Unspecified
    } else if ip.is_loopback() {
        Loopback
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        classify_v4(v4)
    } else if in_net(0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        // NAT64, well-known prefix: the gateway connects to the IPv4 address inside.
        classify_v4(low_v4)
    } else if in_net(0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48) {
        Private
    } else if in_net(0, 96) {
        // IPv4-compatible (deprecated): nothing should use it.
        Reserved
    } else if in_net(0x0100_0000_0000_0000_0000_0000_0000_0000, 64) {
        Reserved
    } else if in_net(0x2001_0db8_0000_0000_0000_0000_0000_0000, 32)
        || in_net(0x3fff_0000_0000_0000_0000_0000_0000_0000, 20)
    {
        Documentation
    } else if in_net(0x2001_0000_0000_0000_0000_0000_0000_0000, 23) {
        // IETF protocol assignments, Teredo among them (its client address is obfuscated, so
        // it cannot be judged by an IPv4 address inside).
        Reserved
    } else if in_net(0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        // 6to4: the relay sends to the IPv4 address in bits 16..48.
        classify_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
    } else if in_net(0x5f00_0000_0000_0000_0000_0000_0000_0000, 16) {
        // SRv6 segment identifiers (RFC 9602).
        Reserved
    } else if in_net(0x2000_0000_0000_0000_0000_0000_0000_0000, 3) {
        Public
    } else if in_net(0xfc00_0000_0000_0000_0000_0000_0000_0000, 7)
        || in_net(0xfec0_0000_0000_0000_0000_0000_0000_0000, 10)
    {
        Private
    } else if in_net(0xfe80_0000_0000_0000_0000_0000_0000_0000, 10) {
        LinkLocal
    } else if in_net(0xff00_0000_0000_0000_0000_0000_0000_0000, 8) {
        Multicast
    } else {
        // Outside global unicast and not assigned a purpose: nothing a web server holds.
        Reserved
    }
}

/// Why a webhook target is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("not a URL: {reason}")]
    Url { reason: String },
    #[error("a webhook URL is at most {max} characters, this one {len}", max = MAX_URL_LEN)]
    TooLong { len: usize },
    #[error("a webhook URL is `https` or `http`, not `{scheme}`")]
    Scheme { scheme: String },
    #[error("a webhook URL carries no user name or password (use a signing secret)")]
    Userinfo,
    #[error("a webhook URL names a host")]
    NoHost,
    #[error("`{host}` is {class}: webhooks are not sent there")]
    Refused { host: String, class: AddressClass },
    #[error(
        "`{host}` resolves only to addresses webhooks are not sent to: {}",
        list(refused)
    )]
    NoAllowedAddress {
        host: String,
        /// The first few of them.
        refused: Vec<(IpAddr, AddressClass)>,
    },
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
}

fn list(refused: &[(IpAddr, AddressClass)]) -> String {
    refused
        .iter()
        .map(|(ip, class)| format!("{ip} ({class})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A URL that may be delivered to: its scheme, userinfo and host checked, and its host, if an
/// IP address, allowed. A host name is checked again at every connection ([`VettedResolver`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    url: Url,
}

impl Target {
    /// Checks `text` as a webhook URL.
    pub fn parse(text: &str, allow_private: bool) -> Result<Target, TargetError> {
        if text.len() > MAX_URL_LEN {
            return Err(TargetError::TooLong { len: text.len() });
        }
        let url = Url::parse(text).map_err(|e| TargetError::Url {
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(TargetError::Scheme {
                scheme: url.scheme().to_owned(),
            });
        }
        // Credentials in a URL end up in logs and delivery listings; Standard Webhooks
        // authenticates with the signature instead.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Userinfo);
        }
        let check = |host: String, class: AddressClass| {
            if permits(class, allow_private) {
                Ok(())
            } else {
                Err(TargetError::Refused { host, class })
            }
        };
        // The URL parser has already turned every spelling of an address (`0x7f.1`,
        // `2130706433`, `[::ffff:7f00:1]`) into its canonical text, so a host that parses as an
        // address is one, and one that does not is a name.
        let host = url.host_str().ok_or(TargetError::NoHost)?;
        let literal = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        };
        if let Some(ip) = literal {
            check(ip.to_string(), classify(ip))?;
        } else {
            // RFC 6761: `localhost` and names under it are the loopback interface. The resolver
            // would refuse them too; saying so when the URL is saved is kinder.
            let name = host.trim_end_matches('.');
            if name == "localhost" || name.ends_with(".localhost") {
                check(name.to_owned(), AddressClass::Loopback)?;
            }
        }
        Ok(Target { url })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

/// The addresses of `host` that may be connected to, or why there are none. The resolver's
/// pure core.
pub fn vet(
    host: &str,
    resolved: impl IntoIterator<Item = SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for addr in resolved {
        if allowed(addr.ip(), allow_private) {
            kept.push(addr);
        } else if refused.len() < MAX_NAMED_ADDRESSES {
            refused.push((addr.ip(), classify(addr.ip())));
        }
    }
    match (kept.is_empty(), refused.is_empty()) {
        (false, _) => Ok(kept),
        (true, false) => Err(TargetError::NoAllowedAddress {
            host: host.to_owned(),
            refused,
        }),
        (true, true) => Err(TargetError::NoAddress {
            host: host.to_owned(),
        }),
    }
}

/// A reqwest resolver that resolves with the system resolver (`getaddrinfo`, on tokio's
/// blocking pool) and passes on only the addresses [`allowed`] lets through; a name with none
/// fails the connection with [`TargetError::NoAllowedAddress`] (found in the reqwest error's
/// source chain). A name with some allowed and some refused addresses connects to the allowed
/// ones only, so an answer that mixes a public address with 127.0.0.1 cannot reach loopback.
#[derive(Clone, Copy, Debug)]
pub struct VettedResolver {
    pub allow_private: bool,
}

impl Resolve for VettedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in afterwards.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = vet(&host, resolved, allow_private)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client for webhook deliveries: [`VettedResolver`], no redirects, no proxy,
/// [`REQUEST_TIMEOUT`]. Send only to a [`Target`]'s URL (literal addresses are checked there,
/// not here).
pub fn client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(VettedResolver { allow_private })
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("switchyard-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_classes() {
        let cases: &[(&str, AddressClass)] = &[
            // Public
            ("1.1.1.1", Public),
            ("8.8.8.8", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("192.0.1.255", Public),
            ("198.17.255.255", Public),
            ("198.20.0.0", Public),
            ("223.255.255.255", Public),
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001::200e", Public),
            ("64:ff9b::808:808", Public),
            ("2002:808:808::1", Public),
            ("::ffff:8.8.8.8", Public),
            // Loopback
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("64:ff9b::7f00:1", Loopback),
            ("2002:7f00:1::", Loopback),
            // Private
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:192.168.0.1", Private),
            ("fc00::1", Private),
            ("fd12:3456:789a::1", Private),
            ("fec0::1", Private),
            ("64:ff9b:1::a00:1", Private),
            ("2002:c0a8:101::", Private),
            // Link-local
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("::ffff:169.254.169.254", LinkLocal),
            // CGNAT
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            // Never
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("::ffff:0.0.0.0", Unspecified),
            ("0.1.2.3", Reserved),
            ("255.255.255.255", Broadcast),
            ("::ffff:255.255.255.255", Broadcast),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("240.0.0.1", Reserved),
            ("::7f00:1", Reserved),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("2001:1ff::1", Reserved),
            ("5f00::1", Reserved),
            ("4000::1", Reserved),
            ("e000::1", Reserved),
        ];
        for (text, want) in cases {
            assert_eq!(classify(ip(text)), *want, "{text}");
        }
    }

    #[test]
    fn private_kinds_pass_only_when_the_operator_allows_them() {
        for text in [
            "127.0.0.1",
            "10.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!allowed(ip(text), false), "{text} refused by default");
            assert!(
                allowed(ip(text), true),
                "{text} allowed when private targets are"
            );
        }
        for text in [
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "2001:db8::1",
            "240.0.0.1",
        ] {
            assert!(!allowed(ip(text), false), "{text}");
            assert!(
                !allowed(ip(text), true),
                "{text} refused even when private targets are allowed"
            );
        }
        for text in ["1.1.1.1", "2606:4700:4700::1111"] {
            assert!(
                allowed(ip(text), false) && allowed(ip(text), true),
                "{text}"
            );
        }
    }

    #[test]
    fn urls_are_refused_with_the_reason() {
        let cases: &[(&str, TargetError)] = &[
            (
                "not a url",
                TargetError::Url {
                    reason: "relative URL without a base".into(),
                },
            ),
            (
                "ftp://example.com/",
                TargetError::Scheme {
                    scheme: "ftp".into(),
                },
            ),
            (
                "file:///etc/passwd",
                TargetError::Scheme {
                    scheme: "file".into(),
                },
            ),
            (
                "javascript:alert(1)",
                TargetError::Scheme {
                    scheme: "javascript".into(),
                },
            ),
            ("https://user:pw@example.com/", TargetError::Userinfo),
            ("https://user@example.com/", TargetError::Userinfo),
            ("https://:pw@example.com/", TargetError::Userinfo),
            (
                "http://127.0.0.1:8080/hook",
                TargetError::Refused {
                    host: "127.0.0.1".into(),
                    class: Loopback,
                },
            ),
            // Other spellings of 127.0.0.1, normalised by the URL parser.
            (
                "http://2130706433/",
                TargetError::Refused {
                    host: "127.0.0.1".into(),
                    class: Loopback,
                },
            ),
            (
                "http://0x7f.1/",
                TargetError::Refused {
                    host: "127.0.0.1".into(),
                    class: Loopback,
                },
            ),
            (
                "http://[::ffff:127.0.0.1]/",
                TargetError::Refused {
                    host: "::ffff:127.0.0.1".into(),
                    class: Loopback,
                },
            ),
            (
                "http://[::1]/",
                TargetError::Refused {
                    host: "::1".into(),
                    class: Loopback,
                },
            ),
            (
                "http://169.254.169.254/latest/meta-data/",
                TargetError::Refused {
                    host: "169.254.169.254".into(),
                    class: LinkLocal,
                },
            ),
            (
                "https://10.0.0.5/",
                TargetError::Refused {
                    host: "10.0.0.5".into(),
                    class: Private,
                },
            ),
            (
                "http://0.0.0.0:5432/",
                TargetError::Refused {
                    host: "0.0.0.0".into(),
                    class: Unspecified,
                },
            ),
            (
                "http://localhost:8080/",
                TargetError::Refused {
                    host: "localhost".into(),
                    class: Loopback,
                },
            ),
            (
                "http://LOCALHOST./",
                TargetError::Refused {
                    host: "localhost".into(),
                    class: Loopback,
                },
            ),
            (
                "http://api.localhost/",
                TargetError::Refused {
                    host: "api.localhost".into(),
                    class: Loopback,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Target::parse(text, false).as_ref(), Err(want), "{text}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            Target::parse(&long, false),
            Err(TargetError::TooLong { len: long.len() })
        );
    }

    #[test]
    fn allowing_private_targets_lets_private_literals_through_but_not_the_rest() {
        for text in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:3000/",
            "http://[fd00::1]/",
            "http://10.1.2.3/",
        ] {
            assert!(Target::parse(text, false).is_err(), "{text}");
            assert_eq!(
                Target::parse(text, true)
                    .unwrap()
                    .as_str()
                    .trim_end_matches('/'),
                text.trim_end_matches('/')
            );
        }
        for text in ["http://0.0.0.0/", "http://224.0.0.1/", "http://192.0.2.1/"] {
            assert!(Target::parse(text, true).is_err(), "{text}");
        }
    }

    #[test]
    fn public_urls_are_accepted() {
        for text in [
            "https://example.com/webhooks",
            "http://example.com:8080/x?y=1#frag",
            "https://1.1.1.1/",
            "https://[2606:4700:4700::1111]/",
        ] {
            assert!(Target::parse(text, false).is_ok(), "{text}");
        }
    }

    #[test]
    fn vet_keeps_the_allowed_addresses_of_a_mixed_answer() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let mixed = [
            a("127.0.0.1:0"),
            a("93.184.215.14:0"),
            a("[::1]:0"),
            a("[2606:2800::1]:0"),
        ];
        assert_eq!(
            vet("rebind.example", mixed, false).unwrap(),
            [a("93.184.215.14:0"), a("[2606:2800::1]:0")]
        );
        assert_eq!(vet("rebind.example", mixed, true).unwrap(), mixed);
    }

    #[test]
    fn vet_fails_when_every_address_is_refused_and_names_them() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let err = vet("evil.example", [a("127.0.0.1:0"), a("[fe80::1]:0")], false).unwrap_err();
        assert_eq!(
            err,
            TargetError::NoAllowedAddress {
                host: "evil.example".into(),
                refused: vec![(ip("127.0.0.1"), Loopback), (ip("fe80::1"), LinkLocal)],
            }
        );
        assert_eq!(
            err.to_string(),
            "`evil.example` resolves only to addresses webhooks are not sent to: \
             127.0.0.1 (loopback), fe80::1 (link-local)"
        );
        assert_eq!(
            vet("nothing.example", [], false),
            Err(TargetError::NoAddress {
                host: "nothing.example".into()
            })
        );
    }

    #[test]
    fn vet_names_at_most_a_few_refused_addresses() {
        let many = (1..=50u8).map(|i| SocketAddr::from(([10, 0, 0, i], 0)));
        let Err(TargetError::NoAllowedAddress { refused, .. }) = vet("big.example", many, false)
        else {
            panic!("expected NoAllowedAddress");
        };
        assert_eq!(refused.len(), MAX_NAMED_ADDRESSES);
    }
}
