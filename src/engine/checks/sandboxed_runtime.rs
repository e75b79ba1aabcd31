//! `sandboxed-runtime` (low by default; raise it with `checkTiers`): the agent runs under a
//! sandboxed runtime, gVisor or Kata Containers, named by `runtimeClassName` from
//! `checks.runtime.allowedClasses`, and that RuntimeClass exists. Code an LLM writes is
//! untrusted code; under the node's default runtime it shares the host kernel with every
//! other pod, one kernel bug away from the node. A missing RuntimeClass makes the API server
//! refuse a Pod, but a workload's controller then makes no Pods at all and says so only in
//! events: reported here at apply.

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::policy::glob_match;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "sandboxed-runtime";
const TIER: Tier = Tier::Low;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::RuntimeClasses],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let allowed = &input.policy.checks.runtime.allowed_classes;
    // Written only for a finding: a pod that passes builds no text.
    let listed = || allowed.join(", ");
    let path = || t.path("runtimeClassName");
    let name = match t.spec.runtime_class_name.as_deref() {
        Some(n) if !n.is_empty() => n,
        _ => {
            return vec![Violation::new(
                ID,
                TIER,
                path(),
                "the agent runs under the node's default runtime: code its model writes shares \
                 the node's kernel",
                format!(
                    "set runtimeClassName to a sandboxed RuntimeClass ({})",
                    listed()
                ),
            )];
        }
    };
    if !allowed.iter().any(|p| glob_match(p, name)) {
        return vec![Violation::new(
            ID,
            TIER,
            path(),
            format!("runtimeClassName {name} is not a sandboxed runtime the policy lists"),
            format!(
                "use one of {}, or add {name} to checks.runtime.allowedClasses if it \
                 sandboxes",
                listed()
            ),
        )];
    }
    if input.view.runtime_class(name) == Some(false) {
        let consequence = if t.template {
            "its controller will create no Pods and say so only in events"
        } else {
            "the API server refuses the Pod"
        };
        return vec![Violation::new(
            ID,
            TIER,
            path(),
            format!("RuntimeClass {name} does not exist in the cluster: {consequence}"),
            format!("install the sandbox's RuntimeClass {name}, or name one that exists"),
        )];
    }
    Vec::new()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::{hardened, hardened_view, run, run_on_deployment};
    use crate::engine::policy::Policy;

    fn view_with(classes: &[&str]) -> crate::engine::view::StaticView {
        let mut v = crate::engine::checks::fixtures::view_of(&[]);
        for c in classes {
            v.add(
                &serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                    "metadata": {"name": c}, "handler": "runsc"}),
                "default",
            )
            .unwrap();
        }
        v
    }

    #[test]
    fn the_default_runtime_is_named_with_the_sandboxes_to_choose() {
        let v = run(
            &CHECK,
            &hardened().spec(|s| s.runtime_class_name = None).build(),
            &Policy::default(),
            &hardened_view(),
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "spec.runtimeClassName");
        assert!(v[0].fix.contains("gvisor, kata*"), "{}", v[0].fix);
    }

    #[test]
    fn an_allowed_class_that_exists_passes_and_patterns_match() {
        for class in ["gvisor", "kata-qemu"] {
            let pod = hardened().runtime_class(class).build();
            let v = run(&CHECK, &pod, &Policy::default(), &view_with(&[class]));
            assert!(v.is_empty(), "{class}: {v:?}");
        }
    }

    #[test]
    fn a_class_outside_the_list_is_refused_even_when_it_exists() {
        let pod = hardened().runtime_class("runc-fast").build();
        let v = run(&CHECK, &pod, &Policy::default(), &view_with(&["runc-fast"]));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message
                .contains("runc-fast is not a sandboxed runtime")
        );
    }

    #[test]
    fn a_missing_class_is_reported_and_for_a_template_says_no_pods_will_come() {
        let pod = hardened().runtime_class("gvisor").build();
        let v = run(&CHECK, &pod, &Policy::default(), &view_with(&["kata"]));
        assert!(
            v[0].message
                .contains("RuntimeClass gvisor does not exist in the cluster: the API server"),
            "{}",
            v[0].message
        );
        let v = run_on_deployment(&CHECK, &pod, &Policy::default(), &view_with(&["kata"]));
        assert_eq!(v[0].path, "spec.template.spec.runtimeClassName");
        assert!(v[0].message.contains("create no Pods"), "{}", v[0].message);
        // A view that knows no RuntimeClasses (`check` given none) judges the name alone.
        assert!(run(&CHECK, &pod, &Policy::default(), &view_with(&[])).is_empty());
    }
}
