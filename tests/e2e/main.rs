//! End-to-end suite against a real kube-apiserver and etcd (built by
//! `tests/controlplane/build.sh`, started by `tests/controlplane/up.sh`).
//!
//! It registers the webhook from `webhook-config/` (url form) and asserts what a user sees:
//! `kubectl apply` refused with the listed violations, warnings in warn mode, audit
//! annotations in the API server's audit log, and the stored pod carrying what the mutating
//! webhook injected.
//!
//! A custom harness (`harness = false`): one control plane for the whole suite, cases run in
//! order on the main thread, a closing `N passed, N failed` line. The control plane's keeper
//! watches this process and stops etcd and kube-apiserver when it exits, however it exits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod approvals;
mod callers;
mod cases;
mod credentials;
mod dashboard;
mod dependents;
mod doors;
mod isolation;
mod mlflow;
mod observability;
mod optional_apis;
#[path = "../common/prebuilt.rs"]
mod prebuilt;
mod sandbox_controller;
mod sandboxes;
mod scan;
mod second_webhook;
mod support;
mod workloads;

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let started = Instant::now();
    // What cargo does not build, checked before anything starts: one line naming the make
    // command when some of it is missing, not a build of many minutes inside the test.
    if let Err(line) = prebuilt::require(support::NEEDS) {
        eprintln!("e2e: {line}");
        return ExitCode::FAILURE;
    }
    let env = match support::Env::start() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("e2e: cannot start the control plane and webhook: {e}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "e2e: kube-apiserver {} with etcd on 127.0.0.1:{}, webhook on 127.0.0.1:{} (setup {:.1}s)",
        env.server_version,
        env.apiserver_port,
        env.webhook_port,
        started.elapsed().as_secs_f64()
    );
    let all = cases::all();
    let selected: Vec<_> = all
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("running {} e2e tests", selected.len());
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in selected {
        let t = Instant::now();
        match case(&env) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!(
                    "test {name} ... FAILED ({:.1}s)\n    {}",
                    t.elapsed().as_secs_f64(),
                    e.replace('\n', "\n    ")
                );
            }
        }
    }
    if failed > 0 {
        env.dump_webhook_log();
        sandbox_controller::dump_log(&env);
    }
    drop(env);
    println!(
        "\ne2e: {} tests in {:.1}s",
        passed + failed,
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
