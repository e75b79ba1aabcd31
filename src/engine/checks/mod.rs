//! One check per file, each a pure function of the pod under review, the policy and the
//! cluster view, registered in [`CHECKS`]. A newcomer finds a rule by its id and reads it in
//! one screen (the pod-security-admission model).

use super::pod::PodSpec;
use super::policy::Policy;
use super::review::Target;
use super::view::ClusterView;
use super::violation::{Tier, Violation};
use k8s_openapi::api::core::v1::{
    ContainerPort, EnvFromSource, EnvVar, SecurityContext, VolumeMount,
};

pub(crate) mod cidr;
mod cilium_egress;
pub(crate) use cilium_egress::check_fqdn_pattern;
mod dedicated_service_account;
mod default_deny_egress;
mod drop_all_capabilities;
mod in_cluster_inference;
mod least_privilege_rbac;
mod no_host_access;
mod no_plaintext_credentials;
mod no_privilege_escalation;
mod read_only_root_filesystem;
mod run_as_non_root;
mod seccomp_profile;
pub(crate) mod secret_provider_class;
mod short_lived_token;

#[cfg(test)]
pub(crate) mod fixtures;

/// What every check receives.
pub struct CheckInput<'a> {
    pub target: Target<'a>,
    pub policy: &'a Policy,
    pub view: &'a dyn ClusterView,
}

/// A registered check.
pub struct Check {
    pub id: &'static str,
    pub tier: Tier,
    pub run: fn(&CheckInput<'_>) -> Vec<Violation>,
}

/// Every pod check, in report order. `exec-requires-approval` is not a pod check of this
/// table; `in-cluster-inference` runs only when the policy names inference endpoints.
pub static CHECKS: &[Check] = &[
    Check {
        id: run_as_non_root::ID,
        tier: Tier::High,
        run: run_as_non_root::check,
    },
    Check {
        id: read_only_root_filesystem::ID,
        tier: Tier::Medium,
        run: read_only_root_filesystem::check,
    },
    Check {
        id: drop_all_capabilities::ID,
        tier: Tier::High,
        run: drop_all_capabilities::check,
    },
    Check {
        id: no_privilege_escalation::ID,
        tier: Tier::High,
        run: no_privilege_escalation::check,
    },
    Check {
        id: seccomp_profile::ID,
        tier: Tier::Medium,
        run: seccomp_profile::check,
    },
    Check {
        id: no_host_access::ID,
        tier: Tier::High,
        run: no_host_access::check,
    },
    Check {
        id: dedicated_service_account::ID,
        tier: Tier::Medium,
        run: dedicated_service_account::check,
    },
    Check {
        id: least_privilege_rbac::ID,
        tier: Tier::High,
        run: least_privilege_rbac::check,
    },
    Check {
        id: default_deny_egress::ID,
        tier: Tier::High,
        run: default_deny_egress::check,
    },
    Check {
        id: no_plaintext_credentials::ID,
        tier: Tier::High,
        run: no_plaintext_credentials::check,
    },
    Check {
        id: short_lived_token::ID,
        tier: Tier::Medium,
        run: short_lived_token::check,
    },
    Check {
        id: in_cluster_inference::ID,
        tier: Tier::Medium,
        run: in_cluster_inference::check,
    },
    Check {
        id: secret_provider_class::ID,
        tier: Tier::Low,
        run: secret_provider_class::check,
    },
];

/// The tier of a check id.
pub fn tier_of(id: &str) -> Option<Tier> {
    CHECKS.iter().find(|c| c.id == id).map(|c| c.tier)
}

/// Runs every check the policy enables.
pub fn run_all(input: &CheckInput<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    for c in CHECKS {
        if input.policy.check_enabled(c.id) {
            out.extend((c.run)(input));
        }
    }
    out
}

/// Where a container sits: `spec.initContainers[1]`. Written out only when a message needs
/// it, so that judging a clean pod formats no paths.
#[derive(Debug, Clone, Copy)]
pub struct ContainerPath<'a> {
    pub spec_path: &'a str,
    /// `initContainers`, `containers` or `ephemeralContainers`.
    pub list: &'static str,
    pub index: usize,
}

impl std::fmt::Display for ContainerPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}[{}]", self.spec_path, self.list, self.index)
    }
}

/// One container of any of the three lists, with its exact path.
pub struct ContainerRef<'a> {
    /// `spec.initContainers[1]`
    pub path: ContainerPath<'a>,
    pub name: &'a str,
    pub image: Option<&'a str>,
    pub security_context: Option<&'a SecurityContext>,
    pub env: &'a [EnvVar],
    pub env_from: &'a [EnvFromSource],
    pub volume_mounts: &'a [VolumeMount],
    pub ports: &'a [ContainerPort],
    pub command: &'a [String],
    pub args: &'a [String],
}

/// A `ContainerRef` from any of the container types: `Container` and `EphemeralContainer`
/// share these fields but not a type.
macro_rules! container_ref {
    ($c:expr, $path:expr) => {
        ContainerRef {
            path: $path,
            name: &$c.name,
            image: $c.image.as_deref(),
            security_context: $c.security_context.as_ref(),
            env: $c.env.as_deref().unwrap_or(&[]),
            env_from: $c.env_from.as_deref().unwrap_or(&[]),
            volume_mounts: $c.volume_mounts.as_deref().unwrap_or(&[]),
            ports: $c.ports.as_deref().unwrap_or(&[]),
            command: $c.command.as_deref().unwrap_or(&[]),
            args: $c.args.as_deref().unwrap_or(&[]),
        }
    };
}

/// Init, regular and ephemeral containers, in that order: all three lists count.
pub fn containers<'a>(spec: &'a PodSpec, spec_path: &'a str) -> Vec<ContainerRef<'a>> {
    let inits = spec.init_containers.as_deref().unwrap_or(&[]);
    let ephemeral = spec.ephemeral_containers.as_deref().unwrap_or(&[]);
    let mut out = Vec::with_capacity(inits.len() + spec.containers.len() + ephemeral.len());
    for (i, c) in inits.iter().enumerate() {
        out.push(container_ref!(
            c,
            ContainerPath {
                spec_path,
                list: "initContainers",
                index: i
            }
        ));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        out.push(container_ref!(
            c,
            ContainerPath {
                spec_path,
                list: "containers",
                index: i
            }
        ));
    }
    for (i, c) in ephemeral.iter().enumerate() {
        out.push(container_ref!(
            c,
            ContainerPath {
                spec_path,
                list: "ephemeralContainers",
                index: i
            }
        ));
    }
    out
}
