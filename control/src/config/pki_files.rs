//! The files `security pki` names: read and verified for `dyntun check` (every problem as a
//! commit-check error pointing at the statement) and loaded for `dyntun run`. Relative paths
//! are taken from `base`, the directory dyntun runs in.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Origin};
use super::model::{CaProfileConfig, Config, LocalCertificateConfig};
use crate::pki::{CaProfile, LocalCredential, PkiError};

fn resolve(base: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Loads the certificate and key of `local-certificate NAME`; the error names the statement.
pub fn load_local_certificate(
    c: &LocalCertificateConfig,
    base: &Path,
) -> Result<LocalCredential, ConfigError> {
    let cert_origin = c.origins.at("certificate-file", &c.origin);
    let key_origin = c.origins.at("private-key-file", &c.origin);
    let (Some(cert), Some(key)) = (&c.certificate_file, &c.private_key_file) else {
        return Err(ConfigError::at(
            &c.origin,
            "needs certificate-file and private-key-file",
        ));
    };
    LocalCredential::load(&c.name, &resolve(base, cert), &resolve(base, key)).map_err(|e| {
        let at = match &e {
            PkiError::Unreadable { path, .. } | PkiError::NotPem { path, .. }
                if Path::new(path) == resolve(base, cert) =>
            {
                cert_origin
            }
            PkiError::Unreadable { .. } | PkiError::NotPem { .. } => key_origin,
            PkiError::KeyDoesNotMatch { .. } | PkiError::UnsupportedKey { .. } => key_origin,
            PkiError::Store(_) => &c.origin,
        };
        ConfigError::at(at, e.to_string())
    })
}

/// Loads the CA certificate(s) and CRL of `ca-profile NAME`.
pub fn load_ca_profile(p: &CaProfileConfig, base: &Path) -> Result<CaProfile, ConfigError> {
    let Some(cert) = &p.certificate_file else {
        return Err(ConfigError::at(&p.origin, "needs certificate-file PATH"));
    };
    let crl = p.crl_file.as_ref().map(|f| resolve(base, f));
    CaProfile::load(
        &p.name,
        p.ca_identity.clone(),
        &resolve(base, cert),
        crl.as_deref(),
    )
    .map_err(|e| {
        let on_crl = matches!(&e, PkiError::Unreadable { path, .. } | PkiError::NotPem { path, .. }
            if crl.as_ref().is_some_and(|c| Path::new(path) == c));
        let at: &Origin = if on_crl {
            p.origins.at("crl-file", &p.origin)
        } else {
            p.origins.at("certificate-file", &p.origin)
        };
        ConfigError::at(at, e.to_string())
    })
}

/// Every problem with the configured PKI files (unreadable, not PEM, key not matching its
/// certificate, unsupported key). Statements without a file were reported by the checks.
pub fn check_files(config: &Config, base: &Path) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for c in config.pki.local_certificates.values() {
        if c.certificate_file.is_some() && c.private_key_file.is_some() {
            if let Err(e) = load_local_certificate(c, base) {
                errors.push(e);
            }
        }
    }
    for p in config.pki.ca_profiles.values() {
        if p.certificate_file.is_some() {
            if let Err(e) = load_ca_profile(p, base) {
                errors.push(e);
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The certificate example with its relative paths anchored in the repository.
    fn example() -> (String, PathBuf) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(repo.join("examples/sg1-certificates.conf")).unwrap();
        (text, repo)
    }

    fn messages(text: &str) -> Vec<String> {
        match crate::config::check(text).result {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.into_iter()
                    .map(|e| format!("{}: {}", e.path, e.message))
                    .collect()
            }
        }
    }

    #[test]
    fn the_example_files_load() {
        let (text, repo) = example();
        let config = crate::config::parse(&text).unwrap();
        assert!(check_files(&config, &repo).is_empty());
        let ca = load_ca_profile(&config.pki.ca_profiles["example-ca"], &repo).unwrap();
        assert_eq!(ca.certificates.len(), 1);
    }

    #[test]
    fn unreadable_not_pem_and_mismatched_files_point_at_their_statement() {
        let (text, repo) = example();
        let broken = text
            .replace("examples/pki/ca.pem", "examples/pki/absent.pem")
            .replace(
                "private-key-file \"examples/pki/sg1-rsa.key\"",
                "private-key-file \"examples/pki/sg1-ecdsa.key\"",
            )
            .replace(
                "certificate-file \"examples/pki/sg1-ecdsa.pem\"",
                "certificate-file \"examples/pki/README.md\"",
            );
        let config = crate::config::parse(&broken).unwrap();
        let errors = check_files(&config, &repo);
        let shown: Vec<String> = errors
            .iter()
            .map(|e| format!("{}:{}: {}: {}", e.pos.line, e.pos.col, e.path, e.message))
            .collect();
        assert_eq!(errors.len(), 3, "{shown:#?}");
        let find = |needle: &str| {
            shown
                .iter()
                .find(|s| s.contains(needle))
                .unwrap_or_else(|| panic!("{needle}: {shown:#?}"))
        };
        assert!(find("cannot read").contains("ca-profile example-ca certificate-file"));
        assert!(find("does not match certificate")
            .contains("local-certificate sg1-rsa private-key-file"));
        assert!(find("is not a PEM certificate")
            .contains("local-certificate sg1-ecdsa certificate-file"));
        // Errors point at the file's line, not at the block.
        let line_of = |needle: &str| {
            broken
                .lines()
                .position(|l| l.contains(needle))
                .map(|i| i as u32 + 1)
                .unwrap()
        };
        assert!(errors
            .iter()
            .any(|e| e.pos.line == line_of("examples/pki/absent.pem")));
    }

    #[test]
    fn certificate_references_and_values_are_checked() {
        let (text, _) = example();
        assert!(messages(&text).is_empty(), "{:?}", messages(&text));
        let unknown_ca = text.replace("trusted-ca example-ca;", "trusted-ca nobody;");
        assert_eq!(
            messages(&unknown_ca),
            ["services service-set demo-service-set ipsec-vpn-options trusted-ca: trusted-ca nobody: no 'security pki ca-profile nobody'"]
        );
        let no_trust = text.replace("trusted-ca example-ca;", "");
        assert!(
            messages(&no_trust)[0].contains("needs trusted-ca"),
            "{:?}",
            messages(&no_trust)
        );
        let unknown_cert = text.replace("[ sg1-rsa sg1-ecdsa ]", "[ sg1-rsa sg1-dsa ]");
        assert!(
            messages(&unknown_cert)[0]
                .contains("local-certificate sg1-dsa: no 'security pki local-certificate sg1-dsa'"),
            "{:?}",
            messages(&unknown_cert)
        );
        let no_remote_id = text.replace(
            "remote-id {\n                    any-remote-id;\n                }",
            "",
        );
        assert!(
            messages(&no_remote_id)[0].contains("needs remote-id"),
            "{:?}",
            messages(&no_remote_id)
        );
        let bad_dn = text.replace("any-remote-id;", "distinguished-name \"CN\";");
        assert!(
            messages(&bad_dn)[0].contains("distinguished-name 'CN': 'CN' is not ATTRIBUTE=VALUE"),
            "{:?}",
            messages(&bad_dn)
        );
        let no_key = text.replace("private-key-file \"examples/pki/sg1-rsa.key\";", "");
        assert_eq!(
            messages(&no_key),
            ["security pki local-certificate sg1-rsa: needs private-key-file PATH (PEM)"]
        );
    }

    #[test]
    fn the_model_keeps_identities_and_options() {
        let (text, _) = example();
        let listed = text
            .replace(
                "any-remote-id;",
                "distinguished-name \"C=CH, O=dyntun example, CN=*\";\n fqdn sg2.example.net;",
            )
            .replace("distinguished-name;\n", "fqdn sg1.example.net;\n")
            .replace(
                "trusted-ca example-ca;",
                "trusted-ca example-ca;\nno-certificate-chain-in-ike;",
            );
        let config = crate::config::parse(&listed).unwrap();
        let policy = &config.ike_policies["dynamic-peers-by-certificate"];
        assert_eq!(policy.local_certificates, ["sg1-rsa", "sg1-ecdsa"]);
        assert_eq!(policy.local_certificate.as_deref(), Some("sg1-rsa"));
        assert_eq!(
            policy.remote_ids,
            [
                crate::config::RemoteIdEntry {
                    kind: crate::config::RemoteIdKind::DistinguishedName,
                    value: "C=CH, O=dyntun example, CN=*".into()
                },
                crate::config::RemoteIdEntry {
                    kind: crate::config::RemoteIdKind::Fqdn,
                    value: "sg2.example.net".into()
                },
            ]
        );
        assert_eq!(
            policy.local_id,
            Some(crate::config::LocalId::Fqdn("sg1.example.net".into()))
        );
        assert!(config.service_sets["demo-service-set"].no_certificate_chain_in_ike);
    }
}
