//! Reading a YAML file of Knative Service manifests (`---`-separated documents), as `kubectl
//! apply -f` would take it, for `wisp serve`.
//!
//! Why two passes: the first reads each document as plain YAML, so a syntax error or a document
//! of another kind is reported as such (not as a type error against the Service schema); the
//! second reads the Services into `wisp_api::serving` types with the parser's positions, so a
//! mistyped field is reported at its line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;
use wisp_api::serving::{API_VERSION, SERVICE_KIND, Service};

/// A services file, read and typed but not yet checked (see `plan`).
#[derive(Debug)]
pub struct ServicesFile {
    /// The path as the user wrote it, for messages.
    pub name: String,
    /// The file's directory, absolute: relative component paths are resolved against it.
    pub base_dir: PathBuf,
    pub documents: Vec<ServiceDocument>,
}

/// One Service and where it came from.
#[derive(Debug)]
pub struct ServiceDocument {
    /// 1-based position among the file's documents (empty documents count too).
    pub index: usize,
    pub service: Service,
}

/// Something wrong with a services file, located as precisely as is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub file: String,
    /// 1-based document index.
    pub document: Option<usize>,
    /// `namespace/name` of the Service, once known.
    pub service: Option<String>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl ManifestError {
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            document: None,
            service: None,
            message: message.into(),
        }
    }

    pub fn in_document(mut self, document: usize) -> Self {
        self.document = Some(document);
        self
    }

    pub fn for_service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(document) = self.document {
            write!(f, ", document {document}")?;
        }
        if let Some(service) = &self.service {
            write!(f, " (service {service})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ManifestError {}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<ServicesFile, ManifestError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        ManifestError::new(
            &name,
            format!("cannot read it ({error}); give the path of a YAML file of Knative Services"),
        )
    })?;
    let absolute = std::path::absolute(path).map_err(|error| {
        ManifestError::new(
            &name,
            format!("cannot make its path absolute ({error}); give an absolute path"),
        )
    })?;
    let base_dir = absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let documents = parse(&name, &text)?;
    Ok(ServicesFile {
        name,
        base_dir,
        documents,
    })
}

/// Parses `text` (the contents of the file called `file`) into its Services. Empty documents
/// are skipped, as kubectl skips them; a file with no Service at all is an error.
pub fn parse(file: &str, text: &str) -> Result<Vec<ServiceDocument>, ManifestError> {
    let mut is_service = Vec::new();
    // The parser repeats its error forever once it has one, so this stops at the first.
    for (offset, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let index = offset + 1;
        let value = Value::deserialize(document)
            .map_err(|error| yaml_error(file, index, &error, syntax_fix(&error)))?;
        match classify(&value) {
            Kind::Empty => is_service.push(false),
            Kind::Service => is_service.push(true),
            Kind::Other(problem) => {
                return Err(ManifestError::new(file, problem).in_document(index));
            }
        }
    }

    let mut documents = Vec::new();
    let typed = serde_norway::Deserializer::from_str(text).take(is_service.len());
    for ((offset, document), service) in typed.enumerate().zip(&is_service) {
        if !service {
            continue;
        }
        let index = offset + 1;
        let service = Service::deserialize(document).map_err(|error| {
            yaml_error(
                file,
                index,
                &error,
                "write that field as Knative's serving.knative.dev/v1 Service schema has it",
            )
        })?;
        documents.push(ServiceDocument { index, service });
    }
    if documents.is_empty() {
        return Err(ManifestError::new(
            file,
            format!(
                "it holds no Service; add a manifest with apiVersion: {API_VERSION} and kind: {SERVICE_KIND}"
            ),
        ));
    }
    Ok(documents)
}

enum Kind {
    Empty,
    Service,
    Other(String),
}

