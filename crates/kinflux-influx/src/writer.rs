//! The writer: requests, classification, retries, splitting.

mod bucket;
mod route;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kinflux_backoff::{Backoff, RetryLog, Stop, parse_retry_after};

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, Uri};
use http_body_util::Full;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::endpoint::{authorization, quote_identifier, write_path};
use crate::rejection::{self, Refusal};
use crate::settle::{Chunk, Origin, Settlement, push_front_all};
use crate::stats::WriterStats;
use crate::transport::{self, Answer, HttpClient, read_answer};
use crate::{Api, Attempt, LineBatch, RetryCause, WriteError, WriteOutcome, WriterConfig};

/// Writes line-protocol batches to InfluxDB.
///
/// Cheap to clone: clones share the connection pool, the in-flight limit, the counters
/// and the shutdown signal. Safe to call from many tasks at once.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    config: WriterConfig,
    client: HttpClient,
    write_uri: Uri,
    ping_uri: Uri,
    query_uri: Uri,
    /// Marked sensitive, so hyper never prints it.
    authorization: Option<HeaderValue>,
    /// Shared with the writers [`Writer::routed`] makes.
    permits: Arc<Semaphore>,
    /// Shared with the writers [`Writer::routed`] makes.
    stats: Arc<WriterStats>,
    /// One retry log for every write of this writer and its clones: an outage is logged
    /// as one streak, however many writes wait it out.
    retry_log: RetryLog,
    shutdown: CancellationToken,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("write_uri", &self.inner.write_uri)
            .field("api", &self.inner.config.api)
            .field("max_in_flight", &self.inner.config.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// InfluxDB's answer to [`Writer::ping`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ping {
    /// The `X-Influxdb-Version` header, when sent.
    pub version: Option<String>,
    /// Round-trip time.
    pub latency: Duration,
}

/// Attempts and time spent on one chunk, against the retry policy.
struct Tries<'a> {
    writer: &'a Writer,
    backoff: Backoff,
}

impl<'a> Tries<'a> {
    fn new(writer: &'a Writer) -> Self {
        let inner = &writer.inner;
        let config = inner.config.retry.backoff_config();
        Tries {
            writer,
            backoff: Backoff::with_log(config, "InfluxDB write", inner.retry_log.clone()),
        }
    }

    /// Waits before the next attempt, or says why not to make one.
    async fn wait(
        &mut self,
        cause: RetryCause,
        retry_after: Option<Duration>,
    ) -> Result<(), WriteError> {
        let inner = &self.writer.inner;
        let wait = match self.backoff.retry_after(retry_after).next_delay(cause) {
            Ok(wait) => wait,
            Err(Stop::GaveUp { attempts, elapsed }) => {
                return Err(WriteError::GaveUp {
                    attempts,
                    elapsed,
                    last: cause,
                });
            }
            Err(_) => return Err(WriteError::Cancelled),
        };
        inner.stats.retry(cause);
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = inner.shutdown.cancelled() => Err(WriteError::Cancelled),
        }
    }

    /// The chunk got its answer.
    fn answered(&mut self) {
        self.backoff.succeeded();
    }
}

impl Writer {
    /// Builds a writer (and its connection pool). Needs no running server.
    pub fn new(config: WriterConfig) -> Result<Self, WriteError> {
        Self::with_shutdown(config, CancellationToken::new())
    }

