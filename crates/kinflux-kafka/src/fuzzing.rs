//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the framing and the
//! responses that our own connection code parses, without a socket.

use std::sync::Arc;

use bytes::Bytes;

use crate::conn::{Request, correlation_id, decode_response, frame_len};
use crate::fetch::FetchParams;
use crate::fetch::request::{PartitionFetch, answers};
use kafka_protocol::messages::{
    ApiVersionsRequest, ConsumerGroupHeartbeatRequest, FetchRequest, FindCoordinatorRequest,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
    SyncGroupRequest,
};

/// How many APIs [`parse_stream`] picks from.
const APIS: u32 = 14;

/// Largest decompressed batch the fuzzed Fetch decoder may build (the default 256 MiB
/// would let one input allocate far more than a fuzzer's memory limit).
const FUZZ_MAX_DECOMPRESSED: usize = 4 << 20;

/// Reads `data` as a broker's byte stream: length-prefixed frames, as the reader task
/// does, and each frame decoded as the response to one of the APIs we send, picked by
/// the correlation id, at a version picked the same way. A decoded Fetch response goes on
/// through the partition matching and the record-batch decoder. Must never panic.
#[doc(hidden)]
pub fn parse_stream(data: &[u8]) {
    let mut rest = data;
    while let Some((prefix, tail)) = rest.split_first_chunk::<4>() {
        let Some(len) = frame_len(i32::from_be_bytes(*prefix)) else {
            return;
        };
        let Some((frame, tail)) = tail.split_at_checked(len) else {
            return;
        };
        rest = tail;
        let id = correlation_id(frame);
        let pick = id.unsigned_abs();
        let frame = Bytes::copy_from_slice(frame);
        match pick % APIS {
            0 => decode_any::<ApiVersionsRequest>(frame, pick),
            1 => decode_any::<SaslHandshakeRequest>(frame, pick),
            2 => decode_any::<SaslAuthenticateRequest>(frame, pick),
            3 => decode_any::<FindCoordinatorRequest>(frame, pick),
            4 => decode_any::<JoinGroupRequest>(frame, pick),
            5 => decode_any::<SyncGroupRequest>(frame, pick),
            6 => decode_any::<HeartbeatRequest>(frame, pick),
            7 => decode_any::<LeaveGroupRequest>(frame, pick),
            8 => decode_any::<OffsetCommitRequest>(frame, pick),
            9 => decode_any::<OffsetFetchRequest>(frame, pick),
            10 => decode_any::<ConsumerGroupHeartbeatRequest>(frame, pick),
            11 => decode_any::<ListOffsetsRequest>(frame, pick),
            12 => fetch(frame, pick),
            _ => decode_any::<MetadataRequest>(frame, pick),
        }
    }
}

/// The version of `R` that `pick` chooses among the ones we support.
fn version<R: Request>(pick: u32) -> i16 {
    let range = R::VERSIONS;
    let span = u32::try_from(range.max - range.min).unwrap_or(0) + 1;
    range.min + i16::try_from((pick / APIS) % span).unwrap_or(0)
}

/// Decodes `frame` as `R`'s response at a supported version chosen by `pick`.
fn decode_any<R: Request>(mut frame: Bytes, pick: u32) {
    let _ = decode_response::<R>(&mut frame, version::<R>(pick));
}

/// Decodes `frame` as a Fetch response, then matches it to a request for every partition
/// it names (fetch offset from `pick`) and decodes their record batches, as the fetch path
/// does. Every record handed out is at or past its fetch offset.
fn fetch(mut frame: Bytes, pick: u32) {
    let version = version::<FetchRequest>(pick);
    let Ok(response) = decode_response::<FetchRequest>(&mut frame, version) else {
        return;
    };
    let offset = i64::from(pick >> 24);
    let asked: Vec<PartitionFetch> = response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| PartitionFetch {
                topic: Arc::from(t.topic.as_str()),
                topic_id: t.topic_id,
                partition: p.partition_index,
                offset,
                max_bytes: i32::MAX,
                leader_epoch: -1,
            })
        })
        .collect();
    let mut params = FetchParams::default();
    params.decode.max_decompressed_bytes = FUZZ_MAX_DECOMPRESSED;
    params.decode.verify_crc = pick & (1 << 23) == 0;
    if let Ok(fetched) = answers(response, version, &params, &asked) {
        for p in fetched {
            assert!(
                p.decoded.records.iter().all(|r| r.offset >= p.fetch_offset),
                "a record below the fetch offset"
            );
            assert!(p.decoded.next_offset >= p.fetch_offset);
        }
    }
}
