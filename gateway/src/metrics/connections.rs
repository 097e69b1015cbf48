//! Per-listener connection families and their pre-resolved handle, written by the serve loop
//! ([`crate::server`]): connections open, and those the server closed or held back because of
//! its limits.

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Which listener: `gateway` (the data port) or `admin` (metrics and health).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenerLabels {
    pub listener: &'static str,
}

/// Why the server closed a connection its client had not finished with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// A request head did not arrive within the header read timeout.
    HeaderTimeout,
    /// No request within the idle timeout.
    IdleTimeout,
    /// Still busy when the shutdown grace period ran out.
    DrainDeadline,
}

impl CloseReason {
    const ALL: [CloseReason; 3] = [
        CloseReason::HeaderTimeout,
        CloseReason::IdleTimeout,
        CloseReason::DrainDeadline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::DrainDeadline => "drain_deadline",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClosedLabels {
    listener: &'static str,
    reason: CloseReason,
}

// Label values here are fixed strings of this crate, so they need no escaping.
impl EncodeLabelSet for ListenerLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("listener", self.listener).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for ClosedLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("listener", self.listener).encode(encoder.encode_label())?;
        ("reason", self.reason.as_str()).encode(encoder.encode_label())
    }
}

/// The connection families, registered once in the data plane's registry.
#[derive(Debug)]
pub(super) struct ConnectionFamilies {
    open: Family<ListenerLabels, Gauge>,
    accepted: Family<ListenerLabels, Counter>,
    closed: Family<ClosedLabels, Counter>,
    limit_reached: Family<ListenerLabels, Counter>,
}

impl ConnectionFamilies {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = Self {
            open: Family::default(),
            accepted: Family::default(),
            closed: Family::default(),
            limit_reached: Family::default(),
        };
        registry.register(
            "connections_open",
            "Client connections open on the listener",
            families.open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections the listener accepted",
            families.accepted.clone(),
        );
        registry.register(
            "connections_closed_by_server",
            "Connections the server closed before their client was done: a request head \
             too slow (header_timeout), idle too long (idle_timeout), or still busy when the \
             shutdown grace period ended (drain_deadline)",
            families.closed.clone(),
        );
        registry.register(
            "connections_limit_reached",
            "Times the listener held the maximum number of connections and left new ones \
             waiting in the listen backlog",
            families.limit_reached.clone(),
        );
        families
    }

    pub(super) fn handle(&self, listener: &'static str) -> ConnectionMetrics {
        let labels = ListenerLabels { listener };
        let closed = CloseReason::ALL.map(|reason| {
            self.closed
                .get_or_create(&ClosedLabels { listener, reason })
                .clone()
        });
        ConnectionMetrics {
            open: self.open.get_or_create(&labels).clone(),
            accepted: self.accepted.get_or_create(&labels).clone(),
            closed,
            limit_reached: self.limit_reached.get_or_create(&labels).clone(),
        }
    }
}

/// One listener's connection series, resolved once. [`ConnectionMetrics::default`] is a set
/// registered nowhere, for a server without a metrics endpoint (`wisp run`).
#[derive(Clone, Debug, Default)]
pub struct ConnectionMetrics {
    open: Gauge,
    accepted: Counter,
    closed: [Counter; 3],
    limit_reached: Counter,
}

impl ConnectionMetrics {
    pub fn opened(&self) {
        self.accepted.inc();
        self.open.inc();
    }

    pub fn finished(&self) {
        self.open.dec();
    }

    pub fn closed_by_server(&self, reason: CloseReason) {
        // `ALL` lists the reasons in declaration order, so the discriminant is the index.
        self.closed[reason as usize].inc();
    }

    pub fn limit_reached(&self) {
        self.limit_reached.inc();
    }
}
