//! The kubectl matrix of `shared/reference/kubernetes-api.md` §9, run with the real `kubectl`
//! against a real API server: every test asserts on the text kubectl prints, because the
//! point is that a user's kubectl session looks like one against a Knative cluster.
//!
//! Each case runs twice (see [`matrix!`] at the end): `embedded::case` against wisp's API
//! server, `genuine::case` against a fresh kube-apiserver 1.34 with Knative Serving's CRDs and
//! wisp's admission webhooks (`support/genuine.rs`). Every assertion holds on both; where the
//! genuine server differed, the embedded one was changed to match.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Backend, Cluster};

/// The columns Knative's CRD prints for a Service (reference §4).
const KSVC_COLUMNS: [&str; 6] = [
    "NAME",
    "URL",
    "LATESTCREATED",
    "LATESTREADY",
    "READY",
    "REASON",
];

/// What kubectl prints when a ksvc is gone.
const HELLO_NOT_FOUND: &str =
    "Error from server (NotFound): services.serving.knative.dev \"hello\" not found";

/// The admission webhook's prefix for Knative validation failures (reference §2.6).
const WEBHOOK_DENIED: &str = "admission webhook \"validation.webhook.serving.knative.dev\" \
                              denied the request: validation failed: ";

/// How long a test waits for a background kubectl to show something.
const PATIENCE: Duration = Duration::from_secs(20);

// ----- manifests -------------------------------------------------------------------------

/// A Knative Service manifest; `labels` and `extra_spec` (YAML indented under `spec:`) are
/// optional additions to a single-container template with a `TARGET` env var.
fn manifest(name: &str, namespace: &str, labels: &[(&str, &str)], extra_spec: &str) -> String {
    let mut yaml = format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: {name}\n  \
         namespace: {namespace}\n"
    );
    if !labels.is_empty() {
        yaml.push_str("  labels:\n");
        for (key, value) in labels {
            yaml.push_str(&format!("    {key}: \"{value}\"\n"));
        }
    }
    yaml.push_str(&format!("spec:\n{}{extra_spec}", template("World")));
    yaml
}

/// The `spec.template` block (indented for `spec:`) with one container.
fn template(target: &str) -> String {
    format!(
        "  template:\n    spec:\n      containers:\n      - image: \
         ghcr.io/knative/helloworld-go:latest\n        env:\n        - name: TARGET\n          \
         value: {target}\n"
    )
}

/// The `hello` Service in `default` with its env var set to `target`.
fn hello(target: &str) -> String {
    format!(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\n  \
         namespace: default\nspec:\n{}",
        template(target)
    )
}

/// A Namespace manifest.
fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

/// Several manifests as one multi-document stream (one kubectl run applies them all).
fn documents(manifests: &[String]) -> String {
    manifests.join("---\n")
}

/// Writes `yaml` into the cluster's data directory, for commands whose messages name the file.
fn write_file(cluster: &Cluster, file: &str, yaml: &str) -> PathBuf {
    let path = cluster.dir.path().join(file);
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

// ----- cluster set-up ------------------------------------------------------------------

/// A cluster with `hello` applied.
fn cluster_with_hello(backend: Backend) -> Cluster {
    let cluster = Cluster::start_on(backend);
    apply(&cluster, &hello("World"));
    cluster
}

/// `kubectl apply -f -`, returning stdout.
fn apply(cluster: &Cluster, yaml: &str) -> String {
    cluster.ok_with(&["apply", "-f", "-"], yaml)
}

/// Writes a status through the status subresource, as a controller would.
fn set_status(cluster: &Cluster, name: &str, status: &str) {
    let patch = format!("{{\"status\":{status}}}");
    let out = cluster.ok(&[
        "patch",
        "ksvc",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
    assert_eq!(
        out.trim(),
        format!("service.serving.knative.dev/{name} patched")
    );
}

/// Marks a Service Ready=True.
fn set_ready(cluster: &Cluster, name: &str) {
    set_status(
        cluster,
        name,
        r#"{"conditions":[{"type":"Ready","status":"True"}]}"#,
    );
}

/// A status as Knative's controller would write it for a ready first revision.
fn ready_status(name: &str) -> String {
    format!(
        r#"{{"url":"http://{name}.default.example.com","latestCreatedRevisionName":"{name}-00001","latestReadyRevisionName":"{name}-00001","conditions":[{{"type":"Ready","status":"True"}}]}}"#
    )
}

/// One field of an object, through kubectl's JSONPath output.
fn jsonpath(cluster: &Cluster, target: &[&str], path: &str) -> String {
    let template = format!("jsonpath={{{path}}}");
    let mut args = vec!["get"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["-o", &template]);
    cluster.ok(&args)
}

/// An object as JSON.
fn get_json(cluster: &Cluster, target: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&cluster.ok(&args)).expect("kubectl prints JSON")
}

/// Asserts `hello` is not stored.
fn assert_hello_gone(cluster: &Cluster) {
    let err = cluster.fails(&["get", "ksvc", "hello"]);
    assert_contains(&err, HELLO_NOT_FOUND);
}

// ----- reading kubectl's output -------------------------------------------------------

#[track_caller]
fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

/// The header cells of a table.
fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .map(|line| line.split_whitespace().collect())
        .unwrap_or_default()
}

/// The non-empty cells of every data row.
fn rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect())
        .collect()
}

/// The row whose cell at `column` is `value`.
fn row<'a>(table: &'a str, column: usize, value: &str) -> Vec<&'a str> {
    rows(table)
        .into_iter()
        .find(|cells| cells.get(column) == Some(&value))
        .unwrap_or_else(|| panic!("no row with {value:?} in column {column}:\n{table}"))
}

