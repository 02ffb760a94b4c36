//! Typed errors of the record-batch decoder.

use bytes::Bytes;

use super::codec::Compression;

/// Why a record batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The batch's attributes name a compression codec Kafka does not define (5-7).
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    /// The codec is a known one, but its crate feature is off in this build.
    #[error("{0} compression is not enabled in this build (crate feature `{0}`)")]
    CodecDisabled(Compression),
    /// The compressed bytes do not decompress.
    #[error("corrupt {codec} data: {message}")]
    Corrupt {
        /// The batch's codec.
        codec: Compression,
        /// What the decompressor said.
        message: String,
    },
    /// The batch's CRC-32C does not match its bytes.
    #[error("CRC-32C mismatch: the batch says {expected:#010x}, its bytes give {actual:#010x}")]
    BadCrc {
        /// The CRC written in the batch header.
        expected: u32,
        /// The CRC of the bytes received.
        actual: u32,
    },
    /// The bytes end inside a structure whose length says there is more.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A record batch with a magic byte other than 2 (the pre-0.11 message formats).
    #[error("record batch magic {0} is not supported (only 2)")]
    UnsupportedMagic(i8),
    /// A length, count or field that cannot be right.
    #[error("invalid record batch: {0}")]
    Invalid(&'static str),
    /// Decompressed, the batch would be larger than
    /// [`DecodeOptions::max_decompressed_bytes`](super::DecodeOptions::max_decompressed_bytes).
    #[error("decompressed batch exceeds {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
}

impl DecodeError {
    /// A short, stable name for metrics labels and logs: `unknown_codec`,
    /// `codec_disabled`, `corrupt_compressed`, `bad_crc`, `truncated`,
    /// `unsupported_magic`, `invalid`, `too_large`.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::UnknownCodec(_) => "unknown_codec",
            DecodeError::CodecDisabled(_) => "codec_disabled",
            DecodeError::Corrupt { .. } => "corrupt_compressed",
            DecodeError::BadCrc { .. } => "bad_crc",
            DecodeError::Truncated(_) => "truncated",
            DecodeError::UnsupportedMagic(_) => "unsupported_magic",
            DecodeError::Invalid(_) => "invalid",
            DecodeError::TooLarge { .. } => "too_large",
        }
    }
}

/// A batch that could not be decoded, with the offsets it covers, so that the caller can
/// dead-letter or skip exactly that range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record batch at offsets {base_offset}..={last_offset}: {error}")]
pub struct BatchError {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Last offset of the batch as its header says (the base offset when the header itself
    /// is unreadable). Fetching again from `last_offset + 1` skips the batch.
    pub last_offset: i64,
    /// What went wrong.
    pub error: DecodeError,
    /// The batch's bytes as received (header included), empty when its length is unknown.
    pub bytes: Bytes,
}
