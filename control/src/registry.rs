//! The resource registry: one static description of every resource the API server serves.
//!
//! Everything that must agree about a resource — discovery (what kubectl resolves `ksvc` with),
//! routing (which URLs exist), the store key, which verbs are allowed, whether `/status` exists
//! and which columns a server-side Table shows — reads it from here, so adding a resource or a
//! short name is one edit and the documents cannot drift apart. The data follows
//! `shared/reference/kubernetes-api.md` §1.2 (names, short names, categories), §4 (printer
//! columns) and Knative's CRDs; it is plain data with no I/O.

/// The core ("legacy") API group's name: empty, served under `/api` rather than `/apis`.
pub const CORE_GROUP: &str = "";

/// Knative Serving's API group.
pub const SERVING_GROUP: &str = "serving.knative.dev";

/// The built-in group of Leases (leader election, node heartbeats).
pub const COORDINATION_GROUP: &str = "coordination.k8s.io";

/// Verbs of a fully writable resource, in the order the real API server lists them (kubectl
/// ignores the order; keeping the upstream one makes responses diff cleanly against it).
///
/// `deletecollection` is advertised like the real server does (reference §1.2); kubectl itself
/// never sends it (`delete --all` lists and deletes one by one), kube-rs `delete_collection` does.
pub const WRITABLE_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// Verbs of a read-only resource (pods, nodes): wisp runs no kubelet, so these are reported,
/// never written through the API.
pub const READ_ONLY_VERBS: &[&str] = &["get", "list", "watch"];

/// Verbs of a `<plural>/status` subresource.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// Where a printer column's cell comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellSource {
    /// A CRD-style JSONPath (`additionalPrinterColumns[].jsonPath`), evaluated on the object.
    JsonPath(&'static str),
    /// A value the real API server computes in Go for built-in kinds, which no single JSONPath
    /// expresses (e.g. a pod's `1/1` READY). The Table builder implements each variant.
    Derived(Derived),
}

/// The computed cells of built-in kinds' Tables (reference §4: the columns the real server
/// prints for namespaces, pods and nodes; configmaps and events as upstream prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// Pod READY: `<ready containers>/<containers>`.
    PodReady,
    /// Pod RESTARTS: the sum of `status.containerStatuses[].restartCount`.
    PodRestarts,
    /// Node STATUS: `Ready`/`NotReady`/`Unknown` from the `Ready` condition.
    NodeStatus,
    /// Node ROLES: the `node-role.kubernetes.io/<role>` label suffixes, or `<none>`.
    NodeRoles,
    /// ConfigMap DATA: the number of keys in `data` and `binaryData`.
    ConfigMapData,
    /// Event OBJECT: `<kind lowercased>/<name>` of `involvedObject`.
    EventObject,
    /// Lease HOLDER: `spec.holderIdentity`, empty (not `<none>`) when the lease is free.
    LeaseHolder,
}

/// One Table column, as a CRD's `additionalPrinterColumns` entry describes it.
///
/// The leading `Name` column is not listed: the Table builder always prepends it (the CRD
/// API server does the same), so listing it here would print it twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrinterColumn {
    /// The header as the server sends it; kubectl upper-cases it (`LatestCreated` → `LATESTCREATED`).
    pub name: &'static str,
    /// The OpenAPI type of the cell: `string`, `integer`, `date`, …
    pub type_: &'static str,
    /// Where the cell's value comes from.
    pub source: CellSource,
    /// 0 = always shown, > 0 = only with `-o wide`.
    pub priority: u32,
}

/// Shorthand for a priority-0 JSONPath column, which is what almost every column is.
const fn col(name: &'static str, type_: &'static str, path: &'static str) -> PrinterColumn {
    PrinterColumn {
        name,
        type_,
        source: CellSource::JsonPath(path),
        priority: 0,
    }
}

/// Shorthand for a string column shown only with `-o wide` (priority 1).
const fn wide(name: &'static str, path: &'static str) -> PrinterColumn {
    PrinterColumn {
        name,
        type_: "string",
        source: CellSource::JsonPath(path),
        priority: 1,
    }
}

/// Shorthand for a priority-0 computed column.
const fn derived(name: &'static str, type_: &'static str, d: Derived) -> PrinterColumn {
    PrinterColumn {
        name,
        type_,
        source: CellSource::Derived(d),
        priority: 0,
    }
}

