//! The query parameters the API server understands (reference §2–§3), parsed once per request
//! with each value checked, so handlers work with typed options and a bad value is a precise
//! 400 rather than a surprise later.

use std::time::Duration;

use super::status::ApiError;

/// Largest `limit` taken as a page size; a larger one lists everything (and can never overflow
/// the one-more-than-the-page read that tells whether more follow, nor an SQL `LIMIT`).
const MAX_LIMIT: i64 = 1 << 32;

/// Longest watch `timeoutSeconds` taken as asked (about 136 years); a longer one is cut to it,
/// so a deadline computed from it can never overflow a clock.
pub const MAX_TIMEOUT_SECONDS: u64 = 1 << 32;

/// How unknown and duplicate fields in a body are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Accept, and say so in `Warning` headers. The real server's default since 1.27.
    #[default]
    Warn,
    /// Refuse the request with 400.
    Strict,
}

/// The parsed query of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// `watch=true|1`.
    pub watch: bool,
    /// `resourceVersion`: unset and `"0"` both mean "from the current state" for a watch.
    pub resource_version: Option<u64>,
    /// `resourceVersionMatch` (`NotOlderThan` | `Exact`), checked for a valid value only.
    pub resource_version_match: Option<String>,
    /// `timeoutSeconds` of a watch: `None` when unset or 0 (which kube-apiserver also reads as
    /// "the server's choice"), at most [`MAX_TIMEOUT_SECONDS`].
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks=true`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents=true` (streaming list).
    pub send_initial_events: bool,
    /// `labelSelector`, unparsed (the resource decides nothing here; the parser is shared).
    pub label_selector: Option<String>,
    /// `fieldSelector`, unparsed (which fields are supported depends on the resource).
    pub field_selector: Option<String>,
    /// `limit` for paged lists: `None` for everything (unset, zero or negative, as on
    /// kube-apiserver, or beyond [`MAX_LIMIT`]).
    pub limit: Option<usize>,
    /// `continue` token of a paged list.
    pub continue_token: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `force=true` on an apply patch.
    pub force: bool,
    /// `includeObject` for Tables, unparsed.
    pub include_object: Option<String>,
    /// `propagationPolicy` given in the query instead of the DeleteOptions body.
    pub propagation_policy: Option<String>,
    /// `gracePeriodSeconds` given in the query instead of the DeleteOptions body.
    pub grace_period_seconds: Option<i64>,
}

impl Query {
    /// Parses a raw query string (`None` when the URL has none).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = Self::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "watch" => query.watch = boolean(&key, &value)?,
                "resourceVersion" => query.resource_version = resource_version(&value)?,
                "resourceVersionMatch" => match value.as_str() {
                    "" => {}
                    "NotOlderThan" | "Exact" => query.resource_version_match = Some(value),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "resourceVersionMatch: Unsupported value: {other:?}: supported \
                             values: \"Exact\", \"NotOlderThan\""
                        )));
                    }
                },
                "timeoutSeconds" => query.timeout = timeout_seconds(&value)?,
                "allowWatchBookmarks" => query.allow_bookmarks = boolean(&key, &value)?,
                "sendInitialEvents" => query.send_initial_events = boolean(&key, &value)?,
                "labelSelector" if !value.is_empty() => query.label_selector = Some(value),
                "fieldSelector" if !value.is_empty() => query.field_selector = Some(value),
                "limit" => query.limit = limit(&value)?,
                "continue" if !value.is_empty() => query.continue_token = Some(value),
                "dryRun" => match value.as_str() {
                    "All" => query.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                        )));
                    }
                },
                "fieldValidation" => {
                    query.field_validation = match value.as_str() {
                        "Strict" => FieldValidation::Strict,
                        "Warn" | "" => FieldValidation::Warn,
                        "Ignore" => FieldValidation::Ignore,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation: Unsupported value: {other:?}: supported \
                                 values: \"Ignore\", \"Strict\", \"Warn\""
                            )));
                        }
                    }
                }
                "fieldManager" if !value.is_empty() => query.field_manager = Some(value),
                "force" => query.force = boolean(&key, &value)?,
                "includeObject" if !value.is_empty() => query.include_object = Some(value),
                "propagationPolicy" if !value.is_empty() => query.propagation_policy = Some(value),
                "gracePeriodSeconds" if !value.is_empty() => {
                    query.grace_period_seconds = Some(value.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "gracePeriodSeconds: Invalid value: {value:?}: must be an integer"
                        ))
                    })?);
                }
                // `timeout` (a client-side hint), `pretty` and the like change nothing here;
                // the real server accepts them too.
                _ => {}
            }
        }
        Ok(query)
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "{key}: invalid value {other:?}: use true or false"
        ))),
    }
}

/// An `int64` query value, as kube-apiserver decodes it: anything else is a 400.
fn int64(key: &str, value: &str) -> Result<i64, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{key}: Invalid value: {value:?}: expected a whole number between {} and {}",
            i64::MIN,
            i64::MAX
        ))
    })
}

