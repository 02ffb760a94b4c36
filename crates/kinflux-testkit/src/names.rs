//! Names no other test or run uses (topics, databases, groups) and free TCP ports.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other test or run uses: `prefix`, an underscore and 16 hex digits. Made of
/// letters, digits and underscores when `prefix` is, so it is valid as a Kafka topic, a
/// consumer group and an InfluxDB database alike.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", random_u64())
}

/// 64 bits that differ between calls, threads and processes: the standard library's
/// randomly keyed hasher over the time, the process id and a counter (no RNG crate).
pub(crate) fn random_u64() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it, and the listener
/// is closed again), for a server a test starts.
///
/// # Panics
/// When no port can be bound on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_and_are_valid_everywhere() {
        let names: std::collections::BTreeSet<String> =
            (0..1_000).map(|_| unique("topic")).collect();
        assert_eq!(names.len(), 1_000);
        for name in &names {
            assert!(name.starts_with("topic_"));
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        }
    }

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
