//! `bench isolation`: what 200 requests spinning in one Service cost everyone else on the node.
//! Through `wisp up`: the latency of a well-behaved Service (`hello`, a closed loop) and of
//! `kubectl get ksvc` (the control plane, run one after another), first with nothing else
//! running, then while 200 requests to the `spin` sample (which never answers) hold their guests
//! busy — each as p50/p99 and as the ratio of the two.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::closed_loop::RunResult;
use crate::manifests::ServiceManifest;
use crate::report;
use crate::runner::scrape;

use super::cluster::Cluster;
use super::{gateway_target, measure, require_open_files, service_host, wisp_binary};

/// How the case runs.
pub struct Settings {
    /// Requests to `spin` held open during the loaded phase.
    pub spinning: usize,
    /// Connections of the closed loop on `hello`.
    pub connections: usize,
    /// Seconds of each closed loop.
    pub duration: Duration,
    /// `kubectl get ksvc` calls per phase.
    pub kubectl_calls: usize,
}

/// One phase's figures.
struct Phase {
    hello: RunResult,
    kubectl_ms: Histogram<u64>,
}

pub fn run(settings: &Settings) -> anyhow::Result<String> {
    require_open_files(settings.spinning + settings.connections)?;
    let wisp = wisp_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let services = [
        ServiceManifest::new("hello", wisp_samples::HELLO).autoscaling("min-scale", "1"),
        // Enough replicas from the start that 200 spinning instances fit their memory.
        ServiceManifest::new("spin", wisp_samples::SPIN).autoscaling("min-scale", "4"),
    ];
    let cluster = runtime.block_on(async {
        let cluster = Cluster::start(&wisp, &[]).await?;
        cluster.create(&services, 2).await?;
        cluster.wait_ready(services.len()).await?;
        anyhow::Ok(cluster)
    })?;
    let kubeconfig = cluster.wisp.endpoints.kubeconfig.clone();
    let target = gateway_target(&format!("http://{}", cluster.gateway()), "hello")?;

    let quiet = phase(settings, &target, &kubeconfig)?;
    let spinning = runtime.block_on(hold_spinning(
        cluster.gateway(),
        cluster.wisp.endpoints.metrics,
        settings.spinning,
    ))?;
    let loaded = phase(settings, &target, &kubeconfig)?;
    drop(spinning);
    drop(cluster);

    let mut out = format!(
        "hello (closed loop, {} connections, {}s) and `kubectl get ksvc` ({} calls in turn) through wisp up, \
         with nothing else running and while {} requests to spin run; {}\n\n",
        settings.connections,
        settings.duration.as_secs(),
        settings.kubectl_calls,
        settings.spinning,
        report::machine_line()
    );
    out.push_str(
        "| | quiet p50 | quiet p99 | with spin p50 | with spin p99 | p50 ratio | p99 ratio |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    let hello = |phase: &Phase, q: f64| phase.hello.latency_us.value_at_quantile(q);
    out.push_str(&row(
        "hello, latency",
        [hello(&quiet, 0.5), hello(&quiet, 0.99)],
        [hello(&loaded, 0.5), hello(&loaded, 0.99)],
        report::micros,
    ));
    let kubectl = |phase: &Phase, q: f64| phase.kubectl_ms.value_at_quantile(q);
    out.push_str(&row(
        "kubectl get ksvc",
        [kubectl(&quiet, 0.5), kubectl(&quiet, 0.99)],
        [kubectl(&loaded, 0.5), kubectl(&loaded, 0.99)],
        |ms| format!("{ms} ms"),
    ));
    out.push_str(&format!(
        "\nhello throughput: {:.0} req/s quiet, {:.0} req/s with spin ({:.2}×); failed requests: {} quiet, {} with spin\n",
        quiet.hello.requests_per_second(),
        loaded.hello.requests_per_second(),
        loaded.hello.requests_per_second() / quiet.hello.requests_per_second().max(f64::EPSILON),
        quiet.hello.non_2xx + quiet.hello.errors,
        loaded.hello.non_2xx + loaded.hello.errors,
    ));
    Ok(out)
}

fn row(name: &str, quiet: [u64; 2], loaded: [u64; 2], show: impl Fn(u64) -> String) -> String {
    let ratio = |a: u64, b: u64| format!("{:.2}×", b as f64 / (a as f64).max(1.0));
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} |\n",
        show(quiet[0]),
        show(quiet[1]),
        show(loaded[0]),
        show(loaded[1]),
        ratio(quiet[0], loaded[0]),
        ratio(quiet[1], loaded[1]),
    )
}

