//! One entry of `containers` (knative/serving `k8s_validation.go`, the parts that apply to a
//! WebAssembly component: its image, environment, port and memory).

use serde_json::Value;
use wisp_api::quantity::{MIN_REPLICA_MEMORY, MIN_REPLICA_MEMORY_TEXT, parse_memory};

use super::rules::{ENV_VAR_NAME_RULE, Integer, integer, is_env_var_name, out_of_bounds};
use crate::admission::json::{array, child, index, join, nonempty_str, str_at};
use crate::field_error::{CauseReason, FieldError};

/// The sidecar Knative runs next to every user container; the name stays reserved so
/// manifests remain portable.
const RESERVED_CONTAINER_NAMES: &[&str] = &["queue-proxy"];
/// Variables the runtime sets itself (Knative's runtime contract).
const RESERVED_ENV_VARS: &[&str] = &["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"];
/// Ports of Knative's queue-proxy and profiling endpoints.
pub(crate) const RESERVED_PORTS: &[i64] = &[8008, 8012, 8013, 8022, 9090, 9091];
/// Port names Knative gives meaning to (protocol selection).
const PORT_NAMES: &[&str] = &["", "h2c", "http1"];
/// The highest TCP port.
const MAX_PORT: i64 = 65535;

/// Validates the container at `base` (`spec.template.spec.containers[0]`).
pub(crate) fn validate(container: &Value, base: &str, errors: &mut Vec<FieldError>) {
    if !container.is_object() {
        // Wrong types are the schema check's to report.
        return;
    }
    if let Some(name) = str_at(container, "name")
        && RESERVED_CONTAINER_NAMES.contains(&name)
    {
        errors.push(FieldError::invalid(
            join(base, "name"),
            format!("{name:?} is a reserved container name"),
        ));
    }
    for (i, env) in array(container, "env").iter().enumerate() {
        env_var(env, &index(&join(base, "env"), i), errors);
    }
    if nonempty_str(container, "image").is_none() {
        errors.push(FieldError::required(
            join(base, "image"),
            "missing field(s) (the image names the WebAssembly component to run)",
        ));
    }
    for (i, port) in array(container, "ports").iter().enumerate() {
        container_port(port, &index(&join(base, "ports"), i), errors);
    }
    if let Some(resources) = child(container, "resources") {
        for section in ["limits", "requests"] {
            if let Some(memory) = child(resources, section).and_then(|s| child(s, "memory")) {
                memory_quantity(
                    memory,
                    &join(&join(&join(base, "resources"), section), "memory"),
                    errors,
                );
            }
        }
    }
}

fn env_var(env: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let field = join(path, "name");
    match nonempty_str(env, "name") {
        None => errors.push(FieldError::required(field, "missing field(s)")),
        Some(name) if RESERVED_ENV_VARS.contains(&name) => errors.push(FieldError::invalid(
            field,
            format!("{name:?} is a reserved environment variable"),
        )),
        Some(name) if !is_env_var_name(name) => errors.push(FieldError::invalid(
            field,
            format!("invalid value: {name:?}: {ENV_VAR_NAME_RULE}"),
        )),
        Some(_) => {}
    }
}

fn container_port(port: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let number_field = join(path, "containerPort");
    match integer(port.get("containerPort")) {
        Integer::Unset => {}
        Integer::Value(number) if RESERVED_PORTS.contains(&number) => {
            errors.push(FieldError::invalid(
                number_field,
                format!("{number} is a reserved port, please use a different value"),
            ));
        }
        Integer::Value(number) if !(0..=MAX_PORT).contains(&number) => {
            errors.push(FieldError::invalid(
                number_field,
                out_of_bounds(number, 0, MAX_PORT),
            ));
        }
        Integer::Value(_) => {}
        Integer::Malformed => errors.push(FieldError::new(
            number_field,
            CauseReason::TypeInvalid,
            "containerPort must be a whole number",
        )),
    }
    if let Some(protocol) = nonempty_str(port, "protocol")
        && protocol != "TCP"
    {
        errors.push(FieldError::invalid(
            join(path, "protocol"),
            format!("invalid value: {protocol} (only TCP is supported)"),
        ));
    }
    if let Some(name) = str_at(port, "name")
        && !PORT_NAMES.contains(&name)
    {
        errors.push(FieldError::invalid(
            join(path, "name"),
            format!(
                "Port name {name} is not allowed; name must be empty, or one of: 'h2c', 'http1'"
            ),
        ));
    }
}

/// A memory quantity, written as a string (`128Mi`) or a bare number of bytes.
fn memory_quantity(value: &Value, field: &str, errors: &mut Vec<FieldError>) {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => {
            errors.push(FieldError::new(
                field,
                CauseReason::TypeInvalid,
                "a memory quantity must be a string such as 128Mi or a number of bytes",
            ));
            return;
        }
    };
    match parse_memory(&text) {
        Err(error) => errors.push(FieldError::invalid(field, error.to_string())),
        Ok(bytes) if bytes < MIN_REPLICA_MEMORY => errors.push(FieldError::invalid(
            field,
            format!(
                "{text:?} ({bytes} B) is below the {MIN_REPLICA_MEMORY_TEXT} a replica needs \
                 to hold a WebAssembly component; set it to {MIN_REPLICA_MEMORY_TEXT} or more \
                 (e.g. 128Mi), or remove it to get the default"
            ),
        )),
        Ok(_) => {}
    }
}
