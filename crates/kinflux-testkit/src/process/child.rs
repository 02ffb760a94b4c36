//! What every server process shares: a temporary directory, a log file that survives
//! restarts, SIGKILL, and waiting until the server is ready.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server's process and directory.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    name: &'static str,
    dir: Option<tempfile::TempDir>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServerProcess {
    /// A fresh directory for server `name`, whose output goes to `<dir>/<name>.out`.
    pub(crate) fn new(name: &'static str) -> ServerProcess {
        let dir = tempfile::Builder::new()
            .prefix(&format!("kinflux-{name}-"))
            .tempdir()
            .expect("a temporary directory");
        let log = dir.path().join(format!("{name}.out"));
        ServerProcess {
            name,
            dir: Some(dir),
            log,
            child: None,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the directory lives as long as the server")
            .path()
    }

    /// Starts `command` (replacing a killed process), its stdout and stderr appended to the
    /// output file.
    pub(crate) fn spawn(&mut self, mut command: Command) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server's output file");
        let child = command
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the server's output file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// Runs `command` (a set-up tool) to its end, output appended to the output file.
    ///
    /// # Panics
    /// When it fails.
    pub(crate) fn run_to_end(&mut self, command: Command) {
        self.spawn(command);
        let mut child = self.child.take().expect("just spawned");
        let status = child.wait().expect("wait for the set-up tool");
        assert!(
            status.success(),
            "{} set-up failed ({status}); end of {}:\n{}",
            self.name,
            self.log.display(),
            tail(&self.log)
        );
    }

    /// SIGKILL, and waits for the process to be gone: nothing is flushed or closed.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM (a controlled shutdown), and waits up to `timeout` for the process to exit;
    /// SIGKILL after that. Whether it exited by itself.
    pub(crate) fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        send_signal(child.id(), "TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Polls `ready` until it holds; panics with the end of `log` (a file in the
    /// directory) when the process exits or `timeout` passes first.
    pub(crate) fn wait_until(
        &mut self,
        timeout: Duration,
        log: &Path,
        mut ready: impl FnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let why = match exited {
                    Some(status) => format!("exited ({status})"),
                    None => format!("was not ready within {timeout:?}"),
                };
                panic!(
                    "{} {why}; end of {}:\n{}\nend of {}:\n{}",
                    self.name,
                    log.display(),
                    tail(log),
                    self.log.display(),
                    tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "{} data and logs kept in {}",
                    self.name,
                    dir.keep().display()
                );
            }
        }
    }
}

/// Sends `signal` (`STOP`, `CONT`, `TERM`, `KILL`...) to process `pid` with kill(1).
///
/// # Panics
/// When kill(1) cannot be run or fails (no such process).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// The last 40 lines of a text file (empty when it cannot be read).
pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
