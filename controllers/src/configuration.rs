//! The Configuration controller: one Revision per generation of `spec.template` (named by the
//! user or `{configuration}-{generation:05}`), and the Configuration's status from its
//! revisions: latest created, latest ready (never backwards) and Ready.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::PostParams;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use wisp_api::knative::child_name;
use wisp_api::knative::condition_types::READY;
use wisp_api::knative::conditions::{self, Condition, ConditionStatus};
use wisp_api::knative::labels;
use wisp_api::knative::{Configuration, ConfigurationStatus, Revision, RevisionObjectSpec};

use super::backoff::Backoff;
use super::meta::{self, controller_reference, is_controlled_by};
use super::revision_cache::{RevisionCache, RevisionChanges};
use super::route::PENDING;
use super::shared_watch::Changes;
use super::{Error, RESYNC, log_outcome};

/// What the reconciler shares across reconciles.
struct Context {
    client: Client,
    backoff: Backoff,
    /// Every Configuration (the shared cache), to forget the failures of deleted ones.
    configurations: Store<Configuration>,
    /// Every Revision, kept by the watch that also triggers this controller.
    revisions: RevisionCache,
}

/// The caches this controller reads, shared with the others, and its streams of their changes.
pub(super) struct Watched {
    pub configurations: Store<Configuration>,
    pub configuration_changes: Changes<Configuration>,
    pub revisions: RevisionCache,
    /// The significant changes of `revisions`.
    pub revision_changes: RevisionChanges,
}

/// Runs the controller until the future is dropped.
pub(super) async fn run(client: Client, watched: Watched) {
    let controller = Controller::for_stream(
        watched.configuration_changes,
        watched.configurations.clone(),
    );
    let context = Arc::new(Context {
        client: client.clone(),
        backoff: Backoff::default(),
        configurations: watched.configurations,
        revisions: watched.revisions,
    });
    controller
        .owns_stream(watched.revision_changes)
        .with_config(super::controller_config())
        .run(reconcile, error_policy, context)
        .for_each(|outcome| {
            log_outcome("Configuration", outcome);
            futures::future::ready(())
        })
        .await;
}

fn error_policy(cfg: Arc<Configuration>, error: &Error, context: Arc<Context>) -> Action {
    context.backoff.failed(cfg.as_ref(), error)
}

async fn reconcile(cfg: Arc<Configuration>, context: Arc<Context>) -> Result<Action, Error> {
    context
        .backoff
        .forget_deleted_when_grown(&context.configurations);
    let action = reconcile_configuration(&cfg, &context).await?;
    context.backoff.succeeded(cfg.as_ref());
    Ok(action)
}

async fn reconcile_configuration(cfg: &Configuration, context: &Context) -> Result<Action, Error> {
    if cfg.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let client = &context.client;
    let namespace = meta::namespace(cfg)?;
    let uid = meta::uid(cfg)?;
    let revisions: Api<Revision> = Api::namespaced(client.clone(), &namespace);
    let wanted = revision_name(cfg);

    // The cache first: a Configuration is reconciled on every change of its revisions, and
    // asking the API server each time was most of the GETs of a Service's creation. Only a
    // revision the cache lacks (new, or the cache behind) is asked for before it is created.
    context.revisions.wait_until_ready().await;
    let existing = match context.revisions.get(&namespace, &wanted) {
        Some(cached) => Some(cached),
        None => revisions.get_opt(&wanted).await?.map(Arc::new),
    };
    let created = match existing {
        Some(existing) if is_controlled_by(&existing.metadata, &uid) => {
            Created::Revision(state_of(&existing))
        }
        Some(_) => Created::NameTaken(wanted.clone()),
        None => {
            let desired = desired_revision(cfg, &wanted)?;
            match revisions.create(&PostParams::default(), &desired).await {
                Ok(made) => {
                    tracing::info!(namespace, revision = %wanted, "created revision");
                    Created::Revision(state_of(&made))
                }
                // The server refused the revision itself (admission): retrying cannot help
                // until the template changes, so say why on the Configuration.
                Err(kube::Error::Api(status)) if matches!(status.code, 400 | 403 | 422) => {
                    Created::Failed(status.message.clone())
                }
                Err(error) => return Err(error.into()),
            }
        }
    };

    let owned: Vec<RevisionState> = context
        .revisions
        .of_configuration(&namespace, &cfg.name_any())
        .iter()
        .filter(|r| is_controlled_by(&r.metadata, &uid))
        .map(|r| state_of(r))
        .collect();

    let old = cfg.status.clone().unwrap_or_default();
    let status = next_status(
        &old,
        cfg.metadata.generation,
        &created,
        &owned,
        &meta::now(),
    );
    if status != old {
        let mut updated = cfg.clone();
        updated.status = Some(status);
        Api::<Configuration>::namespaced(client.clone(), &namespace)
            .replace_status(&cfg.name_any(), &PostParams::default(), &updated)
            .await?;
    }
    Ok(Action::requeue(RESYNC))
}

