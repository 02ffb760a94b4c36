//! Just enough line-protocol reading to find a line's measurement and field types.
//!
//! Only used on the error path: InfluxDB 1.x names a field type conflict by measurement,
//! field and type, not by line, so the writer looks for the lines that match.

/// A field value's type, named as InfluxDB names it in error messages.
pub(crate) fn field_type(value: &[u8]) -> &'static str {
    match value {
        [b'"', ..] => "string",
        b"t" | b"T" | b"true" | b"True" | b"TRUE" | b"f" | b"F" | b"false" | b"False"
        | b"FALSE" => "boolean",
        [.., b'i'] => "integer",
        [.., b'u'] => "unsigned",
        _ => "float",
    }
}

/// A field key (unescaped) and its type name.
pub(crate) type FieldType = (Vec<u8>, &'static str);

/// A line's measurement and its field types, unescaped. `None` when the line does not
/// have that shape.
pub(crate) fn measurement_and_field_types(line: &[u8]) -> Option<(Vec<u8>, Vec<FieldType>)> {
    let line = line.trim_ascii();
    let (measurement, mut pos) = read_escaped(line, 0, b", ");
    if measurement.is_empty() {
        return None;
    }
    if line.get(pos) == Some(&b',') {
        // The tag set: skip to the first unescaped space.
        let (_, end) = read_escaped(line, pos, b" ");
        pos = end;
    }
    while line.get(pos) == Some(&b' ') {
        pos += 1;
    }
    let mut fields = Vec::new();
    loop {
        let (key, after_key) = read_escaped(line, pos, b"= ");
        if line.get(after_key) != Some(&b'=') || key.is_empty() {
            return None;
        }
        let value_start = after_key + 1;
        let value_end = value_end(line, value_start);
        fields.push((key, field_type(&line[value_start..value_end])));
        match line.get(value_end) {
            Some(b',') => pos = value_end + 1,
            _ => break,
        }
    }
    Some((measurement, fields))
}

/// Reads from `start` up to the first unescaped byte in `stops`; returns the unescaped
/// text and the stop position.
fn read_escaped(line: &[u8], start: usize, stops: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut i = start;
    while i < line.len() {
        let b = line[i];
        if b == b'\\' && i + 1 < line.len() && matches!(line[i + 1], b',' | b' ' | b'=' | b'\\') {
            out.push(line[i + 1]);
            i += 2;
            continue;
        }
        if stops.contains(&b) {
            break;
        }
        out.push(b);
        i += 1;
    }
    (out, i)
}

/// The end of the field value starting at `start`: a quoted string ends after its closing
/// quote, anything else at the next `,` or space.
fn value_end(line: &[u8], start: usize) -> usize {
    let mut i = start;
    if line.get(i) == Some(&b'"') {
        i += 1;
        while i < line.len() {
            match line[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        return line.len();
    }
    while i < line.len() && line[i] != b',' && line[i] != b' ' {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(line: &str) -> Option<(String, Vec<(String, &'static str)>)> {
        measurement_and_field_types(line.as_bytes()).map(|(m, f)| {
            (
                String::from_utf8(m).unwrap(),
                f.into_iter()
                    .map(|(k, t)| (String::from_utf8(k).unwrap(), t))
                    .collect(),
            )
        })
    }

    #[test]
    fn reads_measurement_and_each_field_type() {
        let (m, f) =
            types(r#"cpu,host=a\ b,x=y a=1,b=2i,c=3u,d="x, y=\"z\"",e=true,f=F 123"#).unwrap();
        assert_eq!(m, "cpu");
        assert_eq!(
            f,
            vec![
                ("a".into(), "float"),
                ("b".into(), "integer"),
                ("c".into(), "unsigned"),
                ("d".into(), "string"),
                ("e".into(), "boolean"),
                ("f".into(), "boolean"),
            ]
        );
    }

    #[test]
    fn unescapes_measurement_and_keys() {
        let (m, f) = types(r"my\ cpu\,x,t=1 fi\=eld=1i").unwrap();
        assert_eq!(m, "my cpu,x");
        assert_eq!(f, vec![("fi=eld".into(), "integer")]);
    }

    #[test]
    fn rejects_lines_without_fields() {
        assert_eq!(types("garbage"), None);
        assert_eq!(types(""), None);
    }
}
