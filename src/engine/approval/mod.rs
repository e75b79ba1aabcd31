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
//! namespace, the workload's kind and name, the checks, the approver and an optional expiry,
//! with an HMAC-SHA256 over all of them under a key only the webhook holds (a Secret mounted
//! into its pod). The stamp is deterministic, so re-applying the same manifest changes
//! nothing and starts no rollout.
//!
//! A stamp is honoured only for objects that a controller made from that workload:
//! - the requester is one of the policy's `controllerUsers` (a person creating a Pod with a
//!   copied stamp is not), and
//! - the object's controller owner is the signed workload, the way controllers name what
//!   they make: the Pods of a Deployment belong to a ReplicaSet `<name>-<pod-template-hash>`,
//!   a CronJob's runs are Jobs `<name>-<digits>` (whose Pods then carry their Job's owner);
//!   a ReplicaSet or Job that a controller makes from a stamped template is honoured the same
//!   way, so the chain Deployment → ReplicaSet → Pod holds at each step, and
//! - the namespace matches, the expiry (if any) has not passed, and only the signed checks
//!   are exempted.
//!
//! On the workload itself a stamp counts when an approver sends it, or on an UPDATE that
//! leaves the template's spec as it was (a `kubectl rollout restart`, a label change). A
//! non-approver who changes the spec of an approved workload is judged without it, so what
//! an approver signed off on cannot be swapped for something else.
//!
//! Nothing is written anywhere but the object under review: the webhook keeps
//! `sideEffects: None`. The engine reads no clock: the caller passes `now`.
//!
//! The parts: [`grant`] (the stamp and its HMAC), [`matching`] (whether a stamp holds for the
//! object under review and its requester) and [`stamp`] (the mutation that writes one).

pub mod grant;
pub mod matching;
pub mod stamp;