/// The closed loop on hello, while `kubectl get ksvc` runs one call after another beside it.
fn phase(
    settings: &Settings,
    target: &crate::target::Target,
    kubeconfig: &std::path::Path,
) -> anyhow::Result<Phase> {
    let kubectl = {
        let kubeconfig = kubeconfig.to_owned();
        let calls = settings.kubectl_calls;
        std::thread::spawn(move || time_kubectl(&kubeconfig, calls))
    };
    let hello = measure(
        target,
        settings.connections,
        settings.duration,
        Duration::from_secs(1),
    )?;
    let kubectl_ms = kubectl
        .join()
        .map_err(|_| anyhow::anyhow!("the kubectl timing thread panicked"))??;
    Ok(Phase { hello, kubectl_ms })
}

fn time_kubectl(kubeconfig: &std::path::Path, calls: usize) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new(3)?;
    // Checked before the clock starts: the check runs kubectl once itself.
    crate::kubectl_tool::check().map_err(anyhow::Error::msg)?;
    for _ in 0..calls {
        let started = Instant::now();
        let output = std::process::Command::new("kubectl")
            .args(["get", "ksvc", "--request-timeout=60s"])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .with_context(|| format!("cannot run kubectl; {}", crate::kubectl_tool::HOW_TO_GET))?;
        if !output.status.success() {
            bail!(
                "kubectl get ksvc failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        histogram.record(started.elapsed().as_millis() as u64)?;
    }
    Ok(histogram)
}

/// Opens `count` connections to the gateway, each sending one request to `spin` that will never
/// be answered, and waits until the node counts them all in flight; they stay open (and the
/// guests busy) until the returned value is dropped.
async fn hold_spinning(
    gateway: std::net::SocketAddr,
    metrics: std::net::SocketAddr,
    count: usize,
) -> anyhow::Result<Vec<TcpStream>> {
    let request = format!(
        "GET / HTTP/1.1\r\nhost: {}\r\nconnection: keep-alive\r\n\r\n",
        service_host("spin")
    );
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(gateway)
            .await
            .context("cannot connect to the gateway")?;
        stream.write_all(request.as_bytes()).await?;
        streams.push(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let in_flight = scrape(metrics)
            .await
            .map_or(0.0, |text| spin_in_flight(&text));
        if in_flight >= count as f64 {
            return Ok(streams);
        }
        if Instant::now() > deadline {
            bail!("only {in_flight} of {count} requests to spin were in flight after 60s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The requests of Service `spin` in flight, from a scrape of the node's metrics.
fn spin_in_flight(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("wisp_revision_requests_in_flight{")
                && line.contains(r#"service="spin""#)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_flight_is_summed_over_the_revisions_of_spin() {
        let text = "\
wisp_revision_requests_in_flight{namespace=\"default\",service=\"spin\",configuration=\"spin\",revision=\"spin-00001\"} 150
wisp_revision_requests_in_flight{namespace=\"default\",service=\"spin\",configuration=\"spin\",revision=\"spin-00002\"} 50
wisp_revision_requests_in_flight{namespace=\"default\",service=\"hello\",configuration=\"hello\",revision=\"hello-00001\"} 7
";
        assert_eq!(super::spin_in_flight(text), 200.0);
    }
}
