//! `in-cluster-inference` (medium): an agent's LLM endpoint stays inside the cluster, so its
//! prompts, and the files and secrets they quote, never leave it. Off until the policy names
//! the endpoints it allows (`checks.inference.allowedHosts`): then every env var that carries
//! an LLM endpoint (`checks.inference.endpointVariables`) must point at an in-cluster Service
//! (`<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local`) or an allowed host.
//!
//! Values from `valueFrom` or `envFrom` are not visible at admission and are not judged; a
//! `$(VAR)` reference is not judged either (the variable it names is).

use super::check::{Check, Judge, PodInput};
use crate::engine::containers::containers;
use crate::engine::policy::{Policy, glob_match};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "in-cluster-inference";
const TIER: Tier = Tier::Medium;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies,
};

/// Off unless the policy names inference endpoints: with none named, every URL would be
/// refused.
fn applies(policy: &Policy) -> bool {
    !policy.checks.inference.allowed_hosts.is_empty()
}

/// The host of an endpoint value: `http://vllm.models.svc:8000/v1` -> `vllm.models.svc`;
/// also the scheme-less `host:port` that `OLLAMA_HOST` takes. `None` when there is none.
pub fn host_of(value: &str) -> Option<String> {
    let v = value.trim();
    let rest = v.split_once("://").map_or(v, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(inner) = host_port.strip_prefix('[') {
        inner.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

fn in_cluster(host: &str) -> bool {
    host.ends_with(".svc") || host.ends_with(".svc.cluster.local")
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let s = &input.policy.checks.inference;
    let allowed = |host: &str| {
        in_cluster(host) || s.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host))
    };
    let mut out = Vec::new();
    for c in containers(t.spec, t.spec_path) {
        for (i, e) in c.env.iter().enumerate() {
            if !s.endpoint_variables.iter().any(|p| glob_match(p, &e.name)) {
                continue;
            }
            let Some(value) = e.value.as_deref().filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            if value.starts_with("$(") {
                continue;
            }
            let verdict = match host_of(value) {
                Some(h) if allowed(&h) => continue,
                Some(h) => format!("points at {h}, outside the cluster"),
                None => "holds no host".to_string(),
            };
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.env[{i}].value", c.path),
                format!(
                    "LLM endpoint {} of container {} {verdict}: prompts and what they quote would leave the cluster",
                    e.name, c.name
                ),
                format!(
                    "point {} at an in-cluster inference Service (<svc>.<namespace>.svc) or add the host to checks.inference.allowedHosts",
                    e.name
                ),
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
    use crate::engine::policy::Policy;

    fn on() -> Policy {
        let mut p = Policy::default();
        p.checks.inference.allowed_hosts = vec!["llm-gateway.corp.example".into()];
        p
    }

    fn judge(name: &str, value: &str, policy: &Policy) -> Vec<Violation> {
        let p = hardened().env(name, value).build();
        run(&CHECK, &p, policy, &hardened_view())
    }

    #[test]
    fn off_until_the_policy_names_endpoints() {
        let p = hardened()
            .env("OPENAI_BASE_URL", "https://api.openai.com/v1")
            .build();
        // The registry runs it only when enabled; the policy says so.
        assert!(!CHECK.enabled(&Policy::default()));
        assert!(CHECK.enabled(&on()));
        assert_eq!(run(&CHECK, &p, &on(), &hardened_view()).len(), 1);
    }

    #[test]
    fn passes_in_cluster_services_and_allowed_hosts() {
        for (name, value) in [
            ("OPENAI_BASE_URL", "http://vllm.models.svc:8000/v1"),
            (
                "ANTHROPIC_BASE_URL",
                "https://claude-proxy.ai.svc.cluster.local/",
            ),
            ("OLLAMA_HOST", "ollama.models.svc:11434"),
            (
                "OPENCLAW_LLM_BASE_URL",
                "https://LLM-Gateway.corp.example/v1",
            ),
            ("OPENAI_BASE_URL", "$(UPSTREAM)"),
            ("UNRELATED_URL", "https://example.com"),
        ] {
            assert!(judge(name, value, &on()).is_empty(), "{name}={value}");
        }
    }

    #[test]
    fn rejects_an_endpoint_outside_the_cluster_naming_variable_and_host() {
        let v = judge("OPENAI_BASE_URL", "https://api.openai.com/v1", &on());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "spec.containers[0].env[1].value");
        assert!(
            v[0].message.contains("OPENAI_BASE_URL") && v[0].message.contains("api.openai.com")
        );
        let v = judge(
            "OPENCLAW_PLANNER_BASE_URL",
            "http://user:pw@10.1.2.3:8080",
            &on(),
        );
        assert_eq!(v.len(), 1);
        assert!(!v[0].message.contains("pw"), "{}", v[0].message);
        // A look-alike suffix is not a Service.
        assert_eq!(
            judge("OPENAI_BASE_URL", "https://evil.svc.example.com", &on()).len(),
            1
        );
    }

    #[test]
    fn reads_hosts_the_way_clients_do() {
        assert_eq!(
            host_of("http://vllm.models.svc:8000/v1").as_deref(),
            Some("vllm.models.svc")
        );
        assert_eq!(host_of("ollama:11434").as_deref(), Some("ollama"));
        assert_eq!(
            host_of("https://[fd00::1]:443/x").as_deref(),
            Some("fd00::1")
        );
        assert_eq!(
            host_of("https://a:b@Host.Example./").as_deref(),
            Some("host.example")
        );
        assert_eq!(host_of("   "), None);
    }
}
