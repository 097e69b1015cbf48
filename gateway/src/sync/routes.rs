//! Routes: the gateway's table is every Route's `status.traffic`, republished at most every
//! [`DEBOUNCE`] however many Routes change; once the gateway serves a Route's current traffic
//! (and has every revision it names), this node reports so in the Route's `status.annotations`
//! (the Route controller sets `IngressReady` once every Ready node did).
//!
//! Each sync looks only at the Routes that changed since the last one (and those waiting for a
//! revision, when what is served changed): with 10,000 Routes, going over all of them every
//! 50 ms during an apply was the node's largest cost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::time::Instant;
use wisp_api::knative::Route;

use super::Shared;
use super::route_table::{RouteKey, revisions_of, route_config, route_key};
use super::status;
use super::write::write_status;
use crate::dataplane::RouteChange;
use crate::routing::RouteConfig;

/// How long changes are gathered before the table is rebuilt: a burst of Route updates (a
/// thousand Services applied at once) costs one rebuild, not a thousand.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// Route status writes in flight at once.
const CONCURRENT_WRITES: usize = 16;

/// First wait before a Route status write that failed is tried again; doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Watches Routes in every namespace until dropped. Sets `loaded` once a table built from the
/// first Route list, after every listed revision had its first attempt (`revisions_loaded`),
/// is programmed and its status writes are done.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut revisions_loaded: watch::Receiver<bool>,
    loaded: watch::Sender<bool>,
) {
    let api: Api<Route> = Api::all(shared.client.clone());
    let mut table = Table::default();
    let mut listed = false;
    let mut revisions_ready = false;
    let mut backoff = FIRST_RETRY;
    loop {
        let mut events = watcher::watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        // A relist is gathered whole before it replaces the routes, so the table never
        // shrinks to a partial list.
        let mut listing: Option<HashMap<RouteKey, Route>> = None;
        let mut due: Option<Instant> = None;
        loop {
            tokio::select! {
                event = events.next() => {
                    match event {
                        None => break,
                        Some(Ok(Event::Init)) => listing = Some(HashMap::new()),
                        Some(Ok(Event::InitApply(route))) => {
                            if let Some(listing) = listing.as_mut() {
                                listing.insert(route_key(&route), route);
                            }
                            continue;
                        }
                        Some(Ok(Event::InitDone)) => {
                            table.relisted(listing.take().unwrap_or_default());
                            listed = true;
                        }
                        Some(Ok(Event::Apply(route))) => table.applied(route),
                        Some(Ok(Event::Delete(route))) => table.deleted(&route),
                        Some(Err(error)) => {
                            tracing::warn!(%error, "watching Routes");
                            continue;
                        }
                    }
                    due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                }
                () = shared.serving_changed.notified() => {
                    if table.serving_changed() {
                        due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                    }
                }
                // A failed or deleted revision changes no serving state: the table must still
                // be synced once the revisions are in.
                () = revisions_in(&mut revisions_loaded), if !revisions_ready => {
                    revisions_ready = true;
                    table.serving_changed();
                    due.get_or_insert_with(Instant::now);
                }
                () = sleep_until(due) => {
                    due = None;
                    if table.sync(&shared).await {
                        backoff = FIRST_RETRY;
                    } else {
                        // Nothing else would bring the write back: no event may come.
                        due = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_RETRY);
                    }
                    if listed && revisions_ready && !*loaded.borrow() {
                        loaded.send_replace(true);
                        tracing::debug!("the first route table is served");
                    }
                }
            }
        }
        tokio::time::sleep(super::RESTART_DELAY).await;
    }
}

