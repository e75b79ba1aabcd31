//! What a check is. Each file under `checks/` exports one [`Check`]: its id, its tier, what it
//! judges (a pod or pod template, or a CONNECT into an agent pod) with its function, what it
//! reads from the cluster view, and when the policy turns it on. The registry
//! (`checks/mod.rs`) lists them; everything else is derived from that list: the ids a policy
//! may name, the report order, what the live view confirms before a review is judged.

use crate::engine::agent::Match;
use crate::engine::policy::Policy;
use crate::engine::review::{ConnectOptions, Review, Target};
pub use crate::engine::view::Read;
use crate::engine::view::{ClusterView, Reads};
use crate::engine::violation::{Tier, Violation};

/// One check, described once.
pub struct Check {
    /// The stable id a policy, a report and an exemption name it by.
    pub id: &'static str,
    /// The risk tier of its violations; the policy maps tiers to actions.
    pub tier: Tier,
    /// What it judges, and the function that judges it.
    pub judge: Judge,
    /// Every door of the cluster view its function may use. The live view confirms these
    /// before judging; the checks' tests fail on a read not listed here.
    pub reads: &'static [Read],
    /// Whether the policy asks for it beyond `disabledChecks` (most checks: [`always`]).
    pub applies: fn(&Policy) -> bool,
}

/// What a check judges, with its function. A check of changes to the objects agents depend
/// on (NetworkPolicies, bindings) will be a fourth kind.
pub enum Judge {
    /// A Pod, or a workload's pod template (paths then start at `spec.template.spec`).
    Pod(fn(&PodInput<'_>) -> Vec<Violation>),
    /// A CONNECT into an agent Pod (`pods/exec`, `pods/attach`, `pods/portforward`): the
    /// request names the pod and carries its options, not the pod.
    Connect(fn(&ConnectInput<'_>) -> Vec<Violation>),
    /// An UPDATE of a Pod or pod template that was an agent before it: what the request
    /// changes of what made it one (its labels, its images under the catch-all).
    Update(fn(&UpdateInput<'_>) -> Vec<Violation>),
}

impl Check {
    /// Whether it runs under this policy.
    pub fn enabled(&self, policy: &Policy) -> bool {
        !policy.disabled_checks.iter().any(|d| d == self.id) && (self.applies)(policy)
    }

    pub fn reads(&self) -> Reads {
        Reads::of(self.reads)
    }

    pub fn judges_pods(&self) -> bool {
        matches!(self.judge, Judge::Pod(_))
    }

    pub fn judges_connects(&self) -> bool {
        matches!(self.judge, Judge::Connect(_))
    }

    pub fn judges_updates(&self) -> bool {
        matches!(self.judge, Judge::Update(_))
    }
}

/// [`Check::applies`] for checks that every policy runs unless it disables them.
pub fn always(_: &Policy) -> bool {
    true
}

/// What a pod check receives.
pub struct PodInput<'a> {
    pub target: Target<'a>,
    pub policy: &'a Policy,
    pub view: &'a dyn ClusterView,
}

/// What a CONNECT check receives. The engine has already found that the named pod is an
/// agent, or could not tell (`pod_known: false`: then it is judged as one).
pub struct ConnectInput<'a> {
    /// Who asks, for which pod (`namespace`, `name`) and which subresource.
    pub review: &'a Review,
    pub options: &'a ConnectOptions,
    pub policy: &'a Policy,
    pub pod_known: bool,
    pub view: &'a dyn ClusterView,
}

/// What an UPDATE check receives: the object before and after the request. The engine calls
/// it only when the old object was an agent.
pub struct UpdateInput<'a> {
    /// Who asks, for which object.
    pub review: &'a Review,
    pub old: Target<'a>,
    pub new: Target<'a>,
    /// How the old object was an agent.
    pub was: Match,
    /// How the new one is, if it still is.
    pub is: Option<Match>,
    pub policy: &'a Policy,
}
