//! Routes: the gateway's table is every Route's `status.traffic`, rebuilt at most every
//! [`DEBOUNCE`] however many Routes change; once the gateway serves a Route's current traffic
//! (and has every revision it names), this node reports so in the Route's `status.annotations`
//! (the Route controller sets `IngressReady` once every Ready node did).

use std::collections::HashMap;
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
use super::route_table::{RouteKey, revisions_of, route_config, route_configs, route_key};
use super::status;
use super::write::write_status;
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
                            table.routes = listing.take().unwrap_or_default();
                            table.reported.clear();
                            listed = true;
                        }
                        Some(Ok(Event::Apply(route))) => {
                            table.routes.insert(route_key(&route), route);
                        }
                        Some(Ok(Event::Delete(route))) => {
                            let key = route_key(&route);
                            table.reported.remove(&key);
                            table.routes.remove(&key);
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%error, "watching Routes");
                            continue;
                        }
                    }
                    due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                }
                () = shared.serving_changed.notified() => {
                    due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                }
                // A failed or deleted revision changes no serving state: the table must still
                // be synced once the revisions are in.
                () = revisions_in(&mut revisions_loaded), if !revisions_ready => {
                    revisions_ready = true;
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

/// The Routes seen and what the gateway was last given.
#[derive(Default)]
struct Table {
    routes: HashMap<RouteKey, Route>,
    programmed: Option<Vec<RouteConfig>>,
    /// Why the gateway left a route (or one of its hosts) out, by route.
    problems: HashMap<RouteKey, String>,
    /// Routes whose stored status was seen to carry this node's report: the resourceVersion
    /// it was seen at, and the problem reported.
    reported: HashMap<RouteKey, (Option<String>, Option<String>)>,
}

impl Table {
    /// Programs the gateway when the table changed, then reports on each Route. Returns
    /// whether every report got through.
    async fn sync(&mut self, shared: &Shared) -> bool {
        let configs = self.adoptable(shared, route_configs(self.routes.values()));
        if self.programmed.as_ref() != Some(&configs) {
            let problems = shared.data_plane.set_routes(configs.clone()).await;
            self.problems = problems
                .into_iter()
                .map(|error| {
                    tracing::warn!(%error, "route not served as asked");
                    ((error.namespace, error.name), error.problem.to_string())
                })
                .collect();
            self.programmed = Some(configs.clone());
        }
        let node = shared.options.node_name.as_str();
        let mut writes: Vec<(RouteConfig, Option<String>, Option<Route>)> = Vec::new();
        for config in configs {
            let key = (config.namespace.clone(), config.name.clone());
            let problem = self.problems.get(&key).cloned();
            if problem.is_none()
                && !revisions_of(&config).all(|revision| shared.data_plane.has_revision(&revision))
            {
                continue;
            }
            let Some(route) = self.routes.get(&key) else {
                continue;
            };
            // Skip the API call when the stored status already says it; and skip even the
            // check (a JSON encoding per Route) for a Route unchanged since it last said it.
            let version = route.metadata.resource_version.clone();
            if self.reported.get(&key) == Some(&(version.clone(), problem.clone())) {
                continue;
            }
            let reported = route
                .status
                .as_ref()
                .is_some_and(|current| status::route_reported(current, node, problem.as_deref()));
            if reported {
                self.reported.insert(key, (version, problem));
            } else {
                writes.push((config, problem, Some(route.clone())));
            }
        }
        futures::stream::iter(writes)
            .map(|(config, problem, cached)| report(shared, config, problem, cached))
            .buffer_unordered(CONCURRENT_WRITES)
            .fold(true, |all, reported| std::future::ready(all && reported))
            .await
    }
}

impl Table {
    /// `wanted` with each route whose traffic names a revision this node has not loaded kept
    /// at what the gateway serves now: a node moves a route to a new revision only once it
    /// can serve it, so no node answers for a revision it does not have during a rollout. (The
    /// controllers move traffic only to revisions every Ready node loaded; this covers the
    /// moments a watch event arrives before the revision is applied here.)
    fn adoptable(&self, shared: &Shared, wanted: Vec<RouteConfig>) -> Vec<RouteConfig> {
        // Indexed once per rebuild: a search of the programmed list per route made a rebuild
        // quadratic in the number of Routes (most of a 10,000-Service apply's CPU).
        let programmed: HashMap<(&str, &str), &RouteConfig> = self
            .programmed
            .iter()
            .flatten()
            .map(|old| ((old.namespace.as_str(), old.name.as_str()), old))
            .collect();
        wanted
            .into_iter()
            .map(|config| {
                let loaded =
                    revisions_of(&config).all(|revision| shared.data_plane.has_revision(&revision));
                let serving = programmed.get(&(config.namespace.as_str(), config.name.as_str()));
                match serving {
                    Some(serving) if !loaded => (*serving).clone(),
                    _ => config,
                }
            })
            .collect()
    }
}

/// Writes `IngressReady` on a Route whose stored `status.traffic` is still what was programmed.
/// Returns whether the stored status now says it (or needs nothing from this table).
async fn report(
    shared: &Shared,
    config: RouteConfig,
    problem: Option<String>,
    cached: Option<Route>,
) -> bool {
    let api: Api<Route> = Api::namespaced(shared.client.clone(), &config.namespace);
    let result = write_status(&api, &config.name, cached, |route: &Route| {
        if route_config(route).as_ref() != Some(&config) {
            // The Route controller moved on; the next table rebuild reports on the new traffic.
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