/// One served resource (a group/version/plural), with all it needs for discovery, routing,
/// authorisation of verbs and Table output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group; [`CORE_GROUP`] (`""`) for the core group.
    pub group: &'static str,
    /// API version within the group, e.g. `v1`.
    pub version: &'static str,
    /// The URL segment and discovery `name`, e.g. `services`.
    pub plural: &'static str,
    /// Discovery `singularName`, e.g. `service`.
    pub singular: &'static str,
    /// The object kind, e.g. `Service`.
    pub kind: &'static str,
    /// The kind of a list response, e.g. `ServiceList`.
    pub list_kind: &'static str,
    /// Whether objects live in a namespace (`/namespaces/{ns}/…` URLs) or are cluster-scoped.
    pub namespaced: bool,
    /// Short names kubectl resolves (`ksvc`), in the order the upstream definitions give them.
    pub short_names: &'static [&'static str],
    /// Categories (`kubectl get all`, `kubectl get knative`).
    pub categories: &'static [&'static str],
    /// Verbs allowed on the main resource.
    pub verbs: &'static [&'static str],
    /// Whether a `/status` subresource exists (with [`STATUS_VERBS`]).
    pub has_status: bool,
    /// Whether the API only reports these objects (get/list/watch) and refuses writes.
    pub read_only: bool,
    /// Table columns after `Name`.
    pub columns: &'static [PrinterColumn],
}

impl Resource {
    /// `group/version`, or just `version` for the core group: the `apiVersion` of objects and
    /// the `groupVersion` of discovery documents.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name the store files objects under (see `store::ObjectKey`): `group/plural`, or the
    /// bare plural for the core group.
    pub fn store_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}/{}", self.group, self.plural)
        }
    }

    /// Whether `verb` is allowed on the main resource.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Whether the kind is one of Kubernetes' own (the core group or a `*.k8s.io` group, which
    /// custom resources may not use) rather than a custom resource like Knative's: only built-in
    /// kinds take strategic merge patches, which is what `kubectl apply` sends them.
    pub fn built_in(&self) -> bool {
        self.group.is_empty() || self.group.ends_with(".k8s.io")
    }
}

/// Knative's Ready-condition columns, shared by every Knative kind (reference §4).
const READY: PrinterColumn = col(
    "Ready",
    "string",
    ".status.conditions[?(@.type=='Ready')].status",
);
const REASON: PrinterColumn = col(
    "Reason",
    "string",
    ".status.conditions[?(@.type=='Ready')].reason",
);
const LATEST_CREATED: PrinterColumn = col(
    "LatestCreated",
    "string",
    ".status.latestCreatedRevisionName",
);
const LATEST_READY: PrinterColumn = col("LatestReady", "string", ".status.latestReadyRevisionName");
const URL: PrinterColumn = col("URL", "string", ".status.url");
/// Built-in kinds end with AGE; Knative kinds do not (custom columns replace the default Age).
const AGE: PrinterColumn = col("Age", "date", ".metadata.creationTimestamp");

/// The categories every Knative Serving kind belongs to.
const KNATIVE_CATEGORIES: &[&str] = &["all", "knative", "serving"];

