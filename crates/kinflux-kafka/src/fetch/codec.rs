//! Decompression of a batch's records section.
//!
//! Kafka compresses all records of a batch as one stream. Each codec's output goes into one
//! buffer, of which the records are then slices. Growth stops at a limit, so that a small
//! corrupt or hostile batch cannot claim gigabytes.

use std::fmt;

use super::error::DecodeError;

/// The compression codec of a record batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (one or more gzip members).
    Gzip,
    /// Snappy: a raw snappy block (librdkafka) or the xerial framing (Java's producer).
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The codec named by a batch's attributes.
    pub fn from_attributes(attributes: i16) -> Result<Self, DecodeError> {
        match attributes & 0x07 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            // Masked to three bits: the cast cannot truncate.
            other => Err(DecodeError::UnknownCodec(other as u8)),
        }
    }

    /// The attribute bits of this codec.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Kafka's name of the codec (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decompresses `input` with `codec` into a new buffer of at most `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => gzip(input, limit),
        Compression::Snappy => snappy(input, limit),
        Compression::Lz4 => lz4(input, limit),
        Compression::Zstd => zstd(input, limit),
    }
}

/// Reads `reader` to its end, failing once more than `limit` bytes come out.
#[cfg(feature = "gzip")]
fn read_limited(
    codec: Compression,
    reader: impl std::io::Read,
    size_hint: usize,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(size_hint.min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(any(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
fn corrupt(codec: Compression, e: impl fmt::Display) -> DecodeError {
    DecodeError::Corrupt {
        codec,
        message: e.to_string(),
    }
}

#[cfg(feature = "gzip")]
fn gzip(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    // ISIZE, the last four bytes of a member, is the uncompressed size modulo 2^32.
    let hint = input
        .last_chunk::<4>()
        .map_or(0, |b| u32::from_le_bytes(*b) as usize);
    read_limited(
        Compression::Gzip,
        flate2::bufread::MultiGzDecoder::new(input),
        hint,
        limit,
    )
}

#[cfg(not(feature = "gzip"))]
fn gzip(_: &[u8], _: usize) -> Result<Vec<u8>, DecodeError> {
    Err(DecodeError::CodecDisabled(Compression::Gzip))
}

/// The header that snappy-java's `SnappyOutputStream` writes: magic, version, compatible
/// version.
#[cfg(feature = "snappy")]
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
#[cfg(feature = "snappy")]
const XERIAL_HEADER_LEN: usize = 16;

#[cfg(feature = "snappy")]
fn snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    // snappy-java's SnappyInputStream reads the framing when the magic is there and a raw
    // block otherwise. A valid raw block never starts with the magic: after the length
    // varint "\x82SN", 'A' would be a copy with nothing before it to copy from.
    if input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC) {
        xerial(&input[XERIAL_HEADER_LEN..], limit)
    } else {
        let mut out = Vec::new();
        snappy_block(input, &mut out, limit)?;
        Ok(out)
    }
}

/// Appends one raw snappy block to `out`.
#[cfg(feature = "snappy")]
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(Compression::Snappy, e))?;
    let start = out.len();
    let end = start
        .checked_add(len)
        .filter(|&end| end <= limit)
        .ok_or(DecodeError::TooLarge { limit })?;
    out.resize(end, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(Compression::Snappy, e))?;
    out.truncate(start + written);
    Ok(())
}

/// The xerial stream after its header: blocks of a big-endian `i32` length and a raw
/// snappy block. The blocks' sizes are summed first, so the output is allocated once.
#[cfg(feature = "snappy")]
fn xerial(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let blocks = || XerialBlocks { rest: input };
    let mut total = 0usize;
    for block in blocks() {
        let len = snap::raw::decompress_len(block?).map_err(|e| corrupt(Compression::Snappy, e))?;
        total = total
            .checked_add(len)
            .filter(|&t| t <= limit)
            .ok_or(DecodeError::TooLarge { limit })?;
    }
    let mut out = Vec::with_capacity(total);
    for block in blocks() {
        snappy_block(block?, &mut out, limit)?;
    }
    Ok(out)
}

/// The snappy blocks of a xerial stream.
#[cfg(feature = "snappy")]
struct XerialBlocks<'a> {
    rest: &'a [u8],
}

#[cfg(feature = "snappy")]
impl<'a> Iterator for XerialBlocks<'a> {
    type Item = Result<&'a [u8], DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((len, tail)) = self.rest.split_first_chunk::<4>() else {
            self.rest = &[];
            return Some(Err(DecodeError::Truncated("xerial snappy block length")));
        };
        let Some(len) = usize::try_from(i32::from_be_bytes(*len))
            .ok()
            .filter(|&l| l <= tail.len())
        else {
            self.rest = &[];
            return Some(Err(DecodeError::Truncated("xerial snappy block")));
        };
        let (block, tail) = tail.split_at(len);
        self.rest = tail;
        Some(Ok(block))
    }
}

#[cfg(not(feature = "snappy"))]
fn snappy(_: &[u8], _: usize) -> Result<Vec<u8>, DecodeError> {
    Err(DecodeError::CodecDisabled(Compression::Snappy))
}

#[cfg(feature = "lz4")]
fn lz4(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    super::lz4::decompress(input, limit)
}

#[cfg(not(feature = "lz4"))]
fn lz4(_: &[u8], _: usize) -> Result<Vec<u8>, DecodeError> {
    Err(DecodeError::CodecDisabled(Compression::Lz4))
}

#[cfg(feature = "zstd")]
fn zstd(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    use std::cell::RefCell;
    use zstd::zstd_safe;

    thread_local! {
        // A decompression context holds ~100 KiB of tables: one per thread, reused.
        static DCTX: RefCell<Option<zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
    }
    // Exact when the frames state their size (librdkafka's do), an upper bound from the
    // block count otherwise (zstd-jni's streaming output leaves the size out).
    let bound = zstd_safe::decompress_bound(input)
        .map_err(|code| corrupt(Compression::Zstd, zstd_safe::get_error_name(code)))?;
    let capacity = usize::try_from(bound).unwrap_or(usize::MAX).min(limit);
    let mut out = Vec::with_capacity(capacity);
    let result = DCTX.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dctx = cell.get_or_insert_with(zstd_safe::DCtx::create);
        dctx.decompress(&mut out, input)
    });
    match result {
        Ok(_) => {
            // Only an upper bound was known: give the excess back (in place for heap chunks).
            if out.capacity() - out.len() > out.len() / 8 {
                out.shrink_to_fit();
            }
            Ok(out)
        }
        Err(_) if capacity == limit && u64::try_from(limit).is_ok_and(|l| bound > l) => {
            Err(DecodeError::TooLarge { limit })
        }
        Err(code) => Err(corrupt(Compression::Zstd, zstd_safe::get_error_name(code))),
    }
}

#[cfg(not(feature = "zstd"))]
fn zstd(_: &[u8], _: usize) -> Result<Vec<u8>, DecodeError> {
    Err(DecodeError::CodecDisabled(Compression::Zstd))
}
