//! Writers for other databases, buckets or retention policies on the same server, for
//! points routed per tag or per topic.

use std::sync::Arc;

use super::{Inner, Writer};
use crate::endpoint::write_path;
use crate::{Api, WriteError};

impl Writer {
    /// A writer to another database (v1 and v3) or bucket (v2), and on v1 another
    /// retention policy; `None` keeps this writer's. It shares this writer's connections,
    /// request limit (`max_in_flight` counts the requests of both), counters, retry log
    /// and shutdown signal; with `create_database`, it creates its own database or bucket
    /// when missing.
    pub fn routed(
        &self,
        database: Option<&str>,
        retention_policy: Option<&str>,
    ) -> Result<Writer, WriteError> {
        let inner = &self.inner;
        let mut config = inner.config.clone();
        match &mut config.api {
            Api::V1 {
                database: db,
                retention_policy: rp,
                ..
            } => {
                if let Some(d) = database {
                    d.clone_into(db);
                }
                if let Some(r) = retention_policy {
                    *rp = Some(r.to_owned());
                }
            }
            Api::V2 { bucket, .. } => {
                if let Some(b) = database {
                    b.clone_into(bucket);
                }
            }
            Api::V3 { database: db, .. } => {
                if let Some(d) = database {
                    d.clone_into(db);
                }
            }
        }
        let base = config.url.trim_end_matches('/');
        let write_uri = http::Uri::try_from(format!(
            "{base}{}",
            write_path(&config.api, config.precision)
        ))
        .map_err(|e| WriteError::Config(format!("bad URL {base}: {e}")))?;
        Ok(Writer {
            inner: Arc::new(Inner {
                config,
                client: inner.client.clone(),
                write_uri,
                ping_uri: inner.ping_uri.clone(),
                query_uri: inner.query_uri.clone(),
                authorization: inner.authorization.clone(),
                permits: Arc::clone(&inner.permits),
                stats: Arc::clone(&inner.stats),
                retry_log: inner.retry_log.clone(),
                shutdown: inner.shutdown.clone(),
            }),
        })
    }

    /// The database (v1, v3) or bucket (v2) this writer writes to.
    pub fn destination(&self) -> &str {
        match &self.inner.config.api {
            Api::V1 { database, .. } | Api::V3 { database, .. } => database,
            Api::V2 { bucket, .. } => bucket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Secret, WriterConfig};

    #[test]
    fn a_routed_writer_changes_only_its_destination_and_shares_the_rest() {
        let v1 = Writer::new(
            WriterConfig::v1("http://127.0.0.1:8086", "base").with_retention_policy("rp0"),
        )
        .expect("a writer");
        let routed = v1.routed(Some("other db"), Some("short")).expect("routed");
        assert_eq!(routed.destination(), "other db");
        let uri = routed.inner.write_uri.to_string();
        assert!(
            uri.contains("db=other+db") && uri.contains("rp=short"),
            "{uri}"
        );
        let kept = v1.routed(Some("x"), None).expect("routed");
        assert!(kept.inner.write_uri.to_string().contains("rp=rp0"));
        assert!(Arc::ptr_eq(&v1.inner.permits, &routed.inner.permits));
        assert!(Arc::ptr_eq(&v1.inner.stats, &routed.inner.stats));
        assert_eq!(v1.destination(), "base");

        let v2 = Writer::new(WriterConfig::v2(
            "http://127.0.0.1:8087",
            "org",
            "bucket",
            Secret::new("t"),
        ))
        .expect("a writer");
        let routed = v2.routed(Some("site_a"), Some("ignored")).expect("routed");
        let uri = routed.inner.write_uri.to_string();
        assert!(
            uri.contains("bucket=site_a") && !uri.contains("rp="),
            "{uri}"
        );
        assert!(routed.inner.authorization.is_some());
    }
}
