//! Server processes a test owns: each has its own temporary directory and free ports,
//! can be killed with SIGKILL (a crash, an outage) and started again on the same ports
//! and data, and is killed when dropped. When the test is panicking, the directory (data
//! and log) is kept and its path printed.
//!
//! - [`KafkaBroker`]: Apache Kafka, one KRaft node (`KINFLUX_KAFKA_HOME`);
//! - [`KafkaCluster`]: Apache Kafka, three KRaft nodes (each broker and controller),
//!   replication factor 3 and `min.insync.replicas` 2;
//! - [`Tansu`]: the Kafka-compatible tansu, for the compatibility subset
//!   (`KINFLUX_TANSU_BIN`);
//! - [`Influxd`]: InfluxDB 1.x, Debian's `influxd` (`KINFLUX_INFLUXD_BIN`, or on `PATH`).
//!
//! Each `start` applies the [`crate::env`] rule when what it needs is missing, and
//! returns `None` after a loud `SKIPPED` line.

mod child;
mod influxd;
mod kafka;
mod kafka_cluster;
mod tansu;

use std::path::{Path, PathBuf};

pub use child::send_signal;
pub use influxd::Influxd;
pub use kafka::KafkaBroker;
pub use kafka_cluster::KafkaCluster;
pub use tansu::Tansu;

/// `name` on `PATH`, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The program in environment variable `var` (a path, or a name on `PATH`), else `name`
/// on `PATH` when `fallback_to_path`; `None` after the [`crate::env`] rule when neither is
/// there.
fn program(var: &str, name: &str, fallback_to_path: bool) -> Option<PathBuf> {
    let configured = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let found = match &configured {
        Some(value) if Path::new(value.trim()).is_file() => Some(PathBuf::from(value.trim())),
        Some(value) => on_path(value.trim()),
        None if fallback_to_path => on_path(name),
        None => None,
    };
    if found.is_none() {
        crate::env::missing(&match configured {
            Some(value) => format!("{var}={value} is not a program"),
            None if fallback_to_path => format!("{var} is not set and no {name} is on PATH"),
            None => format!("{var} is not set"),
        });
    }
    found
}

/// The example program `name` of this workspace, `target/<profile>/examples/<name>` next to
/// the running test's `target/<profile>/deps/`; `None` after the [`crate::env`] rule when it
/// is not built.
pub fn example_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile.join("examples").join(name);
    crate::env::available(
        path.is_file(),
        &format!("no {} (cargo build --example {name})", path.display()),
    )
    .then_some(path)
}
