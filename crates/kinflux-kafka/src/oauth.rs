//! OAuth 2.0 access tokens for OAUTHBEARER, from the client-credentials grant (RFC 6749
//! 4.4): asked for at the token endpoint, kept while fresh, shared by every connection of
//! one consumer or producer. A token is fresh until 80 % of its lifetime has passed (as
//! the Java client's `sasl.login.refresh.window.factor`), so a connection that
//! authenticates with it has at least a fifth of the lifetime before its session ends.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::{sync::Mutex, time::Instant};
use tracing::debug;

use crate::{
    config::{OAuthConfig, TlsConfig},
    error::{Error, Result},
    security::rustls_config,
};

/// How long one token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest token response read.
const MAX_RESPONSE: usize = 1024 * 1024;
/// The share of a token's lifetime after which a new one is asked for.
const REFRESH_FACTOR: f64 = 0.8;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An access token. `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Token {
    value: Arc<str>,
    /// When it was asked for.
    obtained: Instant,
    /// When a new token should be used instead.
    fresh_until: Instant,
}

impl Token {
    /// The token, for the SASL message.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("obtained", &self.obtained)
            .field("fresh_until", &self.fresh_until)
            .finish()
    }
}

/// Why no token came.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// The endpoint refused the client or the request (a 4xx answer): asking again with
    /// the same settings cannot help.
    #[error("the token endpoint {url} refused client {client_id}: {reason}")]
    Refused {
        url: String,
        client_id: String,
        reason: String,
    },
    /// The endpoint could not be reached, failed (5xx, 429) or answered something that is
    /// no token: it may work later.
    #[error("no token from {url}: {reason}")]
    Unavailable { url: String, reason: String },
}

impl TokenError {
    /// The crate's error for a connection to `broker` that needed the token.
    pub(crate) fn into_error(self, broker: &str) -> Error {
        match self {
            TokenError::Refused { .. } => Error::Authentication {
                broker: broker.to_owned(),
                mechanism: "OAUTHBEARER",
                message: self.to_string(),
            },
            TokenError::Unavailable { url, reason } => Error::TokenEndpoint { url, reason },
        }
    }
}

/// The tokens of one consumer or producer.
pub(crate) struct TokenSource {
    config: OAuthConfig,
    client: HttpClient,
    /// The current token; the lock also makes concurrent callers wait for one request.
    current: Mutex<Option<Token>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub(crate) fn new(config: &OAuthConfig) -> Result<Self> {
        let tls = rustls_config(&TlsConfig {
            ca_file: config.ca_file.clone(),
            ..TlsConfig::default()
        })?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            config: config.clone(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            current: Mutex::new(None),
        })
    }

    /// The SASL extensions to send with the token.
    pub(crate) fn extensions(&self) -> &std::collections::BTreeMap<String, String> {
        &self.config.extensions
    }

    /// A fresh token: the current one, or a new one from the endpoint. With `newer_than`,
    /// only a token asked for after that instant: a session being renewed needs a newer
    /// token than the one it began with, or the broker grants the renewal no more time
    /// (the session lasts until the token expires).
    pub(crate) async fn token(&self, newer_than: Option<Instant>) -> Result<Token, TokenError> {
        let mut current = self.current.lock().await;
        let usable = |t: &&Token| {
            Instant::now() < t.fresh_until && newer_than.is_none_or(|at| t.obtained > at)
        };
        if let Some(t) = current.as_ref().filter(usable) {
            return Ok(t.clone());
        }
        let token = self.request().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    async fn request(&self) -> Result<Token, TokenError> {
        let url = self.config.token_url.trim();
        let unavailable = |reason: String| TokenError::Unavailable {
            url: url.to_owned(),
            reason,
        };
        let request = self.http_request().map_err(unavailable)?;
        let asked = Instant::now();
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unavailable(error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| unavailable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, TokenError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| unavailable(format!("no answer within {REQUEST_TIMEOUT:?}")))??;
        if status.is_client_error() && status.as_u16() != 429 {
            return Err(TokenError::Refused {
                url: url.to_owned(),
                client_id: self.config.client_id.clone(),
                reason: format!("HTTP {status}{}", oauth_error(&body)),
            });
        }
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {status}{}", oauth_error(&body))));
        }
        let parsed = parse_token(&body).map_err(unavailable)?;
        debug!(
            token_url = url,
            lifetime = ?parsed.lifetime,
            "OAuth access token obtained"
        );
        Ok(Token {
            value: parsed.value.into(),
            obtained: asked,
            fresh_until: asked + parsed.lifetime.mul_f64(REFRESH_FACTOR),
        })
    }

    fn http_request(&self) -> Result<hyper::Request<Full<Bytes>>, String> {
        let c = &self.config;
        // RFC 6749 2.3.1: id and secret are form-encoded, then joined for HTTP Basic.
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(&c.client_id),
            encode(&c.client_secret)
        ));
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = c.scope.as_deref().filter(|s| !s.is_empty()) {
            form.append_pair("scope", scope);
        }
        hyper::Request::post(c.token_url.trim())
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form.finish())))
            .map_err(|e| format!("bad token_url: {e}"))
    }
}

/// The whole chain of an error: hyper's own message is only "client error (Connect)".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `: error (description)` of an OAuth error answer (RFC 6749 5.2), if it is one.
fn oauth_error(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    match (v["error"].as_str(), v["error_description"].as_str()) {
        (Some(e), Some(d)) => format!(": {e} ({d})"),
        (Some(e), None) => format!(": {e}"),
        _ => String::new(),
    }
}

struct Parsed {
    value: String,
    lifetime: Duration,
}

/// The access token and its lifetime: `expires_in`, else the JWT's `exp` claim.
fn parse_token(body: &[u8]) -> Result<Parsed, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let value = v["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no access_token")?
        .to_owned();
    if let Some(kind) = v["token_type"].as_str() {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(format!("token_type {kind:?}, not Bearer"));
        }
    }
    let lifetime = match v["expires_in"].as_f64().or_else(|| {
        v["expires_in"]
            .as_str()
            .and_then(|s| s.trim().parse::<f64>().ok())
    }) {
        Some(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs),
        Some(secs) => return Err(format!("expires_in {secs} is not a lifetime")),
        None => jwt_lifetime(&value)?,
    };
    Ok(Parsed { value, lifetime })
}

/// What is left of a JWT's lifetime, from its `exp` claim.
fn jwt_lifetime(token: &str) -> Result<Duration, String> {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .ok_or("no expires_in, and the token is no JWT to read `exp` from")?;
    let exp = claims["exp"]
        .as_f64()
        .ok_or("no expires_in, and the token has no `exp` claim")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if exp <= now {
        return Err("the token has expired already".into());
    }
    Ok(Duration::from_secs_f64(exp - now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_comes_from_expires_in_or_the_jwt() {
        let p = parse_token(br#"{"access_token":"abc","token_type":"Bearer","expires_in":300}"#)
            .expect("token");
        assert_eq!(
            (p.value.as_str(), p.lifetime),
            ("abc", Duration::from_secs(300))
        );
        let p = parse_token(br#"{"access_token":"abc","expires_in":"60"}"#).expect("token");
        assert_eq!(p.lifetime, Duration::from_secs(60));
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            + 120;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"x","exp":{exp}}}"#));
        let body = format!(r#"{{"access_token":"e30.{claims}.c2ln"}}"#);
        let p = parse_token(body.as_bytes()).expect("token");
        assert!(p.lifetime > Duration::from_secs(110) && p.lifetime <= Duration::from_secs(120));
    }

    #[test]
    fn answers_without_a_usable_token_are_refused() {
        for (body, why) in [
            (&br#"{"token_type":"Bearer"}"#[..], "no access_token"),
            (
                br#"{"access_token":"a","token_type":"MAC","expires_in":1}"#,
                "not Bearer",
            ),
            (br#"{"access_token":"a","expires_in":0}"#, "not a lifetime"),
            (br#"{"access_token":"opaque"}"#, "no JWT"),
            (b"<html>", "not JSON"),
        ] {
            let e = parse_token(body).err().expect("refused");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn oauth_errors_are_quoted() {
        assert_eq!(
            oauth_error(br#"{"error":"invalid_client","error_description":"wrong secret"}"#),
            ": invalid_client (wrong secret)"
        );
        assert_eq!(oauth_error(b"nope"), "");
    }

    #[test]
    fn a_token_is_never_shown() {
        let t = Token {
            value: "eyJsecret".into(),
            obtained: Instant::now(),
            fresh_until: Instant::now(),
        };
        assert!(!format!("{t:?}").contains("eyJsecret"));
    }
}
