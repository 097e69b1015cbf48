//! Kubernetes name rules for the names that end up in host names and labels: a Knative Service
//! name must be a DNS-1035 label (it becomes `{name}.{namespace}.{domain}`), a namespace a
//! DNS-1123 label. Kept here so the API server's admission and the file loaders agree.

/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

/// Why a name is not a label, phrased so it can follow "name "x" is not valid: ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is {0} characters long; the most is 63")]
    TooLong(usize),
    #[error(
        "it may contain only lowercase letters a-z, digits 0-9 and '-', and must start and end with a letter or digit"
    )]
    Dns1123,
    #[error(
        "it may contain only lowercase letters a-z, digits 0-9 and '-', must start with a letter and end with a letter or digit"
    )]
    Dns1035,
}

/// RFC 1123 label, as Kubernetes checks namespace names: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
pub fn validate_dns1123_label(name: &str) -> Result<(), NameError> {
    check_length(name)?;
    let bytes = name.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ends_ok = is_alnum(bytes[0]) && is_alnum(bytes[bytes.len() - 1]);
    if inner_ok && ends_ok {
        Ok(())
    } else {
        Err(NameError::Dns1123)
    }
}

/// RFC 1035 label, as Knative checks Service names: `[a-z]([-a-z0-9]*[a-z0-9])?`.
pub fn validate_dns1035_label(name: &str) -> Result<(), NameError> {
    check_length(name)?;
    match validate_dns1123_label(name) {
        Ok(()) if name.as_bytes()[0].is_ascii_lowercase() => Ok(()),
        _ => Err(NameError::Dns1035),
    }
}

fn check_length(name: &str) -> Result<(), NameError> {
    match name.len() {
        0 => Err(NameError::Empty),
        n if n > MAX_LABEL => Err(NameError::TooLong(n)),
        _ => Ok(()),
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_labels() {
        for good in ["default", "a", "0", "team-1", "1abc"] {
            assert_eq!(validate_dns1123_label(good), Ok(()), "{good}");
        }
        assert_eq!(validate_dns1123_label(""), Err(NameError::Empty));
        assert_eq!(
            validate_dns1123_label(&"a".repeat(64)),
            Err(NameError::TooLong(64))
        );
        assert_eq!(validate_dns1123_label(&"a".repeat(63)), Ok(()));
        for bad in ["-a", "a-", "A", "a.b", "a_b", "ä"] {
            assert_eq!(
                validate_dns1123_label(bad),
                Err(NameError::Dns1123),
                "{bad}"
            );
        }
    }

    #[test]
    fn dns1035_labels_start_with_a_letter() {
        for good in ["hello", "a", "my-app-2"] {
            assert_eq!(validate_dns1035_label(good), Ok(()), "{good}");
        }
        for bad in ["1abc", "0", "-a", "a-", "Hello", "he.llo"] {
            assert_eq!(
                validate_dns1035_label(bad),
                Err(NameError::Dns1035),
                "{bad}"
            );
        }
        assert_eq!(validate_dns1035_label(""), Err(NameError::Empty));
        let message = validate_dns1035_label("1abc").unwrap_err().to_string();
        assert!(message.contains("must start with a letter"), "{message}");
    }
}
