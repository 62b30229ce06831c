//! IP prefixes as every layer uses them: proxy identities, rules, routes and configuration.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address with a mask length; host bits are always zero (normalised on construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("'{0}' is not an IPv4 or IPv6 address")]
    BadAddress(String),
    #[error("prefix length '{0}' is not a number")]
    BadLength(String),
    #[error("prefix length {len} is longer than {max} for this address family")]
    LengthTooLong { len: u32, max: u8 },
}

impl Prefix {
    /// A prefix from an address and a length; host bits are cleared. `None` if `len` is too long.
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let max = max_len(&addr);
        if len > max {
            return None;
        }
        Some(Prefix {
            addr: mask_addr(addr, len),
            len,
        })
    }

    pub fn host(addr: IpAddr) -> Self {
        Prefix {
            addr,
            len: max_len(&addr),
        }
    }

    pub fn any_v4() -> Self {
        Prefix {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            len: 0,
        }
    }

    pub fn any_v6() -> Self {
        Prefix {
            addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            len: 0,
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The mask length (a prefix length, not a collection size: there is no `is_empty`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// 0.0.0.0/0 or ::/0: the proxy identity for which no reverse route is ever inserted.
    pub fn is_default(&self) -> bool {
        self.len == 0
    }

    pub fn is_host(&self) -> bool {
        self.len == max_len(&self.addr)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask_addr(addr, self.len) == self.addr
            }
            _ => false,
        }
    }

    /// True when every address of `other` is inside `self` (same family only).
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// The IPv4 network as a host-order integer and mask, for table code that works on integers.
    pub fn v4_bits(&self) -> Option<(u32, u32)> {
        match self.addr {
            IpAddr::V4(a) => Some((u32::from(a), v4_mask(self.len))),
            IpAddr::V6(_) => None,
        }
    }

    pub fn v6_bits(&self) -> Option<(u128, u128)> {
        match self.addr {
            IpAddr::V6(a) => Some((u128::from(a), v6_mask(self.len))),
            IpAddr::V4(_) => None,
        }
    }
}

fn max_len(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn v4_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn v6_mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & v4_mask(len.min(32)))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & v6_mask(len.min(128)))),
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a host prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr = IpAddr::from_str(addr_text)
            .map_err(|_| PrefixError::BadAddress(addr_text.to_string()))?;
        let max = max_len(&addr);
        let len = match len_text {
            None => max,
            Some(l) => {
                let n: u32 = l
                    .parse()
                    .map_err(|_| PrefixError::BadLength(l.to_string()))?;
                if n > u32::from(max) {
                    return Err(PrefixError::LengthTooLong { len: n, max });
                }
                n as u8
            }
        };
        Ok(Prefix {
            addr: mask_addr(addr, len),
            len,
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl serde::Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normalises_and_displays() {
        let p: Prefix = "172.16.2.77/24".parse().unwrap();
        assert_eq!(p.to_string(), "172.16.2.0/24");
        assert!(p.contains("172.16.2.1".parse().unwrap()));
        assert!(!p.contains("172.16.3.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        let h: Prefix = "10.2.2.2".parse().unwrap();
        assert!(h.is_host());
        assert_eq!(h.len(), 32);
        let d: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(d.is_default() && d.covers(&p));
        let v6: Prefix = "2001:db8::1/64".parse().unwrap();
        assert_eq!(v6.to_string(), "2001:db8::/64");
        assert!(Prefix::any_v6().covers(&v6));
        assert!(!Prefix::any_v4().covers(&v6));
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!(
            "10.0.0.0/33".parse::<Prefix>(),
            Err(PrefixError::LengthTooLong { .. })
        ));
        assert!("10.0.0/8".parse::<Prefix>().is_err());
        assert!("10.0.0.0/x".parse::<Prefix>().is_err());
        assert!("".parse::<Prefix>().is_err());
    }
}
