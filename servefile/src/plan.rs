//! From the Services of a file to what the data plane takes: one `RevisionConfig` and one
//! `RouteConfig` per Service, after the checks Knative's admission would make — so that a
//! file `wisp serve` accepts would also be accepted by a Knative cluster, and a bad one is
//! refused before anything starts.
//!
//! A file describes each Service once, so each Service has exactly one revision (named by
//! `spec.template.metadata.name`, or `{service}-00001` as Knative names the first one) and its
//! traffic block can only point at that revision.

use std::collections::HashMap;
use std::path::Path;

use wisp_api::names::{validate_dns1035_label, validate_dns1123_label};
use wisp_api::revision_key::RevisionKey;
use wisp_api::serving::Service;
use wisp_gateway::dataplane::RevisionConfig;
use wisp_gateway::routing::{Domain, RouteConfig, RouteTable, TrafficTarget};
use wisp_gateway::sync::spec::{SpecPath, revision_config};

use crate::file::{ManifestError, ServiceDocument, ServicesFile};

/// Everything to apply, in file order.
#[derive(Debug)]
pub struct ServePlan {
    pub services: Vec<PlannedService>,
}

/// One Service: its revision and its route.
#[derive(Debug)]
pub struct PlannedService {
    pub document: usize,
    pub namespace: String,
    pub name: String,
    pub revision: RevisionConfig,
    pub route: RouteConfig,
}

impl PlannedService {
    /// `namespace/name`, as messages name a Service.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl ServePlan {
    pub fn routes(&self) -> Vec<RouteConfig> {
        self.services.iter().map(|s| s.route.clone()).collect()
    }

    /// The Service a route or revision of `namespace` and `name` belongs to.
    pub fn find_route(&self, namespace: &str, name: &str) -> Option<&PlannedService> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
    }
}

