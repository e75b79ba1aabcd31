//! `relabel-requires-approval` (high): what makes a running agent an agent stays on it. The
//! agent labels are what the webhook's entries, the exec rule and the egress NetworkPolicies
//! select it by; a tenant who could `kubectl label pod agent app-` would walk the agent out of
//! all three while it keeps its image, its credentials and its state. So an UPDATE of a Pod or
//! pod template that was an agent may not remove or change a label any agent selector reads,
//! nor (for an agent found by the catch-all) swap its OpenClaw image for another, unless an
//! approver asks or a workload controller does (`controllerUsers`: controllers relabel the
//! pods they own, for example when a ReplicaSet orphans one).

use super::check::{Check, Judge, UpdateInput, always};
use crate::engine::agent::Match;
use crate::engine::policy::Policy;
use crate::engine::review::Target;
use crate::engine::selector::{Labels, labels_of};
use crate::engine::violation::{Tier, Violation};
use std::collections::BTreeSet;

const ID: &str = "relabel-requires-approval";
const TIER: Tier = Tier::High;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Update(check),
    reads: &[],
    applies: always,
};

fn check(input: &UpdateInput<'_>) -> Vec<Violation> {
    let policy = input.policy;
    let user = &input.review.user;
    if policy.is_approver(user) || policy.controller_users.contains(&user.username) {
        return Vec::new();
    }
    let what = if input.new.template {
        "pod template of"
    } else {
        "pod"
    };
    let object = format!(
        "{what} {}/{}",
        input.review.namespace,
        if input.review.name.is_empty() {
            "(unnamed)"
        } else {
            &input.review.name
        }
    );
    let fix = format!(
        "keep the agent labels as they are; an approver ({}) may change them",
        policy.approvers_text()
    );
    let labels_path = labels_path(&input.new);
    let old = labels_of(input.old.meta.labels.as_ref());
    let new = labels_of(input.new.meta.labels.as_ref());
    let mut out: Vec<Violation> = changed_keys(policy, old, new)
        .into_iter()
        .map(|(key, before, after)| {
            let change = match after {
                Some(after) => format!("change the agent label {key}={before} to {key}={after}"),
                None => format!("remove the agent label {key}={before}"),
            };
            Violation::new(
                ID,
                TIER,
                format!("{labels_path}.{key}"),
                format!(
                    "{} may not {change} on {object}: the agent would leave the rules and \
                     egress policies that select it by that label",
                    user.username
                ),
                fix.clone(),
            )
        })
        .collect();
    if out.is_empty() && input.is.is_none() {
        // Still an agent by every label it had, yet no longer one: the catch-all found it by
        // an image the request replaces (or a selector's NotIn/DoesNotExist now excludes it).
        // Or it was an agent as the Pod of an agent-sandbox Sandbox, and the request takes
        // that owner reference off.
        let unowned = crate::engine::review::sandbox_owner(input.old.meta).is_some()
            && crate::engine::review::sandbox_owner(input.new.meta).is_none();
        let (path, how) = match input.was {
            Match::CaughtByImage(_) => (
                input.new.path("containers"),
                "replace the OpenClaw image the catch-all found it by",
            ),
            Match::Selected if unowned => (
                "metadata.ownerReferences".to_string(),
                "take off the Sandbox owner reference it is an agent by",
            ),
            Match::Selected => (labels_path.clone(), "add a label that unselects"),
        };
        out.push(Violation::new(
            ID,
            TIER,
            path,
            format!(
                "{} may not {how} on {object}: it would stop being judged as an agent",
                user.username
            ),
            format!(
                "run another image in a new pod; an approver ({}) may change this one",
                policy.approvers_text()
            ),
        ));
    }
    out
}

/// `metadata.labels` of a Pod, `spec.template.metadata.labels` of a workload (the spec path
/// without its last `.spec`).
fn labels_path(target: &Target<'_>) -> String {
    match target.spec_path.strip_suffix(".spec") {
        Some(template) => format!("{template}.metadata.labels"),
        None => "metadata.labels".to_string(),
    }
}

