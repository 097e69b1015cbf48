//! The Services of a `services: {prefix, count, template}` target, made from the template:
//! one copy of its Service manifest per name, for one `kubectl apply` of them all. Pure: the
//! template's text in, the manifests out.

use serde_json::{Value, json};

use crate::scenario::ManyServices;

/// A template that cannot be copied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("it is not YAML: {0}")]
    Yaml(String),
    #[error("it is not one Knative Service (kind: Service, apiVersion: serving.knative.dev/v1)")]
    NotAService,
}

/// `many`'s Services: copies of `template` (a YAML Service manifest), each with its own name
/// and `many`'s namespace.
pub fn services(template: &str, many: &ManyServices) -> Result<Vec<Value>, TemplateError> {
    let service: Value =
        serde_norway::from_str(template).map_err(|error| TemplateError::Yaml(error.to_string()))?;
    let is_service = service["kind"] == "Service"
        && service["apiVersion"]
            .as_str()
            .is_some_and(|version| version.starts_with("serving.knative.dev/"));
    if !is_service {
        return Err(TemplateError::NotAService);
    }
    Ok(many
        .names()
        .map(|name| {
            let mut copy = service.clone();
            match copy["metadata"].as_object_mut() {
                Some(metadata) => {
                    metadata.insert("name".to_owned(), json!(name));
                    metadata.insert("namespace".to_owned(), json!(many.namespace));
                }
                None => {
                    copy["metadata"] = json!({"name": name, "namespace": many.namespace});
                }
            }
            copy
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(count: u32) -> ManyServices {
        ManyServices {
            prefix: "many".to_owned(),
            count,
            namespace: "load".to_owned(),
            template: None,
        }
    }

    const HELLO: &str = "# a comment\napiVersion: serving.knative.dev/v1\nkind: Service\n\
                         metadata:\n  name: hello\n  namespace: default\n  labels: {app: x}\n\
                         spec:\n  template:\n    spec:\n      containers:\n        - image: h.wasm\n";

    #[test]
    fn each_copy_has_its_own_name_and_the_targets_namespace() {
        let items = services(HELLO, &many(3)).unwrap();
        assert_eq!(items.len(), 3);
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item["metadata"]["name"], format!("many-{}", i + 1));
            assert_eq!(item["metadata"]["namespace"], "load");
            assert_eq!(item["metadata"]["labels"]["app"], "x");
            assert_eq!(
                item["spec"]["template"]["spec"]["containers"][0]["image"],
                "h.wasm"
            );
        }
        let nameless = "apiVersion: serving.knative.dev/v1\nkind: Service\nspec: {}\n";
        let items = services(nameless, &many(1)).unwrap();
        assert_eq!(items[0]["metadata"]["name"], "many-1");
    }

    #[test]
    fn anything_but_one_service_is_refused() {
        assert!(matches!(
            services("kind: [", &many(1)),
            Err(TemplateError::Yaml(_))
        ));
        assert_eq!(
            services("apiVersion: v1\nkind: ConfigMap\n", &many(1)),
            Err(TemplateError::NotAService)
        );
        let two = format!("{HELLO}---\n{HELLO}");
        assert!(services(&two, &many(1)).is_err());
    }
}
