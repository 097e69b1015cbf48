//! `GET /version` (reference §1.1): the Kubernetes version wisp's API behaves as. kubectl's
//! version dispatcher picks its binary from `minor`, so it names the newest minor the server was
//! tested with.

use serde_json::{Value, json};

/// The Kubernetes minor version advertised.
pub const KUBERNETES_MINOR: &str = "33";

/// The version document.
pub fn document() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0+wisp-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}
