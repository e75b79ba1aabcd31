//! Mutation `otel-env`: gives every init and regular container the OpenTelemetry env that
//! points its SDK at the collector and names the agent, so what an agent does shows up in
//! traces under its own identity.
//!
//! Rules, in the order they matter:
//! - a variable the user set is never overridden; a user's `OTEL_RESOURCE_ATTRIBUTES` keeps
//!   its keys and gets only the missing ones appended (one from `valueFrom` is left alone);
//!   a user's `service.name` attribute also keeps `OTEL_SERVICE_NAME` out, since the SDK
//!   lets that variable win over the attribute;
//! - `OTEL_RESOURCE_ATTRIBUTES` goes last, because Kubernetes expands `$(VAR)` only for
//!   variables defined earlier in the list and it refers to the pod-name variable. A user's
//!   one is moved to the end unless a later variable refers to it (moving it would break that
//!   reference); then our variables go just before it instead.
//! - the pod and node names come from the downward API as `OTEL_RESOURCE_ATTRIBUTES_POD_NAME`
//!   and `OTEL_RESOURCE_ATTRIBUTES_NODE_NAME`, the names the OpenTelemetry Operator injects,
//!   so the two can run side by side without duplicates.
//!
//! Known limit: values the user supplies through `envFrom` cannot be seen at admission, and
//! an explicit `env` entry wins over `envFrom`; a team that configures OTel that way should
//! disable this mutation for its namespace's policy.

use super::draft::PodDraft;
use super::mutation::MutationInput;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};

pub const NAME: &str = "otel-env";

pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
pub const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
pub const POD_NAME: &str = "OTEL_RESOURCE_ATTRIBUTES_POD_NAME";
pub const NODE_NAME: &str = "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME";
/// The pod annotation the OpenTelemetry Operator reads for the service name.
pub const SERVICE_NAME_ANNOTATION: &str = "resource.opentelemetry.io/service.name";
const DEFAULT_PROTOCOL: &str = "http/protobuf";

/// What is the same for every container of the pod.
struct PodFacts<'a> {
    endpoint: &'a str,
    protocol: &'a str,
    /// Service name from the annotation, an instance label, the agent-sandbox template a
    /// Sandbox's Pod was made from, the workload (controller owner) or the ServiceAccount; `None` falls back to each container's name. Never the label
    /// that selects agents: every agent would be called `openclaw`.
    service_name: Option<String>,
    namespace: String,
}

fn namespace_of(
    input: &MutationInput<'_>,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> String {
    if input.namespace.is_empty() {
        meta.namespace.clone().unwrap_or_default()
    } else {
        input.namespace.to_string()
    }
}

pub fn apply(draft: &mut PodDraft<'_>, input: &MutationInput<'_>) -> bool {
    let settings = &input.policy.mutations.otel;
    let pod = draft.original();
    let meta = &pod.metadata;
    let from_annotation = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(SERVICE_NAME_ANNOTATION));
    let from_label = || {
        let labels = meta.labels.as_ref()?;
        settings
            .service_name_labels
            .iter()
            .filter_map(|k| labels.get(k))
            .find(|v| !v.is_empty())
    };
    // A Pod agent-sandbox's controller made for a Sandbox that a warm pool or a claim made
    // from a template is named after the template: every Pod of a pool is the same agent, and
    // a pool's Pods exist before any claim names them. Its label holds the template name's
    // hash; the view knows the namespace's templates.
    let from_sandbox_template = || {
        crate::engine::review::sandbox_owner(meta)?;
        let hash = meta
            .labels
            .as_ref()?
            .get(crate::engine::review::TEMPLATE_REF_HASH_LABEL)?;
        input
            .view
            .sandbox_template_by_hash(&namespace_of(input, meta), hash)
    };
    let from_workload = || crate::engine::review::workload_of(meta).map(|(_, name)| name);
    let from_account = pod.spec.as_ref().and_then(|s| {
        s.service_account_name
            .as_ref()
            .filter(|n| !n.is_empty())
            .or(s.service_account.as_ref())
    });
    let service_name = from_annotation
        .filter(|v| !v.is_empty())
        .or_else(from_label)
        .cloned()
        .or_else(from_sandbox_template)
        .or_else(from_workload)
        .or(from_account.filter(|n| !n.is_empty()).cloned());
    let namespace = namespace_of(input, meta);
    let facts = PodFacts {
        endpoint: &settings.endpoint,
        protocol: if settings.protocol.is_empty() {
            DEFAULT_PROTOCOL
        } else {
            &settings.protocol
        },
        service_name,
        namespace,
    };
    let mut changed = false;
    for at in draft.app_containers() {
        let Some(name) = draft.container(at).map(|c| c.name.as_str()) else {
            continue;
        };
        if let Some(env) = draft.env_mut(at) {
            changed |= inject(name, env, &facts);
        }
    }
    changed
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            // `v1` is what the API server defaults it to; set so reinvocation sees no change.
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: field_path.into(),
            }),
            ..Default::default()
        }),
    }
}

