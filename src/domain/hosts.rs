//! Which hosts an outbound call may reach (DESIGN §7: no outbound call goes to loopback, link-local
//! or private addresses unless the host is explicitly allowed). The special-purpose blocks are
//! IANA's IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and the RFCs named beside
//! each block); every other unicast address is public.
use std::{
    collections::BTreeSet,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::{Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// A block of special-purpose addresses: what it is, and the RFC that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Special {
    pub what: &'static str,
    pub rfc: &'static str,
}

impl fmt::Display for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.rfc)
    }
}

const fn special(what: &'static str, rfc: &'static str) -> Special {
    Special { what, rfc }
}

const PRIVATE: Special = special("a private address", "RFC 1918");
const LOOPBACK: Special = special("a loopback address", "RFC 1122");
const DOCUMENTATION: Special = special("a documentation address", "RFC 5737");
/// `localhost` and `*.localhost` always mean this machine (RFC 6761 §6.3).
const LOCALHOST: Special = special("a loopback name", "RFC 6761");

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    let ip = Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    Ipv6Net::new_assert(ip, len)
}

/// IANA IPv4 Special-Purpose Address Registry, plus multicast and the reserved class E.
const V4_SPECIAL: [(Ipv4Net, Special); 15] = [
    (
        v4(0, 0, 0, 0, 8),
        special("an unspecified (\"this network\") address", "RFC 1122"),
    ),
    (v4(10, 0, 0, 0, 8), PRIVATE),
    (
        v4(100, 64, 0, 0, 10),
        special("a shared (carrier-grade NAT) address", "RFC 6598"),
    ),
    (v4(127, 0, 0, 0, 8), LOOPBACK),
    (
        v4(169, 254, 0, 0, 16),
        special("a link-local address", "RFC 3927"),
    ),
    (v4(172, 16, 0, 0, 12), PRIVATE),
    (
        v4(192, 0, 0, 0, 24),
        special("an IETF protocol address", "RFC 6890"),
    ),
    (v4(192, 0, 2, 0, 24), DOCUMENTATION),
    (
        v4(192, 88, 99, 0, 24),
        special("a 6to4 relay anycast address", "RFC 7526"),
    ),
    (v4(192, 168, 0, 0, 16), PRIVATE),
    (
        v4(198, 18, 0, 0, 15),
        special("a benchmarking address", "RFC 2544"),
    ),
    (v4(198, 51, 100, 0, 24), DOCUMENTATION),
    (v4(203, 0, 113, 0, 24), DOCUMENTATION),
    (
        v4(224, 0, 0, 0, 4),
        special("a multicast address", "RFC 5771"),
    ),
    (
        v4(240, 0, 0, 0, 4),
        special("a reserved or broadcast address", "RFC 1112"),
    ),
];

/// IANA IPv6 Special-Purpose Address Registry (the blocks that embed an IPv4 address are judged
/// by that address, see [`classify`]), plus multicast and the deprecated site-local block.
const V6_SPECIAL: [(Ipv6Net, Special); 13] = [
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
        special("the unspecified address", "RFC 4291"),
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
        special("a loopback address", "RFC 4291"),
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        special("an IPv4-compatible address (deprecated)", "RFC 4291"),
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        special("a local-use NAT64 address", "RFC 8215"),
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        special("a discard-only address", "RFC 6666"),
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        special("an IETF protocol address (Teredo included)", "RFC 2928"),
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        special("a documentation address", "RFC 3849"),
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        special("a documentation address", "RFC 9637"),
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        special("an SRv6 segment identifier", "RFC 9602"),
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        special("a unique-local address", "RFC 4193"),
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        special("a link-local address", "RFC 4291"),
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        special("a site-local address (deprecated)", "RFC 3879"),
    ),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        special("a multicast address", "RFC 4291"),
    ),
];

/// NAT64's well-known prefix: the last 32 bits are the IPv4 address reached (RFC 6052).
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
/// 6to4: bits 16–48 are the IPv4 address of the site (RFC 3056).
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
/// Global unicast (RFC 4291 §2.4): everything outside it is special.
const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// The special-purpose block `ip` belongs to, or `None` for a public address. An IPv6 address
/// that carries an IPv4 address (IPv4-mapped, NAT64, 6to4) is judged by the IPv4 address.
pub fn classify(ip: IpAddr) -> Option<Special> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Special> {
    V4_SPECIAL
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, s)| *s)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Special> {
    // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) is the IPv4 address itself on a dual-stack socket.
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return classify_v4(mapped);
    }
    let bits = ip.to_bits();
    if NAT64.contains(&ip) {
        return classify_v4(Ipv4Addr::from_bits(bits as u32));
    }
    if SIX_TO_FOUR.contains(&ip) {
        return classify_v4(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    if let Some((_, s)) = V6_SPECIAL.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(*s);
    }
    (!GLOBAL_UNICAST.contains(&ip)).then_some(special("not a global unicast address", "RFC 4291"))
}