/// The revision the Configuration's current generation makes: the template's own name when
/// the user chose one, else Knative's `{configuration}-{generation:05}`.
pub(super) fn revision_name(cfg: &Configuration) -> String {
    match cfg
        .spec
        .template
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        Some(chosen) => chosen.to_owned(),
        None => child_name::revision_name(&cfg.name_any(), cfg.metadata.generation.unwrap_or(0)),
    }
}

/// The Revision named `name` for the Configuration's current template: the template's
/// metadata and spec, the configuration (and service) labels, the creator, and a controller
/// reference to the Configuration.
pub(super) fn desired_revision(cfg: &Configuration, name: &str) -> Result<Revision, Error> {
    let template = &cfg.spec.template;
    let cfg_labels = cfg.labels();
    let mut labels = template.metadata.labels.clone();
    labels.insert(labels::CONFIGURATION.to_owned(), cfg.name_any());
    labels.insert(
        labels::CONFIGURATION_GENERATION.to_owned(),
        cfg.metadata.generation.unwrap_or(0).to_string(),
    );
    labels.insert(labels::CONFIGURATION_UID.to_owned(), meta::uid(cfg)?);
    if let Some(service) = cfg_labels.get(labels::SERVICE) {
        labels.insert(labels::SERVICE.to_owned(), service.clone());
        if let Some(service_uid) = cfg_labels.get(labels::SERVICE_UID) {
            labels.insert(labels::SERVICE_UID.to_owned(), service_uid.clone());
        }
    }
    // As Knative's: routes label it `active` once they send it traffic.
    labels.insert(labels::ROUTING_STATE.to_owned(), PENDING.to_owned());
    let mut annotations = template.metadata.annotations.clone();
    annotations.insert(labels::ROUTING_STATE_MODIFIED.to_owned(), meta::now());
    let cfg_annotations = cfg.annotations();
    if let Some(creator) = cfg_annotations
        .get(labels::LAST_MODIFIER)
        .or_else(|| cfg_annotations.get(labels::CREATOR))
    {
        annotations.insert(labels::CREATOR.to_owned(), creator.clone());
    }
    let mut revision = Revision::new(
        name,
        RevisionObjectSpec {
            fields: template.spec.clone(),
        },
    );
    revision.metadata.namespace = cfg.metadata.namespace.clone();
    revision.metadata.labels = Some(labels);
    revision.metadata.annotations = non_empty(annotations);
    revision.metadata.owner_references = Some(vec![controller_reference(cfg)?]);
    Ok(revision)
}

fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

/// What the configuration controller needs to know of one revision.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct RevisionState {
    pub name: String,
    /// The `configurationGeneration` label: which template the revision was made from.
    pub generation: Option<i64>,
    /// Its `Ready` condition, if the data plane has reported one.
    pub ready: Option<Condition>,
}

/// The [`RevisionState`] of `revision`.
pub(super) fn state_of(revision: &Revision) -> RevisionState {
    RevisionState {
        name: revision.name_any(),
        generation: revision
            .labels()
            .get(labels::CONFIGURATION_GENERATION)
            .and_then(|g| g.parse().ok()),
        ready: revision
            .status
            .as_ref()
            .and_then(|s| conditions::get(&s.conditions, READY))
            .cloned(),
    }
}

/// What became of the revision for the current generation.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Created {
    /// It exists and is this Configuration's.
    Revision(RevisionState),
    /// The chosen name belongs to a revision this Configuration does not own.
    NameTaken(String),
    /// The API server refused to create it, saying why.
    Failed(String),
}

/// The newest (by generation) Ready revision, or `stored` when that is at least as new:
/// latestReady never moves backwards, even when a newer revision later stops being ready.
pub(super) fn latest_ready(revisions: &[RevisionState], stored: Option<&str>) -> Option<String> {
    let is_ready = |r: &&RevisionState| r.ready.as_ref().is_some_and(Condition::is_true);
    let best = revisions
        .iter()
        .filter(is_ready)
        .max_by(|a, b| (a.generation, &a.name).cmp(&(b.generation, &b.name)));
    let stored_generation = stored.and_then(|name| {
        revisions
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.generation)
    });
    match (stored, best) {
        (Some(stored), Some(best)) if best.generation <= stored_generation => {
            Some(stored.to_owned())
        }
        (_, Some(best)) => Some(best.name.clone()),
        (stored, None) => stored.map(str::to_owned),
    }
}

