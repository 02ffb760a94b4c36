//! Log lines: tracing to stderr, filtered by `RUST_LOG`, as text (coloured only on a
//! terminal) or as one JSON object per line for log shippers.

use std::ffi::OsString;
use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset or unreadable: rskafka logs every reconnect at info.
const DEFAULT_FILTER: &str = "info,rskafka=warn";

/// `--log-format`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields.message`, and
    /// every other field), never coloured.
    Json,
}

/// Sends log lines to stderr. Text is coloured only when stderr is a terminal and
/// `NO_COLOR` is unset or empty: escape codes in a file, a pipe or journald are noise.
pub(crate) fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let ansi = colours(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            );
            builder.with_ansi(ansi).init();
        }
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Whether log lines get ANSI colours (<https://no-color.org>: any non-empty `NO_COLOR`
/// turns them off).
fn colours(is_terminal: bool, no_color: Option<OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some(OsString::new())));
        assert!(!colours(true, Some("1".into())));
        assert!(!colours(false, None));
        assert!(!colours(false, Some("1".into())));
    }
}
