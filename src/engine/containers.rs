//! The three container lists of a pod (`initContainers`, `containers`,
//! `ephemeralContainers`) read alike, each container with its exact path: what the checks
//! walk, and what agent selection reads images from.

use super::pod::{Container, Lifecycle, PodSpec, Probe};
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

/// One container of any of the three lists, with its exact path. Two words and a path:
/// each of the dozen checks that walk the containers of every review steps through them,
/// so the fields are read where a check asks for them, not copied out for every step.
#[derive(Clone, Copy)]
pub struct ContainerRef<'a> {
    /// `spec.initContainers[1]`
    pub path: ContainerPath<'a>,
    c: &'a Container,
}

impl<'a> ContainerRef<'a> {
    pub fn name(&self) -> &'a str {
        &self.c.name
    }

    pub fn image(&self) -> Option<&'a str> {
        self.c.image.as_deref()
    }

    pub fn security_context(&self) -> Option<&'a SecurityContext> {
        self.c.security_context.as_ref()
    }

    pub fn env(&self) -> &'a [EnvVar] {
        self.c.env.as_deref().unwrap_or(&[])
    }

    pub fn env_from(&self) -> &'a [EnvFromSource] {
        self.c.env_from.as_deref().unwrap_or(&[])
    }

    pub fn volume_mounts(&self) -> &'a [VolumeMount] {
        self.c.volume_mounts.as_deref().unwrap_or(&[])
    }

    pub fn ports(&self) -> &'a [ContainerPort] {
        self.c.ports.as_deref().unwrap_or(&[])
    }

    pub fn command(&self) -> &'a [String] {
        self.c.command.as_deref().unwrap_or(&[])
    }

    pub fn args(&self) -> &'a [String] {
        self.c.args.as_deref().unwrap_or(&[])
    }

    /// `livenessProbe`, `readinessProbe`, `startupProbe`, each with its JSON name.
    pub fn probes(&self) -> [(&'static str, Option<&'a Probe>); 3] {
        [
            ("livenessProbe", self.c.liveness_probe.as_deref()),
            ("readinessProbe", self.c.readiness_probe.as_deref()),
            ("startupProbe", self.c.startup_probe.as_deref()),
        ]
    }

    pub fn lifecycle(&self) -> Option<&'a Lifecycle> {
        self.c.lifecycle.as_deref()
    }
}

/// Init, regular and ephemeral containers, in that order: all three lists count. An
/// iterator, so that the dozen checks that walk the containers of every review build no list.
pub fn containers<'a>(
    spec: &'a PodSpec,
    spec_path: &'a str,
) -> impl Iterator<Item = ContainerRef<'a>> + Clone + 'a {
    let list = |list: &'static str, items: &'a [super::pod::Container]| {
        items
            .iter()
            .enumerate()
            .map(move |(index, c)| ContainerRef {
                path: ContainerPath {
                    spec_path,
                    list,
                    index,
                },
                c,
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
