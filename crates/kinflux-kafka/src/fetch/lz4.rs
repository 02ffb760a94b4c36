//! LZ4 frames (the format Kafka's lz4 codec writes), parsed here so that every block
//! decompresses straight into one output buffer.
//!
//! Frame: magic `04 22 4D 18`, FLG, BD, optional content size (8 bytes) and dictionary id
//! (4), a header checksum byte; then blocks of a little-endian `u32` size (high bit: stored
//! uncompressed) with an optional 4-byte checksum each, a zero end mark, and an optional
//! 4-byte content checksum. Frames may follow each other; skippable frames are skipped.
//! The checksums are not verified: the batch's CRC-32C already covers these bytes.

use super::{codec::Compression, error::DecodeError};

const MAGIC: u32 = 0x184D_2204;
/// Skippable frames use magics 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE: u32 = 0x184D_2A50;
/// How far back a linked block may reach into earlier output.
const WINDOW: usize = 64 * 1024;

fn corrupt(message: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt {
        codec: Compression::Lz4,
        message: message.into(),
    }
}

/// A read position in the frame bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
}

/// The decompressed size of one LZ4 block, from its sequences (token, literal length,
/// literals, offset, match length) without decompressing it; `None` when it is malformed.
fn block_len(block: &[u8]) -> Option<usize> {
    /// A length nibble of 15 continues in bytes until one is below 255.
    fn extend(block: &[u8], i: &mut usize, mut len: usize) -> Option<usize> {
        if len == 15 {
            loop {
                let b = *block.get(*i)?;
                *i += 1;
                len = len.checked_add(usize::from(b))?;
                if b != 255 {
                    break;
                }
            }
        }
        Some(len)
    }
    let mut i = 0usize;
    let mut total = 0usize;
    loop {
        let token = *block.get(i)?;
        i += 1;
        let literals = extend(block, &mut i, usize::from(token >> 4))?;
        i = i.checked_add(literals).filter(|&e| e <= block.len())?;
        total = total.checked_add(literals)?;
        if i == block.len() {
            // The last sequence holds literals only.
            return Some(total);
        }
        i = i.checked_add(2).filter(|&e| e <= block.len())?;
        let matched = extend(block, &mut i, usize::from(token & 0x0f))?;
        total = total.checked_add(matched)?.checked_add(4)?;
    }
}

/// Decompresses every frame of `input`, producing at most `limit` bytes.
pub(crate) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut r = Reader(input);
    let mut out: Vec<u8> = Vec::new();
    while !r.0.is_empty() {
        let magic = r.u32("lz4 frame magic")?;
        if magic & SKIPPABLE_MASK == SKIPPABLE {
            let len = r.u32("lz4 skippable frame size")?;
            r.take(
                usize::try_from(len).map_err(|_| corrupt("skippable frame too large"))?,
                "lz4 skippable frame",
            )?;
            continue;
        }
        if magic != MAGIC {
            return Err(corrupt(format!("bad frame magic {magic:#010x}")));
        }
        frame(&mut r, &mut out, limit)?;
    }
    Ok(out)
}

