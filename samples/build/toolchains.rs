//! The Python and JavaScript guest toolchains: their prerequisites checked, installed pinned once
//! per machine into a cache outside the repository, and reused by every later build.
//!
//! Each toolchain lives in `<cache>/toolchains/<tool>-<version>/` beside a `<tool>-<version>.lock`
//! file. An install is reused while the copy of the pin files it was made from equals the
//! repository's and the tool still runs (a venv dies with the interpreter that made it);
//! otherwise it is wiped and redone. The lock serializes concurrent builds (two target dirs, or
//! the lead's and a helper's build) so that only one installs and the others wait, then reuse.

use std::env;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const COMPONENTIZE_PY: &str = "componentize-py-0.25.1";
pub const COMPONENTIZE_JS: &str = "componentize-js-0.22.0";

/// Where the pinned toolchains are kept: `$XDG_CACHE_HOME/wisp/toolchains`, else
/// `$HOME/.cache/wisp/toolchains` (the same cache root as wisp's own compile cache).
pub fn cache_root() -> PathBuf {
    println!("cargo:rerun-if-env-changed=XDG_CACHE_HOME");
    println!("cargo:rerun-if-env-changed=HOME");
    let base = env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(|| {
            panic!(
                "neither XDG_CACHE_HOME nor HOME is set: the sample build keeps the Python and \
                 JavaScript guest toolchains under $XDG_CACHE_HOME/wisp/toolchains or \
                 ~/.cache/wisp/toolchains; set one of them"
            )
        });
    base.join("wisp").join("toolchains")
}

/// componentize-py installed in its venv: the command to run it.
pub fn componentize_py(pins: &Path, cache: &Path) -> Command {
    let python = check_python();
    let venv = cache.join(COMPONENTIZE_PY);
    let tool = venv.join("bin").join("componentize-py");
    let works = || runs(Command::new(&tool).arg("--version"));
    install_once(&venv, pins, &["requirements.txt"], works, |dir| {
        run(
            Command::new(&python).args(["-m", "venv"]).arg(dir),
            "creating the componentize-py venv",
        );
        run(
            Command::new(dir.join("bin").join("python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                ])
                // Never the sdist: building it downloads wasi-sdk, CPython, zlib and sqlite.
                .args(["--only-binary", ":all:", "-r"])
                .arg(pins.join("requirements.txt")),
            "installing componentize-py from PyPI (pip)",
        );
    });
    Command::new(tool)
}

/// componentize-js installed in its npm prefix: the command to run its CLI (`jco componentize`
/// fails on Node 20 in its WIT probe; the componentize-js CLI of the same install works).
pub fn componentize_js(pins: &Path, cache: &Path) -> Command {
    let node = check_node();
    let prefix = cache.join(COMPONENTIZE_JS);
    let cli = prefix.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    let works = || runs(Command::new(&node).arg(&cli).arg("--version"));
    install_once(
        &prefix,
        pins,
        &["package.json", "package-lock.json"],
        works,
        |dir| {
            for file in ["package.json", "package-lock.json"] {
                copy(&pins.join(file), &dir.join(file));
            }
            // `ci` installs exactly the committed lockfile; no package in it has install scripts.
            run(
                Command::new(npm()).current_dir(dir).args([
                    "ci",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                ]),
                "installing componentize-js from npm (npm ci)",
            );
        },
    );
    let mut command = Command::new(node);
    command.arg(cli);
    command
}

/// Runs `install` into an emptied `dir` unless the install there is current and `works`, holding
/// the toolchain's lock throughout; then records the pin files it was made from.
fn install_once(
    dir: &Path,
    pins: &Path,
    pin_files: &[&str],
    works: impl Fn() -> bool,
    install: impl FnOnce(&Path),
) {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let parent = dir.parent().unwrap_or(Path::new("."));
    create_dir(parent);
    let lock_path = parent.join(format!("{name}.lock"));
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));

    let record = dir.join(".wisp-pins");
    let current = pin_files
        .iter()
        .all(|file| fs::read(record.join(file)).ok() == fs::read(pins.join(file)).ok());
    if current && works() {
        return;
    }
    println!(
        "cargo:warning=installing the {name} guest toolchain into {} (once per machine)",
        dir.display()
    );
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove the stale install {}: {e}", dir.display()),
    }
    create_dir(dir);
    install(dir);
    if !works() {
        panic!(
            "{name} was installed into {} but does not run; remove that directory and build \
             again, or report the error above",
            dir.display()
        );
    }
    // Written last: a build interrupted before this point redoes the install.
    create_dir(&record);
    for file in pin_files {
        copy(&pins.join(file), &record.join(file));
    }
}

