//! Request body compression.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

/// gzips a request body at `level` (0-9, higher values are clamped to 9).
pub fn gzip_body(body: &[u8], level: u32) -> Bytes {
    // Line protocol usually compresses 5-10x; start near that to avoid regrowing.
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(body.len() / 6 + 64),
        Compression::new(level.min(9)),
    );
    encoder
        .write_all(body)
        .expect("writing into a Vec cannot fail");
    Bytes::from(encoder.finish().expect("finishing into a Vec cannot fail"))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn gzip_round_trips() {
        let body = b"cpu,host=a value=1 1\n".repeat(1000);
        let packed = gzip_body(&body, 1);
        assert!(packed.len() < body.len() / 10, "{} bytes", packed.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }
}
