//! The CA profiles a service set trusts (`trusted-ca`), and verification of a peer's chain
//! against them with OpenSSL: signatures up to a configured CA, validity periods, basic
//! constraints and CA key usage (OpenSSL's chain checks), the leaf's key usage (ours), and the
//! CRL of the issuing CA when its profile names one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use openssl::ssl::SslFiletype;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509KeyUsage, X509Ref, X509StoreContext, X509};
use openssl_sys as ffi;

use super::error::{PkiError, VerifyFailure};
use super::summary::{dn_string, CertificateSummary};

/// `security pki ca-profile NAME { ca-identity ID; certificate-file F; crl-file F; }`.
#[derive(Clone)]
pub struct CaProfile {
    pub name: String,
    pub ca_identity: Option<String>,
    pub certificates: Vec<X509>,
    pub crl_file: Option<PathBuf>,
}

impl std::fmt::Debug for CaProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subjects: Vec<String> = self
            .certificates
            .iter()
            .map(|c| dn_string(c.subject_name()))
            .collect();
        write!(
            f,
            "CaProfile({}, {subjects:?}, crl {:?})",
            self.name, self.crl_file
        )
    }
}

impl CaProfile {
    pub fn load(
        name: &str,
        ca_identity: Option<String>,
        certificate_file: &Path,
        crl_file: Option<&Path>,
    ) -> Result<CaProfile, PkiError> {
        let label = certificate_file.display().to_string();
        let pem = std::fs::read(certificate_file).map_err(|e| PkiError::Unreadable {
            path: label.clone(),
            reason: e.to_string(),
        })?;
        let certificates = X509::stack_from_pem(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or(PkiError::NotPem {
                path: label,
                what: "certificate",
            })?;
        if let Some(crl) = crl_file {
            check_crl(crl)?;
        }
        Ok(CaProfile {
            name: name.to_string(),
            ca_identity,
            certificates,
            crl_file: crl_file.map(Path::to_path_buf),
        })
    }
}

fn check_crl(path: &Path) -> Result<(), PkiError> {
    let label = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| PkiError::Unreadable {
        path: label.clone(),
        reason: e.to_string(),
    })?;
    openssl::x509::X509Crl::from_pem(&pem).map_err(|_| PkiError::NotPem {
        path: label,
        what: "CRL",
    })?;
    Ok(())
}

/// A peer certificate that chains to a trusted CA and may sign.
#[derive(Debug)]
pub struct VerifiedPeer {
    pub certificate: X509,
    pub summary: CertificateSummary,
    /// The trusted CA profile it chains to.
    pub ca_profile: String,
}

pub struct TrustStore {
    profiles: Vec<CaProfile>,
    /// Without CRL checks, and with them (used when the issuing CA's profile has a CRL file).
    plain: X509Store,
    with_crls: Option<X509Store>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.profiles).finish()
    }
}

fn store(profiles: &[CaProfile], crls: bool) -> Result<X509Store, PkiError> {
    let err = |e: openssl::error::ErrorStack| PkiError::Store(e.to_string());
    let mut builder = X509StoreBuilder::new().map_err(err)?;
    let mut seen = BTreeSet::new();
    for p in profiles {
        for c in &p.certificates {
            // The same CA in two profiles would make OpenSSL refuse the second copy.
            if seen.insert(c.to_der().map_err(err)?) {
                builder.add_cert(c.clone()).map_err(err)?;
            }
        }
    }
    if crls {
        let lookup = builder.add_lookup(X509Lookup::file()).map_err(err)?;
        for path in profiles.iter().filter_map(|p| p.crl_file.as_ref()) {
            lookup
                .load_crl_file(path, SslFiletype::PEM)
                .map_err(|e| PkiError::Store(format!("{}: {e}", path.display())))?;
        }
        builder.set_flags(X509VerifyFlags::CRL_CHECK).map_err(err)?;
    }
    Ok(builder.build())
}

impl TrustStore {
    pub fn new(profiles: Vec<CaProfile>) -> Result<TrustStore, PkiError> {
        let plain = store(&profiles, false)?;
        let with_crls = if profiles.iter().any(|p| p.crl_file.is_some()) {
            Some(store(&profiles, true)?)
        } else {
            None
        };
        Ok(TrustStore {
            profiles,
            plain,
            with_crls,
        })
    }

