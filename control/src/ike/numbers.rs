//! Assigned numbers from RFC 2407/2408/2409, RFC 3947, RFC 3706 and the NAT-T drafts, named once
//! so the codec and the exchanges speak the same vocabulary.

pub mod payload_type {
    pub const NONE: u8 = 0;
    pub const SA: u8 = 1;
    pub const PROPOSAL: u8 = 2;
    pub const TRANSFORM: u8 = 3;
    pub const KE: u8 = 4;
    pub const ID: u8 = 5;
    pub const CERT: u8 = 6;
    pub const CERT_REQUEST: u8 = 7;
    pub const HASH: u8 = 8;
    pub const SIG: u8 = 9;
    pub const NONCE: u8 = 10;
    pub const NOTIFY: u8 = 11;
    pub const DELETE: u8 = 12;
    pub const VENDOR_ID: u8 = 13;
    pub const NAT_D: u8 = 20;
    pub const NAT_OA: u8 = 21;
    pub const NAT_D_DRAFT: u8 = 130;
    pub const NAT_OA_DRAFT: u8 = 131;
}

pub mod exchange {
    pub const IDENTITY_PROTECTION: u8 = 2;
    pub const AGGRESSIVE: u8 = 4;
    pub const INFORMATIONAL: u8 = 5;
    pub const QUICK_MODE: u8 = 32;
}

pub mod flags {
    pub const ENCRYPTION: u8 = 0x01;
    pub const COMMIT: u8 = 0x02;
    pub const AUTH_ONLY: u8 = 0x04;
}

pub const ISAKMP_VERSION: u8 = 0x10;
pub const DOI_IPSEC: u32 = 1;
pub const SIT_IDENTITY_ONLY: u32 = 1;

pub mod protocol {
    pub const ISAKMP: u8 = 1;
    pub const AH: u8 = 2;
    pub const ESP: u8 = 3;
}

/// Phase 1 transform attribute types and values (RFC 2409 appendix A).
pub mod p1 {
    pub const KEY_IKE: u8 = 1;
    pub const ENCRYPTION: u16 = 1;
    pub const HASH: u16 = 2;
    pub const AUTH_METHOD: u16 = 3;
    pub const GROUP: u16 = 4;
    pub const LIFE_TYPE: u16 = 11;
    pub const LIFE_DURATION: u16 = 12;
    pub const KEY_LENGTH: u16 = 14;

    pub const ENC_DES: u16 = 1;
    pub const ENC_3DES: u16 = 5;
    pub const ENC_AES: u16 = 7;
    pub const HASH_MD5: u16 = 1;
    pub const HASH_SHA1: u16 = 2;
    pub const HASH_SHA256: u16 = 4;
    pub const AUTH_PSK: u16 = 1;
    pub const AUTH_RSA_SIG: u16 = 3;
    /// RFC 4754: ECDSA with SHA-256 on P-256, SHA-384 on P-384, SHA-512 on P-521.
    pub const AUTH_ECDSA_256: u16 = 9;
    pub const AUTH_ECDSA_384: u16 = 10;
    pub const AUTH_ECDSA_521: u16 = 11;
    pub const LIFE_SECONDS: u16 = 1;
    pub const LIFE_KILOBYTES: u16 = 2;
}

/// Phase 2 (IPsec DOI) transform ids and attributes (RFC 2407 section 4.5, RFC 3947, RFC 4106).
pub mod p2 {
    pub const ESP_DES: u8 = 2;
    pub const ESP_3DES: u8 = 3;
    pub const ESP_AES: u8 = 12;
    pub const ESP_AES_GCM_16: u8 = 20;
    pub const AH_MD5: u8 = 2;
    pub const AH_SHA: u8 = 3;
    pub const AH_SHA2_256: u8 = 5;

    pub const LIFE_TYPE: u16 = 1;
    pub const LIFE_DURATION: u16 = 2;
    pub const GROUP: u16 = 3;
    pub const ENCAPSULATION: u16 = 4;
    pub const AUTH_ALG: u16 = 5;
    pub const KEY_LENGTH: u16 = 6;
    pub const ESN: u16 = 11;

