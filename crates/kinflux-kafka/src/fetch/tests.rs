//! Decoder tests on batches built by hand.

use bytes::{Bytes, BytesMut};

use super::{
    build::{BatchBuilder, Marker},
    *,
};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn concat(parts: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for p in parts {
        out.extend_from_slice(p);
    }
    out.freeze()
}

fn committed() -> DecodeOptions {
    DecodeOptions::with_isolation_level(IsolationLevel::ReadCommitted)
}

fn uncommitted() -> DecodeOptions {
    DecodeOptions::with_isolation_level(IsolationLevel::ReadUncommitted)
}

fn offsets(d: &DecodedPartition) -> Vec<i64> {
    d.records.iter().map(|r| r.offset).collect()
}

/// Rewrites the CRC after a test changed bytes behind it.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn sample(base: i64, codec: Compression, xerial: bool) -> Bytes {
    BatchBuilder::new(base)
        .compression(codec)
        .xerial_snappy(xerial)
        .record(Some(b"key-0"), Some(b"value-0"), &[])
        .record(
            None,
            None,
            &[(b"h1", Some(b"v1")), (b"h1", None), (b"", Some(b""))],
        )
        .record(Some(b""), Some(&[7u8; 3000]), &[(b"trace", Some(b"abc"))])
        .build()
        .unwrap()
}

#[test]
fn every_codec_decodes_keys_values_headers_and_timestamps() {
    for codec in CODECS {
        for xerial in [true, false] {
            let d = decode_partition(sample(40, codec, xerial), 40, &[], &committed());
            assert!(d.error.is_none(), "{codec}: {:?}", d.error);
            assert_eq!(offsets(&d), [40, 41, 42], "{codec}");
            assert_eq!(d.next_offset, 43);
            let [a, b, c] = &d.records[..] else {
                unreachable!()
            };
            assert_eq!(a.key.as_deref(), Some(&b"key-0"[..]));
            assert_eq!(a.value.as_deref(), Some(&b"value-0"[..]));
            assert!(a.headers.is_empty());
            assert_eq!(a.timestamp_ms, 1_700_000_000_000);
            assert_eq!(b.key, None);
            assert_eq!(b.value, None);
            assert_eq!(b.timestamp_ms, 1_700_000_000_001);
            let h: Vec<_> = b
                .headers
                .iter()
                .map(|h| (&h.key[..], h.value.as_deref()))
                .collect();
            assert_eq!(
                h,
                [
                    (&b"h1"[..], Some(&b"v1"[..])),
                    (&b"h1"[..], None),
                    (&b""[..], Some(&b""[..]))
                ]
            );
            assert_eq!(c.key.as_deref(), Some(&b""[..]));
            assert_eq!(c.value.as_deref(), Some(&[7u8; 3000][..]));
        }
    }
}

#[test]
fn uncompressed_values_are_slices_of_the_response() {
    let data = sample(0, Compression::None, false);
    let range = data.as_ptr_range();
    let d = decode_partition(data.clone(), 0, &[], &committed());
    for r in &d.records {
        if let Some(v) = r.value.as_ref().filter(|v| !v.is_empty()) {
            assert!(range.contains(&v.as_ptr()), "value was copied");
        }
        for h in &r.headers {
            if !h.key.is_empty() {
                assert!(range.contains(&h.key.as_ptr()), "header key was copied");
            }
        }
    }
}

#[test]
fn log_append_time_gives_every_record_the_batch_time() {
    let data = BatchBuilder::new(0)
        .record(None, Some(b"a"), &[])
        .record(None, Some(b"b"), &[])
        .log_append_time(1_800_000_000_123)
        .build()
        .unwrap();
    let d = decode_partition(data, 0, &[], &committed());
    assert!(
        d.records
            .iter()
            .all(|r| r.timestamp_ms == 1_800_000_000_123)
    );
}

#[test]
fn compacted_gaps_keep_offsets_and_the_position_moves_past_the_batch() {
    let data = BatchBuilder::new(100)
        .record_at(0, 0, None, Some(b"a"), &[])
        .record_at(3, 5, None, Some(b"b"), &[])
        .last_offset_delta(6)
        .build()
        .unwrap();
    let d = decode_partition(data, 100, &[], &committed());
    assert_eq!(offsets(&d), [100, 103]);
    assert_eq!(d.records[1].timestamp_ms, 1_700_000_000_005);
    assert_eq!(d.next_offset, 107);
}