/// The first cell of every data row.
fn first_column(table: &str) -> Vec<&str> {
    rows(table)
        .into_iter()
        .filter_map(|cells| cells.first().copied())
        .collect()
}

/// The value after `key:` on a `kubectl describe` line.
fn described<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}:");
    text.lines()
        .map(str::trim_start)
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(str::trim)
}

/// The text of an `Output`'s streams.
fn streams(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// ----- background kubectl --------------------------------------------------------------

/// A kubectl left running (watch, wait, waiting delete); killed if the test ends first.
struct Background {
    /// `None` once [`Background::finish`] has reaped it.
    child: Option<Child>,
    /// The thread reading its stderr, which hands the whole of it back (see
    /// [`Background::spawn_watching`]).
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
}

impl Background {
    fn spawn(cluster: &Cluster, args: &[&str]) -> Self {
        let child = cluster
            .kubectl_command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is on PATH");
        Self {
            child: Some(child),
            stderr: None,
        }
    }

    /// Spawns kubectl with its request log on (`-v=6`) and returns once that log shows its watch
    /// answered (a request with `watch=true`): a change made next lands after the watch started,
    /// the harder order for the command under test.
    fn spawn_watching(cluster: &Cluster, args: &[&str]) -> Self {
        let mut verbose = args.to_vec();
        verbose.push("-v=6");
        let mut background = Self::spawn(cluster, &verbose);
        let stderr = background.child().stderr.take().expect("piped stderr");
        let (send, lines) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.extend_from_slice(line.as_bytes());
                all.push(b'\n');
                let _ = send.send(line);
            }
            all
        });
        let mut seen = Vec::new();
        let watching = line_where(&lines, |line| {
            seen.push(line.to_owned());
            line.contains("watch=true")
        });
        assert!(
            watching.is_some(),
            "kubectl {args:?} never opened its watch:\n{}",
            seen.join("\n")
        );
        background.stderr = Some(reader);
        background
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("still running")
    }

    /// Its stdout, line by line, read on a thread so the test can time out.
    fn lines(&mut self) -> Receiver<String> {
        let stdout = self.child().stdout.take().expect("piped stdout");
        let (send, receive) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        receive
    }

    /// Waits (within [`PATIENCE`]) for it to exit by itself. Polling with unread pipes is
    /// safe because these commands print a line or two, far below a pipe's buffer.
    fn finish(mut self) -> Output {
        let deadline = Instant::now() + PATIENCE;
        while self.child().try_wait().expect("poll kubectl").is_none() {
            assert!(Instant::now() < deadline, "kubectl did not finish in time");
            thread::sleep(Duration::from_millis(50));
        }
        let child = self.child.take().expect("still running");
        let mut output = child.wait_with_output().expect("kubectl output");
        if let Some(reader) = self.stderr.take() {
            // The reader ends when the pipe closes, which it has once the process exited.
            output.stderr = reader.join().unwrap_or_default();
        }
        output
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The first line from `lines` that satisfies `wanted`, within [`PATIENCE`].
fn line_where(lines: &Receiver<String>, mut wanted: impl FnMut(&str) -> bool) -> Option<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = lines.recv_timeout(left).ok()?;
        if wanted(&line) {
            return Some(line);
        }
    }
}

// ----- apply ---------------------------------------------------------------------------

fn apply_creates_then_reports_unchanged_then_configured(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    assert_eq!(
        apply(&cluster, &hello("World")).trim(),
        "service.serving.knative.dev/hello created"
    );
    assert_eq!(
        apply(&cluster, &hello("World")).trim(),
        "service.serving.knative.dev/hello unchanged"
    );
    assert_eq!(
        apply(&cluster, &hello("Wisp")).trim(),
        "service.serving.knative.dev/hello configured"
    );
    let env = jsonpath(
        &cluster,
        &["ksvc", "hello"],
        ".spec.template.spec.containers[0].env[0].value",
    );
    assert_eq!(env, "Wisp");
    assert_eq!(
        jsonpath(&cluster, &["ksvc", "hello"], ".metadata.generation"),
        "2"
    );
}

fn server_side_apply_creates_and_updates(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let ssa = ["apply", "--server-side", "-f", "-"];
    assert_eq!(
        cluster.ok_with(&ssa, &hello("World")).trim(),
        "service.serving.knative.dev/hello serverside-applied"
    );
    assert_eq!(
        cluster.ok_with(&ssa, &hello("Wisp")).trim(),
        "service.serving.knative.dev/hello serverside-applied"
    );
    let env = jsonpath(
        &cluster,
        &["ksvc", "hello"],
        ".spec.template.spec.containers[0].env[0].value",
    );
    assert_eq!(env, "Wisp");
}

fn server_side_apply_takes_over_a_client_side_applied_object(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let out = cluster.ok_with(&["apply", "--server-side", "-f", "-"], &hello("Wisp"));
    assert_eq!(
        out.trim(),
        "service.serving.knative.dev/hello serverside-applied"
    );
    let env = jsonpath(
        &cluster,
        &["ksvc", "hello"],
        ".spec.template.spec.containers[0].env[0].value",
    );
    assert_eq!(env, "Wisp");
    // The server rewrote the client-side apply's annotation to what was applied.
    let object = get_json(&cluster, &["ksvc", "hello"]);
    let last_applied: Value =
        object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .expect("a last-applied annotation");
    let expected: Value = serde_json::from_str(&cluster.ok_with(
        &["create", "--dry-run=client", "-o", "json", "-f", "-"],
        &hello("Wisp"),
    ))
    .expect("kubectl prints JSON");
    assert_eq!(last_applied, expected);
    // A client-side apply of the same still patches: kubectl's own annotation would carry
    // `"annotations":{}`, the server's does not.
    assert_eq!(
        apply(&cluster, &hello("Wisp")).trim(),
        "service.serving.knative.dev/hello configured"
    );
}

