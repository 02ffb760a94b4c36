//! Our own broker connection for the APIs that rskafka does not speak (the group protocol).
//!
//! One TCP (or TLS) stream per broker. Requests are framed and encoded with the message types
//! of the `kafka-protocol` crate; a reader task matches responses to requests by correlation
//! id, so several requests (a heartbeat and a commit) can be in flight at once. On connect we
//! negotiate versions with ApiVersions and authenticate with SASL when configured (the
//! exchange is in `sasl`); when the broker limits the session (KIP-368), the first request
//! after 85-95 % of it (at least 2 s before its end) authenticates again on the same
//! connection, holding the writer so that nothing else goes out in the middle.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI32, Ordering},
    },
    time::{Duration, SystemTime},
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
    time::Instant,
};
use tracing::{debug, trace};

use crate::{
    error::{Error, Result, code},
    sasl::{self, Sasl},
    security::{ConnectOptions, tls_refusal},
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

pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// The sending half of a connection; who holds it decides what goes out next.
pub(crate) type Writer = WriteHalf<Box<dyn Stream>>;

type Pending = HashMap<i32, oneshot::Sender<Bytes>>;

/// A connection to one broker.
pub(crate) struct Connection {
    broker: String,
    client_id: StrBytes,
    writer: tokio::sync::Mutex<Writer>,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
    /// Why the reader stopped, when a TLS alert says the broker refused us.
    refusal: Arc<Mutex<Option<String>>>,
    next_correlation: AtomicI32,
    versions: HashMap<i16, (i16, i16)>,
    reader: JoinHandle<()>,
    sasl: Option<Arc<Sasl>>,
    /// The SASL session the broker granted, when it limits it (KIP-368).
    session: Mutex<Option<Session>>,
}

/// When a SASL session began, when it must be renewed, and when the broker ends it.
#[derive(Debug, Clone, Copy)]
struct Session {
    started: Instant,
    reauthenticate_at: Instant,
    expires_at: Instant,
}

impl Session {
    /// Like the Java client, renew after 85-95 % of the lifetime (the jitter spreads the
    /// renewals of many connections); but leave at least 2 s, or half of a shorter session,
    /// for the renewal itself, which may ask for a token first, and for the request that
    /// triggers it to come. Never within a second of the start: Kafka refuses renewals
    /// less than a second apart. A session too short for that is not renewed; the
    /// connection is opened anew when it ends.
    fn new(lifetime: Duration) -> Self {
        let started = Instant::now();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = f64::from(nanos % 1000) / 10_000.0;
        let slack = lifetime
            .mul_f64(0.05 + jitter)
            .max(lifetime.min(Duration::from_secs(4)) / 2);
        let renew_after = lifetime.saturating_sub(slack).max(MIN_RENEWAL_INTERVAL);
        Session {
            started,
            reauthenticate_at: started + renew_after.min(lifetime),
            expires_at: started + lifetime,
        }
    }
}

/// Kafka refuses a re-authentication less than a second after the last one.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_secs(1);

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
    match tls_refusal(&source) {
        Some(message) => Error::Tls {
            broker: broker.to_owned(),
            message,
        },
        None => Error::Io {
            broker: broker.to_owned(),
            source,
        },
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
        // A token first: an endpoint that refuses us costs the broker no connection.
        let prepared = match &opts.sasl {
            Some(sasl) => Some(sasl.prepare(broker, None).await?),
            None => None,
        };
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
        let refusal: Arc<Mutex<Option<String>>> = Arc::default();
        let reader = tokio::spawn(read_loop(
            broker.to_owned(),
            read,
            Arc::clone(&pending),
            Arc::clone(&closed),
            Arc::clone(&refusal),
        ));
        let mut conn = Connection {
            broker: broker.to_owned(),
            client_id: StrBytes::from_string(opts.client_id.clone()),
            writer: tokio::sync::Mutex::new(write),
            pending,
            closed,
            refusal,
            next_correlation: AtomicI32::new(1),
            versions: HashMap::new(),
            reader,
            sasl: opts.sasl.clone(),
            session: Mutex::new(None),
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
        if let (Some(sasl), Some(prepared)) = (&opts.sasl, prepared) {
            let lifetime = {
                let mut w = conn.writer.lock().await;
                sasl::authenticate(&conn, &mut w, sasl, &prepared).await?
            };
            conn.renew_session(lifetime);
        }
        debug!(broker, "connection ready");
        Ok(conn)
    }

    /// The broker's address.
    pub(crate) fn broker(&self) -> &str {
        &self.broker
    }

    fn renew_session(&self, lifetime: Option<Duration>) {
        *lock(&self.session) = lifetime.map(Session::new);
    }

    /// KIP-368: authenticates again when the session is near its end. A session that ended
    /// already (an idle connection) is not renewed: the broker closes such a connection at
    /// its next request, so it counts as closed and the caller reconnects.
    async fn keep_session(&self) -> Result<()> {
        let (Some(sasl), Some(session)) = (&self.sasl, *lock(&self.session)) else {
            return Ok(());
        };
        let now = Instant::now();
        if now < session.reauthenticate_at {
            return Ok(());
        }
        if now >= session.expires_at {
            self.closed.store(true, Ordering::Release);
            return Err(Error::ConnectionClosed {
                broker: self.broker.clone(),
            });
        }
        let prepared = sasl.prepare(&self.broker, Some(session.started)).await?;
        let mut w = self.writer.lock().await;
        if lock(&self.session).is_some_and(|s| Instant::now() < s.reauthenticate_at) {
            return Ok(()); // another request renewed it meanwhile
        }
        match sasl::authenticate(self, &mut w, sasl, &prepared).await {
            Ok(lifetime) => {
                debug!(
                    broker = self.broker,
                    ?lifetime,
                    "re-authenticated (KIP-368)"
                );
                self.renew_session(lifetime);
                Ok(())
            }
            Err(e) => {
                // The broker closes a connection whose re-authentication failed.
                self.closed.store(true, Ordering::Release);
                Err(e)
            }
        }
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
        self.keep_session().await?;
        let out = self.frame(version, request)?;
        {
            let mut w = self.writer.lock().await;
            self.write(&mut w, &out.bytes).await?;
        }
        self.wait::<R>(version, out, timeout).await
    }

    /// [`send`](Self::send) through a writer the caller holds (the SASL exchange).
    pub(crate) async fn send_locked<R: Request>(
        &self,
        w: &mut Writer,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let out = self.frame(version, request)?;
        self.write(w, &out.bytes).await?;
        self.wait::<R>(version, out, timeout).await
    }

    /// Encodes a request and registers for its response.
    fn frame<R: Request>(&self, version: i16, request: &R) -> Result<Outgoing<'_>> {
        let api = R::NAME;
        if self.is_closed() {
            return Err(self.closed_error());
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
        trace!(api, version, correlation_id, "request framed");
        Ok(Outgoing {
            bytes: buf.freeze(),
            rx,
            guard: PendingGuard {
                pending: &self.pending,
                id: correlation_id,
            },
        })
    }

    async fn write(&self, w: &mut Writer, bytes: &[u8]) -> Result<()> {
        let written = async {
            w.write_all(bytes).await?;
            w.flush().await
        }
        .await;
        written.map_err(|e| {
            self.closed.store(true, Ordering::Release);
            io_err(&self.broker, e)
        })
    }

    async fn wait<R: Request>(
        &self,
        version: i16,
        out: Outgoing<'_>,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api = R::NAME;
        let Outgoing { rx, guard, .. } = out;
        let mut frame = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(_)) => return Err(self.closed_error()),
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

    /// Why requests fail on a closed connection: the broker's TLS refusal, if that closed
    /// it, else the plain fact.
    fn closed_error(&self) -> Error {
        match lock(&self.refusal).clone() {
            Some(message) => Error::Tls {
                broker: self.broker.clone(),
                message,
            },
            None => Error::ConnectionClosed {
                broker: self.broker.clone(),
            },
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A poisoned map only means another task panicked while holding it; the map itself
        // is still consistent (single insert/remove operations).
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A framed request, registered for its response.
struct Outgoing<'a> {
    bytes: Bytes,
    rx: oneshot::Receiver<Bytes>,
    guard: PendingGuard<'a>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Single assignments only: a poisoned lock holds a consistent value.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    refusal: Arc<Mutex<Option<String>>>,
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
            // Read into uninitialised capacity: a fetch response can be tens of MiB, and
            // its records are handed out as slices of this buffer, so it is never copied.
            let mut frame = BytesMut::with_capacity(len);
            while frame.len() < len {
                let want = len - frame.len();
                if read.read_buf(&mut (&mut frame).limit(want)).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
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
        debug!(broker, error = %e, "connection closed");
        *lock(&refusal) = tls_refusal(&e);
    }
    closed.store(true, Ordering::Release);
    // Dropping the senders wakes every waiting request with "connection closed".
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame that declares far more array elements than it carries is a decode error,
    /// not an allocation of gigabytes that aborts the process (found by
    /// fuzz/kafka_frames; the vendored kafka-protocol is patched for it).
    #[test]
    fn an_impossible_array_length_is_a_decode_error() {
        for version in [1_i16, 12] {
            let mut frame = BytesMut::new();
            frame.put_i32(7); // correlation id
            if version >= 9 {
                frame.put_u8(0); // response header v1: no tagged fields
                frame.put_i32(0); // throttle_time_ms
                frame.put_u8(0xff); // brokers: compact array, 2^31 - 2 elements ...
                frame.put_u8(0xff);
                frame.put_u8(0xff);
                frame.put_u8(0xff);
                frame.put_u8(0x07);
            } else {
                frame.put_i32(i32::MAX); // brokers: 2^31 - 1 elements ...
            }
            frame.put_slice(b"broker"); // ... and 6 bytes
            let mut frame = frame.freeze();
            let decoded = decode_response::<MetadataRequest>(&mut frame, version);
            let e = decoded.expect_err("the frame is far too short for its array");
            assert!(e.to_string().contains("exceeds"), "v{version}: {e}");
        }
    }

    #[test]
    fn sessions_are_renewed_before_their_end_with_room_for_the_renewal() {
        for (lifetime, earliest, latest) in [
            // Long sessions: 85-95 %, as the Java client.
            (3600, 3060.0, 3420.0),
            // Short ones: at least 2 s before the end, or at half of a very short one.
            (8, 6.0, 6.0),
            (2, 1.0, 1.0),
            // Too short to renew at least a second after the start: renewed at its end,
            // which means a new connection.
            (1, 1.0, 1.0),
        ] {
            let before = Instant::now();
            let s = Session::new(Duration::from_secs(lifetime));
            let at = (s.reauthenticate_at - before).as_secs_f64();
            assert!(
                (earliest - 0.01..=latest + 0.01).contains(&at),
                "{lifetime} s: {at}"
            );
            let ends = (s.expires_at - before).as_secs_f64();
            assert!(
                (ends - lifetime as f64).abs() < 0.01,
                "{lifetime} s: ends {ends}"
            );
        }
    }
}
