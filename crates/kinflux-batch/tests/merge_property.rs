//! Property: whatever points go in, the batch body parses back (with kinflux-line) to one
//! point per (series key, timestamp), holding the union of their fields with the later
//! value winning: what InfluxDB would store had each point been written on its own.

use std::collections::BTreeMap;
use std::time::Duration;

use kinflux_batch::{Batcher, FlushPolicy, RecordId};
use kinflux_series::{FieldValue, Point, PointView, Precision, SeriesKey, Timestamp};
use proptest::prelude::*;

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        (-1e6f64..1e6).prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        any::<bool>().prop_map(FieldValue::Boolean),
        "[a-z ,=\"\\\\]{0,8}".prop_map(FieldValue::String),
    ]
}

fn point() -> impl Strategy<Value = Point> {
    (
        0..3usize,
        prop::option::of(0..3i64),
        prop::collection::vec((0..4usize, field_value()), 1..4),
    )
        .prop_map(|(host, ts, fields)| {
            let mut b = Point::builder("m e,a").tag("host", ["a", "b c", "d,=e"][host]);
            for (k, v) in fields {
                b = b.field(["f", "g h", "i,j", "k=l"][k], v);
            }
            if let Some(t) = ts {
                b = b.timestamp(Timestamp::from_nanos(t));
            }
            b.build().unwrap()
        })
}

type Expected = BTreeMap<(String, i64), BTreeMap<String, FieldValue>>;

proptest! {
    #[test]
    fn batch_holds_the_keep_last_union_of_each_series_and_time(
        points in prop::collection::vec(point(), 1..40),
        max_points in 1..50usize,
    ) {
        let policy = FlushPolicy {
            max_points,
            max_bytes: usize::MAX,
            max_age: Duration::from_secs(60),
            sort_by_series: true,
        };
        let mut batcher = Batcher::new(policy, Precision::Nanoseconds);
        let mut batches = Vec::new();
        for (i, p) in points.iter().enumerate() {
            let record = RecordId { topic: "t".into(), partition: 0, offset: i as i64 };
            batches.extend(batcher.add(p, &record).unwrap());
        }
        batches.extend(batcher.flush());

        // What InfluxDB would store, batch by batch (a point merges only within its batch,
        // and across batches InfluxDB merges the same way).
        let mut expected: Expected = BTreeMap::new();
        let mut untimed_expected = Vec::new();
        for p in &points {
            match p.timestamp() {
                Some(t) => {
                    let fields = expected.entry((SeriesKey::of(p).to_string(), t.as_nanos())).or_default();
                    for (k, v) in PointView::fields(p) {
                        fields.insert(k.to_owned(), v.into_owned());
                    }
                }
                None => untimed_expected.push(p.clone()),
            }
        }

        let mut got: Expected = BTreeMap::new();
        let mut untimed_got = Vec::new();
        let mut records_seen = 0;
        for batch in &batches {
            let parsed: Vec<_> = kinflux_line::parse(batch.body(), Default::default())
                .map(|r| r.unwrap().into_owned())
                .collect();
            prop_assert_eq!(parsed.len(), batch.line_count());
            for (line, p) in parsed.iter().enumerate() {
                let records = batch.records_of_line(line);
                prop_assert!(records.len() > 0);
                records_seen += records.len();
                for r in records {
                    let source = &points[r.offset as usize];
                    prop_assert_eq!(SeriesKey::of(source), SeriesKey::of(p));
                    prop_assert_eq!(source.timestamp(), p.timestamp());
                }
                match p.timestamp() {
                    Some(t) => {
                        let fields = got.entry((SeriesKey::of(p).to_string(), t.as_nanos())).or_default();
                        for (k, v) in PointView::fields(p) {
                            fields.insert(k.to_owned(), v.into_owned());
                        }
                    }
                    None => untimed_got.push(p.clone()),
                }
            }
        }
        prop_assert_eq!(records_seen, points.len());
        prop_assert_eq!(got, expected);
        prop_assert_eq!(untimed_got.len(), untimed_expected.len());
    }
}

proptest! {
    /// Sorted batches list their lines by series key bytes, then time, whatever prefixes
    /// the keys share (the sort orders 8 bytes past the common prefix first, by a radix
    /// sort from 64 lines on, then compares whole keys where those bytes are equal).
    #[test]
    fn sorted_batches_order_lines_by_series_key_then_time(
        keys in prop::collection::vec("m,k=[ab]{0,10}", 1..300),
        times in prop::collection::vec(0..3i64, 300),
    ) {
        check_sorted(&keys, &times)?;
    }

    /// The same with long shared parts past the common prefix, keys that end where others
    /// go on with zero bytes, and (from the 8-byte segments, few distinct keys among
    /// hundreds of lines) runs of 64 and more that share 7 bytes and more, so that runs
    /// are radix-sorted again further on.
    #[test]
    fn sorted_batches_order_long_keys_that_share_much(
        keys in prop::collection::vec(
            prop_oneof!["m,k=(aaaaaaaa|b){0,4}[a\\x00]?", "m,k=aaaaaaaaaa[ab\\x00]{0,24}"],
            1..600,
        ),
        times in prop::collection::vec(0..3i64, 600),
    ) {
        check_sorted(&keys, &times)?;
    }
}

fn check_sorted(keys: &[String], times: &[i64]) -> Result<(), TestCaseError> {
    let policy = FlushPolicy {
        max_points: usize::MAX,
        max_bytes: usize::MAX,
        max_age: Duration::from_secs(60),
        sort_by_series: true,
    };
    let mut batcher = Batcher::new(policy, Precision::Nanoseconds);
    for (i, key) in keys.iter().enumerate() {
        let key = if key.len() == 4 { "m" } else { key.as_str() };
        let record = RecordId {
            topic: "t".into(),
            partition: 0,
            offset: i as i64,
        };
        batcher
            .add_encoded(
                key.as_bytes(),
                b"v=1",
                Some(Timestamp::from_nanos(times[i])),
                &record,
            )
            .unwrap();
    }
    let batch = batcher.flush().unwrap();
    let lines: Vec<(Vec<u8>, i64)> = batch
        .body()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (key, rest) = l.split_at(l.iter().position(|&b| b == b' ').unwrap());
            let ts = std::str::from_utf8(&rest[5..]).unwrap().parse().unwrap();
            (key.to_vec(), ts)
        })
        .collect();
    let mut sorted = lines.clone();
    sorted.sort();
    prop_assert_eq!(lines, sorted);
    Ok(())
}
