//! `wisp crds`: prints the Knative Serving CustomResourceDefinitions a Kubernetes cluster needs
//! before wisp can run there (`deploy/kubernetes/300-crds.yaml` is this output), built from
//! the schemas and names `wisp up`'s embedded API server serves (`wisp_control::crd`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

pub fn run() -> anyhow::Result<ExitCode> {
    let manifest = wisp_control::crd::manifest().context("cannot build the CRDs")?;
    let mut out = std::io::stdout().lock();
    out.write_all(manifest.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
