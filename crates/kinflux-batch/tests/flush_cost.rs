//! What a flush costs does not grow with the partitions a batch holds: no per-partition
//! work is done for a summary nobody reads (the offsets a batch covers are worked out only
//! when `Batch::coverage` is asked for).

// Counting allocations needs a `GlobalAlloc`, which only `unsafe` code can implement; this
// one forwards every call to the system allocator unchanged, in this test binary only.
#![allow(unsafe_code)]
// A list of offset ranges that holds one range is what we mean.
#![allow(clippy::single_range_in_vec_init)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kinflux_batch::{Batcher, FlushPolicy, RecordId};
use kinflux_series::{Point, Precision, Timestamp};

/// Counts the allocations made on the current thread (other test threads do not count).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// thread-local `Cell` with a const initializer, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations made by flushing a batch of `partitions` partitions, each with records at
/// every other offset (so each partition's offsets make many separate ranges).
fn flush_allocations(partitions: i32) -> u64 {
    let policy = FlushPolicy {
        max_points: usize::MAX,
        max_bytes: usize::MAX,
        ..FlushPolicy::default()
    };
    let mut batcher = Batcher::new(policy, Precision::Nanoseconds);
    let topic: std::sync::Arc<str> = "t".into();
    for p in 0..partitions {
        for i in 0..20i64 {
            let point = Point::builder("m")
                .tag("p", p.to_string())
                .field("v", i)
                .timestamp(Timestamp::from_nanos(i))
                .build()
                .unwrap();
            let id = RecordId {
                topic: topic.clone(),
                partition: p,
                offset: 2 * i,
            };
            assert!(batcher.add(&point, &id).unwrap().is_none());
        }
    }
    let before = allocations();
    let batch = batcher.flush().expect("points were added");
    let made = allocations() - before;
    assert_eq!(batch.line_count(), 20 * partitions as usize);
    made
}

#[test]
fn flush_allocations_do_not_grow_with_the_partitions_in_the_batch() {
    let few = flush_allocations(2);
    let many = flush_allocations(200);
    // A flush allocates its body and index vectors, a handful whatever the batch holds;
    // summarizing 200 partitions' offsets took at least one allocation per partition.
    assert!(
        many <= few + 8,
        "a flush of 200 partitions made {many} allocations, one of 2 partitions {few}"
    );
}

#[test]
fn coverage_is_still_there_when_asked_for() {
    let mut batcher = Batcher::new(FlushPolicy::default(), Precision::Nanoseconds);
    for (partition, offset) in [(1, 7), (0, 4), (0, 3), (0, 9)] {
        let point = Point::builder("m")
            .field("v", offset)
            .timestamp(Timestamp::from_nanos(offset))
            .build()
            .unwrap();
        let id = RecordId {
            topic: "t".into(),
            partition,
            offset,
        };
        batcher.add(&point, &id).unwrap();
    }
    let batch = batcher.flush().unwrap();
    let coverage = batch.coverage();
    assert_eq!(coverage.len(), 2);
    assert_eq!(
        (coverage[0].partition, coverage[0].offsets.clone()),
        (0, vec![3..5, 9..10])
    );
    assert_eq!(
        (coverage[1].partition, coverage[1].offsets.clone()),
        (1, vec![7..8])
    );
}
