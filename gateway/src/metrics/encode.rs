//! Text exposition of the registry.

use prometheus_client::registry::Registry;

/// The media type of what [`super::DataPlaneMetrics::encode`] writes. prometheus-client's text encoder emits the
/// OpenMetrics 1.0 text format (counter families typed without their `_total` suffix, `# UNIT`
/// lines, a closing `# EOF`), so this is the honest content type; Prometheus asks for it in its
/// scrape `Accept` header and parses it natively. Labelling it `text/plain; version=0.0.4`
/// would make the classic parser read the family names wrongly.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encoding failed. Writing into a `String` cannot fail, so this comes only from a metric's own
/// encoder reporting an error; it is a type rather than a panic so the admin endpoint can
/// answer 500 and keep serving.
#[derive(Debug, thiserror::Error)]
#[error("encoding metrics as OpenMetrics text failed")]
pub struct EncodeError(#[from] std::fmt::Error);

/// Encodes every metric of `registry` as OpenMetrics text.
pub(super) fn encode_text(registry: &Registry) -> Result<String, EncodeError> {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}
