//! tansu, the Kafka-compatible broker with SQLite storage, for the compatibility subset of
//! the tests. `tansu broker` is started with `--silent`, its SQLite file in its directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::child::{ServerProcess, listening};
use crate::names::free_port;

/// A tansu broker of one test: its own port and SQLite file, which survive a restart.
#[derive(Debug)]
pub struct Tansu {
    bin: PathBuf,
    port: u16,
    advertised_port: u16,
    extra: Vec<String>,
    process: ServerProcess,
}

impl Tansu {
    /// Starts tansu on a free port with `extra` flags. `None` after the [`crate::env`]
    /// rule when `KINFLUX_TANSU_BIN` is not set or not a program.
    ///
    /// # Panics
    /// When tansu does not start.
    pub fn start(extra: &[&str]) -> Option<Tansu> {
        let port = free_port();
        Tansu::start_advertising(port, port, extra)
    }

    /// Starts tansu listening on `port` but advertising `advertised_port` in metadata (a
    /// TLS terminator's port, say).
    ///
    /// # Panics
    /// When tansu does not start.
    pub fn start_advertising(port: u16, advertised_port: u16, extra: &[&str]) -> Option<Tansu> {
        let bin = super::program("KINFLUX_TANSU_BIN", "tansu", false)?;
        let mut tansu = Tansu {
            bin,
            port,
            advertised_port,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            process: ServerProcess::new("tansu"),
        };
        tansu.resume();
        Some(tansu)
    }

    /// `127.0.0.1:PORT`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port tansu listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (the SQLite file, `tansu.out`), also a place for a test's files.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// The tansu program, for its other subcommands (`tansu user create`, say).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// SIGKILL: only what SQLite committed survives.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the (killed) broker again on the same port and SQLite file.
    ///
    /// # Panics
    /// When tansu does not start.
    pub fn resume(&mut self) {
        let mut command = Command::new(&self.bin);
        command
            .args(["broker", "--storage-engine", "sqlite://tansu.db"])
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{}", self.advertised_port))
            .arg("--silent")
            .args(&self.extra);
        self.process.spawn(command);
        let (port, out) = (self.port, self.dir().join("tansu.out"));
        self.process
            .wait_until(Duration::from_secs(20), &out, || listening(port));
    }

    /// [`kill`](Self::kill), then [`resume`](Self::resume).
    pub fn restart(&mut self) {
        self.kill();
        self.resume();
    }

    /// Kills it and starts it again with other flags, on the same port and SQLite file.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| (*s).to_owned()).collect();
        self.restart();
    }
}