/// Checks every Service of `file` and converts it; returns every problem found (at most one per
/// document, plus clashes between documents).
pub fn plan(file: &ServicesFile, domain: &Domain) -> Result<ServePlan, Vec<ManifestError>> {
    let mut errors = Vec::new();
    let mut services: Vec<PlannedService> = Vec::new();
    let mut by_service: HashMap<(String, String), usize> = HashMap::new();
    let mut by_revision: HashMap<RevisionKey, usize> = HashMap::new();

    for document in &file.documents {
        let planned = match plan_service(document, &file.base_dir) {
            Ok(planned) => planned,
            Err(error) => {
                errors.push(error.located(&file.name, document));
                continue;
            }
        };
        let error = |message: String| {
            ManifestError::new(&file.name, message)
                .in_document(document.index)
                .for_service(planned.id())
        };
        let service_key = (planned.namespace.clone(), planned.name.clone());
        if let Some(first) = by_service.get(&service_key) {
            errors.push(error(format!(
                "document {first} already defines this Service; give one of them another \
                 metadata.name, or merge them"
            )));
            continue;
        }
        if let Some(first) = by_revision.get(&planned.revision.key) {
            errors.push(error(format!(
                "its revision {} is also made by document {first}; give one of them another \
                 spec.template.metadata.name",
                planned.revision.key
            )));
            continue;
        }
        by_service.insert(service_key, document.index);
        by_revision.insert(planned.revision.key.clone(), document.index);
        services.push(planned);
    }

    let plan = ServePlan { services };
    // Hosts can clash across Services (a tag host `a-b` against a Service named `a-b`):
    // the route table finds those.
    let built = RouteTable::build(domain.clone(), plan.routes());
    for problem in built.problems {
        let mut error = ManifestError::new(
            &file.name,
            format!("{}; change the Service name or the tag", problem.problem),
        );
        if let Some(service) = plan.find_route(&problem.namespace, &problem.name) {
            error = error
                .in_document(service.document)
                .for_service(service.id());
        }
        errors.push(error);
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// A problem with one Service, before it is placed in the file.
struct Problem {
    service: Option<String>,
    message: String,
}

impl Problem {
    fn located(self, file: &str, document: &ServiceDocument) -> ManifestError {
        let error = ManifestError::new(file, self.message).in_document(document.index);
        match self.service {
            Some(service) => error.for_service(service),
            None => error,
        }
    }
}

fn plan_service(document: &ServiceDocument, base_dir: &Path) -> Result<PlannedService, Problem> {
    let service = &document.service;
    let anonymous = |message: String| Problem {
        service: None,
        message,
    };
    let name = match service.metadata.name.as_deref() {
        None | Some("") => {
            return Err(anonymous(
                "metadata.name is missing; name the Service (it becomes the host name)".into(),
            ));
        }
        Some(name) => name,
    };
    if let Err(reason) = validate_dns1035_label(name) {
        return Err(anonymous(format!(
            "metadata.name {name:?} is not valid: {reason} (it becomes a DNS label)"
        )));
    }
    let namespace = service.metadata.namespace_or_default();
    if let Err(reason) = validate_dns1123_label(namespace) {
        return Err(anonymous(format!(
            "metadata.namespace {namespace:?} is not valid: {reason}"
        )));
    }
    let id = format!("{namespace}/{name}");
    convert(service, namespace, name, base_dir)
        .map_err(|message| Problem {
            service: Some(id),
            message,
        })
        .map(|(revision, route)| PlannedService {
            document: document.index,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            revision,
            route,
        })
}

/// The revision and route of a Service whose name and namespace are valid.
fn convert(
    service: &Service,
    namespace: &str,
    name: &str,
    base_dir: &Path,
) -> Result<(RevisionConfig, RouteConfig), String> {
    let template = &service.spec.template;
    let spec = &template.spec;
    let revision_name = revision_name(name, template.metadata.name.as_deref())?;

    let mut revision = revision_config(
        RevisionKey::new(namespace, &revision_name),
        spec,
        &template.metadata.annotations,
        base_dir,
        SpecPath("spec.template.spec"),
    )
    .map_err(|error| error.0)?;
    revision.service = name.to_owned();
    revision.configuration = name.to_owned();

    let route = RouteConfig::new(namespace, name, traffic(service, &revision_name)?);
    if let Err(error) = route.validate() {
        return Err(format!(
            "spec.traffic: {}; fix the traffic block",
            error.problem
        ));
    }
    Ok((revision, route))
}

/// `spec.template.metadata.name` if set (Knative requires it to start with `{service}-`),
/// else Knative's name for a first revision.
fn revision_name(service: &str, template_name: Option<&str>) -> Result<String, String> {
    let Some(name) = template_name.filter(|name| !name.is_empty()) else {
        return Ok(format!("{service}-00001"));
    };
    if !name.starts_with(&format!("{service}-")) || name.len() == service.len() + 1 {
        return Err(format!(
            "spec.template.metadata.name {name:?} must start with the Service's name and a dash, \
             e.g. {service}-v1 (Knative's rule)"
        ));
    }
    if let Err(reason) = validate_dns1123_label(name) {
        return Err(format!(
            "spec.template.metadata.name {name:?} is not valid: {reason}"
        ));
    }
    Ok(name.to_owned())
}

/// The route's traffic: all to the revision when the Service has no traffic block; otherwise
/// each entry must point at this file's one revision of the Service.
fn traffic(service: &Service, revision: &str) -> Result<Vec<TrafficTarget>, String> {
    let entries = &service.spec.traffic;
    if entries.is_empty() {
        return Ok(vec![TrafficTarget::new(revision, 100)]);
    }
    let mut targets = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("spec.traffic[{index}]");
        if entry.configuration_name.is_some() {
            return Err(format!(
                "{at}.configurationName is not allowed in a Service; use latestRevision: true"
            ));
        }
        let named = entry
            .revision_name
            .as_deref()
            .filter(|name| !name.is_empty());
        match (entry.latest_revision, named) {
            (Some(true), Some(_)) => {
                return Err(format!(
                    "{at} sets both revisionName and latestRevision: true; keep one of them"
                ));
            }
            (Some(false), None) => {
                return Err(format!(
                    "{at} has latestRevision: false but no revisionName; name the revision \
                     ({revision}) or use latestRevision: true"
                ));
            }
            (_, Some(other)) if other != revision => {
                return Err(format!(
                    "{at}.revisionName {other:?} is not this Service's revision: a services file \
                     holds one revision per Service ({revision}), so name {revision:?} or use \
                     latestRevision: true"
                ));
            }
            _ => {}
        }
        let percent = match entry.percent.unwrap_or(0) {
            percent @ 0..=100 => percent as u32,
            percent => {
                return Err(format!(
                    "{at}.percent is {percent}; it must be from 0 to 100"
                ));
            }
        };
        let mut target = TrafficTarget::new(revision, percent);
        if let Some(tag) = entry.tag.as_deref().filter(|tag| !tag.is_empty()) {
            target = target.tagged(tag);
        }
        targets.push(target);
    }
    let sum: u32 = targets.iter().map(|t| t.percent).sum();
    if sum != 100 {
        return Err(format!(
            "spec.traffic percents sum to {sum}; they must sum to 100"
        ));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests;
