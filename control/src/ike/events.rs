//! What the responder reports: tunnels up and down with everything the dataplane installs, and
//! one typed failure per dropped or refused message.

use std::fmt;
use std::net::SocketAddr;

use dataplane::sa::{PeerEndpoint, ProxyPair, SaSpec};

use super::codec_error::CodecError;
use super::identity::Identity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct IkeSaId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ChildId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DownReason {
    DeletedByPeer,
    DeletedLocally,
    Expired,
    /// The peer sent INITIAL-CONTACT on a new IKE SA: it lost its old state.
    Replaced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Exchange {
    MainMode,
    AggressiveMode,
    QuickMode,
    Informational,
    Other(u8),
}

impl Exchange {
    pub fn from_number(n: u8) -> Exchange {
        use super::numbers::exchange as x;
        match n {
            x::IDENTITY_PROTECTION => Exchange::MainMode,
            x::AGGRESSIVE => Exchange::AggressiveMode,
            x::QUICK_MODE => Exchange::QuickMode,
            x::INFORMATIONAL => Exchange::Informational,
            other => Exchange::Other(other),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureReason {
    Malformed(CodecError),
    NotForUs,
    AggressiveModeRefused,
    UnsupportedExchange,
    UnknownCookies,
    WrongState,
    MissingPayload(&'static str),
    NoProposalChosen,
    PfsMismatch,
    HalfOpenLimit,
    NoPreSharedKey,
    BadKeyExchange,
    /// Decryption produced garbage: most often a wrong pre-shared key.
    DecryptionFailed,
    AuthenticationFailed,
    HashMismatch,
    ProxyNotAllowed {
        remote: String,
        local: String,
    },
    UnsupportedProxyIdentity,
    SpiExhausted,
    HalfOpenTimeout,
    QuickModeTimeout,
    UnknownSpi,
    /// The peer's certificate (chain) was refused: expired, unknown CA, revoked, …
    CertificateRefused(crate::pki::VerifyFailure),
    /// SIG_I does not verify with the key of the peer's certificate.
    SignatureInvalid {
        identity: String,
    },
    /// The ID payload is neither the certificate's subject nor one of its subjectAltNames.
    IdentityNotInCertificate {
        identity: String,
        subject: String,
    },
    /// The identity is proven but the IKE policy's `remote-id` does not allow it.
    IdentityNotAllowed {
        identity: String,
    },
    /// We hold no certificate of the key kind the negotiated method signs with.
    NoLocalCertificate,
}

impl FailureReason {
    /// Stable name used as the drop counter key.
    pub fn counter(&self) -> &'static str {
        match self {
            FailureReason::Malformed(e) => match e {
                CodecError::Truncated => "malformed-truncated",
                CodecError::Oversized => "malformed-oversized",
                CodecError::BadVersion(_) => "malformed-version",
                CodecError::LengthMismatch => "malformed-length",
                CodecError::BadPayloadLength => "malformed-payload-length",
                CodecError::TooManyPayloads => "malformed-too-many-payloads",
                CodecError::UnknownPayload(_) => "malformed-unknown-payload",
                CodecError::TrailingBytes => "malformed-trailing-bytes",
                CodecError::BadSa => "malformed-sa",
                CodecError::BadAttribute => "malformed-attribute",
                CodecError::BadIdentity => "malformed-id",
                CodecError::BadNotify => "malformed-notify",
            },
            FailureReason::NotForUs => "not-for-us",
            FailureReason::AggressiveModeRefused => "aggressive-mode-refused",
            FailureReason::UnsupportedExchange => "unsupported-exchange",
            FailureReason::UnknownCookies => "unknown-cookies",
            FailureReason::WrongState => "wrong-state",
            FailureReason::MissingPayload(_) => "missing-payload",
            FailureReason::NoProposalChosen => "no-proposal-chosen",
            FailureReason::PfsMismatch => "pfs-mismatch",
            FailureReason::HalfOpenLimit => "half-open-limit",
            FailureReason::NoPreSharedKey => "no-pre-shared-key",
            FailureReason::BadKeyExchange => "bad-key-exchange",
            FailureReason::DecryptionFailed => "decryption-failed",
            FailureReason::AuthenticationFailed => "authentication-failed",
            FailureReason::HashMismatch => "hash-mismatch",
            FailureReason::ProxyNotAllowed { .. } => "proxy-not-allowed",
            FailureReason::UnsupportedProxyIdentity => "unsupported-proxy-identity",
            FailureReason::SpiExhausted => "spi-exhausted",
            FailureReason::HalfOpenTimeout => "half-open-timeout",
            FailureReason::QuickModeTimeout => "quick-mode-timeout",
            FailureReason::UnknownSpi => "unknown-spi",
            FailureReason::CertificateRefused(f) => match f {
                crate::pki::VerifyFailure::Expired { .. } => "certificate-expired",
                crate::pki::VerifyFailure::NotYetValid { .. } => "certificate-not-yet-valid",
                crate::pki::VerifyFailure::UnknownCa { .. } => "certificate-unknown-ca",
                crate::pki::VerifyFailure::Revoked { .. } => "certificate-revoked",
                crate::pki::VerifyFailure::NoCertificate => "certificate-missing",
                _ => "certificate-invalid",
            },
            FailureReason::SignatureInvalid { .. } => "signature-invalid",
            FailureReason::IdentityNotInCertificate { .. } => "identity-not-in-certificate",
            FailureReason::IdentityNotAllowed { .. } => "identity-not-allowed",
            FailureReason::NoLocalCertificate => "no-local-certificate",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Malformed(e) => write!(f, "malformed message: {e}"),
            FailureReason::MissingPayload(what) => write!(f, "missing {what} payload"),
            FailureReason::ProxyNotAllowed { remote, local } => {
                write!(
                    f,
                    "proxy identity remote {remote} local {local} not in allowed-proxy-pair"
                )
            }
            FailureReason::DecryptionFailed => {
                write!(f, "decryption failed (pre-shared key mismatch?)")
            }
            FailureReason::CertificateRefused(reason) => {
                write!(f, "peer certificate refused: {reason}")
            }
            FailureReason::SignatureInvalid { identity } => {
                write!(f, "signature of '{identity}' invalid")
            }
            FailureReason::IdentityNotInCertificate { identity, subject } => write!(
                f,
                "identity '{identity}' is not confirmed by certificate \"{subject}\""
            ),
            FailureReason::IdentityNotAllowed { identity } => {
                write!(f, "identity '{identity}' not allowed by remote-id")
            }
            other => f.write_str(other.counter()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeFailure {
    pub peer: SocketAddr,
    pub exchange: Exchange,
    pub reason: FailureReason,
}

#[derive(Clone, Debug)]
pub enum IkeEvent {
    IkeSaUp {
        ike_sa: IkeSaId,
        peer: PeerEndpoint,
        identity: Identity,
    },
    IkeSaDown {
        ike_sa: IkeSaId,
        peer: PeerEndpoint,
        reason: DownReason,
    },
    /// Install `inbound` and `outbound` (two each for an AH+ESP bundle); when `rekey_of` is
    /// set, the old child stays until it expires or is deleted (make-before-break).
    ChildSaUp {
        ike_sa: IkeSaId,
        child: ChildId,
        peer: PeerEndpoint,
        proxy: ProxyPair,
        inbound: Vec<SaSpec>,
        outbound: Vec<SaSpec>,
        rekey_of: Option<ChildId>,
    },
    ChildSaDown {
        child: ChildId,
        reason: DownReason,
    },
    /// INITIAL-CONTACT: the older IKE SAs of this identity are gone (their children were
    /// reported down just before).
    PeerReplaced {
        ike_sa: IkeSaId,
        replaced: Vec<IkeSaId>,
        identity: Identity,
    },
    Failure(IkeFailure),
}
