//! Identification payloads (RFC 2407 section 4.6.2): phase 1 peer identities and phase 2 proxy
//! identities, with the conversion of the address forms to prefixes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::prefix::Prefix;

use super::codec_error::CodecError;
use super::numbers::id_type;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdentityData {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Ipv4Subnet(Ipv4Addr, Ipv4Addr),
    Ipv6Subnet(Ipv6Addr, Ipv6Addr),
    Ipv4Range(Ipv4Addr, Ipv4Addr),
    Ipv6Range(Ipv6Addr, Ipv6Addr),
    Fqdn(Vec<u8>),
    UserFqdn(Vec<u8>),
    DerAsn1Dn(Vec<u8>),
    DerAsn1Gn(Vec<u8>),
    KeyId(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub data: IdentityData,
    /// IP protocol (0 = any); in phase 1 usually 0 or 17.
    pub protocol: u8,
    /// 0 = any.
    pub port: u16,
}

impl Identity {
    pub fn address(addr: IpAddr) -> Self {
        let data = match addr {
            IpAddr::V4(a) => IdentityData::Ipv4(a),
            IpAddr::V6(a) => IdentityData::Ipv6(a),
        };
        Identity {
            data,
            protocol: 0,
            port: 0,
        }
    }

    pub fn parse(body: &[u8]) -> Result<Identity, CodecError> {
        if body.len() < 4 {
            return Err(CodecError::BadIdentity);
        }
        let kind = body[0];
        let protocol = body[1];
        let port = u16::from_be_bytes([body[2], body[3]]);
        let d = &body[4..];
        let v4 = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        let v6 = |b: &[u8]| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            Ipv6Addr::from(a)
        };
        let need = |n: usize| {
            if d.len() == n {
                Ok(())
            } else {
                Err(CodecError::BadIdentity)
            }
        };
        let data = match kind {
            id_type::IPV4_ADDR => {
                need(4)?;
                IdentityData::Ipv4(v4(d))
            }
            id_type::IPV6_ADDR => {
                need(16)?;
                IdentityData::Ipv6(v6(d))
            }
            id_type::IPV4_ADDR_SUBNET => {
                need(8)?;
                IdentityData::Ipv4Subnet(v4(d), v4(&d[4..]))
            }
            id_type::IPV6_ADDR_SUBNET => {
                need(32)?;
                IdentityData::Ipv6Subnet(v6(d), v6(&d[16..]))
            }
            id_type::IPV4_ADDR_RANGE => {
                need(8)?;
                IdentityData::Ipv4Range(v4(d), v4(&d[4..]))
            }
            id_type::IPV6_ADDR_RANGE => {
                need(32)?;
                IdentityData::Ipv6Range(v6(d), v6(&d[16..]))
            }
            id_type::FQDN => IdentityData::Fqdn(non_empty(d)?),
            id_type::USER_FQDN => IdentityData::UserFqdn(non_empty(d)?),
            id_type::DER_ASN1_DN => IdentityData::DerAsn1Dn(non_empty(d)?),
            id_type::DER_ASN1_GN => IdentityData::DerAsn1Gn(non_empty(d)?),
            id_type::KEY_ID => IdentityData::KeyId(non_empty(d)?),
            _ => return Err(CodecError::BadIdentity),
        };
        Ok(Identity {
            data,
            protocol,
            port,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        let (kind, bytes): (u8, Vec<u8>) = match &self.data {
            IdentityData::Ipv4(a) => (id_type::IPV4_ADDR, a.octets().to_vec()),
            IdentityData::Ipv6(a) => (id_type::IPV6_ADDR, a.octets().to_vec()),
            IdentityData::Ipv4Subnet(a, m) => {
                (id_type::IPV4_ADDR_SUBNET, cat(&a.octets(), &m.octets()))
            }
            IdentityData::Ipv6Subnet(a, m) => {
                (id_type::IPV6_ADDR_SUBNET, cat(&a.octets(), &m.octets()))
            }
            IdentityData::Ipv4Range(a, b) => {
                (id_type::IPV4_ADDR_RANGE, cat(&a.octets(), &b.octets()))
            }
            IdentityData::Ipv6Range(a, b) => {
                (id_type::IPV6_ADDR_RANGE, cat(&a.octets(), &b.octets()))
            }
            IdentityData::Fqdn(v) => (id_type::FQDN, v.clone()),
            IdentityData::UserFqdn(v) => (id_type::USER_FQDN, v.clone()),
            IdentityData::DerAsn1Dn(v) => (id_type::DER_ASN1_DN, v.clone()),
            IdentityData::DerAsn1Gn(v) => (id_type::DER_ASN1_GN, v.clone()),
            IdentityData::KeyId(v) => (id_type::KEY_ID, v.clone()),
        };
        out.push(kind);
        out.push(self.protocol);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&bytes);
    }

    /// The address block a proxy identity names; `None` for names, non-contiguous masks and
    /// ranges that are not exactly one prefix (a dynamic rule is a prefix pair).
    pub fn to_prefix(&self) -> Option<Prefix> {
        match &self.data {
            IdentityData::Ipv4(a) => Some(Prefix::host(IpAddr::V4(*a))),
            IdentityData::Ipv6(a) => Some(Prefix::host(IpAddr::V6(*a))),
            IdentityData::Ipv4Subnet(a, m) => {
                let len = contiguous_len(u128::from(u32::from(*m)) << 96)?;
                exact_prefix(IpAddr::V4(*a), len)
            }
            IdentityData::Ipv6Subnet(a, m) => {
                let len = contiguous_len(u128::from(*m))?;
                exact_prefix(IpAddr::V6(*a), len)
            }
            IdentityData::Ipv4Range(a, b) => {
                let (lo, hi) = (u32::from(*a), u32::from(*b));
                let span = hi.checked_sub(lo)?;
                let size = u64::from(span) + 1;
                if !size.is_power_of_two() || u64::from(lo) % size != 0 {
                    return None;
                }
                let len = 32 - size.trailing_zeros() as u8;
                Prefix::new(IpAddr::V4(*a), len)
            }
            IdentityData::Ipv6Range(a, b) => {
                let (lo, hi) = (u128::from(*a), u128::from(*b));
                let span = hi.checked_sub(lo)?;
                if span == u128::MAX {
                    return Prefix::new(IpAddr::V6(*a), 0);
                }
                let size = span + 1;
                if !size.is_power_of_two() || lo % size != 0 {
                    return None;
                }
                let len = 128 - size.trailing_zeros() as u8;
                Prefix::new(IpAddr::V6(*a), len)
            }
            _ => None,
        }
    }
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

fn non_empty(d: &[u8]) -> Result<Vec<u8>, CodecError> {
    if d.is_empty() {
        Err(CodecError::BadIdentity)
    } else {
        Ok(d.to_vec())
    }
}

/// Length of a left-aligned mask, or `None` when the ones are not contiguous.
fn contiguous_len(mask: u128) -> Option<u8> {
    let ones = mask.leading_ones();
    if mask.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    Some(ones as u8)
}

/// The prefix only if the address has no host bits: a subnet ID with host bits is ambiguous.
fn exact_prefix(addr: IpAddr, len: u8) -> Option<Prefix> {
    let p = Prefix::new(addr, len)?;
    (p.addr() == addr).then_some(p)
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.data {
            IdentityData::Ipv4(a) => write!(f, "{a}")?,
            IdentityData::Ipv6(a) => write!(f, "{a}")?,
            IdentityData::Ipv4Subnet(a, m) => write!(f, "{a}/{m}")?,
            IdentityData::Ipv6Subnet(a, m) => write!(f, "{a}/{m}")?,
            IdentityData::Ipv4Range(a, b) => write!(f, "{a}-{b}")?,
            IdentityData::Ipv6Range(a, b) => write!(f, "{a}-{b}")?,
            IdentityData::Fqdn(v) | IdentityData::UserFqdn(v) => {
                write!(f, "{}", String::from_utf8_lossy(v))?
            }
            IdentityData::DerAsn1Dn(v) => match crate::pki::identity_match::dn_text(v) {
                Some(text) => f.write_str(&text)?,
                None => write!(f, "<DN {} bytes>", v.len())?,
            },
            IdentityData::DerAsn1Gn(v) => write!(f, "<GN {} bytes>", v.len())?,
            IdentityData::KeyId(v) => write!(f, "<KEY-ID {} bytes>", v.len())?,
        }
        if self.protocol != 0 || self.port != 0 {
            write!(f, "[{}/{}]", self.protocol, self.port)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(id: Identity) -> Identity {
        let mut b = Vec::new();
        id.write(&mut b);
        Identity::parse(&b).unwrap()
    }

    #[test]
    fn address_forms_become_prefixes() {
        let subnet = Identity {
            data: IdentityData::Ipv4Subnet(
                "172.16.2.0".parse().unwrap(),
                "255.255.255.0".parse().unwrap(),
            ),
            protocol: 0,
            port: 0,
        };
        assert_eq!(round_trip(subnet.clone()), subnet);
        assert_eq!(subnet.to_prefix().unwrap().to_string(), "172.16.2.0/24");
        let range = Identity {
            data: IdentityData::Ipv4Range(
                "10.0.0.0".parse().unwrap(),
                "10.0.0.255".parse().unwrap(),
            ),
            protocol: 6,
            port: 80,
        };
        assert_eq!(range.to_prefix().unwrap().to_string(), "10.0.0.0/24");
        let odd_range = Identity {
            data: IdentityData::Ipv4Range("10.0.0.1".parse().unwrap(), "10.0.0.5".parse().unwrap()),
            protocol: 0,
            port: 0,
        };
        assert_eq!(odd_range.to_prefix(), None);
        let v6 = Identity {
            data: IdentityData::Ipv6Subnet(
                "2001:db8::".parse().unwrap(),
                "ffff:ffff:ffff:ffff::".parse().unwrap(),
            ),
            protocol: 0,
            port: 0,
        };
        assert_eq!(
            round_trip(v6.clone()).to_prefix().unwrap().to_string(),
            "2001:db8::/64"
        );
        let holes = Identity {
            data: IdentityData::Ipv4Subnet(
                "10.0.0.0".parse().unwrap(),
                "255.0.255.0".parse().unwrap(),
            ),
            protocol: 0,
            port: 0,
        };
        assert_eq!(holes.to_prefix(), None);
        let any_v6 = Identity {
            data: IdentityData::Ipv6Range("::".parse().unwrap(), Ipv6Addr::from(u128::MAX)),
            protocol: 0,
            port: 0,
        };
        assert!(any_v6.to_prefix().unwrap().is_default());
    }

    #[test]
    fn names_round_trip_and_bad_lengths_fail() {
        for data in [
            IdentityData::Fqdn(b"gw.example".to_vec()),
            IdentityData::UserFqdn(b"a@b".to_vec()),
            IdentityData::KeyId(vec![1, 2]),
            IdentityData::DerAsn1Dn(vec![0x30, 0]),
        ] {
            let id = Identity {
                data,
                protocol: 17,
                port: 500,
            };
            assert_eq!(round_trip(id.clone()), id);
        }
        assert_eq!(
            Identity::parse(&[1, 0, 0, 0, 1, 2, 3]),
            Err(CodecError::BadIdentity)
        );
        assert_eq!(Identity::parse(&[2, 0, 0, 0]), Err(CodecError::BadIdentity));
        assert_eq!(
            Identity::parse(&[99, 0, 0, 0, 1]),
            Err(CodecError::BadIdentity)
        );
    }
}