/// `python3` from PATH, checked to be ≥ 3.10 with the `venv` and `ensurepip` modules.
fn check_python() -> PathBuf {
    const GET: &str = "get it from your distribution (Debian/Ubuntu: apt-get install python3 \
                       python3-venv) or python.org";
    let python = PathBuf::from("python3");
    let version = match Command::new(&python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
    {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        }
        Ok(output) => fail("python3 does not run", &output, GET),
        Err(e) => panic!(
            "python3 was not found ({e}): the Python sample guests (componentize-py) need \
             Python 3.10 or newer with venv and pip; {GET}"
        ),
    };
    let (major, minor) = parse_version(&version);
    if (major, minor) < (3, 10) {
        panic!(
            "python3 is {version}: the Python sample guests (componentize-py) need Python 3.10 \
             or newer; {GET}"
        );
    }
    match Command::new(&python)
        .args(["-c", "import venv, ensurepip"])
        .output()
    {
        Ok(output) if output.status.success() => python,
        Ok(output) => fail(
            &format!("python3 {version} lacks the venv or ensurepip module"),
            &output,
            "install them (Debian/Ubuntu: apt-get install python3-venv)",
        ),
        Err(e) => panic!("could not run python3: {e}"),
    }
}

/// `node` from PATH, checked to be ^20.19 or ≥ 22.12 (what jco 1.35's bundler, rolldown 1,
/// requires), and that `npm` runs.
fn check_node() -> PathBuf {
    const GET: &str = "install Node.js ^20.19 or 22.12 and newer, with npm (nodejs.org, or a \
                       distribution package that new)";
    let node = PathBuf::from("node");
    let version = match Command::new(&node).arg("--version").output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        }
        Ok(output) => fail("node does not run", &output, GET),
        Err(e) => panic!(
            "node was not found ({e}): the JavaScript sample guests (componentize-js) need it; \
             {GET}"
        ),
    };
    let (major, minor) = parse_version(version.trim_start_matches('v'));
    if !node_supported(major, minor) {
        panic!(
            "node is {version}: the JavaScript sample guests (componentize-js) cannot be built with it; {GET}"
        );
    }
    if let Err(e) = Command::new(npm()).arg("--version").output() {
        panic!("npm was not found ({e}): node {version} is here but npm is not; {GET}");
    }
    node
}

fn node_supported(major: u32, minor: u32) -> bool {
    matches!((major, minor), (20, 19..) | (22, 12..) | (23.., _))
}

fn npm() -> &'static str {
    "npm"
}

/// `3.11` or `20.20.2` as (major, minor); anything unparsable as (0, 0), which every check refuses.
fn parse_version(version: &str) -> (u32, u32) {
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn runs(command: &mut Command) -> bool {
    command.output().is_ok_and(|output| output.status.success())
}

fn run(command: &mut Command, what: &str) {
    match command.output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => fail(
            &format!("{what} failed ({})", output.status),
            &output,
            "the first build on a machine needs network access to PyPI and npm (or their \
             mirrors, configured as for pip and npm); fix the error above and build again",
        ),
        Err(e) => panic!("{what}: could not run {:?}: {e}", command.get_program()),
    }
}

fn create_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}

fn fail(what: &str, output: &Output, todo: &str) -> ! {
    crate::fail(what, output, todo)
}
