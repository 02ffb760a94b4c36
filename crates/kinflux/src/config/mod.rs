//! The bridge's configuration: one TOML file, keys named like Telegraf's where the meaning
//! is the same, `${ENV}` references for secrets, checked at start-up with errors that
//! name the key.
//!
//! `examples/bridge.toml` documents every key.

mod env;
mod layout;
mod sections;

use std::path::Path;

pub use env::InterpolationError;
pub use layout::{SINGLE_PIPELINE, SINGLE_TARGET};
pub use sections::{
    AvroConfig, BatchConfig, Config, DeadLetterSection, DecodeConfig, Format, Framing, Gzip,
    InfluxApi, InfluxConfig, InternalMetricsConfig, KafkaSection, MetricsConfig, OnError,
    PipelineConfig, StartAt, TagsConfig, TargetConfig, TimeSource,
};

/// Why a configuration cannot be used. Every variant names the key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{0}")]
    Syntax(String),
    /// A `${NAME}` reference could not be resolved.
    #[error(transparent)]
    Interpolation(#[from] InterpolationError),
    /// A key has a value of the wrong type, is unknown, or is missing.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, as a dotted path.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads, interpolates and validates the configuration file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses, interpolates (from the process environment) and validates `text`.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Self::from_toml_with_env(text, &|name| std::env::var(name).ok())
    }

    /// Like [`from_toml`](Self::from_toml), with `${NAME}` looked up by `lookup`.
    pub fn from_toml_with_env(
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        env::interpolate(&mut value, lookup)?;
        let config = layout::assemble(value)?;
        config.validate()?;
        Ok(config)
    }
}
