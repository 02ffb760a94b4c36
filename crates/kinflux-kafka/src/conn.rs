//! Our own broker connection for the APIs that rskafka does not speak (the group protocol).
//!
//! One TCP (or TLS) stream per broker. Requests are framed and encoded with the message types
//! of the `kafka-protocol` crate; a reader task matches responses to requests by correlation
//! id, so several requests (a heartbeat and a commit) can be in flight at once. On connect we
//! negotiate versions with ApiVersions and authenticate with SASL when configured.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI32, Ordering},
    },
    time::Duration,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatResponse, FindCoordinatorRequest, FindCoordinatorResponse,
        HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
        LeaveGroupRequest, LeaveGroupResponse, MetadataRequest, MetadataResponse,
        OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
        RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
        SaslHandshakeRequest, SaslHandshakeResponse, SyncGroupRequest, SyncGroupResponse,
    },
    protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};
use tracing::{debug, trace};

use crate::{
    config::SaslConfig,
    error::{Error, Result, code},
    security::ConnectOptions,
};

/// Largest response frame we accept (protects against garbage lengths).
const MAX_FRAME: usize = 256 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request we send (kafka-protocol's own `Request` trait needs its `broker` feature).
pub(crate) trait Request: Encodable + HeaderVersion + Message {
    /// The API key.
    const KEY: i16;
    /// The API name, for errors and logs.
    const NAME: &'static str;
    /// The matching response.
    type Response: Decodable + HeaderVersion;
}

macro_rules! request {
    ($($req:ty => $resp:ty, $key:ident;)*) => {$(
        impl Request for $req {
            const KEY: i16 = ApiKey::$key as i16;
            const NAME: &'static str = stringify!($key);
            type Response = $resp;
        }
    )*};
}

request! {
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    FindCoordinatorRequest => FindCoordinatorResponse, FindCoordinator;
    JoinGroupRequest => JoinGroupResponse, JoinGroup;
    SyncGroupRequest => SyncGroupResponse, SyncGroup;
    HeartbeatRequest => HeartbeatResponse, Heartbeat;
    LeaveGroupRequest => LeaveGroupResponse, LeaveGroup;
    OffsetCommitRequest => OffsetCommitResponse, OffsetCommit;
    OffsetFetchRequest => OffsetFetchResponse, OffsetFetch;
    ConsumerGroupHeartbeatRequest => ConsumerGroupHeartbeatResponse, ConsumerGroupHeartbeat;
    MetadataRequest => MetadataResponse, Metadata;
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

type Pending = HashMap<i32, oneshot::Sender<Bytes>>;

/// A connection to one broker.
pub(crate) struct Connection {
    broker: String,
    client_id: StrBytes,
    writer: tokio::sync::Mutex<WriteHalf<Box<dyn Stream>>>,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
    next_correlation: AtomicI32,
    versions: HashMap<i16, (i16, i16)>,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn io_err(broker: &str, source: std::io::Error) -> Error {
    Error::Io {
        broker: broker.to_owned(),
        source,
    }
}

fn codec_err(api: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Codec {
        api,
        message: e.to_string(),
    }
}

impl Connection {
    /// Connects, negotiates API versions and authenticates.
    pub(crate) async fn connect(broker: &str, opts: &ConnectOptions) -> Result<Self> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(broker))
            .await
            .map_err(|_| Error::Timeout {
                what: "connect",
                after: CONNECT_TIMEOUT,
            })?
            .map_err(|e| io_err(broker, e))?;
        tcp.set_nodelay(true).map_err(|e| io_err(broker, e))?;
        let stream: Box<dyn Stream> = match &opts.tls {
            Some(tls) => {
                let host = broker
                    .rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or(broker)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let name = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| Error::Config(format!("TLS server name of {broker}: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
                let tls_stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| io_err(broker, e))?;
                Box::new(tls_stream)
            }
            None => Box::new(tcp),
        };
        let (read, write) = tokio::io::split(stream);
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_loop(
            broker.to_owned(),
            read,
            Arc::clone(&pending),
            Arc::clone(&closed),
        ));
        let mut conn = Connection {
            broker: broker.to_owned(),
            client_id: StrBytes::from_string(opts.client_id.clone()),
            writer: tokio::sync::Mutex::new(write),
            pending,
            closed,
            next_correlation: AtomicI32::new(1),
            versions: HashMap::new(),
            reader,
        };
        // ApiVersions v0 is understood by every broker.
        let resp = conn
            .send(0, &ApiVersionsRequest::default(), CONNECT_TIMEOUT)
            .await?;
        if resp.error_code != code::NONE {
            return Err(Error::broker("ApiVersions", resp.error_code, None));
        }
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(sasl) = &opts.sasl {
            conn.authenticate(sasl).await?;
        }
        debug!(broker, "group connection ready");
        Ok(conn)
    }

    /// Whether the connection is known to be closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The highest version of `R` that both sides speak, capped at `cap`.
    pub(crate) fn version<R: Request>(&self, cap: i16) -> Result<i16> {
        let (bmin, bmax) =
            self.versions
                .get(&R::KEY)
                .copied()
                .ok_or_else(|| Error::UnsupportedApi {
                    broker: self.broker.clone(),
                    api: R::NAME,
                })?;
        let ours = <R as Message>::VERSIONS;
        let max = bmax.min(ours.max).min(cap);
        let min = bmin.max(ours.min);
        if max < min {
            return Err(Error::UnsupportedApi {
                broker: self.broker.clone(),
                api: R::NAME,
            });
        }
        Ok(max)
    }

    /// Sends one request in the given version and waits for its response.
    pub(crate) async fn send<R: Request>(
        &self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = R::NAME;
        if self.is_closed() {
            return Err(Error::ConnectionClosed {
                broker: self.broker.clone(),
            });
        }
        let correlation_id = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0); // length, patched below
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| codec_err(api, e))?;
        request
            .encode(&mut buf, version)
            .map_err(|e| codec_err(api, e))?;
        let len = i32::try_from(buf.len() - 4).map_err(|e| codec_err(api, e))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());

        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(correlation_id, tx);
        let guard = PendingGuard {
            pending: &self.pending,
            id: correlation_id,
        };
        {
            let mut w = self.writer.lock().await;
            let written = async {
                w.write_all(&buf).await?;
                w.flush().await
            }
            .await;
            if let Err(e) = written {
                self.closed.store(true, Ordering::Release);
                return Err(io_err(&self.broker, e));
            }
        }
        trace!(api, version, correlation_id, "request sent");
        let mut frame = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(_)) => {
                return Err(Error::ConnectionClosed {
                    broker: self.broker.clone(),
                });
            }
            Err(_) => {
                drop(guard);
                return Err(Error::Timeout {
                    what: api,
                    after: timeout,
                });
            }
        };
        std::mem::forget(guard);
        decode_response::<R>(&mut frame, version)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A poisoned map only means another task panicked while holding it; the map itself
        // is still consistent (single insert/remove operations).
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn authenticate(&self, sasl: &SaslConfig) -> Result<()> {
        let auth_err = |message: String| Error::Authentication {
            broker: self.broker.clone(),
            message,
        };
        let hv = self.version::<SaslHandshakeRequest>(1)?;
        let resp = self
            .send(
                hv,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(sasl.mechanism.name())),
                CONNECT_TIMEOUT,
            )
            .await?;
        if resp.error_code != code::NONE {
            return Err(auth_err(format!(
                "mechanism {} not enabled (broker offers {:?})",
                sasl.mechanism.name(),
                resp.mechanisms
                    .iter()
                    .map(|m| m.as_str().to_owned())
                    .collect::<Vec<_>>()
            )));
        }
        let av = self.version::<SaslAuthenticateRequest>(2)?;
        let config = rsasl::config::SASLConfig::with_credentials(
            None,
            sasl.username.clone(),
            sasl.password.clone(),
        )
        .map_err(|e| auth_err(e.to_string()))?;
        let mech = rsasl::mechname::Mechname::parse(sasl.mechanism.name().as_bytes())
            .map_err(|e| auth_err(e.to_string()))?;
        let client = rsasl::prelude::SASLClient::new(config);
        let mut session = client
            .start_suggested(&[mech])
            .map_err(|e| auth_err(e.to_string()))?;
        let mut received: Option<Bytes> = None;
        loop {
            let mut out = Vec::new();
            let state = session
                .step(received.as_deref(), &mut out)
                .map_err(|e| auth_err(e.to_string()))?;
            if state.has_sent_message() {
                let resp = self
                    .send(
                        av,
                        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out)),
                        CONNECT_TIMEOUT,
                    )
                    .await?;
                if resp.error_code != code::NONE {
                    return Err(auth_err(
                        resp.error_message
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| code::name(resp.error_code).to_owned()),
                    ));
                }
                received = Some(resp.auth_bytes);
            }
            if state.is_finished() {
                return Ok(());
            }
        }
    }
}

