//! Manual SAs (`then manual direction …`) turned into the dataplane's `SaSpec`s.

use std::net::IpAddr;

use dataplane::sa::{
    Cipher, Direction, Encapsulation, Integrity, IpsecProtocol, Lifetime, SaKeys, SaSpec,
};

use super::model::{ManualDirection, ManualSa, ProposalProtocol, ServiceSet};

impl ManualSa {
    /// The unidirectional SAs this block installs between `local` (the service set's gateway)
    /// and `remote` (the term's remote-gateway): both directions for `bidirectional`, an AH and
    /// an ESP SA for `bundle`.
    pub fn sa_specs(&self, local: IpAddr, remote: IpAddr, set: &ServiceSet) -> Vec<SaSpec> {
        let directions: &[Direction] = match self.direction {
            ManualDirection::Inbound => &[Direction::Inbound],
            ManualDirection::Outbound => &[Direction::Outbound],
            ManualDirection::Bidirectional => &[Direction::Inbound, Direction::Outbound],
        };
        let protocols: &[IpsecProtocol] = match self.protocol {
            ProposalProtocol::Esp => &[IpsecProtocol::Esp],
            ProposalProtocol::Ah => &[IpsecProtocol::Ah],
            ProposalProtocol::Bundle => &[IpsecProtocol::Ah, IpsecProtocol::Esp],
        };
        let mut specs = Vec::new();
        for &direction in directions {
            for &protocol in protocols {
                let (cipher, encryption) = match (&self.encryption, protocol) {
                    (Some((c, key)), IpsecProtocol::Esp) => (*c, key.bytes().to_vec()),
                    _ => (Cipher::Null, Vec::new()),
                };
                // In a bundle AH carries the integrity; ESP then only encrypts unless it is GCM.
                let (integrity, integrity_key) = match (&self.integrity, protocol, self.protocol) {
                    (Some((i, key)), IpsecProtocol::Ah, _)
                    | (Some((i, key)), IpsecProtocol::Esp, ProposalProtocol::Esp) => {
                        (*i, key.bytes().to_vec())
                    }
                    _ => (Integrity::None, Vec::new()),
                };
                specs.push(SaSpec {
                    spi: self.spi,
                    direction,
                    protocol,
                    cipher,
                    integrity,
                    keys: SaKeys {
                        encryption,
                        integrity: integrity_key,
                    },
                    local,
                    remote,
                    encapsulation: Encapsulation::None,
                    replay_window: set.anti_replay_window,
                    extended_sequence_numbers: false,
                    lifetime: Lifetime::default(),
                    df_mode: set.df_mode,
                    tunnel_mtu: set.tunnel_mtu,
                });
            }
        }
        specs
    }
}
