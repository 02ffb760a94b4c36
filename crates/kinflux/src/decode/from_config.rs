//! The built-in decoder a `[decode]` section asks for.

use std::sync::Arc;

use kinflux_avro::{DecodePlan, RegistryAuth, RegistryClient, RegistryConfig, SchemaDir};

use super::{
    AvroDecoder, Decode, JsonDecoder, LineDecoder, Schemas, TelegrafAvro, TelegrafJsonDecoder,
    TelegrafSchemas,
};
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
        Format::Json => JsonDecoder::with_typing(mapping()?, d.typing())
            .map(|j| Arc::new(j) as Arc<dyn Decode>)
            .map_err(|e| bad("decode.mapping", e.to_string())),
        Format::TelegrafJson => Ok(Arc::new(TelegrafJsonDecoder::new(d.precision, d.typing()))),
        Format::Avro if d.telegraf.is_some() => telegraf_avro(d),
        Format::Avro => {
            let mapping = mapping()?;
            let avro = match d.framing {
                Framing::Confluent => AvroDecoder::confluent(schemas(d)?, mapping),
                Framing::SingleObject => {
                    let schema = read_schema(d)?;
                    AvroDecoder::SingleObject(kinflux_avro::SingleObjectDecoder::new(
                        [&schema],
                        &mapping,
                    ))
                }
                Framing::Plain => {
                    let schema = read_schema(d)?;
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

/// The `telegraf` preset: Confluent framing with the registry or schema directory, or
/// one schema file for bare and single-object bodies.
fn telegraf_avro(d: &DecodeConfig) -> Result<Arc<dyn Decode>, ConfigError> {
    let options = d.telegraf.clone().unwrap_or_default();
    options
        .validate()
        .map_err(|e| ConfigError::invalid("decode.telegraf", e.to_string()))?;
    let schemas = match d.framing {
        Framing::Confluent => TelegrafSchemas::Confluent(schemas(d)?),
        Framing::Plain | Framing::SingleObject => TelegrafSchemas::Fixed(read_schema(d)?),
    };
    Ok(Arc::new(AvroDecoder::Telegraf(Box::new(TelegrafAvro {
        schemas,
        options,
    }))))
}

/// The schema of `decode.schema_file`.
fn read_schema(d: &DecodeConfig) -> Result<kinflux_avro::apache_avro::Schema, ConfigError> {
    let bad = |key: &str, message: String| ConfigError::invalid(key, message);
    let path = d
        .schema_file
        .as_ref()
        .ok_or_else(|| bad("decode.schema_file", "required".into()))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("decode.schema_file", format!("{}: {e}", path.display())))?;
    kinflux_avro::apache_avro::Schema::parse_str(&text)
        .map_err(|e| bad("decode.schema_file", e.to_string()))
}

/// Where Confluent-framed records find their schemas: the registry or a directory.
fn schemas(d: &DecodeConfig) -> Result<Schemas, ConfigError> {
    match (registry_client(d)?, &d.schema_dir) {
        (Some(client), _) => Ok(Schemas::Registry(client)),
        (None, Some(dir)) => Ok(Schemas::Dir(SchemaDir::new(dir.clone()))),
        (None, None) => Err(ConfigError::invalid(
            "decode.registry_url",
            "set `registry_url` or `schema_dir`",
        )),
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
