//! The API server's own metrics at `GET /metrics` (authenticated, as on kube-apiserver):
//! `apiserver_request_total` counted by verb, resource and status code, so what a client costs
//! the server — an idle node's watches and writes, a controller's reconciles — can be read off
//! the server rather than guessed from the client.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of one request count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, …) or the HTTP method of a
    /// request that named no resource (discovery, OpenAPI).
    pub verb: String,
    /// The resource's plural (`revisions`), with `/status` for the subresource; empty for
    /// requests that named no resource.
    pub resource: String,
    /// The response's HTTP status code.
    pub code: u16,
}

/// The registry and its request counter; cheap to clone.
#[derive(Clone)]
pub struct ApiMetrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let mut registry = Registry::default();
        registry.register(
            "apiserver_request",
            "Requests answered, by verb, resource and HTTP status code",
            requests.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
        }
    }
}

impl ApiMetrics {
    /// Counts one answered request.
    pub fn count(&self, labels: RequestLabels) {
        self.requests.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_verb_resource_and_code() {
        let metrics = ApiMetrics::default();
        let labels = RequestLabels {
            verb: "watch".into(),
            resource: "revisions".into(),
            code: 200,
        };
        metrics.count(labels.clone());
        metrics.count(labels);
        let text = metrics.encode();
        assert!(
            text.contains(
                "apiserver_request_total{verb=\"watch\",resource=\"revisions\",code=\"200\"} 2"
            ),
            "{text}"
        );
    }
}
