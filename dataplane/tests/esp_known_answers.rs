//! Known-answer tests: HMAC (RFC 2202, RFC 4868), AES-CBC (NIST SP 800-38A F.2.1) through the
//! ESP transform's own CBC, and AES-GCM (McGrew–Viega test case 4, as published with the GCM
//! specification) through both GCM engines, which must also agree with each other on ESP packets.

mod esp_support;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::KeyInit;
use dataplane::crypto::{build_esp_transform, build_icv_mac, Backend};
use dataplane::sa::{Cipher, Integrity};
use esp_support::{unhex, TestRng};

#[test]
fn hmac_icvs_match_rfc2202_and_rfc4868() {
    let cases = [
        // RFC 2202 test case 1 (SHA-1) and 3 (MD5); RFC 4868 AUTH256-1.
        (
            Integrity::HmacSha1_96,
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b617318655057264e28bc0b6",
        ),
        (
            Integrity::HmacSha1_96,
            vec![0xaa; 20],
            vec![0xdd; 50],
            "125d7342b9ac11cd91a39af4",
        ),
        (
            Integrity::HmacMd5_96,
            vec![0x0b; 16],
            b"Hi There".to_vec(),
            "9294727a3638bb1c13f48ef8",
        ),
        (
            Integrity::HmacMd5_96,
            vec![0xaa; 16],
            vec![0xdd; 50],
            "56be34521d144c88dbb8c733",
        ),
        (
            Integrity::HmacSha256_128,
            vec![0x0b; 32],
            b"Hi There".to_vec(),
            "198a607eb44bfbc69903a0f1cf2bbdc5",
        ),
    ];
    for (integrity, key, data, expected) in cases {
        let mac = build_icv_mac(integrity, &key).unwrap();
        let mut out = vec![0u8; mac.icv_len()];
        // Split input: the MAC must not depend on how the ranges are cut.
        let (a, b) = data.split_at(3);
        mac.compute(&[a, b], &mut out);
        assert_eq!(out, unhex(expected), "{integrity:?}");
        assert!(mac.verify(&[&data], &unhex(expected)));
        let mut wrong = unhex(expected);
        wrong[11] ^= 1;
        assert!(!mac.verify(&[&data], &wrong));
    }
}

#[test]
fn aes_cbc_decryption_matches_sp800_38a() {
    let key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
    let iv = unhex("000102030405060708090a0b0c0d0e0f");
    let plain = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
    let cipher = unhex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7");
    let t = build_esp_transform(
        Cipher::AesCbc128,
        Integrity::None,
        &key,
        &[],
        Backend::Fastest,
    )
    .unwrap();
    let mut packet = vec![0, 0, 1, 0, 0, 0, 0, 1];
    packet.extend_from_slice(&iv);
    packet.extend_from_slice(&cipher);
    t.open(&mut packet, None).unwrap();
    assert_eq!(&packet[8 + 16..], &plain[..]);
}

const GCM_KEY: &str = "feffe9928665731c6d6a8f9467308308";
const GCM_IV: &str = "cafebabefacedbaddecaf888";
const GCM_AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const GCM_PLAIN: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const GCM_CIPHER: &str = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091";
const GCM_TAG: &str = "5bc94fbc3221a5db94fae95ae7121a47";

#[test]
fn gcm_engines_match_the_gcm_specification_test_case_4() {
    let (key, iv, aad, plain) = (
        unhex(GCM_KEY),
        unhex(GCM_IV),
        unhex(GCM_AAD),
        unhex(GCM_PLAIN),
    );
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&iv);

    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &key).unwrap(),
    );
    let mut data = plain.clone();
    let tag = ring_key
        .seal_in_place_separate_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::from(&aad),
            &mut data,
        )
        .unwrap();
    assert_eq!(data, unhex(GCM_CIPHER));
    assert_eq!(tag.as_ref(), &unhex(GCM_TAG)[..]);

    let rc = aes_gcm::Aes128Gcm::new_from_slice(&key).unwrap();
    let mut data = plain.clone();
    let tag = rc
        .encrypt_in_place_detached((&nonce).into(), &aad, &mut data)
        .unwrap();
    assert_eq!(data, unhex(GCM_CIPHER));
    assert_eq!(&tag[..], &unhex(GCM_TAG)[..]);
}

/// ESP packets sealed by one GCM engine open in another and give identical bytes, for both
/// key sizes, with and without ESN: intel-ipsec-mb (`Fastest`, when the library is present)
/// and ring, each against RustCrypto.
#[test]
fn gcm_engines_agree_on_esp_packets() {
    eprintln!(
        "intel-ipsec-mb path: {:?}",
        dataplane::crypto::ipsec_mb_arch()
    );
    let mut rng = TestRng::new(77);
    for cipher in [Cipher::AesGcm128, Cipher::AesGcm256] {
        for (esn, backend) in [
            (None, Backend::Fastest),
            (Some(7u32), Backend::Fastest),
            (None, Backend::Ring),
            (Some(7), Backend::Ring),
        ] {
            let key = rng.bytes(cipher.key_len());
            let fast = build_esp_transform(cipher, Integrity::None, &key, &[], backend).unwrap();
            let pure =
                build_esp_transform(cipher, Integrity::None, &key, &[], Backend::PureRust).unwrap();
            for len in [4, 16, 60, 255, 256, 1400, 4000] {
                let mut packet = vec![0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 9];
                packet.extend_from_slice(&[0u8; 8]);
                packet.extend_from_slice(&rng.bytes(len));
                packet.extend_from_slice(&[0u8; 16]);
                let mut by_pure = packet.clone();
                fast.seal(&mut packet, esn);
                pure.seal(&mut by_pure, esn);
                assert_eq!(packet, by_pure, "{cipher:?} {backend:?} {len}");
                let sealed = packet.clone();
                pure.open(&mut packet, esn).unwrap();
                fast.open(&mut by_pure, esn).unwrap();
                assert_eq!(packet, by_pure);
                let mut wrong_esn = sealed.clone();
                assert!(fast
                    .open(&mut wrong_esn, esn.map(|h| h + 1).or(Some(1)))
                    .is_err());
            }
        }
    }
}
