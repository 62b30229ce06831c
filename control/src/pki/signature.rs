//! IKEv1 signature encodings. RSA (method 3): PKCS#1 v1.5 type 1 padding of HASH_I/HASH_R
//! itself, without a DigestInfo, as RFC 2409 section 5.1 signs "the hash". ECDSA (RFC 4754,
//! methods 9-11): HASH is the message digest, the signature is r | s, each left-padded to the
//! curve's size (32, 48 or 66 bytes).

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::{HasPublic, PKeyRef, Private};
use openssl::rsa::Padding;

use super::credential::KeyKind;

/// Bytes of r and of s for an ECDSA key kind.
fn scalar_len(kind: KeyKind) -> i32 {
    match kind {
        KeyKind::Rsa | KeyKind::EcdsaP256 => 32,
        KeyKind::EcdsaP384 => 48,
        KeyKind::EcdsaP521 => 66,
    }
}

pub fn sign(key: &PKeyRef<Private>, kind: KeyKind, hash: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        KeyKind::Rsa => {
            let rsa = key.rsa().map_err(|e| e.to_string())?;
            let mut out = vec![0u8; rsa.size() as usize];
            let len = rsa
                .private_encrypt(hash, &mut out, Padding::PKCS1)
                .map_err(|e| e.to_string())?;
            out.truncate(len);
            Ok(out)
        }
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
            let len = scalar_len(kind);
            let ec = key.ec_key().map_err(|e| e.to_string())?;
            let sig = EcdsaSig::sign(hash, &ec).map_err(|e| e.to_string())?;
            let mut out = sig.r().to_vec_padded(len).map_err(|e| e.to_string())?;
            out.extend(sig.s().to_vec_padded(len).map_err(|e| e.to_string())?);
            Ok(out)
        }
    }
}

/// True when `signature` is a valid signature of `hash` by `key` in the method's encoding.
pub fn verify<T: HasPublic>(
    key: &PKeyRef<T>,
    kind: KeyKind,
    hash: &[u8],
    signature: &[u8],
) -> bool {
    match kind {
        KeyKind::Rsa => {
            let Ok(rsa) = key.rsa() else { return false };
            if signature.len() != rsa.size() as usize {
                return false;
            }
            let mut out = vec![0u8; rsa.size() as usize];
            match rsa.public_decrypt(signature, &mut out, Padding::PKCS1) {
                Ok(len) => out[..len] == *hash,
                Err(_) => false,
            }
        }
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
            let len = scalar_len(kind) as usize;
            let Ok(ec) = key.ec_key() else { return false };
            if signature.len() != 2 * len {
                return false;
            }
            let (r, s) = signature.split_at(len);
            let (Ok(r), Ok(s)) = (BigNum::from_slice(r), BigNum::from_slice(s)) else {
                return false;
            };
            let Ok(sig) = EcdsaSig::from_private_components(r, s) else {
                return false;
            };
            sig.verify(hash, &ec).unwrap_or(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    #[test]
    fn signatures_verify_and_a_flipped_bit_does_not() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        for (key, kind, hash_len) in [(&rsa, KeyKind::Rsa, 20), (&ec, KeyKind::EcdsaP256, 32)] {
            let hash = vec![0x5a; hash_len];
            let mut sig = sign(key, kind, &hash).unwrap();
            assert!(verify(key, kind, &hash, &sig), "{kind:?}");
            assert!(!verify(key, kind, &[0x5b; 20], &sig), "{kind:?}");
            sig[7] ^= 1;
            assert!(!verify(key, kind, &hash, &sig), "{kind:?}");
            assert!(!verify(key, kind, &hash, &sig[1..]), "{kind:?}");
        }
        assert_eq!(sign(&ec, KeyKind::EcdsaP256, &[1; 32]).unwrap().len(), 64);
        for (curve, kind, len) in [
            (Nid::SECP384R1, KeyKind::EcdsaP384, 96),
            (Nid::SECP521R1, KeyKind::EcdsaP521, 132),
        ] {
            let group = EcGroup::from_curve_name(curve).unwrap();
            let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
            let sig = sign(&key, kind, &[7; 48]).unwrap();
            assert_eq!(sig.len(), len);
            assert!(verify(&key, kind, &[7; 48], &sig));
            assert!(!verify(&key, KeyKind::EcdsaP256, &[7; 48], &sig));
        }
        assert_eq!(sign(&rsa, KeyKind::Rsa, &[1; 20]).unwrap().len(), 256);
    }
}