/// `timeoutSeconds`: 0 (or empty) is no timeout of the client's; a negative one is refused
/// (kube-apiserver would end the watch at once, which no client means); a huge one is cut to
/// [`MAX_TIMEOUT_SECONDS`].
fn timeout_seconds(value: &str) -> Result<Option<Duration>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    let seconds = int64("timeoutSeconds", value)?;
    match u64::try_from(seconds) {
        Err(_) => Err(ApiError::bad_request(format!(
            "timeoutSeconds: Invalid value: {seconds}: must be greater than or equal to 0 \
             (0 or no value keeps the watch open until the server ends it)"
        ))),
        Ok(0) => Ok(None),
        Ok(seconds) => Ok(Some(Duration::from_secs(seconds.min(MAX_TIMEOUT_SECONDS)))),
    }
}

/// `limit`: as on kube-apiserver, 0 and negative values mean no limit; so does one larger than
/// any list ([`MAX_LIMIT`]).
fn limit(value: &str) -> Result<Option<usize>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    let limit = int64("limit", value)?;
    Ok((1..=MAX_LIMIT)
        .contains(&limit)
        .then(|| usize::try_from(limit).ok())
        .flatten())
}

/// `resourceVersion`: empty and `0` mean "any" (`None`); anything else must be one of ours.
fn resource_version(value: &str) -> Result<Option<u64>, ApiError> {
    match value {
        "" | "0" => Ok(None),
        text => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {text:?}: resource versions of this server \
                 are whole numbers; take one from a list or an object"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_kubectl_and_kube_rs_send() {
        let query = Query::parse(Some(
            "allowWatchBookmarks=true&fieldSelector=metadata.name%3Dhello&resourceVersion=12\
             &timeoutSeconds=290&watch=true&labelSelector=app+in+%28a%2Cb%29",
        ))
        .expect("valid");
        assert!(query.watch && query.allow_bookmarks);
        assert_eq!(query.resource_version, Some(12));
        assert_eq!(query.timeout, Some(Duration::from_secs(290)));
        assert_eq!(query.field_selector.as_deref(), Some("metadata.name=hello"));
        assert_eq!(query.label_selector.as_deref(), Some("app in (a,b)"));
        let write = Query::parse(Some(
            "fieldManager=kubectl&fieldValidation=Strict&dryRun=All",
        ))
        .expect("valid");
        assert_eq!(write.field_validation, FieldValidation::Strict);
        assert!(write.dry_run);
        assert_eq!(
            Query::parse(None).expect("empty").field_validation,
            FieldValidation::Warn
        );
    }

    #[test]
    fn rejects_bad_values_by_name() {
        for (raw, expected) in [
            ("watch=maybe", "watch"),
            ("resourceVersion=abc", "resourceVersion"),
            ("timeoutSeconds=-1", "timeoutSeconds"),
            ("timeoutSeconds=9223372036854775808", "timeoutSeconds"),
            ("timeoutSeconds=1.5", "timeoutSeconds"),
            ("limit=9223372036854775808", "limit"),
            ("limit=-9223372036854775809", "limit"),
            ("limit=ten", "limit"),
            ("fieldValidation=Loose", "fieldValidation"),
            ("dryRun=Some", "dryRun"),
        ] {
            let error = Query::parse(Some(raw)).expect_err(raw);
            assert!(error.message.starts_with(expected), "{}", error.message);
        }
    }

    #[test]
    fn huge_timeouts_are_cut_and_zero_means_none() {
        let timeout = |raw: &str| Query::parse(Some(raw)).expect(raw).timeout;
        assert_eq!(timeout("timeoutSeconds=0"), None);
        assert_eq!(timeout("timeoutSeconds="), None);
        assert_eq!(timeout("timeoutSeconds=5"), Some(Duration::from_secs(5)));
        let cut = Some(Duration::from_secs(MAX_TIMEOUT_SECONDS));
        assert_eq!(timeout("timeoutSeconds=9223372036854775807"), cut);
        assert_eq!(timeout("timeoutSeconds=4294967297"), cut);
        // The cut value leaves room on any clock.
        let deadline =
            tokio::time::Instant::now().checked_add(Duration::from_secs(MAX_TIMEOUT_SECONDS));
        assert!(deadline.is_some());
    }

    #[test]
    fn limits_that_cannot_page_list_everything() {
        let limit = |raw: &str| Query::parse(Some(raw)).expect(raw).limit;
        assert_eq!(limit("limit=0"), None);
        assert_eq!(limit("limit=-1"), None);
        assert_eq!(limit("limit=-9223372036854775808"), None);
        assert_eq!(limit("limit="), None);
        assert_eq!(limit("limit=1"), Some(1));
        assert_eq!(limit("limit=4294967296"), Some(1 << 32));
        assert_eq!(limit("limit=4294967297"), None);
        assert_eq!(limit("limit=9223372036854775807"), None);
        // The page read takes one more than the limit: that never overflows either.
        assert!(limit("limit=4294967296").is_some_and(|limit| limit.checked_add(1).is_some()));
    }

    #[test]
    fn resource_version_zero_means_any() {
        let query = Query::parse(Some("resourceVersion=0&limit=500")).expect("valid");
        assert_eq!(query.resource_version, None);
        assert_eq!(query.limit, Some(500));
    }
}