    /// Builds a writer that stops on `shutdown`: cancelling it ends every wait (backoff,
    /// a free request slot) and request of this writer at once with
    /// [`WriteError::Cancelled`].
    pub fn with_shutdown(
        config: WriterConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, WriteError> {
        let base = config.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(WriteError::Config(format!(
                "URL must start with http:// or https://: {base}"
            )));
        }
        let uri = |path_and_query: String| -> Result<Uri, WriteError> {
            Uri::try_from(format!("{base}{path_and_query}"))
                .map_err(|e| WriteError::Config(format!("bad URL {base}: {e}")))
        };
        let write_uri = uri(write_path(&config.api, config.precision))?;
        let ping_uri = uri("/ping".to_owned())?;
        let query_uri = uri("/query".to_owned())?;
        let authorization = authorization(&config.api)?;
        let client = transport::client(&config)?;
        Ok(Writer {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
                config,
                client,
                write_uri,
                ping_uri,
                query_uri,
                authorization,
                stats: Arc::default(),
                retry_log: RetryLog::new(),
                shutdown,
            }),
        })
    }

    /// The shutdown signal of this writer (cancel it to stop all writes).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The live counters.
    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// The configuration in use.
    pub fn config(&self) -> &WriterConfig {
        &self.inner.config
    }

    /// Writes a batch: splits it at `max_body_bytes`, retries what can be retried, halves
    /// a part the server finds too large, creates a missing v1 database when configured,
    /// and reports the lines InfluxDB refused by index.
    ///
    /// The retry limits of [`crate::RetryPolicy`] apply to each request-sized part of the
    /// batch. On an error, parts of the batch may already be stored; writing the whole
    /// batch again is safe (a point is identified by series key and time).
    pub async fn write(&self, batch: LineBatch) -> Result<WriteOutcome, WriteError> {
        let lines = batch.len();
        if lines == 0 {
            return Ok(WriteOutcome::Written { lines });
        }
        let mut queue: VecDeque<Chunk> = batch
            .split_by_size(self.inner.config.max_body_bytes)
            .into_iter()
            .map(|(first, batch)| Chunk {
                batch,
                origin: Origin::Offset(first),
                resend_rounds: 0,
            })
            .collect();
        let mut settlement = Settlement::default();
        let mut database_created = false;
        while let Some(chunk) = queue.pop_front() {
            let mut tries = Tries::new(self);
            // Compressed once; retries send the same bytes.
            let body = self.request_body(&chunk.batch).await;
            loop {
                match self.send_write(&chunk.batch, body.clone()).await {
                    Attempt::Written => break,
                    Attempt::Partial {
                        rejected,
                        unattributed,
                        resend_rest,
                    } => {
                        tracing::debug!(
                            refused = rejected.len(),
                            unattributed = unattributed.as_ref().map_or(0, |d| d.count),
                            resend_rest,
                            "InfluxDB refused lines of a write"
                        );
                        let rest = settlement.partial(&chunk, &rejected, unattributed, resend_rest);
                        push_front_all(&mut queue, rest);
                        break;
                    }
                    Attempt::TooLarge { message } => {
                        push_front_all(&mut queue, settlement.too_large(&chunk, &message));
                        break;
                    }
                    Attempt::Retryable { cause, retry_after } => {
                        tries.wait(cause, retry_after).await?;
                    }
                    Attempt::Permanent(WriteError::NotFound { message })
                        if self.can_create_database() && !database_created =>
                    {
                        tracing::info!(%message, "creating the missing InfluxDB database or bucket");
                        database_created = self.create_database_for_write(&mut tries).await?;
                    }
                    Attempt::Permanent(e) => {
                        tracing::warn!(error = %e, "InfluxDB refused a write");
                        return Err(e);
                    }
                    Attempt::Cancelled => return Err(WriteError::Cancelled),
                }
            }
            tries.answered();
        }
        Ok(settlement.finish(lines, &self.inner.stats))
    }

    /// One `CREATE DATABASE` inside a write: `Ok(true)` once created, `Ok(false)` after a
    /// retryable failure (waited for), an error when it cannot be done.
    async fn create_database_for_write(&self, tries: &mut Tries<'_>) -> Result<bool, WriteError> {
        match self.create_database_once().await {
            Attempt::Written => Ok(true),
            Attempt::Retryable { cause, retry_after } => {
                tries.wait(cause, retry_after).await?;
                Ok(false)
            }
            other => Err(attempt_error(other)),
        }
    }

    /// Sends `batch` in one request, as it is, and classifies the answer. No retry, no
    /// splitting: [`Writer::write`] does those.
    pub async fn write_once(&self, batch: &LineBatch) -> Attempt {
        let body = self.request_body(batch).await;
        self.send_write(batch, body).await
    }

    /// The body as sent: gzipped when configured. Large bodies are compressed on the
    /// blocking pool, so a few milliseconds of deflate do not stall other tasks.
    async fn request_body(&self, batch: &LineBatch) -> Bytes {
        const INLINE_GZIP_MAX: usize = 64 * 1024;
        let Some(level) = self.inner.config.gzip_level else {
            return batch.body().clone();
        };
        if batch.byte_len() <= INLINE_GZIP_MAX {
            return crate::gzip_body(batch.body(), level);
        }
        let body = batch.body().clone();
        let packed = tokio::task::spawn_blocking(move || crate::gzip_body(&body, level)).await;
        // A failed blocking task (runtime shutting down) falls back to compressing here.
        packed.unwrap_or_else(|_| crate::gzip_body(batch.body(), level))
    }

    /// Sends a prepared body for `batch` and classifies the answer.
    async fn send_write(&self, batch: &LineBatch, body: Bytes) -> Attempt {
        self.inner.stats.request(batch.byte_len(), body.len());
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.inner.write_uri.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(
                USER_AGENT,
                concat!("kinflux-influx/", env!("CARGO_PKG_VERSION")),
            );
        if self.inner.config.gzip_level.is_some() {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        match self.send(request, body).await {
            Ok(answer) => self.classify(&answer, batch),
            Err(attempt) => attempt,
        }
    }

    fn classify(&self, answer: &Answer, batch: &LineBatch) -> Attempt {
        let (status, headers) = (answer.status, &answer.headers);
        if status.is_success() {
            return Attempt::Written;
        }
        let retry_after = || {
            headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        };
        let message = || rejection::error_message(&answer.body);
        match status.as_u16() {
            401 | 403 => Attempt::Permanent(WriteError::Unauthorized {
                status: answer.status.as_u16(),
                message: message(),
            }),
            404 => Attempt::Permanent(WriteError::NotFound { message: message() }),
            413 => Attempt::TooLarge { message: message() },
            429 => Attempt::Retryable {
                cause: RetryCause::Throttled,
                retry_after: retry_after(),
            },
            code @ (500 | 502 | 503 | 504) => Attempt::Retryable {
                cause: RetryCause::ServerError(code),
                retry_after: retry_after(),
            },
            code @ (400 | 422) => match self.refusal(&answer.body, batch) {
                Some(Refusal {
                    rejected,
                    unattributed,
                    resend_rest,
                }) => Attempt::Partial {
                    // A cut answer may not name every refused line: send the rest again.
                    resend_rest: resend_rest || (answer.truncated && !rejected.is_empty()),
                    rejected,
                    unattributed,
                },
                None => Attempt::Permanent(WriteError::Refused {
                    status: code,
                    message: message(),
                }),
            },
            code => Attempt::Permanent(WriteError::Refused {
                status: code,
                message: message(),
            }),
        }
    }

    fn refusal(&self, answer: &[u8], batch: &LineBatch) -> Option<Refusal> {
        match &self.inner.config.api {
            Api::V1 { .. } => rejection::v1(&rejection::error_message(answer), batch),
            Api::V2 { .. } => rejection::v2(answer, batch),
            Api::V3 { .. } => rejection::v3(answer, batch),
        }
    }

    /// Sends one request within the in-flight limit, the request timeout and the
    /// shutdown signal; returns the status, headers and body of the answer.
    async fn send(
        &self,
        mut request: http::request::Builder,
        body: Bytes,
    ) -> Result<Answer, Attempt> {
        let inner = &self.inner;
        if let Some(auth) = &inner.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let request = request.body(Full::new(body)).map_err(|e| {
            Attempt::Permanent(WriteError::Config(format!("cannot build request: {e}")))
        })?;
        let _permit = tokio::select! {
            permit = inner.permits.acquire() => permit.map_err(|_| Attempt::Cancelled)?,
            () = inner.shutdown.cancelled() => return Err(Attempt::Cancelled),
        };
        let started = Instant::now();
        let exchange = async {
            let response = inner.client.request(request).await.map_err(|e| {
                tracing::debug!(error = %e, "InfluxDB request failed");
                RetryCause::Connection
            })?;
            let (parts, body) = response.into_parts();
            let (body, truncated) = read_answer(body).await?;
            Ok::<_, RetryCause>(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
                truncated,
            })
        };
        let result = tokio::select! {
            result = tokio::time::timeout(inner.config.request_timeout, exchange) => result,
            () = inner.shutdown.cancelled() => return Err(Attempt::Cancelled),
        };
        inner.stats.latency(started.elapsed());
        match result {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(cause)) => Err(Attempt::Retryable {
                cause,
                retry_after: None,
            }),
            Err(_) => Err(Attempt::Retryable {
                cause: RetryCause::Timeout,
                retry_after: None,
            }),
        }
    }

    /// Checks that the server answers `/ping`.
    pub async fn ping(&self) -> Result<Ping, WriteError> {
        let started = Instant::now();
        let request = Request::builder()
            .method(Method::GET)
            .uri(self.inner.ping_uri.clone());
        let answer = self
            .send(request, Bytes::new())
            .await
            .map_err(attempt_error)?;
        if !answer.status.is_success() {
            return Err(
                match self.classify(&answer, &LineBatch::new(Bytes::new())) {
                    Attempt::Permanent(e) => e,
                    _ => WriteError::Refused {
                        status: answer.status.as_u16(),
                        message: rejection::error_message(&answer.body),
                    },
                },
            );
        }
        Ok(Ping {
            version: answer
                .headers
                .get("x-influxdb-version")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            latency: started.elapsed(),
        })
    }

    fn can_create_database(&self) -> bool {
        self.inner.config.create_database
            && matches!(self.inner.config.api, Api::V1 { .. } | Api::V2 { .. })
    }

    /// v1: creates the database if it does not exist (`CREATE DATABASE` is idempotent).
    /// v2: creates the bucket in the org if it does not exist, with
    /// [`WriterConfig::bucket_retention`].
    ///
    /// Retries what a write would retry (no answer, 5xx, 429), under the same
    /// [`crate::RetryPolicy`] and retry log: a bridge that starts while InfluxDB is down
    /// or its link drops a connection waits for it instead of exiting.
    pub async fn create_database(&self) -> Result<(), WriteError> {
        let mut tries = Tries::new(self);
        loop {
            match self.create_database_once().await {
                Attempt::Written => {
                    tries.answered();
                    return Ok(());
                }
                Attempt::Retryable { cause, retry_after } => {
                    tries.wait(cause, retry_after).await?;
                }
                other => return Err(attempt_error(other)),
            }
        }
    }

    async fn create_database_once(&self) -> Attempt {
        let database = match &self.inner.config.api {
            Api::V1 { database, .. } => database,
            Api::V2 { .. } => return self.create_bucket_once().await,
            _ => return Attempt::Permanent(WriteError::Unsupported("create_database")),
        };
        let statement = format!("CREATE DATABASE {}", quote_identifier(database));
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &statement)
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.inner.query_uri.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        let answer = match self.send(request, Bytes::from(form)).await {
            Ok(answer) => answer,
            Err(attempt) => return attempt,
        };
        if !answer.status.is_success() {
            return self.classify(&answer, &LineBatch::new(Bytes::new()));
        }
        // 200 with `{"results":[{"statement_id":0,"error":"..."}]}` when the statement failed.
        let error = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| {
                v.pointer("/results/0/error")
                    .and_then(|e| e.as_str())
                    .map(str::to_owned)
            });
        match error {
            None => Attempt::Written,
            Some(message) => Attempt::Permanent(WriteError::Refused {
                status: answer.status.as_u16(),
                message,
            }),
        }
    }
}

