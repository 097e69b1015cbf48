//! Watch streams (reference §3.2): newline-delimited JSON events on a 200 response, each
//! flushed on its own; initial `ADDED` events when no resourceVersion is given (and for
//! streaming lists, closed by the `initial-events-end` bookmark); the too-old case as one
//! `ERROR` event carrying a 410 `Status`; bookmarks with apiVersion and kind; `timeoutSeconds`.
//!
//! Each watch is one task writing lines into a small channel the response body drains: a slow
//! client fills its own channel and falls back to the store's event log, never holding up
//! writers or other watchers, and a client that goes away ends its task at once.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::registry::Resource;
use crate::store::{Event, EventType, List, StoreError};
use crate::table::{self, IncludeObject};

use super::metadata::meta_str;
use super::objects::Objects;
use super::respond::{self, Body, Shape};
use super::selection::Selection;

/// Lines buffered per watcher before its task waits for the client.
const WATCH_BUFFER: usize = 64;

/// What one watch request asked for.
pub struct WatchRequest {
    /// The resource watched.
    pub resource: &'static Resource,
    /// The scope and selectors, applied to the initial objects and to every event.
    pub selection: Selection,
    /// `resourceVersion`, `None` for unset or `0`.
    pub from: Option<u64>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Representation of event objects.
    pub shape: Shape,
    /// `includeObject` for Table events.
    pub include: IncludeObject,
}

