//! What the real API server does to a core `Secret` on every write: `stringData` merged into
//! `data` (base64) and dropped, `type` defaulted to `Opaque` and never changed, and the checks
//! of its validation — keys, the 1 MiB cap, `immutable`, and the shape of the docker config a
//! `kubernetes.io/dockerconfigjson` (or legacy `kubernetes.io/dockercfg`) Secret must hold.
//! Messages never quote a secret's contents, as the real server's do not.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::field_error::FieldError;
use crate::registry::Resource;

/// `type` of a Secret created without one.
pub const OPAQUE: &str = "Opaque";
/// `type` of a registry credentials Secret (`kubectl create secret docker-registry`).
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Its data key.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The legacy `~/.dockercfg` format's type and key.
pub const DOCKER_CFG: &str = "kubernetes.io/dockercfg";
pub const DOCKER_CFG_KEY: &str = ".dockercfg";
/// The real server's `MaxSecretSize`: the decoded values of `data` together.
pub const MAX_SECRET_BYTES: usize = 1 << 20;

/// What the real server puts in place of a secret's value in a message.
const REDACTED: &str = "<secret contents redacted>";

fn is_secret(resource: &Resource) -> bool {
    resource.group.is_empty() && resource.plural == "secrets"
}

/// `stringData` into `data`, `type` defaulted. Other kinds are left alone.
pub fn normalize(resource: &Resource, object: &mut Value) {
    if !is_secret(resource) {
        return;
    }
    let Some(fields) = object.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(strings)) = fields.remove("stringData") {
        let data = fields
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Some(data) = data.as_object_mut() {
            for (key, value) in strings {
                let text = value.as_str().unwrap_or_default();
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                data.insert(key, Value::String(encoded));
            }
        }
    }
    let untyped = fields
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if untyped {
        fields.insert("type".into(), Value::String(OPAQUE.into()));
    }
}

