//! Who may call the webhook (issue 32): the suite's `serve` runs with `--client-ca-file`, and
//! kube-apiserver presents the client certificate up.sh made for the webhook's host through
//! its `--admission-control-config-file`. Every other case is the API server getting answers;
//! this one also shows that a client without that certificate gets none.

use crate::support::*;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// `curl` POSTs the hardened pod's review to `/validate` with `extra` flags; returns curl's
/// exit status, the HTTP status it saw (`000` for none) and the body.
fn curl_review(env: &Env, extra: &[&std::ffi::OsStr]) -> Result<(bool, String, String), String> {
    let body = env.dir.path().join("curl-answer.json");
    let _ = std::fs::remove_file(&body);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", "--cacert"])
        .arg(env.dir.path().join("certs/ca.crt"))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!(
            "@{ROOT}/tests/fixtures/reviews/pod-create-hardened.json"
        ))
        .args(extra)
        .arg(format!("https://127.0.0.1:{}/validate", env.webhook_port))
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        std::fs::read_to_string(&body).unwrap_or_default(),
    ))
}

pub fn only_the_api_server_gets_reviews_answered(env: &Env) -> Result<(), String> {
    let uid = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(format!(
            "{ROOT}/tests/fixtures/reviews/pod-create-hardened.json"
        ))
        .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?["request"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    expect(!uid.is_empty(), || "the fixture has a uid".into())?;

    // The API server, presenting its certificate, gets its verdict: an agent pod that breaks
    // the checks is refused with the webhook's message.
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: caller-check\n  namespace: {NS_ENFORCE}\n  labels:\n    app: openclaw\nspec:\n  containers:\n    - name: agent\n      image: ghcr.io/openclaw/openclaw:1\n"
    );
    let out = env.kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], &pod);
    expect(
        !out.ok && out.all().contains("openclaw-admission refused pod"),
        || {
            format!(
                "the API server did not get the webhook's refusal: {}",
                out.all()
            )
        },
    )?;

    // curl without a client certificate: the handshake completes (probes need that), the
    // review is refused before its body is read.
    let (_, code, body) = curl_review(env, &[])?;
    expect(code == "403" && !body.contains(&uid), || {
        format!("curl without a client certificate got HTTP {code}: {body}")
    })?;
    // curl with a certificate from another CA (the cluster's admin): refused in the handshake.
    let pki = env
        .kubeconfig
        .parent()
        .map(|d| d.join("pki"))
        .unwrap_or_default();
    let admin_cert = pki.join("admin.crt");
    let admin_key = pki.join("admin.key");
    let (ok, code, body) = curl_review(
        env,
        &[
            "--cert".as_ref(),
            admin_cert.as_os_str(),
            "--key".as_ref(),
            admin_key.as_os_str(),
        ],
    )?;
    expect(!ok && code == "000" && !body.contains(&uid), || {
        format!("curl with another CA's certificate got an answer: HTTP {code}: {body}")
    })?;
    // curl with the API server's own client certificate is answered like the API server.
    let (ok, code, body) = curl_review(
        env,
        &[
            "--cert".as_ref(),
            env.webhook_client_cert.as_os_str(),
            "--key".as_ref(),
            env.webhook_client_key.as_os_str(),
        ],
    )?;
    expect(ok && code == "200" && body.contains(&uid), || {
        format!("curl with the API server's client certificate: HTTP {code}: {body}")
    })?;

    // The metrics tell both stories: refused handshakes, and the presented certificate's expiry.
    let metrics = env.webhook_get("/metrics")?;
    let value = |name: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let refused =
        value("openclaw_admission_tls_handshakes_refused_total{reason=\"client_certificate\"}");
    expect(refused.is_some_and(|n| n >= 1.0), || {
        format!("no refused handshake counted: {refused:?}")
    })?;
    let unauthenticated = value("openclaw_admission_unauthenticated_reviews_total");
    expect(unauthenticated.is_some_and(|n| n >= 1.0), || {
        format!("no unauthenticated review counted: {unauthenticated:?}")
    })?;
    let expiry = value("openclaw_admission_client_certificate_expiry_seconds");
    expect(
        expiry.is_some_and(|s| s > 300.0 * 86400.0 && s <= 366.0 * 86400.0),
        || format!("client certificate expiry (up.sh signs it for 365 days): {expiry:?}"),
    )?;
    Ok(())
}
