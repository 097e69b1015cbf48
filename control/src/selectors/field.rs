//! `fieldSelector`: a comma-separated AND of `field=value`, `field==value`, `field!=value`.
//!
//! Parsing follows apimachinery's `fields/selector.go` (no whitespace trimming, the first
//! operator in a term splits it, `\,` `\=` `\\` escapes in values), and each resource accepts
//! only the fields the real server lets you select on (its field label conversion functions);
//! anything else is refused with the real server's `field label not supported: <field>`.
//! A field the object lacks reads as its Go zero value (`""`, or `false` for booleans), so
//! `spec.nodeName=` selects unscheduled pods exactly as upstream.

use serde_json::Value;

use super::SelectorError;
use crate::registry::{CORE_GROUP, Resource};

/// A field a selector may name: its selector name, where it sits in the object, and what it
/// reads as when absent.
#[derive(Debug, PartialEq, Eq)]
struct Selectable {
    name: &'static str,
    path: &'static [&'static str],
    zero: &'static str,
}

const fn field(name: &'static str, path: &'static [&'static str]) -> Selectable {
    Selectable {
        name,
        path,
        zero: "",
    }
}

/// A boolean field: Go renders the absent value as `false`.
const fn flag(name: &'static str, path: &'static [&'static str]) -> Selectable {
    Selectable {
        name,
        path,
        zero: "false",
    }
}

/// Selectable on every resource (apimachinery's default conversion).
static COMMON: &[Selectable] = &[
    field("metadata.name", &["metadata", "name"]),
    field("metadata.namespace", &["metadata", "namespace"]),
];

/// core/v1 Events (`kubectl describe` selects on `involvedObject.*`).
static EVENT: &[Selectable] = &[
    field("involvedObject.kind", &["involvedObject", "kind"]),
    field("involvedObject.namespace", &["involvedObject", "namespace"]),
    field("involvedObject.name", &["involvedObject", "name"]),
    field("involvedObject.uid", &["involvedObject", "uid"]),
    field(
        "involvedObject.apiVersion",
        &["involvedObject", "apiVersion"],
    ),
    field(
        "involvedObject.resourceVersion",
        &["involvedObject", "resourceVersion"],
    ),
    field("involvedObject.fieldPath", &["involvedObject", "fieldPath"]),
    field("reason", &["reason"]),
    field("reportingComponent", &["reportingComponent"]),
    // Upstream selects `source` on `source.component`, not on the whole struct.
    field("source", &["source", "component"]),
    field("type", &["type"]),
];

/// core/v1 Pods.
static POD: &[Selectable] = &[
    field("spec.nodeName", &["spec", "nodeName"]),
    field("spec.restartPolicy", &["spec", "restartPolicy"]),
    field("spec.schedulerName", &["spec", "schedulerName"]),
    field("spec.serviceAccountName", &["spec", "serviceAccountName"]),
    flag("spec.hostNetwork", &["spec", "hostNetwork"]),
    field("status.phase", &["status", "phase"]),
    field("status.podIP", &["status", "podIP"]),
    field("status.nominatedNodeName", &["status", "nominatedNodeName"]),
];

/// core/v1 Nodes.
static NODE: &[Selectable] = &[flag("spec.unschedulable", &["spec", "unschedulable"])];

/// core/v1 Namespaces.
static NAMESPACE: &[Selectable] = &[field("status.phase", &["status", "phase"])];

/// The fields `resource` supports beyond [`COMMON`].
fn specific(resource: &Resource) -> &'static [Selectable] {
    if resource.group != CORE_GROUP {
        return &[];
    }
    match resource.plural {
        "events" => EVENT,
        "pods" => POD,
        "nodes" => NODE,
        "namespaces" => NAMESPACE,
        _ => &[],
    }
}

fn lookup(resource: &Resource, name: &str) -> Option<&'static Selectable> {
    COMMON
        .iter()
        .chain(specific(resource))
        .find(|f| f.name == name)
}

/// A parsed `fieldSelector`: `path=value`, `path==value`, `path!=value`; comma = AND.
///
/// Supported paths: `metadata.name` and `metadata.namespace` for every resource; for core
/// events also `involvedObject.{kind,namespace,name,uid,apiVersion,resourceVersion,fieldPath}`,
/// `reason`, `type`, `source`, `reportingComponent`; for pods `spec.nodeName`,
/// `spec.restartPolicy`, `spec.schedulerName`, `spec.serviceAccountName`, `spec.hostNetwork`,
/// `status.phase`, `status.podIP`, `status.nominatedNodeName`; for nodes `spec.unschedulable`;
/// for namespaces `status.phase`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: &'static Selectable,
    value: String,
    /// `=`/`==` when true, `!=` when false.
    equal: bool,
}

