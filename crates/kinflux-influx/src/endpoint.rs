//! The URLs and headers of each API.

use http::header::HeaderValue;
use kinflux_series::Precision;

use crate::{Api, WriteError};

/// InfluxQL double-quoted identifier.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(crate) fn write_path(api: &Api, precision: Precision) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let path = match api {
        Api::V1 {
            database,
            retention_policy,
            ..
        } => {
            query.append_pair("db", database);
            if let Some(rp) = retention_policy {
                query.append_pair("rp", rp);
            }
            query.append_pair("precision", precision.as_v1_str());
            "/write"
        }
        Api::V2 { org, bucket, .. } => {
            query.append_pair("org", org);
            query.append_pair("bucket", bucket);
            query.append_pair("precision", precision.as_str());
            "/api/v2/write"
        }
        Api::V3 {
            database,
            accept_partial,
            ..
        } => {
            query.append_pair("db", database);
            query.append_pair("precision", v3_precision(precision));
            query.append_pair(
                "accept_partial",
                if *accept_partial { "true" } else { "false" },
            );
            "/api/v3/write_lp"
        }
    };
    format!("{path}?{}", query.finish())
}

/// The v3 API names precisions in full.
pub(crate) fn v3_precision(precision: Precision) -> &'static str {
    match precision {
        Precision::Nanoseconds => "nanosecond",
        Precision::Microseconds => "microsecond",
        Precision::Milliseconds => "millisecond",
        Precision::Seconds => "second",
    }
}

pub(crate) fn authorization(api: &Api) -> Result<Option<HeaderValue>, WriteError> {
    use base64::Engine;
    let value = match api {
        Api::V1 {
            credentials: Some((user, password)),
            ..
        } => {
            let pair = format!("{user}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        Api::V1 { .. } | Api::V3 { token: None, .. } => return Ok(None),
        Api::V2 { token, .. } => format!("Token {}", token.expose()),
        Api::V3 {
            token: Some(token), ..
        } => format!("Bearer {}", token.expose()),
    };
    let mut value = HeaderValue::try_from(value).map_err(|_| {
        WriteError::Config("credentials contain bytes not allowed in a header".to_owned())
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriterConfig;

    #[test]
    fn write_paths_follow_each_api() {
        let v1 = WriterConfig::v1("http://h:8086/", "my db").with_retention_policy("rp1");
        assert_eq!(
            write_path(&v1.api, Precision::Milliseconds),
            "/write?db=my+db&rp=rp1&precision=ms"
        );
        let v2 = WriterConfig::v2("http://h", "o&rg", "b", "t");
        assert_eq!(
            write_path(&v2.api, Precision::Nanoseconds),
            "/api/v2/write?org=o%26rg&bucket=b&precision=ns"
        );
        let v3 = WriterConfig::v3("http://h", "db", None);
        assert_eq!(
            write_path(&v3.api, Precision::Seconds),
            "/api/v3/write_lp?db=db&precision=second&accept_partial=true"
        );
        let strict = WriterConfig::v3("http://h", "db", None).with_accept_partial(false);
        assert!(write_path(&strict.api, Precision::Nanoseconds).ends_with("accept_partial=false"));
    }

    #[test]
    fn quote_identifier_escapes() {
        assert_eq!(quote_identifier(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