// ----- get -----------------------------------------------------------------------------

fn get_by_every_name_prints_the_knative_columns(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    set_status(&cluster, "hello", &ready_status("hello"));
    let expected = vec![
        "hello",
        "http://hello.default.example.com",
        "hello-00001",
        "hello-00001",
        "True",
    ];
    for resource in [
        "ksvc",
        "kservice",
        "services.serving.knative.dev",
        "service.serving.knative.dev",
    ] {
        let table = cluster.ok(&["get", resource]);
        assert_eq!(header(&table), KSVC_COLUMNS, "get {resource}");
        assert_eq!(rows(&table), vec![expected.clone()], "get {resource}");
    }
}

fn get_a_missing_service_is_not_found(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    assert_hello_gone(&cluster);
    let output = cluster.kubectl(&["get", "ksvc"]);
    let (stdout, stderr) = streams(&output);
    assert!(output.status.success());
    assert_eq!(stdout, "");
    assert_contains(&stderr, "No resources found in default namespace.");
}

fn get_wide_prints_the_same_columns(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    set_ready(&cluster, "hello");
    let table = cluster.ok(&["get", "ksvc", "-o", "wide"]);
    assert_eq!(header(&table), KSVC_COLUMNS);
    assert_eq!(rows(&table), vec![vec!["hello", "True"]]);
}

fn get_yaml_shows_the_defaulted_object(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    // A leading newline lets every expected line be matched from its start.
    let yaml = format!("\n{}", cluster.ok(&["get", "ksvc", "hello", "-o", "yaml"]));
    for line in [
        "apiVersion: serving.knative.dev/v1",
        "kind: Service",
        "  name: hello",
        "  namespace: default",
        "  generation: 1",
        "    serving.knative.dev/creator: ",
        "      containerConcurrency: 0",
        "      timeoutSeconds: 300",
        "  - latestRevision: true",
        "    percent: 100",
        "    kubectl.kubernetes.io/last-applied-configuration: |",
    ] {
        assert_contains(&yaml, &format!("\n{line}"));
    }
    assert!(
        !yaml.contains("managedFields"),
        "kubectl hides managedFields"
    );
}

fn get_json_prints_the_object(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let object = get_json(&cluster, &["ksvc", "hello"]);
    assert_eq!(object["kind"], "Service");
    assert_eq!(object["apiVersion"], "serving.knative.dev/v1");
    assert_eq!(object["metadata"]["name"], "hello");
    assert!(
        object["metadata"]["uid"]
            .as_str()
            .is_some_and(|uid| uid.len() == 36)
    );
    assert!(
        object["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| rv.parse::<u64>().is_ok())
    );
    assert_eq!(object["spec"]["traffic"][0]["percent"], 100);

    let list = get_json(&cluster, &["ksvc"]);
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "hello");
}

fn get_name_prints_resource_slash_name(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    apply(
        &cluster,
        &documents(&[hello("World"), manifest("other", "default", &[], "")]),
    );
    let out = cluster.ok(&["get", "ksvc", "-o", "name"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "service.serving.knative.dev/hello",
            "service.serving.knative.dev/other"
        ]
    );
}

fn get_all_namespaces_adds_the_namespace_column(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    apply(
        &cluster,
        &documents(&[
            namespace("team"),
            hello("World"),
            manifest("other", "team", &[], ""),
        ]),
    );
    let table = cluster.ok(&["get", "ksvc", "-A"]);
    let mut columns = vec!["NAMESPACE"];
    columns.extend(KSVC_COLUMNS);
    assert_eq!(header(&table), columns);
    assert_eq!(
        rows(&table),
        vec![vec!["default", "hello"], vec!["team", "other"]]
    );
    assert_eq!(
        first_column(&cluster.ok(&["get", "ksvc", "-n", "team"])),
        ["other"]
    );
}

/// Three services: hello (app=web, tier=front), api (app=api, tier=back), site (app=web).
fn cluster_with_labelled_services(backend: Backend) -> Cluster {
    let cluster = Cluster::start_on(backend);
    apply(
        &cluster,
        &documents(&[
            manifest("hello", "default", &[("app", "web"), ("tier", "front")], ""),
            manifest("api", "default", &[("app", "api"), ("tier", "back")], ""),
            manifest("site", "default", &[("app", "web")], ""),
        ]),
    );
    cluster
}