/// One frame after its magic, appended to `out`.
fn frame(r: &mut Reader<'_>, out: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
    let flg = r.u8("lz4 frame flags")?;
    let bd = r.u8("lz4 block descriptor")?;
    if flg >> 6 != 1 {
        return Err(corrupt(format!("frame version {} (only 1)", flg >> 6)));
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    if flg & 0x01 != 0 {
        return Err(corrupt("frames with a dictionary id are not supported"));
    }
    let max_block = match (bd >> 4) & 0x07 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        other => return Err(corrupt(format!("block size id {other}"))),
    };
    if content_size {
        let b = r.take(8, "lz4 content size")?;
        let size = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        if usize::try_from(size).map_or(true, |s| s > limit.saturating_sub(out.len())) {
            return Err(DecodeError::TooLarge { limit });
        }
    }
    let _header_checksum = r.u8("lz4 header checksum")?;
    // First the blocks and their sizes (a block's sequences tell its size without
    // decompressing it), so that the output the records will share is allocated once, at
    // its exact size.
    let mut blocks: Vec<(bool, &[u8], usize)> = Vec::new();
    let mut total = out.len();
    loop {
        let size = r.u32("lz4 block size")?;
        if size == 0 {
            break;
        }
        let stored = size & 0x8000_0000 != 0;
        let len = usize::try_from(size & 0x7FFF_FFFF).map_err(|_| corrupt("block too large"))?;
        let block = r.take(len, "lz4 block")?;
        if block_checksums {
            r.take(4, "lz4 block checksum")?;
        }
        let n = if stored {
            len
        } else {
            block_len(block).ok_or_else(|| corrupt("malformed block"))?
        };
        if n > max_block {
            return Err(corrupt("block larger than the frame's block size"));
        }
        total = total
            .checked_add(n)
            .filter(|&t| t <= limit)
            .ok_or(DecodeError::TooLarge { limit })?;
        blocks.push((stored, block, n));
    }
    if content_checksum {
        r.take(4, "lz4 content checksum")?;
    }
    out.reserve_exact(total - out.len());
    let frame_start = out.len();
    for (stored, block, n) in blocks {
        let start = out.len();
        if stored {
            out.extend_from_slice(block);
            continue;
        }
        out.resize(start + n, 0);
        let (before, dst) = out.split_at_mut(start);
        let written = if independent {
            lz4_flex::block::decompress_into(block, dst)
        } else {
            // Linked blocks may copy from the frame's earlier output.
            let window = &before[frame_start.max(start.saturating_sub(WINDOW))..];
            lz4_flex::block::decompress_into_with_dict(block, dst, window)
        };
        match written {
            Ok(w) if w == n => {}
            Ok(_) => return Err(corrupt("block shorter than its sequences")),
            Err(e) => return Err(corrupt(e.to_string())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};

    use super::*;

    /// Compressible text with incompressible stretches, longer than several blocks.
    fn data() -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..40_000u32 {
            out.extend_from_slice(format!("cpu,host=h{} usage={} ", i % 17, i).as_bytes());
            if i % 5000 == 0 {
                for _ in 0..3000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    out.push(x as u8);
                }
            }
        }
        out
    }

    fn encode(info: FrameInfo, data: &[u8]) -> Vec<u8> {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn every_frame_option_decodes() {
        let data = data();
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max4MB] {
                for checksums in [false, true] {
                    let info = FrameInfo::new()
                        .block_mode(mode)
                        .block_size(size)
                        .block_checksums(checksums)
                        .content_checksum(checksums)
                        .content_size(checksums.then_some(data.len() as u64));
                    let framed = encode(info, &data);
                    assert_eq!(
                        decompress(&framed, 1 << 30).unwrap(),
                        data,
                        "{mode:?} {size:?} {checksums}"
                    );
                }
            }
        }
    }

    #[test]
    fn frames_follow_each_other_and_skippable_frames_are_skipped() {
        let a = encode(FrameInfo::new(), b"first frame ");
        let b = encode(
            FrameInfo::new().block_mode(BlockMode::Linked),
            b"second frame",
        );
        let mut input = a.clone();
        input.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        input.extend_from_slice(&3u32.to_le_bytes());
        input.extend_from_slice(b"xyz");
        input.extend_from_slice(&b);
        assert_eq!(
            decompress(&input, 1 << 20).unwrap(),
            b"first frame second frame"
        );
    }

    #[test]
    fn limits_and_damage_are_errors() {
        let data = data();
        let framed = encode(FrameInfo::new().block_size(BlockSize::Max64KB), &data);
        assert_eq!(
            decompress(&framed, 100_000),
            Err(DecodeError::TooLarge { limit: 100_000 })
        );
        let sized = encode(
            FrameInfo::new().content_size(Some(data.len() as u64)),
            &data,
        );
        assert_eq!(
            decompress(&sized, 1000),
            Err(DecodeError::TooLarge { limit: 1000 })
        );
        for cut in [1, 4, 6, 7, framed.len() / 2, framed.len() - 1] {
            assert!(decompress(&framed[..cut], 1 << 30).is_err(), "cut at {cut}");
        }
        let mut bad = framed.clone();
        bad[0] ^= 1;
        assert!(matches!(
            decompress(&bad, 1 << 30),
            Err(DecodeError::Corrupt { .. })
        ));
        let mut bad = framed;
        bad[4] = 0x80 | (bad[4] & 0x3f);
        assert!(matches!(
            decompress(&bad, 1 << 30),
            Err(DecodeError::Corrupt { .. })
        ));
    }
}
