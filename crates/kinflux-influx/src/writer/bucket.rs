//! v2: creating a missing bucket (`POST /api/v2/buckets`), as InfluxDB 2.7 answers it
//! (recorded in docs/server-answers.md).

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Uri};

use super::Writer;
use crate::{Api, Attempt, LineBatch, WriteError};

impl Writer {
    /// v2: creates the configured bucket in the configured org, with
    /// [`crate::WriterConfig::bucket_retention`]; an existing bucket is left as it is.
    pub(super) async fn create_bucket_once(&self) -> Attempt {
        let Api::V2 { org, bucket, .. } = &self.inner.config.api else {
            return Attempt::Permanent(WriteError::Unsupported("create_bucket"));
        };
        let org_id = match self.org_id(org).await {
            Ok(id) => id,
            Err(attempt) => return attempt,
        };
        let every_seconds = self
            .inner
            .config
            .bucket_retention
            .map_or(0, |d| d.as_secs());
        // No rule is infinite retention; 2.7 refuses an `expire` rule of 0 seconds.
        let rules = if every_seconds == 0 {
            serde_json::json!([])
        } else {
            serde_json::json!([{"type": "expire", "everySeconds": every_seconds}])
        };
        let body = serde_json::json!({"orgID": org_id, "name": bucket, "retentionRules": rules});
        let uri = match self.api_uri("/api/v2/buckets") {
            Ok(uri) => uri,
            Err(e) => return Attempt::Permanent(e),
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/json");
        let answer = match self.send(request, Bytes::from(body.to_string())).await {
            Ok(answer) => answer,
            Err(attempt) => return attempt,
        };
        // 2.7: 201 when created, 422 `{"code":"conflict"}` when it already exists.
        if answer.status.as_u16() == 422 && error_code(&answer.body).as_deref() == Some("conflict")
        {
            return Attempt::Written;
        }
        self.classify(&answer, &LineBatch::new(Bytes::new()))
    }

    /// The id of `org`, a name (`GET /api/v2/orgs?org=NAME`) or, when no org has that
    /// name, an id itself (`?orgID=`), as the write API accepts either.
    async fn org_id(&self, org: &str) -> Result<String, Attempt> {
        if let Some(id) = self.find_org("org", "name", org).await? {
            return Ok(id);
        }
        match self.find_org("orgID", "id", org).await? {
            Some(id) => Ok(id),
            None => Err(Attempt::Permanent(WriteError::NotFound {
                message: format!("organization {org:?} not found"),
            })),
        }
    }

    /// `GET /api/v2/orgs?KEY=VALUE`: the id of the org whose `member` is `value`. The
    /// answer is checked, not trusted: 2.7 lists every org for an `orgID` it cannot read.
    async fn find_org(
        &self,
        key: &str,
        member: &str,
        value: &str,
    ) -> Result<Option<String>, Attempt> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair(key, value)
            .finish();
        let uri = self
            .api_uri(&format!("/api/v2/orgs?{query}"))
            .map_err(Attempt::Permanent)?;
        let request = Request::builder().method(Method::GET).uri(uri);
        let answer = self.send(request, Bytes::new()).await?;
        // 2.7 answers 404 for an unknown name and 400 for a malformed id.
        if matches!(answer.status.as_u16(), 400 | 404) {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(self.classify(&answer, &LineBatch::new(Bytes::new())));
        }
        let orgs: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| {
            Attempt::Permanent(WriteError::Refused {
                status: answer.status.as_u16(),
                message: format!("unreadable /api/v2/orgs answer: {e}"),
            })
        })?;
        let found = orgs["orgs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o[member].as_str() == Some(value))
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned);
        Ok(found)
    }

    fn api_uri(&self, path_and_query: &str) -> Result<Uri, WriteError> {
        let base = self.inner.config.url.trim_end_matches('/');
        Uri::try_from(format!("{base}{path_and_query}"))
            .map_err(|e| WriteError::Config(format!("bad URL {base}: {e}")))
    }
}

/// The `code` member of a v2 error body.
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(value.get("code")?.as_str()?.to_owned())
}
