//! The conformance cases of `conformance/` on a genuine Kubernetes 1.34 control plane
//! (`scripts/kube-env`), with `deploy/kubernetes/` applied and wisp's controllers and nodes
//! running under their own ServiceAccounts (see `real_cluster/`). One control plane serves the
//! whole run; every case works in a namespace of its own, and the cases run in parallel.
//!
//! A harness of its own (libtest-mimic) because the control plane is shared by the cases and
//! must stop after the last one: `cargo test`'s filters and `--test-threads` work as usual.

mod cluster;
mod common;
mod conformance;
mod real_cluster;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use cluster::{Kube, image, ksvc};
use libtest_mimic::{Arguments, Failed, Trial};
use real_cluster::WispOnKube;

type Case = fn(&Kube);

/// Every shared case that applies to a cluster. Left out: `container_concurrency_one_is_enforced`
/// — `max-scale` caps replicas per node (README, "Beyond one machine"), so two nodes may run two
/// replicas of a `max-scale: 1` revision and the one-at-a-time check does not hold there.
const CASES: &[(&str, Case)] = &[
    (
        "create_service_becomes_ready_and_serves",
        conformance::create_service_becomes_ready_and_serves,
    ),
    (
        "image_change_rolls_out_a_new_revision_without_errors",
        conformance::image_change_rolls_out_a_new_revision_without_errors,
    ),
    (
        "template_metadata_changes_create_revisions",
        conformance::template_metadata_changes_create_revisions,
    ),
    (
        "labels_and_annotations_propagate",
        conformance::labels_and_annotations_propagate,
    ),
    (
        "byo_revision_name_and_refused_change_without_rename",
        conformance::byo_revision_name_and_refused_change_without_rename,
    ),
    (
        "release_traffic_shapes_with_tags",
        conformance::release_traffic_shapes_with_tags,
    ),
    (
        "blue_green_split_is_even_and_tags_are_exact",
        conformance::blue_green_split_is_even_and_tags_are_exact,
    ),
    (
        "route_and_configuration_created_directly",
        conformance::route_and_configuration_created_directly,
    ),
    (
        "missing_image_fails_with_reason_and_message",
        conformance::missing_image_fails_with_reason_and_message,
    ),
    (
        "trapping_component_fails_its_probe_and_harms_nothing_else",
        conformance::trapping_component_fails_its_probe_and_harms_nothing_else,
    ),
    (
        "revision_timeout_gives_504_and_faster_requests_succeed",
        conformance::revision_timeout_gives_504_and_faster_requests_succeed,
    ),
    (
        "memory_limit_is_enforced",
        conformance::memory_limit_is_enforced,
    ),
    (
        "invalid_service_account_name_is_refused",
        conformance::invalid_service_account_name_is_refused,
    ),
    (
        "scale_to_zero_and_back",
        conformance::lifecycle::scale_to_zero_and_back,
    ),
    (
        "deleting_a_service_removes_its_children_and_its_host",
        conformance::lifecycle::deleting_a_service_removes_its_children_and_its_host,
    ),
    (
        "a_deleted_replica_pod_is_confirmed_by_its_node_and_made_again",
        conformance::lifecycle::a_deleted_replica_pod_is_confirmed_by_its_node_and_made_again,
    ),
    (
        "kubectl_prints_knative_columns_and_explains_the_schema",
        conformance::api::kubectl_prints_knative_columns_and_explains_the_schema,
    ),
    (
        "admission_refusals_are_knatives_webhook_denials",
        conformance::api::admission_refusals_are_knatives_webhook_denials,
    ),
    (
        "a_list_file_is_applied_item_by_item",
        conformance::api::a_list_file_is_applied_item_by_item,
    ),
    (
        "replica_demands_beyond_the_bounds_are_refused",
        conformance::api::replica_demands_beyond_the_bounds_are_refused,
    ),
    (
        "docker_registry_secrets_are_made_and_checked",
        conformance::api::docker_registry_secrets_are_made_and_checked,
    ),
    (
        "instance_reuse_is_the_revisions_choice",
        conformance::guests::instance_reuse_is_the_revisions_choice,
    ),
    (
        "a_wasip3_component_serves",
        conformance::guests::a_wasip3_component_serves,
    ),
];

/// The node's ServiceAccount may not create Services: the real server answers 403.
fn node_identity_cannot_create_services(cluster: &WispOnKube, kube: &Kube) {
    let output = wisp_loadtests::kube_env::kubectl(
        &cluster.node_kubeconfig(),
        tempfile::tempdir().expect("kubectl home").path(),
        &["create", "--namespace", kube.namespace(), "-f", "-"],
        Some(&ksvc("forbidden", &image("hello"))),
    )
    .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the node created a Service");
    assert!(
        stderr.contains("Error from server (Forbidden)")
            && stderr.contains(
                "User \"system:serviceaccount:wisp-system:wisp-node\" cannot create resource \
                 \"services\" in API group \"serving.knative.dev\""
            ),
        "{stderr}"
    );
    assert!(kube.get("ksvc", "forbidden").is_none());
}

/// A namespace name for a case: a DNS label of at most 63 characters.
fn namespace_for(case: &str) -> String {
    let name: String = case.replace('_', "-").chars().take(60).collect();
    name.trim_end_matches('-').to_owned()
}

/// Runs `body` as one trial, turning a panic into a failure with its message.
fn run(body: impl FnOnce()) -> Result<(), Failed> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the case panicked".to_owned());
        Failed::from(message)
    })
}

/// The shared control plane, or why it could not start (every case then fails with that).
type Started = Result<WispOnKube, String>;

fn started(cluster: &OnceLock<Started>) -> Result<&WispOnKube, Failed> {
    cluster
        .get_or_init(|| {
            let mut started = None;
            run(|| started = Some(WispOnKube::start()))
                .map_err(|failed| format!("{failed:?}"))
                .and_then(|()| started.ok_or_else(|| "no control plane".to_owned()))
        })
        .as_ref()
        .map_err(|problem| {
            Failed::from(format!(
                "the genuine control plane did not start: {problem}"
            ))
        })
}

fn main() {
    let arguments = Arguments::from_args();
    // Started by the first case that runs, so `--list` or a filter that matches nothing costs
    // no control plane.
    let cluster: Arc<OnceLock<Started>> = Arc::new(OnceLock::new());
    let mut trials: Vec<Trial> = CASES
        .iter()
        .map(|&(name, case)| {
            let cluster = cluster.clone();
            Trial::test(name, move || {
                let cluster = started(&cluster)?;
                run(|| case(&cluster.kube(&namespace_for(name))))
            })
        })
        .collect();
    {
        let cluster = cluster.clone();
        trials.push(Trial::test(
            "node_identity_cannot_create_services",
            move || {
                let cluster = started(&cluster)?;
                run(|| {
                    let kube = cluster.kube("node-identity");
                    node_identity_cannot_create_services(cluster, &kube);
                })
            },
        ));
    }
    let conclusion = libtest_mimic::run(&arguments, trials);
    // Stop the control plane and wisp's processes before exiting (exit skips destructors).
    if let Ok(mut cluster) = Arc::try_unwrap(cluster) {
        drop(cluster.take());
    }
    conclusion.exit();
}
