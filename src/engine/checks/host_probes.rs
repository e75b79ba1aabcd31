//! `host-probes` (high): no probe or lifecycle hook names a `host`. The kubelet runs
//! `httpGet` and `tcpSocket` probes and hooks from the node, so a `host` makes the node
//! connect wherever the pod says (the node's own ports, the cloud metadata service, another
//! tenant), outside every egress policy of the pod. Pod Security `baseline:
//! hostProbesAndHostLifecycle`: `livenessProbe`, `readinessProbe`, `startupProbe`,
//! `lifecycle.postStart` and `lifecycle.preStop`, `httpGet.host` and `tcpSocket.host` unset or
//! empty, in every container list.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::pod::{HTTPGetAction, TCPSocketAction};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "host-probes";
const TIER: Tier = Tier::High;
const PSA: &str = "(Pod Security baseline: hostProbesAndHostLifecycle)";

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

/// The hosts an `httpGet` and a `tcpSocket` name: (`httpGet` or `tcpSocket`, host).
fn hosts<'a>(
    http: Option<&'a HTTPGetAction>,
    tcp: Option<&'a TCPSocketAction>,
) -> impl Iterator<Item = (&'static str, &'a str)> {
    [
        ("httpGet", http.and_then(|h| h.host.as_deref())),
        ("tcpSocket", tcp.and_then(|t| t.host.as_deref())),
    ]
    .into_iter()
    .filter_map(|(kind, host)| Some((kind, host.filter(|h| !h.is_empty())?)))
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let mut out = Vec::new();
    for c in containers(t.spec, t.spec_path) {
        let mut found = Vec::new();
        for (field, probe) in c.probes() {
            if let Some(p) = probe {
                for (kind, host) in hosts(p.http_get.as_ref(), p.tcp_socket.as_ref()) {
                    found.push((field.to_string(), kind, host));
                }
            }
        }
        if let Some(l) = c.lifecycle() {
            for (field, handler) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
                if let Some(h) = handler {
                    for (kind, host) in hosts(h.http_get.as_ref(), h.tcp_socket.as_ref()) {
                        found.push((format!("lifecycle.{field}"), kind, host));
                    }
                }
            }
        }
        for (field, kind, host) in found {
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.{field}.{kind}.host", c.path),
                format!(
                    "container {}'s {field} makes the node connect to {host:?} {PSA}",
                    c.name()
                ),
                format!("remove {field}.{kind}.host: the kubelet then probes the pod's own IP"),
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::pod::{Lifecycle, LifecycleHandler, Probe};

    fn http(host: Option<&str>) -> Option<HTTPGetAction> {
        Some(HTTPGetAction {
            host: host.map(Into::into),
            ..Default::default()
        })
    }

    #[test]
    fn passes_hardened_pod_and_probes_of_the_pods_own_ip() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        let p = hardened()
            .with_container("agent")
            .edit(|c| {
                c.liveness_probe = Some(Box::new(Probe {
                    http_get: http(None),
                    ..Default::default()
                }));
                c.readiness_probe = Some(Box::new(Probe {
                    http_get: http(Some("")),
                    ..Default::default()
                }));
            })
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_probe_and_hook_hosts() {
        let p = hardened()
            .with_container("agent")
            .edit(|c| {
                c.startup_probe = Some(Box::new(Probe {
                    tcp_socket: Some(TCPSocketAction {
                        host: Some("169.254.169.254".into()),
                    }),
                    ..Default::default()
                }));
                c.lifecycle = Some(Box::new(Lifecycle {
                    pre_stop: Some(LifecycleHandler {
                        http_get: http(Some("10.0.0.1")),
                        ..Default::default()
                    }),
                    ..Default::default()
                }));
            })
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].startupProbe.tcpSocket.host",
                "spec.containers[0].lifecycle.preStop.httpGet.host"
            ]
        );
        assert!(v[0].message.contains("169.254.169.254") && v[0].message.ends_with(PSA));
        assert_eq!(v[0].tier, Tier::High);
    }
}