/// Every served resource. Order matters only for discovery output: Knative first within its
/// group, core kinds in the order `kubectl api-resources` would show them.
static RESOURCES: &[Resource] = &[
    Resource {
        group: SERVING_GROUP,
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        list_kind: "ServiceList",
        namespaced: true,
        short_names: &["kservice", "ksvc"],
        categories: KNATIVE_CATEGORIES,
        verbs: WRITABLE_VERBS,
        has_status: true,
        read_only: false,
        columns: &[URL, LATEST_CREATED, LATEST_READY, READY, REASON],
    },
    Resource {
        group: SERVING_GROUP,
        version: "v1",
        plural: "configurations",
        singular: "configuration",
        kind: "Configuration",
        list_kind: "ConfigurationList",
        namespaced: true,
        short_names: &["config", "cfg"],
        categories: KNATIVE_CATEGORIES,
        verbs: WRITABLE_VERBS,
        has_status: true,
        read_only: false,
        columns: &[LATEST_CREATED, LATEST_READY, READY, REASON],
    },
    Resource {
        group: SERVING_GROUP,
        version: "v1",
        plural: "revisions",
        singular: "revision",
        kind: "Revision",
        list_kind: "RevisionList",
        namespaced: true,
        short_names: &["rev"],
        categories: KNATIVE_CATEGORIES,
        verbs: WRITABLE_VERBS,
        has_status: true,
        read_only: false,
        columns: &[
            col(
                "Config Name",
                "string",
                ".metadata.labels['serving\\.knative\\.dev/configuration']",
            ),
            col(
                "Generation",
                "string",
                ".metadata.labels['serving\\.knative\\.dev/configurationGeneration']",
            ),
            READY,
            REASON,
            col("Actual Replicas", "integer", ".status.actualReplicas"),
            col("Desired Replicas", "integer", ".status.desiredReplicas"),
        ],
    },
    Resource {
        group: SERVING_GROUP,
        version: "v1",
        plural: "routes",
        singular: "route",
        kind: "Route",
        list_kind: "RouteList",
        namespaced: true,
        short_names: &["rt"],
        categories: KNATIVE_CATEGORIES,
        verbs: WRITABLE_VERBS,
        has_status: true,
        read_only: false,
        columns: &[URL, READY, REASON],
    },
    Resource {
        group: CORE_GROUP,
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        list_kind: "NamespaceList",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        // The real server has no deletecollection on namespaces.
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        // Namespaces carry `status.phase` (Active/Terminating), written by the server.
        has_status: true,
        read_only: false,
        columns: &[col("Status", "string", ".status.phase"), AGE],
    },
    Resource {
        group: CORE_GROUP,
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        list_kind: "ConfigMapList",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        verbs: WRITABLE_VERBS,
        has_status: false,
        read_only: false,
        columns: &[derived("Data", "string", Derived::ConfigMapData), AGE],
    },
    Resource {
        group: CORE_GROUP,
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        list_kind: "SecretList",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: WRITABLE_VERBS,
        has_status: false,
        read_only: false,
        columns: &[
            col("Type", "string", ".type"),
            derived("Data", "string", Derived::ConfigMapData),
            AGE,
        ],
    },
    Resource {
        group: CORE_GROUP,
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        list_kind: "PodList",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: READ_ONLY_VERBS,
        // Read-only: nothing outside the server writes pod status, so no subresource.
        has_status: false,
        read_only: true,
        columns: &[
            derived("Ready", "string", Derived::PodReady),
            col("Status", "string", ".status.phase"),
            derived("Restarts", "string", Derived::PodRestarts),
            AGE,
            // `-o wide`, as the real server's pod columns: where each replica runs.
            wide("IP", ".status.podIP"),
            wide("Node", ".spec.nodeName"),
        ],
    },
    Resource {
        group: CORE_GROUP,
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        list_kind: "NodeList",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        verbs: READ_ONLY_VERBS,
        has_status: false,
        read_only: true,
        columns: &[
            derived("Status", "string", Derived::NodeStatus),
            derived("Roles", "string", Derived::NodeRoles),
            AGE,
            col("Version", "string", ".status.nodeInfo.kubeletVersion"),
        ],
    },
    Resource {
        group: CORE_GROUP,
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        list_kind: "EventList",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: WRITABLE_VERBS,
        has_status: false,
        read_only: false,
        columns: &[
            col("Last Seen", "date", ".lastTimestamp"),
            col("Type", "string", ".type"),
            col("Reason", "string", ".reason"),
            derived("Object", "string", Derived::EventObject),
            col("Message", "string", ".message"),
        ],
    },
    Resource {
        group: COORDINATION_GROUP,
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        list_kind: "LeaseList",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: WRITABLE_VERBS,
        has_status: false,
        read_only: false,
        columns: &[derived("Holder", "string", Derived::LeaseHolder), AGE],
    },
];

/// Every served resource, core and Knative.
pub fn resources() -> &'static [Resource] {
    RESOURCES
}

/// The resources of one group/version, in registry order (empty if it is not served).
pub fn resources_in(group: &str, version: &str) -> impl Iterator<Item = &'static Resource> {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// The served API groups other than core, each once, in registry order (`/apis` lists these).
pub fn named_groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}

/// The versions served for `group`, in preference order (registry order; today always `v1`).
pub fn versions_of(group: &str) -> Vec<&'static str> {
    let mut versions: Vec<&'static str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        if !versions.contains(&r.version) {
            versions.push(r.version);
        }
    }
    versions
}