impl FieldSelector {
    /// Parses a selector for objects of `resource`; the empty text selects everything.
    pub fn parse(text: &str, resource: &Resource) -> Result<Self, SelectorError> {
        // Syntax first, field names after, like upstream (parse, then transform): a malformed
        // selector is reported as malformed even if it also names an unsupported field.
        let mut parsed = Vec::new();
        for term in split_terms(text) {
            if term.is_empty() {
                continue;
            }
            let Some((lhs, equal, rhs)) = split_term(term) else {
                return Err(SelectorError::FieldSyntax {
                    selector: text.to_owned(),
                    term: term.to_owned(),
                });
            };
            parsed.push((lhs, equal, unescape(rhs)?));
        }
        let terms = parsed
            .into_iter()
            .map(|(lhs, equal, value)| match lookup(resource, lhs) {
                Some(field) => Ok(Term {
                    field,
                    value,
                    equal,
                }),
                None => Err(SelectorError::FieldNotSupported(lhs.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { terms })
    }

    /// Whether `object` satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (read(object, t.field) == t.value) == t.equal)
    }

    /// The exact name this selector pins (`metadata.name=x`), so the store can be asked for one key.
    pub fn name(&self) -> Option<&str> {
        self.pinned("metadata.name")
    }

    /// The exact namespace this selector pins (`metadata.namespace=x`).
    pub fn namespace(&self) -> Option<&str> {
        self.pinned("metadata.namespace")
    }

    /// Whether the selector selects everything (no terms).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    fn pinned(&self, name: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field.name == name)
            .map(|t| t.value.as_str())
    }
}

/// The field's value as the selector compares it: the text of a scalar, or the Go zero value.
fn read(object: &Value, field: &Selectable) -> String {
    let value = field
        .path
        .iter()
        .try_fold(object, |value, key| value.get(key));
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => field.zero.to_owned(),
    }
}

/// Splits on commas that are not escaped; escapes stay in the terms for [`unescape`].
fn split_terms(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

/// `lhs`, whether the operator is an equality, and the raw `rhs`, split at the first operator;
/// at any position `!=` is tried before `==` before `=`, so `a==b` is not `a` = `=b`.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        [("!=", false), ("==", true), ("=", true)]
            .into_iter()
            .find(|(op, _)| rest.starts_with(op))
            .map(|(op, equal)| (&term[..i], equal, &rest[op.len()..]))
    })
}

