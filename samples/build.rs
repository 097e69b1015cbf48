//! Builds the sample guest components and hands their paths to the library as
//! `WISP_SAMPLE_<NAME>` compile-time variables: the Rust guests in `guests/` (a workspace of their
//! own) for `wasm32-wasip2`, and the Python and JavaScript guests in `python/` and `js/` with
//! componentize-py and componentize-js (`build/script_guests.rs`).
//!
//! A missing `wasm32-wasip2` target is installed with `rustup target add`; the Python and
//! JavaScript toolchains are installed, pinned, once per machine into `~/.cache/wisp/toolchains`
//! (`build/toolchains.rs`), which needs python3 (≥ 3.10, with venv) and node (^20.19 or ≥ 22.12)
//! with npm.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "build/script_guests.rs"]
mod script_guests;
#[path = "build/toolchains.rs"]
mod toolchains;

const TARGET: &str = "wasm32-wasip2";

/// (sample name = guest crate directory under `guests/`, file its build emits).
/// Keep in sync with `guests/Cargo.toml` members and `ALL` in `src/lib.rs`.
const SAMPLES: &[(&str, &str)] = &[
    ("hello", "hello.wasm"),
    ("hello-wasi", "hello_wasi.wasm"),
    ("echo", "echo.wasm"),
    ("sleep", "sleep.wasm"),
    ("cpu", "cpu.wasm"),
    ("trap", "trap.wasm"),
    ("spin", "spin.wasm"),
    ("hog", "hog.wasm"),
    ("env", "env.wasm"),
    ("fetch", "fetch.wasm"),
    ("flood", "flood.wasm"),
    ("counter", "counter.wasm"),
    ("p3-counter", "p3_counter.wasm"),
    ("wasi-echo", "wasi_echo.wasm"),
    ("wstd-echo", "wstd-echo.wasm"),
    ("p3-hello", "p3_hello.wasm"),
    ("p3-echo", "p3_echo.wasm"),
];

fn main() {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let guests = manifest_dir.join("guests");

    // Rebuild when a guest source or the guest workspace's manifests change; never watch the
    // target dir (the inner build writes there on every run).
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed=guests/{file}");
    }
    for (name, _) in SAMPLES {
        println!("cargo:rerun-if-changed=guests/{name}/Cargo.toml");
        println!("cargo:rerun-if-changed=guests/{name}/src");
    }

    ensure_target_installed();

    let target_dir = outer_target_dir().join("wasm-samples");
    build_guests(&guests, &target_dir);

    let out = target_dir.join(TARGET).join("release");
    for (name, file) in SAMPLES {
        let path = out.join(file);
        if !path.is_file() {
            panic!(
                "the guest build succeeded but {} is missing: is `{name}` a member of {}?",
                path.display(),
                guests.join("Cargo.toml").display()
            );
        }
        export_path(name, &path);
    }

    // Beside the Rust guests, so that one directory (`wisp_samples::dir()`) holds every sample.
    let work = target_dir.join("script-guests");
    for (name, path) in script_guests::build(&manifest_dir, &out, &work) {
        export_path(name, &path);
    }
}

fn export_path(name: &str, path: &Path) {
    let var = name.to_uppercase().replace('-', "_");
    println!("cargo:rustc-env=WISP_SAMPLE_{var}={}", path.display());
}

fn env_var(name: &str) -> OsString {
    env::var_os(name).unwrap_or_else(|| panic!("cargo did not set {name} for the build script"))
}

/// The outer build's target directory (or build directory), where the guests get their own
/// `wasm-samples` target dir.
///
/// `OUT_DIR` is `<target>/<profile>/build/<pkg>-<hash>/out`, or `<target>/<triple>/<profile>/...`
/// under `--target`, and other layouts are possible (`build.build-dir`). Rather than counting
/// levels, take the nearest ancestor holding the `CACHEDIR.TAG` cargo writes at the root of the
/// directories it lays out (`<target>`, and `<target>/<triple>` under `--target`); only ancestors
/// 3 to 6 levels up are considered, so a tag far above the target dir can never be picked. Without
/// a tag, fall back to 4 levels up (the same directories). Either way it is never a profile folder
/// such as `<target>/debug`, whose lock the outer cargo holds while this script runs (an inner
/// build there would deadlock), and debug and release builds of the outer workspace share one
/// guest build (the guests are always built `--release`).
fn outer_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env_var("OUT_DIR"));
    out_dir
        .ancestors()
        .skip(3)
        .take(4)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .or_else(|| out_dir.ancestors().nth(4))
        .unwrap_or_else(|| panic!("unexpected OUT_DIR layout: {}", out_dir.display()))
        .to_path_buf()
}

