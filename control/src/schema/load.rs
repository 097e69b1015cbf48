//! Loading the schema files: parse the YAML once, inline every `$use` reference, and give each
//! kind its `apiVersion`/`kind`/`metadata` properties, so the rest of the module walks plain,
//! self-contained schemas.
//!
//! A file is `{group, version, kinds: {Kind: schema}, definitions: {Name: schema}}` (all parts
//! optional). Definitions of all files share one namespace, so the core Pod reuses serving's
//! Container. `{$use: Name, …}` stands for definition `Name` with the sibling keys deep-merged
//! over it: that is how a kind's status extends the common Knative status, and how a use site
//! gives a shared fragment its own description.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

/// The schema files, embedded: the schemas are part of the API, not deployment configuration.
const FILES: &[(&str, &str)] = &[
    ("meta.yaml", include_str!("../../schemas/meta.yaml")),
    ("serving.yaml", include_str!("../../schemas/serving.yaml")),
    ("core.yaml", include_str!("../../schemas/core.yaml")),
    (
        "coordination.yaml",
        include_str!("../../schemas/coordination.yaml"),
    ),
];

/// Deeper `$use` chains than this are taken for a cycle (the real chains are about 5 deep).
const MAX_DEPTH: usize = 32;

/// Why the embedded schema files could not be loaded. Tests load them, so in practice this
/// only ever shows up while editing the files.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// A file is not valid YAML.
    #[error("schema file {file}: {source}")]
    Parse {
        /// The file's name.
        file: &'static str,
        /// What the parser said.
        source: serde_norway::Error,
    },
    /// A file's parts are not shaped as described in the module docs.
    #[error("schema file {file}: {message}")]
    Shape {
        /// The file's name.
        file: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Two files (or one, twice) define the same name.
    #[error("schema definition {0:?} is defined more than once")]
    DuplicateDefinition(String),
    /// A `$use` names no definition.
    #[error("schema definition {0:?} is used but not defined")]
    UnknownDefinition(String),
    /// `$use` references nest too deeply, which means they form a cycle.
    #[error("schema definition {0:?} nests too deeply (a $use cycle?)")]
    TooDeep(String),
}

/// One kind's resolved object schema.
#[derive(Debug)]
struct KindSchema {
    group: String,
    version: String,
    kind: String,
    schema: Value,
}

/// Every kind's schema and every resolved definition.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    kinds: Vec<KindSchema>,
    definitions: Map<String, Value>,
}

impl Catalog {
    /// The object schema of `group`/`version`/`kind`.
    pub(crate) fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
            .map(|k| &k.schema)
    }

    /// A resolved definition.
    pub(crate) fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    load().unwrap_or_else(|error| {
        // Serving without schemas (no validation, empty explain) beats refusing to start.
        tracing::error!(%error, "the embedded resource schemas do not load; serving without them");
        Catalog::default()
    })
});

/// The catalog, loaded on first use.
pub(crate) fn catalog() -> &'static Catalog {
    &CATALOG
}

/// Parses and resolves the embedded files.
pub(crate) fn load() -> Result<Catalog, LoadError> {
    let mut files = Vec::new();
    for &(file, text) in FILES {
        let value: Value =
            serde_norway::from_str(text).map_err(|source| LoadError::Parse { file, source })?;
        files.push((file, value));
    }

    let mut raw_definitions = Map::new();
    for (file, value) in &files {
        for (name, definition) in object_part(file, value, "definitions")? {
            if raw_definitions
                .insert(name.clone(), definition.clone())
                .is_some()
            {
                return Err(LoadError::DuplicateDefinition(name.clone()));
            }
        }
    }
    let mut definitions = Map::new();
    for (name, definition) in &raw_definitions {
        definitions.insert(name.clone(), resolve(definition, &raw_definitions, 0)?);
    }
    let object_meta = definitions
        .get("ObjectMeta")
        .cloned()
        .ok_or_else(|| LoadError::UnknownDefinition("ObjectMeta".to_owned()))?;

    let mut kinds = Vec::new();
    for (file, value) in &files {
        let group = string_part(file, value, "group")?;
        let version = string_part(file, value, "version")?;
        for (kind, body) in object_part(file, value, "kinds")? {
            let resolved = resolve(body, &raw_definitions, 0)?;
            kinds.push(KindSchema {
                group: group.clone(),
                version: version.clone(),
                kind: kind.clone(),
                schema: object_schema(resolved, &object_meta),
            });
        }
    }
    Ok(Catalog { kinds, definitions })
}

/// `value[key]` as an object; an absent part is empty.
fn object_part<'a>(
    file: &'static str,
    value: &'a Value,
    key: &str,
) -> Result<&'a Map<String, Value>, LoadError> {
    static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
    match value.get(key) {
        None => Ok(&EMPTY),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(LoadError::Shape {
            file,
            message: format!("{key} must be a mapping"),
        }),
    }
}

