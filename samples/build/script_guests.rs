//! Builds the Python (componentize-py) and JavaScript (componentize-js) sample guests.
//!
//! Each takes 5–25 s and makes a 12–19 MB component whose bytes differ from build to build, so
//! a guest is rebuilt only when what it is made from changes: its sources, the WIT it is built
//! against and the toolchain pins. A fingerprint of those is kept beside the output; the toolchain
//! is not even looked at while every output is current.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use crate::toolchains;

#[derive(Clone, Copy, PartialEq)]
enum Language {
    Python,
    JavaScript,
}

struct ScriptGuest {
    /// Sample name, also the output file `<name>.wasm`.
    name: &'static str,
    language: Language,
    /// The guest's sources, relative to the samples crate: every file in it is an input.
    source: &'static str,
}

/// Keep in sync with `ALL` in `src/lib.rs`.
const GUESTS: &[ScriptGuest] = &[
    ScriptGuest {
        name: "py-hello",
        language: Language::Python,
        source: "python/hello",
    },
    ScriptGuest {
        name: "py-echo",
        language: Language::Python,
        source: "python/echo",
    },
    ScriptGuest {
        name: "js-hello",
        language: Language::JavaScript,
        source: "js/hello",
    },
    ScriptGuest {
        name: "js-echo",
        language: Language::JavaScript,
        source: "js/echo",
    },
    ScriptGuest {
        name: "js-hello-handler",
        language: Language::JavaScript,
        source: "js/hello-handler",
    },
];

impl Language {
    /// Directory of the pin files under `toolchains/`.
    fn pins(self) -> &'static str {
        match self {
            Language::Python => "toolchains/componentize-py",
            Language::JavaScript => "toolchains/componentize-js",
        }
    }

    /// The WIT directory under `wit/` and the world the guests target.
    fn wit(self) -> (&'static str, &'static str) {
        match self {
            Language::Python => ("wit/wasi-http-0.2.0", "wasi:http/proxy@0.2.0"),
            Language::JavaScript => ("wit/js", "wisp:samples/js-guest@0.1.0"),
        }
    }

    /// The toolchain command for one build of the sources in `stage` into `output`.
    fn command(self, samples: &Path, cache: &Path, stage: &Path, output: &Path) -> Command {
        let pins = samples.join(self.pins());
        let (wit, world) = self.wit();
        let mut command = match self {
            Language::Python => {
                let mut command = toolchains::componentize_py(&pins, cache);
                command
                    .arg("-d")
                    .arg(samples.join(wit))
                    .args(["-w", world, "componentize", "app", "-o"])
                    .arg(output);
                command
            }
            Language::JavaScript => {
                let mut command = toolchains::componentize_js(&pins, cache);
                command
                    .arg("--wit")
                    .arg(samples.join(wit))
                    .args(["--world-name", world, "-o"])
                    .arg(output)
                    .arg("app.js");
                command
            }
        };
        command.current_dir(stage);
        command
    }
}

/// Builds every script guest whose inputs changed into `out` (as `<name>.wasm`), working in
/// `work`; returns each guest's (name, output path).
pub fn build(samples: &Path, out: &Path, work: &Path) -> Vec<(&'static str, PathBuf)> {
    for dir in ["python", "js", "wit", "toolchains"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    let cache = toolchains::cache_root();
    // Debug and release builds of the outer workspace share `out`: one at a time decides what is
    // stale and builds it, the other then finds it current.
    fs::create_dir_all(work).unwrap_or_else(|e| panic!("cannot create {}: {e}", work.display()));
    let lock_path = work.join("build.lock");
    let lock = fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    let stale: Vec<(&ScriptGuest, String)> = GUESTS
        .iter()
        .map(|guest| (guest, fingerprint(samples, guest)))
        .filter(|(guest, print)| {
            !out.join(format!("{}.wasm", guest.name)).is_file()
                || fs::read_to_string(fingerprint_path(out, guest.name))
                    .ok()
                    .as_ref()
                    != Some(print)
        })
        .collect();

    // One thread per language: the two toolchains install and build side by side, each
    // language's guests one after the other (each build keeps one core busy).
    thread::scope(|scope| {
        let builders: Vec<_> = [Language::Python, Language::JavaScript]
            .into_iter()
            .map(|language| {
                let guests: Vec<_> = stale
                    .iter()
                    .filter(|(g, _)| g.language == language)
                    .collect();
                let cache = &cache;
                scope.spawn(move || {
                    for (guest, print) in guests {
                        build_one(samples, cache, out, work, guest);
                        let path = fingerprint_path(out, guest.name);
                        fs::write(&path, print)
                            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                    }
                })
            })
            .collect();
        // A builder's panic message (what is missing, and how to get it) has been printed; end
        // the build with it rather than with the scope's "a scoped thread panicked".
        for builder in builders {
            if let Err(panic) = builder.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });

    GUESTS
        .iter()
        .map(|guest| (guest.name, out.join(format!("{}.wasm", guest.name))))
        .collect()
}

/// Builds from a copy of the sources (componentize-py writes `__pycache__` beside them), into a
/// temporary file renamed over the output only when complete.
fn build_one(samples: &Path, cache: &Path, out: &Path, work: &Path, guest: &ScriptGuest) {
    let stage = work.join(guest.name);
    if stage.exists() {
        fs::remove_dir_all(&stage)
            .unwrap_or_else(|e| panic!("cannot empty {}: {e}", stage.display()));
    }
    copy_tree(&samples.join(guest.source), &stage);
    let output = out.join(format!("{}.wasm", guest.name));
    let partial = out.join(format!("{}.wasm.partial", guest.name));
    let mut command = guest.language.command(samples, cache, &stage, &partial);
    let result = command.output().unwrap_or_else(|e| {
        panic!(
            "could not run {:?} to build {}: {e}",
            command.get_program(),
            guest.name
        )
    });
    if !result.status.success() {
        crate::fail(
            &format!(
                "building the {} sample guest from {} failed ({})",
                guest.name,
                samples.join(guest.source).display(),
                result.status
            ),
            &result,
            "fix the error above and build again",
        );
    }
    fs::rename(&partial, &output).unwrap_or_else(|e| {
        panic!(
            "cannot move {} to {}: {e}",
            partial.display(),
            output.display()
        )
    });
}

/// A hash of everything a guest is made from: its sources, its WIT, its toolchain's pins, and
/// the world it targets. Not stable across Rust releases, which only costs one rebuild.
fn fingerprint(samples: &Path, guest: &ScriptGuest) -> String {
    let (wit, world) = guest.language.wit();
    let mut hasher = DefaultHasher::new();
    hasher.write(world.as_bytes());
    for dir in [guest.source, wit, guest.language.pins()] {
        for file in files_under(&samples.join(dir)) {
            let bytes =
                fs::read(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            hasher.write(
                file.strip_prefix(samples)
                    .unwrap_or(&file)
                    .as_os_str()
                    .as_encoded_bytes(),
            );
            hasher.write(&bytes);
        }
    }
    format!("{:016x}\n", hasher.finish())
}

fn fingerprint_path(out: &Path, name: &str) -> PathBuf {
    out.join(format!("{name}.wasm.inputs"))
}

/// Every file under `dir`, sorted, skipping Python's `__pycache__`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "__pycache__" {
                files.extend(files_under(&path));
            }
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    for file in files_under(from) {
        let relative = file.strip_prefix(from).unwrap_or(&file);
        let target = to.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        fs::copy(&file, &target).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} to {}: {e}",
                file.display(),
                target.display()
            )
        });
    }
}
