//! The pure decision engine: `evaluate(review, policy, view) -> Decision` for validation and
//! `mutate(review, policy, view) -> Decision` for mutation. No I/O, no async, no HTTP: the
//! webhook, the offline `check` command and the tests all call this same code.
//!
//! This file only runs things: it picks the checks or mutations a review calls for from their
//! registries and hands what they find to the modules that turn it into an answer
//! (`exemptions`, `action`, `decision`). Which requests concern an agent is `agent`'s call;
//! approvals are `approval`'s.

pub mod action;
pub mod agent;
pub mod approval;
pub mod checks;
pub mod containers;
pub mod date;
pub mod decision;
pub mod dependents;
pub mod egress;
pub mod exemptions;
pub mod expansion;
pub mod load;
pub mod mutations;
pub mod openshift;
pub mod patch;
pub mod pod;
pub mod policy;
pub mod review;
pub mod sandbox;
pub mod selector;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_controllers;
#[cfg(test)]
mod tests_sandbox;
#[cfg(test)]
mod tests_sandbox_pods;
pub mod view;
pub mod violation;

pub use decision::{
    AUDIT_APPROVAL, AUDIT_EXEC, AUDIT_EXEMPTED, AUDIT_EXEMPTION_EXPIRED, AUDIT_EXEMPTION_REFUSED,
    AUDIT_MODE, AUDIT_MUTATION, AUDIT_VIOLATIONS, Decision, EngineError, Judged, Skip,
};

use checks::check::{Check, ConnectInput, Judge, PodInput, UpdateInput};
use pod::Pod;
use policy::{Mode, Policy};
use review::{Operation, Review, Subject};
use view::{ClusterView, Read, Reads};

/// What judging this review reads from the view: the engine's own reads (the namespace's
/// labels for its mode; for a CONNECT, the pod it names) and the declared reads of every check
/// that will run. The live view confirms these before judging.
pub fn reads(review: &Review, policy: &Policy) -> Reads {
    let own = Reads::NONE.with(Read::NamespaceLabels);
    match &review.object {
        // The named pod is looked up only when some CONNECT check will run.
        Subject::Connect(_)
            if checks::enabled(policy, Check::judges_connects)
                .next()
                .is_some() =>
        {
            own.with(Read::Pods)
                .union(checks::reads(policy, Check::judges_connects))
        }
        Subject::Connect(_) => Reads::NONE,
        Subject::Pod(_) | Subject::Template(_) => {
            let own = own
                .union(checks::reads(policy, Check::judges_pods))
                .union(checks::reads(policy, Check::judges_updates));
            // `kubectl debug` is also judged by the CONNECT checks.
            if review.is_debug() {
                own.union(checks::reads(policy, Check::judges_connects))
            } else {
                own
            }
        }
        // A claim or warm pool: the namespace's mode, and the references the view holds.
        Subject::SandboxRef(_) => own,
        Subject::None | Subject::Other | Subject::Dependency(_) => Reads::NONE,
    }
}

/// Validation: judge the pod (or pod template) under review.
pub fn evaluate(review: &Review, policy: &Policy, view: &impl ClusterView) -> Decision {
    if review.operation == Operation::Connect {
        return match &review.object {
            Subject::Connect(options) => judge_connect(review, options, policy, view),
            _ => Decision::allow(Skip::Operation),
        };
    }
    if let Some(decision) = dependents::judge(review, policy, view) {
        return decision;
    }
    if review.operation == Operation::Delete {
        return Decision::allow(Skip::Operation);
    }
    if let Subject::SandboxRef(r) = &review.object {
        return sandbox::judge_ref(review, r, policy, view);
    }
    if policy.assume_openshift {
        let mut filled = review.clone();
        openshift::fill(&mut filled, &policy.openshift_sccs);
        return judge(&filled, policy, view);
    }
    judge(review, policy, view)
}

