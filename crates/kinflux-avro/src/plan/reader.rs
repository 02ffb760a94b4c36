//! Reading Avro's binary encoding from borrowed bytes. Every length is checked against
//! the bytes that remain before anything is sliced, so bad input can neither panic nor
//! make us allocate.

use crate::DecodeError;

/// A cursor over one record's Avro body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            offset: self.pos,
            needed: needed - self.remaining(),
        }
    }

    /// A zigzag varint `long`. At most 10 bytes, and the 10th may only carry one bit.
    #[inline(always)]
    pub(crate) fn long(&mut self) -> Result<i64, DecodeError> {
        // Most lengths, indexes and small numbers fit one byte.
        // (No let chain here: the workspace's rust-version predates them.)
        match self.buf.get(self.pos) {
            Some(&byte) if byte < 0x80 => {
                self.pos += 1;
                return Ok(i64::from(byte >> 1) ^ -i64::from(byte & 1));
            }
            _ => {}
        }
        self.long_multi_byte()
    }

    #[inline(never)]
    fn long_multi_byte(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        let mut raw: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(DecodeError::Truncated {
                    offset: self.pos,
                    needed: 1,
                });
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(DecodeError::VarintOverflow { offset: start });
            }
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::VarintOverflow { offset: start });
            }
        }
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A zigzag varint `int`, which must fit 32 bits.
    #[inline]
    pub(crate) fn int(&mut self) -> Result<i32, DecodeError> {
        let start = self.pos;
        let value = self.long()?;
        i32::try_from(value).map_err(|_| DecodeError::IntOverflow {
            offset: start,
            value,
        })
    }

    #[inline]
    pub(crate) fn boolean(&mut self) -> Result<bool, DecodeError> {
        Ok(self.fixed(1)?[0] != 0)
    }

    #[inline]
    pub(crate) fn float(&mut self) -> Result<f32, DecodeError> {
        let bytes = self.fixed(4)?;
        Ok(f32::from_le_bytes(
            bytes.try_into().expect("fixed(4) is 4 bytes"),
        ))
    }

    #[inline]
    pub(crate) fn double(&mut self) -> Result<f64, DecodeError> {
        let bytes = self.fixed(8)?;
        Ok(f64::from_le_bytes(
            bytes.try_into().expect("fixed(8) is 8 bytes"),
        ))
    }

    /// `n` raw bytes.
    #[inline]
    pub(crate) fn fixed(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A length-prefixed byte string, borrowed.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let length = self.long()?;
        let Ok(n) = usize::try_from(length) else {
            return Err(DecodeError::NegativeLength {
                offset: start,
                length,
            });
        };
        self.fixed(n)
    }

    /// A length-prefixed UTF-8 string, borrowed.
    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
            offset: self.pos - bytes.len(),
        })
    }

    /// The item count of the next array or map block (0 ends the sequence), and the
    /// block's size in bytes when the writer gave it (a negative count is followed by
    /// the size, so that readers can skip the block).
    pub(crate) fn block(&mut self) -> Result<(u64, Option<usize>), DecodeError> {
        let count = self.long()?;
        if count >= 0 {
            return Ok((count.unsigned_abs(), None));
        }
        let start = self.pos;
        let size = self.long()?;
        match usize::try_from(size) {
            Ok(size) => Ok((count.unsigned_abs(), Some(size))),
            Err(_) => Err(DecodeError::NegativeLength {
                offset: start,
                length: size,
            }),
        }
    }

    /// A union branch index, checked against the number of branches.
    #[inline]
    pub(crate) fn branch(&mut self, branches: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let index = self.long()?;
        match usize::try_from(index) {
            Ok(i) if i < branches => Ok(i),
            _ => Err(DecodeError::BadUnionBranch {
                offset: start,
                index,
                branches,
            }),
        }
    }

    /// An enum symbol index, checked against the number of symbols.
    #[inline]
    pub(crate) fn symbol(&mut self, symbols: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let index = i64::from(self.int()?);
        match usize::try_from(index) {
            Ok(i) if i < symbols => Ok(i),
            _ => Err(DecodeError::BadEnumIndex {
                offset: start,
                index,
                symbols,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(bytes: &[u8]) -> Result<i64, DecodeError> {
        Reader::new(bytes).long()
    }

    #[test]
    fn longs_decode_zigzag_varints() {
        assert_eq!(zigzag(&[0x00]), Ok(0));
        assert_eq!(zigzag(&[0x01]), Ok(-1));
        assert_eq!(zigzag(&[0x02]), Ok(1));
        assert_eq!(zigzag(&[0x80, 0x01]), Ok(64));
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(zigzag(&max), Ok(i64::MAX));
        let min = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(zigzag(&min), Ok(i64::MIN));
    }

    #[test]
    fn overlong_varints_are_overflow_errors() {
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            zigzag(&too_big),
            Err(DecodeError::VarintOverflow { offset: 0 })
        );
        let too_long = [0x80; 11];
        assert_eq!(
            zigzag(&too_long),
            Err(DecodeError::VarintOverflow { offset: 0 })
        );
        assert_eq!(
            zigzag(&[0x80, 0x80]),
            Err(DecodeError::Truncated {
                offset: 2,
                needed: 1
            })
        );
    }

    #[test]
    fn lengths_are_checked_before_slicing() {
        // Length 2^62 with one byte of data: an error, no allocation, no panic.
        let mut huge = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        huge.push(b'x');
        assert!(matches!(
            Reader::new(&huge).bytes(),
            Err(DecodeError::Truncated { offset: 10, .. })
        ));
        assert_eq!(
            Reader::new(&[0x03]).bytes(),
            Err(DecodeError::NegativeLength {
                offset: 0,
                length: -2
            })
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x10]).int(),
            Err(DecodeError::IntOverflow {
                offset: 0,
                value: 1 << 31
            })
        );
    }
}