/// Starts the watch and returns its streaming response.
pub fn start(
    objects: Objects,
    request: WatchRequest,
    bookmark_interval: Duration,
    shutdown: watch::Receiver<bool>,
) -> Response<Body> {
    let (lines, receiver) = mpsc::channel::<Bytes>(WATCH_BUFFER);
    tokio::spawn(async move {
        let filtered = request.selection.filters();
        let mut writer = Writer {
            lines,
            request,
            sent_columns: false,
            matching: filtered.then(HashSet::new),
            uncertain_through: 0,
        };
        writer.run(objects, bookmark_interval, shutdown).await;
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let line = receiver.recv().await?;
        Some((Ok(Frame::data(line)), receiver))
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

struct Writer {
    lines: mpsc::Sender<Bytes>,
    request: WatchRequest,
    sent_columns: bool,
    /// With a selector: the objects (namespace, name) the client currently holds as matching,
    /// so that an object which stops matching is sent as `DELETED` and one which starts
    /// matching as `ADDED`, as the real server does. `None` without a selector.
    matching: Option<HashSet<(String, String)>>,
    /// Events at or below this resourceVersion changed objects between the client's list and
    /// this watch: the seeded matching set reflects the state after them, not before, so an
    /// object that no longer matches may still be held by the client.
    uncertain_through: u64,
}

/// Why a watch ended early.
struct Closed;

impl Writer {
    async fn run(
        &mut self,
        objects: Objects,
        bookmark_interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // `Query` caps timeoutSeconds; a deadline past any clock would just mean "none".
        let deadline = self
            .request
            .timeout
            .and_then(|timeout| tokio::time::Instant::now().checked_add(timeout));
        let _ = self
            .stream(objects, bookmark_interval, deadline, &mut shutdown)
            .await;
    }

    async fn stream(
        &mut self,
        objects: Objects,
        bookmark_interval: Duration,
        deadline: Option<tokio::time::Instant>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Closed> {
        let from = match self.request.from {
            Some(rv) if !self.request.send_initial_events => {
                self.seed_matching(&objects).await?;
                rv
            }
            _ => self.send_initial(&objects).await?,
        };
        let mut events = match objects
            .store()
            .watch(&self.request.selection.scope, from)
            .await
        {
            Ok(events) => events,
            Err(error) => return self.send_error(&error).await,
        };
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.reset();
        let until_deadline = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until_deadline);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => self.send_event(&event).await?,
                    Some(Err(error)) => return self.send_error(&error).await,
                    None => return Ok(()),
                },
                _ = ticker.tick(), if self.request.bookmarks => {
                    self.send_bookmark(events.resume_rv(), false).await?;
                }
                () = &mut until_deadline => {
                    if self.request.bookmarks {
                        self.send_bookmark(events.resume_rv(), false).await?;
                    }
                    return Ok(());
                }
                _ = shutdown.changed() => return Ok(()),
                () = self.lines.closed() => return Err(Closed),
            }
        }
    }

    /// The watched objects as they are now; a failure to read them ends the stream with an
    /// `ERROR` event.
    async fn current(&mut self, objects: &Objects) -> Result<List, Closed> {
        match objects.store().list(&self.request.selection.scope).await {
            Ok(list) => Ok(list),
            Err(error) => {
                self.send_error(&error).await?;
                Err(Closed)
            }
        }
    }

    /// The current objects as `ADDED` events; returns the resourceVersion to watch from.
    async fn send_initial(&mut self, objects: &Objects) -> Result<u64, Closed> {
        let list = self.current(objects).await?;
        for object in &list.items {
            if self.selected(object) {
                self.remember(object, true);
                let line = self.line("ADDED", object, None);
                self.send(line).await?;
            }
        }
        if self.request.send_initial_events && self.request.bookmarks {
            self.send_bookmark(list.resource_version, true).await?;
        }
        Ok(list.resource_version)
    }

    fn selected(&self, object: &Value) -> bool {
        self.request.selection.matches(object)
    }

    /// A filtered watch resuming from a resourceVersion: the client's last list holds the
    /// objects that matched then; the current matching set is the closest the server can know
    /// of it (what changed since comes as events anyway).
    async fn seed_matching(&mut self, objects: &Objects) -> Result<(), Closed> {
        if self.matching.is_none() {
            return Ok(());
        }
        let list = self.current(objects).await?;
        for object in &list.items {
            if self.selected(object) {
                self.remember(object, true);
            }
        }
        self.uncertain_through = list.resource_version;
        Ok(())
    }

    /// Records whether the client holds `object` as matching; returns whether it did before.
    fn remember(&mut self, object: &Value, present: bool) -> bool {
        let Some(matching) = self.matching.as_mut() else {
            return true;
        };
        let key = (
            meta_str(object, "namespace").unwrap_or("").to_owned(),
            meta_str(object, "name").unwrap_or("").to_owned(),
        );
        if present {
            !matching.insert(key)
        } else {
            matching.remove(&key)
        }
    }

    /// Sends one change, as the client holding the selection needs it: `ADDED` when an object
    /// enters the selection, `DELETED` when it leaves it or goes (its last state matched, so
    /// the client may hold it), nothing for objects outside the selection.
    async fn send_event(&mut self, event: &Event) -> Result<(), Closed> {
        let object = &event.object;
        let matches = self.selected(object);
        let kind = match (event.kind, matches) {
            (EventType::Deleted, _) => {
                let held = self.remember(object, false);
                if !held && !matches {
                    return Ok(());
                }
                EventType::Deleted
            }
            (kind, true) => {
                if self.remember(object, true) {
                    kind
                } else {
                    EventType::Added
                }
            }
            (_, false) => {
                let held = self.remember(object, false);
                // Between the client's list and this watch the server cannot tell whether the
                // client holds the object: a DELETED for one it lacks is harmless to a cache,
                // a missing one would leave it stale.
                let uncertain = event.resource_version <= self.uncertain_through;
                if !held && !uncertain {
                    return Ok(());
                }
                EventType::Deleted
            }
        };
        let line = self.line(kind.as_str(), object, Some(&event.json));
        self.send(line).await
    }

    /// One event line; `json` is the object already serialised, when the store has it.
    fn line(&mut self, kind: &str, object: &Value, json: Option<&str>) -> Bytes {
        let body = match self.request.shape {
            Shape::Object => match json {
                Some(json) => json.to_owned(),
                None => object.to_string(),
            },
            Shape::PartialMetadata => respond::partial(object).to_string(),
            Shape::Table => {
                let with_columns = !self.sent_columns;
                self.sent_columns = true;
                table::table(
                    self.request.resource,
                    std::slice::from_ref(object),
                    self.request.include,
                    None,
                    with_columns,
                )
                .to_string()
            }
        };
        Bytes::from(format!("{{\"type\":\"{kind}\",\"object\":{body}}}\n"))
    }

    async fn send_bookmark(&mut self, rv: u64, initial_events_end: bool) -> Result<(), Closed> {
        let resource = self.request.resource;
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": resource.kind,
            "apiVersion": resource.api_version(),
            "metadata": metadata,
        });
        let line = format!("{{\"type\":\"BOOKMARK\",\"object\":{object}}}\n");
        self.send(Bytes::from(line)).await
    }

    /// The `ERROR` event that ends a stream: 410 Expired for a compacted resourceVersion (which
    /// makes kube-rs relist), 500 otherwise.
    async fn send_error(&mut self, error: &StoreError) -> Result<(), Closed> {
        let (code, reason) = match error {
            StoreError::Expired { .. } => (410, "Expired"),
            _ => (500, "InternalError"),
        };
        let status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": error.to_string(),
            "reason": reason,
            "code": code,
        });
        let line = format!("{{\"type\":\"ERROR\",\"object\":{status}}}\n");
        self.send(Bytes::from(line)).await
    }

    async fn send(&mut self, line: Bytes) -> Result<(), Closed> {
        self.lines.send(line).await.map_err(|_| Closed)
    }
}
