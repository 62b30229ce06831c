//! MODP Diffie-Hellman (RFC 2409 groups 1 and 2, RFC 3526 groups 5 and 14) with OpenSSL's
//! constant-time modular exponentiation for everything that touches the private exponent.

use openssl::bn::{BigNum, BigNumContext};

use super::secret::Secret;

/// Bits of the random private exponent: twice the strength of the largest group we accept
/// (RFC 3526 section 8 estimates 110 bits for group 14), so a full-length exponent buys nothing.
pub const PRIVATE_EXPONENT_BITS: i32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DhGroup {
    Modp768 = 1,
    Modp1024 = 2,
    Modp1536 = 5,
    Modp2048 = 14,
}

impl DhGroup {
    pub fn from_number(n: u16) -> Option<DhGroup> {
        match n {
            1 => Some(DhGroup::Modp768),
            2 => Some(DhGroup::Modp1024),
            5 => Some(DhGroup::Modp1536),
            14 => Some(DhGroup::Modp2048),
            _ => None,
        }
    }

    pub fn number(self) -> u16 {
        self as u16
    }

    pub fn all() -> [DhGroup; 4] {
        [
            DhGroup::Modp768,
            DhGroup::Modp1024,
            DhGroup::Modp1536,
            DhGroup::Modp2048,
        ]
    }

    /// Length in bytes of public values and of the shared secret.
    pub fn byte_len(self) -> usize {
        match self {
            DhGroup::Modp768 => 96,
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 => 256,
        }
    }

    /// The group's prime, big-endian (public; for other implementations and benchmarks).
    pub fn prime_bytes(self) -> Vec<u8> {
        self.prime().map(|p| p.to_vec()).unwrap_or_default()
    }

    fn prime(self) -> Result<BigNum, DhError> {
        let p = match self {
            DhGroup::Modp768 => BigNum::get_rfc2409_prime_768(),
            DhGroup::Modp1024 => BigNum::get_rfc2409_prime_1024(),
            DhGroup::Modp1536 => BigNum::get_rfc3526_prime_1536(),
            DhGroup::Modp2048 => BigNum::get_rfc3526_prime_2048(),
        };
        p.map_err(|_| DhError::Backend)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    #[error("peer public value has the wrong length")]
    BadLength,
    #[error("peer public value is out of range")]
    OutOfRange,
    #[error("big-number backend failure")]
    Backend,
}

/// Our half of one exchange; the private exponent is wiped when dropped.
pub struct DhKeyPair {
    group: DhGroup,
    private: BigNum,
    public: Vec<u8>,
}

impl Drop for DhKeyPair {
    fn drop(&mut self) {
        // BN_free does not wipe; BN_clear does.
        self.private.clear();
    }
}

impl std::fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhKeyPair({:?}, <private>)", self.group)
    }
}

impl DhKeyPair {
    pub fn generate(group: DhGroup) -> Result<DhKeyPair, DhError> {
        Self::generate_with_bits(group, PRIVATE_EXPONENT_BITS)
    }

    /// `bits` is exposed for the benchmark that compares short and full-length exponents.
    pub fn generate_with_bits(group: DhGroup, bits: i32) -> Result<DhKeyPair, DhError> {
        let p = group.prime()?;
        let mut private = BigNum::new().map_err(|_| DhError::Backend)?;
        private
            .rand(bits, openssl::bn::MsbOption::MAYBE_ZERO, false)
            .map_err(|_| DhError::Backend)?;
        private.set_const_time();
        let g = BigNum::from_u32(2).map_err(|_| DhError::Backend)?;
        let mut ctx = BigNumContext::new().map_err(|_| DhError::Backend)?;
        let mut public = BigNum::new().map_err(|_| DhError::Backend)?;
        public
            .mod_exp(&g, &private, &p, &mut ctx)
            .map_err(|_| DhError::Backend)?;
        let public = public
            .to_vec_padded(group.byte_len() as i32)
            .map_err(|_| DhError::Backend)?;
        Ok(DhKeyPair {
            group,
            private,
            public,
        })
    }

    pub fn group(&self) -> DhGroup {
        self.group
    }

    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// g^xy, left-padded to the prime length (RFC 2409 hashes it at that length).
    pub fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, DhError> {
        if peer_public.len() != self.group.byte_len() {
            return Err(DhError::BadLength);
        }
        let p = self.group.prime()?;
        let y = BigNum::from_slice(peer_public).map_err(|_| DhError::Backend)?;
        let one = BigNum::from_u32(1).map_err(|_| DhError::Backend)?;
        let mut p_minus_one = BigNum::new().map_err(|_| DhError::Backend)?;
        p_minus_one
            .checked_sub(&p, &one)
            .map_err(|_| DhError::Backend)?;
        // 1 and p-1 generate subgroups of order 1 and 2: reject them (RFC 2631 style check).
        if y <= one || y >= p_minus_one {
            return Err(DhError::OutOfRange);
        }
        let mut ctx = BigNumContext::new().map_err(|_| DhError::Backend)?;
        let mut shared = BigNum::new().map_err(|_| DhError::Backend)?;
        shared
            .mod_exp(&y, &self.private, &p, &mut ctx)
            .map_err(|_| DhError::Backend)?;
        let bytes = shared
            .to_vec_padded(self.group.byte_len() as i32)
            .map_err(|_| DhError::Backend)?;
        shared.clear();
        Ok(Secret::new(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_bad_values_are_refused() {
        for g in DhGroup::all() {
            let a = DhKeyPair::generate(g).unwrap();
            let b = DhKeyPair::generate(g).unwrap();
            assert_eq!(a.public().len(), g.byte_len());
            let s1 = a.shared_secret(b.public()).unwrap();
            let s2 = b.shared_secret(a.public()).unwrap();
            assert_eq!(s1, s2);
            assert_eq!(s1.len(), g.byte_len());
        }
        let a = DhKeyPair::generate(DhGroup::Modp1024).unwrap();
        let mut one = vec![0u8; 128];
        one[127] = 1;
        assert_eq!(a.shared_secret(&one).unwrap_err(), DhError::OutOfRange);
        assert_eq!(
            a.shared_secret(&[0xff; 128]).unwrap_err(),
            DhError::OutOfRange
        );
        assert_eq!(a.shared_secret(&[5; 96]).unwrap_err(), DhError::BadLength);
    }
}
