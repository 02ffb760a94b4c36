//! Schemas from a directory of `<id>.avsc` files, for air-gapped sites and demos.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use apache_avro::Schema;

use super::{SchemaSource, parse};
use crate::SchemaError;

/// A directory of `<id>.avsc` files, each a writer schema under its id. Files are read
/// on first use and cached (a schema under an id never changes).
#[derive(Debug)]
pub struct SchemaDir {
    dir: PathBuf,
    cache: RwLock<HashMap<u32, Arc<Schema>>>,
}

impl SchemaDir {
    /// Schemas from `dir`; nothing is read until a schema is asked for.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SchemaDir {
            dir: dir.into(),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file that holds schema `id`.
    pub fn file_of(&self, id: u32) -> PathBuf {
        self.dir.join(format!("{id}.avsc"))
    }

    /// Checks that `text` is a valid Avro schema and stores it as schema `id`, creating
    /// the directory if needed (what a producer without a registry does).
    pub fn store(&self, id: u32, text: &str) -> Result<Arc<Schema>, SchemaError> {
        let schema = Arc::new(parse(|| format!("for id {id}"), text)?);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SchemaError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let file = self.file_of(id);
        std::fs::write(&file, text).map_err(io(&file))?;
        self.cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }

    fn load(&self, id: u32) -> Result<Arc<Schema>, SchemaError> {
        if let Some(schema) = self
            .cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
        {
            return Ok(schema.clone());
        }
        let file = self.file_of(id);
        // Small files read once per id: a blocking read is cheaper than a thread hop.
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SchemaError::UnknownId(id));
            }
            Err(source) => return Err(SchemaError::Io { path: file, source }),
        };
        let schema = Arc::new(parse(|| file.display().to_string(), &text)?);
        self.cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }
}

impl SchemaSource for SchemaDir {
    async fn schema(&self, id: u32) -> Result<Arc<Schema>, SchemaError> {
        self.load(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stored_schemas_are_found_by_id_and_unknown_ids_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SchemaDir::new(tmp.path().join("schemas"));
        assert!(matches!(
            dir.schema(7).await,
            Err(SchemaError::UnknownId(7))
        ));
        dir.store(
            7,
            r#"{"type":"record","name":"r","fields":[{"name":"v","type":"long"}]}"#,
        )
        .unwrap();
        // A fresh instance reads the file.
        let again = SchemaDir::new(dir.path());
        let schema = again.schema(7).await.unwrap();
        assert_eq!(schema.name().map(|n| n.name.as_str()), Some("r"));
        std::fs::write(again.file_of(8), "{not json").unwrap();
        assert!(matches!(
            again.schema(8).await,
            Err(SchemaError::Parse { .. })
        ));
        assert!(matches!(
            dir.store(9, r#"{"type":"nope"}"#),
            Err(SchemaError::Parse { .. })
        ));
    }
}
