//! TLS and SASL options, as data. `Debug` never shows a password, a client secret or a
//! token.
//!
//! In a configuration file SASL is one flat table whose `mechanism` says which other keys
//! belong to it:
//!
//! ```toml
//! # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
//! sasl = { mechanism = "SCRAM-SHA-512", username = "bridge", password = "…" }
//! # OAUTHBEARER with the OAuth 2.0 client-credentials grant (OIDC)
//! sasl = { mechanism = "OAUTHBEARER", token_url = "https://idp.example/oauth2/token",
//!          client_id = "bridge", client_secret = "…", scope = "kafka" }
//! ```

use std::{collections::BTreeMap, fmt, path::PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// TLS options, for every connection to the brokers.
///
/// The broker's certificate is always verified (unless `insecure_skip_verify`), including
/// that it names the host the client connects to: the host of the bootstrap address, then
/// the host each broker advertises.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM file with the CA certificates to trust; absent means the Mozilla root set.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file with a client certificate chain, for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file with the client private key, for mutual TLS.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Do not verify the broker's certificate. Only for tests.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    /// Trust the CA certificates in this PEM file.
    pub fn with_ca_file(path: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: Some(path.into()),
            ..Self::default()
        }
    }

    /// Adds a client certificate chain and its private key (PEM files), for mutual TLS.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(cert.into());
        self.key_file = Some(key.into());
        self
    }
}

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// PLAIN: user and password in clear (use it with TLS).
    #[serde(rename = "PLAIN")]
    Plain,
    /// SCRAM-SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// OAUTHBEARER (RFC 7628) with tokens from an OAuth 2.0 token endpoint.
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A user name and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl Credentials {
    /// A user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// OAUTHBEARER with the OAuth 2.0 client-credentials grant (RFC 6749 4.4), as OIDC
/// identity providers offer it (Okta, Microsoft Entra ID, Keycloak, Auth0, ...).
///
/// A token is asked for at `token_url` with HTTP Basic client authentication, kept while
/// it is fresh, and asked for again once 80 % of its lifetime (`expires_in`) has passed.
/// A connection whose broker limits the session (KIP-368, which Kafka does for OAUTHBEARER
/// up to the token's expiry) re-authenticates with a fresh token before the session ends.
/// `Debug` never shows the client secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthConfig {
    /// The token endpoint, `https://…` (`http://` only for tests on one host).
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The scope asked for (space-separated), if the identity provider wants one.
    pub scope: Option<String>,
    /// SASL extensions sent with the token (RFC 7628 3.1), such as Confluent Cloud's
    /// `logicalCluster` and `identityPoolId`.
    pub extensions: BTreeMap<String, String>,
    /// PEM file with the CA certificates that sign the token endpoint's certificate;
    /// absent means the Mozilla root set.
    pub ca_file: Option<PathBuf>,
}

