//! The built-in decoder a `[decode]` section asks for.

use std::sync::Arc;

use kinflux_avro::{DecodePlan, RegistryAuth, RegistryClient, RegistryConfig, SchemaDir};

use super::{AvroDecoder, Decode, JsonDecoder, LineDecoder, Schemas};
use crate::config::{ConfigError, DecodeConfig, Format, Framing};

/// Builds the decoder of `[decode]`: reads the schema file and sets up the registry
/// client (no request is sent yet).
pub(crate) fn from_config(d: &DecodeConfig) -> Result<Arc<dyn Decode>, ConfigError> {
    let bad = |key: &str, message: String| ConfigError::invalid(key, message);
    let mapping = || {
        d.mapping
            .clone()
            .ok_or_else(|| bad("decode.mapping", "required".into()))
    };
    match d.format {
        Format::Line => Ok(Arc::new(LineDecoder::new(d.precision))),
        Format::Json => JsonDecoder::new(mapping()?)
            .map(|j| Arc::new(j) as Arc<dyn Decode>)
            .map_err(|e| bad("decode.mapping.measurement", e.to_string())),
        Format::Avro => {
            let mapping = mapping()?;
            let read_schema = || -> Result<kinflux_avro::apache_avro::Schema, ConfigError> {
                let path = d
                    .schema_file
                    .as_ref()
                    .ok_or_else(|| bad("decode.schema_file", "required".into()))?;
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad("decode.schema_file", format!("{}: {e}", path.display())))?;
                kinflux_avro::apache_avro::Schema::parse_str(&text)
                    .map_err(|e| bad("decode.schema_file", e.to_string()))
            };
            let avro = match d.framing {
                Framing::Confluent => {
                    let schemas = match (registry_client(d)?, &d.schema_dir) {
                        (Some(client), _) => Schemas::Registry(client),
                        (None, Some(dir)) => Schemas::Dir(SchemaDir::new(dir.clone())),
                        (None, None) => {
                            return Err(bad(
                                "decode.registry_url",
                                "set `registry_url` or `schema_dir`".into(),
                            ));
                        }
                    };
                    AvroDecoder::confluent(schemas, mapping)
                }
                Framing::SingleObject => {
                    let schema = read_schema()?;
                    AvroDecoder::SingleObject(kinflux_avro::SingleObjectDecoder::new(
                        [&schema],
                        &mapping,
                    ))
                }
                Framing::Plain => {
                    let schema = read_schema()?;
                    AvroDecoder::Plain(
                        DecodePlan::compile(&schema, &mapping)
                            .map_err(|e| bad("decode.mapping", e.to_string()))?,
                    )
                }
            };
            Ok(Arc::new(avro))
        }
    }
}

/// The schema registry client of `[decode]` (`registry_url` with its credentials and CA
/// file), or `None` without a `registry_url`. No request is sent yet.
pub fn registry_client(d: &DecodeConfig) -> Result<Option<RegistryClient>, ConfigError> {
    let bad = |key: &str, message: String| ConfigError::invalid(key, message);
    let Some(url) = &d.registry_url else {
        return Ok(None);
    };
    let mut rc = RegistryConfig::new(url.clone());
    rc.auth = match (
        &d.registry_username,
        &d.registry_password,
        &d.registry_token,
    ) {
        (Some(u), Some(p), _) => Some(RegistryAuth::Basic {
            username: u.clone(),
            password: p.clone(),
        }),
        (_, _, Some(t)) => Some(RegistryAuth::Bearer(t.clone())),
        _ => None,
    };
    if let Some(ca_file) = &d.registry_ca_file {
        rc.tls = Some(
            kinflux_avro::tls_trusting(ca_file)
                .map_err(|e| bad("decode.registry_ca_file", e.to_string()))?,
        );
    }
    RegistryClient::new(rc)
        .map(Some)
        .map_err(|e| bad("decode.registry_url", e.to_string()))
}
