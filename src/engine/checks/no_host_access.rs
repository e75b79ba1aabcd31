//! `no-host-access` (high): the agent shares nothing with its node: no host network, PID or
//! IPC namespace, no hostPath volume, no port bound on the node, no Windows HostProcess
//! container (which runs on the node itself). Pod Security `baseline`: `hostNamespaces`,
//! `hostPathVolumes`, `hostPorts`, `windowsHostProcess`.

use super::check::{Check, Judge, PodInput, always};
use crate::engine::containers::containers;
use crate::engine::violation::{Tier, Violation};
use k8s_openapi::api::core::v1::WindowsSecurityContextOptions;

const ID: &str = "no-host-access";
const TIER: Tier = Tier::High;
const PSA_NAMESPACES: &str = "(Pod Security baseline: hostNamespaces)";
const PSA_HOST_PATH: &str = "(Pod Security baseline: hostPathVolumes)";
const PSA_PORTS: &str = "(Pod Security baseline: hostPorts)";
const PSA_HOST_PROCESS: &str = "(Pod Security baseline: windowsHostProcess)";

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[],
    applies: always,
};

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let s = t.spec;
    let mut out = Vec::new();
    for (field, on, what) in [
        (
            "hostNetwork",
            s.host_network,
            "the node's network namespace",
        ),
        ("hostPID", s.host_pid, "the node's process namespace"),
        ("hostIPC", s.host_ipc, "the node's IPC namespace"),
    ] {
        if on == Some(true) {
            out.push(Violation::new(
                ID,
                TIER,
                t.path(field),
                format!("the pod shares {what} ({field}: true) {PSA_NAMESPACES}"),
                format!("remove {field} (or set it to false)"),
            ));
        }
    }
    for (i, v) in s.volumes.iter().flatten().enumerate() {
        if let Some(hp) = &v.host_path {
            out.push(Violation::new(
                ID,
                TIER,
                t.path(&format!("volumes[{i}].hostPath")),
                format!(
                    "volume {} mounts the node's path {} {PSA_HOST_PATH}",
                    v.name, hp.path
                ),
                "use an emptyDir, a ConfigMap, a Secret or a PersistentVolumeClaim instead of hostPath",
            ));
        }
    }
    let host_process =
        |w: Option<&WindowsSecurityContextOptions>| w.and_then(|w| w.host_process) == Some(true);
    let pod_sc = s.security_context.as_ref();
    if host_process(pod_sc.and_then(|sc| sc.windows_options.as_ref())) {
        out.push(Violation::new(
            ID,
            TIER,
            t.path("securityContext.windowsOptions.hostProcess"),
            format!("the pod runs as Windows HostProcess containers, on the node itself {PSA_HOST_PROCESS}"),
            "remove windowsOptions.hostProcess (or set it to false)",
        ));
    }
    for c in containers(s, t.spec_path) {
        let sc = c.security_context();
        if host_process(sc.and_then(|sc| sc.windows_options.as_ref())) {
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.securityContext.windowsOptions.hostProcess", c.path),
                format!(
                    "container {} is a Windows HostProcess container, run on the node itself {PSA_HOST_PROCESS}",
                    c.name()
                ),
                "remove windowsOptions.hostProcess (or set it to false)",
            ));
        }
        for (j, p) in c.ports().iter().enumerate() {
            if let Some(hp) = p.host_port.filter(|hp| *hp != 0) {
                out.push(Violation::new(
                    ID,
                    TIER,
                    format!("{}.ports[{j}].hostPort", c.path),
                    format!(
                        "container {} binds port {hp} on the node {PSA_PORTS}",
                        c.name()
                    ),
                    "remove hostPort and expose the port through a Service",
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;

    #[test]
    fn passes_hardened_pod_with_plain_container_port() {
        let p = hardened()
            .with_container("agent")
            .port(8080, None)
            .port(8081, Some(0))
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn rejects_host_namespaces() {
        let p = hardened().host_network().host_pid().host_ipc().build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.hostNetwork", "spec.hostPID", "spec.hostIPC"]
        );
        assert_eq!(v[0].tier, Tier::High);
    }

    #[test]
    fn rejects_host_path_volume() {
        let p = hardened()
            .host_path_volume("docker", "/var/run/docker.sock")
            .build();
        let v = run_default(&CHECK, &p);
        // hardened() declares two volumes before this one.
        assert_eq!(paths(&v), ["spec.volumes[2].hostPath"]);
        assert!(v[0].message.contains("/var/run/docker.sock"));
    }

    #[test]
    fn rejects_host_port_on_init_and_ephemeral_containers() {
        let p = hardened()
            .init_container("setup")
            .port(80, Some(80))
            .ephemeral_container("debug")
            .port(9000, Some(9000))
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.initContainers[0].ports[0].hostPort",
                "spec.ephemeralContainers[0].ports[0].hostPort"
            ]
        );
    }

    #[test]
    fn deployment_template_paths_start_at_the_template_spec() {
        let p = hardened().host_network().build();
        let v = run_on_deployment(&CHECK, &p, &Default::default(), &hardened_view());
        assert_eq!(paths(&v), ["spec.template.spec.hostNetwork"]);
    }

    #[test]
    fn rejects_windows_host_process_at_pod_and_container_level() {
        let host_process = || {
            Some(WindowsSecurityContextOptions {
                host_process: Some(true),
                ..Default::default()
            })
        };
        let p = hardened()
            .spec(|s| s.security_context.as_mut().unwrap().windows_options = host_process())
            .with_container("agent")
            .edit(|c| c.security_context.as_mut().unwrap().windows_options = host_process())
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            [
                "spec.securityContext.windowsOptions.hostProcess",
                "spec.containers[0].securityContext.windowsOptions.hostProcess"
            ]
        );
        assert!(v.iter().all(|v| v.message.ends_with(PSA_HOST_PROCESS)));
    }
}
