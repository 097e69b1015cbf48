//! Knative admission as Kubernetes admission webhooks, for a genuine cluster: the same
//! defaulting and validation the embedded API server applies (`wisp_control::admission`, called
//! here, never re-implemented) served over HTTPS to kube-apiserver by `wisp controller`.
//!
//! * [`handler`]: one `AdmissionReview` in, one out — defaults as a JSONPatch
//!   (`/defaulting`, the MutatingWebhookConfiguration `webhook.serving.knative.dev`), refusals
//!   worded so kubectl prints exactly what it prints against `wisp up` (`/validation`, the
//!   ValidatingWebhookConfiguration `validation.webhook.serving.knative.dev`);
//! * [`review`]: the `admission.k8s.io/v1` wire types;
//! * [`server`]: the HTTPS server (bounded bodies, deadlines);
//! * [`certs`], [`tls`], [`secret`]: the serving certificate — minted, judged, shared by every
//!   replica through a Secret, renewed before it expires, swapped in without a restart;
//! * [`ca_bundle`]: the CA kept in the webhook configurations' `caBundle`;
//! * [`defaults`]: `knative-serving/config-defaults` and `config-autoscaler`, watched live;
//! * [`running`]: all of it together, as `wisp controller` starts it.
//!
//! Not for the embedded API server, which runs the same functions in-process; and not a
//! general webhook framework: it admits only Knative Serving's four kinds.

pub mod ca_bundle;
pub mod certs;
pub mod defaults;
pub mod handler;
pub mod review;
pub mod running;
pub mod secret;
pub mod server;
pub mod tls;

pub use running::{Options, StartError, Webhook};
pub use secret::SecretRef;

/// The Secret's default namespace, where the shipped manifests run `wisp controller`.
pub const DEFAULT_SECRET_NAMESPACE: &str = "wisp-system";
/// The Secret's default name.
pub const DEFAULT_SECRET_NAME: &str = "wisp-webhook-certs";
