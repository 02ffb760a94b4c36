//! A network namespace of one test, a separate host on the network: a veth pair links it
//! to this machine, with an address on each end (`10.213.X.1` here, `10.213.X.2` in the
//! namespace). Servers that listen on [`host_ip`](Netns::host_ip) are reachable from both
//! sides; a program run with [`command`](Netns::command) sees only that link. nftables
//! inside the namespace drops what goes to one port ([`cut`](Netns::cut)), a cable pulled
//! out between the namespace and one server, until [`mend`](Netns::mend).
//!
//! Needs root, `ip` (iproute2) and `nft` (Debian's `nftables`); without them `create`
//! follows the [`crate::env`] rule (SKIPPED, or a panic under `CI=true`).

use std::process::Command;

use crate::names::random_u64;

/// The nftables table each namespace gets.
const TABLE: &str = "kinflux_faults";

/// A network namespace, deleted (with its veth pair and rules) when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
    subnet: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let (program, rest) = args.split_first().expect("a command");
    let out = Command::new(program)
        .args(rest)
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates a namespace linked to this machine by a veth pair, with nftables' table
    /// ready. `None` after the [`crate::env`] rule when it cannot be made (not root, no
    /// `ip` or `nft`).
    ///
    /// # Panics
    /// When a step fails after the namespace was made.
    pub fn create() -> Option<Netns> {
        for tool in ["ip", "nft"] {
            if !crate::env::available(
                crate::process::on_path(tool).is_some(),
                &format!(
                    "no `{tool}` on PATH for network namespaces (apt-get install iproute2 nftables)"
                ),
            ) {
                return None;
            }
        }
        let id = random_u64();
        let name = format!("kfx{:08x}", id & 0xffff_ffff);
        let subnet = format!("10.213.{}", (id >> 32) & 0xff);
        if let Err(e) = run(&["ip", "netns", "add", &name]) {
            crate::env::missing(&format!("cannot make a network namespace (root?): {e}"));
            return None;
        }
        let ns = Netns { name, subnet };
        let (outside, inside) = (ns.veth('h'), ns.veth('n'));
        let steps: Vec<Vec<String>> = vec![
            strings(&[
                "ip", "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ]),
            strings(&["ip", "link", "set", &inside, "netns", &ns.name]),
            strings(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", ns.host_ip()),
                "dev",
                &outside,
            ]),
            strings(&["ip", "link", "set", &outside, "up"]),
            strings(&[
                "ip",
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{}/24", ns.ip()),
                "dev",
                &inside,
            ]),
            strings(&["ip", "-n", &ns.name, "link", "set", &inside, "up"]),
            strings(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]),
        ];
        for step in steps {
            let step: Vec<&str> = step.iter().map(String::as_str).collect();
            run(&step).unwrap_or_else(|e| panic!("network namespace {}: {e}", ns.name));
        }
        ns.nft(&format!("add table inet {TABLE}"));
        ns.nft(&format!(
            "add set inet {TABLE} cut {{ type ipv4_addr . inet_service; }}"
        ));
        ns.nft(&format!(
            "add chain inet {TABLE} out {{ type filter hook output priority 0; policy accept; }}"
        ));
        ns.nft(&format!(
            "add rule inet {TABLE} out ip daddr . tcp dport @cut drop"
        ));
        Some(ns)
    }

    fn veth(&self, side: char) -> String {
        // Interface names are at most 15 bytes: "kfx" + 8 hex digits + side.
        format!("{}{side}", self.name)
    }

    fn nft(&self, rule: &str) {
        let mut args = vec!["ip", "netns", "exec", &self.name, "nft"];
        args.extend(rule.split(' '));
        run(&args).unwrap_or_else(|e| panic!("nftables in {}: {e}", self.name));
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This machine's end of the link: servers listen here to be reachable from both
    /// sides.
    pub fn host_ip(&self) -> String {
        format!("{}.1", self.subnet)
    }

    /// The namespace's own address (where a program inside it listens for the test).
    pub fn ip(&self) -> String {
        format!("{}.2", self.subnet)
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`; ip execs it, so
    /// the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Drops every packet the namespace sends to `address` (`ip:port`): connections there
    /// hang and new ones time out, as when a cable is pulled.
    ///
    /// # Panics
    /// When nftables refuses, or `address` is not `ip:port`.
    pub fn cut(&self, address: &str) {
        self.nft(&format!(
            "add element inet {TABLE} cut {{ {} }}",
            element(address)
        ));
    }

    /// Undoes [`cut`](Self::cut).
    ///
    /// # Panics
    /// When nftables refuses (it was not cut).
    pub fn mend(&self, address: &str) {
        self.nft(&format!(
            "delete element inet {TABLE} cut {{ {} }}",
            element(address)
        ));
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&s| s.to_owned()).collect()
}

/// `ip . port`, an element of the `cut` set.
fn element(address: &str) -> String {
    let (ip, port) = address
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address} is not ip:port"));
    format!("{ip} . {port}")
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The veth pair goes with the namespace.
        let _ = run(&["ip", "netns", "del", &self.name]);
        let _ = run(&["ip", "link", "del", &self.veth('h')]);
    }
}
