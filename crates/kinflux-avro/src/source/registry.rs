//! A client of the Confluent Schema Registry REST API, on hyper.
//!
//! Endpoints and error bodies follow Confluent's API reference
//! (<https://docs.confluent.io/platform/current/schema-registry/develop/api.html>):
//! `GET /schemas/ids/{id}`, `GET /subjects/{subject}/versions/latest`, `GET /subjects`, and
//! `POST /subjects/{subject}/versions`; errors come as
//! `{"error_code": 40403, "message": "Schema not found"}`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kinflux_backoff::{Backoff, BackoffConfig, RetryLog, parse_retry_after};
use serde::Deserialize;

use super::{RegistryError, SchemaSource};
use crate::SchemaError;

/// The media type of the registry's v1 API.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The longest ceiling of a wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = hyper_util::client::legacy::connect::HttpConnector;

/// How to reach the schema registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The base URL, such as `http://registry:8081` (`https://` needs the `tls` feature).
    pub url: String,
    /// Credentials, if the registry wants them.
    pub auth: Option<RegistryAuth>,
    /// The limit for one request, connection included. Default 10 s.
    pub timeout: Duration,
    /// How many times a request that failed with a 5xx, a 429, a timeout or a
    /// connection error is tried again. Default 3.
    pub retries: u32,
    /// The ceiling of the wait before the first retry; it doubles for each next one, up
    /// to 10 s. Each wait is drawn between zero and its ceiling (full jitter), unless the
    /// registry said how long in `Retry-After`. Default 100 ms.
    pub backoff: Duration,
    /// The TLS configuration for `https://` (own CA, client certificate). Default: the
    /// webpki roots with the ring provider.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl RegistryConfig {
    /// The defaults for the registry at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            url: url.into(),
            auth: None,
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(100),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// Credentials for the schema registry. `Debug` never shows the secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum RegistryAuth {
    /// HTTP basic authentication (Confluent Cloud: API key and secret).
    Basic {
        /// The user name or API key.
        username: String,
        /// The password or API secret.
        password: String,
    },
    /// A bearer token (OAuth).
    Bearer(String),
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            RegistryAuth::Bearer(_) => f.debug_tuple("Bearer").field(&"<redacted>").finish(),
        }
    }
}

impl RegistryAuth {
    fn header(&self) -> Result<HeaderValue, RegistryError> {
        let value = match self {
            RegistryAuth::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ),
            RegistryAuth::Bearer(token) => format!("Bearer {token}"),
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| RegistryError::InvalidUrl {
            url: String::new(),
            reason: "credentials contain characters not allowed in a header".into(),
        })?;
        // Keeps the value out of hyper's and http's debug output.
        header.set_sensitive(true);
        Ok(header)
    }
}

/// A schema as registered under a subject.
#[derive(Debug, Clone)]
pub struct RegisteredSchema {
    /// The subject.
    pub subject: String,
    /// The global schema id (the one in the Confluent framing).
    pub id: u32,
    /// The version under the subject.
    pub version: u32,
    /// The parsed schema.
    pub schema: Arc<Schema>,
}

/// A Confluent Schema Registry client with a cache by id (a schema under an id never
/// changes). Implements [`SchemaSource`].
pub struct RegistryClient {
    base: String,
    auth: Option<HeaderValue>,
    timeout: Duration,
    /// The retry policy, shared by the calls.
    retry: Arc<BackoffConfig>,
    /// One retry log for all requests of this client: an outage is one streak.
    retry_log: RetryLog,
    http: Client<Connector, Full<Bytes>>,
    by_id: RwLock<HashMap<u32, Arc<Schema>>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<super::references::Reference>,
}

#[derive(Deserialize)]
pub(super) struct SubjectVersionBody {
    subject: String,
    id: u32,
    version: u32,
    pub(super) schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    pub(super) references: Vec<super::references::Reference>,
}

