//! One problem with one field of a submitted object: the unit that admission, schema checks
//! and the API server's own metadata rules report, and that a Kubernetes `Status` carries in
//! `details.causes[]` (kubectl rebuilds its error line from them).

use std::fmt;

/// Why a field was refused, as the `reason` strings of Kubernetes' `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseReason {
    /// The value is malformed or out of range (`FieldValueInvalid`).
    Invalid,
    /// A required field is missing (`FieldValueRequired`).
    Required,
    /// The field may not be set here, or not changed (`FieldValueForbidden`).
    Forbidden,
    /// The value repeats one that must be unique (`FieldValueDuplicate`).
    Duplicate,
    /// The value is not one of the allowed ones (`FieldValueNotSupported`).
    NotSupported,
    /// The value has the wrong JSON type (`FieldValueTypeInvalid`).
    TypeInvalid,
    /// The field is not part of the schema (`FieldValueUnknown` — what strict decoding reports).
    Unknown,
}

impl CauseReason {
    /// The wire string of `details.causes[].reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "FieldValueInvalid",
            Self::Required => "FieldValueRequired",
            Self::Forbidden => "FieldValueForbidden",
            Self::Duplicate => "FieldValueDuplicate",
            Self::NotSupported => "FieldValueNotSupported",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::Unknown => "FieldValueUnknown",
        }
    }
}

/// One refused field: its dotted path (`spec.traffic[1].tag`), why, and a message a person can
/// act on (it names the rule, and the offending value where that helps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted JSON path from the object's root, with `[i]` for list indices.
    pub field: String,
    /// Why the field was refused.
    pub reason: CauseReason,
    /// What is wrong and, where not obvious, what would be accepted.
    pub message: String,
}

impl FieldError {
    /// A refusal of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: CauseReason, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason,
            message: message.into(),
        }
    }

    /// A malformed or out-of-range value.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, CauseReason::Invalid, message)
    }

    /// A missing required field.
    pub fn required(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, CauseReason::Required, message)
    }

    /// A field that may not be set or changed.
    pub fn forbidden(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, CauseReason::Forbidden, message)
    }
}

/// `message: field`, the order Knative's webhook prints (`Traffic targets sum to 90, want 100:
/// spec.traffic`).
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.message, self.field)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_message_then_field_like_knative() {
        let error = FieldError::invalid("spec.traffic", "Traffic targets sum to 90, want 100");
        assert_eq!(
            error.to_string(),
            "Traffic targets sum to 90, want 100: spec.traffic"
        );
        assert_eq!(error.reason.as_str(), "FieldValueInvalid");
    }
}
