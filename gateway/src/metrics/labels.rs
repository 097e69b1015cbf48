//! Label sets of the data-plane metric families.
//!
//! Labels are typed structs rather than `Vec<(String, String)>` so a family cannot be fed a
//! misspelt or missing label, and so the hash of a label set is computed over four strings, not
//! over a vector of pairs. The request path never builds these: it holds pre-resolved handles
//! (see [`super::RevisionMetrics`]).
//!
//! The label sets encode themselves (rather than through prometheus-client's derive) because
//! prometheus-client 0.23 writes label values verbatim: a `"`, `\` or newline in a name would
//! corrupt the whole exposition. Kubernetes names cannot contain them, but the data plane can be
//! fed names that were never validated, so values are escaped here as the text format requires.

use std::fmt::Write as _;

use prometheus_client::encoding::{
    EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
};

/// Identifies one revision, with the label names Knative uses for its revision metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RevisionLabels {
    pub namespace: String,
    pub service: String,
    pub configuration: String,
    pub revision: String,
}

impl RevisionLabels {
    pub fn new(
        namespace: impl Into<String>,
        service: impl Into<String>,
        configuration: impl Into<String>,
        revision: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            service: service.into(),
            configuration: configuration.into(),
            revision: revision.into(),
        }
    }
}

/// Identifies one node of the data plane.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeLabels {
    pub node: String,
}

impl NodeLabels {
    pub fn new(node: impl Into<String>) -> Self {
        Self { node: node.into() }
    }
}

/// The class of an HTTP status code, Knative's `response_code_class`: a bounded label (five
/// values) where the raw code would let a misbehaving guest create unbounded series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl CodeClass {
    /// Every class, in the order of [`CodeClass::index`].
    pub const ALL: [CodeClass; 5] = [
        CodeClass::Informational,
        CodeClass::Success,
        CodeClass::Redirection,
        CodeClass::ClientError,
        CodeClass::ServerError,
    ];

    /// The class of `status`. Codes outside `100..=599` (hyper accepts up to 999) count as
    /// `5xx`: a status the gateway cannot classify is a fault of the server side, never of the
    /// client, and mapping it into an existing class keeps the label bounded.
    pub fn of(status: u16) -> CodeClass {
        match status {
            100..=199 => CodeClass::Informational,
            200..=299 => CodeClass::Success,
            300..=399 => CodeClass::Redirection,
            400..=499 => CodeClass::ClientError,
            _ => CodeClass::ServerError,
        }
    }

    /// Position in [`CodeClass::ALL`], used to index pre-resolved counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label value: `1xx` … `5xx`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeClass::Informational => "1xx",
            CodeClass::Success => "2xx",
            CodeClass::Redirection => "3xx",
            CodeClass::ClientError => "4xx",
            CodeClass::ServerError => "5xx",
        }
    }
}

impl EncodeLabelValue for CodeClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Why a request was not served by its guest: what metrics must tell apart, since the client
/// may retry an overload and not a guest fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// No capacity: queue full, no instance slot, replica out of memory.
    Overload,
    /// The guest trapped, failed, or broke the `wasi:http` contract.
    GuestFault,
    /// The revision's timeout passed (in the activator queue or in the guest).
    Timeout,
    /// The request body was over the limit.
    BodyTooLarge,
}

impl FailureReason {
    /// Every reason, in the order of [`FailureReason::index`].
    pub const ALL: [FailureReason; 4] = [
        FailureReason::Overload,
        FailureReason::GuestFault,
        FailureReason::Timeout,
        FailureReason::BodyTooLarge,
    ];

    /// Position in [`FailureReason::ALL`], used to index pre-resolved counters.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Overload => "overload",
            FailureReason::GuestFault => "guest_fault",
            FailureReason::Timeout => "timeout",
            FailureReason::BodyTooLarge => "body_too_large",
        }
    }
}

impl EncodeLabelValue for FailureReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Labels of the failure counter: the revision plus why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FailureLabels {
    pub revision: RevisionLabels,
    pub reason: FailureReason,
}

impl EncodeLabelSet for FailureLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.revision.encode_into(&mut encoder)?;
        ("reason", self.reason).encode(encoder.encode_label())
    }
}

/// Labels of the request counter: the revision plus the status class.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestLabels {
    pub revision: RevisionLabels,
    pub code_class: CodeClass,
}

impl RevisionLabels {
    fn encode_into(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("namespace", Escaped(&self.namespace)).encode(encoder.encode_label())?;
        ("service", Escaped(&self.service)).encode(encoder.encode_label())?;
        ("configuration", Escaped(&self.configuration)).encode(encoder.encode_label())?;
        ("revision", Escaped(&self.revision)).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for RevisionLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.encode_into(&mut encoder)
    }
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.revision.encode_into(&mut encoder)?;
        ("code_class", self.code_class).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for NodeLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("node", Escaped(&self.node)).encode(encoder.encode_label())
    }
}

/// A label value written with the text format's escapes: `\\`, `\"` and `\n`.
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let mut rest = self.0;
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            encoder.write_str(&rest[..at])?;
            let escape = match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            };
            encoder.write_str(escape)?;
            rest = &rest[at + 1..];
        }
        encoder.write_str(rest)
    }
}
