//! InfluxDB 1.x: Debian's `influxd` with a configuration generated for one test.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::child::ServerProcess;
use crate::names::free_port;

/// An influxd of one test: its own HTTP and RPC ports and data folders, which survive a
/// restart. Its log is `influxd.out` in its directory.
#[derive(Debug)]
pub struct Influxd {
    host: String,
    port: u16,
    config: std::path::PathBuf,
    bin: std::path::PathBuf,
    process: ServerProcess,
}

impl Influxd {
    /// Starts influxd on free ports, with `http_extra` added to its `[http]` section (e.g.
    /// `auth-enabled = true` or `max-body-size = 2000`), and waits until `/ping` answers.
    /// The program is `KINFLUX_INFLUXD_BIN`, else `influxd` on `PATH`; `None` after the
    /// [`crate::env`] rule when there is neither.
    ///
    /// # Panics
    /// When influxd does not start.
    pub fn start(http_extra: &str) -> Option<Influxd> {
        Influxd::start_on("127.0.0.1", http_extra)
    }

    /// [`start`](Self::start) with the HTTP API on `host` (an address of this machine,
    /// such as a network namespace link's) instead of 127.0.0.1.
    ///
    /// # Panics
    /// When influxd does not start.
    pub fn start_on(host: &str, http_extra: &str) -> Option<Influxd> {
        let bin = super::program("KINFLUX_INFLUXD_BIN", "influxd", true)?;
        let process = ServerProcess::new("influxd");
        let (port, rpc) = (free_port(), free_port());
        let d = process.dir().display();
        let config = process.dir().join("influxd.conf");
        std::fs::write(
            &config,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"{host}:{port}\"\n  log-enabled = false\n  {http_extra}\n\
                 [monitor]\n  store-enabled = false\n"
            ),
        )
        .expect("write influxd.conf");
        let mut influxd = Influxd {
            host: host.to_owned(),
            port,
            config,
            bin,
            process,
        };
        influxd.resume();
        Some(influxd)
    }

    /// `http://HOST:PORT` (127.0.0.1 unless started elsewhere).
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory: `influxd.conf`, the data folders, `influxd.out`.
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// SIGKILL: an outage.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the (killed) server again on the same ports and data, and waits until
    /// `/ping` answers.
    ///
    /// # Panics
    /// When influxd does not start.
    pub fn resume(&mut self) {
        let mut command = Command::new(&self.bin);
        command.arg("-config").arg(&self.config);
        self.process.spawn(command);
        let out = self.dir().join("influxd.out");
        let address = format!("{}:{}", self.host, self.port);
        let ping = format!("{}/ping", self.url());
        self.process.wait_until(Duration::from_secs(30), &out, || {
            std::net::TcpStream::connect(&address).is_ok()
                && crate::http::get(&ping).is_ok_and(|a| a.status == 204)
        });
    }

    /// [`kill`](Self::kill), then [`resume`](Self::resume).
    pub fn restart(&mut self) {
        self.kill();
        self.resume();
    }
}