/// Removes a pending request when its caller gave up before the response arrived.
struct PendingGuard<'a> {
    pending: &'a Mutex<Pending>,
    id: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The payload length a frame's 4-byte prefix announces, when it is one we accept (room
/// for a correlation id, and no garbage-sized allocation).
pub(crate) fn frame_len(len: i32) -> Option<usize> {
    usize::try_from(len)
        .ok()
        .filter(|l| (4..=MAX_FRAME).contains(l))
}

/// The correlation id that opens a response frame of at least [`frame_len`]'s 4 bytes.
pub(crate) fn correlation_id(frame: &[u8]) -> i32 {
    let mut head = frame.get(..4).unwrap_or(&[0; 4]);
    head.get_i32()
}

/// Decodes the response header and body of `R`'s answer at `version`.
pub(crate) fn decode_response<R: Request>(frame: &mut Bytes, version: i16) -> Result<R::Response> {
    let _header = ResponseHeader::decode(
        frame,
        <R::Response as HeaderVersion>::header_version(version),
    )
    .map_err(|e| codec_err(R::NAME, e))?;
    R::Response::decode(frame, version).map_err(|e| codec_err(R::NAME, e))
}

async fn read_loop(
    broker: String,
    mut read: ReadHalf<Box<dyn Stream>>,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
) {
    let result: std::io::Result<()> = async {
        loop {
            let len = read.read_i32().await?;
            let len = frame_len(len).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad frame length {len}"),
                )
            })?;
            let mut frame = BytesMut::zeroed(len);
            read.read_exact(&mut frame).await?;
            let mut frame = frame.freeze();
            let correlation_id = correlation_id(&frame);
            let tx = pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&correlation_id);
            match tx {
                Some(tx) => {
                    // The header is decoded by the caller, who knows its version.
                    let _ = tx.send(std::mem::take(&mut frame));
                }
                None => trace!(correlation_id, "response to a cancelled request"),
            }
        }
    }
    .await;
    if let Err(e) = result {
        debug!(broker, error = %e, "group connection closed");
    }
    closed.store(true, Ordering::Release);
    // Dropping the senders wakes every waiting request with "connection closed".
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}
