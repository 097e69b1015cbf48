//! Create → Ready through `wisp up`, one Service at a time: a component new to the node as a
//! file and from a local registry (the difference is the first pull), and a second Service of
//! each (nothing to pull or compile), each round's pulls checked in the registry's access log.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::manifests::ServiceManifest;
use crate::registry::{self, LocalRegistry};
use crate::report;

use super::Scratch;
use super::cluster::Cluster;

/// The create → Ready times of each round's four Services, by case.
#[derive(Default)]
pub struct TimesToReady {
    file_new: Vec<Duration>,
    registry_new: Vec<Duration>,
    registry_cached: Vec<Duration>,
    file_cached: Vec<Duration>,
}

/// `rounds` rounds of four Services created one at a time, each timed from create to Ready:
/// a component never seen as a file (compiled, not pulled), another never seen pushed and
/// named by tag (pinned, pulled and compiled), then a second Service of each (nothing to pull
/// or compile). Both new components are the hello with a mark of their own, so the file and the
/// registry case compile the same amount of code and differ only by the pull.
pub async fn times_to_ready(
    cluster: &Cluster,
    registry: &LocalRegistry,
    wisp: &std::path::Path,
    scratch: &Scratch,
    rounds: usize,
) -> anyhow::Result<TimesToReady> {
    let hello = std::fs::read(wisp_samples::HELLO)
        .with_context(|| format!("cannot read {}", wisp_samples::HELLO))?;
    let mut times = TimesToReady::default();
    for round in 0..rounds {
        let file = scratch.dir.join(format!("hello-file-{round}.wasm"));
        std::fs::write(
            &file,
            registry::distinct_component(&hello, &format!("file {round}")),
        )
        .with_context(|| format!("cannot write {}", file.display()))?;
        let pushed = scratch.dir.join(format!("hello-pushed-{round}.wasm"));
        std::fs::write(
            &pushed,
            registry::distinct_component(&hello, &format!("pushed {round}")),
        )
        .with_context(|| format!("cannot write {}", pushed.display()))?;
        // A repository per round, so the access log tells each round's downloads apart.
        let repository = format!("bench/fresh-{round}");
        registry.push(wisp, &pushed, &repository, "v1")?;
        let file = file.display().to_string();
        let image = format!("{}/{repository}:v1", registry.host());
        let service = |case: &str, component: &str| {
            ServiceManifest::new(format!("ready-{case}-{round:03}"), component)
                .autoscaling("initial-scale", "0")
        };
        times
            .file_new
            .push(cluster.time_to_ready(&service("file-new", &file)).await?);
        times
            .registry_new
            .push(cluster.time_to_ready(&service("oci-new", &image)).await?);
        let first_pull = registry.blob_fetches(&repository);
        times.registry_cached.push(
            cluster
                .time_to_ready(&service("oci-cached", &image))
                .await?,
        );
        let cached_pull = registry.blob_fetches(&repository) - first_pull;
        if first_pull == 0 || cached_pull != 0 {
            bail!(
                "the registry's access log shows {first_pull} blob downloads from {repository} for the first Service and {cached_pull} for the second: the rows would not be a first and a cached pull"
            );
        }
        times.file_cached.push(
            cluster
                .time_to_ready(&service("file-cached", &file))
                .await?,
        );
    }
    Ok(times)
}

pub fn ready_table(times: &Result<TimesToReady, String>) -> String {
    let names = [
        "new component, a file (compiled)",
        "new component, from the registry by tag (pinned, first pull, compiled)",
        "same component again, from the registry by tag (pinned, blob cached)",
        "same component again, a file",
    ];
    let mut out =
        String::from("| case | Services | min | p50 | max |\n|---|---:|---:|---:|---:|\n");
    let times = match times {
        Ok(times) => times,
        Err(missing) => {
            for name in names {
                out.push_str(&format!("| {name} | — | — | — | {missing} |\n"));
            }
            return out;
        }
    };
    let cases = [
        &times.file_new,
        &times.registry_new,
        &times.registry_cached,
        &times.file_cached,
    ];
    for (name, samples) in names.into_iter().zip(cases) {
        let mut samples = samples.clone();
        samples.sort();
        let at = |q: f64| {
            samples
                .get((samples.len().saturating_sub(1) as f64 * q).round() as usize)
                .map(|d| report::micros(d.as_micros() as u64))
                .unwrap_or_else(|| "—".into())
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            samples.len(),
            at(0.0),
            at(0.5),
            at(1.0)
        ));
    }
    out.push_str(&format!(
        "\n*the first pull costs over a new file (median of the per-round differences): {}*\n",
        median_difference(&times.registry_new, &times.file_new)
    ));
    out.push_str(&format!(
        "\nthe registry's access log, read after each Service was Ready: each round's first Service downloaded its component's blobs, the second downloaded none ({} rounds)\n",
        times.file_new.len()
    ));
    out
}

/// The median of `a[i] - b[i]`, signed.
fn median_difference(a: &[Duration], b: &[Duration]) -> String {
    let mut differences: Vec<i128> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.as_micros() as i128 - b.as_micros() as i128)
        .collect();
    differences.sort();
    match differences.get(differences.len() / 2) {
        None => "—".into(),
        Some(d) if *d >= 0 => report::micros(*d as u64),
        Some(d) => format!("-{}", report::micros(d.unsigned_abs() as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_difference_is_taken_per_round_and_signed() {
        let ms = Duration::from_millis;
        assert_eq!(
            median_difference(&[ms(30), ms(12), ms(50)], &[ms(10), ms(10), ms(10)]),
            "20.0 ms"
        );
        assert_eq!(median_difference(&[ms(5)], &[ms(7)]), "-2000 µs");
        assert_eq!(median_difference(&[], &[]), "—");
    }

    #[test]
    fn a_missing_registry_is_said_in_every_row() {
        let table = ready_table(&Err("missing: docker-registry".into()));
        assert_eq!(
            table.matches("missing: docker-registry").count(),
            4,
            "{table}"
        );
    }
}
