//! The project's control plane (tests/controlplane/up.sh) for a bench: started in a directory
//! of its own, owned by this process, stopped on drop.

#![allow(dead_code)]

use anyhow::{Context as _, ensure};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct ControlPlane {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl ControlPlane {
    /// Starts it (fails at once, naming the `make` target, when it was never built: up.sh
    /// would build it itself, for many minutes).
    pub fn start() -> anyhow::Result<ControlPlane> {
        ControlPlane::start_with("")
    }

    /// Starts it with more kube-apiserver flags, after any in `OPENCLAW_CP_APISERVER_ARGS`
    /// (later flags win over up.sh's).
    pub fn start_with(apiserver_args: &str) -> anyhow::Result<ControlPlane> {
        super::prebuilt::control_plane().map_err(anyhow::Error::msg)?;
        let dir = tempfile::Builder::new()
            .prefix("openclaw-cp-bench-")
            .tempdir()?;
        let mut args = std::env::var("OPENCLAW_CP_APISERVER_ARGS").unwrap_or_default();
        args.push(' ');
        args.push_str(apiserver_args);
        let status = Command::new("bash")
            .arg(format!("{ROOT}/tests/controlplane/up.sh"))
            .arg(dir.path().join("cp"))
            .env("OPENCLAW_CP_OWNER_PID", std::process::id().to_string())
            .env("OPENCLAW_CP_APISERVER_ARGS", args.trim())
            .stdin(Stdio::null())
            .status()
            .context("cannot run tests/controlplane/up.sh")?;
        ensure!(
            status.success(),
            "tests/controlplane/up.sh failed ({status})"
        );
        let path = dir.path().join("cp/env");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let env = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        Ok(ControlPlane { dir, env })
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("cp/kubeconfig")
    }

    /// A directory beside the control plane's, removed with it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A value of up.sh's env file (ports, pids, paths).
    pub fn get(&self, key: &str) -> anyhow::Result<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("{key} missing from up.sh's env file"))
    }

    /// Runs the control plane's kubectl with `stdin`; its standard output.
    pub fn kubectl(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = Command::new(Path::new(self.get("BIN_DIR")?).join("kubectl"))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run kubectl")?;
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(format!("{ROOT}/tests/controlplane/down.sh"))
            .arg(self.dir.path().join("cp"))
            .stdout(Stdio::null())
            .status();
    }
}