    pub const LIFE_SECONDS: u16 = 1;
    pub const LIFE_KILOBYTES: u16 = 2;
    pub const ENCAP_TUNNEL: u16 = 1;
    pub const ENCAP_TRANSPORT: u16 = 2;
    pub const ENCAP_UDP_TUNNEL: u16 = 3;
    pub const ENCAP_UDP_TRANSPORT: u16 = 4;
    pub const ENCAP_UDP_TUNNEL_DRAFT: u16 = 61443;
    pub const ENCAP_UDP_TRANSPORT_DRAFT: u16 = 61444;
    pub const AUTH_HMAC_MD5: u16 = 1;
    pub const AUTH_HMAC_SHA: u16 = 2;
    pub const AUTH_HMAC_SHA2_256: u16 = 5;
}

pub mod id_type {
    pub const IPV4_ADDR: u8 = 1;
    pub const FQDN: u8 = 2;
    pub const USER_FQDN: u8 = 3;
    pub const IPV4_ADDR_SUBNET: u8 = 4;
    pub const IPV6_ADDR: u8 = 5;
    pub const IPV6_ADDR_SUBNET: u8 = 6;
    pub const IPV4_ADDR_RANGE: u8 = 7;
    pub const IPV6_ADDR_RANGE: u8 = 8;
    pub const DER_ASN1_DN: u8 = 9;
    pub const DER_ASN1_GN: u8 = 10;
    pub const KEY_ID: u8 = 11;
}

pub mod notify_type {
    pub const INVALID_PAYLOAD_TYPE: u16 = 1;
    pub const PAYLOAD_MALFORMED: u16 = 16;
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    pub const INVALID_ID_INFORMATION: u16 = 18;
    pub const INVALID_CERT_ENCODING: u16 = 19;
    pub const INVALID_CERTIFICATE: u16 = 20;
    pub const INVALID_CERT_AUTHORITY: u16 = 22;
    pub const AUTHENTICATION_FAILED: u16 = 24;
    pub const INVALID_SIGNATURE: u16 = 25;
    pub const CERTIFICATE_UNAVAILABLE: u16 = 28;
    pub const CONNECTED: u16 = 16384;
    pub const RESPONDER_LIFETIME: u16 = 24576;
    pub const INITIAL_CONTACT: u16 = 24578;
    pub const R_U_THERE: u16 = 36136;
    pub const R_U_THERE_ACK: u16 = 36137;
}

/// Certificate encodings of CERT and CERT_REQ payloads (RFC 2408 section 3.9).
pub mod cert_encoding {
    pub const X509_SIGNATURE: u8 = 4;
}

pub mod vendor_id {
    /// RFC 3947 ("RFC 3947" MD5).
    pub const NAT_T_RFC3947: [u8; 16] = hex16("4a131c81070358455c5728f20e95452f");
    /// draft-ietf-ipsec-nat-t-ike-02 with and without the trailing newline.
    pub const NAT_T_DRAFT_02: [u8; 16] = hex16("cd60464335df21f87cfdb2fc68b6a448");
    pub const NAT_T_DRAFT_02_NL: [u8; 16] = hex16("90cb80913ebb696e086381b5ec427b1f");
    pub const NAT_T_DRAFT_03: [u8; 16] = hex16("7d9419a65310ca6f2c179d9215529d56");
    /// RFC 3706 dead peer detection, version 1.0.
    pub const DPD: [u8; 16] = hex16("afcad71368a1f1c96b8696fc77570100");

    const fn hex16(text: &str) -> [u8; 16] {
        let b = text.as_bytes();
        let mut out = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
            i += 1;
        }
        out
    }

    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a hex digit"),
        }
    }
}

/// UDP port IKE floats to for NAT traversal; datagrams on it carry a 4-byte zero non-ESP marker.
pub const NATT_PORT: u16 = 4500;
pub const IKE_PORT: u16 = 500;