/// `value[key]` as a string; only files with kinds need one.
fn string_part(file: &'static str, value: &Value, key: &str) -> Result<String, LoadError> {
    match value.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None if value.get("kinds").is_none() => Ok(String::new()),
        _ => Err(LoadError::Shape {
            file,
            message: format!("{key} must be a string"),
        }),
    }
}

/// `node` with every `$use` inlined.
fn resolve(
    node: &Value,
    definitions: &Map<String, Value>,
    depth: usize,
) -> Result<Value, LoadError> {
    match node {
        Value::Object(map) => {
            let mut out = match map.get("$use") {
                Some(Value::String(name)) => {
                    if depth >= MAX_DEPTH {
                        return Err(LoadError::TooDeep(name.clone()));
                    }
                    let definition = definitions
                        .get(name)
                        .ok_or_else(|| LoadError::UnknownDefinition(name.clone()))?;
                    resolve(definition, definitions, depth + 1)?
                }
                _ => Value::Object(Map::new()),
            };
            for (key, value) in map.iter().filter(|(key, _)| *key != "$use") {
                merge(&mut out, key, resolve(value, definitions, depth)?);
            }
            Ok(out)
        }
        Value::Array(items) => items
            .iter()
            .map(|item| resolve(item, definitions, depth))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// Sets `target[key] = value`, merging objects key by key so a use site can add properties to
/// a definition's without restating them.
fn merge(target: &mut Value, key: &str, value: Value) {
    let Value::Object(target) = target else {
        return;
    };
    match (target.get_mut(key), value) {
        (Some(existing @ Value::Object(_)), Value::Object(overlay)) => {
            for (k, v) in overlay {
                merge(existing, &k, v);
            }
        }
        (_, value) => {
            target.insert(key.to_owned(), value);
        }
    }
}

/// A kind's body made into a whole object schema: every object has `apiVersion`, `kind` and
/// `metadata`, so the files do not repeat them.
fn object_schema(mut body: Value, object_meta: &Value) -> Value {
    let mut metadata = object_meta.clone();
    merge(
        &mut metadata,
        "description",
        json!(
            "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
        ),
    );
    let common = json!({
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": metadata,
        },
    });
    if let Value::Object(fields) = common {
        for (key, value) in fields {
            merge(&mut body, &key, value);
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::resources;

    #[test]
    fn the_embedded_files_load_and_cover_every_resource() {
        let catalog = load().expect("schemas load");
        for r in resources() {
            let schema = catalog
                .kind(r.group, r.version, r.kind)
                .unwrap_or_else(|| panic!("no schema for {}", r.kind));
            assert_eq!(schema["type"], "object", "{}", r.kind);
            assert!(schema["description"].is_string(), "{}", r.kind);
            for field in ["apiVersion", "kind", "metadata"] {
                assert!(
                    schema["properties"][field].is_object(),
                    "{} {field}",
                    r.kind
                );
            }
        }
        assert_eq!(catalog.kinds.len(), resources().len());
    }

    #[test]
    fn no_use_reference_survives_resolution() {
        fn walk(v: &Value, path: &str) {
            match v {
                Value::Object(m) => {
                    assert!(!m.contains_key("$use"), "unresolved $use at {path}");
                    for (k, c) in m {
                        walk(c, &format!("{path}.{k}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, path)),
                _ => {}
            }
        }
        let catalog = load().expect("schemas load");
        for k in &catalog.kinds {
            walk(&k.schema, &k.kind);
        }
        for (name, d) in &catalog.definitions {
            walk(d, name);
        }
    }

    #[test]
    fn use_merges_siblings_deeply() {
        let defs = json!({
            "Base": {"type": "object", "description": "base", "properties": {"a": {"type": "string"}}},
        });
        let Value::Object(defs) = defs else {
            unreachable!()
        };
        let node = json!({"$use": "Base", "description": "mine", "properties": {"b": {"type": "integer"}}});
        let out = resolve(&node, &defs, 0).expect("resolves");
        assert_eq!(out["description"], "mine");
        assert_eq!(out["properties"]["a"]["type"], "string");
        assert_eq!(out["properties"]["b"]["type"], "integer");
    }

    #[test]
    fn unknown_and_cyclic_uses_are_errors() {
        let Value::Object(defs) = json!({"A": {"$use": "B"}, "B": {"$use": "A"}}) else {
            unreachable!()
        };
        assert!(matches!(
            resolve(&json!({"$use": "A"}), &defs, 0),
            Err(LoadError::TooDeep(_))
        ));
        assert!(matches!(
            resolve(&json!({"$use": "Nope"}), &defs, 0),
            Err(LoadError::UnknownDefinition(name)) if name == "Nope"
        ));
    }
}
