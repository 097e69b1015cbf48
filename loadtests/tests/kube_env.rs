//! `KubeEnv` over the genuine control plane (`scripts/kube-env`): dropping it stops every process
//! it started before their directory is removed, so nothing outlives a test or writes into a
//! directory that is going away.

use std::path::Path;

use wisp_loadtests::kube_env::{ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KubeEnv};

/// Whether any thread of `pid` still runs (a zombie waiting for init to reap it does not).
fn runs(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        std::fs::read_to_string(thread.path().join("stat")).is_ok_and(|stat| {
            // "tid (comm) state ...": comm may hold spaces or parentheses.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    })
}

#[test]
fn dropping_a_control_plane_stops_its_processes_before_its_directory_goes() {
    let env = KubeEnv::start().unwrap_or_else(|error| panic!("{error:#}"));
    let dir = env.dir().to_path_buf();
    let pids: Vec<(&str, u32)> = [ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER]
        .into_iter()
        .map(|name| {
            (
                name,
                env.pid(name).unwrap_or_else(|error| panic!("{error:#}")),
            )
        })
        .collect();
    for &(name, pid) in &pids {
        assert!(runs(pid), "{name} (pid {pid}) is not running after start");
    }
    drop(env);
    for &(name, pid) in &pids {
        assert!(!runs(pid), "{name} (pid {pid}) still runs after the drop");
    }
    assert!(
        !Path::new(&dir).exists(),
        "{} is still there: something wrote into it while it was removed",
        dir.display()
    );
}
