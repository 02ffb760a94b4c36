//! Records from the configured topics by a plain fetch, outside the consumer group:
//! nothing is joined or committed.

use std::sync::Arc;
use std::time::Duration;

use kinflux::kafka::fetch::{FetchClient, FetchParams, FetchPosition, OffsetSpec};
use kinflux::kafka::{ConsumerConfig, Record};

/// Where the records of a dry run start in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum From {
    /// The oldest records still in the log.
    Earliest,
    /// The newest records.
    Latest,
}

/// How long one dry run may spend fetching.
const DEADLINE: Duration = Duration::from_secs(30);

/// Up to `max` records of the topics `c` subscribes to: the oldest or the newest, over
/// every partition, in time order.
pub(super) async fn fetch(
    c: &ConsumerConfig,
    from: From,
    max: usize,
) -> Result<Vec<Record>, String> {
    tokio::time::timeout(DEADLINE, fetch_all(c, from, max))
        .await
        .map_err(|_| format!("fetching took longer than {DEADLINE:?}"))?
}

async fn fetch_all(c: &ConsumerConfig, from: From, max: usize) -> Result<Vec<Record>, String> {
    let client = FetchClient::connect(&c.brokers, &c.client_id, c.tls.as_ref(), c.sasl.as_ref())
        .await
        .map_err(|e| format!("kafka: {e}"))?;
    let partitions = partitions(&client, c).await?;
    let level = c.isolation_level;
    let mut records = Vec::new();
    for (topic, partition) in partitions {
        let offset = |spec| client.list_offset(&topic, partition, spec, level);
        let start = offset(OffsetSpec::Earliest)
            .await
            .map_err(|e| format!("kafka: {e}"))?;
        let end = offset(OffsetSpec::Latest)
            .await
            .map_err(|e| format!("kafka: {e}"))?;
        let (Some(start), Some(end)) = (start, end) else {
            continue;
        };
        let want = i64::try_from(max).unwrap_or(i64::MAX);
        let (first, last) = match from {
            From::Earliest => (start, end.min(start.saturating_add(want))),
            From::Latest => (start.max(end.saturating_sub(want)), end),
        };
        read_range(&client, c, &topic, partition, first, last, &mut records).await?;
    }
    records.sort_by_key(|r| (r.timestamp_ms, Arc::clone(&r.topic), r.partition, r.offset));
    if from == From::Latest {
        let skip = records.len().saturating_sub(max);
        records.drain(..skip);
    }
    records.truncate(max);
    Ok(records)
}

/// The partitions of the configured topics, or of the topics `topic_regex` matches.
async fn partitions(
    client: &FetchClient,
    c: &ConsumerConfig,
) -> Result<Vec<(Arc<str>, i32)>, String> {
    let counts = client
        .partition_counts()
        .await
        .map_err(|e| format!("kafka: {e}"))?;
    let regex = match &c.topic_regex {
        Some(r) => Some(anchored(r).map_err(|e| format!("topic_regex: {e}"))?),
        None => None,
    };
    let mut out = Vec::new();
    for (topic, count) in &counts {
        let wanted = match &regex {
            Some(r) => r.is_match(topic),
            None => c.topics.iter().any(|t| t == topic),
        };
        if wanted {
            let topic: Arc<str> = Arc::from(topic.as_str());
            out.extend((0..*count).map(|p| (Arc::clone(&topic), p)));
        }
    }
    if let Some(missing) = c.topics.iter().find(|t| !counts.contains_key(*t)) {
        return Err(format!("kafka: topic {missing} does not exist"));
    }
    Ok(out)
}

/// The regex of `topic_regex`, anchored as the consumer anchors it.
fn anchored(r: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{r})$"))
}

/// Appends the records of `first..last` of one partition to `out`.
async fn read_range(
    client: &FetchClient,
    c: &ConsumerConfig,
    topic: &Arc<str>,
    partition: i32,
    first: i64,
    last: i64,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    let mut params = FetchParams::default();
    params.max_wait = Duration::from_millis(500);
    params.max_bytes = c.fetch_max_bytes;
    params.partition_max_bytes = c.fetch_max_bytes;
    params.decode = kinflux::kafka::fetch::DecodeOptions::with_isolation_level(c.isolation_level);
    let mut offset = first;
    while offset < last {
        let wanted = [FetchPosition {
            topic: Arc::clone(topic),
            partition,
            offset,
        }];
        let fetched = client
            .fetch(&wanted, &params)
            .await
            .map_err(|e| format!("kafka: fetch of {topic}/{partition}: {e}"))?;
        let Some(p) = fetched.into_iter().next() else {
            return Err(format!("kafka: no answer for {topic}/{partition}"));
        };
        if p.error_code != 0 {
            return Err(format!(
                "kafka: fetch of {topic}/{partition}@{offset}: error code {}",
                p.error_code
            ));
        }
        if let Some(e) = &p.decoded.error {
            return Err(format!("kafka: {topic}/{partition}@{offset}: {e}"));
        }
        let next = p.decoded.next_offset;
        for r in p.decoded.records {
            if r.offset >= offset && r.offset < last {
                out.push(Record::from_fetched(topic, partition, r));
            }
        }
        if next <= offset {
            // Nothing more to read below `last` (transaction markers, compaction).
            break;
        }
        offset = next;
    }
    Ok(())
}
