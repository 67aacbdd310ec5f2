//! Who may reach the bridge's listeners: the `--allow CIDR` list, checked per datagram and
//! per connection before anything is parsed, and the rule that a listener on an address other
//! than loopback needs one (pure: addresses in, yes or no out).
//!
//! Cost: the check runs on the UDP receive thread for every datagram. It is a loopback test
//! and then, per `--allow` entry, one mask-and-compare on a `u32` (IPv4) or `u128` (IPv6): no
//! allocation, no hashing, one boxed slice read in order. With a handful of entries that is a
//! few nanoseconds, against about a microsecond of kernel work per datagram
//! (docs/PERFORMANCE.md). A listener bound to loopback needs no check (the kernel delivers
//! only local traffic to it), so none is made: the default costs nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// Most `--allow` entries accepted: each one is a comparison per datagram.
pub const MAX_ALLOW_ENTRIES: usize = 64;

/// One network: an address and a prefix length (`10.0.0.0/24`, `fd00::/8`; a bare address
/// is the host alone, `/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cidr {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

/// A `--allow` value that is not a network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{input:?} is not a network: write an address with an optional prefix length, e.g. \
     10.0.0.0/24, 192.168.1.7 or fd00::/8 ({why})"
)]
pub struct CidrError {
    input: String,
    why: &'static str,
}

fn mask4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl Cidr {
    /// Whether `ip` (already canonical: IPv4-mapped IPv6 turned into IPv4) is inside.
    #[inline]
    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Cidr::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Cidr::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| CidrError {
            input: s.to_owned(),
            why,
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let prefix = prefix
            .map(|p| {
                p.parse::<u8>()
                    .map_err(|_| err("the prefix length is not a number"))
            })
            .transpose()?;
        // An IPv4-mapped IPv6 network is the IPv4 network it maps.
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let shift = if ip.is_ipv6() { 96 } else { 0 };
                let prefix = match prefix {
                    None => 32,
                    Some(p) if p >= shift && p - shift <= 32 => p - shift,
                    Some(_) => return Err(err("an IPv4 prefix length is at most 32")),
                };
                let (net, mask) = (u32::from(a), mask4(prefix));
                if net & !mask != 0 {
                    return Err(err("host bits are set after the prefix"));
                }
                Ok(Cidr::V4 { net, mask })
            }
            IpAddr::V6(a) => {
                let prefix = match prefix {
                    None => 128,
                    Some(p) if p <= 128 => p,
                    Some(_) => return Err(err("an IPv6 prefix length is at most 128")),
                };
                let (net, mask) = (u128::from(a), mask6(prefix));
                if net & !mask != 0 {
                    return Err(err("host bits are set after the prefix"));
                }
                Ok(Cidr::V6 { net, mask })
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cidr::V4 { net, mask } => write!(f, "{}/{}", Ipv4Addr::from(net), mask.count_ones()),
            Cidr::V6 { net, mask } => write!(f, "{}/{}", Ipv6Addr::from(net), mask.count_ones()),
        }
    }
}

/// Which sources a listener accepts. Loopback sources are always accepted: a local process
/// can reach the bridge anyway, and Linux drops packets arriving from outside with a loopback
/// source address (`net.ipv4.conf.*.route_localnet` = 0, the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowList {
    /// Every source (`--allow-any`, or a listener on loopback, which only local processes
    /// reach).
    Any,
    /// Loopback and these networks.
    Only(Box<[Cidr]>),
}

impl AllowList {
    /// Whether a datagram or connection from `ip` may be parsed.
    #[inline]
    pub fn allows(&self, ip: IpAddr) -> bool {
        match self {
            AllowList::Any => true,
            AllowList::Only(nets) => {
                let ip = ip.to_canonical();
                ip.is_loopback() || nets.iter().any(|n| n.contains(ip))
            }
        }
    }

    /// `true` for [`AllowList::Any`].
    pub fn is_any(&self) -> bool {
        matches!(self, AllowList::Any)
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowList::Any => f.write_str("any address"),
            AllowList::Only(nets) => {
                for n in nets.iter() {
                    write!(f, "{n}, ")?;
                }
                f.write_str("loopback")
            }
        }
    }
}

/// Starting on an address other than loopback without saying who may send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExposureError {
    #[error(
        "{flag} {addr} is not a loopback address: anyone who can reach this host could send to \
         the bridge. Add --allow CIDR for the networks your dummies (or scrapers) are on, e.g. \
         --allow 10.0.0.0/24 (repeatable), or --allow-any to accept every source; or listen on \
         127.0.0.1"
    )]
    NotLoopback {
        flag: &'static str,
        addr: SocketAddr,
    },
    #[error("--allow was given {given} times; at most {MAX_ALLOW_ENTRIES} networks are accepted (use wider prefixes)")]
    TooMany { given: usize },
}

/// What the user said about exposure: `--allow` networks and `--allow-any`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    pub allow: Vec<Cidr>,
    pub allow_any: bool,
}

