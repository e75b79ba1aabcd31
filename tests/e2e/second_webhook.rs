//! A second mutating webhook for the reinvocation case: it adds one env var to every
//! container (when absent), so the API server reinvokes ours (`reinvocationPolicy:
//! IfNeeded`), which must then change nothing.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use base64::Engine;
use openclaw_admission::server::listen::{ListenOptions, serve_tls};
use openclaw_admission::server::metrics::Metrics;
use openclaw_admission::server::tls::ReloadingCert;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;

pub const ENV_NAME: &str = "SECOND_WEBHOOK";

async fn mutate(body: Bytes) -> axum::Json<Value> {
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let req = &review["request"];
    let mut ops = Vec::new();
    if let Some(containers) = req["object"]["spec"]["containers"].as_array() {
        for (i, c) in containers.iter().enumerate() {
            let env = c["env"].as_array();
            let has = env.is_some_and(|e| e.iter().any(|v| v["name"] == ENV_NAME));
            if has {
                continue;
            }
            // Insert first, so it never lands after OTEL_RESOURCE_ATTRIBUTES' `$(VAR)`s.
            match env {
                Some(_) => ops.push(json!({"op":"add","path":format!("/spec/containers/{i}/env/0"),"value":{"name":ENV_NAME,"value":"1"}})),
                None => ops.push(json!({"op":"add","path":format!("/spec/containers/{i}/env"),"value":[{"name":ENV_NAME,"value":"1"}]})),
            }
        }
    }
    let mut response = json!({"uid": req["uid"], "allowed": true});
    if !ops.is_empty() {
        let patch = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&ops).unwrap_or_default());
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(patch);
    }
    axum::Json(
        json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":response}),
    )
}

/// Runs until the returned sender is dropped. Returns the port.
pub fn start(
    rt: &tokio::runtime::Runtime,
    cert: &Path,
    key: &Path,
) -> Result<(u16, oneshot::Sender<()>), String> {
    let pair =
        ReloadingCert::load(cert, key, Arc::new(Metrics::new())).map_err(|e| e.to_string())?;
    let tls = pair.server_config(None).map_err(|e| e.to_string())?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, rx) = oneshot::channel::<()>();
    let app = Router::new().route("/mutate", post(mutate));
    rt.spawn(serve_tls(
        listener,
        tls,
        app,
        ListenOptions::default(),
        async move {
            let _ = rx.await;
        },
    ));
    Ok((port, tx))
}
