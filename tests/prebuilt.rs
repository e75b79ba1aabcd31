//! `cargo test` where the control plane, the MLflow venv or the image tools are not built:
//! the tests that need them fail at once with one line naming the `make` command that builds
//! what is missing (tests/common/prebuilt.rs), and looking builds nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/prebuilt.rs"]
mod prebuilt;

use prebuilt::{Need, require_in};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn an_empty_cache_is_one_line_naming_the_make_command() {
    let cache = tempfile::tempdir().unwrap();
    let one = require_in(&[Need::ControlPlane], Some(cache.path())).unwrap_err();
    assert_eq!(
        one,
        "the control plane is not built: run `make controlplane` \
         (tests/controlplane/build.sh, about 12 minutes once)"
    );
    let all = require_in(
        &[Need::ControlPlane, Need::Mlflow, Need::Tools],
        Some(cache.path()),
    )
    .unwrap_err();
    assert!(!all.contains('\n'), "{all}");
    assert!(
        all.starts_with(
            "the control plane is not built and the MLflow venv is not installed and \
             the image tools are not built: run `make controlplane mlflow tools` ("
        ),
        "{all}"
    );
    assert_eq!(
        require_in(&[Need::PsaFixtures], Some(cache.path())).unwrap_err(),
        "the Pod Security fixtures are not fetched: run `make psa` (tests/psa/fetch.sh, seconds once)"
    );
    assert_eq!(
        require_in(&[Need::AgentSandbox], Some(cache.path())).unwrap_err(),
        "agent-sandbox's CRDs are not fetched: run `make agent-sandbox` (tests/agent-sandbox/fetch.sh, seconds once)"
    );
    assert_eq!(
        require_in(&[Need::AgentSandboxController], Some(cache.path())).unwrap_err(),
        "agent-sandbox's controller is not built: run `make agent-sandbox-controller` \
         (tests/agent-sandbox/build.sh, about 22 minutes once)"
    );
    assert_eq!(
        require_in(&[Need::ReportCrds], Some(cache.path())).unwrap_err(),
        "the policy report CRDs are not fetched: run `make reports` (tests/reports/fetch.sh, seconds once)"
    );
    // Looking builds nothing.
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn a_complete_cache_gives_each_directory_and_one_missing_file_is_missing() {
    let cache = tempfile::tempdir().unwrap();
    let needs = [
        Need::ControlPlane,
        Need::Mlflow,
        Need::Tools,
        Need::PsaFixtures,
        Need::AgentSandbox,
        Need::AgentSandboxController,
        Need::ReportCrds,
    ];
    let mut dirs = Vec::new();
    for need in needs {
        let (script, print, files) = need.layout();
        let out = Command::new("bash")
            .arg(Path::new(ROOT).join(script))
            .arg(print)
            .env("OPENCLAW_CACHE", cache.path())
            .output()
            .unwrap();
        let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(dir.starts_with(cache.path()), "{}", dir.display());
        for f in files {
            let path = dir.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        dirs.push(dir);
    }
    assert_eq!(require_in(&needs, Some(cache.path())).unwrap(), dirs);
    std::fs::remove_file(dirs[1].join(".complete")).unwrap();
    let err = require_in(&needs, Some(cache.path())).unwrap_err();
    assert!(
        err.starts_with("the MLflow venv is not installed: run `make mlflow` ("),
        "{err}"
    );
}
