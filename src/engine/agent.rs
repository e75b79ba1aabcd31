//! Which requests are about an agent: a pod or pod template that one of the policy's agent
//! selectors matches by its labels, or (when the catch-all is on) that runs an OpenClaw
//! image without any agent label; and, for a CONNECT, the pod it names.

use super::containers::containers;
use super::policy::{Action, Policy, glob_match};
use super::review::{self, ConnectTarget, Review, SANDBOX_KINDS, Subject, Target};
use super::selector;
use super::selector::Labels;
use super::view::{ClusterView, PodFacts, PodLookup};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// How a pod or template is an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// An agent selector matches its labels.
    Selected,
    /// Only the catch-all's images match: its violations take the catch-all's action.
    CaughtByImage(Action),
}

impl Match {
    /// The action that overrides the tiers' for this agent's violations.
    pub fn action(self) -> Option<Action> {
        match self {
            Match::Selected => None,
            Match::CaughtByImage(a) => Some(a),
        }
    }
}

/// Whether the pod (labels, images) is an agent under the policy. The container list is
/// walked only when no selector matches and the catch-all is on: the common case (a labelled
/// agent, or no catch-all) costs no list on the request path.
pub fn of(policy: &Policy, target: &Target<'_>) -> Option<Match> {
    let labels = selector::labels_of(target.meta.labels.as_ref());
    if selected(policy, labels)
        || made_by_sandbox(policy, review::sandbox_owner(target.meta), labels)
    {
        return Some(Match::Selected);
    }
    if !policy.catch_all.enabled {
        return None;
    }
    caught(
        policy,
        containers(target.spec, target.spec_path).filter_map(|c| c.image()),
    )
}

/// [`of`] for the object under review: a Pod or workload by its labels (and images), and an
/// agent-sandbox `Sandbox` or `SandboxTemplate` also by its kind when the policy says every
/// one is an agent (`agentSandbox`), narrowed by its selector on the pod template's labels.
pub fn of_subject(policy: &Policy, subject: &Subject, target: &Target<'_>) -> Option<Match> {
    of(policy, target).or_else(|| by_kind(policy, subject, target))
}

fn by_kind(policy: &Policy, subject: &Subject, target: &Target<'_>) -> Option<Match> {
    let Subject::Template(t) = subject else {
        return None;
    };
    let s = &policy.agent_sandbox;
    (s.all_agents
        && SANDBOX_KINDS.contains(&t.kind.as_str())
        && s.selector.as_ref().is_none_or(|sel| {
            selector::matches(sel, selector::labels_of(target.meta.labels.as_ref()))
        }))
    .then_some(Match::Selected)
}

/// [`of`] for a pod known by its labels, images and owner alone (a pod a CONNECT reaches).
pub fn of_facts(policy: &Policy, pod: &PodFacts) -> Option<Match> {
    if selected(policy, &pod.labels) || made_by_sandbox(policy, pod.sandbox.as_deref(), &pod.labels)
    {
        return Some(Match::Selected);
    }
    caught(policy, pod.images.iter().map(String::as_str))
}

/// The label agent-sandbox's controller puts on every Pod it makes for a Sandbox (a hash of
/// the Sandbox's name; the controller refuses it from a user's pod template).
pub const SANDBOX_POD_LABEL: &str = "agents.x-k8s.io/sandbox-name-hash";

/// A Pod whose controller owner is a `Sandbox` is an agent when the policy makes every
/// Sandbox one (`agentSandbox.allAgents`), narrowed by its selector on the Pod's labels (the
/// controller copies the Sandbox's pod template labels onto its Pod).
fn made_by_sandbox(policy: &Policy, owner: Option<&str>, labels: &Labels) -> bool {
    let s = &policy.agent_sandbox;
    owner.is_some()
        && s.all_agents
        && s.selector
            .as_ref()
            .is_none_or(|sel| selector::matches(sel, labels))
}

/// What the agent signal and lookups list Pods by: each agent selector, and with
/// `agentSandbox.allAgents` the label every Sandbox's Pod carries (its ownership, which a
/// label query cannot read, is checked on what comes back).
pub fn signal_selectors(policy: &Policy) -> Vec<LabelSelector> {
    let mut out = policy.agent_selectors.clone();
    if policy.agent_sandbox.all_agents {
        out.push(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: SANDBOX_POD_LABEL.to_string(),
                operator: "Exists".to_string(),
                values: None,
            }]),
            match_labels: None,
        });
    }
    out
}

fn selected(policy: &Policy, labels: &Labels) -> bool {
    policy
        .agent_selectors
        .iter()
        .any(|s| selector::matches(s, labels))
}

/// The catch-all's verdict on a pod no selector matched.
fn caught<'i>(policy: &Policy, mut images: impl Iterator<Item = &'i str>) -> Option<Match> {
    let hit = policy.catch_all.enabled
        && images.any(|img| {
            let repo = image_repository(img);
            policy
                .catch_all
                .images
                .iter()
                .any(|p| image_matches(p, repo))
        });
    hit.then_some(Match::CaughtByImage(policy.catch_all.action))
}

