//! What a batch holds after points are added: merging, order, flushing, and the records
//! each line answers for.

use std::time::{Duration, Instant};

use kinflux_batch::{Batch, Batcher, FlushPolicy, RecordId};
use kinflux_series::{Point, Precision, Timestamp};

fn record(partition: i32, offset: i64) -> RecordId {
    RecordId {
        topic: "t".into(),
        partition,
        offset,
    }
}

fn point(host: &str, field: &str, value: f64, ts: Option<i64>) -> Point {
    let b = Point::builder("cpu").tag("host", host).field(field, value);
    match ts {
        Some(t) => b.timestamp(Timestamp::from_nanos(t)),
        None => b,
    }
    .build()
    .unwrap()
}

fn lines(batch: &Batch) -> Vec<&str> {
    std::str::from_utf8(batch.body()).unwrap().lines().collect()
}

fn unlimited() -> FlushPolicy {
    FlushPolicy {
        max_points: usize::MAX,
        max_bytes: usize::MAX,
        max_age: Duration::from_secs(3600),
        sort_by_series: true,
    }
}

#[test]
fn same_series_and_time_merge_with_the_later_field_winning() {
    let mut b = Batcher::new(unlimited(), Precision::Nanoseconds);
    b.add(&point("a", "x", 1.0, Some(5)), &record(0, 0))
        .unwrap();
    b.add(&point("a", "y", 2.0, Some(5)), &record(0, 1))
        .unwrap();
    b.add(&point("a", "x", 3.0, Some(5)), &record(0, 2))
        .unwrap();
    let batch = b.flush().unwrap();
    assert_eq!(lines(&batch), ["cpu,host=a y=2.0,x=3.0 5"]);
    assert_eq!(
        (batch.points_in(), batch.merged(), batch.line_count()),
        (3, 2, 1)
    );
    assert_eq!(
        batch.records_of_line(0).collect::<Vec<_>>(),
        [record(0, 0), record(0, 1), record(0, 2)]
    );
}

#[test]
fn different_time_or_series_stay_separate_and_are_sorted() {
    let mut b = Batcher::new(unlimited(), Precision::Nanoseconds);
    b.add(&point("b", "x", 1.0, Some(5)), &record(0, 0))
        .unwrap();
    b.add(&point("a", "x", 1.0, Some(6)), &record(1, 0))
        .unwrap();
    b.add(&point("a", "x", 1.0, Some(5)), &record(1, 1))
        .unwrap();
    let batch = b.flush().unwrap();
    assert_eq!(
        lines(&batch),
        [
            "cpu,host=a x=1.0 5",
            "cpu,host=a x=1.0 6",
            "cpu,host=b x=1.0 5"
        ]
    );
    assert_eq!(batch.merged(), 0);
    assert_eq!(batch.records_of_line(0).collect::<Vec<_>>(), [record(1, 1)]);
    assert_eq!(batch.records_of_line(2).collect::<Vec<_>>(), [record(0, 0)]);
    assert_eq!(batch.coverage().len(), 2);
    assert_eq!(batch.coverage()[1].offsets, vec![0..2]);
}

#[test]
fn each_line_keeps_the_topic_of_its_records() {
    // The batcher names a record's topic by index: records of several topics, in turns,
    // and a topic whose name comes in two `Arc`s, must each keep theirs.
    let of = |topic: &str, offset: i64| RecordId {
        topic: topic.into(),
        partition: 0,
        offset,
    };
    let mut b = Batcher::new(unlimited(), Precision::Nanoseconds);
    b.add(&point("a", "x", 1.0, Some(1)), &of("zeta", 0))
        .unwrap();
    b.add(&point("b", "x", 1.0, Some(1)), &of("alpha", 0))
        .unwrap();
    b.add(&point("c", "x", 1.0, Some(1)), &of("zeta", 1))
        .unwrap();
    b.add(&point("a", "y", 2.0, Some(1)), &of("alpha", 1))
        .unwrap();
    let batch = b.flush().unwrap();
    assert_eq!(
        lines(&batch),
        [
            "cpu,host=a x=1.0,y=2.0 1",
            "cpu,host=b x=1.0 1",
            "cpu,host=c x=1.0 1"
        ]
    );
    assert_eq!(
        batch.records_of_line(0).collect::<Vec<_>>(),
        [of("zeta", 0), of("alpha", 1)]
    );
    assert_eq!(
        batch.records_of_line(1).collect::<Vec<_>>(),
        [of("alpha", 0)]
    );
    assert_eq!(
        batch.records_of_line(2).collect::<Vec<_>>(),
        [of("zeta", 1)]
    );
    let coverage = batch.coverage();
    let topics: Vec<&str> = coverage.iter().map(|c| &*c.topic).collect();
    assert_eq!(topics, ["alpha", "zeta"]);
    assert_eq!(coverage[0].offsets, vec![0..2]);
    assert_eq!(coverage[1].offsets, vec![0..2]);

    // The next batch starts its topics anew.
    b.add(&point("a", "x", 1.0, Some(2)), &of("alpha", 2))
        .unwrap();
    let next = b.flush().unwrap();
    assert_eq!(
        next.records_of_line(0).collect::<Vec<_>>(),
        [of("alpha", 2)]
    );
}

