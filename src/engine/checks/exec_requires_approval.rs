//! `exec-requires-approval` (high): every way into a running agent is for approvers only:
//! `kubectl exec`, `attach`, `port-forward`, `pods/proxy` to the agent, `services/proxy` to a
//! Service that selects an agent, and `kubectl debug` adding a container to one (the engine
//! hands that UPDATE here as a CONNECT by another name). A shell in an agent is a human acting
//! with the agent's credentials, so it needs human approval. The engine finds what the
//! request reaches (a CONNECT carries only its options); what it cannot vouch for is judged
//! as an agent.

use super::check::{Check, ConnectInput, Judge, always};
use crate::engine::review::ConnectTarget;
use crate::engine::violation::{Tier, Violation};

const ID: &str = "exec-requires-approval";
const TIER: Tier = Tier::High;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Connect(check),
    reads: &[],
    applies: always,
};

fn check(input: &ConnectInput<'_>) -> Vec<Violation> {
    let review = input.review;
    let policy = input.policy;
    let user = &review.user;
    if policy.is_approver(user) {
        return Vec::new();
    }
    let what = review.sub_resource.as_deref().unwrap_or("connect");
    let resource = review.resource.resource.as_str();
    let possible = if input.pod_known { "" } else { "possible " };
    let target = match review.connect_target() {
        ConnectTarget::Pod(name) => format!("{possible}agent pod {}/{name}", review.namespace),
        ConnectTarget::Service(name) => format!(
            "service {}/{name}, which selects {possible}agent pods",
            review.namespace
        ),
    };
    let verb = match what {
        "exec" | "attach" => format!("{what} into"),
        "portforward" => "port-forward to".to_string(),
        "proxy" => "proxy to".to_string(),
        "ephemeralcontainers" => "add a debug container to".to_string(),
        other => format!("{other} into"),
    };
    let approvers = policy.approvers_text();
    vec![Violation::new(
        ID,
        TIER,
        format!("{resource}/{what}"),
        format!(
            "{} may not {verb} {target}: a way into an agent needs human approval",
            user.username,
        ),
        format!(
            "ask an approver ({approvers}) to run it, or have {} added to an approver group",
            user.username
        ),
    )]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::{NS, hardened_view, run_connect};
    use crate::engine::policy::Policy;
    use crate::engine::review::{ConnectOptions, Review, Subject, User};

    fn exec_by(user: &str, groups: &[&str]) -> Review {
        let mut r = Review::dry_run_create("Pod", "v1", NS, "agent", user, Subject::None, 0);
        r.operation = crate::engine::review::Operation::Connect;
        r.sub_resource = Some("exec".into());
        r.user = User {
            username: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        r
    }

    fn policy() -> Policy {
        Policy {
            approver_groups: vec!["agent-approvers".into()],
            ..Policy::default()
        }
    }

    #[test]
    fn refuses_a_shell_to_someone_outside_the_approver_groups() {
        let v = run_connect(
            &CHECK,
            &exec_by("mallory", &["system:authenticated"]),
            &ConnectOptions::default(),
            true,
            &policy(),
            &hardened_view(),
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "pods/exec");
        assert!(
            v[0].message
                .starts_with(&format!("mallory may not exec into agent pod {NS}/agent")),
            "{}",
            v[0].message
        );
        assert!(v[0].fix.contains("groups agent-approvers"), "{}", v[0].fix);
    }

    #[test]
    fn lets_an_approver_in() {
        let v = run_connect(
            &CHECK,
            &exec_by("alice", &["agent-approvers"]),
            &ConnectOptions::default(),
            true,
            &policy(),
            &hardened_view(),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn a_pod_the_view_cannot_vouch_for_is_a_possible_agent() {
        let v = run_connect(
            &CHECK,
            &exec_by("mallory", &[]),
            &ConnectOptions::default(),
            false,
            &policy(),
            &hardened_view(),
        );
        assert!(
            v[0].message.contains("possible agent pod"),
            "{}",
            v[0].message
        );
    }
}