/// What a document is, from its `apiVersion` and `kind`; `Other` carries the message.
fn classify(value: &Value) -> Kind {
    let expected = format!("apiVersion: {API_VERSION} and kind: {SERVICE_KIND}");
    let mapping = match value {
        Value::Null => return Kind::Empty,
        Value::Mapping(mapping) => mapping,
        other => {
            return Kind::Other(format!(
                "it is {}, not a manifest; each document must be a Knative Service with {expected}",
                describe(other)
            ));
        }
    };
    let field = |key: &str| mapping.get(key).and_then(Value::as_str);
    match (field("apiVersion"), field("kind")) {
        (Some(API_VERSION), Some(SERVICE_KIND)) => Kind::Service,
        (None, _) | (_, None) => Kind::Other(format!(
            "it has no apiVersion or no kind; a Knative Service starts with {expected}"
        )),
        (Some(api_version), Some(kind)) => {
            let name = mapping
                .get("metadata")
                .and_then(|metadata| metadata.get("name"))
                .and_then(Value::as_str)
                .map(|name| format!(" {name:?}"))
                .unwrap_or_default();
            Kind::Other(format!(
                "it is a {kind}{name} of apiVersion {api_version}, but wisp serve runs only Knative Services \
                 ({expected}); remove that document from the file"
            ))
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// What to do about a YAML syntax error, for the mistakes people make most.
fn syntax_fix(error: &serde_norway::Error) -> &'static str {
    let message = error.to_string();
    if message.contains("duplicate entry") {
        "a key may appear once per mapping; if another manifest starts there, put a line `---` before it"
    } else if message.contains("cannot start any token") {
        "fix the YAML there (indent with spaces: YAML does not allow tabs)"
    } else {
        "fix the YAML there"
    }
}

/// The parser's message (with its line and column, which it appends when it has them), the
/// document and the fix.
fn yaml_error(
    file: &str,
    document: usize,
    error: &serde_norway::Error,
    fix: &str,
) -> ManifestError {
    let mut message = error.to_string();
    if let Some(location) = error.location()
        && !message.contains(" at line ")
    {
        message.push_str(&format!(
            " at line {} column {}",
            location.line(),
            location.column()
        ));
    }
    ManifestError::new(file, format!("{message}; {fix}")).in_document(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\n\
                         spec:\n  template:\n    spec:\n      containers:\n        - image: hello.wasm\n";

    fn error(text: &str) -> String {
        parse("svc.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn reads_every_service_document_and_skips_empty_ones() {
        let text = format!(
            "# comment\n---\n{HELLO}---\n---\n{}\n---\n",
            HELLO.replace("hello", "other")
        );
        let documents = parse("svc.yaml", &text).unwrap();
        let found: Vec<(usize, Option<&str>)> = documents
            .iter()
            .map(|d| (d.index, d.service.metadata.name.as_deref()))
            .collect();
        assert_eq!(found, [(1, Some("hello")), (3, Some("other"))]);
    }

    #[test]
    fn syntax_errors_name_the_document_line_and_column() {
        let text = format!(
            "{HELLO}---\napiVersion: serving.knative.dev/v1\nkind: [Service\nmetadata: {{}}\n"
        );
        let message = error(&text);
        assert!(message.starts_with("svc.yaml, document 2: "), "{message}");
        assert!(message.contains("at line 13 column"), "{message}");
        assert!(message.contains("fix the YAML there"), "{message}");
    }

    #[test]
    fn tabs_are_reported_at_their_line() {
        let message =
            error("apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n\tname: x\n");
        assert!(message.contains("document 1"), "{message}");
        assert!(message.contains("line 4"), "{message}");
        assert!(message.contains("YAML does not allow tabs"), "{message}");
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let message = error(&format!("{HELLO}kind: Service\n"));
        assert!(
            message.contains("duplicate entry with key \"kind\""),
            "{message}"
        );
        assert!(message.contains("put a line `---` before it"), "{message}");
        assert!(message.contains("document 1"), "{message}");
    }

    #[test]
    fn mistyped_fields_are_reported_at_their_line() {
        let text = format!(
            "{HELLO}---\n{}",
            HELLO.replace(
                "- image: hello.wasm",
                "- image: hello.wasm\n          env: 5"
            )
        );
        let message = error(&text);
        assert!(message.starts_with("svc.yaml, document 2: "), "{message}");
        assert!(
            message.contains("spec.template.spec.containers[0].env"),
            "{message}"
        );
        assert!(message.contains("at line 20 column"), "{message}");
        assert!(
            message.contains("Knative's serving.knative.dev/v1 Service schema"),
            "{message}"
        );
    }

    #[test]
    fn other_kinds_are_rejected_by_document() {
        let text =
            format!("{HELLO}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n");
        let message = error(&text);
        assert!(message.starts_with("svc.yaml, document 2: "), "{message}");
        assert!(
            message.contains("Deployment \"web\" of apiVersion apps/v1"),
            "{message}"
        );
        assert!(message.contains("remove that document"), "{message}");

        let message =
            error(&HELLO.replace("serving.knative.dev/v1", "serving.knative.dev/v1beta1"));
        assert!(
            message.contains("apiVersion serving.knative.dev/v1beta1"),
            "{message}"
        );

        let message = error("metadata:\n  name: x\n");
        assert!(
            message.contains("document 1: it has no apiVersion or no kind"),
            "{message}"
        );

        let message = error("just a string\n");
        assert!(
            message.contains("it is a string, not a manifest"),
            "{message}"
        );
    }

    #[test]
    fn a_file_without_services_is_an_error() {
        for text in ["", "# nothing\n", "---\n---\n"] {
            let message = error(text);
            assert!(
                message.contains("it holds no Service"),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn load_names_a_missing_file_and_resolves_the_directory() {
        let missing = Path::new("/nonexistent/wisp/services.yaml");
        let message = load(missing).unwrap_err().to_string();
        assert!(
            message.starts_with("/nonexistent/wisp/services.yaml: cannot read it"),
            "{message}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.yaml");
        std::fs::write(&path, HELLO).unwrap();
        let file = load(&path).unwrap();
        assert_eq!(file.base_dir, dir.path());
        assert_eq!(file.documents.len(), 1);
    }
}
