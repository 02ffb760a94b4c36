//! Splitting an encoded field section (`k1=v1,k2="a,b"`) into its pairs, to drop the
//! earlier of two pairs with the same key when merged points are written.
//!
//! Sections here were produced by our encoder or checked by our parser, so they are well
//! formed; the scanner only needs to find the commas and equals signs that are not escaped
//! and not inside a quoted string.

/// One `key=value` pair: the escaped key bytes and the whole pair's bytes.
pub(crate) struct Pair<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) bytes: &'a [u8],
}

/// The pairs of `section`, in order.
pub(crate) fn pairs(section: &[u8]) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut key_end = None;
    let mut in_string = false;
    let mut i = 0;
    while i < section.len() {
        match section[i] {
            b'\\' => i += 1, // the escaped byte never ends anything
            b'"' if key_end.is_some() => in_string = !in_string,
            b'=' if key_end.is_none() => key_end = Some(i),
            b',' if !in_string => {
                out.push(Pair {
                    key: &section[start..key_end.unwrap_or(i)],
                    bytes: &section[start..i],
                });
                start = i + 1;
                key_end = None;
            }
            _ => {}
        }
        i += 1;
    }
    if start < section.len() {
        out.push(Pair {
            key: &section[start..key_end.unwrap_or(section.len())],
            bytes: &section[start..],
        });
    }
    out
}

/// Writes the pairs of all `sections` (in order) to `out`, keeping for each key only its
/// last pair, at the position of that last pair.
pub(crate) fn write_keep_last(sections: &[&[u8]], out: &mut Vec<u8>) {
    let all: Vec<Pair<'_>> = sections.iter().flat_map(|s| pairs(s)).collect();
    let mut first = true;
    for (i, pair) in all.iter().enumerate() {
        if all[i + 1..].iter().any(|later| later.key == pair.key) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(pair.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_inside_strings_and_escapes_do_not_split() {
        let p = pairs(br#"a=1i,b\,c="x,\"y\"=z",d\=e=true"#);
        let keys: Vec<_> = p
            .iter()
            .map(|p| std::str::from_utf8(p.key).unwrap())
            .collect();
        assert_eq!(keys, [r"a", r"b\,c", r"d\=e"]);
        assert_eq!(p[1].bytes, br#"b\,c="x,\"y\"=z""#);
    }

    #[test]
    fn later_pairs_win() {
        let mut out = Vec::new();
        write_keep_last(&[b"a=1,b=2", br#"a="s",c=3"#], &mut out);
        assert_eq!(out, br#"b=2,a="s",c=3"#);
    }
}