fn get_with_label_selectors(backend: Backend) {
    let cluster = cluster_with_labelled_services(backend);
    let selected = |selector: &str| {
        let table = cluster.ok(&["get", "ksvc", "-l", selector]);
        first_column(&table)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(selected("app=web"), ["hello", "site"]);
    assert_eq!(selected("app!=web"), ["api"]);
    assert_eq!(selected("tier in (front,back)"), ["api", "hello"]);
    assert_eq!(selected("app=web,tier notin (front)"), ["site"]);
    assert_eq!(selected("!tier"), ["site"]);
    let err = cluster.kubectl(&["get", "ksvc", "-l", "app=nothing"]);
    assert_contains(&streams(&err).1, "No resources found in default namespace.");
}

fn get_show_labels_adds_the_labels_column(backend: Backend) {
    let cluster = cluster_with_labelled_services(backend);
    let table = cluster.ok(&["get", "ksvc", "--show-labels"]);
    let mut columns = KSVC_COLUMNS.to_vec();
    columns.push("LABELS");
    assert_eq!(header(&table), columns);
    assert_eq!(row(&table, 0, "hello"), ["hello", "app=web,tier=front"]);
    assert_eq!(row(&table, 0, "site"), ["site", "app=web"]);
}

fn get_sort_by_orders_the_rows(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    // Created out of name order, and ranked against it, so each sort is visible.
    apply(
        &cluster,
        &documents(&[
            manifest("zeta", "default", &[("rank", "1")], ""),
            manifest("alpha", "default", &[("rank", "3")], ""),
            manifest("mid", "default", &[("rank", "2")], ""),
        ]),
    );
    let by_name = cluster.ok(&["get", "ksvc", "--sort-by=.metadata.name"]);
    assert_eq!(header(&by_name), KSVC_COLUMNS);
    assert_eq!(first_column(&by_name), ["alpha", "mid", "zeta"]);
    let by_rank = cluster.ok(&["get", "ksvc", "--sort-by=.metadata.labels.rank"]);
    assert_eq!(first_column(&by_rank), ["zeta", "mid", "alpha"]);
}

fn get_all_lists_the_service(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    set_ready(&cluster, "hello");
    let all = cluster.ok(&["get", "all"]);
    // One table per kind, blank-line separated; a genuine cluster's `default` namespace also
    // holds the API server's own core Service (`service/kubernetes`), which wisp does not serve.
    let table = all
        .split("\n\n")
        .find(|table| table.contains("service.serving.knative.dev/hello"))
        .unwrap_or_else(|| panic!("no table lists the ksvc:\n{all}"));
    assert_eq!(header(table), KSVC_COLUMNS);
    assert_eq!(
        row(table, 0, "service.serving.knative.dev/hello"),
        ["service.serving.knative.dev/hello", "True"]
    );
}

fn get_watch_prints_a_live_change(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let mut watch = Background::spawn(&cluster, &["get", "ksvc", "-w"]);
    let lines = watch.lines();
    let first = line_where(&lines, |line| line.starts_with("NAME")).expect("table header");
    assert_eq!(header(&first), KSVC_COLUMNS);
    line_where(&lines, |line| line.starts_with("hello")).expect("the initial row");

    set_status(&cluster, "hello", &ready_status("hello"));
    let changed = line_where(&lines, |line| line.contains("True")).expect("the changed row");
    assert_eq!(
        changed.split_whitespace().collect::<Vec<_>>(),
        [
            "hello",
            "http://hello.default.example.com",
            "hello-00001",
            "hello-00001",
            "True"
        ]
    );

    apply(&cluster, &manifest("later", "default", &[], ""));
    line_where(&lines, |line| line.starts_with("later ")).expect("a row for the new service");
}

fn describe_prints_the_service(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let text = cluster.ok(&["describe", "ksvc", "hello"]);
    let expectations = [
        ("Name", "hello"),
        ("Namespace", "default"),
        ("API Version", "serving.knative.dev/v1"),
        ("Kind", "Service"),
        ("Generation", "1"),
        ("Image", "ghcr.io/knative/helloworld-go:latest"),
        ("Value", "World"),
        ("Percent", "100"),
        ("Timeout Seconds", "300"),
        ("Events", "<none>"),
    ];
    for (key, value) in expectations {
        assert_eq!(described(&text, key), Some(value), "{key} in:\n{text}");
    }
    assert_contains(&text, "serving.knative.dev/creator: ");
}

// ----- delete --------------------------------------------------------------------------

fn delete_without_finalizer_removes_the_service(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let out = cluster.ok(&["delete", "ksvc", "hello"]);
    assert_eq!(out.trim(), "service.serving.knative.dev \"hello\" deleted");
    assert_hello_gone(&cluster);
    let err = cluster.fails(&["delete", "ksvc", "hello"]);
    assert_contains(&err, HELLO_NOT_FOUND);
}

/// `hello` carrying a finalizer nobody will remove by itself.
fn cluster_with_held_hello(backend: Backend) -> Cluster {
    let cluster = Cluster::start_on(backend);
    let held = hello("World").replace(
        "  namespace: default\n",
        "  namespace: default\n  finalizers:\n  - example.com/hold\n",
    );
    apply(&cluster, &held);
    cluster
}

/// Removes every finalizer with a JSON patch.
fn release(cluster: &Cluster) {
    let out = cluster.ok(&[
        "patch",
        "ksvc",
        "hello",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    assert_eq!(out.trim(), "service.serving.knative.dev/hello patched");
}

fn delete_with_finalizer_marks_then_the_patch_removes(backend: Backend) {
    let cluster = cluster_with_held_hello(backend);
    let out = cluster.ok(&["delete", "ksvc", "hello", "--wait=false"]);
    assert_eq!(out.trim(), "service.serving.knative.dev \"hello\" deleted");

    let stamp = jsonpath(&cluster, &["ksvc", "hello"], ".metadata.deletionTimestamp");
    assert!(
        stamp.ends_with('Z') && stamp.len() == 20,
        "deletionTimestamp {stamp:?}"
    );
    let finalizers = jsonpath(&cluster, &["ksvc", "hello"], ".metadata.finalizers[*]");
    assert_eq!(finalizers, "example.com/hold");
    assert_eq!(first_column(&cluster.ok(&["get", "ksvc"])), ["hello"]);

    release(&cluster);
    assert_hello_gone(&cluster);
}

fn delete_waits_until_the_finalizer_is_removed(backend: Backend) {
    let cluster = cluster_with_held_hello(backend);
    let deleting =
        Background::spawn_watching(&cluster, &["delete", "ksvc", "hello", "--timeout=30s"]);
    release(&cluster);
    let output = deleting.finish();
    let (stdout, stderr) = streams(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        "service.serving.knative.dev \"hello\" deleted"
    );
    assert_hello_gone(&cluster);
}

// ----- wait ----------------------------------------------------------------------------

fn wait_for_ready_sees_the_condition_set_later(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let waiting = Background::spawn_watching(
        &cluster,
        &[
            "wait",
            "--for=condition=Ready",
            "ksvc/hello",
            "--timeout=30s",
        ],
    );
    set_ready(&cluster, "hello");
    let output = waiting.finish();
    let (stdout, stderr) = streams(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        "service.serving.knative.dev/hello condition met"
    );
}

fn wait_for_ready_returns_at_once_when_already_ready_and_times_out_otherwise(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    apply(
        &cluster,
        &documents(&[hello("World"), manifest("slow", "default", &[], "")]),
    );
    set_ready(&cluster, "hello");
    let out = cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "ksvc/hello",
        "--timeout=10s",
    ]);
    assert_eq!(
        out.trim(),
        "service.serving.knative.dev/hello condition met"
    );
    let err = cluster.fails(&["wait", "--for=condition=Ready", "ksvc/slow", "--timeout=1s"]);
    assert_contains(&err, "timed out waiting for the condition on services/slow");
}

// ----- replace, create, patch ------------------------------------------------------------

fn replace_with_a_stale_resource_version_conflicts(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let current = cluster.ok(&["get", "ksvc", "hello", "-o", "yaml"]);
    let file = write_file(&cluster, "hello.yaml", &current);
    let file = file.to_str().expect("utf-8 path");
    cluster.ok(&["label", "ksvc", "hello", "touched=yes"]);

    let err = cluster.fails(&["replace", "-f", file]);
    assert_contains(
        &err,
        &format!(
            "Error from server (Conflict): error when replacing \"{file}\": Operation cannot be \
             fulfilled on services.serving.knative.dev \"hello\": the object has been modified; \
             please apply your changes to the latest version and try again"
        ),
    );

    let fresh = cluster.ok(&["get", "ksvc", "hello", "-o", "yaml"]);
    let fresh = write_file(
        &cluster,
        "fresh.yaml",
        &fresh.replace("value: World", "value: New"),
    );
    let out = cluster.ok(&["replace", "-f", fresh.to_str().expect("utf-8 path")]);
    assert_eq!(out.trim(), "service.serving.knative.dev/hello replaced");
}

fn create_of_an_existing_name_is_already_exists(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let file = write_file(&cluster, "ksvc.yaml", &hello("World"));
    let file = file.to_str().expect("utf-8 path");
    let out = cluster.ok(&["create", "-f", file]);
    assert_eq!(out.trim(), "service.serving.knative.dev/hello created");
    let err = cluster.fails(&["create", "-f", file]);
    assert_contains(
        &err,
        &format!(
            "Error from server (AlreadyExists): error when creating \"{file}\": \
             services.serving.knative.dev \"hello\" already exists"
        ),
    );
}

fn patch_merge_and_json(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let merge = cluster.ok(&[
        "patch",
        "ksvc",
        "hello",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"merge"}}}"#,
    ]);
    assert_eq!(merge.trim(), "service.serving.knative.dev/hello patched");
    assert_eq!(
        jsonpath(&cluster, &["ksvc", "hello"], ".metadata.labels.patched"),
        "merge"
    );

    let json = cluster.ok(&[
        "patch",
        "ksvc",
        "hello",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/metadata/labels/patched","value":"merge"},{"op":"replace","path":"/spec/template/spec/containers/0/env/0/value","value":"Json"}]"#,
    ]);
    assert_eq!(json.trim(), "service.serving.knative.dev/hello patched");
    let env = jsonpath(
        &cluster,
        &["ksvc", "hello"],
        ".spec.template.spec.containers[0].env[0].value",
    );
    assert_eq!(env, "Json");
    assert_eq!(
        jsonpath(&cluster, &["ksvc", "hello"], ".metadata.generation"),
        "2"
    );
}