#[test]
fn records_before_the_fetch_offset_are_not_handed_out_again() {
    let batch = |base| {
        let mut b = BatchBuilder::new(base);
        for i in 0..5u8 {
            b.record(None, Some(&[i]), &[]);
        }
        b.build().unwrap()
    };
    let data = concat(&[batch(10), batch(15)]);
    let d = decode_partition(data, 13, &[], &committed());
    assert_eq!(offsets(&d), [13, 14, 15, 16, 17, 18, 19]);
    assert_eq!(d.next_offset, 20);
}

#[test]
fn a_partial_batch_at_the_end_is_left_for_the_next_fetch() {
    let whole = sample(0, Compression::Zstd, false);
    let next = sample(3, Compression::None, false);
    for cut in [1, 11, 12, 30, next.len() - 1] {
        let data = concat(&[whole.clone(), next.slice(..cut)]);
        let d = decode_partition(data, 0, &[], &committed());
        assert!(d.error.is_none(), "cut {cut}: {:?}", d.error);
        assert_eq!(offsets(&d), [0, 1, 2]);
        assert_eq!(d.next_offset, 3);
        assert_eq!(d.trailing_bytes, cut);
    }
    let d = decode_partition(Bytes::new(), 9, &[], &committed());
    assert!(d.records.is_empty() && d.error.is_none());
    assert_eq!(d.next_offset, 9);
}

