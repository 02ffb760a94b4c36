//! `lp_lint`: checks InfluxDB line protocol files and reports every bad line.
//!
//! ```text
//! cargo run --example lp_lint -- examples/data/telegraf.lp
//! cat metrics.lp | cargo run --example lp_lint -- --json
//! ```
//!
//! Each bad line is printed to stderr as `FILE:LINE:COL: message` (`<stdin>` for standard
//! input; columns count bytes). With `--json`, each good point is printed to stdout as one
//! JSON object per line. The exit code is 1 when any line is bad, 0 otherwise.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kinflux_line::{ParseOptions, parse};
use kinflux_series::{Precision, Timestamp};

/// Checks InfluxDB line protocol and reports every bad line as FILE:LINE:COL: message.
#[derive(Debug, Parser)]
#[command(name = "lp_lint")]
struct Args {
    /// Files to check; none (or `-`) reads standard input.
    files: Vec<PathBuf>,
    /// The unit of the timestamps: ns, us, ms or s.
    #[arg(long, default_value = "ns")]
    precision: Precision,
    /// The time, in nanoseconds, given to lines without a timestamp.
    #[arg(long, value_name = "NANOS")]
    default_time: Option<i64>,
    /// Print each good point as one JSON object per line.
    #[arg(long)]
    json: bool,
}

/// What linting one input found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    good: usize,
    bad: usize,
}

/// Lints `input`, named `name` in messages: bad lines go to `errors`, good points (with
/// `json`) to `points`.
fn lint(
    name: &str,
    input: &[u8],
    options: ParseOptions,
    json: bool,
    points: &mut impl Write,
    errors: &mut impl Write,
) -> io::Result<Report> {
    let mut report = Report::default();
    for item in parse(input, options) {
        match item {
            Ok(point) => {
                report.good += 1;
                if json {
                    serde_json::to_writer(&mut *points, &point.into_owned())?;
                    points.write_all(b"\n")?;
                }
            }
            Err(e) => {
                report.bad += 1;
                writeln!(errors, "{name}:{e}")?;
            }
        }
    }
    Ok(report)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = ParseOptions {
        precision: args.precision,
        default_time: args.default_time.map(Timestamp::from_nanos),
    };
    let stdin_only = [PathBuf::from("-")];
    let files = if args.files.is_empty() {
        &stdin_only[..]
    } else {
        &args.files[..]
    };
    let mut inputs: Vec<(String, io::Result<Vec<u8>>)> = Vec::new();
    for f in files {
        if f.as_os_str() == "-" {
            let mut buf = Vec::new();
            let read = io::stdin().read_to_end(&mut buf).map(|_| buf);
            inputs.push(("<stdin>".to_owned(), read));
        } else {
            inputs.push((f.display().to_string(), std::fs::read(f)));
        }
    }
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut any_bad = false;
    for (name, content) in inputs {
        let content = match content {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{name}: {e}");
                any_bad = true;
                continue;
            }
        };
        let report = lint(
            &name,
            &content,
            options,
            args.json,
            &mut stdout.lock(),
            &mut stderr.lock(),
        );
        match report {
            Ok(r) => any_bad |= r.bad > 0,
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if any_bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], options: ParseOptions, json: bool) -> (Report, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let report = lint("in.lp", input, options, json, &mut out, &mut err).unwrap();
        (
            report,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn bad_lines_are_reported_as_file_line_column_message() {
        let (report, out, err) = run(
            b"# ok\ncpu v=1\ncpu,host=a v=oops\ncpu v=\n",
            ParseOptions::default(),
            false,
        );
        assert_eq!(report, Report { good: 1, bad: 2 });
        assert_eq!(out, "");
        assert_eq!(
            err,
            "in.lp:3:14: invalid boolean\nin.lp:4:7: expected field value after '='\n"
        );
    }

    #[test]
    fn json_prints_the_documented_point_shape() {
        let options = ParseOptions {
            precision: Precision::Seconds,
            default_time: Some(Timestamp::from_nanos(7)),
        };
        let (report, out, err) = run(b"cpu,host=a v=1.5 1700000000\ncpu n=2i", options, true);
        assert_eq!(report, Report { good: 2, bad: 0 });
        assert_eq!(err, "");
        assert_eq!(
            out,
            concat!(
                r#"{"name":"cpu","tags":[{"key":"host","value":"a"}],"fields":[{"key":"v","value":{"float":1.5}}],"time":1700000000000000000}"#,
                "\n",
                r#"{"name":"cpu","tags":[],"fields":[{"key":"n","value":{"int":2}}],"time":7}"#,
                "\n"
            )
        );
    }

    #[test]
    fn the_sample_file_for_newcomers_is_clean() {
        let sample = include_bytes!("data/telegraf.lp");
        let (report, _, err) = run(sample, ParseOptions::default(), false);
        assert_eq!(err, "");
        assert_eq!(report, Report { good: 6, bad: 0 });
    }

    #[test]
    fn options_parse_like_the_documentation_says() {
        let args = Args::try_parse_from([
            "lp_lint",
            "--precision",
            "ms",
            "--default-time",
            "5",
            "--json",
            "a.lp",
        ])
        .unwrap();
        assert_eq!(args.precision, Precision::Milliseconds);
        assert_eq!(args.default_time, Some(5));
        assert!(args.json);
        assert!(Args::try_parse_from(["lp_lint", "--precision", "h"]).is_err());
    }
}
