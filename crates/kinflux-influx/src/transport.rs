//! The pooled HTTP/1.1 client, with rustls when the `tls` feature is on.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{RetryCause, WriteError, WriterConfig};

#[cfg(feature = "tls")]
pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = HttpConnector;

/// The keep-alive client every clone of a writer shares.
pub(crate) type HttpClient = Client<Connector, Full<Bytes>>;

/// Answers are read up to this size. InfluxDB 1.x echoes every unparsable line, so an
/// answer can be as large as the body sent; past this it is cut, and what it did not
/// name is sent again to learn about it.
pub(crate) const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// An HTTP answer, its body read up to [`MAX_ANSWER_BYTES`].
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
    /// The body was longer and was cut.
    pub(crate) truncated: bool,
}

/// Reads a body up to [`MAX_ANSWER_BYTES`]; the rest is left unread.
pub(crate) async fn read_answer(
    mut body: hyper::body::Incoming,
) -> Result<(Bytes, bool), RetryCause> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| RetryCause::Connection)?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_ANSWER_BYTES - out.len();
            if data.len() > room {
                out.extend_from_slice(&data[..room]);
                return Ok((out.freeze(), true));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok((out.freeze(), false))
}

/// Builds the client: connect timeout, keep-alive pool, TLS roots.
pub(crate) fn client(config: &WriterConfig) -> Result<HttpClient, WriteError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = connector(http, config)?;
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(config.max_in_flight.max(1))
        .build(connector))
}

#[cfg(feature = "tls")]
fn connector(http: HttpConnector, config: &WriterConfig) -> Result<Connector, WriteError> {
    let tls = tls_config(config.ca_file.as_deref())?;
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

#[cfg(not(feature = "tls"))]
fn connector(http: HttpConnector, config: &WriterConfig) -> Result<Connector, WriteError> {
    if config.url.starts_with("https:") || config.ca_file.is_some() {
        return Err(WriteError::Config(
            "https needs the `tls` feature of kinflux-influx".to_owned(),
        ));
    }
    Ok(http)
}

/// The rustls client configuration (ring provider): the CA certificates of `ca_file` when
/// given, else the webpki roots.
#[cfg(feature = "tls")]
pub(crate) fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, WriteError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                WriteError::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    WriteError::Config(format!("bad certificate in {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    WriteError::Config(format!("unusable CA in {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(WriteError::Config(format!(
                    "no certificate in CA file {}",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WriteError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn custom_ca_file_is_loaded() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = std::env::temp_dir().join(format!("kinflux-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, cert.cert.pem()).unwrap();
        assert!(tls_config(Some(&path)).is_ok());

        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let err = tls_config(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");

        let missing = tls_config(Some(&dir.join("missing.pem"))).unwrap_err();
        assert!(
            missing.to_string().contains("cannot read CA file"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_roots_build() {
        assert!(tls_config(None).is_ok());
    }
}