/// Whether the review carries a pod or pod template the policy treats as an agent. For callers
/// that prepare cluster state before judging (the live view's confirm step).
pub fn is_agent(review: &Review, policy: &Policy) -> bool {
    let mut spec_path = String::new();
    target_of(review, &mut spec_path)
        .is_some_and(|t| of_subject(policy, &review.object, &t).is_some())
}

/// Whether an image repository (no tag or digest) matches a `catchAll.images` pattern: `*`
/// stands for any run of characters, `/` included (`*/openclaw*` catches a copy pushed under
/// another name), and a pattern also matches under any registry or path prefix, so a bare
/// `openclaw/openclaw` matches `registry.example:5000/mirror/openclaw/openclaw`.
fn image_matches(pattern: &str, repo: &str) -> bool {
    glob_match(pattern, repo)
        || repo
            .match_indices('/')
            .any(|(i, _)| glob_match(pattern, &repo[i + 1..]))
}

/// `registry/repo:tag@digest` -> `registry/repo`.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The pod or template under review, if the request carries one the engine judges.
pub fn target_of<'a>(review: &'a Review, spec_path: &'a mut String) -> Option<Target<'a>> {
    target_in(&review.object, &review.namespace, spec_path)
}

/// The pod or template as it was before an UPDATE (`oldObject`).
pub fn old_target_of<'a>(review: &'a Review, spec_path: &'a mut String) -> Option<Target<'a>> {
    target_in(&review.old_object, &review.namespace, spec_path)
}

fn target_in<'a>(
    subject: &'a Subject,
    ns: &'a str,
    spec_path: &'a mut String,
) -> Option<Target<'a>> {
    match subject {
        Subject::Pod(pod) => Some(Target::of_pod(pod, ns)),
        Subject::Template(t) => {
            *spec_path = format!("{}.spec", t.template_path);
            Some(Target::of_template(t, ns, spec_path.as_str()))
        }
        Subject::None
        | Subject::Other
        | Subject::SandboxRef(_)
        | Subject::Connect(_)
        | Subject::Dependency(_) => None,
    }
}

/// Whether the CONNECT's checks run for what it reaches (the pod it names, or every pod the
/// Service it names selects): `Some(true)` when an agent is among them, by its labels or, under
/// the catch-all, its images; `Some(false)` when the view cannot vouch for them (judged as an
/// agent: refusing a shell by mistake costs a retry, letting one into an agent by mistake
/// costs what the checks exist to prevent); `None` for no such pod or Service, or no agent.
pub fn connect_reaches(review: &Review, policy: &Policy, view: &impl ClusterView) -> Option<bool> {
    let lookup = match review.connect_target() {
        ConnectTarget::Pod(name) => view.pod(&review.namespace, name),
        ConnectTarget::Service(name) => view.service_pods(&review.namespace, name),
    };
    match lookup {
        PodLookup::Missing => None,
        PodLookup::Found(pods) => pods
            .iter()
            .any(|p| of_facts(policy, p).is_some())
            .then_some(true),
        PodLookup::Unknown => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_all_patterns_match_any_registry_and_copies_they_name() {
        let m = |p: &str, img: &str| image_matches(p, image_repository(img));
        // Today's exact entries keep their meaning.
        assert!(m("openclaw/openclaw", "openclaw/openclaw:2026.1"));
        assert!(m(
            "openclaw/openclaw",
            "registry.example:5000/mirror/openclaw/openclaw@sha256:ab"
        ));
        assert!(m(
            "ghcr.io/openclaw/openclaw",
            "ghcr.io/openclaw/openclaw:latest"
        ));
        assert!(!m(
            "openclaw/openclaw",
            "evil.example/openclaw/openclaw-copy:1"
        ));
        assert!(!m("openclaw/openclaw", "tenant/notopenclaw/openclaw:1"));
        // Patterns reach copies under other names.
        assert!(m("*/openclaw*", "evil.example/tenant/openclaw-copy:1"));
        assert!(m("*openclaw*", "gateway-openclaw:1"));
        assert!(m("openclaw/*", "quay.io/openclaw/gateway:2"));
        assert!(!m("*/openclaw*", "nginx:1.27"));
        assert!(!m("openclaw/*", "quay.io/other/gateway:2"));
    }

    #[test]
    fn image_repository_drops_tag_and_digest_but_not_a_registry_port() {
        assert_eq!(
            image_repository("ghcr.io/openclaw/openclaw:2026.1"),
            "ghcr.io/openclaw/openclaw"
        );
        assert_eq!(
            image_repository("registry:5000/openclaw/openclaw@sha256:abc"),
            "registry:5000/openclaw/openclaw"
        );
        assert_eq!(
            image_repository("registry:5000/openclaw"),
            "registry:5000/openclaw"
        );
    }
}
