//! The schema registry client over HTTPS (`tls` feature): the test kit's registry
//! behind a self-signed certificate is reached with a TLS configuration that trusts it,
//! and refused with the default one (webpki roots), which proves the certificate is
//! checked.

use std::sync::Arc;

use kinflux_avro::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use kinflux_avro::{RegistryClient, RegistryConfig, RegistryError};
use kinflux_testkit::http::Registry;

const GARDEN: &str = include_str!("../../../examples/schemas/garden.avsc");

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for 127.0.0.1: the server's TLS acceptor, and a client
/// configuration that trusts it.
fn certificate() -> (tokio_rustls::TlsAcceptor, Arc<ClientConfig>) {
    let issued =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = issued.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(issued.signing_key.serialize_der());
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        Arc::new(client),
    )
}

#[tokio::test]
async fn https_registry_is_reached_with_a_trusted_certificate() {
    let (acceptor, trusting) = certificate();
    let server = Registry::start_with(Some(acceptor)).await;
    assert!(server.url.starts_with("https://"));
    let mut config = RegistryConfig::new(&server.url);
    config.tls = Some(trusting);
    let registry = RegistryClient::new(config).unwrap();
    let id = registry.register("garden-value", GARDEN).await.unwrap();
    let schema = registry.schema_by_id(id).await.unwrap();
    assert_eq!(schema.name().unwrap().fullname(None), "garden.Reading");
}

#[tokio::test]
async fn https_registry_with_an_unknown_issuer_is_refused() {
    let (acceptor, _) = certificate();
    let server = Registry::start_with(Some(acceptor)).await;
    let mut config = RegistryConfig::new(&server.url);
    config.retries = 0;
    let result = RegistryClient::new(config)
        .unwrap()
        .register("garden-value", GARDEN)
        .await;
    match result {
        Err(RegistryError::Connection(message)) => {
            assert!(message.to_lowercase().contains("certificate"), "{message}")
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert_eq!(server.state.lock().unwrap().requests, 0);
}
