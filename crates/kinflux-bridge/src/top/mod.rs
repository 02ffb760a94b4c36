//! `kinflux top`: a live terminal view of a running bridge, built from its `/metrics`:
//! records and points per second, retries, dead letters, and per partition the lag and
//! the event-time lag. Redrawn every `--interval`; `q` (or Esc, Ctrl-C) quits.

mod scrape;
mod view;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use console::{Key, Term};

use crate::check_config::{BAD_CONFIG, load};

/// The flags of `top`.
#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// The bridge's metrics endpoint, `http://HOST:PORT` (`/metrics` is added).
    #[arg(long, conflicts_with = "config")]
    pub(crate) metrics_url: Option<String>,
    /// Or the bridge's configuration file: its `metrics.listen` is scraped.
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// How often the view is redrawn.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(crate) interval: Duration,
    /// Print one frame (two scrapes, `--interval` apart, for the rates) and exit.
    #[arg(long)]
    pub(crate) once: bool,
}

/// Runs `kinflux top`.
pub(crate) fn top(args: &TopArgs) -> ExitCode {
    let url = match (&args.metrics_url, &args.config) {
        (Some(url), _) => url.clone(),
        (None, Some(path)) => {
            let config = match load(path) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match config.metrics.listen {
                Some(addr) => format!("http://{addr}"),
                None => {
                    eprintln!("error: {}: metrics.listen is not set", path.display());
                    return ExitCode::from(BAD_CONFIG);
                }
            }
        }
        (None, None) => {
            eprintln!("error: give --metrics-url or --config");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let (authority, path) = match scrape::split_url(&url) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let source = format!("http://{authority}{path}");
    let interval = args.interval.max(Duration::from_millis(100));
    if args.once || !std::io::stdout().is_terminal() {
        return once(&authority, &path, &source, interval);
    }
    live(&authority, &path, &source, interval)
}

/// One frame on stdout.
fn once(authority: &str, path: &str, source: &str, interval: Duration) -> ExitCode {
    let first = match scrape::scrape(authority, path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    std::thread::sleep(interval);
    match scrape::scrape(authority, path) {
        Ok(now) => {
            let text = view::frame(source, &now, Some((&first, started.elapsed())), 100);
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Redraws until a quit key. A scrape that fails is shown, and tried again: the bridge
/// may be restarting.
fn live(authority: &str, path: &str, source: &str, interval: Duration) -> ExitCode {
    let term = Term::stdout();
    let keys = quit_keys();
    let _ = term.hide_cursor();
    let _ = term.clear_screen();
    let mut before: Option<(scrape::Samples, Instant)> = None;
    loop {
        let (rows, columns) = term.size();
        let text = match scrape::scrape(authority, path) {
            Ok(now) => {
                let previous = before.as_ref().map(|(s, at)| (s, at.elapsed()));
                let text = view::frame(source, &now, previous, usize::from(columns));
                before = Some((now, Instant::now()));
                text
            }
            Err(e) => format!("kinflux top  {source}  (q quits)\n\ncannot scrape: {e}\n"),
        };
        let _ = term.write_str(&redraw(&text, usize::from(rows)));
        let _ = term.flush();
        match keys.recv_timeout(interval) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // No keys to read: wait, and leave it to a signal to end the view.
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(interval),
        }
    }
    let _ = term.write_line("");
    let _ = term.show_cursor();
    ExitCode::SUCCESS
}

/// The escape codes that draw `text` over the previous frame in one write: cursor home,
/// each line cleared to its end, then the rest of the screen cleared. Clearing the whole
/// screen first would show a blank frame between two.
fn redraw(text: &str, rows: usize) -> String {
    let mut out = String::from("\x1b[H");
    for (i, line) in text.lines().take(rows.max(2) - 1).enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(line);
        out.push_str("\x1b[K");
    }
    out.push_str("\x1b[J");
    out
}

/// A channel that receives when a quit key is pressed. Keys are read on a thread of
/// their own, each read putting the terminal in raw mode only while it waits.
fn quit_keys() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let term = Term::stdout();
        loop {
            match term.read_key() {
                Ok(Key::Char('q' | 'Q') | Key::Escape | Key::CtrlC) => {
                    let _ = tx.send(());
                    return;
                }
                Ok(_) => {}
                // No terminal to read from: only a signal ends the view.
                Err(_) => return,
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redraw_overwrites_in_place_and_fits_the_screen() {
        assert_eq!(redraw("a\nb\nc", 3), "\x1b[Ha\x1b[K\r\nb\x1b[K\x1b[J");
    }
}