/// The real server's validation of a Secret (`current` is the stored one on an update).
pub fn validate(resource: &Resource, current: Option<&Value>, object: &Value) -> Vec<FieldError> {
    if !is_secret(resource) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    let secret_type = object.get("type").and_then(Value::as_str).unwrap_or(OPAQUE);
    let empty = Map::new();
    let data = object
        .get("data")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut total = 0;
    let mut decoded = Map::new();
    for (key, value) in data {
        if !valid_key(key) {
            errors.push(FieldError::invalid(
                format!("data[{key}]"),
                format!(
                    "Invalid value: {key:?}: a valid config key must consist of alphanumeric \
                     characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or \
                     'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
                ),
            ));
        }
        match value
            .as_str()
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        {
            Some(bytes) => {
                total += bytes.len();
                decoded.insert(key.clone(), Value::from(bytes.len()));
                if key == DOCKER_CONFIG_JSON_KEY || key == DOCKER_CFG_KEY {
                    decoded.insert(
                        key.clone(),
                        Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                    );
                }
            }
            None => errors.push(FieldError::invalid(
                format!("data[{key}]"),
                format!("Invalid value: {REDACTED:?}: must be base64 encoded"),
            )),
        }
    }
    if total > MAX_SECRET_BYTES {
        errors.push(FieldError::invalid(
            "data",
            format!("Too long: must have at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    match secret_type {
        DOCKER_CONFIG_JSON => {
            docker_config(&decoded, DOCKER_CONFIG_JSON_KEY, true, &mut errors);
        }
        DOCKER_CFG => docker_config(&decoded, DOCKER_CFG_KEY, false, &mut errors),
        _ => {}
    }
    if let Some(current) = current {
        let current_type = current
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(OPAQUE);
        if current_type != secret_type {
            errors.push(FieldError::invalid(
                "type",
                format!("Invalid value: {secret_type:?}: field is immutable"),
            ));
        }
        let was_immutable = current.get("immutable").and_then(Value::as_bool) == Some(true);
        if was_immutable {
            if current.get("data") != object.get("data") {
                errors.push(FieldError::forbidden(
                    "data",
                    "Forbidden: field is immutable when `immutable` is set",
                ));
            }
            if object.get("immutable").and_then(Value::as_bool) != Some(true) {
                errors.push(FieldError::forbidden(
                    "immutable",
                    "Forbidden: field is immutable when `immutable` is set",
                ));
            }
        }
    }
    errors
}

/// The docker config under `key` must be there and be JSON of the right shape: with `auths`
/// (`.dockerconfigjson`), or the map of registries alone (`.dockercfg`).
fn docker_config(
    decoded: &Map<String, Value>,
    key: &str,
    wrapped: bool,
    errors: &mut Vec<FieldError>,
) {
    let field = format!("data[{key}]");
    let Some(text) = decoded.get(key).and_then(Value::as_str) else {
        if !decoded.contains_key(key) {
            errors.push(FieldError::required(field, "Required value"));
        }
        return;
    };
    let problem = match serde_json::from_str::<Value>(text) {
        Err(error) => Some(format!(
            "not JSON (line {}, column {})",
            error.line(),
            error.column()
        )),
        Ok(Value::Object(config)) if !wrapped => config
            .values()
            .any(|entry| !entry.is_object())
            .then(|| "every registry's entry must be an object".to_owned()),
        Ok(Value::Object(config)) => match config.get("auths") {
            Some(Value::Object(auths)) if auths.values().all(Value::is_object) => None,
            Some(_) => Some("\"auths\" must map registries to objects".to_owned()),
            None => Some("it has no \"auths\"".to_owned()),
        },
        Ok(_) => Some("not a JSON object".to_owned()),
    };
    if let Some(problem) = problem {
        let shape = if wrapped {
            "{\"auths\": {\"REGISTRY\": {\"auth\": \"BASE64(USER:PASSWORD)\"}}}"
        } else {
            "{\"REGISTRY\": {\"auth\": \"BASE64(USER:PASSWORD)\"}}"
        };
        errors.push(FieldError::invalid(
            field,
            format!(
                "Invalid value: {REDACTED:?}: {problem}; a docker config is {shape}, as \
                 `kubectl create secret docker-registry` writes it"
            ),
        ));
    }
}

/// `[-._a-zA-Z0-9]+`, at most 253 characters, and not `.` or `..`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::lookup;

    fn secrets() -> &'static Resource {
        lookup("", "v1", "secrets").expect("registered")
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn docker(config: &str) -> Value {
        json!({
            "metadata": {"name": "pull"},
            "type": DOCKER_CONFIG_JSON,
            "data": {DOCKER_CONFIG_JSON_KEY: b64(config)},
        })
    }

    #[test]
    fn string_data_is_merged_into_data_and_the_type_defaulted() {
        let mut secret = json!({"metadata": {"name": "s"}, "data": {"a": b64("1")}, "stringData": {"b": "2", "a": "3"}});
        normalize(secrets(), &mut secret);
        assert_eq!(secret["data"], json!({"a": b64("3"), "b": b64("2")}));
        assert!(secret.get("stringData").is_none());
        assert_eq!(secret["type"], OPAQUE);
        assert!(validate(secrets(), None, &secret).is_empty());
    }

    #[test]
    fn docker_config_secrets_must_hold_a_docker_config() {
        let good = r#"{"auths":{"localhost:5000":{"auth":"dTpw"}}}"#;
        assert!(validate(secrets(), None, &docker(good)).is_empty());

        let missing = json!({"metadata": {"name": "p"}, "type": DOCKER_CONFIG_JSON, "data": {}});
        let errors = validate(secrets(), None, &missing);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "data[.dockerconfigjson]");
        assert_eq!(errors[0].message, "Required value");

        for (config, problem) in [
            ("{not json", "not JSON (line 1, column 2)"),
            ("[]", "not a JSON object"),
            (r#"{"localhost:5000":{}}"#, "it has no \"auths\""),
            (
                r#"{"auths":{"r":"x"}}"#,
                "\"auths\" must map registries to objects",
            ),
        ] {
            let errors = validate(secrets(), None, &docker(config));
            assert_eq!(errors.len(), 1, "{config}");
            assert!(errors[0].message.contains(problem), "{}", errors[0].message);
            assert!(errors[0].message.contains(REDACTED));
            assert!(!errors[0].message.contains(config), "{}", errors[0].message);
        }
    }

    #[test]
    fn keys_size_type_and_immutability_are_checked() {
        let bad_key = json!({"metadata": {"name": "s"}, "type": OPAQUE, "data": {"a/b": b64("x")}});
        assert_eq!(validate(secrets(), None, &bad_key)[0].field, "data[a/b]");
        let not_base64 = json!({"metadata": {"name": "s"}, "type": OPAQUE, "data": {"a": "!!"}});
        assert!(
            validate(secrets(), None, &not_base64)[0]
                .message
                .contains("base64")
        );
        let big = json!({"metadata": {"name": "s"}, "type": OPAQUE, "data": {"a": b64(&"x".repeat(MAX_SECRET_BYTES + 1))}});
        assert_eq!(validate(secrets(), None, &big)[0].field, "data");

        let opaque = json!({"metadata": {"name": "s"}, "type": OPAQUE, "data": {"a": b64("1")}});
        let retyped = json!({"metadata": {"name": "s"}, "type": "other", "data": {"a": b64("1")}});
        assert_eq!(
            validate(secrets(), Some(&opaque), &retyped)[0].field,
            "type"
        );

        let frozen = json!({"metadata": {"name": "s"}, "type": OPAQUE, "immutable": true, "data": {"a": b64("1")}});
        let changed = json!({"metadata": {"name": "s"}, "type": OPAQUE, "immutable": true, "data": {"a": b64("2")}});
        assert_eq!(
            validate(secrets(), Some(&frozen), &changed)[0].field,
            "data"
        );
        assert!(validate(secrets(), Some(&frozen), &frozen).is_empty());
    }

    #[test]
    fn other_kinds_are_left_alone() {
        let configmaps = lookup("", "v1", "configmaps").expect("registered");
        let mut object = json!({"stringData": {"a": "b"}});
        normalize(configmaps, &mut object);
        assert_eq!(object, json!({"stringData": {"a": "b"}}));
        assert!(validate(configmaps, None, &json!({"data": {"a/b": 1}})).is_empty());
    }
}