/// The Configuration's `Ready`: its latest created revision's readiness, with a failed
/// revision's reason folded into a message that names it.
pub(super) fn ready_condition(created: &Created) -> Condition {
    match created {
        Created::Revision(revision) => match &revision.ready {
            Some(ready) if ready.status == ConditionStatus::True => {
                Condition::new(READY, ConditionStatus::True)
            }
            Some(ready) if ready.status == ConditionStatus::False => {
                Condition::new(READY, ConditionStatus::False).because(
                    "RevisionFailed",
                    format!(
                        "Revision {:?} failed with message: {}.",
                        revision.name,
                        ready.message.as_deref().unwrap_or_default()
                    ),
                )
            }
            _ => Condition::new(READY, ConditionStatus::Unknown),
        },
        Created::NameTaken(name) => Condition::new(READY, ConditionStatus::False).because(
            "RevisionNameTaken",
            format!("There is an existing Revision {name:?} that we do not own."),
        ),
        Created::Failed(message) => Condition::new(READY, ConditionStatus::False).because(
            "RevisionFailed",
            format!("Revision creation failed with message: {message}."),
        ),
    }
}

/// The Configuration's next status from the stored one.
pub(super) fn next_status(
    old: &ConfigurationStatus,
    generation: Option<i64>,
    created: &Created,
    revisions: &[RevisionState],
    now: &str,
) -> ConfigurationStatus {
    let mut status = old.clone();
    if let Created::Revision(revision) = created {
        status.latest_created_revision_name = Some(revision.name.clone());
    }
    status.latest_ready_revision_name =
        latest_ready(revisions, old.latest_ready_revision_name.as_deref());
    status.observed_generation = generation;
    conditions::set(&mut status.conditions, ready_condition(created), now);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_api::knative::{ConfigurationSpec, Template, TemplateMeta};

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn configuration(generation: i64) -> Configuration {
        let spec: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({"containers": [{"image": "a.wasm"}]}))
                .expect("object");
        let mut cfg = Configuration::new(
            "hello",
            ConfigurationSpec {
                template: Template {
                    metadata: TemplateMeta {
                        name: None,
                        labels: BTreeMap::from([("team".into(), "a".into())]),
                        annotations: BTreeMap::from([(
                            "autoscaling.knative.dev/target".into(),
                            "10".into(),
                        )]),
                    },
                    spec,
                },
            },
        );
        cfg.metadata.namespace = Some("default".into());
        cfg.metadata.uid = Some("cfg-uid".into());
        cfg.metadata.generation = Some(generation);
        cfg
    }

    fn state(name: &str, generation: i64, ready: ConditionStatus) -> RevisionState {
        RevisionState {
            name: name.into(),
            generation: Some(generation),
            ready: Some(Condition::new(READY, ready)),
        }
    }

    #[test]
    fn names_come_from_the_generation_or_the_template() {
        assert_eq!(revision_name(&configuration(3)), "hello-00003");
        let mut byo = configuration(3);
        byo.spec.template.metadata.name = Some("hello-blue".into());
        assert_eq!(revision_name(&byo), "hello-blue");
    }

    #[test]
    fn a_revision_carries_the_template_and_its_parents() {
        let mut cfg = configuration(2);
        cfg.metadata.labels = Some(BTreeMap::from([
            (labels::SERVICE.into(), "hello".into()),
            (labels::SERVICE_UID.into(), "svc-uid".into()),
            ("juicy".into(), "no".into()),
        ]));
        cfg.metadata.annotations = Some(BTreeMap::from([
            (labels::CREATOR.into(), "alice".into()),
            (labels::LAST_MODIFIER.into(), "bob".into()),
        ]));
        let revision = desired_revision(&cfg, "hello-00002").expect("builds");
        let labels = revision.labels();
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            labels
                .get(labels::CONFIGURATION_GENERATION)
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(
            labels.get(labels::CONFIGURATION_UID).map(String::as_str),
            Some("cfg-uid")
        );
        assert_eq!(
            labels.get(labels::SERVICE).map(String::as_str),
            Some("hello")
        );
        assert_eq!(
            labels.get(labels::SERVICE_UID).map(String::as_str),
            Some("svc-uid")
        );
        assert!(
            !labels.contains_key("juicy"),
            "the Configuration's own labels stay on it"
        );
        assert_eq!(
            labels.get(labels::ROUTING_STATE).map(String::as_str),
            Some(PENDING)
        );
        let annotations = revision.annotations();
        assert_eq!(
            annotations.get(labels::CREATOR).map(String::as_str),
            Some("bob"),
            "the revision's creator is whoever last changed the template"
        );
        assert_eq!(
            annotations
                .get("autoscaling.knative.dev/target")
                .map(String::as_str),
            Some("10")
        );
        let owner = &revision
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Configuration", "cfg-uid")
        );
        assert_eq!(revision.spec.fields, cfg.spec.template.spec);
    }

    #[test]
    fn a_configuration_without_a_service_makes_no_service_labels() {
        let revision = desired_revision(&configuration(1), "hello-00001").expect("builds");
        assert!(!revision.labels().contains_key(labels::SERVICE));
        assert!(revision.annotations().get(labels::CREATOR).is_none());
    }

    #[test]
    fn latest_ready_is_the_newest_ready_and_never_goes_back() {
        let revisions = [
            state("hello-00001", 1, ConditionStatus::True),
            state("hello-00002", 2, ConditionStatus::Unknown),
        ];
        assert_eq!(
            latest_ready(&revisions, None).as_deref(),
            Some("hello-00001")
        );
        let revisions = [
            state("hello-00001", 1, ConditionStatus::True),
            state("hello-00002", 2, ConditionStatus::True),
        ];
        assert_eq!(
            latest_ready(&revisions, Some("hello-00001")).as_deref(),
            Some("hello-00002")
        );
        // 00002 stopped being ready: latestReady stays on it rather than going back to 00001.
        let revisions = [
            state("hello-00001", 1, ConditionStatus::True),
            state("hello-00002", 2, ConditionStatus::False),
        ];
        assert_eq!(
            latest_ready(&revisions, Some("hello-00002")).as_deref(),
            Some("hello-00002")
        );
        assert_eq!(latest_ready(&[], None), None);
    }

    #[test]
    fn ready_follows_the_latest_created_revision() {
        let ready = ready_condition(&Created::Revision(state(
            "hello-00001",
            1,
            ConditionStatus::True,
        )));
        assert!(ready.is_true());
        let unknown = ready_condition(&Created::Revision(RevisionState {
            name: "hello-00001".into(),
            generation: Some(1),
            ready: None,
        }));
        assert_eq!(unknown.status, ConditionStatus::Unknown);
        let failed = ready_condition(&Created::Revision(RevisionState {
            name: "hello-00002".into(),
            generation: Some(2),
            ready: Some(
                Condition::new(READY, ConditionStatus::False)
                    .because("ContainerMissing", "Unable to fetch image \"x\": gone"),
            ),
        }));
        assert_eq!(failed.status, ConditionStatus::False);
        assert_eq!(failed.reason.as_deref(), Some("RevisionFailed"));
        assert_eq!(
            failed.message.as_deref(),
            Some(
                "Revision \"hello-00002\" failed with message: Unable to fetch image \"x\": gone."
            )
        );
        let taken = ready_condition(&Created::NameTaken("hello-blue".into()));
        assert_eq!(taken.reason.as_deref(), Some("RevisionNameTaken"));
    }

    #[test]
    fn status_names_the_revisions_and_the_generation() {
        let created = Created::Revision(state("hello-00002", 2, ConditionStatus::Unknown));
        let revisions = [
            state("hello-00001", 1, ConditionStatus::True),
            state("hello-00002", 2, ConditionStatus::Unknown),
        ];
        let old = ConfigurationStatus::default();
        let status = next_status(&old, Some(2), &created, &revisions, NOW);
        assert_eq!(
            status.latest_created_revision_name.as_deref(),
            Some("hello-00002")
        );
        assert_eq!(
            status.latest_ready_revision_name.as_deref(),
            Some("hello-00001")
        );
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            conditions::get(&status.conditions, READY).map(|c| c.status),
            Some(ConditionStatus::Unknown)
        );
        // Reconciling again with nothing new changes nothing (so nothing is written).
        assert_eq!(
            next_status(&status, Some(2), &created, &revisions, "later"),
            status
        );
        // A taken name leaves latestCreated where it was.
        let taken = next_status(
            &status,
            Some(3),
            &Created::NameTaken("hello-x".into()),
            &revisions,
            NOW,
        );
        assert_eq!(
            taken.latest_created_revision_name.as_deref(),
            Some("hello-00002")
        );
    }
}
