//! Key derivation of RFC 2409: the SKEYID family for pre-shared keys (section 5), the phase 1
//! encryption key and IVs (appendix B) and Quick Mode KEYMAT (section 5.5).

use super::crypto::{HashAlg, IkeCipher};
use super::secret::Secret;

pub struct Phase1Keys {
    pub hash: HashAlg,
    pub cipher: IkeCipher,
    pub skeyid: Secret,
    pub skeyid_d: Secret,
    pub skeyid_a: Secret,
    pub encryption: Secret,
}

impl std::fmt::Debug for Phase1Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phase1Keys({:?}, {:?}, <keys>)", self.hash, self.cipher)
    }
}

/// What the SKEYID family is computed from; borrowed, so nothing secret is copied around.
pub struct Phase1Inputs<'a> {
    /// `None` with signature authentication, which has no shared key.
    pub psk: Option<&'a Secret>,
    pub nonce_i: &'a [u8],
    pub nonce_r: &'a [u8],
    pub shared: &'a Secret,
    pub cookie_i: &'a [u8],
    pub cookie_r: &'a [u8],
}

impl Phase1Keys {
    /// Section 5: SKEYID = prf(pre-shared-key, Ni_b | Nr_b) with a pre-shared key, and
    /// prf(Ni_b | Nr_b, g^xy) with signatures; the rest of the family is the same for both.
    pub fn derive(hash: HashAlg, cipher: IkeCipher, input: &Phase1Inputs<'_>) -> Phase1Keys {
        let skeyid = match input.psk {
            Some(psk) => hash.prf_secret(psk, &[input.nonce_i, input.nonce_r]),
            None => {
                let nonces = Secret::new([input.nonce_i, input.nonce_r].concat());
                hash.prf_secret(&nonces, &[input.shared.expose()])
            }
        };
        let g = input.shared.expose();
        let (ci, cr) = (input.cookie_i, input.cookie_r);
        let skeyid_d = hash.prf_secret(&skeyid, &[g, ci, cr, &[0]]);
        let skeyid_a = hash.prf_secret(&skeyid, &[skeyid_d.expose(), g, ci, cr, &[1]]);
        let skeyid_e = hash.prf_secret(&skeyid, &[skeyid_a.expose(), g, ci, cr, &[2]]);
        let encryption = expand_encryption_key(hash, &skeyid_e, cipher.key_len());
        Phase1Keys {
            hash,
            cipher,
            skeyid,
            skeyid_d,
            skeyid_a,
            encryption,
        }
    }

    /// IV of the first encrypted phase 1 message: hash(g^xi | g^xr), cut to the block size.
    pub fn phase1_iv(&self, public_i: &[u8], public_r: &[u8]) -> Vec<u8> {
        let mut iv = self.hash.digest(&[public_i, public_r]);
        iv.truncate(self.cipher.block_len());
        iv
    }

    /// IV of the first message of a Quick Mode or Informational exchange.
    pub fn exchange_iv(&self, phase1_last_block: &[u8], message_id: u32) -> Vec<u8> {
        let mut iv = self
            .hash
            .digest(&[phase1_last_block, &message_id.to_be_bytes()]);
        iv.truncate(self.cipher.block_len());
        iv
    }

    /// KEYMAT for one SA direction: `spi` is the SPI of the receiving side of that direction.
    pub fn keymat(&self, input: &KeymatInputs<'_>, spi: u32, len: usize) -> Secret {
        let spi = spi.to_be_bytes();
        let pfs: &[u8] = input.pfs_shared.map_or(&[], |s| s.expose());
        let seed: [&[u8]; 5] = [pfs, &[input.protocol], &spi, input.nonce_i, input.nonce_r];
        let mut out: Vec<u8> = Vec::with_capacity(len + self.hash.output_len());
        let mut block = self.hash.prf(self.skeyid_d.expose(), &seed);
        out.extend_from_slice(&block);
        while out.len() < len {
            let mut parts: Vec<&[u8]> = vec![&block];
            parts.extend_from_slice(&seed);
            let next = self.hash.prf(self.skeyid_d.expose(), &parts);
            zeroize::Zeroize::zeroize(&mut block);
            block = next;
            out.extend_from_slice(&block);
        }
        zeroize::Zeroize::zeroize(&mut block);
        let mut secret = Secret::new(out);
        truncate(&mut secret, len);
        secret
    }
}

pub struct KeymatInputs<'a> {
    pub pfs_shared: Option<&'a Secret>,
    pub protocol: u8,
    pub nonce_i: &'a [u8],
    pub nonce_r: &'a [u8],
}

