//! Which requests are about an agent: a pod or pod template that one of the policy's agent
//! selectors matches by its labels, or (when the catch-all is on) that runs an OpenClaw
//! image without any agent label; and, for a CONNECT, the pod it names.

use super::containers::containers;
use super::policy::{Action, Policy};
use super::review::{Review, Subject, Target};
use super::selector;
use super::view::{ClusterView, PodLookup};

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

/// Whether the pod (labels, images) is an agent under the policy.
pub fn of(policy: &Policy, target: &Target<'_>) -> Option<Match> {
    let labels = selector::labels_of(target.meta.labels.as_ref());
    if policy
        .agent_selectors
        .iter()
        .any(|s| selector::matches(s, labels))
    {
        return Some(Match::Selected);
    }
    if policy.catch_all.enabled {
        let images = containers(target.spec, target.spec_path);
        let hit = images.iter().filter_map(|c| c.image).any(|img| {
            let repo = image_repository(img);
            policy
                .catch_all
                .images
                .iter()
                .any(|p| repo == p || repo.ends_with(&format!("/{p}")))
        });
        if hit {
            return Some(Match::CaughtByImage(policy.catch_all.action));
        }
    }
    None
}

/// Whether the review carries a pod or pod template the policy treats as an agent. For callers
/// that prepare cluster state before judging (the live view's confirm step).
pub fn is_agent(review: &Review, policy: &Policy) -> bool {
    let mut spec_path = String::new();
    target_of(review, &mut spec_path).is_some_and(|t| of(policy, &t).is_some())
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
    let ns = review.namespace.as_str();
    match &review.object {
        Subject::Pod(pod) => Some(Target::of_pod(pod, ns)),
        Subject::Template(t) => {
            *spec_path = format!("{}.spec", t.template_path);
            Some(Target::of_template(t, ns, spec_path.as_str()))
        }
        Subject::None | Subject::Other | Subject::Connect(_) => None,
    }
}

/// Whether the CONNECT's checks run for the pod it names: `Some(true)` for an agent pod,
/// `Some(false)` for a pod the view cannot vouch for (judged as an agent: refusing a shell by
/// mistake costs a retry, letting one into an agent by mistake costs what the checks exist
/// to prevent), `None` for no such pod or a pod no selector matches.
pub fn connect_pod(review: &Review, policy: &Policy, view: &impl ClusterView) -> Option<bool> {
    match view.pod_labels(&review.namespace, &review.name) {
        PodLookup::Missing => None,
        PodLookup::Found(labels) => policy
            .agent_selectors
            .iter()
            .any(|s| selector::matches(s, &labels))
            .then_some(true),
        PodLookup::Unknown => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
