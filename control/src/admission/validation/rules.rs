//! Format rules shared by several fields (Kubernetes' `validation.Is*` helpers that Knative
//! calls), each returning the sentence a refusal should carry.

use serde_json::Value;
use wisp_api::names::validate_dns1035_label;

/// Longest DNS-1123 subdomain (RFC 1123).
const MAX_SUBDOMAIN: usize = 253;
/// Longest name part of a qualified name.
const MAX_QUALIFIED_NAME: usize = 63;

/// A name that must be a DNS-1035 label (Knative's object and revision names, traffic tags).
pub(crate) fn dns1035_label(name: &str) -> Result<(), String> {
    validate_dns1035_label(name).map_err(|e| format!("not a DNS 1035 label: {e}"))
}

/// A `generateName`: a DNS-1035 label once the random suffix is appended, so a trailing `-`
/// is fine (Kubernetes masks it before checking).
pub(crate) fn dns1035_prefix(prefix: &str) -> Result<(), String> {
    let masked = match prefix.strip_suffix('-') {
        Some(head) => format!("{head}a"),
        None => prefix.to_owned(),
    };
    validate_dns1035_label(&masked).map_err(|e| format!("not a DNS 1035 label prefix: {e}"))
}

/// RFC 1123 subdomain, as Kubernetes checks service account names: dot-separated
/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` parts, at most 253 characters.
pub(crate) fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_SUBDOMAIN && name.split('.').all(is_dns1123_part)
}

fn is_dns1123_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

/// What a DNS-1123 subdomain is, for messages.
pub(crate) const DNS1123_SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of \
     lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
     character (e.g. 'example.com'), at most 253 characters";

/// A Kubernetes qualified name (`[prefix/]name`), as Knative checks traffic targets' revision
/// and configuration names.
pub(crate) fn qualified_name(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Err(format!("prefix part {DNS1123_SUBDOMAIN_RULE}"));
    }
    if name.is_empty() {
        return Err("name part must be non-empty".to_owned());
    }
    if name.len() > MAX_QUALIFIED_NAME {
        return Err("name part must be no more than 63 characters".to_owned());
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    let ends_ok = bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum);
    let inner_ok = bytes
        .iter()
        .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'));
    if ends_ok && inner_ok {
        Ok(())
    } else {
        Err(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must \
             start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or \
             '123-abc')"
                .to_owned(),
        )
    }
}

/// Kubernetes' classic environment variable name rule: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub(crate) fn is_env_var_name(name: &str) -> bool {
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    let bytes = name.as_bytes();
    bytes.first().is_some_and(|b| !b.is_ascii_digit()) && bytes.iter().all(allowed)
}

/// What an environment variable name may be, for messages.
pub(crate) const ENV_VAR_NAME_RULE: &str = "a valid environment variable name must consist of \
     alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. \
     'my.env-name', or 'MY_ENV.NAME', or 'MyEnvName1')";

/// Knative's out-of-range message: `expected 0 <= 2000 <= 1000`.
pub(crate) fn out_of_bounds(value: i64, low: i64, high: i64) -> String {
    format!("expected {low} <= {value} <= {high}")
}

/// How a JSON value holding an integer field reads.
pub(crate) enum Integer {
    /// The field is absent or `null`.
    Unset,
    /// A whole number (`300` or `300.0`).
    Value(i64),
    /// Anything else: a string, a fraction, an object.
    Malformed,
}

/// Reads an integer field (int64 in Knative's Go types).
pub(crate) fn integer(value: Option<&Value>) -> Integer {
    match value {
        None | Some(Value::Null) => Integer::Unset,
        Some(v) => {
            if let Some(i) = v.as_i64() {
                Integer::Value(i)
            } else {
                // 2^63 as f64; anything at or beyond it does not fit an int64.
                const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                match v.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < LIMIT => Integer::Value(f as i64),
                    _ => Integer::Malformed,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generate_name_may_end_with_a_dash() {
        assert!(dns1035_prefix("hello-").is_ok());
        assert!(dns1035_prefix("hello").is_ok());
        assert!(dns1035_prefix("1hello-").is_err());
        assert!(dns1035_label("hello-").is_err());
        assert!(
            dns1035_label(&"a".repeat(64))
                .unwrap_err()
                .contains("64 characters")
        );
    }

    #[test]
    fn subdomains() {
        for good in ["default", "my-sa", "a.b.c", "0sa"] {
            assert!(is_dns1123_subdomain(good), "{good}");
        }
        for bad in [
            "",
            "foo@bar.baz",
            "Upper",
            "a..b",
            "-a",
            "a-",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn qualified_names() {
        for good in ["hello-00001", "My_Name.v1", "example.com/name", "a"] {
            assert!(qualified_name(good).is_ok(), "{good}");
        }
        for bad in [
            "b ar",
            "",
            "-a",
            "a-",
            "Bad_Prefix/x",
            "x/",
            &"a".repeat(64),
        ] {
            assert!(qualified_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_var_names() {
        for good in ["TARGET", "my.env-name", "_x", "MyEnvName1"] {
            assert!(is_env_var_name(good), "{good}");
        }
        for bad in ["", "1ABC", "A=B", "A B", "ä"] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
    }

    #[test]
    fn integers_accept_whole_floats_only() {
        assert!(matches!(integer(None), Integer::Unset));
        assert!(matches!(integer(Some(&json!(null))), Integer::Unset));
        assert!(matches!(integer(Some(&json!(5))), Integer::Value(5)));
        assert!(matches!(integer(Some(&json!(5.0))), Integer::Value(5)));
        assert!(matches!(integer(Some(&json!(5.5))), Integer::Malformed));
        assert!(matches!(integer(Some(&json!("5"))), Integer::Malformed));
        assert!(matches!(integer(Some(&json!(1e300))), Integer::Malformed));
    }
}