/// Keys of a `k=v,k=v` resource attribute list.
fn attribute_keys(value: &str) -> Vec<&str> {
    value
        .split(',')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| !k.is_empty())
        .collect()
}

/// `$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)` and `$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME)`: the
/// references to the two downward-API variables, written once rather than formatted per
/// container (a unit test holds them to the names).
const POD_NAME_REF: &str = "$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)";
const NODE_NAME_REF: &str = "$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME)";

/// Whether `value` refers to `$(name)`.
fn refers_to(value: Option<&str>, name: &str) -> bool {
    value.is_some_and(|v| {
        v.match_indices(name)
            .any(|(i, _)| v[..i].ends_with("$(") && v[i + name.len()..].starts_with(')'))
    })
}

fn inject(container: &str, env: &mut Option<Vec<EnvVar>>, facts: &PodFacts<'_>) -> bool {
    let env = env.get_or_insert_with(Vec::new);
    let user_attrs = env.iter().rposition(|e| e.name == RESOURCE_ATTRIBUTES);
    // A user attribute list from `valueFrom` cannot be read or extended: leave it be.
    let user_literal = user_attrs.filter(|&i| env[i].value_from.is_none());
    let user_keys: Vec<String> = user_literal
        .and_then(|i| env[i].value.as_deref())
        .map(|v| attribute_keys(v).into_iter().map(String::from).collect())
        .unwrap_or_default();

    let has = |name: &str| env.iter().any(|e| e.name == name);
    let mut missing = Vec::with_capacity(5);
    if !facts.endpoint.is_empty() && !has(ENDPOINT) {
        missing.push(literal(ENDPOINT, facts.endpoint));
    }
    if !has(PROTOCOL) {
        missing.push(literal(PROTOCOL, facts.protocol));
    }
    if !has(SERVICE_NAME) && !user_keys.iter().any(|k| k == "service.name") {
        missing.push(literal(
            SERVICE_NAME,
            facts.service_name.as_deref().unwrap_or(container),
        ));
    }
    if !has(POD_NAME) {
        missing.push(from_field(POD_NAME, "metadata.name"));
    }
    if !has(NODE_NAME) {
        missing.push(from_field(NODE_NAME, "spec.nodeName"));
    }

    let mut changed = !missing.is_empty();
    let attrs_at = match (user_attrs, user_literal) {
        // Only a `valueFrom` list: add the rest at the end and leave the list alone.
        (Some(_), None) => {
            env.extend(missing);
            return changed;
        }
        (_, Some(i)) => {
            let referenced_later = env[i + 1..]
                .iter()
                .any(|e| refers_to(e.value.as_deref(), RESOURCE_ATTRIBUTES));
            if referenced_later {
                let n = missing.len();
                env.splice(i..i, missing);
                i + n
            } else {
                if i + 1 != env.len() {
                    changed = true;
                }
                let own = env.remove(i);
                env.extend(missing);
                env.push(own);
                env.len() - 1
            }
        }
        (None, None) => {
            env.reserve(missing.len() + 1);
            env.extend(missing);
            env.push(literal(RESOURCE_ATTRIBUTES, ""));
            changed = true;
            env.len() - 1
        }
    };

    // A `$(VAR)` reference is added only when VAR is defined before the list, so it expands.
    let defined_before = |name: &str| env[..attrs_at].iter().any(|e| e.name == name);
    let wanted = [
        (
            "k8s.namespace.name",
            facts.namespace.as_str(),
            !facts.namespace.is_empty(),
        ),
        ("k8s.pod.name", POD_NAME_REF, defined_before(POD_NAME)),
        ("k8s.node.name", NODE_NAME_REF, defined_before(NODE_NAME)),
        ("k8s.container.name", container, true),
    ];

    let list = &mut env[attrs_at];
    let mut value = list.value.take().unwrap_or_default();
    for (k, v, _) in wanted.into_iter().filter(|w| w.2) {
        if user_keys.iter().any(|u| u == k) {
            continue;
        }
        if !value.trim().is_empty() {
            value.push(',');
        }
        value.reserve(k.len() + 1 + v.len());
        value.push_str(k);
        value.push('=');
        value.push_str(v);
        changed = true;
    }
    list.value = Some(value);
    changed
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::pod::Pod;
    use crate::engine::policy::Policy;
    use serde_json::{Value, json};

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn run(p: &mut Pod) -> bool {
        super::super::run_on(
            p,
            apply,
            &MutationInput {
                policy: &Policy::default(),
                namespace: "agents",
                service_account_automount: None,
                view: &crate::engine::view::StaticView::new(),
            },
        )
    }

    fn env_of(p: &Pod, container: usize) -> Vec<EnvVar> {
        p.spec.as_ref().unwrap().containers[container]
            .env
            .clone()
            .unwrap_or_default()
    }

    fn value<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a str> {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_deref())
    }

    /// Every `$(VAR)` in a value names a variable defined earlier in the list, when the list
    /// defines VAR at all (references to unknown names stay literal in Kubernetes too).
    fn assert_references_resolve(env: &[EnvVar]) {
        for (i, e) in env.iter().enumerate() {
            let Some(v) = e.value.as_deref() else {
                continue;
            };
            let mut rest = v;
            while let Some(start) = rest.find("$(") {
                let Some(len) = rest[start..].find(')') else {
                    break;
                };
                let name = &rest[start + 2..start + len];
                if env.iter().any(|d| d.name == name) {
                    assert!(
                        env[..i].iter().any(|d| d.name == name),
                        "{} refers to {name} defined later: {env:?}",
                        e.name
                    );
                }
                rest = &rest[start + len..];
            }
        }
    }

    fn plain_pod() -> Pod {
        pod(json!({
            "metadata": {"name": "agent", "labels": {"app": "openclaw"}},
            "spec": {"serviceAccountName": "claw",
                "initContainers": [{"name": "setup"}],
                "containers": [{"name": "agent", "env": [{"name": "HOME", "value": "/tmp"}]}]}
        }))
    }

    #[test]
    fn injects_the_otel_env_with_resource_attributes_last() {
        let mut p = plain_pod();
        assert!(run(&mut p));
        let env = env_of(&p, 0);
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "HOME",
                ENDPOINT,
                PROTOCOL,
                SERVICE_NAME,
                POD_NAME,
                NODE_NAME,
                RESOURCE_ATTRIBUTES
            ]
        );
        assert_eq!(
            value(&env, ENDPOINT),
            Some("http://otel-collector.observability.svc:4318")
        );
        assert_eq!(value(&env, PROTOCOL), Some("http/protobuf"));
        // Named after its ServiceAccount, not after the `app: openclaw` label every agent has.
        assert_eq!(value(&env, SERVICE_NAME), Some("claw"));
        let pod_name = env.iter().find(|e| e.name == POD_NAME).unwrap();
        assert_eq!(
            pod_name
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.name"
        );
        assert_eq!(
            value(&env, RESOURCE_ATTRIBUTES),
            Some(
                "k8s.namespace.name=agents,k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME),\
                 k8s.node.name=$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME),k8s.container.name=agent"
            )
        );
        assert_references_resolve(&env);
        let init = p.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0]
            .env
            .clone()
            .unwrap();
        assert!(
            value(&init, RESOURCE_ATTRIBUTES)
                .unwrap()
                .ends_with("k8s.container.name=setup")
        );
    }

    #[test]
    fn service_name_comes_from_annotation_then_label_then_account_then_container() {
        let name_of = |v: Value| {
            let mut p = pod(v);
            run(&mut p);
            value(&env_of(&p, 0), SERVICE_NAME).map(String::from)
        };
        let spec = json!({"serviceAccountName": "claw", "containers": [{"name": "agent"}]});
        assert_eq!(
            name_of(
                json!({"metadata": {"annotations": {SERVICE_NAME_ANNOTATION: "billing-agent"},
                "labels": {"app": "openclaw"}}, "spec": spec})
            )
            .as_deref(),
            Some("billing-agent")
        );
        assert_eq!(
            name_of(json!({"metadata": {"labels": {"app": "openclaw", "app.kubernetes.io/instance": "claw-1"}},
                "spec": spec})).as_deref(),
            Some("claw-1")
        );
        assert_eq!(
            name_of(json!({"metadata": {}, "spec": spec})).as_deref(),
            Some("claw")
        );
        // The agent-selecting labels name the application, not the agent: never used.
        assert_eq!(
            name_of(json!({"metadata": {"labels": {"app": "openclaw", "app.kubernetes.io/name": "openclaw"}},
                "spec": spec})).as_deref(),
            Some("claw")
        );
        // A controller-made Pod is named after its workload.
        let owned = |kind: &str, owner: &str, labels: Value| {
            json!({"metadata": {"labels": labels, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "u", "controller": true}]},
                "spec": spec})
        };
        assert_eq!(
            name_of(owned(
                "ReplicaSet",
                "research-agent-5d8f9c7b4",
                json!({"app": "openclaw", "pod-template-hash": "5d8f9c7b4"})
            ))
            .as_deref(),
            Some("research-agent")
        );
        assert_eq!(
            name_of(owned(
                "StatefulSet",
                "mail-agent",
                json!({"app": "openclaw"})
            ))
            .as_deref(),
            Some("mail-agent")
        );
        assert_eq!(
            name_of(json!({"metadata": {}, "spec": {"containers": [{"name": "agent"}]}}))
                .as_deref(),
            Some("agent")
        );
    }

    #[test]
    fn user_otel_values_survive() {
        let mut p = pod(
            json!({"metadata": {}, "spec": {"containers": [{"name": "agent", "env": [
                {"name": ENDPOINT, "value": "http://mine:4317"},
                {"name": PROTOCOL, "value": "grpc"},
                {"name": SERVICE_NAME, "value": "my-agent"}
            ]}]}}),
        );
        run(&mut p);
        let env = env_of(&p, 0);
        assert_eq!(value(&env, ENDPOINT), Some("http://mine:4317"));
        assert_eq!(value(&env, PROTOCOL), Some("grpc"));
        assert_eq!(value(&env, SERVICE_NAME), Some("my-agent"));
        assert_eq!(
            env.iter()
                .filter(|e| e.name.starts_with("OTEL_EXPORTER"))
                .count(),
            2
        );
    }

    #[test]
    fn user_resource_attributes_keep_their_keys_and_move_last() {
        let mut p = pod(
            json!({"metadata": {}, "spec": {"containers": [{"name": "agent", "env": [
                {"name": "TEAM", "value": "research"},
                {"name": RESOURCE_ATTRIBUTES, "value": "team=$(TEAM),k8s.namespace.name=custom"},
                {"name": "AFTER", "value": "x"}
            ]}]}}),
        );
        assert!(run(&mut p));
        let env = env_of(&p, 0);
        assert_eq!(env.last().unwrap().name, RESOURCE_ATTRIBUTES);
        let attrs = value(&env, RESOURCE_ATTRIBUTES).unwrap();
        assert!(
            attrs.starts_with("team=$(TEAM),k8s.namespace.name=custom,"),
            "{attrs}"
        );
        assert!(!attrs.contains("k8s.namespace.name=agents"), "{attrs}");
        assert!(attrs.contains("k8s.container.name=agent"), "{attrs}");
        assert_eq!(
            env.iter().filter(|e| e.name == RESOURCE_ATTRIBUTES).count(),
            1
        );
        assert_references_resolve(&env);
    }

    #[test]
    fn user_resource_attributes_referenced_later_stay_put_and_still_resolve() {
        let mut p = pod(
            json!({"metadata": {}, "spec": {"containers": [{"name": "agent", "env": [
                {"name": RESOURCE_ATTRIBUTES, "value": "team=research"},
                {"name": "EXTRA", "value": "$(OTEL_RESOURCE_ATTRIBUTES),x=y"}
            ]}]}}),
        );
        run(&mut p);
        let env = env_of(&p, 0);
        assert_eq!(env.last().unwrap().name, "EXTRA");
        assert!(
            value(&env, RESOURCE_ATTRIBUTES)
                .unwrap()
                .contains("k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)")
        );
        assert_references_resolve(&env);
    }

    #[test]
    fn a_user_service_name_attribute_keeps_otel_service_name_out() {
        let mut p = pod(
            json!({"metadata": {}, "spec": {"containers": [{"name": "agent", "env": [
            {"name": RESOURCE_ATTRIBUTES, "value": "service.name=mine"}]}]}}),
        );
        run(&mut p);
        assert_eq!(value(&env_of(&p, 0), SERVICE_NAME), None);
    }

    #[test]
    fn a_resource_attribute_list_from_value_from_is_left_alone() {
        let mut p = pod(
            json!({"metadata": {}, "spec": {"containers": [{"name": "agent", "env": [
            {"name": RESOURCE_ATTRIBUTES, "valueFrom": {"configMapKeyRef": {"name": "otel", "key": "attrs"}}}]}]}}),
        );
        assert!(run(&mut p));
        let env = env_of(&p, 0);
        assert_eq!(env[0].name, RESOURCE_ATTRIBUTES);
        assert!(env[0].value.is_none());
        assert_eq!(
            env.iter().filter(|e| e.name == RESOURCE_ATTRIBUTES).count(),
            1
        );
        let once = p.clone();
        assert!(!run(&mut p));
        assert_eq!(p, once);
    }

    #[test]
    fn references_are_the_variable_names_and_are_found_only_whole() {
        assert_eq!(POD_NAME_REF, format!("$({POD_NAME})"));
        assert_eq!(NODE_NAME_REF, format!("$({NODE_NAME})"));
        let refers = |v: &str| refers_to(Some(v), RESOURCE_ATTRIBUTES);
        assert!(refers("x=$(OTEL_RESOURCE_ATTRIBUTES)"));
        assert!(refers(
            "$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME) $(OTEL_RESOURCE_ATTRIBUTES)"
        ));
        assert!(!refers("$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)"));
        assert!(!refers("OTEL_RESOURCE_ATTRIBUTES"));
        assert!(!refers("($(OTEL_RESOURCE_ATTRIBUTES"));
        assert!(!refers_to(None, RESOURCE_ATTRIBUTES));
    }

    #[test]
    fn second_run_on_own_output_changes_nothing() {
        for mut p in [
            plain_pod(),
            pod(
                json!({"metadata": {}, "spec": {"containers": [{"name": "agent", "env": [
            {"name": RESOURCE_ATTRIBUTES, "value": "a=b"}, {"name": "Z", "value": "$(OTEL_RESOURCE_ATTRIBUTES)"}]}]}}),
            ),
        ] {
            assert!(run(&mut p));
            let once = p.clone();
            assert!(!run(&mut p));
            assert_eq!(p, once);
        }
    }
}
