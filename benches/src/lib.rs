//! Support for the criterion benchmarks of the kinflux crates: deterministic corpora.

/// A small deterministic generator (64-bit LCG), so every run measures the same bytes.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Sorts the tags of a generated line by key, as Telegraf writes them.
fn sort_tags(line: &str) -> String {
    // Generated names escape only single characters, so "not after a backslash" is exact.
    let unescaped =
        |bytes: &[u8], i: usize, c: u8| bytes[i] == c && (i == 0 || bytes[i - 1] != b'\\');
    let space = (0..line.len())
        .find(|&i| unescaped(line.as_bytes(), i, b' '))
        .expect("a space after the series key");
    let (series, rest) = (&line[..space], &line[space + 1..]);
    let mut parts: Vec<&str> = Vec::new();
    let mut start = 0;
    let bytes = series.as_bytes();
    for i in 0..bytes.len() {
        if unescaped(bytes, i, b',') {
            parts.push(&series[start..i]);
            start = i + 1;
        }
    }
    parts.push(&series[start..]);
    let (measurement, tags) = parts.split_first().expect("a measurement");
    let mut tags = tags.to_vec();
    tags.sort_by_key(|t| t.split_once('=').map(|(k, _)| k).unwrap_or(t));
    format!("{measurement},{} {rest}", tags.join(","))
}

/// Point `i` of `e2e_bench`'s line-protocol input, over `series` hosts, a microsecond
/// apart: `load,host=server-00042,region=r2 usage=12.34,requests=5i,ok=true <ns>`.
pub fn load_line(i: usize, series: usize) -> String {
    let host = i % series.max(1);
    format!(
        "load,host=server-{host:05},region=r{} usage={:.2},requests={}i,ok=true {}",
        host % 4,
        (i % 10_000) as f64 / 100.0,
        i % 977,
        1_700_000_000_000_000_000u64 + i as u64 * 1_000,
    )
}

/// The first `n` points of [`load_line`] over `series` hosts, one line each.
pub fn load_lines(n: usize, series: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| load_line(i, series).into_bytes().into_iter().chain([b'\n']))
        .collect()
}

/// Point `i` of [`load_line`] as `e2e_bench`'s JSON document (one a record), the shape
/// Telegraf's `json_v2` and our JSON decoder read: tags and fields as members, the time in
/// milliseconds: `{"host":"server-00042","region":"r2","usage":12.34,...,"time":<ms>}`.
pub fn load_json(i: usize, series: usize) -> String {
    let host = i % series.max(1);
    format!(
        r#"{{"host":"server-{host:05}","region":"r{}","usage":{:.2},"requests":{},"ok":true,"time":{}}}"#,
        host % 4,
        (i % 10_000) as f64 / 100.0,
        i % 977,
        1_700_000_000_000u64 + i as u64,
    )
}

