//! Request body compression.
//!
//! Bodies are whole buffers, so a one-shot compressor fits: libdeflate at level 1 is
//! about a quarter faster than flate2's streaming miniz_oxide and its output a sixth
//! smaller (`benches/influx_request.rs` compares them); gzip was a sixth of the bridge's
//! CPU.

use bytes::Bytes;
use libdeflater::{CompressionLvl, Compressor};

/// gzips a request body at `level` (0-9, higher values are clamped to 9).
pub fn gzip_body(body: &[u8], level: u32) -> Bytes {
    let level = CompressionLvl::new(level.min(9) as i32)
        .expect("libdeflate accepts levels 0 to 12, and this one is at most 9");
    let mut compressor = Compressor::new(level);
    let mut packed = vec![0; compressor.gzip_compress_bound(body.len())];
    let len = compressor
        .gzip_compress(body, &mut packed)
        .expect("the buffer has the size libdeflate asks for the worst case");
    packed.truncate(len);
    Bytes::from(packed)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(packed: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(packed)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"cpu,host=a value=1 1\n".repeat(1000);
        let packed = gzip_body(&body, 1);
        assert!(packed.len() < body.len() / 10, "{} bytes", packed.len());
        assert_eq!(gunzip(&packed), body);
    }

    #[test]
    fn every_level_and_an_empty_body_round_trip() {
        let body = b"mem,host=b used=42i,free=7i 1700000000000000000\n".repeat(300);
        for level in [0, 1, 5, 9, 12, u32::MAX] {
            assert_eq!(gunzip(&gzip_body(&body, level)), body, "level {level}");
        }
        assert_eq!(gunzip(&gzip_body(b"", 1)), b"");
    }
}