#[test]
fn points_without_time_are_never_merged() {
    let mut b = Batcher::new(unlimited(), Precision::Nanoseconds);
    b.add(&point("a", "x", 1.0, None), &record(0, 0)).unwrap();
    b.add(&point("a", "x", 2.0, None), &record(0, 1)).unwrap();
    let batch = b.flush().unwrap();
    assert_eq!(lines(&batch), ["cpu,host=a x=1.0", "cpu,host=a x=2.0"]);
}

#[test]
fn unsorted_batches_keep_arrival_order() {
    let policy = FlushPolicy {
        sort_by_series: false,
        ..unlimited()
    };
    let mut b = Batcher::new(policy, Precision::Nanoseconds);
    b.add(&point("b", "x", 1.0, Some(1)), &record(0, 0))
        .unwrap();
    b.add(&point("a", "x", 1.0, Some(1)), &record(0, 1))
        .unwrap();
    assert_eq!(
        lines(&b.flush().unwrap()),
        ["cpu,host=b x=1.0 1", "cpu,host=a x=1.0 1"]
    );
}

#[test]
fn timestamps_are_written_in_the_batch_precision() {
    let mut b = Batcher::new(unlimited(), Precision::Seconds);
    b.add(
        &point("a", "x", 1.0, Some(1_700_000_000_123_456_789)),
        &record(0, 0),
    )
    .unwrap();
    assert_eq!(lines(&b.flush().unwrap()), ["cpu,host=a x=1.0 1700000000"]);
}

#[test]
fn max_points_flushes_on_the_add_that_reaches_it() {
    let policy = FlushPolicy {
        max_points: 2,
        ..unlimited()
    };
    let mut b = Batcher::new(policy, Precision::Nanoseconds);
    assert!(
        b.add(&point("a", "x", 1.0, Some(1)), &record(0, 0))
            .unwrap()
            .is_none()
    );
    // A merge adds no line, so it does not fill the batch.
    assert!(
        b.add(&point("a", "y", 1.0, Some(1)), &record(0, 1))
            .unwrap()
            .is_none()
    );
    let full = b
        .add(&point("b", "x", 1.0, Some(1)), &record(0, 2))
        .unwrap()
        .unwrap();
    assert_eq!(full.line_count(), 2);
    assert!(b.is_empty());
    assert!(b.flush().is_none());
}

#[test]
fn max_bytes_flushes_before_the_body_grows_past_it() {
    let policy = FlushPolicy {
        max_bytes: 100,
        ..unlimited()
    };
    let mut b = Batcher::new(policy, Precision::Nanoseconds);
    let mut flushed = Vec::new();
    for i in 0..20 {
        if let Some(batch) = b
            .add(
                &point(&format!("host{i}"), "x", 1.0, Some(i)),
                &record(0, i),
            )
            .unwrap()
        {
            flushed.push(batch);
        }
    }
    flushed.extend(b.flush());
    assert!(flushed.len() > 2);
    let total: usize = flushed.iter().map(Batch::line_count).sum();
    assert_eq!(total, 20);
    for batch in &flushed[..flushed.len() - 1] {
        assert!(batch.body().len() <= 100 + 40, "{}", batch.body().len());
    }
}