/// Appendix B: K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1) when SKEYID_e is too short.
fn expand_encryption_key(hash: HashAlg, skeyid_e: &Secret, len: usize) -> Secret {
    if skeyid_e.len() >= len {
        return Secret::new(skeyid_e.expose()[..len].to_vec());
    }
    let mut out = Vec::with_capacity(len + hash.output_len());
    let mut block = hash.prf(skeyid_e.expose(), &[&[0]]);
    out.extend_from_slice(&block);
    while out.len() < len {
        let next = hash.prf(skeyid_e.expose(), &[&block]);
        zeroize::Zeroize::zeroize(&mut block);
        block = next;
        out.extend_from_slice(&block);
    }
    zeroize::Zeroize::zeroize(&mut block);
    let mut secret = Secret::new(out);
    truncate(&mut secret, len);
    secret
}

fn truncate(secret: &mut Secret, len: usize) {
    let short = Secret::new(secret.expose()[..len].to_vec());
    *secret = short;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cipher: IkeCipher) -> Phase1Keys {
        let psk = Secret::from("secret");
        let shared = Secret::new(vec![7; 128]);
        Phase1Keys::derive(
            HashAlg::Sha1,
            cipher,
            &Phase1Inputs {
                psk: Some(&psk),
                nonce_i: &[1; 32],
                nonce_r: &[2; 32],
                shared: &shared,
                cookie_i: &[3; 8],
                cookie_r: &[4; 8],
            },
        )
    }

    #[test]
    fn long_keys_are_expanded_as_appendix_b_says() {
        let k = sample(IkeCipher::TripleDesCbc);
        assert_eq!(k.encryption.len(), 24);
        // Recompute by hand: SKEYID_e, then K1 | K2.
        let g = [7u8; 128];
        let skeyid = HashAlg::Sha1.prf(b"secret", &[&[1; 32], &[2; 32]]);
        let d = HashAlg::Sha1.prf(&skeyid, &[&g, &[3; 8], &[4; 8], &[0]]);
        assert_eq!(d, k.skeyid_d.expose());
        let a = HashAlg::Sha1.prf(&skeyid, &[&d, &g, &[3; 8], &[4; 8], &[1]]);
        let e = HashAlg::Sha1.prf(&skeyid, &[&a, &g, &[3; 8], &[4; 8], &[2]]);
        let k1 = HashAlg::Sha1.prf(&e, &[&[0]]);
        let k2 = HashAlg::Sha1.prf(&e, &[&k1]);
        assert_eq!(&k.encryption.expose()[..20], &k1[..]);
        assert_eq!(&k.encryption.expose()[20..], &k2[..4]);
        let short = sample(IkeCipher::AesCbc { key_bits: 128 });
        assert_eq!(short.encryption.expose(), &e[..16]);
    }

    #[test]
    fn signature_skeyid_is_keyed_with_the_nonces() {
        let shared = Secret::new(vec![7; 128]);
        let k = Phase1Keys::derive(
            HashAlg::Sha1,
            IkeCipher::AesCbc { key_bits: 128 },
            &Phase1Inputs {
                psk: None,
                nonce_i: &[1; 32],
                nonce_r: &[2; 32],
                shared: &shared,
                cookie_i: &[3; 8],
                cookie_r: &[4; 8],
            },
        );
        let nonces = [[1u8; 32], [2u8; 32]].concat();
        let skeyid = HashAlg::Sha1.prf(&nonces, &[&[7; 128]]);
        assert_eq!(k.skeyid.expose(), &skeyid[..]);
        let d = HashAlg::Sha1.prf(&skeyid, &[&[7; 128], &[3; 8], &[4; 8], &[0]]);
        assert_eq!(k.skeyid_d.expose(), &d[..]);
        let with_key = sample(IkeCipher::AesCbc { key_bits: 128 });
        assert_ne!(k.skeyid.expose(), with_key.skeyid.expose());
    }

    #[test]
    fn keymat_chains_blocks_and_differs_per_spi() {
        let k = sample(IkeCipher::AesCbc { key_bits: 128 });
        let input = KeymatInputs {
            pfs_shared: None,
            protocol: 3,
            nonce_i: &[1; 16],
            nonce_r: &[2; 16],
        };
        let a = k.keymat(&input, 0x1000, 52);
        let b = k.keymat(&input, 0x1001, 52);
        assert_eq!(a.len(), 52);
        assert_ne!(a, b);
        let spi = 0x1000u32.to_be_bytes();
        let k1 = HashAlg::Sha1.prf(k.skeyid_d.expose(), &[&[3], &spi, &[1; 16], &[2; 16]]);
        let k2 = HashAlg::Sha1.prf(k.skeyid_d.expose(), &[&k1, &[3], &spi, &[1; 16], &[2; 16]]);
        assert_eq!(&a.expose()[..20], &k1[..]);
        assert_eq!(&a.expose()[20..40], &k2[..]);
    }
}