/// The resource a URL names: exact group, version and plural (URLs are case-sensitive).
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource serving `kind` in `group` (for a body's `apiVersion`/`kind`, ownerReferences,
/// or OpenAPI GVKs). Kinds are unique per group here.
pub fn lookup_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// Resolves a name the way kubectl does from discovery: plural, singular or short name,
/// case-insensitively, optionally qualified with the group (`ksvc.serving.knative.dev`).
/// Used by tests and tooling; the server itself only routes by [`lookup`].
pub fn resolve(name: &str) -> Option<&'static Resource> {
    let name = name.to_ascii_lowercase();
    let matches =
        |r: &Resource, n: &str| r.plural == n || r.singular == n || r.short_names.contains(&n);
    RESOURCES.iter().find(|r| matches(r, &name)).or_else(|| {
        let (short, group) = name.split_once('.')?;
        RESOURCES
            .iter()
            .find(|r| !r.group.is_empty() && r.group == group && matches(r, short))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_singulars_and_plurals_resolve() {
        let cases = [
            ("ksvc", "services"),
            ("kservice", "services"),
            ("KSVC", "services"),
            ("service", "services"),
            ("config", "configurations"),
            ("cfg", "configurations"),
            ("rev", "revisions"),
            ("rt", "routes"),
            ("ns", "namespaces"),
            ("cm", "configmaps"),
            ("po", "pods"),
            ("no", "nodes"),
            ("ev", "events"),
            ("ksvc.serving.knative.dev", "services"),
            ("routes.serving.knative.dev", "routes"),
        ];
        for (name, plural) in cases {
            let r = resolve(name).unwrap_or_else(|| panic!("{name} did not resolve"));
            assert_eq!(r.plural, plural, "{name}");
        }
        assert!(resolve("deployments").is_none());
        assert!(resolve("ksvc.apps").is_none());
    }

    #[test]
    fn names_are_unambiguous() {
        // kubectl refuses ambiguous short names; make sure no two resources share any name.
        let mut seen = Vec::new();
        for r in resources() {
            for n in [r.plural, r.singular].iter().chain(r.short_names) {
                assert!(!seen.contains(n), "{n} used twice");
                seen.push(n);
            }
        }
    }

    #[test]
    fn lookups_by_url_and_kind() {
        let ksvc = lookup(SERVING_GROUP, "v1", "services").expect("services");
        assert_eq!(ksvc.kind, "Service");
        assert!(!ksvc.built_in());
        assert_eq!(ksvc.api_version(), "serving.knative.dev/v1");
        assert_eq!(ksvc.store_resource(), "serving.knative.dev/services");
        assert!(lookup(SERVING_GROUP, "v2", "services").is_none());
        assert!(lookup(CORE_GROUP, "v1", "services").is_none());

        let ns = lookup_kind(CORE_GROUP, "Namespace").expect("Namespace");
        assert_eq!(ns.api_version(), "v1");
        assert_eq!(ns.store_resource(), "namespaces");
        assert!(!ns.namespaced);
        assert_eq!(
            lookup_kind(SERVING_GROUP, "Revision").map(|r| r.plural),
            Some("revisions")
        );
        assert!(lookup_kind(CORE_GROUP, "Service").is_none());
    }

    #[test]
    fn read_only_resources_only_read() {
        for r in resources() {
            if r.read_only {
                assert_eq!(r.verbs, READ_ONLY_VERBS, "{}", r.plural);
                assert!(!r.has_status, "{}", r.plural);
                assert!(!r.allows("create") && !r.allows("delete"));
            } else {
                for v in [
                    "get", "list", "watch", "create", "update", "patch", "delete",
                ] {
                    assert!(r.allows(v), "{} lacks {v}", r.plural);
                }
            }
        }
        let read_only: Vec<_> = resources()
            .iter()
            .filter(|r| r.read_only)
            .map(|r| r.plural)
            .collect();
        assert_eq!(read_only, ["pods", "nodes"]);
    }

    #[test]
    fn every_resource_is_fully_described() {
        for r in resources() {
            assert!(!r.plural.is_empty() && !r.singular.is_empty() && !r.kind.is_empty());
            assert_eq!(r.list_kind, format!("{}List", r.kind));
            assert_eq!(r.singular, r.kind.to_ascii_lowercase());
            assert!(!r.columns.is_empty(), "{} has no columns", r.plural);
        }
        assert_eq!(named_groups(), [SERVING_GROUP, COORDINATION_GROUP]);
        assert_eq!(versions_of(SERVING_GROUP), ["v1"]);
        assert_eq!(versions_of(COORDINATION_GROUP), ["v1"]);
        assert_eq!(resources_in(SERVING_GROUP, "v1").count(), 4);
        assert_eq!(resources_in(CORE_GROUP, "v1").count(), 6);
        assert_eq!(resources_in(COORDINATION_GROUP, "v1").count(), 1);
    }

    #[test]
    fn knative_kinds_have_status_categories_and_reference_columns() {
        for r in resources_in(SERVING_GROUP, "v1") {
            assert!(r.has_status && r.namespaced, "{}", r.plural);
            assert_eq!(r.categories, ["all", "knative", "serving"]);
        }
        let headers = |plural: &str| -> Vec<String> {
            lookup(SERVING_GROUP, "v1", plural)
                .map(|r| r.columns.iter().map(|c| c.name.to_uppercase()).collect())
                .unwrap_or_default()
        };
        // kubectl's headers from reference §4.
        assert_eq!(
            headers("services"),
            ["URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"]
        );
        assert_eq!(
            headers("configurations"),
            ["LATESTCREATED", "LATESTREADY", "READY", "REASON"]
        );
        assert_eq!(
            headers("revisions"),
            [
                "CONFIG NAME",
                "GENERATION",
                "READY",
                "REASON",
                "ACTUAL REPLICAS",
                "DESIRED REPLICAS"
            ]
        );
        assert_eq!(headers("routes"), ["URL", "READY", "REASON"]);

        let ksvc = lookup(SERVING_GROUP, "v1", "services").expect("services");
        assert_eq!(ksvc.columns[0].source, CellSource::JsonPath(".status.url"));
        assert_eq!(
            ksvc.columns[3].source,
            CellSource::JsonPath(".status.conditions[?(@.type=='Ready')].status")
        );
        let rev = lookup(SERVING_GROUP, "v1", "revisions").expect("revisions");
        assert_eq!(rev.columns[4].type_, "integer");
    }

    #[test]
    fn core_columns_match_the_real_server() {
        // Reference §4: namespaces NAME STATUS AGE; pods NAME READY STATUS RESTARTS AGE;
        // nodes NAME STATUS ROLES AGE VERSION (NAME is prepended by the Table builder).
        let headers = |plural: &str, priority: u32| -> Vec<String> {
            lookup(CORE_GROUP, "v1", plural)
                .map(|r| {
                    r.columns
                        .iter()
                        .filter(|c| c.priority == priority)
                        .map(|c| c.name.to_uppercase())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(headers("namespaces", 0), ["STATUS", "AGE"]);
        assert_eq!(headers("pods", 0), ["READY", "STATUS", "RESTARTS", "AGE"]);
        // `-o wide` adds where the pod runs (the real server adds nominated node and
        // readiness gates too, which wisp's replicas never have).
        assert_eq!(headers("pods", 1), ["IP", "NODE"]);
        assert_eq!(headers("nodes", 0), ["STATUS", "ROLES", "AGE", "VERSION"]);
    }

    #[test]
    fn leases_are_namespaced_writable_and_print_their_holder() {
        let leases = lookup(COORDINATION_GROUP, "v1", "leases").expect("leases");
        assert_eq!(leases.api_version(), "coordination.k8s.io/v1");
        assert_eq!(leases.store_resource(), "coordination.k8s.io/leases");
        assert!(leases.namespaced && !leases.has_status && !leases.read_only);
        assert!(leases.built_in());
        assert_eq!(leases.verbs, WRITABLE_VERBS);
        assert_eq!(resolve("lease").map(|r| r.kind), Some("Lease"));
        assert_eq!(
            resolve("leases.coordination.k8s.io").map(|r| r.kind),
            Some("Lease")
        );
        // `kubectl get leases`: NAME HOLDER AGE, like the real server's lease printer.
        let headers: Vec<String> = leases
            .columns
            .iter()
            .map(|c| c.name.to_uppercase())
            .collect();
        assert_eq!(headers, ["HOLDER", "AGE"]);
    }
}