fn failing_json_patch_test_changes_nothing(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let err = cluster.fails(&[
        "patch",
        "ksvc",
        "hello",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/template/spec/containers/0/env/0/value","value":"Nope"},{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]"#,
    ]);
    // The real server says nothing of what failed; neither does the embedded one.
    assert_contains(
        &err,
        "The request is invalid: the server rejected our request due to an error in our request",
    );
    assert_eq!(
        jsonpath(&cluster, &["ksvc", "hello"], ".metadata.labels"),
        ""
    );
}

fn strategic_patch_of_a_service_is_unsupported(backend: Backend) {
    let cluster = cluster_with_hello(backend);
    let err = cluster.fails(&[
        "patch",
        "ksvc",
        "hello",
        "-p",
        r#"{"metadata":{"labels":{"a":"b"}}}"#,
    ]);
    assert_contains(
        &err,
        "error: application/strategic-merge-patch+json is not supported by \
         serving.knative.dev/v1, Kind=Service: the body of the request was in an unknown format - \
         accepted media types include: application/json-patch+json, \
         application/merge-patch+json, application/apply-patch+yaml",
    );
    assert_eq!(
        jsonpath(&cluster, &["ksvc", "hello"], ".metadata.labels"),
        ""
    );
}

fn strategic_patch_and_apply_of_a_namespace(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let out = cluster.ok(&[
        "patch",
        "ns",
        "default",
        "-p",
        r#"{"metadata":{"labels":{"team":"a"}}}"#,
    ]);
    assert_eq!(out.trim(), "namespace/default patched");
    let table = cluster.ok(&["get", "ns", "default", "--show-labels"]);
    assert_eq!(header(&table), ["NAME", "STATUS", "AGE", "LABELS"]);
    let cells = row(&table, 0, "default");
    assert_eq!(cells[1], "Active");
    assert_contains(cells[3], "team=a");

    let labelled = |value: &str| format!("{}  labels:\n    team: {value}\n", namespace("team"));
    assert_eq!(
        apply(&cluster, &labelled("a")).trim(),
        "namespace/team created"
    );
    assert_eq!(
        apply(&cluster, &labelled("a")).trim(),
        "namespace/team unchanged"
    );
    assert_eq!(
        apply(&cluster, &labelled("b")).trim(),
        "namespace/team configured"
    );
    assert_eq!(
        jsonpath(&cluster, &["ns", "team"], ".metadata.labels.team"),
        "b"
    );
}

