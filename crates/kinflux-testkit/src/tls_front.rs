//! A TLS front for a plain-HTTP server (the real schema registry): a CA generated for the
//! test signs a certificate for 127.0.0.1 and localhost; the front accepts TLS on a port
//! of its own and copies the plaintext to and from the server behind it. It can be
//! stopped (its port refuses connections, open ones are cut) and started again on the
//! same port: the server going away and coming back.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// A running (or stopped) TLS front. Stops when dropped.
pub struct TlsFront {
    /// `127.0.0.1:PORT` of the front.
    pub addr: String,
    /// The PEM file of the CA that signed the front's certificate.
    pub ca_file: PathBuf,
    upstream: String,
    acceptor: TlsAcceptor,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl std::fmt::Debug for TlsFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFront")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl TlsFront {
    /// Starts a front for `upstream` (`host:port`, plain TCP) on a free port.
    ///
    /// # Panics
    /// When the certificates cannot be made or no port can be bound.
    pub async fn start(upstream: &str) -> TlsFront {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "kinflux test registry CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a CA key"))
            .expect("a self-signed CA");
        let key = KeyPair::generate().expect("a server key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server parameters")
            .signed_by(&key, &ca)
            .expect("a server certificate");
        let dir = std::env::temp_dir().join(crate::unique("kinflux_tls_front"));
        std::fs::create_dir_all(&dir).expect("a directory for the CA file");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("the CA file");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("the server certificate");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound port").to_string();
        let front = TlsFront {
            addr,
            ca_file,
            upstream: upstream.to_owned(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        front.serve(listener);
        front
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting and cuts every open connection: the port refuses connections.
    pub fn stop(&self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
    }

    /// Starts again on the same port after [`TlsFront::stop`].
    ///
    /// # Panics
    /// When the port cannot be bound again.
    pub async fn resume(&self) {
        let listener = TcpListener::bind(&self.addr)
            .await
            .expect("the same port again");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let (acceptor, upstream, tasks) = (
            self.acceptor.clone(),
            self.upstream.clone(),
            self.tasks.clone(),
        );
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                let connection = tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
                tasks
                    .lock()
                    .expect("tasks lock")
                    .push(connection.abort_handle());
            }
        });
        self.tasks
            .lock()
            .expect("tasks lock")
            .push(accept.abort_handle());
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop();
    }
}
