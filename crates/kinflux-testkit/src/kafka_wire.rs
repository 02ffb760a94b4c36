//! The few Kafka admin requests rskafka lacks, written in bytes: which broker leads each
//! partition of a topic and which replicas are in sync (Metadata v4), which broker
//! coordinates a consumer group (FindCoordinator v1), and setting one topic config
//! (IncrementalAlterConfigs v0), and a group's committed offsets (OffsetFetch v1). Layouts from <https://kafka.apache.org/protocol.html>.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const METADATA: i16 = 3;
const OFFSET_FETCH: i16 = 9;
const FIND_COORDINATOR: i16 = 10;
const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
const CORRELATION_ID: i32 = 7;
/// Connecting to a live broker takes microseconds; a killed one refuses at once, a cut
/// one (dropped packets) would hang without this.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One partition as the cluster's metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The partition's error code (0, or 5 LEADER_NOT_AVAILABLE while it has none).
    pub error: i16,
    /// The node id of its leader, -1 when it has none.
    pub leader: i32,
    /// Its replicas' node ids.
    pub replicas: Vec<i32>,
    /// The node ids of the replicas in sync.
    pub isr: Vec<i32>,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn string(s: &str) -> Vec<u8> {
    let len = i16::try_from(s.len()).expect("a short string");
    [&len.to_be_bytes()[..], s.as_bytes()].concat()
}

/// Sends one request (header v1: api key, version, correlation id, client id) to `broker`
/// and returns the response body after its correlation id.
fn call(broker: &str, api_key: i16, version: i16, body: &[u8]) -> io::Result<Vec<u8>> {
    let address = broker
        .parse()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(broker)?
                .next()
                .ok_or_else(|| invalid("no address"))
        })
        .map_err(|e: io::Error| io::Error::new(e.kind(), format!("{broker}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut request = Vec::with_capacity(body.len() + 32);
    request.extend(api_key.to_be_bytes());
    request.extend(version.to_be_bytes());
    request.extend(CORRELATION_ID.to_be_bytes());
    request.extend(string("kinflux-testkit"));
    request.extend(body);
    let size = i32::try_from(request.len()).expect("a small request");
    stream.write_all(&size.to_be_bytes())?;
    stream.write_all(&request)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| invalid("size"))?;
    let mut answer = vec![0u8; size];
    stream.read_exact(&mut answer)?;
    if answer.get(..4) != Some(&CORRELATION_ID.to_be_bytes()[..]) {
        return Err(invalid("an answer with another correlation id"));
    }
    answer.drain(..4);
    Ok(answer)
}

/// A cursor over a response body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let (head, rest) = self
            .0
            .split_at_checked(N)
            .ok_or_else(|| invalid("a short answer"))?;
        self.0 = rest;
        Ok(head.try_into().expect("N bytes"))
    }
    fn i8(&mut self) -> io::Result<i8> {
        Ok(i8::from_be_bytes(self.take()?))
    }
    fn i16(&mut self) -> io::Result<i16> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_be_bytes(self.take()?))
    }
    /// A string or nullable string (length -1: `None`).
    fn string(&mut self) -> io::Result<Option<String>> {
        let len = self.i16()?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        let (s, rest) = self
            .0
            .split_at_checked(len)
            .ok_or_else(|| invalid("a short string"))?;
        self.0 = rest;
        Ok(Some(String::from_utf8_lossy(s).into_owned()))
    }
    fn count(&mut self) -> io::Result<usize> {
        Ok(usize::try_from(self.i32()?).unwrap_or(0))
    }
    fn i32s(&mut self) -> io::Result<Vec<i32>> {
        (0..self.count()?).map(|_| self.i32()).collect()
    }
}