// ----- dry run ---------------------------------------------------------------------------

fn server_dry_run_stores_nothing(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let created = cluster.ok_with(&["create", "--dry-run=server", "-f", "-"], &hello("World"));
    assert_eq!(
        created.trim(),
        "service.serving.knative.dev/hello created (server dry run)"
    );
    let applied = cluster.ok_with(&["apply", "--dry-run=server", "-f", "-"], &hello("World"));
    assert_eq!(
        applied.trim(),
        "service.serving.knative.dev/hello created (server dry run)"
    );
    assert_hello_gone(&cluster);

    apply(&cluster, &hello("World"));
    let configured = cluster.ok_with(&["apply", "--dry-run=server", "-f", "-"], &hello("Dry"));
    assert_eq!(
        configured.trim(),
        "service.serving.knative.dev/hello configured (server dry run)"
    );
    let env = jsonpath(
        &cluster,
        &["ksvc", "hello"],
        ".spec.template.spec.containers[0].env[0].value",
    );
    assert_eq!(env, "World");
}

// ----- discovery, OpenAPI, version ------------------------------------------------------

fn api_resources_lists_short_names_and_categories(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let table = cluster.ok(&[
        "api-resources",
        "--api-group=serving.knative.dev",
        "-o",
        "wide",
    ]);
    assert_eq!(
        header(&table),
        [
            "NAME",
            "SHORTNAMES",
            "APIVERSION",
            "NAMESPACED",
            "KIND",
            "VERBS",
            "CATEGORIES"
        ]
    );
    let expected = [
        ("services", "kservice,ksvc", "Service"),
        ("configurations", "config,cfg", "Configuration"),
        ("revisions", "rev", "Revision"),
        ("routes", "rt", "Route"),
    ];
    for (plural, short_names, kind) in expected {
        let cells = row(&table, 0, plural);
        assert_eq!(
            cells[1..5],
            [short_names, "serving.knative.dev/v1", "true", kind],
            "{plural}"
        );
        assert_eq!(cells[6], "all,knative,serving", "{plural}");
    }

    let all = cluster.ok(&["api-resources"]);
    assert_eq!(
        row(&all, 0, "namespaces")[1..],
        ["ns", "v1", "false", "Namespace"]
    );
}

fn explain_prints_the_schema_descriptions(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let spec = cluster.ok(&["explain", "ksvc.spec"]);
    assert_eq!(described(&spec, "KIND"), Some("Service"));
    assert_eq!(described(&spec, "GROUP"), Some("serving.knative.dev"));
    assert_eq!(described(&spec, "FIELD"), Some("spec <Object>"));
    assert_contains(
        &spec,
        "ServiceSpec represents the configuration for the Service object.",
    );
    assert_contains(&spec, "  template\t<Object>\n");
    assert_contains(&spec, "  traffic\t<[]Object>\n");

    let containers = cluster.ok(&["explain", "ksvc.spec.template.spec.containers"]);
    assert_eq!(
        described(&containers, "FIELD"),
        Some("containers <[]Object>")
    );
    assert_contains(&containers, "List of containers belonging to the pod.");
    assert_contains(&containers, "  image\t<string>\n");
    assert_contains(&containers, "  env\t<[]Object>\n");
}

// ----- leases ----------------------------------------------------------------------------

