//! Writing points as line protocol, with exactly the escapes the parser removes.

use kinflux_series::{FieldValueRef, PointView, Precision, SeriesError, TIME_KEY, Timestamp};

use crate::EncodeError;
use crate::grammar::{MAX_NANOS, MIN_NANOS};
use crate::scan::{FIELD_KEY, MEASUREMENT, NameRules, TAG, find_first, series_key_ends_cleanly};

/// Appends `point` as one line plus `\n` to `out`, its timestamp (if any) in `precision`
/// (rounded down). On error nothing is appended.
pub fn encode_point(
    point: &impl PointView,
    precision: Precision,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    undo_on_error(out, |out| write_point(point, precision, out))
}

/// Appends every point of `points`, one line each. Stops at the first point that cannot
/// be encoded, leaving the lines before it in `out`, and returns its index with the error.
pub fn encode_points<P: PointView>(
    points: &[P],
    precision: Precision,
    out: &mut Vec<u8>,
) -> Result<(), (usize, EncodeError)> {
    for (i, p) in points.iter().enumerate() {
        encode_point(p, precision, out).map_err(|e| (i, e))?;
    }
    Ok(())
}

/// Appends the series key of `point` (escaped measurement, then `,key=value` for each tag
/// in key order) to `out`: the start of its line. On error nothing is appended.
pub fn encode_series_key(point: &impl PointView, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    undo_on_error(out, |out| write_series_key(point, out))
}

/// Appends the field section of `point` (`k1=v1,k2=v2`, no leading or trailing space) to
/// `out`. On error nothing is appended.
pub fn encode_fields(point: &impl PointView, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    undo_on_error(out, |out| write_fields(point, out))
}