/// The brokers (node id: `host:port`) and the partitions of `topic` (partition: state),
/// as `broker` knows them.
///
/// # Errors
/// When `broker` cannot be reached, answers out of protocol, or does not know `topic`.
pub fn metadata(
    broker: &str,
    topic: &str,
) -> io::Result<(BTreeMap<i32, String>, BTreeMap<i32, PartitionState>)> {
    let mut body = Vec::new();
    body.extend(1i32.to_be_bytes());
    body.extend(string(topic));
    body.push(0); // allow_auto_topic_creation: no
    let answer = call(broker, METADATA, 4, &body)?;
    let mut r = Reader(&answer);
    r.i32()?; // throttle
    let mut brokers = BTreeMap::new();
    for _ in 0..r.count()? {
        let id = r.i32()?;
        let host = r.string()?.unwrap_or_default();
        let port = r.i32()?;
        r.string()?; // rack
        brokers.insert(id, format!("{host}:{port}"));
    }
    r.string()?; // cluster id
    r.i32()?; // controller id
    let mut partitions = BTreeMap::new();
    for _ in 0..r.count()? {
        let error = r.i16()?;
        let name = r.string()?.unwrap_or_default();
        r.take::<1>()?; // is_internal
        if name == topic && error != 0 {
            return Err(invalid(&format!("metadata of {topic}: error {error}")));
        }
        for _ in 0..r.count()? {
            let error = r.i16()?;
            let index = r.i32()?;
            let leader = r.i32()?;
            let replicas = r.i32s()?;
            let isr = r.i32s()?;
            partitions.insert(
                index,
                PartitionState {
                    error,
                    leader,
                    replicas,
                    isr,
                },
            );
        }
    }
    Ok((brokers, partitions))
}

/// FindCoordinator (v1) for consumer group `group`: the error code (0 once the
/// coordinator is up, 15 COORDINATOR_NOT_AVAILABLE while a fresh cluster is still
/// creating `__consumer_offsets`) and the coordinator's node id.
///
/// # Errors
/// When `broker` (one `host:port`) cannot be reached or answers out of protocol.
pub fn coordinator(broker: &str, group: &str) -> io::Result<(i16, i32)> {
    let mut body = string(group);
    body.push(0); // key type: group
    let answer = call(broker, FIND_COORDINATOR, 1, &body)?;
    let mut r = Reader(&answer);
    r.i32()?; // throttle
    let error = r.i16()?;
    r.string()?; // error message
    Ok((error, r.i32()?))
}

/// Sets config `name` of `topic` to `value` (IncrementalAlterConfigs v0, operation SET):
/// the broker's error code, 0 when it took it.
///
/// # Errors
/// When `broker` cannot be reached or answers out of protocol.
pub fn set_topic_config(broker: &str, topic: &str, name: &str, value: &str) -> io::Result<i16> {
    const TOPIC: i8 = 2;
    const SET: i8 = 0;
    let mut body = Vec::new();
    body.extend(1i32.to_be_bytes());
    body.extend(TOPIC.to_be_bytes());
    body.extend(string(topic));
    body.extend(1i32.to_be_bytes());
    body.extend(string(name));
    body.extend(SET.to_be_bytes());
    body.extend(string(value));
    body.push(0); // validate_only: no
    let answer = call(broker, INCREMENTAL_ALTER_CONFIGS, 0, &body)?;
    let mut r = Reader(&answer);
    r.i32()?; // throttle
    if r.count()? != 1 {
        return Err(invalid("not one resource in the answer"));
    }
    let error = r.i16()?;
    r.string()?;
    r.i8()?;
    Ok(error)
}

/// The offsets consumer group `group` committed for `partitions` of `topic` (OffsetFetch
/// v1, asked of `coordinator`, the group's coordinator): partition: offset, -1 where
/// nothing was committed.
///
/// # Errors
/// When `coordinator` cannot be reached, answers out of protocol, or answers an error
/// (NOT_COORDINATOR after the group moved, say).
pub fn committed(
    coordinator: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> io::Result<BTreeMap<i32, i64>> {
    let mut body = string(group);
    body.extend(1i32.to_be_bytes());
    body.extend(string(topic));
    body.extend(
        i32::try_from(partitions.len())
            .expect("few partitions")
            .to_be_bytes(),
    );
    for p in partitions {
        body.extend(p.to_be_bytes());
    }
    let answer = call(coordinator, OFFSET_FETCH, 1, &body)?;
    let mut r = Reader(&answer);
    let mut out = BTreeMap::new();
    for _ in 0..r.count()? {
        r.string()?; // topic
        for _ in 0..r.count()? {
            let partition = r.i32()?;
            let offset = r.i64()?;
            r.string()?; // metadata
            let error = r.i16()?;
            if error != 0 {
                return Err(invalid(&format!(
                    "OffsetFetch of {partition}: error {error}"
                )));
            }
            out.insert(partition, offset);
        }
    }
    Ok(out)
}