/// A Lease manifest held by `holder` (none: a free lease).
fn lease(name: &str, namespace: &str, holder: Option<&str>) -> String {
    let holder = holder
        .map(|h| format!("  holderIdentity: {h}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: {name}\n  \
         namespace: {namespace}\nspec:\n{holder}  leaseDurationSeconds: 15\n  \
         renewTime: \"2026-05-01T10:00:00.123456Z\"\n"
    )
}

fn get_leases_prints_the_holder_like_the_real_server(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let out = apply(
        &cluster,
        &documents(&[
            lease("wisp-controller", "kube-system", Some("a_x1")),
            lease("node-a", "kube-node-lease", None),
        ]),
    );
    assert_contains(&out, "lease.coordination.k8s.io/wisp-controller created");
    let table = cluster.ok(&["get", "leases", "-A"]);
    assert_eq!(header(&table), ["NAMESPACE", "NAME", "HOLDER", "AGE"]);
    assert_eq!(
        row(&table, 1, "wisp-controller")[..3],
        ["kube-system", "wisp-controller", "a_x1"]
    );
    // A free lease's holder cell is empty (so AGE follows the name directly).
    assert_eq!(row(&table, 1, "node-a").len(), 3, "{table}");

    let renew = cluster.ok(&[
        "get",
        "lease",
        "wisp-controller",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.renewTime}",
    ]);
    assert_eq!(renew, "2026-05-01T10:00:00.123456Z");
    // Applying the same manifest again changes nothing.
    let again = apply(
        &cluster,
        &lease("wisp-controller", "kube-system", Some("a_x1")),
    );
    assert_contains(
        &again,
        "lease.coordination.k8s.io/wisp-controller unchanged",
    );
    // A change is sent as a strategic merge patch, as for every built-in kind.
    let moved = apply(
        &cluster,
        &lease("wisp-controller", "kube-system", Some("b_y2")),
    );
    assert_contains(
        &moved,
        "lease.coordination.k8s.io/wisp-controller configured",
    );
    let holder = cluster.ok(&[
        "get",
        "lease",
        "wisp-controller",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, "b_y2");
}

fn explain_lease_spec_describes_the_fields(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let spec = cluster.ok(&["explain", "lease.spec"]);
    assert_eq!(described(&spec, "KIND"), Some("Lease"));
    assert_eq!(described(&spec, "GROUP"), Some("coordination.k8s.io"));
    assert_contains(&spec, "  holderIdentity\t<string>\n");
    assert_contains(&spec, "  leaseDurationSeconds\t<integer>\n");
    assert_contains(&spec, "  renewTime\t<string>\n");
    assert_contains(
        &spec,
        "leaseTransitions is the number of transitions of a lease between holders.",
    );
}

fn version_reports_the_server(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let text = cluster.ok(&["version"]);
    let server = described(&text, "Server Version").expect("a Server Version line");
    assert!(server.starts_with("v1."), "server version {server:?}");

    let json: Value = serde_json::from_str(&cluster.ok(&["version", "-o", "json"])).unwrap();
    let server = &json["serverVersion"];
    assert_eq!(server["major"], "1");
    assert!(
        server["minor"]
            .as_str()
            .is_some_and(|m| m.parse::<u32>().is_ok_and(|m| m >= 32))
    );
    assert_eq!(
        server["gitVersion"].as_str(),
        described(&text, "Server Version")
    );
}

// ----- namespaces ------------------------------------------------------------------------

fn get_namespaces_shows_the_standard_ones_active(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let table = cluster.ok(&["get", "ns"]);
    assert_eq!(header(&table), ["NAME", "STATUS", "AGE"]);
    for name in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "knative-serving",
    ] {
        assert_eq!(row(&table, 0, name)[1], "Active", "{name}");
    }
}

fn the_standard_namespaces_cannot_be_deleted(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let err = cluster.fails(&["delete", "ns", "default", "--wait=false"]);
    assert_contains(
        &err,
        "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may \
         not be deleted",
    );
    let table = cluster.ok(&["get", "ns", "default"]);
    assert_eq!(row(&table, 0, "default")[1], "Active");
}