#[test]
fn a_bad_crc_stops_at_that_batch_and_names_its_offsets() {
    let good = sample(0, Compression::None, false);
    let mut bad = BytesMut::from(&sample(3, Compression::None, false)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let data = concat(&[good, bad.freeze(), sample(6, Compression::None, false)]);
    let d = decode_partition(data.clone(), 0, &[], &committed());
    assert_eq!(offsets(&d), [0, 1, 2]);
    assert_eq!(d.next_offset, 3);
    let e = d.error.unwrap();
    assert!(matches!(e.error, DecodeError::BadCrc { .. }), "{e}");
    assert_eq!((e.base_offset, e.last_offset), (3, 5));
    assert_eq!(e.error.kind(), "bad_crc");
    // Without the check, the flipped value byte comes through.
    let mut options = committed();
    options.verify_crc = false;
    let d = decode_partition(data, 0, &[], &options);
    assert!(d.error.is_none());
    assert_eq!(d.records.len(), 9);
}

#[test]
fn an_unknown_codec_is_a_typed_error_with_the_batch_range() {
    let mut batch = BytesMut::from(&sample(20, Compression::None, false)[..]);
    batch[22] = (batch[22] & !0x07) | 5;
    fix_crc(&mut batch);
    let d = decode_partition(batch.freeze(), 20, &[], &committed());
    let e = d.error.unwrap();
    assert_eq!(e.error, DecodeError::UnknownCodec(5));
    assert_eq!((e.base_offset, e.last_offset), (20, 22));
    assert_eq!(d.next_offset, 20);
    assert!(!e.bytes.is_empty());
}

#[test]
fn corrupt_compressed_bytes_are_a_typed_error_for_every_codec() {
    for codec in &CODECS[1..] {
        for xerial in [true, false] {
            let mut batch = BytesMut::from(&sample(0, *codec, xerial)[..]);
            // Garble the middle of the compressed stream.
            let mid = batch::HEADER_LEN + (batch.len() - batch::HEADER_LEN) / 2;
            for b in &mut batch[mid..mid + 8] {
                *b = !*b;
            }
            fix_crc(&mut batch);
            let d = decode_partition(batch.freeze(), 0, &[], &committed());
            let e = d.error.expect("garbled data decoded");
            assert!(
                matches!(
                    e.error,
                    DecodeError::Corrupt { .. }
                        | DecodeError::Invalid(_)
                        | DecodeError::Truncated(_)
                ),
                "{codec}: {e}"
            );
            assert!(d.records.is_empty());
        }
    }
}

#[test]
fn decompressed_size_is_bounded() {
    let mut b = BatchBuilder::new(0);
    b.compression(Compression::Zstd);
    b.record(None, Some(&vec![0u8; 1 << 20]), &[]);
    let mut options = committed();
    options.max_decompressed_bytes = 64 * 1024;
    for codec in &CODECS[1..] {
        b.compression(*codec);
        let d = decode_partition(b.build().unwrap(), 0, &[], &options);
        assert_eq!(
            d.error.map(|e| e.error),
            Some(DecodeError::TooLarge { limit: 64 * 1024 }),
            "{codec}"
        );
    }
}

#[test]
fn malformed_headers_and_records_are_errors_not_panics() {
    let good = sample(0, Compression::None, false);
    let edit = |f: &dyn Fn(&mut BytesMut)| {
        let mut b = BytesMut::from(&good[..]);
        f(&mut b);
        decode_partition(b.freeze(), 0, &[], &committed())
    };
    // Negative batch length.
    let d = edit(&|b| b[8..12].copy_from_slice(&(-5i32).to_be_bytes()));
    assert_eq!(
        d.error.unwrap().error,
        DecodeError::Invalid("negative batch length")
    );
    // A length too short for a header.
    let d = edit(&|b| {
        b[8..12].copy_from_slice(&20i32.to_be_bytes());
    });
    assert!(matches!(d.error.unwrap().error, DecodeError::Invalid(_)));
    // Magic 1.
    let d = edit(&|b| b[16] = 1);
    assert_eq!(d.error.unwrap().error, DecodeError::UnsupportedMagic(1));
    // More records announced than the bytes hold.
    let d = edit(&|b| {
        b[57..61].copy_from_slice(&1_000_000i32.to_be_bytes());
        fix_crc(b);
    });
    assert!(matches!(d.error.unwrap().error, DecodeError::Invalid(_)));
    // Fewer records announced than there are.
    let d = edit(&|b| {
        b[57..61].copy_from_slice(&2i32.to_be_bytes());
        fix_crc(b);
    });
    assert_eq!(
        d.error.unwrap().error,
        DecodeError::Invalid("bytes left after the last record")
    );
    // A record length that runs past its fields.
    let d = edit(&|b| {
        b[61] += 2;
        fix_crc(b);
    });
    assert!(d.error.is_some());
    assert!(
        d.records.is_empty(),
        "a failed batch hands out none of its records"
    );
}

/// Two producers: 1 commits, 2 aborts, their batches interleaved, then a plain record.
fn interleaved() -> (Bytes, Vec<AbortedTransaction>) {
    let data = concat(&[
        BatchBuilder::new(0)
            .transactional(1, 0)
            .record(None, Some(b"c0"), &[])
            .record(None, Some(b"c1"), &[])
            .build()
            .unwrap(),
        BatchBuilder::new(2)
            .transactional(2, 0)
            .compression(Compression::Lz4)
            .record(None, Some(b"a2"), &[])
            .record(None, Some(b"a3"), &[])
            .build()
            .unwrap(),
        BatchBuilder::new(4)
            .marker(1, 0, Marker::Commit)
            .build()
            .unwrap(),
        BatchBuilder::new(5)
            .marker(2, 0, Marker::Abort)
            .build()
            .unwrap(),
        BatchBuilder::new(6)
            .record(None, Some(b"plain"), &[])
            .build()
            .unwrap(),
    ]);
    let aborted = vec![AbortedTransaction {
        producer_id: 2,
        first_offset: 2,
    }];
    (data, aborted)
}

#[test]
fn read_committed_drops_aborted_transactions_and_markers() {
    let (data, aborted) = interleaved();
    let d = decode_partition(data, 0, &aborted, &committed());
    assert!(d.error.is_none());
    assert_eq!(offsets(&d), [0, 1, 6]);
    assert_eq!(d.next_offset, 7);
    assert_eq!(d.aborted_records, 2);
    assert_eq!(d.control_batches, 2);
}

#[test]
fn read_uncommitted_hands_out_aborted_records_but_never_markers() {
    let (data, aborted) = interleaved();
    let d = decode_partition(data, 0, &aborted, &uncommitted());
    assert_eq!(offsets(&d), [0, 1, 2, 3, 6]);
    assert_eq!(d.next_offset, 7);
    assert_eq!(d.aborted_records, 0);
}

#[test]
fn an_abort_marker_clears_the_producer_for_its_next_transaction() {
    let data = concat(&[
        BatchBuilder::new(0)
            .transactional(7, 0)
            .record(None, Some(b"x"), &[])
            .record(None, Some(b"x"), &[])
            .build()
            .unwrap(),
        BatchBuilder::new(2)
            .marker(7, 0, Marker::Abort)
            .build()
            .unwrap(),
        BatchBuilder::new(3)
            .transactional(7, 0)
            .record(None, Some(b"ok"), &[])
            .build()
            .unwrap(),
        // An idempotent, non-transactional batch of an aborting producer id is kept.
        BatchBuilder::new(4)
            .producer(8, 0)
            .record(None, Some(b"idem"), &[])
            .build()
            .unwrap(),
        BatchBuilder::new(5)
            .marker(7, 0, Marker::Commit)
            .build()
            .unwrap(),
    ]);
    let aborted = [
        AbortedTransaction {
            producer_id: 7,
            first_offset: 0,
        },
        AbortedTransaction {
            producer_id: 8,
            first_offset: 4,
        },
    ];
    let d = decode_partition(data, 0, &aborted, &committed());
    assert_eq!(offsets(&d), [3, 4]);
    // The log ends in a commit marker: the position is past it, nothing is left to read.
    assert_eq!(d.next_offset, 6);
}

#[test]
fn an_aborted_transaction_that_began_before_the_fetch_offset_is_still_dropped() {
    let data = concat(&[
        BatchBuilder::new(10)
            .transactional(3, 1)
            .record(None, Some(b"x"), &[])
            .build()
            .unwrap(),
        BatchBuilder::new(11)
            .marker(3, 1, Marker::Abort)
            .build()
            .unwrap(),
    ]);
    let aborted = [AbortedTransaction {
        producer_id: 3,
        first_offset: 4,
    }];
    let d = decode_partition(data, 10, &aborted, &committed());
    assert!(d.records.is_empty());
    assert_eq!(d.next_offset, 12);
}

#[test]
fn a_fetch_of_only_a_commit_marker_moves_past_it() {
    let data = BatchBuilder::new(41)
        .marker(5, 0, Marker::Commit)
        .build()
        .unwrap();
    for options in [committed(), uncommitted()] {
        let d = decode_partition(data.clone(), 41, &[], &options);
        assert!(d.records.is_empty() && d.error.is_none());
        assert_eq!(d.next_offset, 42);
    }
}

mod props {
    use proptest::prelude::*;

    use super::*;

    type Rec = (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(Vec<u8>, Option<Vec<u8>>)>,
    );

    fn rec() -> impl Strategy<Value = Rec> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        (
            proptest::option::of(bytes()),
            proptest::option::of(bytes()),
            proptest::collection::vec((bytes(), proptest::option::of(bytes())), 0..3),
        )
    }

    fn codec() -> impl Strategy<Value = (Compression, bool)> {
        (prop::sample::select(CODECS.to_vec()), any::<bool>())
    }

    proptest! {
        #[test]
        fn batches_round_trip(
            batches in proptest::collection::vec((codec(), proptest::collection::vec(rec(), 1..12)), 1..5),
            skip in 0usize..6,
        ) {
            let mut parts = Vec::new();
            let mut expected = Vec::new();
            let mut base = 1000i64;
            for ((codec, xerial), records) in &batches {
                let mut b = BatchBuilder::new(base);
                b.compression(*codec).xerial_snappy(*xerial);
                for (i, (k, v, h)) in records.iter().enumerate() {
                    let headers: Vec<(&[u8], Option<&[u8]>)> =
                        h.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
                    b.record(k.as_deref(), v.as_deref(), &headers);
                    expected.push((base + i as i64, k.clone(), v.clone(), h.clone()));
                }
                base += records.len() as i64;
                parts.push(b.build().unwrap());
            }
            let fetch_offset = 1000 + skip as i64;
            let d = decode_partition(concat(&parts), fetch_offset, &[], &committed());
            prop_assert!(d.error.is_none(), "{:?}", d.error);
            prop_assert_eq!(d.next_offset, base.max(fetch_offset));
            let got: Vec<_> = d
                .records
                .iter()
                .map(|r| {
                    (
                        r.offset,
                        r.key.as_ref().map(|k| k.to_vec()),
                        r.value.as_ref().map(|v| v.to_vec()),
                        r.headers
                            .iter()
                            .map(|h| (h.key.to_vec(), h.value.as_ref().map(|v| v.to_vec())))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            let expected: Vec<_> =
                expected.into_iter().filter(|e| e.0 >= fetch_offset).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400), crc in any::<bool>()) {
            let mut options = committed();
            options.verify_crc = crc;
            options.max_decompressed_bytes = 1 << 20;
            let d = decode_partition(Bytes::from(data), 0, &[], &options);
            prop_assert!(d.next_offset >= 0);
        }

        #[test]
        fn damaged_batches_never_panic(
            (codec, xerial) in codec(),
            records in proptest::collection::vec(rec(), 1..6),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut b = BatchBuilder::new(0);
            b.compression(codec).xerial_snappy(xerial);
            for (k, v, _) in &records {
                b.record(k.as_deref(), v.as_deref(), &[]);
            }
            let mut bytes = BytesMut::from(&b.build().unwrap()[..]);
            for (at, v) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *v;
            }
            fix_crc(&mut bytes);
            let len = cut.index(bytes.len() + 1);
            for isolation in [committed(), uncommitted()] {
                let d = decode_partition(bytes.clone().freeze().slice(..len), 0, &[], &isolation);
                prop_assert!(d.records.len() <= records.len());
            }
        }
    }
}