#[derive(Deserialize)]
pub(super) struct IdBody {
    pub(super) id: u32,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

impl RegistryClient {
    /// A client for the registry `config` names. No request is made yet.
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let base = config.url.trim_end_matches('/').to_owned();
        let uri: http::Uri =
            base.parse()
                .map_err(|e: http::uri::InvalidUri| RegistryError::InvalidUrl {
                    url: base.clone(),
                    reason: e.to_string(),
                })?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            // Never echo credentials back into errors or logs.
            return Err(RegistryError::InvalidUrl {
                url: "<URL with credentials, redacted>".into(),
                reason: "put credentials in `auth`, not in the URL".into(),
            });
        }
        match uri.scheme_str() {
            Some("http") => {}
            #[cfg(feature = "tls")]
            Some("https") => {}
            other => {
                return Err(RegistryError::InvalidUrl {
                    url: base,
                    reason: match other {
                        Some("https") => "https needs the `tls` feature".into(),
                        _ => "the scheme must be http or https".into(),
                    },
                });
            }
        }
        let auth = config.auth.as_ref().map(RegistryAuth::header).transpose()?;
        Ok(RegistryClient {
            base,
            auth,
            timeout: config.timeout,
            retry: Arc::new(
                BackoffConfig::new(config.backoff, MAX_BACKOFF.max(config.backoff))
                    .with_max_attempts(Some(config.retries.saturating_add(1))),
            ),
            retry_log: RetryLog::new(),
            http: Client::builder(TokioExecutor::new()).build(connector(&config)?),
            by_id: RwLock::new(HashMap::new()),
        })
    }

    /// The schema with global id `id`: `GET /schemas/ids/{id}`, cached.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, SchemaError> {
        if let Some(schema) = self
            .by_id
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
        {
            return Ok(schema.clone());
        }
        let body: SchemaBody = match self
            .call(Method::GET, &format!("/schemas/ids/{id}"), None)
            .await
        {
            Ok(body) => body,
            Err(RegistryError::SchemaNotFound { .. }) => return Err(SchemaError::UnknownId(id)),
            Err(e) => return Err(e.into()),
        };
        check_avro(body.schema_type.as_deref())?;
        let schema = Arc::new(
            self.parse_with_references(|| format!("id {id}"), &body.schema, &body.references)
                .await?,
        );
        self.by_id
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }

    /// The latest schema under `subject`: `GET /subjects/{subject}/versions/latest`.
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema, SchemaError> {
        let path = format!("/subjects/{}/versions/latest", encode_segment(subject));
        let body: SubjectVersionBody = self.call(Method::GET, &path, None).await?;
        check_avro(body.schema_type.as_deref())?;
        let schema = Arc::new(
            self.parse_with_references(
                || format!("subject {subject}"),
                &body.schema,
                &body.references,
            )
            .await?,
        );
        self.by_id
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(body.id, schema.clone());
        Ok(RegisteredSchema {
            subject: body.subject,
            id: body.id,
            version: body.version,
            schema,
        })
    }

    /// Every subject the registry holds: `GET /subjects`. A cheap call that shows the
    /// registry answers and takes the credentials (`kinflux check-config --connect`).
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        self.call(Method::GET, "/subjects", None).await
    }

    /// Registers the Avro schema `schema_json` under `subject` and returns its global id:
    /// `POST /subjects/{subject}/versions`. Registering a schema already there returns
    /// its existing id.
    pub async fn register(&self, subject: &str, schema_json: &str) -> Result<u32, RegistryError> {
        let path = format!("/subjects/{}/versions", encode_segment(subject));
        let body = serde_json::json!({ "schema": schema_json }).to_string();
        let IdBody { id } = self
            .call(Method::POST, &path, Some(Bytes::from(body)))
            .await?;
        Ok(id)
    }

    /// One API call with retries on 5xx, 429, timeouts and connection errors.
    pub(super) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<T, RegistryError> {
        let mut backoff = Backoff::with_log(
            *self.retry,
            "schema registry request",
            self.retry_log.clone(),
        );
        loop {
            let (error, retry_after) = match self.attempt(&method, path, body.clone()).await {
                Ok((status, _, bytes)) if status.is_success() => {
                    backoff.succeeded();
                    return serde_json::from_slice(&bytes).map_err(|e| {
                        RegistryError::BadResponse(format!("{status} from {method} {path}: {e}"))
                    });
                }
                Ok((status, headers, bytes)) => {
                    let retry_after = headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    (error_of(status, &bytes), retry_after)
                }
                Err(e) => (e, None),
            };
            let retry = matches!(
                error,
                RegistryError::Server { .. }
                    | RegistryError::RateLimited { .. }
                    | RegistryError::Timeout(_)
                    | RegistryError::Connection(_)
            );
            if !retry {
                return Err(error);
            }
            let delay = backoff
                .retry_after(retry_after)
                .next_delay(format_args!("{method} {path}: {error}"));
            match delay {
                Ok(wait) => tokio::time::sleep(wait).await,
                Err(_) => return Err(error),
            }
        }
    }

    /// One HTTP exchange: the status, headers and body of any answer, or the error of a
    /// request that got none.
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), RegistryError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header(ACCEPT, format!("{MEDIA_TYPE}, application/json"));
        if body.is_some() {
            request = request.header(CONTENT_TYPE, MEDIA_TYPE);
        }
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| RegistryError::InvalidUrl {
                url: format!("{}{path}", self.base),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| RegistryError::Connection(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| RegistryError::Connection(error_chain(&e)))?
                .to_bytes();
            Ok((parts.status, parts.headers, bytes))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| RegistryError::Timeout(self.timeout))?
    }
}