impl OAuthConfig {
    /// A token endpoint and the client's id and secret.
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
            extensions: BTreeMap::new(),
            ca_file: None,
        }
    }

    /// Asks for this scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    fn validate(&self) -> Result<()> {
        let url = self.token_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error::Config(format!(
                "sasl.token_url must be an http:// or https:// URL, not {url:?}"
            )));
        }
        if self.client_id.is_empty() {
            return Err(Error::Config("sasl.client_id is empty".into()));
        }
        for key in self.extensions.keys() {
            // RFC 7628 3.1: key = 1*(ALPHA); "auth" is the token's own key.
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) || key == "auth" {
                return Err(Error::Config(format!(
                    "sasl.extensions: {key:?} is not a SASL extension name (letters only, not \"auth\")"
                )));
            }
        }
        for value in self.extensions.values() {
            if value.contains('\u{1}') {
                return Err(Error::Config(
                    "sasl.extensions: a value must not contain the byte 0x01".into(),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .field("extensions", &self.extensions)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// SASL authentication: the mechanism and what it needs. `Debug` never shows a password or
/// a client secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SaslFields")]
#[non_exhaustive]
pub enum SaslConfig {
    /// PLAIN with a user name and password.
    Plain(Credentials),
    /// SCRAM-SHA-256 with a user name and password.
    ScramSha256(Credentials),
    /// SCRAM-SHA-512 with a user name and password.
    ScramSha512(Credentials),
    /// OAUTHBEARER with tokens from an OAuth 2.0 token endpoint.
    OAuthBearer(OAuthConfig),
}

impl SaslConfig {
    /// A user name and password for PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    ///
    /// # Errors
    /// [`Error::Config`] for [`SaslMechanism::OAuthBearer`], which takes an [`OAuthConfig`]
    /// ([`SaslConfig::OAuthBearer`]).
    pub fn password(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self> {
        let credentials = Credentials::new(username, password);
        match mechanism {
            SaslMechanism::Plain => Ok(SaslConfig::Plain(credentials)),
            SaslMechanism::ScramSha256 => Ok(SaslConfig::ScramSha256(credentials)),
            SaslMechanism::ScramSha512 => Ok(SaslConfig::ScramSha512(credentials)),
            SaslMechanism::OAuthBearer => Err(Error::Config(
                "OAUTHBEARER takes a token endpoint and client credentials, not a password".into(),
            )),
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> SaslMechanism {
        match self {
            SaslConfig::Plain(_) => SaslMechanism::Plain,
            SaslConfig::ScramSha256(_) => SaslMechanism::ScramSha256,
            SaslConfig::ScramSha512(_) => SaslMechanism::ScramSha512,
            SaslConfig::OAuthBearer(_) => SaslMechanism::OAuthBearer,
        }
    }

    /// The user name and password, for the mechanisms that take them.
    pub fn credentials(&self) -> Option<&Credentials> {
        match self {
            SaslConfig::Plain(c) | SaslConfig::ScramSha256(c) | SaslConfig::ScramSha512(c) => {
                Some(c)
            }
            SaslConfig::OAuthBearer(_) => None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            SaslConfig::OAuthBearer(oauth) => oauth.validate(),
            _ => Ok(()),
        }
    }
}

/// The keys of a `sasl` table, before the mechanism says which of them belong.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaslFields {
    mechanism: SaslMechanism,
    username: Option<String>,
    password: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    #[serde(default)]
    extensions: BTreeMap<String, String>,
    ca_file: Option<PathBuf>,
}

impl TryFrom<SaslFields> for SaslConfig {
    type Error = String;

    fn try_from(f: SaslFields) -> std::result::Result<Self, String> {
        let mechanism = f.mechanism;
        let oauth_keys = [
            ("token_url", f.token_url.is_some()),
            ("client_id", f.client_id.is_some()),
            ("client_secret", f.client_secret.is_some()),
            ("scope", f.scope.is_some()),
            ("extensions", !f.extensions.is_empty()),
            ("ca_file", f.ca_file.is_some()),
        ];
        let password_keys = [
            ("username", f.username.is_some()),
            ("password", f.password.is_some()),
        ];
        // Which keys are set, by name.
        type Keys<'a> = &'a [(&'static str, bool)];
        let (wrong, needed): (Keys<'_>, Keys<'_>) = match mechanism {
            SaslMechanism::OAuthBearer => (&password_keys, &oauth_keys[..3]),
            _ => (&oauth_keys, &password_keys),
        };
        if let Some((key, _)) = wrong.iter().find(|(_, set)| *set) {
            return Err(format!(
                "`{key}` does not belong to SASL mechanism {mechanism}"
            ));
        }
        let missing: Vec<&str> = needed
            .iter()
            .filter(|(_, set)| !set)
            .map(|(key, _)| *key)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "SASL mechanism {mechanism} needs `{}`",
                missing.join("`, `")
            ));
        }
        let config = match mechanism {
            SaslMechanism::OAuthBearer => SaslConfig::OAuthBearer(OAuthConfig {
                token_url: f.token_url.unwrap_or_default(),
                client_id: f.client_id.unwrap_or_default(),
                client_secret: f.client_secret.unwrap_or_default(),
                scope: f.scope,
                extensions: f.extensions,
                ca_file: f.ca_file,
            }),
            _ => SaslConfig::password(
                mechanism,
                f.username.unwrap_or_default(),
                f.password.unwrap_or_default(),
            )
            .map_err(|e| e.to_string())?,
        };
        config.validate().map_err(|e| match e {
            Error::Config(message) => message,
            other => other.to_string(),
        })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> std::result::Result<SaslConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn password_mechanisms_take_a_user_and_password() {
        for (name, mechanism) in [
            ("PLAIN", SaslMechanism::Plain),
            ("SCRAM-SHA-256", SaslMechanism::ScramSha256),
            ("SCRAM-SHA-512", SaslMechanism::ScramSha512),
        ] {
            let c = parse(&format!(
                r#"{{"mechanism":"{name}","username":"u","password":"hunter2"}}"#
            ))
            .expect(name);
            assert_eq!(c.mechanism(), mechanism);
            assert_eq!(c.credentials(), Some(&Credentials::new("u", "hunter2")));
            let dbg = format!("{c:?}");
            assert!(
                !dbg.contains("hunter2") && dbg.contains("<redacted>"),
                "{dbg}"
            );
        }
    }

    #[test]
    fn oauthbearer_takes_a_token_endpoint_and_client_credentials() {
        let c = parse(
            r#"{"mechanism":"OAUTHBEARER","token_url":"https://idp.example/token",
                "client_id":"bridge","client_secret":"s3cr3t","scope":"kafka",
                "extensions":{"logicalCluster":"lkc-1"}}"#,
        )
        .expect("valid");
        let SaslConfig::OAuthBearer(oauth) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(oauth.token_url, "https://idp.example/token");
        assert_eq!(oauth.scope.as_deref(), Some("kafka"));
        assert_eq!(oauth.extensions["logicalCluster"], "lkc-1");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cr3t") && dbg.contains("<redacted>"),
            "{dbg}"
        );
        assert!(dbg.contains("https://idp.example/token"), "{dbg}");
    }

    #[test]
    fn keys_of_another_mechanism_and_missing_keys_are_named() {
        let e = parse(r#"{"mechanism":"PLAIN","username":"u","password":"p","scope":"x"}"#)
            .unwrap_err();
        assert!(
            e.contains("`scope` does not belong to SASL mechanism PLAIN"),
            "{e}"
        );
        let e = parse(r#"{"mechanism":"OAUTHBEARER","token_url":"https://x/t","username":"u"}"#)
            .unwrap_err();
        assert!(e.contains("`username` does not belong"), "{e}");
        let e = parse(r#"{"mechanism":"OAUTHBEARER","token_url":"https://x/t"}"#).unwrap_err();
        assert!(e.contains("needs `client_id`, `client_secret`"), "{e}");
        let e = parse(r#"{"mechanism":"SCRAM-SHA-512","username":"u"}"#).unwrap_err();
        assert!(e.contains("needs `password`"), "{e}");
        let e = parse(
            r#"{"mechanism":"OAUTHBEARER","token_url":"ftp://x","client_id":"c","client_secret":"s"}"#,
        )
        .unwrap_err();
        assert!(e.contains("http:// or https://"), "{e}");
        let e = parse(
            r#"{"mechanism":"OAUTHBEARER","token_url":"https://x","client_id":"c",
                "client_secret":"s","extensions":{"auth":"x"}}"#,
        )
        .unwrap_err();
        assert!(e.contains("not a SASL extension name"), "{e}");
        let e = parse(r#"{"mechanism":"GSSAPI"}"#).unwrap_err();
        assert!(e.contains("GSSAPI"), "{e}");
    }

    #[test]
    fn oauthbearer_has_no_password_constructor() {
        assert!(SaslConfig::password(SaslMechanism::OAuthBearer, "u", "p").is_err());
    }
}