/// Why a URL or a resolved address may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostRefused {
    #[error("{0}: URLs are accepted only with https (plain http only to an allowed private host)")]
    Scheme(String),
    #[error("URLs with user-info (user:password@) are not accepted")]
    UserInfo,
    #[error("the URL has no host")]
    NoHost,
    #[error("{host} is {special}, and {host} is not an allowed private host")]
    Address { host: String, special: Special },
    #[error("{host} resolves to {ip}, {special}, and {host} is not an allowed private host")]
    Resolved {
        host: String,
        ip: IpAddr,
        special: Special,
    },
}

/// A host as hosts are compared: a lowercase (IDNA) name without its final dot, or an IP address
/// in canonical form (IPv4-mapped IPv6 as IPv4), without brackets. `None` when it is neither.
pub fn normalize(host: &str) -> Option<String> {
    let host = host.trim();
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
        return Some(ip_key(ip));
    }
    host_key(&Host::parse(host).ok()?)
}

fn ip_key(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

fn host_key<S: AsRef<str>>(host: &Host<S>) -> Option<String> {
    match host {
        Host::Domain(d) => {
            let d = d.as_ref().trim_end_matches('.').to_ascii_lowercase();
            (!d.is_empty()).then_some(d)
        }
        Host::Ipv4(ip) => Some(ip_key(IpAddr::V4(*ip))),
        Host::Ipv6(ip) => Some(ip_key(IpAddr::V6(*ip))),
    }
}

/// The hosts allowed to be reached at special-purpose addresses; every other host must be public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    allowed: BTreeSet<String>,
}

impl HostPolicy {
    /// A policy allowing these hosts (names or IP addresses); entries that are neither are skipped
    /// (the configuration refuses them first, with [`normalize`]).
    pub fn allowing<S: AsRef<str>>(hosts: impl IntoIterator<Item = S>) -> Self {
        let mut policy = Self::default();
        for host in hosts {
            policy.allow(host.as_ref());
        }
        policy
    }

    pub fn allow(&mut self, host: &str) {
        if let Some(key) = normalize(host) {
            self.allowed.insert(key);
        }
    }

    /// Whether `host` was explicitly allowed.
    pub fn allows(&self, host: &str) -> bool {
        normalize(host).is_some_and(|k| self.allowed.contains(&k))
    }

    /// What can be decided without DNS: https (http only to an allowed host), no user-info, and
    /// no special-purpose IP literal or `localhost` name unless the host is allowed.
    pub fn check_url(&self, url: &Url) -> Result<(), HostRefused> {
        let host = url.host().ok_or(HostRefused::NoHost)?;
        let key = host_key(&host).ok_or(HostRefused::NoHost)?;
        let allowed = self.allowed.contains(&key);
        match url.scheme() {
            "https" => {}
            "http" if allowed => {}
            other => return Err(HostRefused::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HostRefused::UserInfo);
        }
        if allowed {
            return Ok(());
        }
        let special = match host {
            Host::Ipv4(ip) => classify_v4(ip),
            Host::Ipv6(ip) => classify_v6(ip),
            Host::Domain(_) => {
                (key == "localhost" || key.ends_with(".localhost")).then_some(LOCALHOST)
            }
        };
        match special {
            Some(special) => Err(HostRefused::Address { host: key, special }),
            None => Ok(()),
        }
    }

