//! Names no other test or run uses (topics, databases, groups) and free TCP ports.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
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

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts; never
/// the same twice in one process.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999 by
/// default), from 20000 up: a port the OS picks for `bind(0)` is one it also gives to
/// outgoing connections, so between this call and the server's bind, or while a server
/// is down for a restart test, any client's connection could take it (a CI run saw
/// influxd fail with "address already in use" that way).
///
/// # Panics
/// When no port can be bound on 127.0.0.1.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (low, high) = (FIRST_TEST_PORT, ephemeral_start().min(32768));
    if high > low + 1000 {
        for _ in 0..10_000 {
            let offset = random_u64() % u64::from(high - low);
            let port = low + u16::try_from(offset).expect("below high - low, a u16");
            if !handed_out.contains(&port)
                && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            {
                handed_out.insert(port);
                return port;
            }
        }
    }
    // No room below the ephemeral range: let the OS pick.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port();
    handed_out.insert(port);
    port
}

/// Where test servers' ports start: above every fixed port of `scripts/services` (8081,
/// 8086-8090, 9092-9100, 18186).
const FIRST_TEST_PORT: u16 = 20000;

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
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

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_never_repeat() {
        let ports: BTreeSet<u16> = (0..200).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 200, "a port handed out twice");
        let high = ephemeral_start().min(32768);
        if high > FIRST_TEST_PORT + 1000 {
            assert!(
                ports.iter().all(|p| (FIRST_TEST_PORT..high).contains(p)),
                "{ports:?}"
            );
        }
    }
}
