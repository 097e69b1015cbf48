//! The `admission.k8s.io/v1` `AdmissionReview` on the wire: the request kube-apiserver sends
//! and the response it expects back (k8s.io/api: admission/v1/types.go). Only the fields the
//! handler reads are declared; the objects stay raw JSON so nothing the API server sent is lost
//! or reshaped before the rules see it.

use serde::Deserialize;
use serde_json::{Value, json};

/// The only version served (the webhook configurations list just `v1`).
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// The kind of both the request and the response.
pub const KIND: &str = "AdmissionReview";

/// A review as POSTed by the API server.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// Must be [`API_VERSION`].
    pub api_version: String,
    /// Must be [`KIND`].
    pub kind: String,
    /// What is being admitted; a review without one is malformed.
    pub request: Option<AdmissionRequest>,
}

/// One write to admit.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Echoed in the response so the API server can match it.
    pub uid: String,
    /// The resource the webhook rule matched (after `matchPolicy: Equivalent` conversion).
    pub resource: GroupVersionResource,
    /// `status`, `scale`, … for a subresource write; empty for the main resource.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_resource: String,
    /// The object's name (empty on a create with `generateName`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// Who is writing.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user_info: UserInfo,
    /// The object as it would be stored (null on delete).
    #[serde(default)]
    pub object: Option<Value>,
    /// The stored object, on update and delete.
    #[serde(default)]
    pub old_object: Option<Value>,
}

/// `group`/`version`/`resource` of a request.
#[derive(Debug, Deserialize)]
pub struct GroupVersionResource {
    /// Empty for the core group.
    #[serde(default)]
    pub group: String,
    /// E.g. `v1`.
    pub version: String,
    /// The plural, e.g. `services`.
    pub resource: String,
}

/// The authenticated user of a request.
#[derive(Debug, Default, Deserialize)]
pub struct UserInfo {
    /// What the creator and lastModifier annotations record.
    #[serde(default, deserialize_with = "null_as_default")]
    pub username: String,
}

/// An explicit `null` read as absent: Go omits empty fields, but other clients send nulls, and
/// neither is worth refusing a review over.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// What the webhook answers about one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Admitted unchanged.
    Allowed,
    /// Admitted with these RFC 6902 operations applied first.
    Patched(json_patch::Patch),
    /// Refused with this `Status` (code, reason, message, details).
    Denied(Value),
}

/// The response review for the request `uid`.
pub fn response(uid: &str, verdict: &Verdict) -> Result<Value, serde_json::Error> {
    let mut response = json!({"uid": uid, "allowed": true});
    match verdict {
        Verdict::Allowed => {}
        Verdict::Patched(patch) => {
            use base64::Engine as _;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(patch)?);
            response["patchType"] = "JSONPatch".into();
            response["patch"] = encoded.into();
        }
        Verdict::Denied(status) => {
            response["allowed"] = false.into();
            response["status"] = status.clone();
        }
    }
    Ok(json!({"apiVersion": API_VERSION, "kind": KIND, "response": response}))
}