/// Until every listed revision had its first attempt (or the revisions loop is gone).
async fn revisions_in(loaded: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not be held across an await: drop it here.
    let _ = loaded.wait_for(|loaded| *loaded).await;
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The Routes seen, what the gateway was given, and what is left to look at.
#[derive(Default)]
struct Table {
    routes: HashMap<RouteKey, Route>,
    /// The route the gateway serves for each Route.
    programmed: HashMap<RouteKey, RouteConfig>,
    /// Why the gateway left a route (or one of its hosts) out, by route.
    problems: HashMap<RouteKey, String>,
    /// Routes whose stored status was seen to carry this node's report: the resourceVersion
    /// it was seen at, and the problem reported.
    reported: HashMap<RouteKey, (Option<String>, Option<String>)>,
    /// Routes to look at on the next sync: changed, or their report not through yet.
    dirty: HashSet<RouteKey>,
    /// Routes whose traffic names a revision this node has not loaded: looked at again
    /// whenever what the node serves changes.
    waiting: HashSet<RouteKey>,
}

impl Table {
    fn applied(&mut self, route: Route) {
        let key = route_key(&route);
        self.dirty.insert(key.clone());
        self.routes.insert(key, route);
    }

    fn deleted(&mut self, route: &Route) {
        let key = route_key(route);
        self.reported.remove(&key);
        self.routes.remove(&key);
        self.dirty.insert(key);
    }

    /// A fresh list replaces every Route: each old and each new one is looked at.
    fn relisted(&mut self, routes: HashMap<RouteKey, Route>) {
        self.dirty.extend(self.programmed.keys().cloned());
        self.dirty.extend(routes.keys().cloned());
        self.routes = routes;
        self.reported.clear();
    }

    /// The node's revisions changed: the Routes waiting for one are looked at again. Returns
    /// whether any is waiting.
    fn serving_changed(&mut self) -> bool {
        self.dirty.extend(self.waiting.iter().cloned());
        !self.waiting.is_empty()
    }

    /// Programs the gateway with the changed Routes, then reports on each. Returns whether
    /// every report got through (those that did not are looked at again next time).
    async fn sync(&mut self, shared: &Shared) -> bool {
        let dirty: Vec<RouteKey> = self.dirty.drain().collect();
        let changes: Vec<RouteChange> = dirty
            .iter()
            .filter_map(|key| self.adopt(shared, key))
            .collect();
        let mut to_report: HashSet<RouteKey> = dirty.into_iter().collect();
        if !changes.is_empty() {
            let problems: HashMap<RouteKey, String> = shared
                .data_plane
                .update_routes(changes)
                .await
                .into_iter()
                .map(|error| {
                    tracing::warn!(%error, "route not served as asked");
                    ((error.namespace, error.name), error.problem.to_string())
                })
                .collect();
            // A change can give a problem to, or take one from, a Route it did not name (two
            // Routes claiming one host): those are reported on too.
            to_report.extend(
                problems
                    .iter()
                    .filter(|(key, problem)| self.problems.get(*key) != Some(problem))
                    .map(|(key, _)| key.clone()),
            );
            to_report.extend(
                self.problems
                    .keys()
                    .filter(|key| !problems.contains_key(*key))
                    .cloned(),
            );
            self.problems = problems;
        }
        let writes: Vec<Write> = to_report
            .into_iter()
            .filter_map(|key| self.write_for(shared, key))
            .collect();
        let failed: Vec<RouteKey> = futures::stream::iter(writes)
            .map(|write| async move {
                let key = write.key.clone();
                (!report(shared, write).await).then_some(key)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .filter_map(std::future::ready)
            .collect()
            .await;
        let all_through = failed.is_empty();
        self.dirty.extend(failed);
        all_through
    }

    /// What the gateway should now serve for Route `key`, if that changed. A node moves a
    /// route to a new revision only once it can serve it, so no node answers for a revision it
    /// does not have during a rollout. (The controllers move traffic only to revisions every
    /// Ready node loaded; this covers the moments a watch event arrives before the revision is
    /// applied here.) A new route is served at once, its requests waiting for the revision.
    fn adopt(&mut self, shared: &Shared, key: &RouteKey) -> Option<RouteChange> {
        let Some(wanted) = self.routes.get(key).and_then(route_config) else {
            self.waiting.remove(key);
            return self.programmed.remove(key).map(|_| RouteChange::Remove {
                namespace: key.0.clone(),
                name: key.1.clone(),
            });
        };
        let loaded = all_loaded(shared, &wanted);
        if loaded {
            self.waiting.remove(key);
        } else {
            self.waiting.insert(key.clone());
        }
        match self.programmed.get(key) {
            Some(serving) if !loaded || *serving == wanted => None,
            _ => {
                self.programmed.insert(key.clone(), wanted.clone());
                Some(RouteChange::Set(wanted))
            }
        }
    }

    /// The status write Route `key` needs, if any: none while it waits for a revision (unless
    /// it has a problem to report), or when its stored status already says it.
    fn write_for(&mut self, shared: &Shared, key: RouteKey) -> Option<Write> {
        let config = self.programmed.get(&key)?;
        let problem = self.problems.get(&key).cloned();
        if problem.is_none() && !all_loaded(shared, config) {
            return None;
        }
        let route = self.routes.get(&key)?;
        // The Route moved on while this node keeps serving its old traffic (waiting for a
        // revision): nothing to say until it serves the new traffic.
        if route_config(route).as_ref() != Some(config) {
            return None;
        }
        // Skip the API call when the stored status already says it; and skip even the check
        // (a JSON encoding per Route) for a Route unchanged since it last said it.
        let version = route.metadata.resource_version.clone();
        if self.reported.get(&key) == Some(&(version.clone(), problem.clone())) {
            return None;
        }
        let node = shared.options.node_name.as_str();
        let reported = route
            .status
            .as_ref()
            .is_some_and(|current| status::route_reported(current, node, problem.as_deref()));
        if reported {
            self.reported.insert(key, (version, problem));
            return None;
        }
        Some(Write {
            config: config.clone(),
            cached: route.clone(),
            problem,
            key,
        })
    }
}

/// Whether this node has loaded every revision `config` sends traffic to.
fn all_loaded(shared: &Shared, config: &RouteConfig) -> bool {
    revisions_of(config).all(|revision| shared.data_plane.has_revision(&revision))
}

/// A report to write on a Route's status.
struct Write {
    key: RouteKey,
    config: RouteConfig,
    problem: Option<String>,
    /// The Route as last seen, tried first.
    cached: Route,
}

/// Writes `IngressReady` on a Route whose stored `status.traffic` is still what was programmed.
/// Returns whether the stored status now says it (or needs nothing from this table).
async fn report(shared: &Shared, write: Write) -> bool {
    let Write {
        config,
        problem,
        cached,
        ..
    } = write;
    let api: Api<Route> = Api::namespaced(shared.client.clone(), &config.namespace);
    let result = write_status(&api, &config.name, Some(cached), |route: &Route| {
        if route_config(route).as_ref() != Some(&config) {
            // The Route controller moved on; its event makes the Route looked at again.
            return None;
        }
        let current = route.status.clone().unwrap_or_default();
        let next = status::route_served(&current, &shared.options.node_name, problem.as_deref());
        (next != current).then(|| Route {
            status: Some(next),
            ..route.clone()
        })
    })
    .await;
    match result {
        Ok(written) => {
            if written {
                tracing::debug!(
                    namespace = %config.namespace,
                    route = %config.name,
                    "route status written"
                );
            }
            true
        }
        Err(error) => {
            tracing::warn!(
                namespace = %config.namespace,
                route = %config.name,
                %error,
                "cannot write the route's status; retrying"
            );
            false
        }
    }
}