/// The label keys some agent selector reads whose value the old object had and the new one
/// drops or changes: `(key, old value, new value)`.
fn changed_keys<'a>(
    policy: &'a Policy,
    old: &'a Labels,
    new: &'a Labels,
) -> Vec<(&'a str, &'a str, Option<&'a str>)> {
    let keys: BTreeSet<&str> = policy
        .agent_selectors
        .iter()
        .flat_map(|s| {
            s.match_labels
                .iter()
                .flat_map(|m| m.keys())
                .chain(s.match_expressions.iter().flatten().map(|e| &e.key))
        })
        .map(String::as_str)
        .collect();
    keys.into_iter()
        .filter_map(|k| {
            let before = old.get(k)?;
            let after = new.get(k);
            (after != Some(before)).then_some((k, before.as_str(), after.map(String::as_str)))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::{IMAGE, NS, hardened, run_update};
    use crate::engine::review::{Operation, Review, Subject, User};

    fn update_by(user: &str, groups: &[&str]) -> Review {
        let mut r = Review::dry_run_create("Pod", "v1", NS, "agent", user, Subject::None, 0);
        r.operation = Operation::Update;
        r.user = User {
            username: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        r
    }

    fn catch_all() -> Policy {
        let mut p = Policy::default();
        p.catch_all.enabled = true;
        p
    }

    #[test]
    fn removing_the_agent_label_is_refused_to_a_tenant() {
        let old = hardened().build();
        let mut new = old.clone();
        new.metadata.labels.as_mut().unwrap().remove("app");
        let v = run_update(
            &CHECK,
            &update_by("mallory", &["system:authenticated"]),
            &old,
            &new,
            &Policy::default(),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].path, "metadata.labels.app");
        assert_eq!(
            v[0].message,
            format!(
                "mallory may not remove the agent label app=openclaw on pod {NS}/agent: the \
                 agent would leave the rules and egress policies that select it by that label"
            )
        );
        assert!(v[0].fix.contains("openclaw:approvers"), "{}", v[0].fix);
    }

    #[test]
    fn changing_it_is_refused_even_when_another_selector_still_matches() {
        let old = hardened()
            .label("app.kubernetes.io/name", "openclaw")
            .build();
        let mut new = old.clone();
        new.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("app".into(), "gateway".into());
        let v = run_update(
            &CHECK,
            &update_by("mallory", &[]),
            &old,
            &new,
            &Policy::default(),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message
                .contains("change the agent label app=openclaw to app=gateway"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn approvers_and_controllers_may_relabel_and_other_labels_are_free() {
        let old = hardened().build();
        let mut relabelled = old.clone();
        relabelled.metadata.labels.as_mut().unwrap().remove("app");
        let policy = Policy::default();
        for (user, groups) in [
            ("bob", vec!["openclaw:approvers"]),
            (
                "system:serviceaccount:kube-system:replicaset-controller",
                vec![],
            ),
        ] {
            let v = run_update(
                &CHECK,
                &update_by(user, &groups),
                &old,
                &relabelled,
                &policy,
            );
            assert!(v.is_empty(), "{user}: {v:?}");
        }
        let mut other = old.clone();
        other
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("team".into(), "research".into());
        assert!(run_update(&CHECK, &update_by("mallory", &[]), &old, &other, &policy).is_empty());
    }

    #[test]
    fn a_catch_all_agent_keeps_its_image() {
        let old = hardened().build();
        let mut unlabelled = old.clone();
        unlabelled.metadata.labels = None;
        let mut swapped = unlabelled.clone();
        swapped.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.27".into());
        let policy = catch_all();
        let v = run_update(
            &CHECK,
            &update_by("mallory", &[]),
            &unlabelled,
            &swapped,
            &policy,
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].path, "spec.containers");
        assert!(
            v[0].message.contains("replace the OpenClaw image"),
            "{}",
            v[0].message
        );
        // Another tag of the same image keeps it an agent: nothing to refuse.
        let mut retagged = unlabelled.clone();
        retagged.spec.as_mut().unwrap().containers[0].image =
            Some(IMAGE.replace("2026.1", "2026.2"));
        assert!(
            run_update(
                &CHECK,
                &update_by("mallory", &[]),
                &unlabelled,
                &retagged,
                &policy
            )
            .is_empty()
        );
    }

    #[test]
    fn template_labels_are_named_at_the_template() {
        let t = Target {
            namespace: NS,
            meta: &Default::default(),
            spec: &Default::default(),
            spec_path: "spec.jobTemplate.spec.template.spec",
            template: true,
        };
        assert_eq!(
            labels_path(&t),
            "spec.jobTemplate.spec.template.metadata.labels"
        );
    }
}
