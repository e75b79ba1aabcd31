//! The three container lists of a pod (`initContainers`, `containers`,
//! `ephemeralContainers`) read alike, each container with its exact path: what the checks
//! walk, and what agent selection reads images from.

use super::pod::{Lifecycle, PodSpec, Probe};
use k8s_openapi::api::core::v1::{
    ContainerPort, EnvFromSource, EnvVar, SecurityContext, VolumeMount,
};

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
    /// `livenessProbe`, `readinessProbe`, `startupProbe`, each with its JSON name.
    pub probes: [(&'static str, Option<&'a Probe>); 3],
    pub lifecycle: Option<&'a Lifecycle>,
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
            probes: [
                ("livenessProbe", $c.liveness_probe.as_deref()),
                ("readinessProbe", $c.readiness_probe.as_deref()),
                ("startupProbe", $c.startup_probe.as_deref()),
            ],
            lifecycle: $c.lifecycle.as_deref(),
        }
    };
}

/// Init, regular and ephemeral containers, in that order: all three lists count. An
/// iterator, so that the dozen checks that walk the containers of every review build no list.
pub fn containers<'a>(
    spec: &'a PodSpec,
    spec_path: &'a str,
) -> impl Iterator<Item = ContainerRef<'a>> + Clone + 'a {
    let list = |list: &'static str, items: &'a [super::pod::Container]| {
        items.iter().enumerate().map(move |(index, c)| {
            container_ref!(
                c,
                ContainerPath {
                    spec_path,
                    list,
                    index
                }
            )
        })
    };
    list(
        "initContainers",
        spec.init_containers.as_deref().unwrap_or(&[]),
    )
    .chain(list("containers", &spec.containers))
    .chain(list(
        "ephemeralContainers",
        spec.ephemeral_containers.as_deref().unwrap_or(&[]),
    ))
}
