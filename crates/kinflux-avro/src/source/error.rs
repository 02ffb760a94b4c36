//! Errors of the schema registry client.

/// Why the schema registry refused or failed a request. The variants with error codes
/// are the ones the Confluent Schema Registry API documents
/// (<https://docs.confluent.io/platform/current/schema-registry/develop/api.html#errors>).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// 40401: the subject does not exist.
    #[error("schema registry: subject not found: {message}")]
    SubjectNotFound {
        /// The registry's message.
        message: String,
    },
    /// 40402: the version does not exist.
    #[error("schema registry: version not found: {message}")]
    VersionNotFound {
        /// The registry's message.
        message: String,
    },
    /// 40403: no schema has this id.
    #[error("schema registry: schema not found: {message}")]
    SchemaNotFound {
        /// The registry's message.
        message: String,
    },
    /// 409: the schema is incompatible with the subject's earlier versions.
    #[error("schema registry: incompatible schema: {message}")]
    IncompatibleSchema {
        /// The registry's message.
        message: String,
    },
    /// 42201: the schema is invalid.
    #[error("schema registry: invalid schema: {message}")]
    InvalidSchema {
        /// The registry's message.
        message: String,
    },
    /// 42202: the version is invalid.
    #[error("schema registry: invalid version: {message}")]
    InvalidVersion {
        /// The registry's message.
        message: String,
    },
    /// 401 or 403: the credentials were refused.
    #[error("schema registry: unauthorized ({status}): {message}")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// 429: too many requests, after the configured retries.
    #[error("schema registry: rate limited: {message}")]
    RateLimited {
        /// The registry's message.
        message: String,
    },
    /// 5xx (50001 backend store error, 50002 operation timeout, 50003 forwarding error,
    /// ...), after the configured retries.
    #[error("schema registry: server error {status} (code {error_code}): {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The registry's error code, 0 if the body had none.
        error_code: u32,
        /// The registry's message.
        message: String,
    },
    /// Any other refusal.
    #[error("schema registry: {status} (code {error_code}): {message}")]
    Other {
        /// The HTTP status.
        status: u16,
        /// The registry's error code, 0 if the body had none.
        error_code: u32,
        /// The registry's message.
        message: String,
    },
    /// The request did not complete within the configured timeout, after the retries.
    #[error("schema registry: request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The connection failed, after the retries.
    #[error("schema registry: connection failed: {0}")]
    Connection(String),
    /// A success response whose body was not what the API documents.
    #[error("schema registry: unexpected response: {0}")]
    BadResponse(String),
    /// The TLS settings cannot be used (an unreadable CA file, one without certificates).
    #[error("schema registry: TLS: {0}")]
    Tls(String),
    /// The registry URL is not usable.
    #[error("schema registry: invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}
