//! `resource-limits` (low by default; raise it with `checkTiers`): every container of the
//! agent has a memory and a CPU limit, so a runaway agent (a loop its model wrote, a fork
//! bomb from a bad skill) is throttled or killed on its own instead of starving its node. A
//! limit counts from any of the three places Kubernetes takes it: the container's
//! `resources.limits`, the pod-level `spec.resources.limits` (which bounds all containers
//! together), and a `default` of the namespace's LimitRanges (the LimitRanger admission
//! plugin writes it into the Pod before webhooks see it). Ephemeral containers take no
//! resources and are not judged.

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::pod::{Container, Limits};
use crate::engine::violation::{Tier, Violation};

const ID: &str = "resource-limits";
const TIER: Tier = Tier::Low;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::LimitRanges],
    applies: always,
};

fn has_limit(r: Option<&Limits>, resource: &str) -> bool {
    r.is_some_and(|l| l.has(resource))
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let s = t.spec;
    let pod_level = s.resources.as_ref();
    let defaults = input.view.limit_range_defaults(t.namespace);
    let covered = |resource: &str, default: bool| has_limit(pod_level, resource) || default;
    let (cpu_covered, memory_covered) = (
        covered("cpu", defaults.cpu),
        covered("memory", defaults.memory),
    );
    if cpu_covered && memory_covered {
        return Vec::new();
    }
    let lists: [(&str, &[Container]); 2] = [
        (
            "initContainers",
            s.init_containers.as_deref().unwrap_or(&[]),
        ),
        ("containers", &s.containers),
    ];
    let mut out = Vec::new();
    for (list, items) in lists {
        for (i, c) in items.iter().enumerate() {
            let own = c.resources.as_ref();
            let missing: Vec<&str> = [("memory", memory_covered), ("cpu", cpu_covered)]
                .into_iter()
                .filter(|(r, covered)| !covered && !has_limit(own, r))
                .map(|(r, _)| r)
                .collect();
            if missing.is_empty() {
                continue;
            }
            let what = missing.join(" and ");
            out.push(Violation::new(
                ID,
                TIER,
                t.path(&format!("{list}[{i}].resources.limits")),
                format!(
                    "container {} has no {what} limit: a runaway agent can starve its node",
                    c.name
                ),
                format!(
                    "set resources.limits.{} on the container, a pod-level spec.resources \
                     limit, or a LimitRange default in the namespace",
                    missing.join(" and resources.limits.")
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
    use crate::engine::checks::fixtures::{NS, hardened, hardened_view, paths, run};
    use crate::engine::policy::Policy;
    use serde_json::json;

    fn limits(cpu: bool, memory: bool) -> Limits {
        Limits::of(cpu.then_some("1"), memory.then_some("1Gi"))
    }

    #[test]
    fn each_container_without_limits_is_named_with_what_it_lacks() {
        let mut pod = hardened().init_container("init").hardened().build();
        let spec = pod.spec.as_mut().unwrap();
        spec.containers[0].resources = Some(limits(true, false));
        let v = run(&CHECK, &pod, &Policy::default(), &hardened_view());
        assert_eq!(
            paths(&v),
            [
                "spec.initContainers[0].resources.limits",
                "spec.containers[0].resources.limits"
            ]
        );
        assert!(
            v[0].message.contains("no memory and cpu limit"),
            "{}",
            v[0].message
        );
        assert!(v[1].message.contains("no memory limit"), "{}", v[1].message);
        assert!(v[1].fix.contains("resources.limits.memory"), "{}", v[1].fix);
    }

    #[test]
    fn container_pod_level_and_limit_range_limits_all_count() {
        let mut pod = hardened().build();
        pod.spec.as_mut().unwrap().containers[0].resources = Some(limits(true, true));
        assert!(run(&CHECK, &pod, &Policy::default(), &hardened_view()).is_empty());

        let mut pod = hardened().build();
        pod.spec.as_mut().unwrap().containers[0].resources = None;
        pod.spec.as_mut().unwrap().resources = Some(limits(true, true));
        assert!(run(&CHECK, &pod, &Policy::default(), &hardened_view()).is_empty());

        // Memory from the pod level, CPU from the namespace's LimitRange default.
        let mut pod = hardened().build();
        pod.spec.as_mut().unwrap().containers[0].resources = None;
        pod.spec.as_mut().unwrap().resources = Some(limits(false, true));
        let mut view = hardened_view();
        assert_eq!(run(&CHECK, &pod, &Policy::default(), &view).len(), 1);
        view.add(
            &json!({"apiVersion": "v1", "kind": "LimitRange",
                "metadata": {"name": "defaults", "namespace": NS},
                "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}}),
            NS,
        )
        .unwrap();
        assert!(run(&CHECK, &pod, &Policy::default(), &view).is_empty());
        // A Pod-type LimitRange sets no container default.
        let mut view = hardened_view();
        view.add(
            &json!({"apiVersion": "v1", "kind": "LimitRange",
                "metadata": {"name": "pods", "namespace": NS},
                "spec": {"limits": [{"type": "Pod", "max": {"cpu": "2"}}]}}),
            NS,
        )
        .unwrap();
        assert_eq!(run(&CHECK, &pod, &Policy::default(), &view).len(), 1);
    }
}