impl Exposure {
    /// The filter for a listener bound to `addr` (named `flag` in errors): none needed on
    /// loopback; elsewhere `--allow` or `--allow-any` is required.
    pub fn filter_for(
        &self,
        flag: &'static str,
        addr: SocketAddr,
    ) -> Result<AllowList, ExposureError> {
        if self.allow.len() > MAX_ALLOW_ENTRIES {
            return Err(ExposureError::TooMany {
                given: self.allow.len(),
            });
        }
        if addr.ip().to_canonical().is_loopback() || self.allow_any {
            return Ok(AllowList::Any);
        }
        if self.allow.is_empty() {
            return Err(ExposureError::NotLoopback { flag, addr });
        }
        Ok(AllowList::Only(self.allow.clone().into_boxed_slice()))
    }

    /// One log line saying what a listener exposes, or `None` on loopback.
    pub fn describe(&self, what: &str, addr: SocketAddr) -> Option<String> {
        if addr.ip().to_canonical().is_loopback() {
            return None;
        }
        let who = if self.allow_any {
            "from any address (--allow-any)".to_owned()
        } else {
            let list = AllowList::Only(self.allow.clone().into_boxed_slice());
            format!("from {list} only; anything else is dropped unparsed and counted")
        };
        Some(format!("exposed: {what} on {addr} accepts traffic {who}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn only(nets: &[&str]) -> AllowList {
        AllowList::Only(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn networks_parse_and_print_back() {
        for (text, shown) in [
            ("10.0.0.0/24", "10.0.0.0/24"),
            ("192.168.1.7", "192.168.1.7/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("fd00::/8", "fd00::/8"),
            ("::1", "::1/128"),
            ("::ffff:10.1.0.0/112", "10.1.0.0/16"),
            (" 10.0.0.0/8 ", "10.0.0.0/8"),
        ] {
            let c: Cidr = text.parse().unwrap();
            assert_eq!(c.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn bad_networks_say_what_is_wrong_and_show_an_example() {
        for (text, why) in [
            ("10.0.0.1/24", "host bits"),
            ("10.0.0.0/33", "at most 32"),
            ("fd00::/129", "at most 128"),
            ("10.0.0.0/x", "not a number"),
            ("example.org", "not an IP address"),
            ("", "not an IP address"),
        ] {
            let e = text.parse::<Cidr>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("10.0.0.0/24"), "{text}: {e}");
        }
    }

    #[test]
    fn membership_by_prefix_for_both_families() {
        let l = only(&["10.1.0.0/16", "192.168.5.9", "fd00:1::/32"]);
        assert!(l.allows(ip("10.1.255.3")));
        assert!(!l.allows(ip("10.2.0.1")));
        assert!(l.allows(ip("192.168.5.9")));
        assert!(!l.allows(ip("192.168.5.10")));
        assert!(l.allows(ip("fd00:1:abcd::5")));
        assert!(!l.allows(ip("fd00:2::5")));
        // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
        assert!(l.allows(ip("::ffff:10.1.2.3")));
        assert!(!l.allows(ip("::ffff:10.2.2.3")));
        // Loopback always, whatever the list.
        assert!(l.allows(ip("127.0.0.1")) && l.allows(ip("127.8.9.1")) && l.allows(ip("::1")));
        assert!(AllowList::Any.allows(ip("203.0.113.7")));
        assert!(only(&["0.0.0.0/0"]).allows(ip("203.0.113.7")));
        assert!(!only(&["0.0.0.0/0"]).allows(ip("2001:db8::1")), "v4 only");
    }

    #[test]
    fn loopback_needs_nothing_and_anything_else_needs_an_allow() {
        let none = Exposure::default();
        let lo: SocketAddr = "127.0.0.1:8888".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8888".parse().unwrap();
        let all: SocketAddr = "0.0.0.0:8888".parse().unwrap();
        assert_eq!(none.filter_for("--listen", lo), Ok(AllowList::Any));
        assert_eq!(none.filter_for("--listen", lo6), Ok(AllowList::Any));
        assert_eq!(none.describe("UDP", lo), None);
        let e = none.filter_for("--listen", all).unwrap_err().to_string();
        for want in [
            "--listen 0.0.0.0:8888",
            "--allow CIDR",
            "--allow-any",
            "127.0.0.1",
        ] {
            assert!(e.contains(want), "{want} missing in {e}");
        }
        let some = Exposure {
            allow: vec!["10.0.0.0/24".parse().unwrap()],
            allow_any: false,
        };
        assert_eq!(some.filter_for("--listen", all), Ok(only(&["10.0.0.0/24"])));
        let line = some.describe("UDP", all).unwrap();
        assert!(line.contains("10.0.0.0/24, loopback only"), "{line}");
        let any = Exposure {
            allow: vec![],
            allow_any: true,
        };
        assert_eq!(any.filter_for("--tcp-listen", all), Ok(AllowList::Any));
        assert!(any.describe("TCP", all).unwrap().contains("any address"));
    }

    #[test]
    fn the_list_is_bounded() {
        let many = Exposure {
            allow: vec!["10.0.0.0/8".parse().unwrap(); MAX_ALLOW_ENTRIES + 1],
            allow_any: false,
        };
        let e = many
            .filter_for("--listen", "0.0.0.0:1".parse().unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("at most 64"), "{e}");
    }
}
