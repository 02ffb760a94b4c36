//! `kinflux check-config`, and the configuration loading that `run` shares with it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use kinflux::Config;
use kinflux::config::ConfigError;

use crate::cli::CheckConfigArgs;

/// The exit status for a configuration that cannot be used, as for a usage error.
pub(crate) const BAD_CONFIG: u8 = 2;

/// Reads and validates `path`, or says on stderr why it cannot be used.
pub(crate) fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        match e {
            // The error names the file already.
            ConfigError::Read { .. } => eprintln!("error: {e}"),
            _ => eprintln!("error: {}: {e}", path.display()),
        }
        ExitCode::from(BAD_CONFIG)
    })
}

/// Validates the file and prints the resolved settings, with secrets redacted by the
/// configuration's `Debug`.
pub(crate) fn check_config(args: &CheckConfigArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if kinflux::pipeline::skips_tls_verification(&config) {
        eprintln!(
            "warning: kafka.tls.insecure_skip_verify = true: the brokers' certificates will \
             NOT be verified"
        );
    }
    let printed = writeln!(
        std::io::stdout().lock(),
        "{} is valid. Resolved settings (secrets redacted):\n{config:#?}",
        args.config.display()
    );
    match printed {
        // A reader that stopped early (`| head`) does not make the file invalid.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: cannot print the settings: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
