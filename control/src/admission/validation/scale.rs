//! The replica counts a revision's autoscaling annotations ask for, against each other and
//! against the cluster's `config-autoscaler` bounds (knative/serving
//! `pkg/apis/autoscaling/annotation_validation.go`, `validateMinMaxScale` and
//! `validateMaxScaleWithinLimit`, with Knative's messages).
//!
//! Beyond Knative: with a `max-scale-limit`, `min-scale`, `initial-scale` and
//! `activation-scale` may not exceed it either — each of them alone makes nodes start that many
//! replicas, so a limit that bounded only `max-scale` would bound nothing.

use wisp_autoscaler::annotations::{AnnotationOverrides, PREFIX};

use super::rules::out_of_bounds;
use crate::admission::ClusterDefaults;
use crate::admission::json::join;
use crate::field_error::FieldError;

/// Checks the (individually valid) `overrides` found under `base`.
pub(crate) fn bounds(
    overrides: &AnnotationOverrides,
    base: &str,
    defaults: &ClusterDefaults,
    errors: &mut Vec<FieldError>,
) {
    let field = |name: &str| join(base, &format!("{PREFIX}{name}"));
    let min = overrides.min_scale.unwrap_or(0);
    let limit = defaults.max_scale_limit;
    match overrides.max_scale {
        Some(max) if max != 0 && max < min => errors.push(FieldError::invalid(
            field("max-scale"),
            format!("max-scale={max} is less than min-scale={min}"),
        )),
        // The cluster's default max-scale bounds a revision that names none.
        None if defaults.max_scale != 0 && defaults.max_scale < min => {
            errors.push(FieldError::invalid(
                field("min-scale"),
                format!(
                    "min-scale={min} is greater than the cluster's default max-scale={} \
                     (config-autoscaler); set autoscaling.knative.dev/max-scale to at least \
                     {min}, or lower min-scale",
                    defaults.max_scale
                ),
            ))
        }
        _ => {}
    }
    if limit != 0 {
        let hint = format!(
            " (the cluster's max-scale-limit in config-autoscaler is {limit}; ask for at most \
             {limit} replicas, or have the operator raise the limit)"
        );
        match overrides.max_scale {
            Some(0) => errors.push(FieldError::invalid(
                field("max-scale"),
                format!(
                    "max-scale=0 (unlimited), must be less than {limit}; set max-scale from 1 \
                     to {limit}"
                ),
            )),
            Some(max) if max > limit => errors.push(FieldError::invalid(
                field("max-scale"),
                format!("{}{hint}", out_of_bounds(max.into(), 1, limit.into())),
            )),
            _ => {}
        }
        let counts = [
            ("min-scale", overrides.min_scale, 0),
            ("initial-scale", overrides.initial_scale, 0),
            ("activation-scale", overrides.activation_scale, 2),
        ];
        for (name, value, low) in counts {
            if let Some(value) = value
                && value > limit
            {
                errors.push(FieldError::invalid(
                    field(name),
                    format!("{}{hint}", out_of_bounds(value.into(), low, limit.into())),
                ));
            }
        }
    }
    if let Some(activation) = overrides.activation_scale {
        let max = overrides.max_scale.unwrap_or(defaults.max_scale);
        if min > activation {
            errors.push(FieldError::invalid(
                field("activation-scale"),
                format!("min-scale={min} is greater than min-activate-scale={activation}"),
            ));
        } else if max != 0 && max < activation {
            errors.push(FieldError::invalid(
                field("activation-scale"),
                format!("max-scale={max} is less than min-activate-scale={activation}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::admission::test_support::{assert_single, only_on};

    const BASE: &str = "spec.template.metadata.annotations";

    fn check(pairs: &[(&str, &str)], defaults: &ClusterDefaults) -> Vec<FieldError> {
        let annotations: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect();
        let overrides = AnnotationOverrides::parse(&annotations).expect("valid annotations");
        let mut errors = Vec::new();
        bounds(&overrides, BASE, defaults, &mut errors);
        errors
    }

    fn limited(limit: u32, max_scale: u32) -> ClusterDefaults {
        ClusterDefaults {
            max_scale_limit: limit,
            max_scale,
            ..ClusterDefaults::KNATIVE
        }
    }

    fn field(name: &str) -> String {
        format!("{BASE}.{PREFIX}{name}")
    }

    #[test]
    fn without_a_limit_any_int32_scale_is_accepted() {
        let errors = check(
            &[("min-scale", "2147483647"), ("initial-scale", "2147483647")],
            &ClusterDefaults::KNATIVE,
        );
        assert_eq!(errors, vec![]);
    }

    #[test]
    fn max_scale_above_the_limit_is_refused_as_knative_words_it() {
        let errors = check(&[("max-scale", "200")], &limited(100, 10));
        assert_single(
            &errors,
            &field("max-scale"),
            "expected 1 <= 200 <= 100 (the cluster's max-scale-limit in config-autoscaler is \
             100; ask for at most 100 replicas, or have the operator raise the limit)",
        );
        assert_eq!(check(&[("max-scale", "100")], &limited(100, 10)), vec![]);
    }

    #[test]
    fn an_explicit_unlimited_max_scale_is_refused_under_a_limit() {
        let errors = check(&[("max-scale", "0")], &limited(100, 10));
        assert_single(
            &errors,
            &field("max-scale"),
            "max-scale=0 (unlimited), must be less than 100",
        );
        // Without a limit, 0 is Knative's "unbounded".
        assert_eq!(
            check(&[("max-scale", "0")], &ClusterDefaults::KNATIVE),
            vec![]
        );
    }

    #[test]
    fn every_count_that_starts_replicas_is_bounded_by_the_limit() {
        let errors = check(
            &[
                ("min-scale", "4000"),
                ("initial-scale", "5000"),
                ("activation-scale", "6000"),
                ("max-scale", "7000"),
            ],
            &limited(100, 10),
        );
        assert!(
            only_on(&errors, &field("min-scale"))
                .message
                .starts_with("expected 0 <= 4000 <= 100 (the cluster's max-scale-limit")
        );
        assert!(
            only_on(&errors, &field("initial-scale"))
                .message
                .starts_with("expected 0 <= 5000 <= 100")
        );
        assert!(
            errors
                .iter()
                .any(|e| e.message.starts_with("expected 2 <= 6000 <= 100"))
        );
        assert!(
            only_on(&errors, &field("max-scale"))
                .message
                .starts_with("expected 1 <= 7000 <= 100")
        );
    }

    #[test]
    fn the_default_max_scale_bounds_a_revision_that_names_none() {
        let errors = check(&[("min-scale", "20")], &limited(100, 10));
        assert_single(
            &errors,
            &field("min-scale"),
            "min-scale=20 is greater than the cluster's default max-scale=10 \
             (config-autoscaler); set autoscaling.knative.dev/max-scale to at least 20",
        );
        assert_eq!(
            check(
                &[("min-scale", "20"), ("max-scale", "50")],
                &limited(100, 10)
            ),
            vec![]
        );
    }

    #[test]
    fn activation_scale_lies_between_min_and_max_scale() {
        let defaults = ClusterDefaults::KNATIVE;
        assert_single(
            &check(&[("min-scale", "5"), ("activation-scale", "3")], &defaults),
            &field("activation-scale"),
            "min-scale=5 is greater than min-activate-scale=3",
        );
        assert_single(
            &check(&[("max-scale", "2"), ("activation-scale", "3")], &defaults),
            &field("activation-scale"),
            "max-scale=2 is less than min-activate-scale=3",
        );
        assert_eq!(
            check(
                &[
                    ("min-scale", "2"),
                    ("activation-scale", "3"),
                    ("max-scale", "3")
                ],
                &defaults
            ),
            vec![]
        );
    }
}
