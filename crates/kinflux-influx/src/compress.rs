//! Request body compression.
//!
//! Bodies are whole buffers, so a one-shot compressor fits: libdeflate at level 1 is
//! about a quarter faster than flate2's streaming miniz_oxide and its output a sixth
//! smaller (`benches/influx_request.rs` compares them); gzip was a sixth of the bridge's
//! CPU.

use std::cell::RefCell;

use bytes::Bytes;
use libdeflater::{CompressionLvl, Compressor};

/// A compressor and an output buffer kept per thread: allocating and zeroing a
/// worst-case buffer for every body cost more than copying the compressed bytes out.
struct Workspace {
    compressor: Option<(u32, Compressor)>,
    out: Vec<u8>,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = const {
        RefCell::new(Workspace { compressor: None, out: Vec::new() })
    };
}

/// gzips a request body at `level` (0-9, higher values are clamped to 9).
pub fn gzip_body(body: &[u8], level: u32) -> Bytes {
    let level = level.min(9);
    WORKSPACE.with_borrow_mut(|ws| {
        let compressor = match &mut ws.compressor {
            Some((l, c)) if *l == level => c,
            slot => {
                let lvl = CompressionLvl::new(level as i32)
                    .expect("libdeflate accepts levels 0 to 12, and this one is at most 9");
                &mut slot.insert((level, Compressor::new(lvl))).1
            }
        };
        let bound = compressor.gzip_compress_bound(body.len());
        if ws.out.len() < bound {
            ws.out.resize(bound, 0);
        }
        let len = compressor
            .gzip_compress(body, &mut ws.out)
            .expect("the buffer has the size libdeflate asks for the worst case");
        Bytes::copy_from_slice(&ws.out[..len])
    })
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
    fn a_thread_compresses_bodies_of_any_size_and_level_in_turn() {
        let small = b"cpu v=1 1\n".to_vec();
        let large =
            b"disk,path=/ used=123456789i,free=987654321i 1700000000000000000\n".repeat(5000);
        for (body, level) in [(&large, 1), (&small, 6), (&large, 9), (&small, 1)] {
            assert_eq!(gunzip(&gzip_body(body, level)), *body, "level {level}");
        }
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
