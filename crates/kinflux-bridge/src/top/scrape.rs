//! One scrape of a bridge's `/metrics`: a plain HTTP/1.1 GET (the endpoint is served on
//! the bridge's own host, without TLS) and the Prometheus text parsed into samples.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a scrape may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A sample's labels, by name.
pub(super) type Labels = BTreeMap<String, String>;

/// The samples of one scrape: metric name to (labels, value) pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Samples {
    by_name: BTreeMap<String, Vec<(Labels, f64)>>,
}

impl Samples {
    /// Parses Prometheus text (exposition format 0.0.4). Comments, blank lines and lines
    /// that do not parse are skipped.
    pub(super) fn parse(text: &str) -> Samples {
        let mut by_name: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((name, labels, value)) = sample(line) {
                by_name.entry(name).or_default().push((labels, value));
            }
        }
        Samples { by_name }
    }

    /// Every sample of `name`.
    pub(super) fn all(&self, name: &str) -> &[(Labels, f64)] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// The sum over every sample of `name` (0 when there is none).
    pub(super) fn sum(&self, name: &str) -> f64 {
        self.all(name).iter().map(|(_, v)| v).sum()
    }

    /// `name`'s values keyed by the value of `label`.
    pub(super) fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (labels, value) in self.all(name) {
            if let Some(l) = labels.get(label) {
                *out.entry(l.clone()).or_insert(0.0) += value;
            }
        }
        out
    }
}

/// `name{a="b",c="d"} value` or `name value` (a trailing timestamp is ignored).
fn sample(line: &str) -> Option<(String, Labels, f64)> {
    let (name, rest) = match line.find('{') {
        Some(open) => (&line[..open], &line[open..]),
        None => {
            let (name, rest) = line.split_once(' ')?;
            (name, rest)
        }
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        };
        &body[end + 1..]
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name.to_owned(), labels, value))
}

/// `http://HOST:PORT[/PATH]` split into the address and the path (`/metrics` when none).
pub(super) fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let path = if path == "/" { "/metrics" } else { path };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok((authority.to_owned(), path.to_owned()))
}

/// GETs `path` from `authority` and parses the answer.
pub(super) fn scrape(authority: &str, path: &str) -> Result<Samples, String> {
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{authority}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("{authority}: {e}"))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: text/plain\r\n\r\n"
    )
    .map_err(|e| format!("{authority}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("{authority}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{authority}: not an HTTP answer"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        return Err(format!("{authority}{path}: {status}"));
    }
    if head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    }) {
        return Ok(Samples::parse(&unchunk(body)));
    }
    Ok(Samples::parse(body))
}

/// A chunked body's data.
fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels() {
        let s = Samples::parse(
            "# HELP x y\n# TYPE x counter\nkinflux_records_in_total 12\n\
             kinflux_lag_records{topic=\"a\\\"b\",partition=\"0\"} 7\n\
             kinflux_lag_records{topic=\"c\",partition=\"1\"} 3 1700000000\n\
             kinflux_write_latency_seconds_bucket{le=\"+Inf\"} +Inf\nbroken{ 1\n",
        );
        assert_eq!(s.sum("kinflux_records_in_total"), 12.0);
        assert_eq!(s.sum("kinflux_lag_records"), 10.0);
        let lags = s.all("kinflux_lag_records");
        assert_eq!(lags[0].0["topic"], "a\"b");
        assert_eq!(lags[1].0["partition"], "1");
        assert_eq!(s.by_label("kinflux_lag_records", "topic")["c"], 3.0);
        assert!(s.sum("kinflux_write_latency_seconds_bucket").is_infinite());
        assert!(s.all("broken").is_empty());
    }

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:9273").unwrap(),
            ("127.0.0.1:9273".into(), "/metrics".into())
        );
        assert_eq!(
            split_url("http://h:1/x/metrics").unwrap(),
            ("h:1".into(), "/x/metrics".into())
        );
        assert!(split_url("https://h:1").is_err());
        assert!(split_url("http://").is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(unchunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
