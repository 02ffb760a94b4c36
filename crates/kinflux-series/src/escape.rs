//! Line-protocol escaping, shared by the series key and the line-protocol encoder.
//!
//! InfluxDB escapes commas and spaces in measurements; commas, equals signs and spaces in
//! tag keys, tag values and field keys; double quotes and backslashes in string field
//! values. Nothing else is escaped.

/// Appends `name` to `out` with the escapes a measurement needs (`,` and space).
pub fn measurement(name: &str, out: &mut Vec<u8>) {
    escape_bytes(name.as_bytes(), out, |b| matches!(b, b',' | b' '));
}

/// Appends a tag key, tag value or field key to `out` with its escapes (`,`, `=`, space).
pub fn key(name: &str, out: &mut Vec<u8>) {
    escape_bytes(name.as_bytes(), out, |b| matches!(b, b',' | b'=' | b' '));
}

/// Appends a string field's contents (without the quotes) to `out`, escaping `"` and `\`.
pub fn string_field(value: &str, out: &mut Vec<u8>) {
    escape_bytes(value.as_bytes(), out, |b| matches!(b, b'"' | b'\\'));
}

#[inline]
fn escape_bytes(bytes: &[u8], out: &mut Vec<u8>, special: impl Fn(u8) -> bool) {
    // Most names need no escape: copy them in one go.
    let Some(first) = bytes.iter().position(|&b| special(b)) else {
        out.extend_from_slice(bytes);
        return;
    };
    out.extend_from_slice(&bytes[..first]);
    for &b in &bytes[first..] {
        if special(b) {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: fn(&str, &mut Vec<u8>), s: &str) -> String {
        let mut out = Vec::new();
        f(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_position_escapes_its_own_characters() {
        assert_eq!(run(measurement, "a b,c=d"), r"a\ b\,c=d");
        assert_eq!(run(key, "a b,c=d"), r"a\ b\,c\=d");
        assert_eq!(run(string_field, r#"say "hi" \o/"#), r#"say \"hi\" \\o/"#);
        assert_eq!(run(key, "plain"), "plain");
    }
}
