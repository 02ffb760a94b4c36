#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

pub mod config;
pub mod decode;
pub mod metrics;
pub mod pipeline;
pub mod progress;

pub use config::Config;
pub use decode::Decode;
pub use metrics::{Metrics, MetricsSnapshot};
pub use pipeline::{
    Bridge, CancellationToken, ErrorClass, Pipeline, PipelineBuilder, PipelineError, RunSummary,
};

pub use kinflux_avro as avro;
pub use kinflux_batch as batch;
pub use kinflux_influx as influx;
pub use kinflux_kafka as kafka;
pub use kinflux_line as line;
pub use kinflux_series as series;