fn create_namespace_from_a_file(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let file = write_file(&cluster, "ns.yaml", &namespace("team"));
    let out = cluster.ok(&["create", "-f", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.trim(), "namespace/team created");
    let table = cluster.ok(&["get", "ns", "team"]);
    assert_eq!(row(&table, 0, "team")[1], "Active");
    let out = apply(&cluster, &manifest("hello", "team", &[], ""));
    assert_eq!(out.trim(), "service.serving.knative.dev/hello created");
}

fn deleting_a_namespace_removes_its_services(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    apply(
        &cluster,
        &documents(&[
            namespace("team"),
            manifest("doomed", "team", &[], ""),
            hello("World"),
        ]),
    );
    let out = cluster.ok(&["delete", "ns", "team"]);
    assert_eq!(out.trim(), "namespace \"team\" deleted");

    let err = cluster.fails(&["get", "ns", "team"]);
    assert_contains(
        &err,
        "Error from server (NotFound): namespaces \"team\" not found",
    );
    let listed = cluster.kubectl(&["get", "ksvc", "-n", "team"]);
    assert_contains(&streams(&listed).1, "No resources found in team namespace.");
    let everywhere = cluster.ok(&["get", "ksvc", "-A"]);
    assert_eq!(rows(&everywhere), vec![vec!["default", "hello"]]);
}

// ----- bad input -------------------------------------------------------------------------

/// `kubectl apply -f -` of `yaml`, expecting failure; returns stderr.
fn rejected(cluster: &Cluster, yaml: &str) -> String {
    cluster.fails_with(&["apply", "-f", "-"], Some(yaml))
}

/// `hello` with an extra `spec` field kubectl does not know.
fn hello_with_bogus_field() -> String {
    format!("{}  bogus: 1\n", hello("World"))
}

fn unknown_field_is_rejected_under_strict_validation(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let err = rejected(&cluster, &hello_with_bogus_field());
    assert_contains(
        &err,
        "Error from server (BadRequest): error when creating \"STDIN\": Service in version \
         \"v1\" cannot be handled as a Service: strict decoding error: unknown field \
         \"spec.bogus\"",
    );
    assert_hello_gone(&cluster);
}

fn unknown_field_is_a_warning_with_validate_warn(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let output = cluster.kubectl_with_input(
        &["apply", "--validate=warn", "-f", "-"],
        Some(&hello_with_bogus_field()),
    );
    let (stdout, stderr) = streams(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "service.serving.knative.dev/hello created");
    assert_contains(&stderr, "Warning: unknown field \"spec.bogus\"");
    let object = get_json(&cluster, &["ksvc", "hello"]);
    assert!(
        object["spec"].get("bogus").is_none(),
        "unknown fields are pruned"
    );
}

fn traffic_that_does_not_sum_to_100_is_denied(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let traffic = "  traffic:\n  - latestRevision: true\n    percent: 90\n";
    let err = rejected(&cluster, &manifest("hello", "default", &[], traffic));
    assert_contains(
        &err,
        &format!(
            "Error from server (BadRequest): error when creating \"STDIN\": {WEBHOOK_DENIED}\
             Traffic targets sum to 90, want 100: spec.traffic"
        ),
    );
    assert_hello_gone(&cluster);
}

fn duplicate_traffic_tag_is_denied(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let traffic = "  traffic:\n  - latestRevision: true\n    percent: 50\n    tag: a\n  \
                   - latestRevision: true\n    percent: 50\n    tag: a\n";
    let err = rejected(&cluster, &manifest("hello", "default", &[], traffic));
    assert_contains(&err, WEBHOOK_DENIED);
    assert_contains(&err, "Multiple definitions for \"a\"");
    assert_contains(&err, "spec.traffic[1].tag");
    assert_hello_gone(&cluster);
}

fn a_64_character_name_is_denied(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let name = "a".repeat(64);
    let err = rejected(&cluster, &manifest(&name, "default", &[], ""));
    assert_contains(&err, &format!("{WEBHOOK_DENIED}not a DNS 1035 label"));
    assert_contains(&err, ": metadata.name");
    let fine = "a".repeat(63);
    let out = apply(&cluster, &manifest(&fine, "default", &[], ""));
    assert_eq!(
        out.trim(),
        format!("service.serving.knative.dev/{fine} created")
    );
}

fn an_uppercase_name_is_invalid(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let err = rejected(&cluster, &manifest("Hello", "default", &[], ""));
    // The API server's own name rule comes first, before Knative's webhook sees the object.
    assert_contains(
        &err,
        "The Service \"Hello\" is invalid: metadata.name: Invalid value: \"Hello\": a lowercase \
         RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and \
         must start and end with an alphanumeric character (e.g. 'example.com', regex used for \
         validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    let listed = cluster.kubectl(&["get", "ksvc"]);
    assert_contains(
        &streams(&listed).1,
        "No resources found in default namespace.",
    );
}

fn a_wrongly_typed_field_is_invalid(backend: Backend) {
    let cluster = Cluster::start_on(backend);
    let yaml = hello("World").replace(
        "    spec:\n",
        "    spec:\n      containerConcurrency: \"x\"\n",
    );
    let err = rejected(&cluster, &yaml);
    assert_contains(
        &err,
        "The Service \"hello\" is invalid: spec.template.spec.containerConcurrency: Invalid \
         value: \"string\": spec.template.spec.containerConcurrency in body must be of type \
         integer: \"string\"",
    );
    assert_hello_gone(&cluster);
}

// ----- the matrix ------------------------------------------------------------------------

/// One `#[test]` per case and server: `embedded::case` and `genuine::case`.
macro_rules! matrix {
    (both: $($both:ident),* $(,)?; embedded_only: $($only:ident),* $(,)?) => {
        mod embedded {
            $(#[test] fn $both() { super::$both(super::Backend::Embedded) })*
            $(#[test] fn $only() { super::$only(super::Backend::Embedded) })*
        }
        mod genuine {
            $(#[test] fn $both() { super::$both(super::Backend::Genuine) })*
        }
    };
}

matrix! {
    both:
        apply_creates_then_reports_unchanged_then_configured,
        server_side_apply_creates_and_updates,
        server_side_apply_takes_over_a_client_side_applied_object,
        get_by_every_name_prints_the_knative_columns,
        get_a_missing_service_is_not_found,
        get_wide_prints_the_same_columns,
        get_yaml_shows_the_defaulted_object,
        get_json_prints_the_object,
        get_name_prints_resource_slash_name,
        get_all_namespaces_adds_the_namespace_column,
        get_with_label_selectors,
        get_show_labels_adds_the_labels_column,
        get_sort_by_orders_the_rows,
        get_all_lists_the_service,
        get_watch_prints_a_live_change,
        describe_prints_the_service,
        delete_without_finalizer_removes_the_service,
        delete_with_finalizer_marks_then_the_patch_removes,
        delete_waits_until_the_finalizer_is_removed,
        wait_for_ready_sees_the_condition_set_later,
        wait_for_ready_returns_at_once_when_already_ready_and_times_out_otherwise,
        replace_with_a_stale_resource_version_conflicts,
        create_of_an_existing_name_is_already_exists,
        patch_merge_and_json,
        failing_json_patch_test_changes_nothing,
        strategic_patch_of_a_service_is_unsupported,
        strategic_patch_and_apply_of_a_namespace,
        server_dry_run_stores_nothing,
        api_resources_lists_short_names_and_categories,
        explain_prints_the_schema_descriptions,
        get_leases_prints_the_holder_like_the_real_server,
        explain_lease_spec_describes_the_fields,
        version_reports_the_server,
        get_namespaces_shows_the_standard_ones_active,
        the_standard_namespaces_cannot_be_deleted,
        create_namespace_from_a_file,
        deleting_a_namespace_removes_its_services,
        unknown_field_is_rejected_under_strict_validation,
        unknown_field_is_a_warning_with_validate_warn,
        traffic_that_does_not_sum_to_100_is_denied,
        duplicate_traffic_tag_is_denied,
        a_64_character_name_is_denied,
        an_uppercase_name_is_invalid,
        a_wrongly_typed_field_is_invalid,
    ;
    // Cases that concern no Knative resource or need the embedded server's own powers
    // (restarts over one data directory, `Cluster::server()`, wisp's endpoints) go here. None
    // does today: those live in `credentials.rs`, `store.rs` and `kube_client.rs`.
    embedded_only:
}
