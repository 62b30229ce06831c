//! Choosing the peer's phase 1 transform against our proposals; a shorter peer lifetime wins.

use super::auth_method::AuthMethod;
use super::crypto::{HashAlg, IkeCipher};
use super::dh::DhGroup;
use super::numbers::{p1, protocol};
use super::policy::IkeProposal;
use super::sa_payload::{Attribute, Proposal, SaPayload, Transform};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase1Choice {
    pub cipher: IkeCipher,
    pub hash: HashAlg,
    pub group: DhGroup,
    pub lifetime_seconds: u64,
    pub auth: AuthMethod,
    /// Our answer: the accepted transform, lifetime rewritten to the one we use.
    pub reply: SaPayload,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedPhase1 {
    pub cipher: Option<IkeCipher>,
    pub hash: Option<HashAlg>,
    pub group: Option<DhGroup>,
    pub psk: bool,
    pub auth: Option<AuthMethod>,
    pub lifetime_seconds: Option<u64>,
}

/// Reads one transform; unknown values become `None` so the transform is simply not chosen.
pub fn read_transform(t: &Transform) -> OfferedPhase1 {
    let key_bits = t.basic(p1::KEY_LENGTH);
    let cipher = match t.basic(p1::ENCRYPTION) {
        Some(p1::ENC_DES) => Some(IkeCipher::DesCbc),
        Some(p1::ENC_3DES) => Some(IkeCipher::TripleDesCbc),
        Some(p1::ENC_AES) => match key_bits.unwrap_or(128) {
            bits @ (128 | 192 | 256) => Some(IkeCipher::AesCbc { key_bits: bits }),
            _ => None,
        },
        _ => None,
    };
    let hash = match t.basic(p1::HASH) {
        Some(p1::HASH_MD5) => Some(HashAlg::Md5),
        Some(p1::HASH_SHA1) => Some(HashAlg::Sha1),
        Some(p1::HASH_SHA256) => Some(HashAlg::Sha256),
        _ => None,
    };
    let group = t.basic(p1::GROUP).and_then(DhGroup::from_number);
    let auth = t.basic(p1::AUTH_METHOD).and_then(AuthMethod::from_number);
    let psk = auth == Some(AuthMethod::PreSharedKey);
    let mut lifetime_seconds = None;
    let mut life_type = None;
    for a in &t.attributes {
        match a.kind {
            p1::LIFE_TYPE => life_type = a.as_u64(),
            p1::LIFE_DURATION if life_type == Some(u64::from(p1::LIFE_SECONDS)) => {
                lifetime_seconds = a.as_u64()
            }
            _ => {}
        }
    }
    OfferedPhase1 {
        cipher,
        hash,
        group,
        psk,
        auth,
        lifetime_seconds,
    }
}

/// The first of the peer's transforms (in its order of preference) that one of ours accepts,
/// with pre-shared keys.
pub fn choose(sa: &SaPayload, ours: &[IkeProposal]) -> Option<Phase1Choice> {
    choose_with_methods(sa, ours, &[AuthMethod::PreSharedKey])
}

/// As `choose`, accepting any authentication method in `methods`.
pub fn choose_with_methods(
    sa: &SaPayload,
    ours: &[IkeProposal],
    methods: &[AuthMethod],
) -> Option<Phase1Choice> {
    // RFC 2409 wants one proposal with several transforms; some peers send several
    // single-transform proposals instead, so every ISAKMP proposal is considered in order.
    let candidates = sa
        .proposals
        .iter()
        .filter(|p| p.protocol == protocol::ISAKMP)
        .flat_map(|p| p.transforms.iter().map(move |t| (p, t)));
    for (proposal, t) in candidates {
        if t.transform_id != p1::KEY_IKE {
            continue;
        }
        let offered = read_transform(t);
        let (Some(cipher), Some(hash), Some(group)) = (offered.cipher, offered.hash, offered.group)
        else {
            continue;
        };
        let Some(auth) = offered.auth.filter(|m| methods.contains(m)) else {
            continue;
        };
        let Some(policy) = ours.iter().find(|p| {
            p.ciphers.contains(&cipher)
                && p.hashes.contains(&hash)
                && p.groups.contains(&group)
                && p.auth_methods.contains(&auth)
        }) else {
            continue;
        };
        let lifetime_seconds = offered
            .lifetime_seconds
            .map_or(policy.lifetime_seconds, |l| l.min(policy.lifetime_seconds));
        let mut attributes: Vec<Attribute> = t
            .attributes
            .iter()
            .filter(|a| a.kind != p1::LIFE_TYPE && a.kind != p1::LIFE_DURATION)
            .cloned()
            .collect();
        attributes.push(Attribute::basic(p1::LIFE_TYPE, p1::LIFE_SECONDS));
        attributes.push(Attribute::number(p1::LIFE_DURATION, lifetime_seconds));
        let reply = SaPayload::new(vec![Proposal {
            number: proposal.number,
            protocol: protocol::ISAKMP,
            spi: Vec::new(),
            transforms: vec![Transform {
                number: t.number,
                transform_id: t.transform_id,
                attributes,
            }],
        }]);
        return Some(Phase1Choice {
            cipher,
            hash,
            group,
            lifetime_seconds,
            auth,
            reply,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(enc: u16, bits: Option<u16>, hash: u16, group: u16, life: u64) -> Transform {
        let mut attributes = vec![Attribute::basic(p1::ENCRYPTION, enc)];
        if let Some(b) = bits {
            attributes.push(Attribute::basic(p1::KEY_LENGTH, b));
        }
        attributes.extend([
            Attribute::basic(p1::HASH, hash),
            Attribute::basic(p1::GROUP, group),
            Attribute::basic(p1::AUTH_METHOD, p1::AUTH_PSK),
            Attribute::basic(p1::LIFE_TYPE, p1::LIFE_SECONDS),
            Attribute::number(p1::LIFE_DURATION, life),
        ]);
        Transform {
            number: 1,
            transform_id: p1::KEY_IKE,
            attributes,
        }
    }

    fn sa(transforms: Vec<Transform>) -> SaPayload {
        SaPayload::new(vec![Proposal {
            number: 1,
            protocol: protocol::ISAKMP,
            spi: vec![],
            transforms,
        }])
    }

    #[test]
    fn shorter_lifetime_wins_and_unknown_transforms_are_skipped() {
        let ours = vec![IkeProposal::implicit_default()];
        let c = choose(&sa(vec![offer(7, Some(128), 2, 2, 1800)]), &ours).unwrap();
        assert_eq!(c.cipher, IkeCipher::AesCbc { key_bits: 128 });
        assert_eq!(c.lifetime_seconds, 1800);
        let c = choose(&sa(vec![offer(7, Some(256), 4, 14, 15840)]), &ours).unwrap();
        assert_eq!(c.lifetime_seconds, 3600);
        assert_eq!(c.group, DhGroup::Modp2048);
        let reply_life = c.reply.proposals[0].transforms[0]
            .attribute(p1::LIFE_DURATION)
            .unwrap();
        assert_eq!(reply_life.as_u64(), Some(3600));
        // Group 19 (ECP) is not offered by us: the next transform is chosen.
        let c = choose(
            &sa(vec![
                offer(7, Some(128), 2, 19, 100),
                offer(5, None, 1, 2, 100),
            ]),
            &ours,
        )
        .unwrap();
        assert_eq!((c.cipher, c.hash), (IkeCipher::TripleDesCbc, HashAlg::Md5));
        assert!(choose(&sa(vec![offer(7, Some(100), 2, 2, 100)]), &ours).is_none());
        // Several single-transform proposals: the first acceptable one, echoed with its number.
        let mut two = sa(vec![offer(7, Some(128), 2, 19, 100)]);
        two.proposals.push(Proposal {
            number: 2,
            protocol: protocol::ISAKMP,
            spi: vec![],
            transforms: vec![offer(7, Some(256), 4, 14, 100)],
        });
        let c = choose(&two, &ours).unwrap();
        assert_eq!(c.group, DhGroup::Modp2048);
        assert_eq!(c.reply.proposals[0].number, 2);
    }

    #[test]
    fn explicit_proposal_narrows_the_choice() {
        let ours = vec![IkeProposal {
            groups: vec![DhGroup::Modp2048],
            hashes: vec![HashAlg::Sha256],
            ciphers: vec![IkeCipher::AesCbc { key_bits: 256 }],
            auth_methods: vec![AuthMethod::PreSharedKey],
            lifetime_seconds: 600,
        }];
        assert!(choose(&sa(vec![offer(7, Some(128), 2, 2, 100)]), &ours).is_none());
        assert!(choose(&sa(vec![offer(7, Some(256), 4, 14, 100)]), &ours).is_some());
        // A signature-only proposal does not match a pre-shared-key offer, even when the
        // gateway could also check a pre-shared key.
        let signatures_only = vec![IkeProposal {
            auth_methods: vec![AuthMethod::RsaSignature],
            ..ours[0].clone()
        }];
        let both = [AuthMethod::PreSharedKey, AuthMethod::RsaSignature];
        let psk_offer = sa(vec![offer(7, Some(256), 4, 14, 100)]);
        assert!(choose_with_methods(&psk_offer, &signatures_only, &both).is_none());
        assert!(choose_with_methods(&psk_offer, &ours, &both).is_some());
    }
}
