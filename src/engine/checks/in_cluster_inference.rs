//! `in-cluster-inference` (medium): an agent's LLM endpoint stays inside the cluster, so its
//! prompts, and the files and secrets they quote, never leave it. Off until the policy names
//! the endpoints it allows (`checks.inference.allowedHosts`): then every env var that carries
//! an LLM endpoint (`checks.inference.endpointVariables`) must point at an in-cluster Service
//! (`<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local`) or an allowed host.
//!
//! The value is read as the agent reads it: `$(VAR)` references expanded as the kubelet
//! expands them, then parsed by the WHATWG URL Standard (the `url` crate), which Node's
//! `URL` follows (OpenClaw is a Node app): `https://evil.example\@vllm.ns.svc/` connects to
//! `evil.example`. A backslash (parsers disagree on it) and user info (`user:pw@`, which
//! hides the real host from a careless reader) are findings of their own. A `.svc` host
//! whose Service is `ExternalName` is an alias for another host, judged as that host.
//!
//! Values from `valueFrom` or `envFrom` are not visible at admission and are not judged; a
//! value that is only a `$(VAR)` reference of unknown value is not judged either (the
//! variable it names is).

use super::check::{Check, Judge, PodInput, Read};
use crate::engine::containers::containers;
use crate::engine::expansion::EnvValues;
use crate::engine::pod::PodSpec;
use crate::engine::policy::{InferenceSettings, Policy, glob_match};
use crate::engine::view::ClusterView;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "in-cluster-inference";
const TIER: Tier = Tier::Medium;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::Services],
    applies,
};

/// Off unless the policy names inference endpoints: with none named, every URL would be
/// refused.
fn applies(policy: &Policy) -> bool {
    !policy.checks.inference.allowed_hosts.is_empty()
}

/// The schemes of the URL Standard with a host always (`http`, `https`, `ws`, `wss`, `ftp`,
/// `file`): a value that parses with another scheme and no `//` is a scheme-less
/// `host:port` (`OLLAMA_HOST=ollama.models.svc:11434`), which clients read as `http://`.
fn parse(value: &str) -> Option<url::Url> {
    let v = value.trim();
    match url::Url::parse(v) {
        Ok(u) if u.is_special() || v.contains("://") => Some(u),
        _ => url::Url::parse(&format!("http://{v}")).ok(),
    }
}

/// The host of an endpoint value as the URL Standard reads it, lower case, without a
/// trailing dot or IPv6 brackets: `http://vllm.models.svc:8000/v1` -> `vllm.models.svc`; also
/// the scheme-less `host:port` that `OLLAMA_HOST` takes. `None` when there is none.
pub fn host_of(value: &str) -> Option<String> {
    host_in(&parse(value)?)
}

fn host_in(u: &url::Url) -> Option<String> {
    let host = u.host_str()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// `<svc>.<ns>.svc` or `<svc>.<ns>.svc.cluster.local` (or deeper, as a pod's name under a
/// headless Service): the Service's namespace and name.
fn service_of(host: &str) -> Option<(&str, &str)> {
    let rest = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    let mut labels = rest.rsplit('.');
    let ns = labels.next()?;
    let name = labels.next()?;
    (!ns.is_empty() && !name.is_empty()).then_some((ns, name))
}

fn in_cluster(host: &str) -> bool {
    host.ends_with(".svc") || host.ends_with(".svc.cluster.local")
}

/// An ExternalName Service may alias another ExternalName Service; a longer chain than this
/// is judged as leaving the cluster.
const MAX_ALIASES: usize = 4;

/// Why `host` is not an allowed place for prompts to go, `None` when it is. A `.svc` host is
/// in the cluster unless the view knows its Service as `ExternalName`: then the name it
/// aliases is judged instead.
fn verdict(host: &str, s: &InferenceSettings, view: &dyn ClusterView) -> Option<String> {
    let allowed = |h: &str| s.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(h));
    let mut host = host.to_string();
    let mut via: Option<String> = None;
    for _ in 0..=MAX_ALIASES {
        if allowed(&host) {
            return None;
        }
        if !in_cluster(&host) {
            return Some(match via {
                Some(svc) => format!(
                    "points at Service {svc}, of type ExternalName: an alias for {host}, outside the cluster"
                ),
                None => format!("points at {host}, outside the cluster"),
            });
        }
        // Not a Service name, or not an ExternalName one: in the cluster.
        let (ns, name) = service_of(&host)?;
        let service = format!("{ns}/{name}");
        let external = view
            .service(ns, name)
            .and_then(|f| f.external().map(str::to_string))?;
        host = external.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Some(format!(
                "points at Service {service}, of type ExternalName with no external name"
            ));
        }
        via.get_or_insert(service);
    }
    Some(format!(
        "points at Service {}, an ExternalName chain longer than {MAX_ALIASES}",
        via.unwrap_or_default()
    ))
}

