//! The `labelSelector` and `fieldSelector` query parameters of list and watch requests
//! (reference §3.3): parsed once per request, then matched against every listed object and
//! every watch event, so a filtered watch never shows what the filtered list would not.
//!
//! Both grammars follow apimachinery (`labels/selector.go`, `fields/selector.go`) closely,
//! including their corner cases (`k=` means "value is empty", `in ()` means "value is
//! empty"), because clients build selectors against the real server's behaviour.

mod field;
mod label;

pub use field::FieldSelector;
pub use label::LabelSelector;

/// Why a selector was refused; every message names the offending part so the caller can fix it
/// (the API server sends it back as a 400 `BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector does not follow the grammar: at `found`, something else was expected.
    #[error("unable to parse label selector {selector:?}: found {found}, expected: {expected}")]
    LabelSyntax {
        /// The whole selector as sent.
        selector: String,
        /// The token found, quoted (`'='`), or `end of string`.
        found: String,
        /// What the grammar allows at that point.
        expected: &'static str,
    },
    /// A label key is not a qualified name (`[prefix/]name`).
    #[error("invalid label key {key:?} in label selector: {reason}")]
    LabelKey {
        /// The key as written.
        key: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A value is not a valid label value.
    #[error("invalid value {value:?} for label {key:?} in label selector: {reason}")]
    LabelValue {
        /// The key the value belongs to.
        key: String,
        /// The value as written.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// `k > v` / `k < v` need an integer `v`.
    #[error(
        "invalid value {value:?} for label {key:?} in label selector: for 'Gt', 'Lt' operators, the value must be an integer"
    )]
    LabelNotInteger {
        /// The key compared.
        key: String,
        /// The value that is not a 64-bit integer.
        value: String,
    },
    /// A field selector term has no `=`, `==` or `!=` (apimachinery's wording).
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldSyntax {
        /// The whole selector as sent.
        selector: String,
        /// The term that has no operator.
        term: String,
    },
    /// A field selector value holds a backslash escape other than `\\`, `\,` or `\=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    FieldEscape(String),
    /// A field selector value holds a bare `,` or `=` (they must be escaped).
    #[error("invalid field selector: unescaped character in value: {0}")]
    FieldUnescaped(char),
    /// The field cannot be selected on for this resource (exactly what the real server says).
    #[error("field label not supported: {0}")]
    FieldNotSupported(String),
}
