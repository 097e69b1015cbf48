//! Knative `Service` manifests for benchmarks, written as the YAML `wisp serve` (and later
//! `kubectl apply`) takes.

/// One Service: a component with optional concurrency limit and autoscaling annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceManifest {
    pub name: String,
    pub component: String,
    pub container_concurrency: u32,
    /// `autoscaling.knative.dev/<key>` → value, on the revision template.
    pub autoscaling: Vec<(String, String)>,
    /// Other annotations of the revision template (full keys, e.g. `wisp.dev/…`).
    pub annotations: Vec<(String, String)>,
}

impl ServiceManifest {
    pub fn new(name: impl Into<String>, component: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            component: component.into(),
            container_concurrency: 0,
            autoscaling: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Adds the revision-template annotation `key` (its full name).
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn autoscaling(mut self, key: &str, value: &str) -> Self {
        self.autoscaling.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn container_concurrency(mut self, cc: u32) -> Self {
        self.container_concurrency = cc;
        self
    }

    pub fn to_yaml(&self) -> String {
        let mut yaml = format!(
            "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {}\n  namespace: default\nspec:\n  template:\n",
            self.name
        );
        let annotations = self
            .autoscaling
            .iter()
            .map(|(key, value)| (format!("autoscaling.knative.dev/{key}"), value))
            .chain(
                self.annotations
                    .iter()
                    .map(|(key, value)| (key.clone(), value)),
            );
        let mut header_written = false;
        for (key, value) in annotations {
            if !header_written {
                yaml.push_str("    metadata:\n      annotations:\n");
                header_written = true;
            }
            yaml.push_str(&format!("        {key}: {}\n", quoted(value)));
        }
        yaml.push_str(&format!(
            "    spec:\n      containerConcurrency: {}\n      containers:\n        - image: {}\n",
            self.container_concurrency,
            quoted(&self.component)
        ));
        yaml
    }
}

/// A multi-document YAML file of `services`.
pub fn to_yaml(services: &[ServiceManifest]) -> String {
    services
        .iter()
        .map(ServiceManifest::to_yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_knative_services() {
        let yaml = to_yaml(&[
            ServiceManifest::new("a", "/x/hello.wasm").autoscaling("initial-scale", "0"),
            ServiceManifest::new("b", "/x/sleep \"q\".wasm").container_concurrency(10),
        ]);
        assert_eq!(
            yaml,
            "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: a\n  namespace: default\nspec:\n  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/initial-scale: \"0\"\n    spec:\n      containerConcurrency: 0\n      containers:\n        - image: \"/x/hello.wasm\"\n---\napiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: b\n  namespace: default\nspec:\n  template:\n    spec:\n      containerConcurrency: 10\n      containers:\n        - image: \"/x/sleep \\\"q\\\".wasm\"\n"
        );
    }

    #[test]
    fn writes_other_template_annotations_after_the_autoscaling_ones() {
        let yaml = ServiceManifest::new("c", "/x/py.wasm")
            .autoscaling("min-scale", "1")
            .annotation("wisp.dev/max-instance-reuse-count", "128")
            .to_yaml();
        assert!(
            yaml.contains("      annotations:\n        autoscaling.knative.dev/min-scale: \"1\"\n        wisp.dev/max-instance-reuse-count: \"128\"\n    spec:"),
            "{yaml}"
        );
        let only_other = ServiceManifest::new("d", "/x/py.wasm")
            .annotation("wisp.dev/idle-instance-timeout", "5s")
            .to_yaml();
        assert!(
            only_other.contains("    metadata:\n      annotations:\n        wisp.dev/idle-instance-timeout: \"5s\"\n"),
            "{only_other}"
        );
    }
}