/// What is wrong with one endpoint value, `None` when nothing is.
fn problem(value: &str, s: &InferenceSettings, view: &dyn ClusterView) -> Option<String> {
    if value.contains('\\') {
        return Some(
            "holds a backslash, which URL parsers read differently (Node's reads it as /, so the host is not what it seems)"
                .into(),
        );
    }
    let Some(u) = parse(value) else {
        return Some("holds no host".into());
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Some("carries user info before its host (user:password@)".into());
    }
    match host_in(&u) {
        Some(h) => verdict(&h, s, view),
        None => Some("holds no host".into()),
    }
}

/// Each endpoint value of a spec: container path and name, env index, var name, value as
/// the container holds it. `$(VAR)`-only values of unknown value are left out.
fn endpoints<'a>(
    spec: &'a PodSpec,
    spec_path: &'a str,
    s: &InferenceSettings,
    mut each: impl FnMut(&crate::engine::containers::ContainerRef<'a>, usize, &str),
) {
    for c in containers(spec, spec_path) {
        if !c
            .env()
            .iter()
            .any(|e| s.endpoint_variables.iter().any(|p| glob_match(p, &e.name)))
        {
            continue;
        }
        let values = EnvValues::new(c.env());
        for (i, e) in c.env().iter().enumerate() {
            if !s.endpoint_variables.iter().any(|p| glob_match(p, &e.name)) {
                continue;
            }
            let Some(value) = values.expanded(i).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let v = value.trim();
            if v.starts_with("$(") && v.ends_with(')') && !v[2..].contains(['(', '$']) {
                continue;
            }
            each(&c, i, value);
        }
    }
}

