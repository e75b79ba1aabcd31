//! A real MLflow tracking server for the e2e suite: installed by `make mlflow`
//! (tests/mlflow/venv.sh: pinned, cached outside git), started on loopback with a SQLite
//! store in the suite's temporary directory, and stopped, with every process it started,
//! when dropped.
//! Experiments and traces go through MLflow's own Python client (`tests/mlflow/client.py`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct Mlflow {
    pub port: u16,
    pub experiment_id: String,
    venv: PathBuf,
    log: PathBuf,
    /// The server, leader of its own process group (it forks workers); taken when stopped.
    child: Mutex<Option<Child>>,
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// `GET /health` answered 200.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains(" 200 ")
}

impl Mlflow {
    /// Starts the server from the venv `make mlflow` installed (a missing venv is the line
    /// that says so); [`Mlflow::wait_ready`] waits for it, so the control plane can start
    /// meanwhile.
    pub fn spawn(dir: &Path) -> Result<Mlflow, String> {
        let venv = crate::prebuilt::require(&[crate::prebuilt::Need::Mlflow])?.remove(0);
        let data = dir.join("mlflow");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let log = dir.join("mlflow.log");
        let logf = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(venv.join("bin/mlflow"))
            .arg("server")
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", data.join("mlflow.db").display()))
            .arg("--default-artifact-root")
            .arg(data.join("artifacts"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--workers",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf)
            // Its own group, so that stopping it stops the workers it forks too.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start mlflow server: {e}"))?;
        Ok(Mlflow {
            port,
            experiment_id: String::new(),
            venv,
            log,
            child: Mutex::new(Some(child)),
        })
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.uri())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(30).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Waits for `/health`, then creates the experiment the spans go to.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(240);
        while !healthy(self.port) {
            let exited = self
                .child
                .lock()
                .ok()
                .and_then(|mut c| c.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            if let Some(st) = exited {
                return Err(format!("mlflow server exited ({st}):\n{}", self.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "mlflow server not healthy within 240 s:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        self.experiment_id = self
            .client(&["create-experiment", "openclaw-admission-e2e"])?
            .trim()
            .to_string();
        Ok(())
    }

    fn client(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(self.venv.join("bin/python"))
            .arg(format!("{ROOT}/tests/mlflow/client.py"))
            .arg(self.uri())
            .args(args)
            .output()
            .map_err(|e| format!("cannot run client.py: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "client.py {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Every trace of the experiment, read back through MLflow's client.
    pub fn traces(&self) -> Result<Vec<Value>, String> {
        let text = self.client(&["traces", &self.experiment_id])?;
        serde_json::from_str(&text).map_err(|e| format!("client.py traces: {e}: {text}"))
    }

    /// Runs `tests/mlflow/agent.py` (the OTel Python SDK) with exactly `env`.
    pub fn run_agent(&self, env: &BTreeMap<String, String>, probe: &str) -> Result<String, String> {
        let out = Command::new(self.venv.join("bin/python"))
            .arg(format!("{ROOT}/tests/mlflow/agent.py"))
            .arg(probe)
            .env_clear()
            .envs(env)
            .output()
            .map_err(|e| format!("cannot run agent.py: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "agent.py failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server and its workers (SIGTERM to the group, SIGKILL after 10 s).
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Workers may outlive the leader: the group goes in any case.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
    }
}

impl Drop for Mlflow {
    fn drop(&mut self) {
        self.stop();
    }
}
