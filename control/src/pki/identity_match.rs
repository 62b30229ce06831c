//! Peer identities against certificates and policies. An ID payload is accepted only when the
//! certificate proves it (subject DN, or a subjectAltName of the same kind) and the IKE
//! policy's `remote-id` allows it (`any-remote-id` allows every proven identity).

use std::net::IpAddr;

use openssl::x509::{X509Name, X509Ref};

use super::summary::dn_pairs;
use crate::ike::identity::IdentityData;

/// One `remote-id` entry of an IKE policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteIdRule {
    /// (attribute, value) pairs in order; a value `*` matches any value of that attribute.
    DistinguishedName(Vec<(String, String)>),
    Fqdn(String),
    UserFqdn(String),
    Address(IpAddr),
    KeyId(Vec<u8>),
}

impl RemoteIdRule {
    /// Parses the `distinguished-name` text form, `C=CH, O=strongSwan, CN=peer`.
    pub fn distinguished_name(text: &str) -> Result<RemoteIdRule, String> {
        let mut pairs = Vec::new();
        for part in text
            .split([',', '/'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("'{part}' is not ATTRIBUTE=VALUE"));
            };
            pairs.push((k.trim().to_ascii_uppercase(), v.trim().to_string()));
        }
        if pairs.is_empty() {
            return Err("an empty distinguished name".into());
        }
        Ok(RemoteIdRule::DistinguishedName(pairs))
    }

    fn allows(&self, identity: &IdentityData) -> bool {
        match (self, identity) {
            (RemoteIdRule::DistinguishedName(want), IdentityData::DerAsn1Dn(der)) => {
                let Ok(name) = X509Name::from_der(der) else {
                    return false;
                };
                let have = dn_pairs(&name);
                have.len() == want.len()
                    && have.iter().zip(want).all(|((hk, hv), (wk, wv))| {
                        hk.eq_ignore_ascii_case(wk) && (wv == "*" || hv == wv)
                    })
            }
            (RemoteIdRule::Fqdn(want), IdentityData::Fqdn(have)) => {
                want.as_bytes().eq_ignore_ascii_case(have)
            }
            (RemoteIdRule::UserFqdn(want), IdentityData::UserFqdn(have)) => {
                want.as_bytes().eq_ignore_ascii_case(have)
            }
            (RemoteIdRule::Address(IpAddr::V4(want)), IdentityData::Ipv4(have)) => want == have,
            (RemoteIdRule::Address(IpAddr::V6(want)), IdentityData::Ipv6(have)) => want == have,
            (RemoteIdRule::KeyId(want), IdentityData::KeyId(have)) => want == have,
            _ => false,
        }
    }
}

/// A policy's `remote-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteIdRules {
    /// `any-remote-id`.
    Any,
    Listed(Vec<RemoteIdRule>),
}

impl RemoteIdRules {
    pub fn allows(&self, identity: &IdentityData) -> bool {
        match self {
            RemoteIdRules::Any => true,
            RemoteIdRules::Listed(rules) => rules.iter().any(|r| r.allows(identity)),
        }
    }
}

/// True when `certificate` names `identity`: the subject for a DN, else a subjectAltName of
/// the same kind (dNSName, rfc822Name, iPAddress).
pub fn certificate_proves(certificate: &X509Ref, identity: &IdentityData) -> bool {
    if let IdentityData::DerAsn1Dn(der) = identity {
        return X509Name::from_der(der)
            .ok()
            .and_then(|name| name.try_cmp(certificate.subject_name()).ok())
            == Some(std::cmp::Ordering::Equal);
    }
    let Some(names) = certificate.subject_alt_names() else {
        return false;
    };
    names.iter().any(|name| match identity {
        IdentityData::Fqdn(want) => name
            .dnsname()
            .is_some_and(|d| d.as_bytes().eq_ignore_ascii_case(want)),
        IdentityData::UserFqdn(want) => name
            .email()
            .is_some_and(|e| e.as_bytes().eq_ignore_ascii_case(want)),
        IdentityData::Ipv4(want) => name.ipaddress() == Some(&want.octets()[..]),
        IdentityData::Ipv6(want) => name.ipaddress() == Some(&want.octets()[..]),
        _ => false,
    })
}

/// The text form of a DER DN identity for log lines.
pub fn dn_text(der: &[u8]) -> Option<String> {
    X509Name::from_der(der)
        .ok()
        .map(|n| super::summary::dn_string(&n))
}
