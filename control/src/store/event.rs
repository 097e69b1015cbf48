//! The change events the store logs and watchers receive.

use serde_json::Value;

use super::key::ObjectKey;

/// What happened to an object, named as on the Kubernetes watch wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed; the event carries its last state.
    Deleted,
}

impl EventType {
    /// `ADDED`, `MODIFIED` or `DELETED`: the watch wire's `type` and the event log's column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }

    /// The inverse of [`EventType::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ADDED" => Some(Self::Added),
            "MODIFIED" => Some(Self::Modified),
            "DELETED" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// One committed change. Every successful mutation produces exactly one, carrying the
/// resourceVersion that mutation was given, so resourceVersions and events correspond one to one.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The global resourceVersion of the change (also in `object.metadata.resourceVersion`).
    pub resource_version: u64,
    /// What happened.
    pub kind: EventType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change; for `Deleted`, its last state stamped with the deletion's
    /// resourceVersion (what a Kubernetes `DELETED` event carries).
    pub object: Value,
    /// `object` serialised as compact JSON. The store has it anyway, and keeping it lets the API
    /// layer write one event to thousands of watch streams without serialising it again for each.
    pub json: String,
}
