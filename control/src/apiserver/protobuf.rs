//! The few protobuf bodies this server decodes: kubectl's generators (`kubectl create secret`,
//! `create configmap`, `create namespace`) send built-in kinds as
//! `application/vnd.kubernetes.protobuf`, whatever the user asked for. The body is the
//! `k8s\0` magic and a `runtime.Unknown` holding the object; the messages below are the
//! fields of `k8s.io/api/core/v1/generated.proto` (and apimachinery's) that those commands
//! fill, decoded with prost and turned into the JSON every other path of the server takes.
//! Fields a message does not declare here are skipped by prost; a kind not listed is refused.

use std::collections::BTreeMap;

use base64::Engine as _;
use prost::Message;
use serde_json::{Map, Value, json};

/// The four bytes before every Kubernetes protobuf object.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
    #[prost(string, tag = "3")]
    content_encoding: String,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(string, tag = "3")]
    namespace: String,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Secret {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    data: BTreeMap<String, Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    type_: Option<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct Namespace {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
}

/// The object a protobuf body holds, as JSON; `Err` says why not (for a 400 or 415).
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the k8s\\0 magic")?;
    let unknown = Unknown::decode(rest)
        .map_err(|error| format!("the protobuf envelope is malformed: {error}"))?;
    if !unknown.content_encoding.is_empty() {
        return Err(format!(
            "the protobuf body has content encoding {:?}, which this server does not decode",
            unknown.content_encoding
        ));
    }
    let type_meta = unknown.type_meta.unwrap_or_default();
    let raw = unknown.raw.as_slice();
    let malformed = |error: prost::DecodeError| {
        format!("the protobuf {} is malformed: {error}", type_meta.kind)
    };
    let mut object = match (type_meta.api_version.as_str(), type_meta.kind.as_str()) {
        ("v1", "Secret") => {
            let secret = Secret::decode(raw).map_err(malformed)?;
            let mut object = Map::new();
            object.insert("metadata".into(), metadata(secret.metadata));
            if !secret.data.is_empty() {
                let data = secret
                    .data
                    .into_iter()
                    .map(|(key, value)| {
                        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                        (key, Value::String(encoded))
                    })
                    .collect();
                object.insert("data".into(), Value::Object(data));
            }
            if !secret.string_data.is_empty() {
                object.insert("stringData".into(), json!(secret.string_data));
            }
            if let Some(type_) = secret.type_ {
                object.insert("type".into(), Value::String(type_));
            }
            if let Some(immutable) = secret.immutable {
                object.insert("immutable".into(), Value::Bool(immutable));
            }
            object
        }
        ("v1", "ConfigMap") => {
            let config_map = ConfigMap::decode(raw).map_err(malformed)?;
            let mut object = Map::new();
            object.insert("metadata".into(), metadata(config_map.metadata));
            if !config_map.data.is_empty() {
                object.insert("data".into(), json!(config_map.data));
            }
            if !config_map.binary_data.is_empty() {
                let binary = config_map
                    .binary_data
                    .into_iter()
                    .map(|(key, value)| {
                        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                        (key, Value::String(encoded))
                    })
                    .collect();
                object.insert("binaryData".into(), Value::Object(binary));
            }
            if let Some(immutable) = config_map.immutable {
                object.insert("immutable".into(), Value::Bool(immutable));
            }
            object
        }
        ("v1", "Namespace") => {
            let namespace = Namespace::decode(raw).map_err(malformed)?;
            let mut object = Map::new();
            object.insert("metadata".into(), metadata(namespace.metadata));
            object
        }
        (api_version, kind) => {
            return Err(format!(
                "the body is a protobuf {kind} ({api_version}), a kind this server decodes only \
                 as JSON: send JSON instead (e.g. `kubectl create -f object.yaml`)"
            ));
        }
    };
    object.insert("apiVersion".into(), Value::String(type_meta.api_version));
    object.insert("kind".into(), Value::String(type_meta.kind));
    Ok(Value::Object(object))
}

fn metadata(meta: Option<ObjectMeta>) -> Value {
    let meta = meta.unwrap_or_default();
    let mut object = Map::new();
    let mut text = |key: &str, value: String| {
        if !value.is_empty() {
            object.insert(key.into(), Value::String(value));
        }
    };
    text("name", meta.name);
    text("generateName", meta.generate_name);
    text("namespace", meta.namespace);
    if !meta.labels.is_empty() {
        object.insert("labels".into(), json!(meta.labels));
    }
    if !meta.annotations.is_empty() {
        object.insert("annotations".into(), json!(meta.annotations));
    }
    if !meta.finalizers.is_empty() {
        object.insert("finalizers".into(), json!(meta.finalizers));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: api_version.into(),
                kind: kind.into(),
            }),
            raw,
            content_encoding: String::new(),
        }
        .encode(&mut bytes)
        .unwrap();
        bytes
    }

    #[test]
    fn a_docker_registry_secret_becomes_its_json() {
        let secret = Secret {
            metadata: Some(ObjectMeta {
                name: "regcred".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            data: BTreeMap::from([(".dockerconfigjson".into(), b"{\"auths\":{}}".to_vec())]),
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            ..Default::default()
        };
        let object = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
        assert_eq!(
            object,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "regcred", "namespace": "default"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode("{\"auths\":{}}")},
            })
        );
    }

    #[test]
    fn config_maps_and_namespaces_decode_too() {
        let config_map = ConfigMap {
            metadata: Some(ObjectMeta {
                name: "c".into(),
                labels: BTreeMap::from([("a".into(), "b".into())]),
                ..Default::default()
            }),
            data: BTreeMap::from([("k".into(), "v".into())]),
            ..Default::default()
        };
        let object = decode(&envelope("v1", "ConfigMap", config_map.encode_to_vec())).unwrap();
        assert_eq!(object["data"], json!({"k": "v"}));
        assert_eq!(object["metadata"]["labels"], json!({"a": "b"}));
        let namespace = Namespace {
            metadata: Some(ObjectMeta {
                name: "team".into(),
                ..Default::default()
            }),
        };
        let object = decode(&envelope("v1", "Namespace", namespace.encode_to_vec())).unwrap();
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
        );
    }

    #[test]
    fn other_kinds_and_garbage_are_refused_saying_why() {
        assert!(decode(b"k8s\0").is_err());
        assert!(decode(b"nope").unwrap_err().contains("magic"));
        assert!(
            decode(b"k8s\0\xff\xff\xff")
                .unwrap_err()
                .contains("malformed")
        );
        let pod = decode(&envelope("v1", "Pod", Vec::new())).unwrap_err();
        assert!(
            pod.contains("protobuf Pod") && pod.contains("send JSON"),
            "{pod}"
        );
    }
}
