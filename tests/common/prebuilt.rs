//! What some tests run that cargo does not build: the control plane (kube-apiserver, etcd,
//! kubectl, helm; tests/controlplane/build.sh), the MLflow venv (tests/mlflow/venv.sh), the
//! image tools (crane and the rest; tools/build.sh) and Kubernetes' Pod Security fixtures
//! (tests/psa/fetch.sh), agent-sandbox's CRDs and RBAC (tests/agent-sandbox/fetch.sh) and its
//! controller (tests/agent-sandbox/build.sh), and the policy report CRDs
//! (tests/reports/fetch.sh), each cached outside git under
//! `${OPENCLAW_CACHE:-$HOME/.cache/openclaw-admission}`.
//!
//! A test that needs one of them asks here first. When something is missing, it fails at once
//! with one line naming the `make` command that builds it: it never starts a build of many
//! minutes from inside a test, and it never passes as skipped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Something a test needs that `make` builds once, outside cargo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    ControlPlane,
    Mlflow,
    Tools,
    PsaFixtures,
    AgentSandbox,
    AgentSandboxController,
    ReportCrds,
}

impl Need {
    /// The script that says where it lives (it prints the path and builds nothing with this
    /// argument), and the files there that must exist.
    pub fn layout(self) -> (&'static str, &'static str, &'static [&'static str]) {
        match self {
            Need::ControlPlane => (
                "tests/controlplane/build.sh",
                "--print-bin-dir",
                &[
                    "kube-apiserver",
                    "kube-controller-manager",
                    "etcd",
                    "kubectl",
                    "helm",
                ],
            ),
            // venv.sh marks a venv complete only once pip has installed every package.
            Need::Mlflow => (
                "tests/mlflow/venv.sh",
                "--print-path",
                &[".complete", "bin/mlflow", "bin/python"],
            ),
            Need::Tools => (
                "tools/build.sh",
                "--print-tools-dir",
                &[
                    "crane",
                    "cargo-cyclonedx",
                    "cargo-deny",
                    "runtime-default-seccomp",
                ],
            ),
            Need::PsaFixtures => ("tests/psa/fetch.sh", "--print-dir", &[".complete"]),
            Need::AgentSandbox => (
                "tests/agent-sandbox/fetch.sh",
                "--print-dir",
                &[".complete", "crds", "rbac/identity.yaml"],
            ),
            Need::AgentSandboxController => (
                "tests/agent-sandbox/build.sh",
                "--print-dir",
                &["agent-sandbox-controller"],
            ),
            Need::ReportCrds => (
                "tests/reports/fetch.sh",
                "--print-dir",
                &[".complete", "openreports", "wgpolicyk8s"],
            ),
        }
    }

    /// What the missing thing is called, its make target, and what building it costs (the
    /// figures of the Makefile's comments).
    fn wording(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Need::ControlPlane => (
                "the control plane is not built",
                "controlplane",
                "tests/controlplane/build.sh, about 12 minutes once",
            ),
            Need::Mlflow => (
                "the MLflow venv is not installed",
                "mlflow",
                "tests/mlflow/venv.sh, about 1.5 minutes and 850 MB once",
            ),
            Need::Tools => (
                "the image tools are not built",
                "tools",
                "tools/build.sh, about 10 minutes once",
            ),
            Need::PsaFixtures => (
                "the Pod Security fixtures are not fetched",
                "psa",
                "tests/psa/fetch.sh, seconds once",
            ),
            Need::AgentSandbox => (
                "agent-sandbox's CRDs are not fetched",
                "agent-sandbox",
                "tests/agent-sandbox/fetch.sh, seconds once",
            ),
            Need::AgentSandboxController => (
                "agent-sandbox's controller is not built",
                "agent-sandbox-controller",
                "tests/agent-sandbox/build.sh, about 22 minutes once",
            ),
            Need::ReportCrds => (
                "the policy report CRDs are not fetched",
                "reports",
                "tests/reports/fetch.sh, seconds once",
            ),
        }
    }

    /// Its directory, `Ok(None)` when something in it is missing, or why its script could
    /// not say where it lives.
    fn find(self, cache: Option<&Path>) -> Result<Option<PathBuf>, String> {
        let (script, print, files) = self.layout();
        let mut cmd = Command::new("bash");
        cmd.arg(Path::new(ROOT).join(script)).arg(print);
        if let Some(cache) = cache {
            cmd.env("OPENCLAW_CACHE", cache);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {script} {print}: {e}"))?;
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if !out.status.success() || dir.as_os_str().is_empty() {
            return Err(format!(
                "{script} {print} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(files.iter().all(|f| dir.join(f).exists()).then_some(dir))
    }
}

/// The directory of each of `needs`, in order; or, when any is missing, one line that says
/// what is missing and the one `make` command that builds all of it.
pub fn require(needs: &[Need]) -> Result<Vec<PathBuf>, String> {
    require_in(needs, None)
}

/// [`require`] with the scripts' cache at `cache` (their `OPENCLAW_CACHE`) when given.
pub fn require_in(needs: &[Need], cache: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let mut dirs = Vec::new();
    let mut missing = Vec::new();
    for &need in needs {
        match need.find(cache)? {
            Some(dir) => dirs.push(dir),
            None => missing.push(need),
        }
    }
    if missing.is_empty() {
        return Ok(dirs);
    }
    let what: Vec<&str> = missing.iter().map(|n| n.wording().0).collect();
    let targets: Vec<&str> = missing.iter().map(|n| n.wording().1).collect();
    let how: Vec<&str> = missing.iter().map(|n| n.wording().2).collect();
    Err(format!(
        "{}: run `make {}` ({})",
        what.join(" and "),
        targets.join(" "),
        how.join("; ")
    ))
}

/// The line of [`require`] as a libtest test's error: a test returning
/// `Result<(), NotBuilt>` fails with that line alone, where a panic would add a backtrace
/// under `RUST_BACKTRACE=1`.
pub struct NotBuilt(pub String);

impl std::fmt::Debug for NotBuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The control plane's bin dir (kube-apiserver, etcd, kubectl, helm), or the line that says
/// how to build it.
pub fn control_plane() -> Result<PathBuf, String> {
    require(&[Need::ControlPlane]).map(|mut dirs| dirs.remove(0))
}
