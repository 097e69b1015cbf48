//! Route hosts: the domain from `knative-serving/config-domain` and the URLs built from it.

use std::collections::BTreeMap;

use wisp_api::knative::DEFAULT_DOMAIN;

/// The key Knative ships in its ConfigMaps to document them; never a setting.
const EXAMPLE_KEY: &str = "_example";

/// The domain of every route: the key of `config-domain` whose value is empty (Knative's
/// "no selector", i.e. the default for all routes), else wisp's default. Keys with a value
/// are label-selected domains, which wisp does not support; several empty keys are broken
/// config, resolved to the smallest so every reader agrees.
pub(super) fn domain_from(data: Option<&BTreeMap<String, String>>) -> String {
    data.into_iter()
        .flatten()
        .filter(|(key, value)| key.as_str() != EXAMPLE_KEY && value.trim().is_empty())
        .map(|(key, _)| key.trim())
        .find(|key| !key.is_empty())
        .map_or_else(|| DEFAULT_DOMAIN.to_owned(), str::to_owned)
}

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

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_config_means_the_default_domain() {
        assert_eq!(domain_from(None), "localhost");
        assert_eq!(domain_from(Some(&data(&[]))), "localhost");
        assert_eq!(
            domain_from(Some(&data(&[("_example", "")]))),
            "localhost",
            "the documentation key is not a domain"
        );
    }

    #[test]
    fn the_key_with_an_empty_value_is_the_domain() {
        let config = data(&[
            ("example.com", ""),
            ("internal.example.org", "selector:\n  app: secret\n"),
        ]);
        assert_eq!(domain_from(Some(&config)), "example.com");
        assert_eq!(
            domain_from(Some(&data(&[("svc.example.net", "  \n")]))),
            "svc.example.net"
        );
        assert_eq!(
            domain_from(Some(&data(&[("b.test", ""), ("a.test", "")]))),
            "a.test"
        );
    }

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
