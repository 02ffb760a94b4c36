//! `kinflux check-config` (with `--connect`, the checks of [`connect_check`]), and the
//! configuration loading that `run` shares with it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use kinflux::Config;
use kinflux::config::ConfigError;

use crate::cli::CheckConfigArgs;
use crate::connect_check;

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
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    if args.connect {
        return connect(&config, &args.config);
    }
    ExitCode::SUCCESS
}

/// `--connect`: every check of [`connect_check`], one line each; fails when one does.
fn connect(config: &Config, path: &Path) -> ExitCode {
    let mut builders = Vec::with_capacity(config.pipelines.len());
    for p in &config.pipelines {
        match kinflux::PipelineBuilder::from_pipeline_config(config, p) {
            Ok(b) => builders.push(b),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(BAD_CONFIG);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\nconnecting:");
    let report = runtime.block_on(connect_check::check(config, &builders));
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        let failed = report
            .checks
            .iter()
            .filter(|(_, o)| !matches!(o, connect_check::Outcome::Ok(_)))
            .count();
        eprintln!("error: {failed} of {} checks failed", report.checks.len());
        ExitCode::FAILURE
    }
}
