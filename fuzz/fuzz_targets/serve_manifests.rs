//! The YAML file of Knative Services that `wisp serve` runs: read (`wisp_servefile::parse`), then
//! checked and planned (`wisp_servefile::plan`) exactly as the command does. Input: the file's
//! text.
//!
//! Invariants: reading and planning never panic; every error names the file; a file that reads
//! has at least one Service; a plan that succeeds has one Service per document, each with a
//! revision of its own namespace and a route whose traffic sums to 100 and targets only that
//! revision.

#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use wisp_gateway::routing::Domain;
use wisp_servefile::{ServicesFile, parse, plan};

const FILE: &str = "fuzz.yaml";

fuzz_target!(|text: &str| {
    let documents = match parse(FILE, text) {
        Ok(documents) => documents,
        Err(error) => {
            assert_eq!(error.file, FILE, "{error}");
            return;
        }
    };
    assert!(!documents.is_empty());
    let file = ServicesFile {
        name: FILE.to_owned(),
        base_dir: PathBuf::from("/manifests"),
        documents,
    };
    match plan(&file, &Domain::default()) {
        Err(errors) => {
            assert!(!errors.is_empty());
            for error in errors {
                assert_eq!(error.file, FILE, "{error}");
            }
        }
        Ok(planned) => {
            assert_eq!(planned.services.len(), file.documents.len());
            for service in &planned.services {
                let revision = &service.revision;
                assert_eq!(revision.key.namespace, service.namespace);
                // Relative paths are resolved against the file's directory, never the cwd.
                assert!(
                    Path::new(&revision.component).is_absolute()
                        || revision.component.contains("://"),
                    "{}",
                    revision.component
                );
                let mut sum = 0;
                for target in &service.route.traffic {
                    assert_eq!(target.revision, revision.key.name);
                    sum += target.percent;
                }
                assert_eq!(sum, 100, "{:?}", service.route);
            }
        }
    }
});