/// Resolves `\\`, `\,` and `\=`; any other escape, a trailing `\`, or a bare `,`/`=` is an error.
fn unescape(raw: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(other) => return Err(SelectorError::FieldEscape(format!("\\{other}"))),
                None => return Err(SelectorError::FieldEscape("\\".to_owned())),
            },
            ',' | '=' => return Err(SelectorError::FieldUnescaped(c)),
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{SERVING_GROUP, lookup as resource};
    use serde_json::json;

    fn core(plural: &str) -> &'static Resource {
        resource(CORE_GROUP, "v1", plural).expect("core resource")
    }

    fn serving(plural: &str) -> &'static Resource {
        resource(SERVING_GROUP, "v1", plural).expect("serving resource")
    }

    fn ksvc(name: &str, namespace: &str) -> Value {
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
               "metadata": {"name": name, "namespace": namespace}})
    }

    #[test]
    fn empty_selector_selects_everything() {
        let selector = FieldSelector::parse("", serving("services")).expect("parses");
        assert!(selector.is_empty());
        assert!(selector.matches(&ksvc("a", "b")));
        assert_eq!(selector.name(), None);
        // Empty terms are skipped, as upstream.
        let selector = FieldSelector::parse(",", serving("services")).expect("parses");
        assert!(selector.is_empty());
    }

    #[test]
    fn name_and_namespace_on_every_resource() {
        for r in crate::registry::resources() {
            let selector = FieldSelector::parse("metadata.name=hello,metadata.namespace==team", r)
                .unwrap_or_else(|e| panic!("{}: {e}", r.plural));
            assert!(!selector.is_empty());
            assert!(selector.matches(&ksvc("hello", "team")), "{}", r.plural);
            assert!(!selector.matches(&ksvc("hello", "other")), "{}", r.plural);
            assert!(!selector.matches(&ksvc("bye", "team")), "{}", r.plural);
            assert_eq!(selector.name(), Some("hello"));
            assert_eq!(selector.namespace(), Some("team"));
        }
    }

    #[test]
    fn not_equal_selects_the_rest() {
        let selector =
            FieldSelector::parse("metadata.name!=hello", serving("revisions")).expect("parses");
        assert!(!selector.matches(&ksvc("hello", "default")));
        assert!(selector.matches(&ksvc("other", "default")));
        // `!=` pins nothing, so the store must scan.
        assert_eq!(selector.name(), None);
    }

    #[test]
    fn cluster_scoped_objects_have_the_empty_namespace() {
        let ns = json!({"metadata": {"name": "default"}});
        let selector =
            FieldSelector::parse("metadata.namespace=", core("namespaces")).expect("parses");
        assert!(selector.matches(&ns));
        assert_eq!(selector.namespace(), Some(""));
    }

    #[test]
    fn describe_selects_events_by_involved_object() {
        // What `kubectl describe ksvc hello` sends (reference §3.1).
        let text = "involvedObject.namespace=default,involvedObject.kind=Service,involvedObject.uid=u-1,involvedObject.name=hello";
        let selector = FieldSelector::parse(text, core("events")).expect("parses");
        let event = json!({
            "metadata": {"name": "hello.1", "namespace": "default"},
            "involvedObject": {"kind": "Service", "namespace": "default", "name": "hello",
                               "uid": "u-1", "apiVersion": "serving.knative.dev/v1"},
            "reason": "Created", "type": "Normal", "source": {"component": "service-controller"},
        });
        assert!(selector.matches(&event));
        let mut other = event.clone();
        other["involvedObject"]["uid"] = json!("u-2");
        assert!(!selector.matches(&other));

        for (text, selected) in [
            ("reason=Created", true),
            ("type=Warning", false),
            ("source=service-controller", true),
            ("involvedObject.apiVersion=serving.knative.dev/v1", true),
            ("involvedObject.fieldPath=", true),
            ("involvedObject.resourceVersion!=", false),
            ("reportingComponent=", true),
        ] {
            let selector = FieldSelector::parse(text, core("events")).expect(text);
            assert_eq!(selector.matches(&event), selected, "{text}");
        }
    }

    #[test]
    fn pod_and_node_fields() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"},
                         "status": {"phase": "Running", "podIP": "10.0.0.2"}});
        for (text, selected) in [
            ("spec.nodeName=n1", true),
            ("spec.nodeName=", false),
            ("status.phase=Running", true),
            ("status.phase!=Running", false),
            ("status.podIP=10.0.0.2", true),
            ("spec.hostNetwork=false", true),
            ("spec.restartPolicy=", true),
        ] {
            let selector = FieldSelector::parse(text, core("pods")).expect(text);
            assert_eq!(selector.matches(&pod), selected, "{text}");
        }
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        let selector = FieldSelector::parse("spec.unschedulable=true", core("nodes")).expect("ok");
        assert!(selector.matches(&node));
        assert!(!selector.matches(&json!({"metadata": {"name": "n2"}})));
        let selector = FieldSelector::parse("status.phase=Active", core("namespaces")).expect("ok");
        assert!(selector.matches(&json!({"status": {"phase": "Active"}})));
    }

    #[test]
    fn unsupported_fields_are_refused_like_the_real_server() {
        let cases = [
            (serving("services"), "status.url=x"),
            (serving("revisions"), "spec.containerConcurrency=1"),
            (core("configmaps"), "data.key=v"),
            (core("pods"), "reason=x"),
            (core("events"), "spec.nodeName=x"),
            (core("nodes"), "status.phase=Ready"),
            // No trimming: the space is part of the field name.
            (serving("services"), "metadata.name =x"),
        ];
        for (r, text) in cases {
            let field = text.split(['=', '!']).next().unwrap_or_default();
            assert_eq!(
                FieldSelector::parse(text, r),
                Err(SelectorError::FieldNotSupported(field.to_owned())),
                "{text}"
            );
            let message = FieldSelector::parse(text, r).unwrap_err().to_string();
            assert_eq!(message, format!("field label not supported: {field}"));
        }
    }

    #[test]
    fn syntax_errors() {
        let r = serving("services");
        assert_eq!(
            FieldSelector::parse("metadata.name=a,bogus", r)
                .unwrap_err()
                .to_string(),
            "invalid selector: 'metadata.name=a,bogus'; can't understand 'bogus'"
        );
        // Syntax is checked before field support.
        assert!(matches!(
            FieldSelector::parse("spec.x=1,bogus", r),
            Err(SelectorError::FieldSyntax { .. })
        ));
        assert_eq!(
            FieldSelector::parse("metadata.name=a=b", r),
            Err(SelectorError::FieldUnescaped('='))
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a\\x", r),
            Err(SelectorError::FieldEscape("\\x".to_owned()))
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a\\", r),
            Err(SelectorError::FieldEscape("\\".to_owned()))
        );
    }

    #[test]
    fn operators_split_at_their_first_occurrence_and_values_unescape() {
        let r = serving("services");
        let selector = FieldSelector::parse("metadata.name==a\\,b\\=c\\\\", r).expect("parses");
        assert_eq!(selector.name(), Some("a,b=c\\"));
        assert!(selector.matches(&ksvc("a,b=c\\", "x")));
        // `!=` wins over `=` at the same position.
        let selector = FieldSelector::parse("metadata.name!=a", r).expect("parses");
        assert!(selector.matches(&ksvc("b", "x")));
    }

    #[test]
    fn non_string_scalars_compare_as_text() {
        let selector = FieldSelector::parse("spec.hostNetwork=true", core("pods")).expect("ok");
        assert!(selector.matches(&json!({"spec": {"hostNetwork": true}})));
        assert!(!selector.matches(&json!({"spec": {"hostNetwork": false}})));
    }
}
