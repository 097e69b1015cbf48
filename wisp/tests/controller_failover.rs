//! `wisp controller` fail-over end to end, as real processes: a `wisp api-server`, two
//! `wisp controller` replicas with kube-controller-manager's timings (15 s / 10 s / 2 s). One
//! leads and creates a Service's first Revision; after it is killed with SIGKILL (no release),
//! the other takes over once the lease lapses and creates the second Revision. SIGTERM then
//! releases the lease and exits 0. `wisp up`'s own controllers take part in the same election,
//! so a `wisp controller` pointed at it stands by. Every wait is bounded.

mod cluster;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::WispProcess;
use serde_json::Value;

/// Bound of every wait: a takeover after SIGKILL takes up to ~25 s with these timings.
const WAIT: Duration = Duration::from_secs(60);

/// kubectl against the API server of a data directory, with its own discovery cache.
struct Kubectl {
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    fn new(kubeconfig: &Path) -> Self {
        Self {
            kubeconfig: kubeconfig.to_owned(),
            home: tempfile::tempdir().expect("kubectl home"),
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = wisp_loadtests::kubectl_tool::command_or_fail()
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let Some(text) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    fn apply(&self, yaml: &str) {
        let output = self.run(&["apply", "-f", "-"], Some(yaml));
        assert!(
            output.status.success(),
            "apply failed: {}\n{yaml}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `kubectl get ARGS… -o json`, or None while it does not exist.
    fn get(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["get"];
        all.extend(args);
        all.extend(["-o", "json"]);
        let output = self.run(&all, None);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("NotFound"), "kubectl {all:?}: {stderr}");
            return None;
        }
        Some(serde_json::from_slice(&output.stdout).expect("kubectl prints JSON"))
    }

    /// The controllers' Lease, once it exists.
    fn lease(&self) -> Option<Value> {
        self.get(&["lease", "wisp-controller", "-n", "kube-system"])
    }

    fn revision(&self, name: &str) -> Option<Value> {
        self.get(&["revision", name, "-n", "default"])
    }
}

/// Polls `check` until it gives something; panics naming `what` (with `logs()`) after [`WAIT`].
fn wait_for<T>(what: &str, logs: impl Fn() -> String, check: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; logs:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn holder(lease: &Value) -> Option<&str> {
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
}

fn transitions(lease: &Value) -> i64 {
    lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0)
}

/// The `hello` Service, with `TARGET` set to `target`.
fn hello(target: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\n  \
         namespace: default\nspec:\n  template:\n    spec:\n      containers:\n      - image: \
         hello.wasm\n        env:\n        - name: TARGET\n          value: {target}\n"
    )
}

fn controller(kubeconfig: &Path, identity: &str) -> WispProcess {
    WispProcess::start(
        &[
            "controller".as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            "--identity".as_ref(),
            identity.as_ref(),
            // wisp's own API server admits Knative resources itself: no webhooks.
            "--webhook-addr".as_ref(),
            "none".as_ref(),
        ],
        0,
    )
}

#[test]
fn a_standby_controller_takes_over_after_the_leader_is_killed() {
    let data = tempfile::tempdir().expect("data dir");
    let api = WispProcess::start(
        &[
            "api-server".as_ref(),
            "--data-dir".as_ref(),
            data.path().as_os_str(),
            "--api-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        2,
    );
    let kubeconfig = PathBuf::from(api.value("kubeconfig"));
    let kubectl = Kubectl::new(&kubeconfig);
    let mut a = Some(controller(&kubeconfig, "a"));
    let mut b = Some(controller(&kubeconfig, "b"));
    let logs = |a: &Option<WispProcess>, b: &Option<WispProcess>| {
        let of = |p: &Option<WispProcess>| p.as_ref().map(WispProcess::logs).unwrap_or_default();
        format!("--- a:\n{}\n--- b:\n{}", of(a), of(b))
    };

    let leader = wait_for(
        "a leader",
        || logs(&a, &b),
        || kubectl.lease().and_then(|l| holder(&l).map(str::to_owned)),
    );
    assert!(leader == "a" || leader == "b", "leader {leader:?}");

    kubectl.apply(&hello("one"));
    wait_for(
        "the first revision",
        || logs(&a, &b),
        || kubectl.revision("hello-00001"),
    );
    let before = kubectl.lease().expect("the lease");
    assert_eq!(holder(&before), Some(leader.as_str()), "still the leader");

    // SIGKILL: no release, so the survivor must wait for the lease to lapse.
    let (killed, survivor) = if leader == "a" {
        (&mut a, "b")
    } else {
        (&mut b, "a")
    };
    if let Some(mut process) = killed.take() {
        process.kill();
    }
    kubectl.apply(&hello("two"));
    let second = wait_for(
        "the survivor to create the second revision",
        || logs(&a, &b),
        || kubectl.revision("hello-00002"),
    );
    assert_eq!(
        second["metadata"]["labels"]["serving.knative.dev/configurationGeneration"],
        "2"
    );

    let after = kubectl.lease().expect("the lease");
    assert_eq!(holder(&after), Some(survivor));
    assert!(
        transitions(&after) > transitions(&before),
        "leaseTransitions went up: {before} → {after}"
    );
    let survivor_process = if survivor == "a" { &mut a } else { &mut b };
    let mut survivor_process = survivor_process.take().expect("the survivor runs");
    let survivor_logs = survivor_process.logs();
    assert!(
        survivor_logs.contains(&format!("standing by (leader is {leader})")),
        "{survivor_logs}"
    );
    assert!(survivor_logs.contains("became leader"), "{survivor_logs}");

    // SIGTERM: the survivor stops, releases the lease and exits 0.
    survivor_process.terminate();
    let status = survivor_process.wait_exit();
    assert!(status.success(), "{status:?}:\n{}", survivor_process.logs());
    let released = kubectl.lease().expect("the lease");
    assert_eq!(holder(&released), None, "{released}");
    assert_eq!(released["spec"]["leaseDurationSeconds"], 1);
    drop(api);
}

#[test]
fn a_controller_against_wisp_up_stands_by() {
    let up = cluster::Up::start(&[]);
    let standby = controller(&up.kubeconfig, "x");
    wait_for(
        "the controller to stand by",
        || standby.logs(),
        || {
            standby
                .logs()
                .contains("standing by (leader is wisp-up)")
                .then_some(())
        },
    );
    let kubectl = Kubectl::new(&up.kubeconfig);
    let lease = kubectl.lease().expect("wisp up's lease");
    assert_eq!(holder(&lease), Some("wisp-up"));
    assert!(!standby.logs().contains("became leader"));
}