fn undo_on_error(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_point(
    point: &impl PointView,
    precision: Precision,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    write_series_key(point, out)?;
    out.push(b' ');
    write_fields(point, out)?;
    if let Some(ts) = point.timestamp() {
        out.push(b' ');
        write_timestamp(ts, precision, out)?;
    }
    out.push(b'\n');
    Ok(())
}

fn write_series_key(point: &impl PointView, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let m = point.measurement();
    if m.is_empty() {
        return Err(SeriesError::EmptyMeasurement.into());
    }
    if matches!(m.as_bytes()[0], b'\t' | b'\0' | b'#') {
        return Err(EncodeError::UnrepresentableName {
            what: "measurement",
            name: m.to_owned(),
        });
    }
    let start = out.len();
    let mut misleads_splitter = write_name(m, MEASUREMENT, "measurement", out)?;
    for (k, v) in point.tags() {
        if k.is_empty() {
            return Err(SeriesError::EmptyTagKey.into());
        }
        if k == TIME_KEY {
            return Err(SeriesError::ReservedKey { kind: "tag" }.into());
        }
        if v.is_empty() {
            return Err(SeriesError::EmptyTagValue {
                key: Some(k.to_owned()),
            }
            .into());
        }
        out.push(b',');
        misleads_splitter |= write_name(k, TAG, "tag key", out)?;
        out.push(b'=');
        misleads_splitter |= write_name(v, TAG, "tag value", out)?;
    }
    if misleads_splitter && !series_key_ends_cleanly(&out[start..]) {
        return Err(EncodeError::MisleadingSeriesKey {
            series_key: String::from_utf8_lossy(&out[start..]).into_owned(),
        });
    }
    Ok(())
}

fn write_fields(point: &impl PointView, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut first = true;
    for (k, v) in point.fields() {
        if k.is_empty() {
            return Err(SeriesError::EmptyFieldKey.into());
        }
        if k == TIME_KEY {
            return Err(SeriesError::ReservedKey { kind: "field" }.into());
        }
        if first && matches!(k.as_bytes()[0], b'\t' | b'\0') {
            // Whitespace after the series key is skipped, so the first key cannot start
            // with it.
            return Err(EncodeError::UnrepresentableName {
                what: "field key",
                name: k.to_owned(),
            });
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Field keys pair backslashes as the splitter does, so they never mislead it.
        write_name(k, FIELD_KEY, "field key", out)?;
        out.push(b'=');
        write_value(k, &v, out)?;
    }
    if first {
        return Err(SeriesError::NoFields.into());
    }
    Ok(())
}

/// Appends `name` with the escapes of its position, refusing names the parser would read
/// back differently. Says whether it wrote an escaped delimiter after an even run of
/// backslashes, which InfluxDB's line splitter (it pairs backslashes) takes as unescaped.
#[inline]
fn write_name(
    name: &str,
    rules: NameRules,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<bool, EncodeError> {
    let bytes = name.as_bytes();
    // Most names need no escape: copy them in one go. The search is for every byte that
    // some position escapes or refuses (eight at a time, where a byte loop was 12% of the
    // bridge's instructions on Avro); the loop below copies any byte of them this
    // position leaves alone.
    let first = find_first(bytes, [b'\\', b'\n', b',', b'=', b' ']);
    if first == bytes.len() {
        out.extend_from_slice(bytes);
        return Ok(false);
    }
    let mut misleads_splitter = false;
    out.extend_from_slice(&bytes[..first]);
    // Length of the run of backslashes just written. The parser drops a backslash before
    // a byte this position unescapes, so a name's own backslash before such a byte needs
    // one more in front of it; and a run before a delimiter must not look like an even
    // one where backslashes pair (field keys).
    let mut run = 0usize;
    for &b in &bytes[first..] {
        if b == b'\\' {
            run += 1;
            out.push(b);
            continue;
        }
        if b == b'\n' {
            return Err(EncodeError::UnrepresentableName {
                what,
                name: name.to_owned(),
            });
        }
        if rules.stops_at(b) {
            if run > 0 && what == "measurement" {
                // InfluxDB accepts `m\\,x` but stores a series no query reads back.
                return Err(EncodeError::AmbiguousBackslash {
                    what,
                    name: name.to_owned(),
                });
            }
            if run % 2 == 1 {
                if rules.pairs() {
                    return Err(EncodeError::AmbiguousBackslash {
                        what,
                        name: name.to_owned(),
                    });
                }
                misleads_splitter = true;
            }
            out.push(b'\\');
        } else if run > 0 && rules.unescapes(b) {
            out.push(b'\\');
        }
        run = 0;
        out.push(b);
    }
    if run > 0 {
        // A trailing backslash would escape the byte that ends the name.
        return Err(EncodeError::AmbiguousBackslash {
            what,
            name: name.to_owned(),
        });
    }
    Ok(misleads_splitter)
}

fn write_value(key: &str, v: &FieldValueRef<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match v {
        FieldValueRef::Float(f) => {
            if !f.is_finite() {
                return Err(EncodeError::NonFiniteFloat {
                    key: key.to_owned(),
                });
            }
            write_float(*f, out);
        }
        FieldValueRef::Integer(i) => {
            out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            out.push(b'i');
        }
        FieldValueRef::UInteger(u) => {
            out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes());
            out.push(b'u');
        }
        FieldValueRef::String(s) => {
            out.push(b'"');
            kinflux_series::escape::string_field(s, out);
            out.push(b'"');
        }
        FieldValueRef::Boolean(b) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        // A value kind added to kinflux-series later has no spelling here yet.
        _ => {
            return Err(EncodeError::UnsupportedValue {
                key: key.to_owned(),
            });
        }
    }
    Ok(())
}

/// 2^52: below it, adding it rounds a float to a whole number, and every whole float is an
/// exact integer whose shortest form that reads back is its digits.
const WHOLE_BELOW: f64 = 4_503_599_627_370_496.0;

/// Appends the shortest form of the finite `f` that reads back as `f`: `1.5`, `42.0`,
/// `1e+300`, `-0.0`; all parse in InfluxDB (`1E+2` is in the differential test).
fn write_float(f: f64, out: &mut Vec<u8>) {
    // A whole number (a counter sent as a JSON number becomes a float) is written as its
    // integer and `.0`, the same text as zmij's, at a fifth of the cost. The test is two
    // additions (a magnitude comes back from `+ 2^52 - 2^52` unchanged only when whole),
    // cheap for the fractions that fail it. `-0.0` is not: as an integer it loses its sign.
    let magnitude = f.abs();
    if magnitude < WHOLE_BELOW
        && (magnitude + WHOLE_BELOW) - WHOLE_BELOW == magnitude
        && f.to_bits() != (-0.0f64).to_bits()
    {
        // Whole and below 2^52: the cast is exact.
        out.extend_from_slice(itoa::Buffer::new().format(f as i64).as_bytes());
        out.extend_from_slice(b".0");
    } else {
        // zmij: 1.8-2.7x faster than ryu here.
        out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes());
    }
}

/// Appends `ts` in `precision` (rounded down) to `out`. A time InfluxDB cannot store is
/// an error, and nothing is appended.
pub fn encode_timestamp(
    ts: Timestamp,
    precision: Precision,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    write_timestamp(ts, precision, out)
}

fn write_timestamp(
    ts: Timestamp,
    precision: Precision,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let value = ts.to_precision(precision);
    // The parser refuses what InfluxDB refuses, so the encoder must not write it.
    let readable = Timestamp::from_precision(value, precision)
        .is_ok_and(|back| (MIN_NANOS..=MAX_NANOS).contains(&back.as_nanos()));
    if !readable {
        return Err(EncodeError::TimestampOutOfRange {
            nanos: ts.as_nanos(),
            precision,
        });
    }
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{WHOLE_BELOW, write_float};

    fn written(f: f64) -> String {
        let mut out = Vec::new();
        write_float(f, &mut out);
        String::from_utf8(out).expect("a float is written as ASCII")
    }

    fn zmij(f: f64) -> String {
        zmij::Buffer::new().format_finite(f).to_owned()
    }

    #[test]
    fn floats_at_the_edges_of_the_whole_test_are_written_as_zmij_writes_them() {
        let edges = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            1e15,
            1e16,
            WHOLE_BELOW - 1.0,
            WHOLE_BELOW - 0.5,
            WHOLE_BELOW,
            WHOLE_BELOW + 1.0,
            2.0 * WHOLE_BELOW - 1.0,
            2.0 * WHOLE_BELOW,
            0.1,
            2.5,
            1e15 + 0.5,
            i64::MAX as f64,
            i64::MIN as f64,
            1e300,
            0.5,
            f64::MIN_POSITIVE,
        ];
        for f in edges.into_iter().flat_map(|f| [f, -f]) {
            assert_eq!(written(f), zmij(f), "{f:e}");
        }
        assert_eq!(written(-0.0), "-0.0");
        assert_eq!(written(42.0), "42.0");
    }

    proptest! {
        #[test]
        fn whole_floats_are_written_as_zmij_writes_them(whole in -(1i64 << 54)..(1i64 << 54)) {
            let f = whole as f64;
            prop_assert_eq!(written(f), zmij(f));
        }

        #[test]
        fn any_finite_float_is_written_as_zmij_writes_it(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            prop_assume!(f.is_finite());
            prop_assert_eq!(written(f), zmij(f));
        }
    }
}