/// The Services (namespace, name) the endpoint values of a spec point at by a `.svc` host:
/// what the live view confirms when its cache does not know them yet.
pub fn services_named(spec: &PodSpec, spec_path: &str, policy: &Policy) -> Vec<(String, String)> {
    let s = &policy.checks.inference;
    let mut out = Vec::new();
    endpoints(spec, spec_path, s, |_, _, value| {
        if let Some(h) = parse(value).as_ref().and_then(host_in)
            && let Some((ns, name)) = service_of(&h)
        {
            out.push((ns.to_string(), name.to_string()));
        }
    });
    out.sort();
    out.dedup();
    out
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let s = &input.policy.checks.inference;
    let mut out = Vec::new();
    endpoints(t.spec, t.spec_path, s, |c, i, value| {
        let Some(verdict) = problem(value, s, input.view) else {
            return;
        };
        let e = &c.env()[i];
        out.push(Violation::new(
            ID,
            TIER,
            format!("{}.env[{i}].value", c.path),
            format!(
                "LLM endpoint {} of container {} {verdict}: prompts and what they quote would leave the cluster",
                e.name, c.name()
            ),
            format!(
                "point {} at an in-cluster inference Service (<svc>.<namespace>.svc, not ExternalName) written as a plain URL, or add the host to checks.inference.allowedHosts",
                e.name
            ),
        ));
    });
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

    fn service(ns: &str, name: &str, spec: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": spec})
    }

    #[test]
    fn an_external_name_service_is_judged_as_the_host_it_aliases() {
        let mut view = hardened_view();
        for svc in [
            service(
                "models",
                "vllm",
                serde_json::json!({"ports": [{"port": 8000}]}),
            ),
            service(
                "models",
                "openai",
                serde_json::json!({"type": "ExternalName", "externalName": "api.openai.com"}),
            ),
            service(
                "models",
                "gateway",
                serde_json::json!({"type": "ExternalName", "externalName": "LLM-Gateway.corp.example."}),
            ),
            service(
                "models",
                "alias",
                serde_json::json!({"type": "ExternalName", "externalName": "vllm.models.svc.cluster.local"}),
            ),
            service(
                "models",
                "loop",
                serde_json::json!({"type": "ExternalName", "externalName": "loop.models.svc"}),
            ),
        ] {
            view.add(&svc, NS).unwrap();
        }
        let judge = |value: &str| {
            let p = hardened().env("OPENAI_BASE_URL", value).build();
            run(&CHECK, &p, &on(), &view)
        };
        for ok in [
            "http://vllm.models.svc:8000/v1",
            "http://gateway.models.svc/v1",
            "http://alias.models.svc/v1",
            // Not known to the view: a Service by its name.
            "http://unknown.models.svc/v1",
        ] {
            assert!(judge(ok).is_empty(), "{ok}: {:?}", judge(ok));
        }
        let v = judge("https://openai.models.svc.cluster.local/v1");
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains("Service models/openai")
                && v[0].message.contains("ExternalName")
                && v[0].message.contains("api.openai.com"),
            "{}",
            v[0].message
        );
        assert_eq!(judge("http://loop.models.svc").len(), 1);
    }

    #[test]
    fn a_backslash_or_user_info_is_a_finding_and_the_host_is_the_one_node_connects_to() {
        let v = judge(
            "OPENAI_BASE_URL",
            r"https://evil.example\@vllm.ns.svc/v1",
            &on(),
        );
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("backslash"), "{}", v[0].message);
        assert_eq!(
            host_of(r"https://evil.example\@vllm.ns.svc/v1").as_deref(),
            Some("evil.example")
        );
        let v = judge(
            "OPENAI_BASE_URL",
            "http://agent:PLANTEDpw@vllm.ns.svc/v1",
            &on(),
        );
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("user info"), "{}", v[0].message);
        assert!(!format!("{v:?}").contains("PLANTEDpw"));
        // Special schemes without slashes, tabs and case: as the URL Standard reads them.
        assert_eq!(
            host_of("https:evil.example/v1").as_deref(),
            Some("evil.example")
        );
        assert_eq!(
            host_of("http://vl\tlm.NS.svc/").as_deref(),
            Some("vllm.ns.svc")
        );
        assert_eq!(
            judge("OPENAI_BASE_URL", "https:api.openai.com", &on()).len(),
            1
        );
    }

    #[test]
    fn references_are_expanded_before_the_host_is_read() {
        let p = hardened()
            .env("UPSTREAM", "https://api.openai.com")
            .env("OPENAI_BASE_URL", "$(UPSTREAM)/v1")
            .env_secret("FROM_SECRET", "s", "k")
            .env("ANTHROPIC_BASE_URL", "$(FROM_SECRET)")
            .env("OLLAMA_HOST", "$(LATER)")
            .build();
        let v = run(&CHECK, &p, &on(), &hardened_view());
        assert_eq!(paths(&v), ["spec.containers[0].env[2].value"], "{v:?}");
        assert!(v[0].message.contains("api.openai.com"));
        assert_eq!(
            services_named(
                &hardened()
                    .env("OPENAI_BASE_URL", "http://vllm.models.svc/v1")
                    .build()
                    .spec
                    .unwrap(),
                "spec",
                &on()
            ),
            [("models".to_string(), "vllm".to_string())]
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