fn judge(review: &Review, policy: &Policy, view: &impl ClusterView) -> Decision {
    let mut spec_path = String::new();
    let Some(target) = agent::target_of(review, &mut spec_path) else {
        return Decision::allow(Skip::NotJudged);
    };
    let now = agent::of_subject(policy, &review.object, &target);
    // What the object was before an UPDATE: an agent stays judged while a request takes off
    // what made it one (its labels, its image under the catch-all).
    let mut old_spec_path = String::new();
    let old = if review.operation == Operation::Update {
        agent::old_target_of(review, &mut old_spec_path)
    } else {
        None
    };
    let was = old
        .as_ref()
        .and_then(|t| agent::of_subject(policy, &review.old_object, t));
    let Some(agent) = now.or(was) else {
        return Decision::allow(Skip::NotAnAgent);
    };

    // Checks of the request itself, which no exemption lifts: taking an agent's identity off
    // it, and `kubectl debug` into it (an exec by another name).
    let mut access = Vec::new();
    if let (Some(old), Some(was)) = (old, was)
        && review.sub_resource.is_none()
    {
        access.extend(checks::run_update_checks(&UpdateInput {
            review,
            old,
            new: target,
            was,
            is: now,
            policy,
        }));
    }
    // `kubectl debug` adds ephemeral containers to a running Pod: judge what it adds, not
    // what the Pod already had when it was admitted (perhaps in audit mode, or exempted).
    let debug = review.is_debug();
    let added = if debug {
        review.added_ephemeral_containers()
    } else {
        Vec::new()
    };
    if debug && now.is_some() && !added.is_empty() {
        access.extend(debug_as_connect(review, &target, &added, policy, view));
    }

    // Checks of the pod's content: skipped when the pod is no longer an agent (only the
    // change is judged), when a metadata-only UPDATE leaves an agent's spec as admitted (a
    // label-only UPDATE that makes a pod an agent judges all of it), and when a debug UPDATE
    // adds nothing.
    let content = if now.is_none()
        || (was.is_some() && review.leaves_spec_unchanged())
        || (debug && added.is_empty())
    {
        None
    } else {
        // A managed SandboxTemplate's Pods are also under the NetworkPolicy its controller
        // writes: the egress check sees that policy beside the namespace's own.
        let managed = match &review.object {
            Subject::Template(t) => sandbox::managed_policy(t, &review.namespace).map(|p| (t, p)),
            _ => None,
        };
        let overlay;
        let checks_view: &dyn ClusterView = match &managed {
            Some((_, p)) => {
                overlay = sandbox::ManagedView {
                    inner: view,
                    policy: p.clone(),
                };
                &overlay
            }
            None => view,
        };
        let input = PodInput {
            target,
            policy,
            view: checks_view,
        };
        let mut found = checks::run_pod_checks(&input);
        if let Some((t, _)) = managed {
            sandbox::retarget_egress(t, policy, &mut found);
        }
        if debug {
            let prefixes: Vec<String> = added
                .iter()
                .map(|i| format!("{}.ephemeralContainers[{i}]", target.spec_path))
                .collect();
            found.retain(|v| {
                prefixes.iter().any(|p| {
                    v.path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                })
            });
        }
        Some(found)
    };
    let Some(found) = content.or_else(|| (!access.is_empty()).then(Vec::new)) else {
        return Decision::allow(if now.is_some() {
            Skip::Unchanged
        } else {
            Skip::NotAnAgent
        });
    };

    let mode = mode_of(review, policy, view);
    let granted = approval::matching::grant_for(review, policy, &target, view);
    let exemptions::Applied {
        kept,
        exempted,
        refused: exemptions_refused,
        expired,
    } = exemptions::apply(
        review,
        policy,
        &target,
        granted.as_ref().map(|v| &v.grant),
        found,
    );
    // A catch-all agent's content violations take the catch-all's action; the rules of who
    // may reach into or relabel an agent are the tiers', however it was found.
    let violations = kept
        .into_iter()
        .map(|v| retiered(policy, v))
        .map(|v| Judged {
            action: action::for_violation(policy, mode, v.tier, agent.action()),
            in_enforce: action::for_violation(policy, Mode::Enforce, v.tier, agent.action()),
            violation: v,
        })
        .chain(
            access
                .into_iter()
                .map(|v| retiered(policy, v))
                .map(|v| Judged {
                    action: action::for_violation(policy, mode, v.tier, None),
                    in_enforce: action::for_violation(policy, Mode::Enforce, v.tier, None),
                    violation: v,
                }),
        )
        .collect();
    decision::judged(
        review,
        mode,
        violations,
        exempted,
        exemptions_refused,
        granted,
    )
    .with_expired(expired)
}

/// `kubectl debug` into an agent, judged by the CONNECT checks as the exec it amounts to: the
/// added containers' commands and arguments stand for the exec's command.
fn debug_as_connect(
    review: &Review,
    target: &review::Target<'_>,
    added: &[usize],
    policy: &Policy,
    view: &impl ClusterView,
) -> Vec<violation::Violation> {
    let ephemeral = target.spec.ephemeral_containers.as_deref().unwrap_or(&[]);
    let mut options = review::ConnectOptions {
        kind: "EphemeralContainers".into(),
        ..Default::default()
    };
    for c in added.iter().filter_map(|&i| ephemeral.get(i)) {
        options.command.extend(
            c.command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .cloned(),
        );
    }
    let input = ConnectInput {
        review,
        options: &options,
        policy,
        pod_known: true,
        view,
    };
    checks::enabled(policy, Check::judges_connects)
        .filter_map(|c| match c.judge {
            Judge::Connect(run) => Some(run(&input)),
            Judge::Pod(_) | Judge::Update(_) => None,
        })
        .flatten()
        .collect()
}

