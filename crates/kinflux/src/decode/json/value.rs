//! A parsed JSON document that borrows its strings from the record.
//!
//! `serde_json::Value` owns every key and string (an allocation each) and keeps objects
//! in a `BTreeMap` (more allocations, and a walk to free them): parsing into it and
//! dropping it were about a third of the bridge's CPU on JSON. [`Json`] borrows every
//! string without escapes and keeps an object as one sorted vector, so it reads the same
//! as the map did: members in key order, and a repeated key keeps its last value.

use std::borrow::Cow;
use std::fmt;

use serde_json::Number;

/// A JSON value whose strings borrow from the input where they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// Objects up to this many members are searched front to back.
const LINEAR_LOOKUP: usize = 16;

/// Room made for an object's members before the first: the reader does not know how many
/// there are, and growing from nothing to the usual handful moved them twice.
pub(super) const MEMBERS_CAPACITY: usize = 8;

/// An object's members, sorted by key, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// The value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        if self.0.len() <= LINEAR_LOOKUP {
            // Lengths rule out most members without a `memcmp` call; a binary search
            // makes one per step (6% of the bridge's CPU on JSON went to `memcmp`).
            return self
                .0
                .iter()
                .find(|(k, _)| k.as_ref() == key)
                .map(|(_, v)| v);
        }
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Whether `key` is a member.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The members in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Sorts `members` by key (stable, so repeats stay in document order) and keeps the
    /// last of each repeated key, as `serde_json::Map` does.
    pub(super) fn from_members(mut members: Vec<(Cow<'a, str>, Json<'a>)>) -> Self {
        // Keys mostly differ in their first byte: deciding on it inline spares a `memcmp`
        // call per comparison.
        members.sort_by(|a, b| {
            let (a, b) = (a.0.as_bytes(), b.0.as_bytes());
            a.first().cmp(&b.first()).then_with(|| a.cmp(b))
        });
        // In place: `dedup_by` drops the later of two equal keys, so the later value
        // moves into the one kept first.
        members.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Object(members)
    }
}

impl Json<'_> {
    /// What kind of value this is, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Compact JSON text, as `serde_json::Value` prints it.
impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => write!(f, "{n}"),
            Json::String(s) => write_string(f, s),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(o) => {
                f.write_str("{")?;
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_string(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    // serde_json's own escaping; writing a string into a String cannot fail.
    let quoted = serde_json::to_string(s).map_err(|_| fmt::Error)?;
    f.write_str(&quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Json<'_> {
        super::super::read::read(text).unwrap()
    }

    #[test]
    fn reads_like_serde_json_value_and_prints_the_same() {
        for text in [
            r#"{"b":1,"a":[true,null,-2,3.5,"x\"y"],"c":{"z":{},"y":[]},"d":18446744073709551615}"#,
            r#"[1,{"k":"v"},"\u00e9"]"#,
            r#""plain""#,
            "1e300",
        ] {
            let ours = parse(text).to_string();
            let theirs = serde_json::from_str::<serde_json::Value>(text)
                .unwrap()
                .to_string();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn strings_without_escapes_borrow_and_repeated_keys_keep_the_last() {
        let text = r#"{"k":"first","a\n":"esc\"aped","k":"last"}"#;
        let Json::Object(o) = parse(text) else {
            panic!("an object")
        };
        assert_eq!(o.iter().count(), 2);
        assert!(matches!(
            o.get("k"),
            Some(Json::String(Cow::Borrowed("last")))
        ));
        assert!(matches!(o.get("a\n"), Some(Json::String(Cow::Owned(s))) if s == "esc\"aped"));
        assert!(o.get("missing").is_none());
        assert_eq!(
            o.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["a\n", "k"],
            "members in key order, as serde_json's map"
        );
    }

    /// Small objects are searched front to back, large ones by binary search: both find
    /// every member (the last of a repeated key) and nothing else, and keep key order.
    #[test]
    fn members_are_found_in_small_and_large_objects() {
        for n in [0, 1, 3, LINEAR_LOOKUP, LINEAR_LOOKUP + 1, 40] {
            // Keys sharing first bytes and lengths, written out of order, each twice.
            let keys: Vec<String> = (0..n).rev().map(|i| format!("k{i:02}")).collect();
            let members: Vec<String> = keys
                .iter()
                .flat_map(|k| [format!(r#""{k}":"old""#), format!(r#""{k}":"{k}""#)])
                .collect();
            let text = format!("{{{}}}", members.join(","));
            let Json::Object(o) = parse(&text) else {
                panic!("an object")
            };
            assert_eq!(o.iter().count(), n, "{text}");
            for k in &keys {
                assert!(
                    matches!(o.get(k), Some(Json::String(v)) if v == k),
                    "{k} in {text}"
                );
            }
            for missing in ["", "k", "k0", "k999", "j00"] {
                assert!(o.get(missing).is_none(), "{missing} in {text}");
            }
            let order: Vec<&str> = o.iter().map(|(k, _)| k).collect();
            assert!(order.is_sorted(), "{order:?}");
        }
    }
}
