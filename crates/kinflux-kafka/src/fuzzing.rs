//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the framing and the
//! responses that our own connection code parses, without a socket.

use bytes::Bytes;

use crate::conn::{Request, correlation_id, decode_response, frame_len};
use kafka_protocol::messages::{
    ApiVersionsRequest, ConsumerGroupHeartbeatRequest, FindCoordinatorRequest, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    SaslAuthenticateRequest, SaslHandshakeRequest, SyncGroupRequest,
};

/// Reads `data` as a broker's byte stream: length-prefixed frames, as the reader task
/// does, and each frame decoded as the response to one of the APIs we send, picked by
/// the correlation id, at a version picked the same way. Must never panic.
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
        match pick % 12 {
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
            _ => decode_any::<MetadataRequest>(frame, pick),
        }
    }
}

/// Decodes `frame` as `R`'s response at a supported version chosen by `pick`.
fn decode_any<R: Request>(mut frame: Bytes, pick: u32) {
    let range = R::VERSIONS;
    let span = u32::try_from(range.max - range.min).unwrap_or(0) + 1;
    let offset = i16::try_from((pick / 12) % span).unwrap_or(0);
    let _ = decode_response::<R>(&mut frame, range.min + offset);
}
