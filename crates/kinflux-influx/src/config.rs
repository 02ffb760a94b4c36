//! What to write to and how.

use std::path::PathBuf;
use std::time::Duration;

use kinflux_series::Precision;

use crate::Secret;

/// Which InfluxDB write API to use, with its target and credentials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Api {
    /// InfluxDB 1.x `POST /write?db=&rp=&precision=`, basic auth when a user is set.
    V1 {
        /// The database.
        database: String,
        /// The retention policy; the database default when `None`.
        retention_policy: Option<String>,
        /// User name and password.
        credentials: Option<(String, Secret)>,
    },
    /// InfluxDB 2.x and Cloud `POST /api/v2/write?org=&bucket=&precision=`,
    /// `Authorization: Token ...`.
    V2 {
        /// The organization name or ID.
        org: String,
        /// The bucket.
        bucket: String,
        /// The API token.
        token: Secret,
    },
    /// InfluxDB 3 `POST /api/v3/write_lp?db=&precision=&accept_partial=`,
    /// `Authorization: Bearer ...`.
    V3 {
        /// The database.
        database: String,
        /// The token; `None` for a server started without authentication.
        token: Option<Secret>,
        /// Store the good lines of a body that has bad ones (the server default).
        accept_partial: bool,
    },
}

/// How long to wait between attempts, and when to give up.
///
/// The wait before retry `n` (from 0) is a random duration in
/// `0..=min(max_backoff, initial_backoff * 2^n)` ("full jitter"), or what the server asked
/// for in `Retry-After`: the [`kinflux_backoff`] policy, which also logs the retries (the
/// first at warn, then one warn a minute, and the recovery at info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first backoff ceiling.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// Give up after this many requests for one part of a batch; `None` retries forever.
    pub max_attempts: Option<u32>,
    /// Give up once this much time went by for one part of a batch; `None` for never.
    pub max_elapsed: Option<Duration>,
}

impl RetryPolicy {
    /// The same policy for [`kinflux_backoff::Backoff`].
    pub fn backoff_config(&self) -> kinflux_backoff::BackoffConfig {
        kinflux_backoff::BackoffConfig::new(self.initial_backoff, self.max_backoff)
            .with_max_attempts(self.max_attempts)
            .with_max_elapsed(self.max_elapsed)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_attempts: None,
            max_elapsed: None,
        }
    }
}

/// Everything the [`crate::Writer`] needs. Build it with [`WriterConfig::v1`],
/// [`WriterConfig::v2`] or [`WriterConfig::v3`], then change fields as needed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriterConfig {
    /// Base URL, e.g. `http://127.0.0.1:8086` (a path prefix is kept).
    pub url: String,
    /// The API, target and credentials.
    pub api: Api,
    /// The unit of the timestamps in the bodies.
    pub precision: Precision,
    /// gzip level 0-9 for request bodies; `None` sends them uncompressed. Default 1: line
    /// protocol is so repetitive that level 1 gets most of the size gain for a fraction
    /// of the CPU of higher levels.
    pub gzip_level: Option<u32>,
    /// Largest uncompressed body per request; larger batches are split at line boundaries.
    pub max_body_bytes: usize,
    /// TCP (and TLS) connection timeout.
    pub connect_timeout: Duration,
    /// Timeout for a whole request, from sending to the end of the answer.
    pub request_timeout: Duration,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Most requests in flight at once, over all clones of the writer.
    pub max_in_flight: usize,
    /// On 404, create what is missing and write again: v1 the database, v2 the bucket
    /// (in the org, with [`WriterConfig::bucket_retention`]). No effect on v3.
    pub create_database: bool,
    /// v2: the retention period of a bucket the writer creates; `None` (or zero) keeps
    /// data forever. InfluxDB rounds nothing: whole seconds are sent.
    pub bucket_retention: Option<Duration>,
    /// PEM file with the CA certificates to trust instead of the built-in web roots.
    pub ca_file: Option<PathBuf>,
}

impl WriterConfig {
    fn with_api(url: impl Into<String>, api: Api) -> Self {
        WriterConfig {
            url: url.into(),
            api,
            precision: Precision::Nanoseconds,
            gzip_level: Some(1),
            max_body_bytes: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_in_flight: 4,
            create_database: false,
            bucket_retention: None,
            ca_file: None,
        }
    }

    /// InfluxDB 1.x: write to `database` with its default retention policy, no auth.
    pub fn v1(url: impl Into<String>, database: impl Into<String>) -> Self {
        Self::with_api(
            url,
            Api::V1 {
                database: database.into(),
                retention_policy: None,
                credentials: None,
            },
        )
    }

    /// InfluxDB 2.x / Cloud: write to `bucket` of `org` with `token`.
    pub fn v2(
        url: impl Into<String>,
        org: impl Into<String>,
        bucket: impl Into<String>,
        token: impl Into<Secret>,
    ) -> Self {
        Self::with_api(
            url,
            Api::V2 {
                org: org.into(),
                bucket: bucket.into(),
                token: token.into(),
            },
        )
    }

    /// InfluxDB 3: write to `database` with `token`, accepting partial writes.
    pub fn v3(url: impl Into<String>, database: impl Into<String>, token: Option<Secret>) -> Self {
        Self::with_api(
            url,
            Api::V3 {
                database: database.into(),
                token,
                accept_partial: true,
            },
        )
    }

    /// v1: sets the user and password (basic auth). No effect on other APIs.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        if let Api::V1 { credentials, .. } = &mut self.api {
            *credentials = Some((user.into(), password.into()));
        }
        self
    }

    /// v1: writes to retention policy `rp` instead of the database default. No effect on
    /// other APIs.
    pub fn with_retention_policy(mut self, rp: impl Into<String>) -> Self {
        if let Api::V1 {
            retention_policy, ..
        } = &mut self.api
        {
            *retention_policy = Some(rp.into());
        }
        self
    }

    /// v3: whether the server stores the good lines of a body with bad ones
    /// (`accept_partial`, on by default). No effect on other APIs.
    pub fn with_accept_partial(mut self, accept: bool) -> Self {
        if let Api::V3 { accept_partial, .. } = &mut self.api {
            *accept_partial = accept;
        }
        self
    }
}
