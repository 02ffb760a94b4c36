//! The SASL exchange on our own connections: SaslHandshake, then SaslAuthenticate rounds
//! (PLAIN and SCRAM through rsasl, OAUTHBEARER's single message by hand, RFC 7628), and the
//! session lifetime the broker grants in the last answer (KIP-368): before it ends the
//! connection authenticates again, in `conn`, with the same exchange.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bytes::Bytes;
use kafka_protocol::{
    messages::{SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest},
    protocol::StrBytes,
};
use tokio::time::Instant;

use crate::{
    config::{Credentials, SaslConfig, SaslMechanism},
    conn::{Connection, Writer},
    error::{Error, Result, code},
    oauth::{Token, TokenSource},
};

/// How long each request of the exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The SASL settings of a consumer or producer, with the token source OAUTHBEARER shares
/// between its connections.
#[derive(Debug)]
pub(crate) enum Sasl {
    Password {
        mechanism: SaslMechanism,
        credentials: Credentials,
    },
    OAuthBearer(Arc<TokenSource>),
}

/// What one exchange needs, got before the connection is locked for it (a token may take
/// a request to the token endpoint).
pub(crate) enum Prepared<'a> {
    Password(&'a Credentials),
    Token {
        token: Token,
        extensions: &'a BTreeMap<String, String>,
    },
}

impl Sasl {
    pub(crate) fn new(config: &SaslConfig) -> Result<Self> {
        config.validate()?;
        Ok(match (config, config.credentials()) {
            (SaslConfig::OAuthBearer(oauth), _) => {
                Sasl::OAuthBearer(Arc::new(TokenSource::new(oauth)?))
            }
            (_, Some(credentials)) => Sasl::Password {
                mechanism: config.mechanism(),
                credentials: credentials.clone(),
            },
            (_, None) => {
                return Err(Error::Config(format!(
                    "SASL {} has no credentials",
                    config.mechanism()
                )));
            }
        })
    }

    pub(crate) fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Password { mechanism, .. } => mechanism.name(),
            Sasl::OAuthBearer(_) => SaslMechanism::OAuthBearer.name(),
        }
    }

    /// Gets what an exchange with `broker` needs; to renew a session that began at
    /// `session_start`, a token asked for after it.
    pub(crate) async fn prepare(
        &self,
        broker: &str,
        session_start: Option<Instant>,
    ) -> Result<Prepared<'_>> {
        match self {
            Sasl::Password { credentials, .. } => Ok(Prepared::Password(credentials)),
            Sasl::OAuthBearer(tokens) => Ok(Prepared::Token {
                token: tokens
                    .token(session_start)
                    .await
                    .map_err(|e| e.into_error(broker))?,
                extensions: tokens.extensions(),
            }),
        }
    }
}

/// Authenticates `conn` (whose writer the caller holds, so that no other request goes out
/// in the middle of the exchange). Returns the session lifetime the broker set, if any.
pub(crate) async fn authenticate(
    conn: &Connection,
    w: &mut Writer,
    sasl: &Sasl,
    prepared: &Prepared<'_>,
) -> Result<Option<Duration>> {
    let mechanism = sasl.mechanism();
    let refused = |message: String| Error::Authentication {
        broker: conn.broker().to_owned(),
        mechanism,
        message,
    };
    let hv = conn.version::<SaslHandshakeRequest>(1)?;
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    let resp = conn.send_locked(w, hv, &handshake, TIMEOUT).await?;
    if resp.error_code == code::UNSUPPORTED_SASL_MECHANISM {
        let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(refused(format!(
            "the broker does not enable {mechanism} on this listener (it offers {offered:?})"
        )));
    }
    if resp.error_code != code::NONE {
        return Err(refused(format!(
            "SaslHandshake answered {}",
            code::name(resp.error_code)
        )));
    }
    let av = conn.version::<SaslAuthenticateRequest>(2)?;
    let last = match prepared {
        Prepared::Token { token, extensions } => {
            oauthbearer(conn, w, av, token, extensions, &refused).await?
        }
        Prepared::Password(credentials) => {
            with_rsasl(conn, w, av, mechanism, credentials, &refused).await?
        }
    };
    Ok(u64::try_from(last.session_lifetime_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis))
}

/// One SaslAuthenticate round; a broker error is a refusal.
async fn round(
    conn: &Connection,
    w: &mut Writer,
    version: i16,
    bytes: Bytes,
    refused: &impl Fn(String) -> Error,
) -> Result<SaslAuthenticateResponse> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(bytes);
    let resp = conn.send_locked(w, version, &request, TIMEOUT).await?;
    if resp.error_code != code::NONE {
        return Err(refused(resp.error_message.as_ref().map_or_else(
            || code::name(resp.error_code).to_owned(),
            |m| m.to_string(),
        )));
    }
    Ok(resp)
}

/// RFC 7628: the token (and extensions) in one message. A broker that refuses the token
/// answers with a JSON error instead of success, expects a lone 0x01, then fails the
/// exchange.
async fn oauthbearer(
    conn: &Connection,
    w: &mut Writer,
    version: i16,
    token: &Token,
    extensions: &BTreeMap<String, String>,
    refused: &impl Fn(String) -> Error,
) -> Result<SaslAuthenticateResponse> {
    let mut message = format!("n,,\u{1}auth=Bearer {}\u{1}", token.value());
    for (key, value) in extensions {
        message.push_str(&format!("{key}={value}\u{1}"));
    }
    message.push('\u{1}');
    let resp = round(conn, w, version, Bytes::from(message), refused).await?;
    if resp.auth_bytes.is_empty() {
        return Ok(resp);
    }
    let challenge = String::from_utf8_lossy(&resp.auth_bytes).into_owned();
    match round(conn, w, version, Bytes::from_static(b"\x01"), refused).await {
        Err(Error::Authentication { message, .. }) if message != challenge => Err(refused(
            format!("the broker refused the token: {challenge}; {message}"),
        )),
        Err(Error::Authentication { .. }) | Ok(_) => Err(refused(format!(
            "the broker refused the token: {challenge}"
        ))),
        Err(e) => Err(e),
    }
}

/// PLAIN and SCRAM: as many rounds as the mechanism takes.
async fn with_rsasl(
    conn: &Connection,
    w: &mut Writer,
    version: i16,
    mechanism: &'static str,
    credentials: &Credentials,
    refused: &impl Fn(String) -> Error,
) -> Result<SaslAuthenticateResponse> {
    let config = rsasl::config::SASLConfig::with_credentials(
        None,
        credentials.username.clone(),
        credentials.password.clone(),
    )
    .map_err(|e| refused(e.to_string()))?;
    let mech = rsasl::mechname::Mechname::parse(mechanism.as_bytes())
        .map_err(|e| refused(e.to_string()))?;
    let mut session = rsasl::prelude::SASLClient::new(config)
        .start_suggested(&[mech])
        .map_err(|e| refused(e.to_string()))?;
    let mut received: Option<Bytes> = None;
    let mut last = None;
    loop {
        let mut out = Vec::new();
        let state = session
            .step(received.as_deref(), &mut out)
            .map_err(|e| refused(e.to_string()))?;
        if state.has_sent_message() {
            let resp = round(conn, w, version, Bytes::from(out), refused).await?;
            received = Some(resp.auth_bytes.clone());
            last = Some(resp);
        }
        if state.is_finished() {
            return last.ok_or_else(|| refused("the exchange ended before any message".into()));
        }
    }
}
