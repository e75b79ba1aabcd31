//! Approvals that survive controllers.
//!
//! An approver grants an exemption on a workload by annotating its pod template
//! (`openclaw.io/exempt: check-a,check-b`). The approver's own request is judged with that
//! annotation, but the Pods are created later by controllers (`replicaset-controller`,
//! `job-controller`, ...), who are not approvers, and a plain annotation on a Pod proves
//! nothing: anyone who can create a Pod can write it.
//!
//! So when an approver creates or updates an agent workload that asks for an exemption, the
//! mutating webhook stamps a signed grant into the template ([`grant::APPROVAL_ANNOTATION`]): the
//! namespace, the workload's kind and name, the checks, the approver, when it was signed, when
//! it expires (the approver's date, capped by `approvals.maxLifetime`) and the [`digest`] of
//! the whole template the approver sent, with an HMAC-SHA256 over all of them under a key only
//! the webhook holds (a Secret mounted into its pod). Re-applying the same manifest keeps the
//! stamp (and starts no rollout) while it has more than half its life left.
//!
//! A stamp is honoured only for objects that a controller made from that workload:
//! - the requester is one of the policy's `controllerUsers` (a person creating a Pod with a
//!   copied stamp is not), and
//! - the object's controller owner is the signed workload, the way controllers name what
//!   they make: the Pods of a Deployment belong to a ReplicaSet `<name>-<pod-template-hash>`,
//!   a CronJob's runs are Jobs `<name>-<digits>` (whose Pods then carry their Job's owner);
//!   a ReplicaSet or Job that a controller makes from a stamped template is honoured the same
//!   way, so the chain Deployment → ReplicaSet → Pod holds at each step, and
//! - the template (a ReplicaSet's or Job's) still has the signed digest, apart from the
//!   labels the control plane writes with the values it writes ([`digest`]), and
//! - the namespace matches, the expiry has not passed, and only the signed checks are
//!   exempted.
//!
//! On the workload itself a stamp counts when an approver sends it, or on a non-approver's
//! UPDATE that keeps the same stamp and the signed content (a `kubectl rollout restart`, a
//! scale). Any other change by a non-approver voids it, however it is split into steps: the
//! digest is of what is there, not of what changed. A CREATE by a non-approver (a deleted
//! workload recreated with a saved stamp) is judged without it.
//!
//! Keys rotate: `serve --previous-approval-key-file` keeps the key before a rotation for
//! verifying (never for signing) until `--previous-approval-key-until`, and the audit
//! annotation says when a grant was honoured under it; dropping a key revokes every grant it
//! signed. Stamps of the first format (no digest, perhaps no expiry) are honoured only during
//! the upgrade's grace (`approvals.legacyGrace` / `legacyUntil`), marked as legacy.
//!
//! Nothing is written anywhere but the object under review: the webhook keeps
//! `sideEffects: None`. The engine reads no clock: the caller passes `now`.
//!
//! The parts: [`grant`] (the stamp and its HMAC), [`matching`] (whether a stamp holds for the
//! object under review and its requester) and [`stamp`] (the mutation that writes one).

pub mod digest;
pub mod grant;
pub mod matching;
pub mod stamp;
