//! Collecting points into a batch, merging those that share a series key and a timestamp.

use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use kinflux_line::{EncodeError, WrittenTime};
use kinflux_series::{PointView, Precision, Timestamp};

use crate::record::Source;
use crate::{Batch, FlushPolicy, RecordId};

/// The largest `max_bytes` a batcher accepts; offsets inside a batch are `u32`.
pub const MAX_BATCH_BYTES: usize = 1 << 30;

/// No next entry in a hash chain.
const NONE: u32 = u32::MAX;

/// Bytes a line adds besides what the arena holds of it: the newline.
const LINE_OVERHEAD: usize = 1;

/// One line of the batch being built. The arena holds it as it will be sent, but for its
/// newline: `key fields` and, with a time, ` time`, the time written in the batch's
/// precision (encoded when the point is added, where it is checked anyway). A line of one
/// point is then copied to the body whole, not in five pieces.
#[derive(Debug)]
struct Entry {
    /// Where the line (its series key) starts in the arena.
    start: u32,
    /// Where the series key ends: at the space before the fields.
    key_end: u32,
    /// Where the first point's field section ends.
    fields_end: u32,
    /// Where the line ends.
    end: u32,
    timestamp: Option<Timestamp>,
    /// The field sections of points merged into this line later: an index into
    /// `Batcher::merges`, or `NONE` for the usual line of one point (a `Vec` per line
    /// cost a malloc per point, 6% of the bridge's CPU).
    merged: u32,
    /// The next entry whose merge key has the same hash.
    next_same_hash: u32,
}

impl Entry {
    /// The series key in the arena.
    fn key(&self) -> Range<usize> {
        self.start as usize..self.key_end as usize
    }

    /// The series key and the space after it.
    fn key_and_space(&self) -> Range<usize> {
        self.start as usize..self.key_end as usize + 1
    }

    /// The first point's field section.
    fn fields(&self) -> Range<usize> {
        self.key_end as usize + 1..self.fields_end as usize
    }

    /// The space and time after the fields (empty without a time).
    fn time(&self) -> Range<usize> {
        self.fields_end as usize..self.end as usize
    }