/// A violation at the tier the policy's `checkTiers` gives its check, if it names one.
fn retiered(policy: &Policy, mut v: violation::Violation) -> violation::Violation {
    v.tier = policy.tier_of(v.check, v.tier);
    v
}

fn mode_of(review: &Review, policy: &Policy, view: &impl ClusterView) -> Mode {
    policy.mode_for(view.namespace_labels(&review.namespace).as_ref())
}

/// A CONNECT (`kubectl exec`, `attach`, `port-forward`) into an agent Pod: the request carries
/// only its options, so the pod it names comes from the view (a live lookup by the caller).
fn judge_connect(
    review: &Review,
    options: &review::ConnectOptions,
    policy: &Policy,
    view: &impl ClusterView,
) -> Decision {
    let connect: Vec<&Check> = checks::enabled(policy, Check::judges_connects).collect();
    if connect.is_empty() {
        return Decision::allow(Skip::NotJudged);
    }
    let Some(pod_known) = agent::connect_reaches(review, policy, view) else {
        return Decision::allow(Skip::NotAnAgent);
    };
    let mode = mode_of(review, policy, view);
    let input = ConnectInput {
        review,
        options,
        policy,
        pod_known,
        view,
    };
    let violations = connect
        .iter()
        .filter_map(|c| match c.judge {
            Judge::Connect(run) => Some(run(&input)),
            Judge::Pod(_) | Judge::Update(_) => None,
        })
        .flatten()
        .map(|v| retiered(policy, v))
        .map(|v| Judged {
            action: action::for_violation(policy, mode, v.tier, None),
            in_enforce: action::for_violation(policy, Mode::Enforce, v.tier, None),
            violation: v,
        })
        .collect();
    decision::connect(review, options, policy, mode, violations)
}

/// Mutation: patch an agent Pod on CREATE (in audit mode the patch is reported in the audit
/// annotations and not applied), and stamp an approver's exemption into an agent workload's
/// pod template on CREATE or UPDATE (`approval::stamp`).
pub fn mutate(
    review: &Review,
    policy: &Policy,
    view: &impl ClusterView,
) -> Result<Decision, EngineError> {
    match &review.object {
        Subject::Pod(pod) => mutate_pod(review, pod, policy, view),
        Subject::Template(t) => Ok(stamp_template(review, t, policy, view)),
        Subject::None
        | Subject::Other
        | Subject::SandboxRef(_)
        | Subject::Connect(_)
        | Subject::Dependency(_) => Ok(Decision::allow(Skip::NotJudged)),
    }
}

/// Stamps an approver's exemption into an agent workload's template (`approval::stamp`).
fn stamp_template(
    review: &Review,
    t: &review::Template,
    policy: &Policy,
    view: &impl ClusterView,
) -> Decision {
    if !matches!(review.operation, Operation::Create | Operation::Update)
        || review.sub_resource.is_some()
    {
        return Decision::allow(Skip::Operation);
    }
    let spec_path = format!("{}.spec", t.template_path);
    let target = review::Target::of_template(t, &review.namespace, &spec_path);
    if agent::of_subject(policy, &review.object, &target).is_none() {
        return Decision::allow(Skip::NotAnAgent);
    }
    let mode = mode_of(review, policy, view);
    decision::stamped(mode, approval::stamp::stamp(review, t, &target, policy))
}

fn mutate_pod(
    review: &Review,
    pod: &Pod,
    policy: &Policy,
    view: &impl ClusterView,
) -> Result<Decision, EngineError> {
    if review.operation != Operation::Create || review.sub_resource.is_some() {
        return Ok(Decision::allow(Skip::Operation));
    }
    let target = review::Target::of_pod(pod, &review.namespace);
    if agent::of(policy, &target).is_none() {
        return Ok(Decision::allow(Skip::NotAnAgent));
    }
    let mode = mode_of(review, policy, view);
    let mut draft = mutations::PodDraft::new(pod);
    let input = mutations::MutationInput {
        policy,
        namespace: &review.namespace,
        service_account_automount: view.service_account_automount(
            &review.namespace,
            target.service_account().unwrap_or("default"),
        ),
        view,
    };
    let applied = mutations::apply_all(&mut draft, &input);
    let patch = if applied.is_empty() {
        None
    } else {
        Some(patch::Patch(draft.patch()?)).filter(|p| !p.0.is_empty())
    };
    Ok(decision::mutated(mode, applied, patch))
}
