//! Which domain `knative-serving/config-domain` sets for routes: one rule, shared by the Route
//! controller (URLs in status) and the gateway (the hosts it serves), so they never disagree.

use std::collections::BTreeMap;

use super::DEFAULT_DOMAIN;

/// The key Knative ships in its ConfigMaps to document them; never a setting.
const EXAMPLE_KEY: &str = "_example";

/// The domain of every route: the key of `config-domain` whose value is empty (Knative's "no
/// selector", i.e. the default for all routes), else [`DEFAULT_DOMAIN`]. Keys with a value are
/// label-selected domains, which wisp does not support; several empty keys are a broken
/// config, resolved to the smallest so every reader agrees.
pub fn default_domain(data: Option<&BTreeMap<String, String>>) -> String {
    data.into_iter()
        .flatten()
        .filter(|(key, value)| key.as_str() != EXAMPLE_KEY && value.trim().is_empty())
        .map(|(key, _)| key.trim())
        .find(|key| !key.is_empty())
        .map_or_else(|| DEFAULT_DOMAIN.to_owned(), str::to_owned)
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
        assert_eq!(default_domain(None), "localhost");
        assert_eq!(default_domain(Some(&data(&[]))), "localhost");
        assert_eq!(
            default_domain(Some(&data(&[("_example", "")]))),
            "localhost"
        );
    }

    #[test]
    fn the_key_with_an_empty_value_is_the_domain() {
        let config = data(&[
            ("example.com", ""),
            ("internal.example.org", "selector:\n  app: secret\n"),
        ]);
        assert_eq!(default_domain(Some(&config)), "example.com");
        assert_eq!(
            default_domain(Some(&data(&[("svc.example.net", "  \n")]))),
            "svc.example.net"
        );
        assert_eq!(
            default_domain(Some(&data(&[("b.test", ""), ("a.test", "")]))),
            "a.test"
        );
    }
}
