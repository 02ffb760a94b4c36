//! What a write produced: written, partially written, or an error.

use std::time::Duration;

/// The result of a [`crate::Writer::write`] that reached InfluxDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every line was stored.
    Written {
        /// How many lines the batch held.
        lines: usize,
    },
    /// InfluxDB stored some lines and refused others. Send the refused lines to the
    /// dead-letter topic; the rest count as written.
    Partial(PartialWrite),
}

impl WriteOutcome {
    /// How many lines count as stored.
    pub fn written(&self) -> usize {
        match self {
            WriteOutcome::Written { lines } => *lines,
            WriteOutcome::Partial(p) => p.written(),
        }
    }

    /// The refused lines (empty when everything was written).
    pub fn rejected(&self) -> &[RejectedLine] {
        match self {
            WriteOutcome::Written { .. } => &[],
            WriteOutcome::Partial(p) => &p.rejected,
        }
    }
}

/// The lines InfluxDB refused in a write where the others were stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialWrite {
    /// How many lines the batch held.
    pub lines: usize,
    /// Each refused line, by index in the batch, sorted by index.
    pub rejected: Vec<RejectedLine>,
    /// Points InfluxDB says it dropped without naming the lines (for example
    /// `points beyond retention policy dropped=3`).
    pub unattributed: Option<UnattributedDrop>,
}

impl PartialWrite {
    /// How many lines count as stored: all but the refused and the unattributed drops.
    pub fn written(&self) -> usize {
        let dropped = self.unattributed.as_ref().map_or(0, |d| d.count);
        self.lines.saturating_sub(self.rejected.len() + dropped)
    }
}

/// One line InfluxDB refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine {
    /// The line's 0-based index in the batch given to the writer.
    pub index: usize,
    /// InfluxDB's reason, as it wrote it.
    pub reason: String,
}

/// Points InfluxDB dropped without saying which lines they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnattributedDrop {
    /// How many points InfluxDB reported as dropped beyond those attributed to lines.
    pub count: usize,
    /// InfluxDB's message.
    pub reason: String,
}

/// Why a request may succeed if sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryCause {
    /// The connection could not be made or broke during the exchange.
    Connection,
    /// No full answer within the request timeout.
    Timeout,
    /// 429: InfluxDB asks us to slow down.
    Throttled,
    /// 500, 502, 503 or 504.
    ServerError(u16),
}

impl std::fmt::Display for RetryCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryCause::Connection => f.write_str("connection error"),
            RetryCause::Timeout => f.write_str("timeout"),
            RetryCause::Throttled => f.write_str("throttled (429)"),
            RetryCause::ServerError(status) => write!(f, "server error ({status})"),
        }
    }
}

/// A write that did not reach a final answer from InfluxDB, or got a final "no".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// 401 or 403: the credentials are wrong or lack permission. Never retried.
    #[error("InfluxDB refused the credentials ({status}): {message}")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
        /// InfluxDB's message.
        message: String,
    },
    /// 404: the database or bucket does not exist (and creating it is off or not possible).
    #[error("InfluxDB has no such database or bucket: {message}")]
    NotFound {
        /// InfluxDB's message.
        message: String,
    },
    /// The request was refused as a whole and will be refused again (a 400 that names no
    /// line, or another 4xx).
    #[error("InfluxDB refused the request ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// InfluxDB's message.
        message: String,
    },
    /// The retry limits (attempts or elapsed time) ran out.
    #[error("gave up after {attempts} attempts over {elapsed:?}; last failure: {last}")]
    GaveUp {
        /// Requests sent for the batch part that failed.
        attempts: u32,
        /// Time spent on it.
        elapsed: Duration,
        /// The last retryable failure.
        last: RetryCause,
    },
    /// The shutdown signal fired while the write was waiting or in flight. The lines may
    /// or may not have been stored; writing them again is safe.
    #[error("write cancelled by shutdown")]
    Cancelled,
    /// The configuration cannot be used (bad URL, unreadable CA file, ...).
    #[error("invalid writer configuration: {0}")]
    Config(String),
    /// The operation does not exist for this API version.
    #[error("{0} is not supported by this API version")]
    Unsupported(&'static str),
}

impl WriteError {
    /// Whether sending the same request again can never succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            WriteError::Unauthorized { .. }
                | WriteError::NotFound { .. }
                | WriteError::Refused { .. }
                | WriteError::Config(_)
                | WriteError::Unsupported(_)
        )
    }
}

/// How InfluxDB answered one request, classified. [`crate::Writer::write_once`] returns
/// it; [`crate::Writer::write`] acts on it (retry, split, create the database, ...).
#[derive(Debug)]
#[non_exhaustive]
pub enum Attempt {
    /// 2xx: every line was stored.
    Written,
    /// Some lines were refused; indexes are into the batch sent.
    Partial {
        /// The refused lines.
        rejected: Vec<RejectedLine>,
        /// Drops InfluxDB did not attribute to lines.
        unattributed: Option<UnattributedDrop>,
        /// Whether the other lines may not have been stored (InfluxDB refused the whole
        /// body because of the named lines, or may have hidden further errors), so they
        /// should be sent again without the refused ones.
        resend_rest: bool,
    },
    /// Sending again later may succeed.
    Retryable {
        /// What went wrong.
        cause: RetryCause,
        /// The wait InfluxDB asked for in `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 413: the body is larger than the server accepts.
    TooLarge {
        /// InfluxDB's message.
        message: String,
    },
    /// Never succeeds as it is.
    Permanent(WriteError),
    /// The shutdown signal fired before an answer came.
    Cancelled,
}
