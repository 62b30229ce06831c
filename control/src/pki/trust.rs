//! The CA profiles a service set trusts (`trusted-ca`), and verification of a peer's chain
//! against them with OpenSSL: signatures up to a configured CA, validity periods, basic
//! constraints and CA key usage (OpenSSL's chain checks), the leaf's key usage (ours), and
//! revocation of every certificate of the chain by any CRL the profiles name (a root's CRL can
//! revoke an intermediate the peer sent; an intermediate's CRL in a CRL file revokes its leaves).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{CrlStatus, X509Crl, X509KeyUsage, X509StoreContext, X509};
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
    X509Crl::from_pem(&pem).map_err(|_| PkiError::NotPem {
        path: label,
        what: "CRL",
    })?;
    Ok(())
}

/// Every CRL of a PEM file (a file may hold the CRLs of a CA and of its intermediates).
fn crls_in(path: &Path) -> Result<Vec<X509Crl>, PkiError> {
    const BEGIN: &str = "-----BEGIN X509 CRL-----";
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PkiError::Unreadable {
        path: label.clone(),
        reason: e.to_string(),
    })?;
    let starts: Vec<usize> = text.match_indices(BEGIN).map(|(i, _)| i).collect();
    let mut crls = Vec::with_capacity(starts.len());
    for (n, start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(text.len());
        let crl =
            X509Crl::from_pem(&text.as_bytes()[*start..end]).map_err(|_| PkiError::NotPem {
                path: label.clone(),
                what: "CRL",
            })?;
        crls.push(crl);
    }
    Ok(crls)
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
    store: X509Store,
    /// Checked against the verified chain by us rather than by OpenSSL's CRL_CHECK_ALL, which
    /// would refuse every chain holding a CA that publishes no CRL here.
    crls: Vec<X509Crl>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.profiles).finish()
    }
}

fn store(profiles: &[CaProfile]) -> Result<X509Store, PkiError> {
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
    Ok(builder.build())
}

impl TrustStore {
    pub fn new(profiles: Vec<CaProfile>) -> Result<TrustStore, PkiError> {
        let store = store(&profiles)?;
        let mut crls = Vec::new();
        for path in profiles.iter().filter_map(|p| p.crl_file.as_ref()) {
            crls.extend(crls_in(path)?);
        }
        Ok(TrustStore {
            profiles,
            store,
            crls,
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
        let store = &self.store;
        let mut ctx = X509StoreContext::new().map_err(|e| VerifyFailure::Chain {
            reason: e.to_string(),
        })?;
        let outcome = ctx
            .init(store, &leaf, &untrusted, |c| {
                let ok = c.verify_cert()?;
                let failing = c
                    .current_cert()
                    .map(|cert| (dn_string(cert.subject_name()), cert.to_owned()));
                let chain: Vec<X509> = c
                    .chain()
                    .map(|chain| chain.iter().map(|x| x.to_owned()).collect())
                    .unwrap_or_default();
                Ok((ok, c.error(), failing, chain))
            })
            .map_err(|e| VerifyFailure::Chain {
                reason: e.to_string(),
            })?;
        let (ok, error, failing, chain) = outcome;
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
        self.check_revocation(&chain)?;
        let ca_profile = chain
            .last()
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

    /// Each certificate of the verified chain (leaf first) against the CRLs its issuer signed.
    fn check_revocation(&self, chain: &[X509]) -> Result<(), VerifyFailure> {
        let chain_error = |reason: String| VerifyFailure::Chain { reason };
        let now = Asn1Time::days_from_now(0).map_err(|e| chain_error(e.to_string()))?;
        for pair in chain.windows(2) {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let Ok(issuer_key) = issuer.public_key() else {
                continue;
            };
            let issuer_der = issuer.subject_name().to_der().ok();
            for crl in &self.crls {
                if crl.issuer_name().to_der().ok() != issuer_der
                    || !crl.verify(&issuer_key).unwrap_or(false)
                {
                    continue;
                }
                let stale = crl
                    .next_update()
                    .is_some_and(|next| next.compare(&now).is_ok_and(|o| o.is_lt()));
                if stale {
                    return Err(chain_error(format!(
                        "the CRL of {} is past its next update",
                        dn_string(issuer.subject_name())
                    )));
                }
                if let CrlStatus::Revoked(_) = crl.get_by_cert(cert) {
                    return Err(VerifyFailure::Revoked {
                        subject: dn_string(cert.subject_name()),
                    });
                }
            }
        }
        Ok(())
    }
}