/// The error for an answer outside a write (ping, `CREATE DATABASE`): a retryable failure
/// becomes `GaveUp` after its one attempt.
fn attempt_error(attempt: Attempt) -> WriteError {
    match attempt {
        Attempt::Retryable { cause, .. } => WriteError::GaveUp {
            attempts: 1,
            elapsed: Duration::ZERO,
            last: cause,
        },
        Attempt::Permanent(e) => e,
        Attempt::Cancelled => WriteError::Cancelled,
        other => WriteError::Refused {
            status: 0,
            message: format!("unexpected answer: {other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn debug_never_shows_credentials() {
        let config =
            WriterConfig::v1("http://127.0.0.1:1", "db").with_credentials("admin", "pa55word");
        let writer = Writer::new(config).unwrap();
        let shown = format!("{writer:?} {:?}", writer.config());
        assert!(!shown.contains("pa55word"), "{shown}");
        assert!(shown.contains("admin"));
        let header = authorization(&writer.config().api).unwrap().unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("YWRtaW4"));

        let v2 = Writer::new(WriterConfig::v2(
            "http://h",
            "o",
            "b",
            Secret::new("tok-123"),
        ))
        .unwrap();
        assert!(!format!("{v2:?}").contains("tok-123"));
    }

    #[test]
    fn bad_urls_are_config_errors() {
        assert!(matches!(
            Writer::new(WriterConfig::v1("localhost:8086", "db")),
            Err(WriteError::Config(_))
        ));
    }

    #[test]
    fn writer_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Writer>();
    }
}
