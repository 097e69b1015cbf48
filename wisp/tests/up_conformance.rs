//! Knative Serving's API conformance behaviours (reference/kubernetes-api.md §7) against
//! `wisp up` as a process, driven with the real kubectl and real HTTP through the gateway. The
//! cases live in `conformance/` and run on a genuine kube-apiserver too (`kube_conformance.rs`);
//! here each runs its own `wisp up`.

mod cluster;
mod common;
mod conformance;

use cluster::Up;

macro_rules! on_wisp_up {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                conformance::$case(&Up::start(&[]));
            }
        )*
    };
}

on_wisp_up!(
    create_service_becomes_ready_and_serves,
    image_change_rolls_out_a_new_revision_without_errors,
    template_metadata_changes_create_revisions,
    labels_and_annotations_propagate,
    byo_revision_name_and_refused_change_without_rename,
    release_traffic_shapes_with_tags,
    blue_green_split_is_even_and_tags_are_exact,
    route_and_configuration_created_directly,
    missing_image_fails_with_reason_and_message,
    trapping_component_fails_its_probe_and_harms_nothing_else,
    revision_timeout_gives_504_and_faster_requests_succeed,
    container_concurrency_one_is_enforced,
    memory_limit_is_enforced,
    invalid_service_account_name_is_refused,
);

#[test]
fn kubectl_prints_knative_columns_and_explains_the_schema() {
    conformance::api::kubectl_prints_knative_columns_and_explains_the_schema(&Up::start(&[]));
}

#[test]
fn a_list_file_is_applied_item_by_item() {
    conformance::api::a_list_file_is_applied_item_by_item(&Up::start(&[]));
}

#[test]
fn replica_demands_beyond_the_bounds_are_refused() {
    conformance::api::replica_demands_beyond_the_bounds_are_refused(&Up::start(&[]));
}

#[test]
fn admission_refusals_are_knatives_webhook_denials() {
    conformance::api::admission_refusals_are_knatives_webhook_denials(&Up::start(&[]));
}

#[test]
fn docker_registry_secrets_are_made_and_checked() {
    conformance::api::docker_registry_secrets_are_made_and_checked(&Up::start(&[]));
}

#[test]
fn instance_reuse_is_the_revisions_choice() {
    conformance::guests::instance_reuse_is_the_revisions_choice(&Up::start(&[]));
}

#[test]
fn a_wasip3_component_serves() {
    conformance::guests::a_wasip3_component_serves(&Up::start(&[]));
}
