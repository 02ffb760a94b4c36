//! From options to connections: the rustls client configuration (ring provider), SASL
//! credentials for rskafka, and the [`ConnectOptions`] that the consumer, the group
//! connections and the dead-letter producer connect with. The SASL exchange on our own
//! group connections is in `conn`, beside the requests it sends.

use std::{sync::Arc, time::Duration};

use rustls::{
    ClientConfig, RootCertStore,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};

use crate::{
    config::{SaslConfig, SaslMechanism, TlsConfig},
    error::{Error, Result},
};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsConfig {
    /// Builds the rustls client configuration (ring provider).
    pub fn rustls_config(&self) -> Result<Arc<ClientConfig>> {
        rustls_config(self)
    }
}

fn rustls_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| Error::Config(format!("TLS ca_file {}: {e}", path.display())))?;
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| Error::Config(format!("TLS ca_file: {e}")))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::Config(format!("TLS cert_file {}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Config(format!("TLS key_file {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("TLS client certificate: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::Config(
                "TLS: set both `cert_file` and `key_file`, or neither".into(),
            ));
        }
    };
    Ok(Arc::new(config))
}

/// Connection options shared by the consumer and the dead-letter producer.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    pub(crate) brokers: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) sasl: Option<SaslConfig>,
}

impl ConnectOptions {
    pub(crate) fn new(
        brokers: &[String],
        client_id: &str,
        tls: Option<&TlsConfig>,
        sasl: Option<&SaslConfig>,
    ) -> Result<Self> {
        Ok(Self {
            brokers: brokers.to_vec(),
            client_id: client_id.to_owned(),
            tls: tls.map(rustls_config).transpose()?,
            sasl: sasl.cloned(),
        })
    }

    /// An rskafka client with these options.
    pub(crate) async fn rskafka_client(&self) -> Result<rskafka::client::Client> {
        let mut b = rskafka::client::ClientBuilder::new(self.brokers.clone())
            .client_id(self.client_id.as_str())
            .backoff_config(rskafka::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
                deadline: Some(Duration::from_secs(30)),
            });
        if let Some(tls) = &self.tls {
            b = b.tls_config(Arc::clone(tls));
        }
        if let Some(sasl) = &self.sasl {
            b = b.sasl_config(rskafka_sasl(sasl));
        }
        Ok(b.build().await?)
    }
}

/// The same credentials for rskafka's connections.
fn rskafka_sasl(sasl: &SaslConfig) -> rskafka::client::SaslConfig {
    let creds = rskafka::client::Credentials::new(sasl.username.clone(), sasl.password.clone());
    match sasl.mechanism {
        SaslMechanism::Plain => rskafka::client::SaslConfig::Plain(creds),
        SaslMechanism::ScramSha256 => rskafka::client::SaslConfig::ScramSha256(creds),
        SaslMechanism::ScramSha512 => rskafka::client::SaslConfig::ScramSha512(creds),
    }
}

/// Accepts any server certificate (`insecure_skip_verify`), still checking signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
