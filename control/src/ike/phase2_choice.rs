//! Choosing a Quick Mode proposal: ESP, AH or an AH+ESP bundle (proposals sharing a number),
//! PFS group, encapsulation mode and lifetimes in seconds and kilobytes.

use dataplane::sa::{Cipher, Integrity, IpsecProtocol, Lifetime};

use super::dh::DhGroup;
use super::numbers::{p2, protocol};
use super::policy::{IpsecProposal, ProtocolSuite};
use super::sa_payload::{Attribute, Proposal, SaPayload, Transform};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenProtocol {
    pub protocol: IpsecProtocol,
    /// The peer's inbound SPI (our outbound).
    pub peer_spi: u32,
    pub cipher: Cipher,
    pub integrity: Integrity,
    /// The accepted transform as we answer it (lifetimes rewritten).
    pub transform: Transform,
    pub proposal_number: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase2Choice {
    /// ESP first when bundled, as the reply must keep the peer's order.
    pub parts: Vec<ChosenProtocol>,
    pub pfs: Option<DhGroup>,
    /// Mode 3 or 61443: ESP travels in UDP.
    pub udp_encapsulation: bool,
    pub lifetime: Lifetime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase2Reject {
    NoProposalChosen,
    /// The proposal asks for PFS we do not do, or lacks PFS we require.
    PfsMismatch,
}

#[derive(Clone, Debug, PartialEq)]
struct Offered {
    cipher: Cipher,
    integrity: Integrity,
    group: Option<u16>,
    encapsulation: u16,
    seconds: Option<u64>,
    kilobytes: Option<u64>,
}

fn read_esp(t: &Transform) -> Option<Offered> {
    let bits = t.basic(p2::KEY_LENGTH);
    let cipher = match (t.transform_id, bits) {
        (p2::ESP_DES, None) => Cipher::DesCbc,
        (p2::ESP_3DES, None) => Cipher::TripleDesCbc,
        (p2::ESP_AES, None | Some(128)) => Cipher::AesCbc128,
        (p2::ESP_AES, Some(192)) => Cipher::AesCbc192,
        (p2::ESP_AES, Some(256)) => Cipher::AesCbc256,
        (p2::ESP_AES_GCM_16, None | Some(128)) => Cipher::AesGcm128,
        (p2::ESP_AES_GCM_16, Some(256)) => Cipher::AesGcm256,
        _ => return None,
    };
    let integrity = read_auth(t)?;
    // AEAD carries its own integrity; everything else must have some.
    if cipher.is_aead() != (integrity == Integrity::None) {
        return None;
    }
    read_common(t, cipher, integrity)
}

fn read_ah(t: &Transform) -> Option<Offered> {
    let integrity = read_auth(t)?;
    let expected = match t.transform_id {
        p2::AH_MD5 => Integrity::HmacMd5_96,
        p2::AH_SHA => Integrity::HmacSha1_96,
        p2::AH_SHA2_256 => Integrity::HmacSha256_128,
        _ => return None,
    };
    (integrity == expected).then_some(())?;
    read_common(t, Cipher::Null, integrity)
}

fn read_auth(t: &Transform) -> Option<Integrity> {
    match t.attribute(p2::AUTH_ALG).map(|a| a.as_u64()) {
        None => Some(Integrity::None),
        Some(Some(v)) if v == u64::from(p2::AUTH_HMAC_MD5) => Some(Integrity::HmacMd5_96),
        Some(Some(v)) if v == u64::from(p2::AUTH_HMAC_SHA) => Some(Integrity::HmacSha1_96),
        Some(Some(v)) if v == u64::from(p2::AUTH_HMAC_SHA2_256) => Some(Integrity::HmacSha256_128),
        Some(_) => None,
    }
}

fn read_common(t: &Transform, cipher: Cipher, integrity: Integrity) -> Option<Offered> {
    let mut life_type = None;
    let (mut seconds, mut kilobytes) = (None, None);
    for a in &t.attributes {
        match a.kind {
            p2::LIFE_TYPE => life_type = Some(a.as_u64()?),
            p2::LIFE_DURATION => match life_type.map(|v| v as u16) {
                Some(p2::LIFE_SECONDS) => seconds = Some(a.as_u64()?),
                Some(p2::LIFE_KILOBYTES) => kilobytes = Some(a.as_u64()?),
                _ => return None,
            },
            // Extended sequence numbers are not offered by our dataplane contract here.
            p2::ESN => return None,
            _ => {}
        }
    }
    let encapsulation = t.basic(p2::ENCAPSULATION).unwrap_or(p2::ENCAP_TUNNEL);
    if !matches!(
        encapsulation,
        p2::ENCAP_TUNNEL | p2::ENCAP_UDP_TUNNEL | p2::ENCAP_UDP_TUNNEL_DRAFT
    ) {
        return None;
    }
    Some(Offered {
        cipher,
        integrity,
        group: t.basic(p2::GROUP),
        encapsulation,
        seconds,
        kilobytes,
    })
}

fn spi_of(p: &Proposal) -> Option<u32> {
    let b: [u8; 4] = p.spi.as_slice().try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Chooses the first acceptable proposal group in the peer's order.
pub fn choose(
    sa: &SaPayload,
    ours: &[IpsecProposal],
    required_pfs: Option<DhGroup>,
) -> Result<Phase2Choice, Phase2Reject> {
    let mut saw_pfs_mismatch = false;
    let mut i = 0;
    while i < sa.proposals.len() {
        let number = sa.proposals[i].number;
        let mut j = i;
        while j < sa.proposals.len() && sa.proposals[j].number == number {
            j += 1;
        }
        let group = &sa.proposals[i..j];
        i = j;
        for policy in ours {
            match choose_group(group, policy, required_pfs) {
                Ok(choice) => return Ok(choice),
                Err(Phase2Reject::PfsMismatch) => saw_pfs_mismatch = true,
                Err(Phase2Reject::NoProposalChosen) => {}
            }
        }
    }
    Err(if saw_pfs_mismatch {
        Phase2Reject::PfsMismatch
    } else {
        Phase2Reject::NoProposalChosen
    })
}

fn choose_group(
    group: &[Proposal],
    policy: &IpsecProposal,
    required_pfs: Option<DhGroup>,
) -> Result<Phase2Choice, Phase2Reject> {
    let suite = match group
        .iter()
        .map(|p| p.protocol)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [protocol::ESP] => ProtocolSuite::Esp,
        [protocol::AH] => ProtocolSuite::Ah,
        [protocol::ESP, protocol::AH] | [protocol::AH, protocol::ESP] => ProtocolSuite::Bundle,
        _ => return Err(Phase2Reject::NoProposalChosen),
    };
    if !policy.suites.contains(&suite) {
        return Err(Phase2Reject::NoProposalChosen);
    }
    let mut parts = Vec::new();
    let mut common: Option<Offered> = None;
    let mut pfs_mismatch = false;
    for p in group {
        spi_of(p).ok_or(Phase2Reject::NoProposalChosen)?;
        let mut accepted = None;
        for t in &p.transforms {
            let offered = match p.protocol {
                protocol::ESP => read_esp(t),
                _ => read_ah(t),
            };
            let Some(offered) = offered else { continue };
            let cipher_ok = p.protocol != protocol::ESP || policy.ciphers.contains(&offered.cipher);
            let integrity_ok = offered.integrity == Integrity::None
                || policy.integrities.contains(&offered.integrity);
            if !cipher_ok || !integrity_ok {
                continue;
            }
            let pfs_ok = match (required_pfs, offered.group) {
                (Some(want), Some(g)) => want.number() == g,
                (Some(_), None) => false,
                (None, Some(g)) => DhGroup::from_number(g).is_some(),
                (None, None) => true,
            };
            if !pfs_ok {
                pfs_mismatch = true;
                continue;
            }
            if let Some(c) = &common {
                if c.group != offered.group || c.encapsulation != offered.encapsulation {
                    continue;
                }
            }
            accepted = Some((t, offered));
            break;
        }
        let Some((t, offered)) = accepted else {
            return Err(if pfs_mismatch {
                Phase2Reject::PfsMismatch
            } else {
                Phase2Reject::NoProposalChosen
            });
        };
        parts.push((p, t, offered.clone()));
        if common.is_none() {
            common = Some(offered);
        }
    }
    let common = common.ok_or(Phase2Reject::NoProposalChosen)?;
    let seconds = shorter(
        parts.iter().filter_map(|(_, _, o)| o.seconds).min(),
        Some(policy.lifetime_seconds),
    );
    let kilobytes = shorter(
        parts.iter().filter_map(|(_, _, o)| o.kilobytes).min(),
        policy.lifetime_kilobytes,
    );
    let chosen = parts
        .into_iter()
        .map(|(p, t, o)| ChosenProtocol {
            protocol: if p.protocol == protocol::ESP {
                IpsecProtocol::Esp
            } else {
                IpsecProtocol::Ah
            },
            peer_spi: spi_of(p).unwrap_or(0),
            cipher: o.cipher,
            integrity: o.integrity,
            transform: rewrite_lifetimes(t, seconds, kilobytes),
            proposal_number: p.number,
        })
        .collect();
    Ok(Phase2Choice {
        parts: chosen,
        pfs: common.group.and_then(DhGroup::from_number),
        udp_encapsulation: common.encapsulation != p2::ENCAP_TUNNEL,
        lifetime: Lifetime {
            soft_seconds: seconds.map(soft),
            hard_seconds: seconds,
            soft_kilobytes: kilobytes.map(soft),
            hard_kilobytes: kilobytes,
        },
    })
}

fn shorter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Soft expiry a little before hard, so a rekey can start in time.
fn soft(hard: u64) -> u64 {
    hard - hard / 10
}

fn rewrite_lifetimes(t: &Transform, seconds: Option<u64>, kilobytes: Option<u64>) -> Transform {
    let mut attributes: Vec<Attribute> = t
        .attributes
        .iter()
        .filter(|a| a.kind != p2::LIFE_TYPE && a.kind != p2::LIFE_DURATION)
        .cloned()
        .collect();
    if let Some(s) = seconds {
        attributes.push(Attribute::basic(p2::LIFE_TYPE, p2::LIFE_SECONDS));
        attributes.push(Attribute::number(p2::LIFE_DURATION, s));
    }
    if let Some(k) = kilobytes {
        attributes.push(Attribute::basic(p2::LIFE_TYPE, p2::LIFE_KILOBYTES));
        attributes.push(Attribute::number(p2::LIFE_DURATION, k));
    }
    Transform {
        number: t.number,
        transform_id: t.transform_id,
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp(id: u8, bits: Option<u16>, auth: Option<u16>, extra: Vec<Attribute>) -> Transform {
        let mut attributes = vec![Attribute::basic(p2::ENCAPSULATION, p2::ENCAP_UDP_TUNNEL)];
        if let Some(b) = bits {
            attributes.push(Attribute::basic(p2::KEY_LENGTH, b));
        }
        if let Some(a) = auth {
            attributes.push(Attribute::basic(p2::AUTH_ALG, a));
        }
        attributes.extend(extra);
        Transform {
            number: 1,
            transform_id: id,
            attributes,
        }
    }

    fn proposal(protocol: u8, transforms: Vec<Transform>) -> Proposal {
        Proposal {
            number: 1,
            protocol,
            spi: vec![0xc0, 0, 0, 1],
            transforms,
        }
    }

    #[test]
    fn esp_gcm_cbc_and_lifetimes() {
        let ours = vec![IpsecProposal::implicit_default()];
        let life = vec![
            Attribute::basic(p2::LIFE_TYPE, p2::LIFE_SECONDS),
            Attribute::number(p2::LIFE_DURATION, 3960),
            Attribute::basic(p2::LIFE_TYPE, p2::LIFE_KILOBYTES),
            Attribute::number(p2::LIFE_DURATION, 100_000),
        ];
        let sa = SaPayload::new(vec![proposal(3, vec![esp(20, Some(128), None, life)])]);
        let c = choose(&sa, &ours, None).unwrap();
        assert_eq!(c.parts[0].cipher, Cipher::AesGcm128);
        assert_eq!(c.parts[0].integrity, Integrity::None);
        assert_eq!(c.parts[0].peer_spi, 0xc000_0001);
        assert!(c.udp_encapsulation);
        assert_eq!(c.lifetime.hard_seconds, Some(3960));
        assert_eq!(c.lifetime.hard_kilobytes, Some(100_000));
        let long = vec![
            Attribute::basic(p2::LIFE_TYPE, p2::LIFE_SECONDS),
            Attribute::number(p2::LIFE_DURATION, 86_400),
        ];
        let sa = SaPayload::new(vec![proposal(3, vec![esp(12, Some(256), Some(2), long)])]);
        let c = choose(&sa, &ours, None).unwrap();
        assert_eq!(
            (c.parts[0].cipher, c.parts[0].integrity),
            (Cipher::AesCbc256, Integrity::HmacSha1_96)
        );
        assert_eq!(c.lifetime.hard_seconds, Some(28800));
        // CBC without integrity is never accepted.
        let sa = SaPayload::new(vec![proposal(3, vec![esp(12, Some(128), None, vec![])])]);
        assert_eq!(
            choose(&sa, &ours, None),
            Err(Phase2Reject::NoProposalChosen)
        );
    }

    #[test]
    fn bundle_and_pfs() {
        let ours = vec![IpsecProposal::implicit_default()];
        let ah = Transform {
            number: 1,
            transform_id: p2::AH_SHA,
            attributes: vec![
                Attribute::basic(p2::ENCAPSULATION, p2::ENCAP_UDP_TUNNEL),
                Attribute::basic(p2::AUTH_ALG, p2::AUTH_HMAC_SHA),
            ],
        };
        let sa = SaPayload::new(vec![
            proposal(3, vec![esp(3, None, Some(1), vec![])]),
            proposal(2, vec![ah]),
        ]);
        let c = choose(&sa, &ours, None).unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!(c.parts[1].protocol, IpsecProtocol::Ah);
        let g14 = vec![Attribute::basic(p2::GROUP, 14)];
        let sa = SaPayload::new(vec![proposal(3, vec![esp(12, Some(128), Some(2), g14)])]);
        assert_eq!(
            choose(&sa, &ours, None).unwrap().pfs,
            Some(DhGroup::Modp2048)
        );
        assert_eq!(
            choose(&sa, &ours, Some(DhGroup::Modp1024)),
            Err(Phase2Reject::PfsMismatch)
        );
        let sa = SaPayload::new(vec![proposal(3, vec![esp(12, Some(128), Some(2), vec![])])]);
        assert_eq!(
            choose(&sa, &ours, Some(DhGroup::Modp1024)),
            Err(Phase2Reject::PfsMismatch)
        );
    }

    #[test]
    fn explicit_proposal_narrows_suite_cipher_and_lifetime() {
        let ours = vec![IpsecProposal {
            suites: vec![ProtocolSuite::Esp],
            ciphers: vec![Cipher::AesCbc256],
            integrities: vec![Integrity::HmacSha1_96],
            lifetime_seconds: 600,
            lifetime_kilobytes: Some(1000),
        }];
        let aes128 = SaPayload::new(vec![proposal(3, vec![esp(12, Some(128), Some(2), vec![])])]);
        assert_eq!(
            choose(&aes128, &ours, None),
            Err(Phase2Reject::NoProposalChosen)
        );
        let aes256 = SaPayload::new(vec![proposal(
            3,
            vec![
                esp(12, Some(128), Some(2), vec![]),
                esp(12, Some(256), Some(2), vec![]),
            ],
        )]);
        let c = choose(&aes256, &ours, None).unwrap();
        assert_eq!(c.parts[0].cipher, Cipher::AesCbc256);
        assert_eq!(
            (c.lifetime.hard_seconds, c.lifetime.hard_kilobytes),
            (Some(600), Some(1000))
        );
        let reply = &c.parts[0].transform;
        let durations: Vec<u64> = reply
            .attributes
            .iter()
            .filter(|a| a.kind == p2::LIFE_DURATION)
            .filter_map(|a| a.as_u64())
            .collect();
        assert_eq!(
            durations,
            vec![600, 1000],
            "the reply carries the lifetimes we use"
        );
    }
}
