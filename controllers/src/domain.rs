//! Route hosts: the domain from `knative-serving/config-domain` and the URLs built from it.

pub(super) use wisp_api::knative::domain::default_domain as domain_from;

/// `http://{route}.{namespace}.{domain}`: the route's external URL.
pub(super) fn route_url(route: &str, namespace: &str, domain: &str) -> String {
    format!("http://{route}.{namespace}.{domain}")
}

/// `http://{tag}-{route}.{namespace}.{domain}`: a tagged traffic target's URL.
pub(super) fn tag_url(tag: &str, route: &str, namespace: &str, domain: &str) -> String {
    format!("http://{tag}-{route}.{namespace}.{domain}")
}

/// `http://{route}.{namespace}.svc.cluster.local`: the route's in-cluster address.
pub(super) fn cluster_local_url(route: &str, namespace: &str) -> String {
    format!("http://{route}.{namespace}.svc.cluster.local")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_knatives_templates() {
        assert_eq!(
            route_url("hello", "default", "example.com"),
            "http://hello.default.example.com"
        );
        assert_eq!(
            tag_url("v1", "hello", "default", "localhost"),
            "http://v1-hello.default.localhost"
        );
        assert_eq!(
            cluster_local_url("hello", "team"),
            "http://hello.team.svc.cluster.local"
        );
    }
}
