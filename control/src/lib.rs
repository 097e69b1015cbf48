//! The embedded Kubernetes-compatible API server that kubectl and kube-rs talk to, with
//! Knative admission. The controllers (`wisp-controllers`) and the data plane (`wisp-gateway`)
//! reach it only over HTTPS, exactly as they reach a real kube-apiserver; it knows neither.
//!
//! * [`apiserver`]: HTTPS, authentication, the verbs, watches and garbage collection;
//! * [`store`]: objects in SQLite with a global resourceVersion, an event log and watches;
//! * [`registry`]: the served resources (names, short names, verbs, status, printer columns),
//!   from which [`discovery`], [`openapi`] and [`table`] build their documents;
//! * [`schema`]: structural schemas of every kind (unknown fields, wrong types, pruning);
//! * [`crd`]: the Knative kinds as CustomResourceDefinitions for a real cluster, from the same
//!   registry and schemas;
//! * [`admission`]: Knative's defaults and validation;
//! * [`selectors`] and [`jsonpath`]: label/field selectors and printer-column paths;
//! * [`credentials`]: the local CA, server certificate, bearer token and kubeconfig;
//! * [`data_dir`]: the lock that keeps a data directory to one server process;
//! * [`pki`]: minting and judging CAs and server certificates, for [`credentials`] and the
//!   admission webhook's serving certificate;
//! * [`field_error`]: the "this field is wrong" unit every check reports in.

pub mod admission;
pub mod apiserver;
pub mod crd;
pub mod credentials;
pub mod data_dir;
pub mod discovery;
pub mod field_error;
pub mod jsonpath;
pub mod openapi;
pub mod openapi_v2;
pub mod pki;
pub mod registry;
pub mod schema;
pub mod selectors;
pub mod store;
pub mod table;