#[test]
fn max_age_flushes_only_once_the_oldest_point_is_due() {
    let policy = FlushPolicy {
        max_age: Duration::from_millis(50),
        ..unlimited()
    };
    let mut b = Batcher::new(policy, Precision::Nanoseconds);
    assert!(b.deadline().is_none());
    let before = Instant::now();
    b.add(&point("a", "x", 1.0, Some(1)), &record(0, 0))
        .unwrap();
    let deadline = b.deadline().unwrap();
    assert!(deadline >= before + Duration::from_millis(50));
    assert!(b.flush_due(deadline - Duration::from_millis(1)).is_none());
    assert_eq!(b.flush_due(deadline).unwrap().line_count(), 1);
    assert!(b.deadline().is_none());
}

#[test]
fn a_point_line_protocol_cannot_carry_is_refused_and_changes_nothing() {
    let mut b = Batcher::new(unlimited(), Precision::Nanoseconds);
    b.add(&point("a", "x", 1.0, Some(1)), &record(0, 0))
        .unwrap();
    let bad = Point::builder("cpu")
        .tag("host", "two\nlines")
        .field("x", 1.0)
        .build()
        .unwrap();
    assert!(b.add(&bad, &record(0, 1)).is_err());
    let batch = b.flush().unwrap();
    assert_eq!(lines(&batch), ["cpu,host=a x=1.0 1"]);
    assert_eq!(batch.points_in(), 1);
    assert_eq!(batch.coverage()[0].offsets, vec![0..1]);
}

#[test]
fn line_ranges_cover_the_body() {
    let mut b = Batcher::new(unlimited(), Precision::Nanoseconds);
    for i in 0..5 {
        b.add(
            &point(&format!("h{i}"), "x", i as f64, Some(i)),
            &record(0, i),
        )
        .unwrap();
    }
    let batch = b.flush().unwrap();
    let mut end = 0;
    for i in 0..batch.line_count() {
        let r = batch.line_range(i).unwrap();
        assert_eq!(r.start, end);
        assert_eq!(batch.body()[r.end - 1], b'\n');
        end = r.end;
    }
    assert_eq!(end, batch.body().len());
    assert!(batch.line_range(5).is_none());
}

/// Lines forwarded with their time as written give the same batch as with the time
/// alone; a batch in another precision formats the time instead of copying it.
#[test]
fn a_written_time_is_copied_only_into_a_batch_of_its_precision() {
    use kinflux_line::{Forward, ParseOptions, parse};
    let input = b"cpu,host=a v=1 1700000000123456789\ncpu,host=a w=2 1700000000123456789\n\
                  cpu,host=b v=3 -5\n";
    let batch_of = |precision: Precision, written: bool| {
        let mut batcher = Batcher::new(unlimited(), precision);
        let mut lines = parse(input, ParseOptions::default());
        let mut offset = 0;
        while let Some(line) = lines.next_forward() {
            let Ok(Forward::Raw {
                series_key,
                fields,
                timestamp,
                written_time,
            }) = line
            else {
                panic!("plain lines forward raw");
            };
            let (key, fields) = (&input[series_key], &input[fields]);
            offset += 1;
            let added = match written_time.filter(|_| written) {
                Some(w) => batcher.add_encoded_written(key, fields, w, &record(0, offset)),
                None => batcher.add_encoded(key, fields, timestamp, &record(0, offset)),
            };
            assert!(added.expect("valid times").is_none());
        }
        batcher.flush().expect("three lines")
    };
    let copied = batch_of(Precision::Nanoseconds, true);
    assert_eq!(
        lines(&copied),
        [
            "cpu,host=a v=1,w=2 1700000000123456789",
            "cpu,host=b v=3 -5"
        ]
    );
    assert_eq!(
        copied.body(),
        batch_of(Precision::Nanoseconds, false).body()
    );
    assert_eq!(copied.merged(), 1);
    let coarser = batch_of(Precision::Milliseconds, true);
    assert_eq!(
        lines(&coarser),
        ["cpu,host=a v=1,w=2 1700000000123", "cpu,host=b v=3 -1"]
    );
}
