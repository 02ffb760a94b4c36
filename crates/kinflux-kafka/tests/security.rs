//! TLS and SASL on every connection (rskafka's and the group connection), against private
//! tansu brokers.
//!
//! tansu 0.6.0 parses `--cert`/`--key` but never wraps its listener in TLS (the acceptor it
//! builds is unused), so the TLS test puts a rustls terminator, configured with a CA made in
//! the test, in front of a real tansu that advertises the terminator's port.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use kinflux_kafka::{Consumer, SaslConfig, SaslMechanism, TlsConfig};
use kinflux_testkit::process::Tansu;
use kinflux_testkit::{free_port, kafka, unique};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rskafka::client::{
    ClientBuilder,
    partition::{Compression, UnknownTopicHandling},
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "kinflux test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "kinflux test client");
    let client = client.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// Accepts TLS on `listener`, requiring a client certificate signed by the test CA, and
/// forwards the plaintext to `127.0.0.1:backend`.
fn spawn_tls_terminator(pki: &Pki, listener: tokio::net::TcpListener, backend: u16) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_speaks_mutual_tls_on_fetch_and_group_connections() {
    init_tracing();
    let pki = pki();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = listener.local_addr().unwrap().port();
    let Some(tansu) = Tansu::start_advertising(free_port(), tls_port, &[]) else {
        return;
    };
    spawn_tls_terminator(&pki, listener, tansu.port());
    let ca_file = tansu.dir().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let cert_file = tansu.dir().join("client.pem");
    std::fs::write(&cert_file, &pki.client_cert_pem).unwrap();
    let key_file = tansu.dir().join("client.key");
    std::fs::write(&key_file, &pki.client_key_pem).unwrap();
    let mut tls = TlsConfig::with_ca_file(&ca_file);
    tls.cert_file = Some(cert_file);
    tls.key_file = Some(key_file);
    let brokers = format!("127.0.0.1:{tls_port}");

    // Produce over TLS too: the broker advertises the TLS port.
    let client = ClientBuilder::new(vec![brokers.clone()])
        .tls_config(tls.rustls_config().unwrap())
        .build()
        .await
        .unwrap();
    let topic = unique("tls");
    client
        .controller_client()
        .unwrap()
        .create_topic(&topic, 1, 1, 5_000)
        .await
        .unwrap();
    let records = (0..3)
        .map(|i| kafka::record(vec![i], 1_700_000_000_000))
        .collect();
    kafka::produce_with(&client, &topic, 0, records).await;

    // Without a client certificate the terminator refuses us, and connect() says so.
    let mut cfg = config(&brokers, &unique("g-tls"), &[&topic]);
    cfg.tls = Some(TlsConfig::with_ca_file(&ca_file));
    let refused = tokio::time::timeout(Duration::from_secs(20), Consumer::connect(cfg))
        .await
        .expect("fails fast");
    assert!(refused.is_err(), "connected without a client certificate");

    let mut cfg = config(&brokers, &unique("g-tls"), &[&topic]);
    cfg.tls = Some(tls);
    let mut c = Consumer::connect(cfg).await.unwrap();
    let seen = recv_until(&mut c, Duration::from_secs(30), |rs| rs.len() >= 3).await;
    assert_eq!(seen.len(), 3);
    c.commit_positions().await.unwrap();
    c.close().await.unwrap();
}

/// Creates `user` with SCRAM credentials through tansu's CLI (AlterUserScramCredentials).
fn create_scram_user(tansu: &Tansu, user: &str, password: &str, mechanism: &str) {
    let status = std::process::Command::new(tansu.bin())
        .args(["user", "create", "--broker"])
        .arg(format!("tcp://127.0.0.1:{}", tansu.port()))
        .args(["--mechanism", mechanism, user, password])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("tansu user create");
    assert!(status.success(), "tansu user create failed");
}

async fn consume_with_sasl(brokers: &str, sasl: SaslConfig) -> kinflux_kafka::Result<usize> {
    let client = ClientBuilder::new(vec![brokers.to_owned()])
        .sasl_config(sasl_rskafka(&sasl))
        .build()
        .await?;
    let topic = unique("sasl");
    client
        .controller_client()?
        .create_topic(&topic, 1, 1, 5_000)
        .await?;
    let pc = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await?;
    pc.produce(
        vec![kafka::record(b"x".to_vec(), 1_700_000_000_000)],
        Compression::NoCompression,
    )
    .await?;
    let mut cfg = config(brokers, &unique("g-sasl"), &[&topic]);
    cfg.sasl = Some(sasl);
    let password = cfg
        .sasl
        .as_ref()
        .map(|s| s.password.clone())
        .unwrap_or_default();
    let mut c = Consumer::connect(cfg).await?;
    assert!(
        !format!("{c:?}").contains(&password),
        "the password shows in Debug output"
    );
    let seen = recv_until(&mut c, Duration::from_secs(30), |rs| !rs.is_empty()).await;
    c.commit_positions().await?;
    c.close().await?;
    Ok(seen.len())
}

fn sasl_rskafka(s: &SaslConfig) -> rskafka::client::SaslConfig {
    let creds = rskafka::client::Credentials::new(s.username.clone(), s.password.clone());
    match s.mechanism {
        SaslMechanism::Plain => rskafka::client::SaslConfig::Plain(creds),
        SaslMechanism::ScramSha256 => rskafka::client::SaslConfig::ScramSha256(creds),
        _ => rskafka::client::SaslConfig::ScramSha512(creds),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_authenticates_with_sasl_scram_sha_256_and_512() {
    init_tracing();
    let Some(mut tansu) = Tansu::start(&[]) else {
        return;
    };
    create_scram_user(&tansu, "alice", "s3cret-256", "scram256");
    create_scram_user(&tansu, "bob", "s3cret-512", "scram512");
    tansu.restart_with(&["--authentication"]);
    let brokers = tansu.brokers();

    let n = consume_with_sasl(
        &brokers,
        SaslConfig::new(SaslMechanism::ScramSha256, "alice", "s3cret-256"),
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let n = consume_with_sasl(
        &brokers,
        SaslConfig::new(SaslMechanism::ScramSha512, "bob", "s3cret-512"),
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    // PLAIN is not tested: tansu 0.6.0 builds its SASL server (rsasl) without the `plain`
    // mechanism, so it refuses PLAIN whatever the password.

    // A wrong SCRAM password is refused on the group connection, and the error says so.
    let opts_err = kinflux_kafka::Consumer::connect({
        let mut c = config(&brokers, "g-never", &["t"]);
        c.sasl = Some(SaslConfig::new(
            SaslMechanism::ScramSha256,
            "alice",
            "wrong",
        ));
        c
    });
    let r = tokio::time::timeout(Duration::from_secs(20), opts_err)
        .await
        .expect("fails fast");
    let e = r.expect_err("wrong password must fail");
    assert!(
        !format!("{e:?}").contains("wrong"),
        "password leaked: {e:?}"
    );
    eprintln!("wrong password: {e}");
}
