//! kubectl, which the end-to-end tests and the scenarios drive wisp with as a user would: on
//! PATH and recent enough, or an error that says how to get it. Checked once per process.

use std::process::Command;
use std::sync::OnceLock;

/// The oldest kubectl the suite is run with (the genuine API server is 1.34; kubectl supports a
/// server one minor either side of its own, and 1.32 has been used throughout without a
/// difference in anything the tests read).
pub const OLDEST_MINOR: u32 = 32;

/// How to get a kubectl that works.
pub const HOW_TO_GET: &str = "install kubectl 1.32 or newer on PATH: \
    https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/, e.g. `curl -fLO \
    https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl && sudo install kubectl \
    /usr/local/bin/` (Debian 12's kubernetes-client package is 1.20, too old); see README.md#testing";

/// `Ok` when `kubectl` runs and is at least 1.[`OLDEST_MINOR`]; otherwise what is wrong and
/// how to fix it.
pub fn check() -> Result<(), String> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED.get_or_init(check_now).clone()
}

/// A `kubectl` command, after [`check`].
pub fn command() -> Result<Command, String> {
    check().map(|()| Command::new("kubectl"))
}

/// [`command`] for tests: a missing or old kubectl fails the test, naming how to get one.
pub fn command_or_fail() -> Command {
    command().unwrap_or_else(|problem| panic!("{problem}"))
}

fn check_now() -> Result<(), String> {
    let output = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .map_err(|error| format!("cannot run kubectl ({error}); {HOW_TO_GET}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match client_minor(&text) {
        Some(minor) if minor >= OLDEST_MINOR => Ok(()),
        Some(minor) => Err(format!("kubectl 1.{minor} is too old; {HOW_TO_GET}")),
        None => Err(format!(
            "`kubectl version --client -o json` printed no version ({}{}); {HOW_TO_GET}",
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// The client's minor version from `kubectl version --client -o json` (`"minor": "32"`, or
/// `"32+"` for some vendors' builds).
fn client_minor(json: &str) -> Option<u32> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let minor = value["clientVersion"]["minor"].as_str()?;
    let digits: String = minor.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_minor_version_with_or_without_a_vendor_suffix() {
        let json = |minor: &str| {
            format!(
                r#"{{"clientVersion":{{"major":"1","minor":"{minor}"}},"kustomizeVersion":"v5"}}"#
            )
        };
        assert_eq!(client_minor(&json("32")), Some(32));
        assert_eq!(client_minor(&json("34+")), Some(34));
        assert_eq!(client_minor(&json("")), None);
        assert_eq!(client_minor("not json"), None);
    }

    #[test]
    fn this_machine_has_a_recent_kubectl() {
        assert_eq!(check(), Ok(()));
    }
}
