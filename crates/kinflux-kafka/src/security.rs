//! From options to connections: the rustls client configuration (ring provider), SASL
//! credentials for rskafka (OAUTHBEARER's through the shared token source), which TLS
//! failures are refusals, and the [`ConnectOptions`] that the consumer, the group
//! connections and the dead-letter producer connect with. The SASL exchange on our own
//! connections is in `sasl`.

use std::{sync::Arc, time::Duration};

use rustls::{
    ClientConfig, RootCertStore,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};

use crate::{
    config::{SaslConfig, SaslMechanism, TlsConfig},
    error::{Error, Result},
    sasl::Sasl,
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

pub(crate) fn rustls_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>> {
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
    pub(crate) sasl: Option<Arc<Sasl>>,
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
            sasl: sasl.map(Sasl::new).transpose()?.map(Arc::new),
        })
    }

    /// Connects to the first bootstrap broker that answers, to learn at once whether the
    /// brokers refuse our credentials or certificate: rskafka would try those again until
    /// its deadline. Brokers that do not answer are left to rskafka's retries.
    pub(crate) async fn check_refusal(&self) -> Result<()> {
        for broker in &self.brokers {
            match crate::conn::Connection::connect(broker, self).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_retryable() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
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

/// The same credentials for rskafka's connections. rskafka does not re-authenticate
/// (KIP-368): the broker closes its connection when the session ends, and rskafka connects
/// again, with a token that is fresh then.
fn rskafka_sasl(sasl: &Sasl) -> rskafka::client::SaslConfig {
    use rskafka::client::{Credentials, OauthBearerCredentials, SaslConfig as R};
    match sasl {
        Sasl::Password {
            mechanism,
            credentials: c,
        } => {
            let creds = Credentials::new(c.username.clone(), c.password.clone());
            match mechanism {
                SaslMechanism::Plain => R::Plain(creds),
                SaslMechanism::ScramSha256 => R::ScramSha256(creds),
                // Sasl::new gives OAUTHBEARER a token source, never a password.
                SaslMechanism::ScramSha512 | SaslMechanism::OAuthBearer => R::ScramSha512(creds),
            }
        }
        Sasl::OAuthBearer(tokens) => {
            let source = Arc::clone(tokens);
            R::Oauthbearer(OauthBearerCredentials {
                callback: Arc::new(move || {
                    let source = Arc::clone(&source);
                    Box::pin(async move {
                        source
                            .token(None)
                            .await
                            .map(|t| t.value().to_owned())
                            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                    })
                }),
                authz_id: None,
                bearer_kvs: tokens.extensions().clone().into_iter().collect(),
            })
        }
    }
}

/// What a TLS failure says when it is a refusal that trying again cannot cure: a
/// certificate that does not verify (unknown CA, wrong host name, expired), or the broker's
/// alert that it did not accept ours.
pub(crate) fn tls_refusal(e: &std::io::Error) -> Option<String> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    use rustls::{AlertDescription as A, Error as E};
    let refusal = match tls {
        E::InvalidCertificate(_) | E::NoCertificatesPresented => true,
        E::AlertReceived(alert) => matches!(
            alert,
            A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::CertificateRequired
                | A::HandshakeFailure
        ),
        _ => false,
    };
    refusal.then(|| tls.to_string())
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
