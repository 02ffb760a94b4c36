//! Any bytes as a fetched partition's records: decoding hands out records or a typed
//! error, never a panic, a hang or an outsized allocation. The CRC of every batch is
//! rewritten first, so that mutations reach the codecs and the record parser.
#![no_main]

use bytes::{Bytes, BytesMut};
use kinflux_kafka::fetch::{AbortedTransaction, DecodeOptions, IsolationLevel, decode_partition};
use libfuzzer_sys::fuzz_target;

/// Rewrites the CRC-32C of each complete batch, walking them by their length fields.
fn fix_crcs(data: &mut [u8]) {
    let mut at = 0usize;
    while data.len() - at >= 21 {
        let len = i32::from_be_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        let Some(end) = usize::try_from(len).ok().and_then(|l| (at + 12).checked_add(l)) else {
            return;
        };
        if end > data.len() || end < at + 21 {
            return;
        }
        let crc = crc32c::crc32c(&data[at + 21..end]);
        data[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: isolation level, CRC fix-up; second: an aborted producer id and offset.
    let Some((&[flags, aborted], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mut bytes = BytesMut::from(rest);
    if flags & 1 == 0 {
        fix_crcs(&mut bytes);
    }
    let mut options = DecodeOptions::with_isolation_level(if flags & 2 == 0 {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    });
    options.max_decompressed_bytes = 4 << 20;
    let aborted = [AbortedTransaction {
        producer_id: i64::from(aborted & 0x0f),
        first_offset: i64::from(aborted >> 4),
    }];
    let fetch_offset = i64::from(flags >> 4);
    let input: Bytes = bytes.freeze();
    let d = decode_partition(input.clone(), fetch_offset, &aborted, &options);
    assert!(d.next_offset >= fetch_offset);
    assert!(d.records.iter().all(|r| r.offset >= fetch_offset));
    assert!(d.trailing_bytes <= input.len());
});