/// Installs the `wasm32-wasip2` standard library for the active toolchain when it is missing.
fn ensure_target_installed() {
    if target_installed() {
        return;
    }
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    println!(
        "cargo:warning=installing the {TARGET} target for toolchain {}",
        toolchain.as_deref().unwrap_or("(default)")
    );
    let mut rustup = Command::new(rustup_path());
    rustup.args(["target", "add", TARGET]);
    if let Some(toolchain) = &toolchain {
        rustup.args(["--toolchain", toolchain]);
    }
    match rustup.output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => fail(
            &format!("`rustup target add {TARGET}` failed ({})", output.status),
            &output,
            "install the target by hand: rustup target add wasm32-wasip2",
        ),
        Err(e) => panic!(
            "the {TARGET} target is not installed and rustup could not be run ({e}); install the \
             target for this toolchain (`rustup target add {TARGET}`, or your distribution's \
             rust-std package for {TARGET}) and build again"
        ),
    }
    if !target_installed() {
        panic!(
            "`rustup target add {TARGET}` succeeded but the {TARGET} standard library is still \
             missing for the compiler cargo uses ({}); check that RUSTC and the rustup toolchain \
             agree",
            rustc().to_string_lossy()
        );
    }
}

/// Whether the compiler cargo uses has a `libstd-*.rlib` for the target.
fn target_installed() -> bool {
    let output = Command::new(rustc())
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", rustc().to_string_lossy()));
    if !output.status.success() {
        return false;
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    })
}

fn rustc() -> OsString {
    env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

/// `rustup` from PATH, else from `$CARGO_HOME/bin` (where rustup installs itself).
fn rustup_path() -> PathBuf {
    let on_path = env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join("rustup").is_file()));
    let in_cargo_home = env::var_os("CARGO_HOME").map(|home| Path::new(&home).join("bin/rustup"));
    match in_cargo_home {
        Some(path) if !on_path && path.is_file() => path,
        _ => PathBuf::from("rustup"),
    }
}

/// Runs `cargo build --release --target wasm32-wasip2` on the guest workspace, in an environment
/// cleaned of the outer build's per-package and per-build settings.
fn build_guests(guests: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(guests)
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The lockfile is committed; `--locked` keeps the guests' dependency versions pinned.
    if guests.join("Cargo.lock").is_file() {
        command.arg("--locked");
    }
    for (key, _) in env::vars_os() {
        if leaks_outer_build(&key.to_string_lossy()) {
            command.env_remove(&key);
        }
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "could not run {} to build the sample guests: {e}",
            Path::new(&cargo).display()
        )
    });
    // Shown by cargo when this build script fails (and with `-vv`).
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        fail(
            &format!(
                "building the sample guest components ({}) failed ({})",
                guests.display(),
                output.status
            ),
            &output,
            "fix the error above; to reproduce: cargo build --release --target wasm32-wasip2 \
             --manifest-path samples/guests/Cargo.toml",
        );
    }
}

/// Whether an environment variable belongs to the outer build and must not reach the inner one:
/// compiler flags and wrappers (e.g. clippy's), the outer target/profile settings, and the
/// variables cargo sets for this build script (`CARGO_PKG_*`, `CARGO_CFG_*`, `CARGO_FEATURE_*`,
/// `OUT_DIR`, ...). Kept: `CARGO_HOME`, the jobserver (`CARGO_MAKEFLAGS`), network, registry and
/// terminal settings, `RUSTUP_*`, `RUSTC`, `PATH` and everything not cargo's.
fn leaks_outer_build(key: &str) -> bool {
    const KEEP_CARGO: &[&str] = &[
        "CARGO_HOME",
        "CARGO_MAKEFLAGS",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRY_",
        "CARGO_REGISTRIES_",
        "CARGO_TERM_",
    ];
    const OUTER: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
    ];
    if key.starts_with("CARGO_") {
        return !KEEP_CARGO.iter().any(|keep| key.starts_with(keep));
    }
    key.starts_with("__CARGO") || OUTER.contains(&key)
}

/// Forwards a failed command's diagnostics (its stderr less cargo's progress lines, at most the
/// last 80 lines) as cargo warnings, which cargo always shows, then fails the build.
fn fail(what: &str, output: &Output, todo: &str) -> ! {
    const PROGRESS: &[&str] = &[
        "Compiling ",
        "Checking ",
        "Downloading ",
        "Downloaded ",
        "Updating ",
        "Locking ",
        "Blocking ",
        "Fresh ",
    ];
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !PROGRESS.iter().any(|p| line.trim_start().starts_with(p)))
        .collect();
    for line in &lines[lines.len().saturating_sub(80)..] {
        println!("cargo:warning={line}");
    }
    panic!("{what}; {todo}");
}
