//! `${NAME}` interpolation from the environment, applied to every string of a parsed
//! config, so that secrets stay out of config files.

use toml::Value;

/// A `${NAME}` whose variable is not set, or a `${` that is never closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InterpolationError {
    /// The variable is not set (or not valid Unicode).
    #[error("{key}: environment variable {name} is not set")]
    Unset {
        /// The config key holding the reference, as a dotted path.
        key: String,
        /// The variable's name.
        name: String,
    },
    /// `${` without a closing `}`.
    #[error("{key}: unclosed \"${{\" in {value:?}")]
    Unclosed {
        /// The config key, as a dotted path.
        key: String,
        /// The string as written.
        value: String,
    },
}

/// The one name that is not looked up in the environment where a point is routed: the
/// record's topic.
const TOPIC: &str = "topic";

/// `${topic}`, as the pipeline fills it in.
pub(crate) const TOPIC_REFERENCE: &str = "${topic}";

/// The keys where `${topic}` stands for the record's topic: where a point goes
/// (`database`, `bucket`, `retention_policy` of a target) and its `measurement`.
fn routes_by_topic(path: &str) -> bool {
    if path.starts_with("metrics") {
        return false;
    }
    let last = path.rsplit('.').next().unwrap_or(path);
    matches!(
        last,
        "database" | "bucket" | "retention_policy" | "measurement"
    )
}

/// Replaces every `${NAME}` in the strings of `value` by the variable's value, looked up
/// with `lookup`. `$${` stands for a literal `${`.
pub(crate) fn interpolate(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), InterpolationError> {
    walk(value, &mut String::new(), lookup)
}

fn walk(
    value: &mut Value,
    path: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), InterpolationError> {
    match value {
        Value::String(s) if s.contains("${") => *s = expand(s, path, lookup)?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, lookup)?;
                path.truncate(len);
            }
        }
        Value::Table(table) => {
            for (k, item) in table.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(item, path, lookup)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand(
    s: &str,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            // `$${` is an escaped, literal `${`.
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(close) = after.find('}') else {
            return Err(InterpolationError::Unclosed {
                key: path.to_owned(),
                value: s.to_owned(),
            });
        };
        let name = &after[..close];
        if name == TOPIC && routes_by_topic(path) {
            // The record's topic, filled in per record by the pipeline.
            out.push_str(TOPIC_REFERENCE);
            rest = &after[close + 1..];
            continue;
        }
        let value = lookup(name).ok_or_else(|| InterpolationError::Unset {
            key: path.to_owned(),
            name: name.to_owned(),
        })?;
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "HOST" => Some("db".into()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_in_nested_strings() {
        let mut v: Value = toml::from_str(
            r#"
            [influx]
            url = "http://${HOST}:8086"
            token = "${TOKEN}"
            [kafka]
            brokers = ["${HOST}:9092", "plain"]
            literal = "$${NOT}"
            "#,
        )
        .unwrap();
        interpolate(&mut v, &env).unwrap();
        assert_eq!(v["influx"]["url"].as_str(), Some("http://db:8086"));
        assert_eq!(v["influx"]["token"].as_str(), Some("s3cret"));
        assert_eq!(v["kafka"]["brokers"][0].as_str(), Some("db:9092"));
        assert_eq!(v["kafka"]["literal"].as_str(), Some("${NOT}"));
    }

    #[test]
    fn a_missing_variable_names_the_key() {
        let mut v: Value = toml::from_str("[influx]\npassword = \"${NOPE}\"").unwrap();
        let err = interpolate(&mut v, &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "influx.password: environment variable NOPE is not set"
        );
        let mut v: Value = toml::from_str("x = [\"${TOKEN\"]").unwrap();
        assert!(matches!(
            interpolate(&mut v, &env).unwrap_err(),
            InterpolationError::Unclosed { key, .. } if key == "x[0]"
        ));
    }
}