    pub fn profiles(&self) -> &[CaProfile] {
        &self.profiles
    }

    /// The subject names (DER) of the trusted CAs, for CERTREQ payloads.
    pub fn ca_names_der(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for p in &self.profiles {
            for c in &p.certificates {
                if let Ok(der) = c.subject_name().to_der() {
                    if !out.contains(&der) {
                        out.push(der);
                    }
                }
            }
        }
        out
    }

    fn profile_of_issuer(&self, leaf: &X509Ref) -> Option<&CaProfile> {
        self.profiles.iter().find(|p| {
            p.certificates
                .iter()
                .any(|ca| ca.issued(leaf) == openssl::x509::X509VerifyResult::OK)
        })
    }

    /// Verifies `leaf` (DER) with `others` (DER, intermediates the peer sent) as untrusted help.
    pub fn verify(&self, leaf: &[u8], others: &[Vec<u8>]) -> Result<VerifiedPeer, VerifyFailure> {
        let leaf = X509::from_der(leaf).map_err(|_| VerifyFailure::BadEncoding)?;
        let mut untrusted = Stack::new().map_err(|e| VerifyFailure::Chain {
            reason: e.to_string(),
        })?;
        for der in others {
            let c = X509::from_der(der).map_err(|_| VerifyFailure::BadEncoding)?;
            let _ = untrusted.push(c);
        }
        let direct_profile = self.profile_of_issuer(&leaf);
        let use_crls = direct_profile.is_some_and(|p| p.crl_file.is_some());
        let store = match (&self.with_crls, use_crls) {
            (Some(s), true) => s,
            _ => &self.plain,
        };
        let mut ctx = X509StoreContext::new().map_err(|e| VerifyFailure::Chain {
            reason: e.to_string(),
        })?;
        let outcome = ctx
            .init(store, &leaf, &untrusted, |c| {
                let ok = c.verify_cert()?;
                let failing = c
                    .current_cert()
                    .map(|cert| (dn_string(cert.subject_name()), cert.to_owned()));
                let chain_top = c
                    .chain()
                    .and_then(|chain| chain.iter().last().map(|x| x.to_owned()));
                Ok((ok, c.error(), failing, chain_top))
            })
            .map_err(|e| VerifyFailure::Chain {
                reason: e.to_string(),
            })?;
        let (ok, error, failing, chain_top) = outcome;
        if !ok {
            let (subject, failing_cert) = failing
                .map(|(s, c)| (s, Some(c)))
                .unwrap_or_else(|| (dn_string(leaf.subject_name()), None));
            let cert = failing_cert.as_deref().unwrap_or(&leaf);
            return Err(match error.as_raw() {
                ffi::X509_V_ERR_CERT_HAS_EXPIRED => VerifyFailure::Expired {
                    subject,
                    not_after: cert.not_after().to_string(),
                },
                ffi::X509_V_ERR_CERT_NOT_YET_VALID => VerifyFailure::NotYetValid {
                    subject,
                    not_before: cert.not_before().to_string(),
                },
                ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
                | ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
                | ffi::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
                | ffi::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                | ffi::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => VerifyFailure::UnknownCa {
                    issuer: dn_string(cert.issuer_name()),
                },
                ffi::X509_V_ERR_CERT_REVOKED => VerifyFailure::Revoked { subject },
                ffi::X509_V_ERR_KEYUSAGE_NO_CERTSIGN => VerifyFailure::KeyUsage { subject },
                _ => VerifyFailure::Chain {
                    reason: format!("{} ({subject})", error.error_string()),
                },
            });
        }
        if let Some(usage) = leaf.key_usage() {
            if !usage.intersects(X509KeyUsage::DIGITAL_SIGNATURE | X509KeyUsage::NON_REPUDIATION) {
                return Err(VerifyFailure::KeyUsage {
                    subject: dn_string(leaf.subject_name()),
                });
            }
        }
        let ca_profile = chain_top
            .and_then(|top| {
                let der = top.to_der().ok()?;
                self.profiles
                    .iter()
                    .find(|p| {
                        p.certificates
                            .iter()
                            .any(|c| c.to_der().ok().as_ref() == Some(&der))
                    })
                    .map(|p| p.name.clone())
            })
            .unwrap_or_default();
        Ok(VerifiedPeer {
            summary: CertificateSummary::of(&leaf),
            certificate: leaf,
            ca_profile,
        })
    }
}