    /// The whole line, without its newline.
    fn line(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Collects points and merges those that share a series key and a timestamp into one
/// line, the way InfluxDB would store them: fields are unioned, and on the same field the
/// later point wins. Points without a timestamp are never merged, since the database gives
/// each its own arrival time.
///
/// Each add may return a [`Batch`] when a [`FlushPolicy`] limit is reached;
/// [`flush_due`](Self::flush_due) flushes by age and [`flush`](Self::flush) on demand.
#[derive(Debug)]
pub struct Batcher {
    policy: FlushPolicy,
    precision: Precision,
    /// Series keys and field sections of every entry, back to back: one allocation that
    /// is reused from batch to batch.
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// The field sections merged into lines, in the order they came (see `Entry::merged`).
    merges: Vec<Vec<Range<u32>>>,
    /// Merge-key hash to the first entry with that hash.
    index: std::collections::HashMap<u64, u32, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
    /// Which record each added point came from: (entry, index in `sources`).
    contributions: Vec<(u32, u32)>,
    /// The records points came from, each once per run of points from it: a record of
    /// many lines adds one, not one per line. Cloning a `RecordId` per point (an
    /// atomic increment of the topic's `Arc`, shared by every lane) was 9% of the
    /// bridge's CPU on line protocol; a `Source` names its topic by index instead.
    sources: Vec<Source>,
    /// The topics of `sources`, each cloned once per batch.
    topics: Vec<Arc<str>>,
    points_in: u64,
    merged: u64,
    oldest: Option<Instant>,
}

impl Batcher {
    /// A batcher flushing by `policy` and writing timestamps in `precision`.
    /// `max_bytes` is capped at [`MAX_BATCH_BYTES`].
    pub fn new(mut policy: FlushPolicy, precision: Precision) -> Self {
        policy.max_bytes = policy.max_bytes.min(MAX_BATCH_BYTES);
        Batcher {
            policy,
            precision,
            arena: Vec::new(),
            entries: Vec::new(),
            merges: Vec::new(),
            index: Default::default(),
            hasher: Default::default(),
            contributions: Vec::new(),
            sources: Vec::new(),
            topics: Vec::new(),
            points_in: 0,
            merged: 0,
            oldest: None,
        }
    }

    /// Adds a point decoded from `source`. Returns the batch when this point filled it.
    /// A point that line protocol cannot represent is refused and changes nothing.
    pub fn add(
        &mut self,
        point: &impl PointView,
        source: &RecordId,
    ) -> Result<Option<Batch>, EncodeError> {
        let start = self.arena.len();
        match encode_key_and_fields(point, &mut self.arena) {
            Ok((key_end, fields_end)) => {
                self.finish_line(start, key_end, fields_end, point.timestamp(), None, source)
            }
            Err(e) => {
                self.arena.truncate(start);
                Err(e)
            }
        }
    }

    /// Adds a point given as an already-escaped series key (as [`SeriesKey`] builds it)
    /// and an encoded field section (`k1=v1,k2=v2`), for decoders that checked and
    /// forward line protocol without building points. Returns the batch when full. A
    /// timestamp InfluxDB cannot store is refused.
    ///
    /// [`SeriesKey`]: kinflux_series::SeriesKey
    pub fn add_encoded(
        &mut self,
        series_key: &[u8],
        fields: &[u8],
        timestamp: Option<Timestamp>,
        source: &RecordId,
    ) -> Result<Option<Batch>, EncodeError> {
        self.add_line(series_key, fields, timestamp, None, source)
    }

    /// As [`add_encoded`](Self::add_encoded), for a line whose own time the parser
    /// handed over as written: when the batch writes the same precision, the text is
    /// copied instead of formatted again (formatting was 2% of the bridge's CPU).
    pub fn add_encoded_written(
        &mut self,
        series_key: &[u8],
        fields: &[u8],
        time: WrittenTime<'_>,
        source: &RecordId,
    ) -> Result<Option<Batch>, EncodeError> {
        // The parser checked this time against InfluxDB's range in its precision.
        let text = (time.precision() == self.precision).then(|| time.text());
        self.add_line(series_key, fields, Some(time.timestamp()), text, source)
    }

    /// Appends an encoded line's key and fields to the arena, then its time as given or
    /// formatted here, and files it.
    fn add_line(
        &mut self,
        series_key: &[u8],
        fields: &[u8],
        timestamp: Option<Timestamp>,
        time_text: Option<&[u8]>,
        source: &RecordId,
    ) -> Result<Option<Batch>, EncodeError> {
        let start = self.arena.len();
        self.arena.extend_from_slice(series_key);
        let key_end = self.arena.len();
        self.arena.push(b' ');
        self.arena.extend_from_slice(fields);
        let fields_end = self.arena.len();
        self.finish_line(start, key_end, fields_end, timestamp, time_text, source)
    }

    /// Ends the line whose key and fields were just appended at `start` with its time,
    /// files it, and returns the batch when it is full. A time InfluxDB cannot store
    /// takes the line back out.
    fn finish_line(
        &mut self,
        start: usize,
        key_end: usize,
        fields_end: usize,
        timestamp: Option<Timestamp>,
        time_text: Option<&[u8]>,
        source: &RecordId,
    ) -> Result<Option<Batch>, EncodeError> {
        if let Err(e) = self.write_time(timestamp, time_text) {
            self.arena.truncate(start);
            return Err(e);
        }
        self.insert(start, key_end, fields_end, timestamp, source);
        // `None` is written in place: returning an `Option<Batch>` built apart copied its
        // 176 bytes per point, 4% of the bridge's CPU on JSON.
        if self.is_full() {
            Ok(self.flush())
        } else {
            Ok(None)
        }
    }

    /// Appends the time as the line will carry it (a space, then `text` or the time
    /// formatted here), refusing one that InfluxDB cannot store in the batch's precision
    /// (the flush then only copies it). Nothing without a time.
    fn write_time(
        &mut self,
        ts: Option<Timestamp>,
        text: Option<&[u8]>,
    ) -> Result<(), EncodeError> {
        let Some(ts) = ts else { return Ok(()) };
        self.arena.push(b' ');
        match text {
            Some(text) => {
                self.arena.extend_from_slice(text);
                Ok(())
            }
            None => kinflux_line::encode_timestamp(ts, self.precision, &mut self.arena),
        }
    }

    /// Files the line just appended to the arena at `start` under a new entry, or under
    /// the entry with the same series key and timestamp.
    fn insert(
        &mut self,
        start: usize,
        key_end: usize,
        fields_end: usize,
        timestamp: Option<Timestamp>,
        source: &RecordId,
    ) {
        let mut entry = Entry {
            start: to_u32(start),
            key_end: to_u32(key_end),
            fields_end: to_u32(fields_end),
            end: to_u32(self.arena.len()),
            timestamp,
            merged: NONE,
            next_same_hash: NONE,
        };
        self.points_in += 1;
        self.oldest.get_or_insert_with(Instant::now);

        let entry_id = match timestamp {
            Some(ts) => {
                let hash = self.hasher.hash_one((&self.arena[entry.key()], ts));
                match self.find(hash, entry.key(), ts) {
                    Some(existing) => {
                        self.merge(existing, start, entry.fields());
                        existing
                    }
                    None => {
                        let id = to_u32(self.entries.len());
                        entry.next_same_hash = self.index.insert(hash, id).unwrap_or(NONE);
                        self.entries.push(entry);
                        id
                    }
                }
            }
            None => {
                let id = to_u32(self.entries.len());
                self.entries.push(entry);
                id
            }
        };
        let source_index = match self.sources.last() {
            Some(last) if self.is_source(last, source) => self.sources.len() - 1,
            _ => {
                let topic = self.topic_index(&source.topic);
                self.sources.push(Source {
                    topic,
                    partition: source.partition,
                    offset: source.offset,
                });
                self.sources.len() - 1
            }
        };
        self.contributions.push((entry_id, to_u32(source_index)));
    }

    /// Whether `source` is the record `known` stands for.
    fn is_source(&self, known: &Source, source: &RecordId) -> bool {
        known.offset == source.offset
            && known.partition == source.partition
            && same_topic(&self.topics[known.topic as usize], &source.topic)
    }

    /// The index of `topic` in `topics`, added when new. A batch holds one topic or a
    /// few: a scan finds it.
    fn topic_index(&mut self, topic: &Arc<str>) -> u32 {
        match self.topics.iter().position(|t| same_topic(t, topic)) {
            Some(i) => to_u32(i),
            None => {
                self.topics.push(Arc::clone(topic));
                to_u32(self.topics.len() - 1)
            }
        }
    }

    /// Merges the line just appended at `start` into entry `existing`: its field section
    /// (at `fields`) stays, moved to `start`; its repeated key and time go.
    fn merge(&mut self, existing: u32, start: usize, fields: Range<usize>) {
        let len = fields.len();
        self.arena.copy_within(fields, start);
        self.arena.truncate(start + len);
        let moved = to_u32(start)..to_u32(start + len);
        let entry = &mut self.entries[existing as usize];
        if entry.merged == NONE {
            entry.merged = to_u32(self.merges.len());
            self.merges.push(Vec::new());
        }
        self.merges[entry.merged as usize].push(moved);
        self.merged += 1;
    }

    /// The entry with this series key (bytes at `key` in the arena) and timestamp.
    fn find(&self, hash: u64, key: Range<usize>, ts: Timestamp) -> Option<u32> {
        let wanted = &self.arena[key];
        let mut id = *self.index.get(&hash)?;
        while id != NONE {
            let e = &self.entries[id as usize];
            if e.timestamp == Some(ts) && &self.arena[e.key()] == wanted {
                return Some(id);
            }
            id = e.next_same_hash;
        }
        None
    }

    /// Lines (points after merging) in the batch being built.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits to be flushed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// About how many bytes of line protocol the batch being built will take.
    pub fn estimated_bytes(&self) -> usize {
        self.arena.len() + self.entries.len() * LINE_OVERHEAD
    }

    /// When the batch being built reaches `max_age`, if it holds anything.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.policy.max_age)
    }

    /// Whether a [`FlushPolicy`] limit is reached.
    fn is_full(&self) -> bool {
        self.entries.len() >= self.policy.max_points
            || self.estimated_bytes() >= self.policy.max_bytes
    }

    /// Flushes the batch if its oldest point has waited `max_age` by `now`.
    pub fn flush_due(&mut self, now: Instant) -> Option<Batch> {
        match self.deadline() {
            Some(deadline) if now >= deadline => self.flush(),
            _ => None,
        }
    }

    /// The entries in series key order, then time order.
    ///
    /// Keys in a batch share long prefixes (measurement, first tag key, often its value),
    /// so comparing whole keys spent most of its time on equal bytes and cache misses: the
    /// sort was a tenth of the bridge's CPU. This is a most-significant-first radix sort
    /// in steps of 7 bytes: each run of entries whose keys agree so far skips the bytes
    /// they all share, then is ordered by its next 7 bytes and how many are left (see
    /// [`chunk`]) without comparisons. Runs with the same chunk are ordered again further
    /// on; keys are compared whole only within runs of fewer than [`SMALL_RUN`] entries.
    /// (Ordering only the first 8 bytes past the batch's common prefix left runs of
    /// thousands on Avro, whose keys go `plant=...,sensor_id=...`: 5% of the CPU in
    /// `memcmp`.)
    fn series_order(&self) -> Vec<u32> {
        let key = |id: u32| &self.arena[self.entries[id as usize].key()];
        let time = |id: u32| self.entries[id as usize].timestamp;
        let mut order: Vec<(u64, u32)> =
            (0..to_u32(self.entries.len())).map(|id| (0, id)).collect();
        let mut scratch = Vec::new();
        // Runs still to order: entries `start..end` of `order`, whose keys agree on their
        // first `from` bytes. A stack, not recursion: a chain of keys that each extend the
        // last would nest as deep as the batch is long.
        let mut runs = vec![(0, order.len(), 0)];
        while let Some((start, end, from)) = runs.pop() {
            let run = &mut order[start..end];
            if run.len() < SMALL_RUN {
                run.sort_by(|&(_, a), &(_, b)| {
                    key(a)[from..]
                        .cmp(&key(b)[from..])
                        .then(time(a).cmp(&time(b)))
                });
                continue;
            }
            let first = &key(run[0].1)[from..];
            let shared = run.iter().fold(first.len(), |shared, &(_, id)| {
                let k = &key(id)[from..];
                // Most keys share the whole prefix found so far: one slice compare.
                if k.get(..shared) == Some(&first[..shared]) {
                    return shared;
                }
                first[..shared]
                    .iter()
                    .zip(k)
                    .take_while(|(a, b)| a == b)
                    .count()
            });
            let from = from + shared;
            for item in run.iter_mut() {
                item.0 = chunk(&key(item.1)[from..]);
            }
            radix_sort_by_chunk(run, &mut scratch);
            let mut at = start;
            for same in run.chunk_by_mut(|a, b| a.0 == b.0) {
                if same.len() > 1 {
                    if goes_on(same[0].0) {
                        runs.push((at, at + same.len(), from + 7));
                    } else {
                        // The same key: by time, stable, so untimed lines keep their order.
                        same.sort_by_key(|&(_, id)| time(id));
                    }
                }
                at += same.len();
            }
        }
        order.into_iter().map(|(_, id)| id).collect()
    }

    /// Flushes whatever is collected; `None` when nothing is.
    pub fn flush(&mut self) -> Option<Batch> {
        if self.entries.is_empty() {
            return None;
        }
        let order: Vec<u32> = if self.policy.sort_by_series {
            self.series_order()
        } else {
            (0..to_u32(self.entries.len())).collect()
        };

        let mut body = Vec::with_capacity(self.estimated_bytes());
        let mut line_starts = Vec::with_capacity(order.len());
        let mut line_of_entry = vec![0u32; self.entries.len()];
        for (line, &id) in order.iter().enumerate() {
            let e = &self.entries[id as usize];
            line_of_entry[id as usize] = to_u32(line);
            line_starts.push(to_u32(body.len()));
            if e.merged == NONE {
                body.extend_from_slice(&self.arena[e.line()]);
            } else {
                body.extend_from_slice(&self.arena[e.key_and_space()]);
                let merged = self.merges[e.merged as usize]
                    .iter()
                    .map(|r| r.start as usize..r.end as usize);
                let sections: Vec<&[u8]> = std::iter::once(e.fields())
                    .chain(merged)
                    .map(|r| &self.arena[r])
                    .collect();
                crate::field_section::write_keep_last(&sections, &mut body);
                body.extend_from_slice(&self.arena[e.time()]);
            }
            body.push(b'\n');
        }

        let mut line_records = vec![0u32; order.len() + 1];
        for (entry, _) in &self.contributions {
            line_records[line_of_entry[*entry as usize] as usize + 1] += 1;
        }
        for i in 1..line_records.len() {
            line_records[i] += line_records[i - 1];
        }
        // Sources grouped by line, in the order they were added: a counting sort on the
        // counts just made, linear where a comparison sort cost 2% of the bridge's CPU.
        let mut next_slot = line_records.clone();
        let mut record_refs = vec![0u32; self.contributions.len()];
        for &(entry, source) in &self.contributions {
            let slot = &mut next_slot[line_of_entry[entry as usize] as usize];
            record_refs[*slot as usize] = source;
            *slot += 1;
        }
        // Kept for the next batch: its allocation is reused.
        self.contributions.clear();

        let batch = Batch {
            body: body.into(),
            line_starts,
            line_records,
            record_refs,
            records: std::mem::take(&mut self.sources),
            topics: std::mem::take(&mut self.topics),
            precision: self.precision,
            points_in: self.points_in,
            merged: self.merged,
        };
        self.arena.clear();
        self.entries.clear();
        self.merges.clear();
        self.index.clear();
        self.points_in = 0;
        self.merged = 0;
        self.oldest = None;
        Some(batch)
    }
}

/// Up to this many entries, a run is ordered by comparing keys: below it, a radix pass
/// over 256 buckets costs more than the comparisons.
const SMALL_RUN: usize = 64;

/// The first 7 bytes of `rest` (zero-padded) and, in the lowest byte, how many bytes it
/// has, capped at 8: as numbers, chunks order as the keys do. A shorter key sorts before
/// a longer one it begins, even when the longer goes on with zero bytes; a chunk ending
/// in 8 says the keys go on.
fn chunk(rest: &[u8]) -> u64 {
    // A key with 8 bytes left, the usual case, is read in one load (a copy of a
    // variable length called `memmove`: 1.3% of the bridge's CPU on Avro).
    if let Some(eight) = rest.first_chunk::<8>() {
        return (u64::from_be_bytes(*eight) & !0xff) | 8;
    }
    let mut bytes = [0u8; 8];
    bytes[..rest.len()].copy_from_slice(rest);
    bytes[7] = rest.len() as u8;
    u64::from_be_bytes(bytes)
}

/// Whether the keys of `chunk` go on past its 7 bytes (so equal chunks are not yet
/// equal keys).
fn goes_on(chunk: u64) -> bool {
    chunk & 0xff > 7
}

/// An entry's [`chunk`] and its index.
type Chunked = (u64, u32);

/// Sorts `run` by its chunks, least significant byte first, skipping the bytes every
/// chunk shares. Stable, so equal chunks keep the entries' insertion order.
fn radix_sort_by_chunk(run: &mut [Chunked], scratch: &mut Vec<Chunked>) {
    scratch.clear();
    scratch.resize(run.len(), (0, 0));
    // Whether the entries are in `scratch` now, not in `run`.
    let mut in_scratch = false;
    for byte in 0..8 {
        let shift = byte * 8;
        let digit = |chunk: u64| ((chunk >> shift) & 0xff) as usize;
        let (from, to): (&[Chunked], &mut [Chunked]) = if in_scratch {
            (&scratch[..], &mut *run)
        } else {
            (&*run, &mut scratch[..])
        };
        let mut counts = [0usize; 256];
        for &(chunk, _) in from {
            counts[digit(chunk)] += 1;
        }
        if counts.contains(&from.len()) {
            continue;
        }
        let mut next = 0;
        for count in &mut counts {
            (*count, next) = (next, next + *count);
        }
        for &item in from {
            let slot = &mut counts[digit(item.0)];
            to[*slot] = item;
            *slot += 1;
        }
        in_scratch = !in_scratch;
    }
    if in_scratch {
        run.copy_from_slice(scratch);
    }
}

/// Whether two ids name the same record; topics are compared by pointer first, since the
/// ids of one fetch share one `Arc`.
fn same_topic(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Appends `point`'s series key, a space and its field section to `out`: where the key
/// and the fields end. On error the caller takes back what was appended.
fn encode_key_and_fields(
    point: &impl PointView,
    out: &mut Vec<u8>,
) -> Result<(usize, usize), EncodeError> {
    kinflux_line::encode_series_key(point, out)?;
    let key_end = out.len();
    out.push(b' ');
    kinflux_line::encode_fields(point, out)?;
    Ok((key_end, out.len()))
}

/// Arena offsets fit in `u32`: a batch is flushed at `MAX_BATCH_BYTES` (1 GiB), and one
/// more point (a Kafka record, a few MiB at most) cannot reach 4 GiB.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a batch is flushed long before 4 GiB")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Chunks order as the bytes they stand for (7 of them, then how many are left),
        /// whether the key is read in one load or copied.
        #[test]
        fn chunks_order_as_their_keys(
            a in proptest::collection::vec(any::<u8>(), 0..12),
            b in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let expected = |k: &[u8]| (k[..k.len().min(7)].to_vec(), k.len().min(8));
            let (ca, cb) = (chunk(&a), chunk(&b));
            prop_assert_eq!(ca.cmp(&cb), expected(&a).cmp(&expected(&b)));
            prop_assert_eq!(goes_on(ca), a.len() > 7);
            prop_assert_eq!((ca >> 8).to_be_bytes()[1..].to_vec(), {
                let mut seven = a[..a.len().min(7)].to_vec();
                seven.resize(7, 0);
                seven
            });
        }
    }
}
