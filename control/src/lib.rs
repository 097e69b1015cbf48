//! The control plane: a Kubernetes-compatible API server over SQLite, Knative admission, and the
//! controllers that turn Services into Configurations, Revisions and Routes.
