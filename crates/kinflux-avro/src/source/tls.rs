//! A TLS configuration for a registry whose certificate a private CA signed.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::RegistryError;

/// A TLS configuration (ring provider) that trusts the CA certificates of the PEM file
/// `ca_file`, and only them: for [`crate::RegistryConfig::tls`].
pub fn tls_trusting(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
    let shown = ca_file.display();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| RegistryError::Tls(format!("{shown}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RegistryError::Tls(format!("{shown}: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(RegistryError::Tls(format!("{shown}: no CA certificate")));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            tls_trusting(&dir.path().join("none.pem")),
            Err(RegistryError::Tls(_))
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = tls_trusting(&empty).unwrap_err();
        assert!(err.to_string().contains("no CA certificate"), "{err}");
    }

    #[test]
    fn a_ca_certificate_is_trusted() {
        let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, issued.cert.pem()).unwrap();
        assert!(tls_trusting(&path).is_ok());
    }
}
