//! Running a [`DecodePlan`] over one record's Avro body.

use std::borrow::Cow;

use base64::Engine as _;
use kinflux_series::{FieldValueRef, Point, PointRef, Timestamp};

use super::reader::Reader;
use super::{DecodePlan, Node, Sink};
use crate::DecodeError;

/// A scalar read from the binary, before it is given its role.
enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

/// Up to this many tags, their values are collected on the stack.
const STACK_TAGS: usize = 16;

/// The parts of the point being assembled. Tag values go to the slot of their key's
/// rank, so they come out sorted by key.
struct Out<'a, 's> {
    measurement: Option<Cow<'a, str>>,
    tag_values: &'s mut [Option<Cow<'a, str>>],
    fields: Vec<(Cow<'a, str>, FieldValueRef<'a>)>,
    time: Option<Timestamp>,
}

impl DecodePlan {
    /// Decodes one Avro body (without framing) into a point whose strings borrow from
    /// `body` and from this plan. `fallback` is the time used when the mapping has no
    /// time field or the record's time is null: in the pipeline, the Kafka record's
    /// timestamp.
    pub fn decode<'a>(
        &'a self,
        body: &'a [u8],
        fallback: Option<Timestamp>,
    ) -> Result<PointRef<'a>, DecodeError> {
        let mut reader = Reader::new(body);
        let mut on_stack: [Option<Cow<'a, str>>; STACK_TAGS] = Default::default();
        let mut on_heap: Vec<Option<Cow<'a, str>>>;
        let tag_values = match self.tag_keys.len() {
            n if n <= STACK_TAGS => &mut on_stack[..n],
            n => {
                on_heap = vec![None; n];
                &mut on_heap[..]
            }
        };
        let mut out = Out {
            measurement: None,
            tag_values,
            fields: Vec::with_capacity(self.field_hint),
            time: None,
        };
        for node in &self.root {
            self.walk(node, &mut reader, &mut out, None)?;
        }
        if reader.remaining() > 0 {
            return Err(DecodeError::TrailingBytes {
                extra: reader.remaining(),
            });
        }
        let measurement = match (&self.measurement, out.measurement) {
            (Some(constant), _) => Cow::Borrowed(constant.as_str()),
            (None, Some(from_field)) => from_field,
            (None, None) => return Err(DecodeError::NullMeasurement),
        };
        let mut tags = Vec::with_capacity(self.tag_keys.len());
        for (key, value) in self.tag_keys.iter().zip(out.tag_values.iter_mut()) {
            if let Some(value) = value.take() {
                tags.push((Cow::Borrowed(key.as_str()), value));
            }
        }
        Ok(PointRef::new(
            measurement,
            tags,
            out.fields,
            out.time.or(fallback),
        )?)
    }

    /// As [`decode`](Self::decode), into an owned [`Point`].
    pub fn decode_owned(
        &self,
        body: &[u8],
        fallback: Option<Timestamp>,
    ) -> Result<Point, DecodeError> {
        self.decode(body, fallback).map(PointRef::into_owned)
    }

    /// The key of a value: the plan's own string, or joined to the element it is in.
    #[inline(always)]
    fn key<'a>(&self, rel: &'a str, prefix: Option<&str>) -> Cow<'a, str> {
        match prefix {
            None => Cow::Borrowed(rel),
            Some(p) if rel.is_empty() => Cow::Owned(p.to_owned()),
            Some(p) => Cow::Owned(format!("{p}{}{rel}", self.separator)),
        }
    }

    // Inlined into each arm of `walk`, so the scalar goes straight into the vectors
    // instead of through a stack temporary.
    #[inline(always)]
    fn emit<'a>(
        &self,
        sink: &'a Sink,
        value: Scalar<'a>,
        out: &mut Out<'a, '_>,
        prefix: Option<&str>,
    ) -> Result<(), DecodeError> {
        match sink {
            Sink::Skip => {}
            Sink::Field(key) => {
                let value = match value {
                    Scalar::Bool(b) => FieldValueRef::Boolean(b),
                    Scalar::Int(i) => FieldValueRef::Integer(i),
                    Scalar::Float(f) => FieldValueRef::Float(f),
                    Scalar::Str(s) => FieldValueRef::String(s),
                };
                out.fields.push((self.key(key, prefix), value));
            }
            Sink::Tag(rank) => {
                let value = match value {
                    Scalar::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
                    // Tags are strings: numbers are formatted (an allocation only for
                    // numeric tags, which are rare).
                    Scalar::Int(i) => Cow::Owned(i.to_string()),
                    Scalar::Float(f) => Cow::Owned(f.to_string()),
                    Scalar::Str(s) => s,
                };
                // InfluxDB has no empty tag values: an empty string leaves the tag out,
                // as a null does.
                if !value.is_empty() {
                    if let Some(slot) = out.tag_values.get_mut(*rank) {
                        *slot = Some(value);
                    }
                }
            }
            Sink::Time(unit) => {
                if let Scalar::Int(value) = value {
                    out.time = Some(
                        Timestamp::from_precision(value, *unit).map_err(DecodeError::Timestamp)?,
                    );
                }
            }
            Sink::Measurement => {
                if let Scalar::Str(s) = value {
                    out.measurement = Some(s);
                }
            }
        }
        Ok(())
    }

    fn walk<'a>(
        &'a self,
        node: &'a Node,
        r: &mut Reader<'a>,
        out: &mut Out<'a, '_>,
        prefix: Option<&str>,
    ) -> Result<(), DecodeError> {
        match node {
            Node::Null => {}
            Node::Boolean(sink) => {
                let v = r.boolean()?;
                self.emit(sink, Scalar::Bool(v), out, prefix)?;
            }
            Node::Int(sink) => {
                let v = r.int()?;
                self.emit(sink, Scalar::Int(i64::from(v)), out, prefix)?;
            }
            Node::Long(sink) => {
                let v = r.long()?;
                self.emit(sink, Scalar::Int(v), out, prefix)?;
            }
            Node::Float(sink) => {
                let v = r.float()?;
                self.emit(sink, Scalar::Float(f64::from(v)), out, prefix)?;
            }
            Node::Double(sink) => {
                let v = r.double()?;
                self.emit(sink, Scalar::Float(v), out, prefix)?;
            }
            Node::String(sink) => {
                if *sink == Sink::Skip {
                    // Skipped strings are not checked for UTF-8: nobody reads them.
                    r.bytes()?;
                } else {
                    let v = r.str()?;
                    self.emit(sink, Scalar::Str(Cow::Borrowed(v)), out, prefix)?;
                }
            }
            Node::Uuid(sink) => {
                let start = r.pos();
                let raw = r.bytes()?;
                if *sink != Sink::Skip {
                    let text = uuid_text(raw).ok_or(DecodeError::InvalidUtf8 { offset: start })?;
                    self.emit(sink, Scalar::Str(text), out, prefix)?;
                }
            }
            Node::Bytes(sink) => {
                let raw = r.bytes()?;
                if *sink != Sink::Skip {
                    self.emit(sink, base64(raw), out, prefix)?;
                }
            }
            Node::Fixed(size, sink) => {
                let raw = r.fixed(*size)?;
                if *sink != Sink::Skip {
                    self.emit(sink, base64(raw), out, prefix)?;
                }
            }
            Node::Enum(symbols, sink) => {
                let i = r.symbol(symbols.len())?;
                self.emit(sink, Scalar::Str(Cow::Borrowed(&symbols[i])), out, prefix)?;
            }
            Node::Decimal { fixed, scale, sink } => {
                let raw = match fixed {
                    Some(size) => r.fixed(*size)?,
                    None => r.bytes()?,
                };
                if *sink != Sink::Skip {
                    self.emit(
                        sink,
                        Scalar::Float(decimal_to_f64(raw, *scale)),
                        out,
                        prefix,
                    )?;
                }
            }
            Node::Record(fields) => {
                for field in fields {
                    self.walk(field, r, out, prefix)?;
                }
            }
            Node::Union(branches) => {
                let i = r.branch(branches.len())?;
                self.walk(&branches[i], r, out, prefix)?;
            }
            Node::Array {
                key,
                items,
                zero_width,
            } => {
                let base = key.as_deref().map(|k| self.key(k, prefix));
                let mut index: u64 = 0;
                loop {
                    let (count, size) = r.block()?;
                    if count == 0 {
                        break;
                    }
                    if let (None, Some(size)) = (&base, size) {
                        // Not mapped, and the writer said how long the block is.
                        r.fixed(size)?;
                        continue;
                    }
                    if *zero_width {
                        // Nothing to read or emit, however large the count claims to be.
                        continue;
                    }
                    // Each element takes at least one byte, so a bogus count ends at
                    // the end of the input with `Truncated`.
                    for _ in 0..count {
                        match &base {
                            Some(base) => {
                                let element = format!("{base}{}{index}", self.separator);
                                self.walk(items, r, out, Some(&element))?;
                            }
                            None => self.walk(items, r, out, None)?,
                        }
                        index += 1;
                    }
                }
            }
            Node::Map {
                key,
                values,
                zero_width,
            } => {
                let base = key.as_deref().map(|k| self.key(k, prefix));
                loop {
                    let (count, size) = r.block()?;
                    if count == 0 {
                        break;
                    }
                    if let (None, Some(size)) = (&base, size) {
                        r.fixed(size)?;
                        continue;
                    }
                    // Every entry has a key string, so each takes at least one byte.
                    for _ in 0..count {
                        match &base {
                            Some(base) => {
                                let entry_key = r.str()?;
                                let element = format!("{base}{}{entry_key}", self.separator);
                                self.walk(values, r, out, Some(&element))?;
                            }
                            None => {
                                r.bytes()?;
                                if !*zero_width {
                                    self.walk(values, r, out, None)?;
                                }
                            }
                        }
                    }
                }
            }
            Node::Reject {
                path,
                avro_type,
                role,
            } => {
                return Err(DecodeError::Unmappable {
                    path: self.key(path, prefix).into_owned(),
                    avro_type,
                    role,
                });
            }
        }
        Ok(())
    }
}

fn base64(raw: &[u8]) -> Scalar<'static> {
    Scalar::Str(Cow::Owned(
        base64::engine::general_purpose::STANDARD.encode(raw),
    ))
}

/// A uuid's text: the string itself, or 16 raw bytes formatted as apache-avro reads them.
fn uuid_text(raw: &[u8]) -> Option<Cow<'_, str>> {
    if raw.len() == 16 {
        let mut text = String::with_capacity(36);
        for (i, byte) in raw.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                text.push('-');
            }
            text.push_str(&format!("{byte:02x}"));
        }
        return Some(Cow::Owned(text));
    }
    std::str::from_utf8(raw).ok().map(Cow::Borrowed)
}

/// A decimal's unscaled big-endian two's-complement bytes, divided by 10^scale.
pub(crate) fn decimal_to_f64(raw: &[u8], scale: i32) -> f64 {
    let Some((&first, rest)) = raw.split_first() else {
        return 0.0;
    };
    let mut unscaled = f64::from(first as i8);
    for &byte in rest {
        unscaled = unscaled * 256.0 + f64::from(byte);
    }
    unscaled / 10f64.powi(scale)
}
