//! A local OTLP/HTTP receiver for the telemetry tests and the bench: accepts
//! `POST /v1/traces`, keeps each body as sent (raw bytes, for searching) and decoded, and
//! answers like a collector. It can be made slow, to fill the webhook's export queue.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Received {
    /// Every export body, as it arrived.
    pub bodies: Vec<Bytes>,
    /// The headers of each export.
    pub headers: Vec<HeaderMap>,
    /// Exports received.
    pub exports: u64,
}

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Received>>,
    delay: Duration,
    /// Keep bodies (tests) or only count them (the bench, which sends many).
    keep: bool,
}

/// A running receiver; stops with the test's runtime.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    /// Listens on a free loopback port; each export waits `delay` before the answer.
    pub async fn start(delay: Duration) -> Receiver {
        Self::start_with(delay, true).await
    }

    /// A receiver that answers at once and keeps only the number of exports.
    pub async fn start_discarding() -> Receiver {
        Self::start_with(Duration::ZERO, false).await
    }

    async fn start_with(delay: Duration, keep: bool) -> Receiver {
        let received = Arc::new(Mutex::new(Received::default()));
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(Shared {
                received: received.clone(),
                delay,
                keep,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, received }
    }

    pub fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// Exports received so far.
    pub fn exports(&self) -> u64 {
        self.received.lock().unwrap().exports
    }

    /// All bytes received so far, concatenated.
    pub fn raw(&self) -> Vec<u8> {
        let r = self.received.lock().unwrap();
        r.bodies.iter().flat_map(|b| b.iter().copied()).collect()
    }

    pub fn headers(&self) -> Vec<HeaderMap> {
        self.received.lock().unwrap().headers.clone()
    }

    /// Every span received, with its resource's attributes.
    pub fn spans(&self) -> Vec<(BTreeMap<String, String>, Span)> {
        let r = self.received.lock().unwrap();
        let mut out = Vec::new();
        for body in &r.bodies {
            let req = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
            for rs in req.resource_spans {
                let resource = rs
                    .resource
                    .map(|r| attrs(&r.attributes))
                    .unwrap_or_default();
                for ss in rs.scope_spans {
                    for s in ss.spans {
                        out.push((resource.clone(), s));
                    }
                }
            }
        }
        out
    }
}

async fn export(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    if !st.delay.is_zero() {
        tokio::time::sleep(st.delay).await;
    }
    {
        let mut r = st.received.lock().unwrap();
        r.exports += 1;
        if st.keep {
            r.bodies.push(body);
            r.headers.push(headers);
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::new(),
    )
}

/// Attribute values as strings; arrays as `[a,b]`.
pub fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(show).unwrap_or_default(),
            )
        })
        .collect()
}

fn show(v: &Any) -> String {
    match &v.value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(AnyValue::ArrayValue(a)) => {
            format!(
                "[{}]",
                a.values.iter().map(show).collect::<Vec<_>>().join(",")
            )
        }
        _ => String::new(),
    }
}