    /// After DNS: every address `host` resolved to must be public, unless the host is allowed.
    pub fn check_resolved(&self, host: &str, ips: &[IpAddr]) -> Result<(), HostRefused> {
        if self.allows(host) {
            return Ok(());
        }
        for ip in ips {
            if let Some(special) = classify(*ip) {
                return Err(HostRefused::Resolved {
                    host: host.to_owned(),
                    ip: *ip,
                    special,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_other_special_ipv4_addresses_are_not_public() {
        for (addr, rfc) in [
            ("0.0.0.0", "RFC 1122"),
            ("0.1.2.3", "RFC 1122"),
            ("10.0.0.5", "RFC 1918"),
            ("10.255.255.255", "RFC 1918"),
            ("100.64.0.1", "RFC 6598"),
            ("100.127.255.255", "RFC 6598"),
            ("127.0.0.1", "RFC 1122"),
            ("127.255.0.9", "RFC 1122"),
            ("169.254.169.254", "RFC 3927"),
            ("172.16.0.1", "RFC 1918"),
            ("172.31.255.255", "RFC 1918"),
            ("192.0.0.8", "RFC 6890"),
            ("192.0.2.1", "RFC 5737"),
            ("192.88.99.1", "RFC 7526"),
            ("192.168.1.1", "RFC 1918"),
            ("198.18.0.1", "RFC 2544"),
            ("198.19.255.255", "RFC 2544"),
            ("198.51.100.7", "RFC 5737"),
            ("203.0.113.7", "RFC 5737"),
            ("224.0.0.1", "RFC 5771"),
            ("239.255.255.250", "RFC 5771"),
            ("240.0.0.1", "RFC 1112"),
            ("255.255.255.255", "RFC 1112"),
        ] {
            assert_eq!(classify(ip(addr)).map(|s| s.rfc), Some(rfc), "{addr}");
        }
    }

    #[test]
    fn public_ipv4_addresses_next_to_the_special_blocks_are_public() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "52.94.236.248",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn special_ipv6_addresses_and_ipv6_forms_of_special_ipv4_addresses_are_not_public() {
        for (addr, rfc) in [
            ("::", "RFC 4291"),
            ("::1", "RFC 4291"),
            ("::10.0.0.1", "RFC 4291"),
            ("::ffff:127.0.0.1", "RFC 1122"),
            ("::ffff:10.0.0.1", "RFC 1918"),
            ("::ffff:169.254.169.254", "RFC 3927"),
            ("::ffff:0.0.0.0", "RFC 1122"),
            ("64:ff9b::10.1.2.3", "RFC 1918"),
            ("64:ff9b::127.0.0.1", "RFC 1122"),
            ("64:ff9b:1::1", "RFC 8215"),
            ("100::1", "RFC 6666"),
            ("2001::1", "RFC 2928"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "RFC 2928"),
            ("2001:db8::1", "RFC 3849"),
            ("2002:c0a8:0101::1", "RFC 1918"),
            ("2002:7f00:0001::1", "RFC 1122"),
            ("3fff::1", "RFC 9637"),
            ("5f00::1", "RFC 9602"),
            ("fc00::1", "RFC 4193"),
            ("fd00::1", "RFC 4193"),
            ("fe80::1", "RFC 4291"),
            ("febf::1", "RFC 4291"),
            ("fec0::1", "RFC 3879"),
            ("ff02::1", "RFC 4291"),
            ("4000::1", "RFC 4291"),
        ] {
            assert_eq!(classify(ip(addr)).map(|s| s.rfc), Some(rfc), "{addr}");
        }
    }

    #[test]
    fn public_ipv6_addresses_and_ipv6_forms_of_public_ipv4_addresses_are_public() {
        for addr in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn the_classification_agrees_with_the_standard_library_where_it_has_a_rule() {
        let samples = (0..=255u8).flat_map(|a| {
            [0u8, 1, 64, 127, 254, 255]
                .into_iter()
                .map(move |b| Ipv4Addr::new(a, b, 1, 2))
        });
        for v4 in samples {
            let std_special = v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast();
            if std_special {
                assert!(classify(IpAddr::V4(v4)).is_some(), "{v4}");
            }
            let mapped = v4.to_ipv6_mapped();
            assert_eq!(
                classify(IpAddr::V6(mapped)),
                classify(IpAddr::V4(v4)),
                "{mapped}"
            );
        }
        for v6 in [
            ip("fd12:3456::1"),
            ip("fe80::abcd"),
            ip("ff05::2"),
            ip("::1"),
            ip("::"),
        ] {
            let IpAddr::V6(v6) = v6 else { unreachable!() };
            assert!(
                v6.is_unique_local()
                    || v6.is_unicast_link_local()
                    || v6.is_multicast()
                    || v6.is_loopback()
                    || v6.is_unspecified()
            );
            assert!(classify(IpAddr::V6(v6)).is_some(), "{v6}");
        }
    }

    fn check(policy: &HostPolicy, url: &str) -> Result<(), HostRefused> {
        policy.check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn urls_naming_special_addresses_user_info_or_plain_http_are_refused() {
        let none = HostPolicy::default();
        assert_eq!(check(&none, "https://api.goaffpro.com/v1"), Ok(()));
        assert_eq!(check(&none, "https://8.8.8.8/v1"), Ok(()));
        assert_eq!(check(&none, "https://[2606:4700::1]/"), Ok(()));
        for url in [
            "https://10.0.0.5/v1",
            "https://192.168.1.1",
            "https://[fd00::1]/",
            "https://169.254.169.254/",
            "https://0.0.0.0/",
            "https://[::]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://100.64.0.1/",
            "https://127.0.0.1:9000/v1",
            // The URL standard reads these as 127.0.0.1 and 10.0.0.1.
            "https://2130706433/",
            "https://0x7f.1/",
            "https://012.0.0.1/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
        ] {
            assert!(
                matches!(check(&none, url), Err(HostRefused::Address { .. })),
                "{url}: {:?}",
                check(&none, url)
            );
        }
        assert_eq!(
            check(&none, "https://user:pw@api.example/"),
            Err(HostRefused::UserInfo)
        );
        assert_eq!(
            check(&none, "https://user@api.example/"),
            Err(HostRefused::UserInfo)
        );
        assert_eq!(
            check(&none, "http://api.goaffpro.com/v1"),
            Err(HostRefused::Scheme("http".into()))
        );
        assert!(matches!(
            check(&none, "http://10.0.0.5/v1"),
            Err(HostRefused::Scheme(_))
        ));
        assert!(matches!(
            check(&none, "ftp://api.example/"),
            Err(HostRefused::Scheme(_))
        ));
    }

    #[test]
    fn allowed_hosts_may_be_private_and_plain_http_but_never_carry_user_info() {
        let policy = HostPolicy::allowing(["127.0.0.1", "[::1]", "Program.Internal.", "10.0.0.5"]);
        for url in [
            "http://127.0.0.1:9000/v1",
            "http://[::1]:9000/v1",
            "http://[::ffff:127.0.0.1]:9000/v1",
            "https://program.internal/v1",
            "http://PROGRAM.internal./v1",
            "https://10.0.0.5/v1",
        ] {
            assert_eq!(check(&policy, url), Ok(()), "{url}");
        }
        assert_eq!(
            check(&policy, "http://u:p@127.0.0.1/"),
            Err(HostRefused::UserInfo)
        );
        // Only the host itself: not its neighbours, not its subdomains.
        assert!(check(&policy, "https://127.0.0.2/").is_err());
        assert!(check(&policy, "http://other.internal/").is_err());
        assert!(check(&policy, "http://a.program.internal/").is_err());
    }

    #[test]
    fn every_resolved_address_must_be_public_unless_the_host_is_allowed() {
        let policy = HostPolicy::allowing(["program.internal"]);
        assert_eq!(
            policy.check_resolved("api.example", &[ip("93.184.215.14"), ip("2606:2800::1")]),
            Ok(())
        );
        let refused = policy.check_resolved("api.example", &[ip("93.184.215.14"), ip("10.1.2.3")]);
        assert_eq!(
            refused,
            Err(HostRefused::Resolved {
                host: "api.example".into(),
                ip: ip("10.1.2.3"),
                special: PRIVATE
            })
        );
        assert_eq!(
            refused.unwrap_err().to_string(),
            "api.example resolves to 10.1.2.3, a private address (RFC 1918), and api.example is not an allowed private host"
        );
        assert!(
            policy
                .check_resolved("api.example", &[ip("::ffff:169.254.169.254")])
                .is_err()
        );
        assert_eq!(
            policy.check_resolved("Program.Internal", &[ip("10.1.2.3"), ip("127.0.0.1")]),
            Ok(())
        );
    }

    #[test]
    fn hosts_are_normalized_and_junk_is_not_a_host() {
        assert_eq!(normalize(" Example.COM. ").as_deref(), Some("example.com"));
        assert_eq!(normalize("[::1]").as_deref(), Some("::1"));
        assert_eq!(normalize("::ffff:127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(normalize("127.0.0.1").as_deref(), Some("127.0.0.1"));
        for junk in ["", " ", "http://x", "a/b", "host:80", "a b", "user@host"] {
            assert_eq!(normalize(junk), None, "{junk:?}");
        }
    }
}