/// Telegraf-like line protocol: `cpu`, `mem`, `disk`, `net` and `procstat` lines with
/// about ten tags and ten fields each, some escaped names and quoted strings, one line per
/// point, nanosecond timestamps.
pub fn telegraf_corpus(lines: usize) -> String {
    let mut r = Lcg::new(42);
    let mut out = String::with_capacity(lines * 300);
    let hosts = ["web-1", "web-2", "db\\ primary", "cache-7", "edge\\,eu"];
    let regions = ["eu-west-1", "us-east-1", "ap-south-1"];
    for i in 0..lines {
        let host = hosts[r.below(hosts.len() as u64) as usize];
        let region = regions[r.below(regions.len() as u64) as usize];
        let common = format!(
            "arch=x86_64,dc={region}a,env=prod,host={host},os=linux,rack=r{},region={region},service=api,team=platform",
            r.below(40)
        );
        let ts = 1_700_000_000_000_000_000i64 + i as i64 * 10_000_000;
        let line = match i % 5 {
            0 => format!(
                "cpu,cpu=cpu{},{common} usage_user={:.3},usage_system={:.3},usage_idle={:.3},usage_iowait={:.3},usage_irq=0,usage_softirq={:.4},usage_steal=0,usage_guest=0,usage_nice={:.2},usage_guest_nice=0 {ts}",
                r.below(16),
                r.below(10_000) as f64 / 100.0,
                r.below(10_000) as f64 / 100.0,
                r.below(10_000) as f64 / 100.0,
                r.below(1_000) as f64 / 100.0,
                r.below(1_000) as f64 / 1000.0,
                r.below(100) as f64 / 10.0,
            ),
            1 => format!(
                "mem,{common} active={}i,available={}i,available_percent={:.4},buffered={}i,cached={}i,free={}i,inactive={}i,total=17179869184i,used={}i,used_percent={:.4} {ts}",
                r.below(1 << 34),
                r.below(1 << 34),
                r.below(1_000_000) as f64 / 10_000.0,
                r.below(1 << 30),
                r.below(1 << 32),
                r.below(1 << 33),
                r.below(1 << 32),
                r.below(1 << 34),
                r.below(1_000_000) as f64 / 10_000.0,
            ),
            2 => format!(
                "disk,device=nvme0n1p{},fstype=ext4,mode=rw,path=/var/lib/data\\ {},{common} free={}i,inodes_free={}i,inodes_total=6553600i,inodes_used={}i,total=536870912000i,used={}i,used_percent={:.3},read_only=false {ts}",
                r.below(4),
                r.below(3),
                r.below(1 << 38),
                r.below(6_553_600),
                r.below(6_553_600),
                r.below(1 << 38),
                r.below(100_000) as f64 / 1000.0,
            ),
            3 => format!(
                "net,interface=eth{},{common} bytes_recv={}i,bytes_sent={}i,drop_in={}i,drop_out=0i,err_in=0i,err_out=0i,packets_recv={}i,packets_sent={}i,speed=10000i,up=true {ts}",
                r.below(4),
                r.below(1 << 40),
                r.below(1 << 40),
                r.below(100),
                r.below(1 << 32),
                r.below(1 << 32),
            ),
            _ => format!(
                "procstat,exe=nginx,pattern=nginx,process_name=nginx,user=www-data,{common} cpu_usage={:.3},memory_rss={}i,memory_vms={}i,num_threads={}i,pid={}i,cmdline=\"nginx: worker process \\\"{}\\\"\",status=\"running\",voluntary_context_switches={}i,running=true,created_at={}i {ts}",
                r.below(10_000) as f64 / 100.0,
                r.below(1 << 28),
                r.below(1 << 31),
                r.below(64),
                r.below(65_536),
                r.below(8),
                r.below(1 << 24),
                1_699_000_000_000_000_000i64 + r.below(1 << 40) as i64,
            ),
        };
        out.push_str(&sort_tags(&line));
        out.push('\n');
    }
    out
}

/// Touches every part of a kinflux point (names, values, time), so a benchmark of a parser
/// that yields points does the same work as one of a parser that yields lines.
pub fn consume_point(p: &impl kinflux_series::PointView) -> usize {
    use kinflux_series::FieldValueRef;
    let mut n = p.measurement().len();
    for (k, v) in p.tags() {
        n += k.len() + v.len();
    }
    for (k, v) in p.fields() {
        n += k.len();
        n += match v {
            FieldValueRef::Float(f) => f.to_bits() as usize & 1,
            FieldValueRef::Integer(i) => i as usize & 1,
            FieldValueRef::UInteger(u) => u as usize & 1,
            FieldValueRef::String(s) => s.len(),
            FieldValueRef::Boolean(b) => b as usize,
            _ => 0,
        };
    }
    n + p.timestamp().map_or(0, |t| t.as_nanos() as usize & 1)
}

/// Touches every part of a line parsed by `influxdb-line-protocol` 2.0.0, the peer.
pub fn consume_peer_line(l: &influxdb_line_protocol::ParsedLine<'_>) -> usize {
    use influxdb_line_protocol::FieldValue as F;
    let mut n = l.series.measurement.as_str().len();
    for (k, v) in l.series.tag_set.iter().flatten() {
        n += k.as_str().len() + v.as_str().len();
    }
    for (k, v) in &l.field_set {
        n += k.as_str().len();
        n += match v {
            F::F64(f) => f.to_bits() as usize & 1,
            F::I64(i) => *i as usize & 1,
            F::U64(u) => *u as usize & 1,
            F::String(s) => s.as_str().len(),
            F::Boolean(b) => *b as usize,
        };
    }
    n + l.timestamp.map_or(0, |t| t as usize & 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_lines_have_sorted_tags_and_escapes() {
        let corpus = telegraf_corpus(50);
        assert_eq!(corpus.lines().count(), 50);
        assert!(corpus.contains("host=db\\ primary") || corpus.contains("host=edge\\,eu"));
        let first = corpus.lines().next().unwrap();
        assert!(first.starts_with("cpu,arch=x86_64,cpu=cpu"), "{first}");
    }
}