impl SchemaSource for RegistryClient {
    async fn schema(&self, id: u32) -> Result<Arc<Schema>, SchemaError> {
        self.schema_by_id(id).await
    }
}

fn check_avro(schema_type: Option<&str>) -> Result<(), SchemaError> {
    match schema_type {
        None | Some("AVRO") => Ok(()),
        Some(other) => {
            Err(RegistryError::BadResponse(format!("schema type {other} is not AVRO")).into())
        }
    }
}

/// The typed error for a refusal, from the documented `{"error_code", "message"}` body.
fn error_of(status: StatusCode, body: &[u8]) -> RegistryError {
    let (error_code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => (e.error_code, e.message),
        Err(_) => (0, String::from_utf8_lossy(body).chars().take(200).collect()),
    };
    match (status.as_u16(), error_code) {
        (_, 40401) => RegistryError::SubjectNotFound { message },
        (_, 40402) => RegistryError::VersionNotFound { message },
        (_, 40403) => RegistryError::SchemaNotFound { message },
        (_, 42201) => RegistryError::InvalidSchema { message },
        (_, 42202) => RegistryError::InvalidVersion { message },
        (409, _) => RegistryError::IncompatibleSchema { message },
        (429, _) => RegistryError::RateLimited { message },
        (401 | 403, _) => RegistryError::Unauthorized {
            status: status.as_u16(),
            message,
        },
        (500..=599, _) => RegistryError::Server {
            status: status.as_u16(),
            error_code,
            message,
        },
        _ => RegistryError::Other {
            status: status.as_u16(),
            error_code,
            message,
        },
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Percent-encodes a subject for use as one path segment.
pub(super) fn encode_segment(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for byte in subject.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(not(feature = "tls"))]
fn connector(_: &RegistryConfig) -> Result<Connector, RegistryError> {
    Ok(hyper_util::client::legacy::connect::HttpConnector::new())
}

#[cfg(feature = "tls")]
fn connector(config: &RegistryConfig) -> Result<Connector, RegistryError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match &config.tls {
        Some(tls) => builder.with_tls_config((**tls).clone()),
        None => builder
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| RegistryError::InvalidUrl {
                url: config.url.clone(),
                reason: format!("TLS setup: {e}"),
            })?,
    };
    Ok(builder.https_or_http().enable_http1().build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = RegistryAuth::Basic {
            username: "key".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert!(!format!("{:?}", RegistryAuth::Bearer("tok3n".into())).contains("tok3n"));
        let mut config = RegistryConfig::new("http://127.0.0.1:1");
        config.auth = Some(auth);
        assert!(!format!("{config:?}").contains("hunter2"));
        let client = RegistryClient::new(config).unwrap();
        let debug = format!("{client:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("a2V5"),
            "{debug}"
        );
    }

    #[test]
    fn subjects_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("garden-value"), "garden-value");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn documented_error_bodies_become_typed_errors() {
        let body = |code: u32| format!(r#"{{"error_code":{code},"message":"m"}}"#);
        assert!(matches!(
            error_of(StatusCode::NOT_FOUND, body(40401).as_bytes()),
            RegistryError::SubjectNotFound { .. }
        ));
        assert!(matches!(
            error_of(StatusCode::UNPROCESSABLE_ENTITY, body(42201).as_bytes()),
            RegistryError::InvalidSchema { .. }
        ));
        assert!(matches!(
            error_of(StatusCode::INTERNAL_SERVER_ERROR, body(50001).as_bytes()),
            RegistryError::Server {
                error_code: 50001,
                ..
            }
        ));
        assert!(matches!(
            error_of(StatusCode::TOO_MANY_REQUESTS, body(42901).as_bytes()),
            RegistryError::RateLimited { .. }
        ));
        assert!(matches!(
            error_of(StatusCode::BAD_GATEWAY, b"<html>"),
            RegistryError::Server { error_code: 0, .. }
        ));
        assert!(matches!(
            RegistryClient::new(RegistryConfig::new("ftp://x")),
            Err(RegistryError::InvalidUrl { .. })
        ));
        match RegistryClient::new(RegistryConfig::new("http://key:hunter2@registry:8081")) {
            Err(e @ RegistryError::InvalidUrl { .. }) => {
                assert!(!format!("{e} {e:?}").contains("hunter2"))
            }
            other => panic!("credentials in the URL were accepted: {other:?}"),
        }
        #[cfg(not(feature = "tls"))]
        assert!(matches!(
            RegistryClient::new(RegistryConfig::new("https://registry:8081")),
            Err(RegistryError::InvalidUrl { reason, .. }) if reason.contains("tls")
        ));
    }
}
