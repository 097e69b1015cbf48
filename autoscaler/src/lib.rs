//! Knative KPA autoscaler (work in progress by the autoscaler issue).
