//! The pod as the engine reads it: the parts of `Pod`, `PodSpec` and `Container` that a check
//! or a mutation looks at, under k8s-openapi's own field names and JSON names, with
//! k8s-openapi's types for everything below them (`EnvVar`, `Volume`, `SecurityContext`, ...).
//!
//! k8s-openapi's `PodSpec` and `Container` carry every field of the API (probes, resources,
//! affinity, tolerations, scheduling, ...), each built while reading and moved by value
//! (`Container` is over 2 KB); building them was most of the engine's time for a real pod.
//! These types hold only what is read: everything else in the object is stepped over unbuilt
//! (serde ignores unknown fields). A check that starts reading another field does not compile
//! until the field is added here, so nothing can be read as absent by mistake.
//!
//! Nothing downstream writes a whole spec or container back: a patch is built from the parts
//! a mutation wrote (env, volume mounts, volumes, annotations), so a field left out here is
//! never in it and the API server keeps the stored one. The mutation property test holds that
//! over generated pods with probes, resources and unknown fields.

use k8s_openapi::api::core::v1::{
    CSIVolumeSource, ContainerPort, EnvFromSource, EnvVar, HostPathVolumeSource,
    PodSecurityContext, ProjectedVolumeSource, ResourceRequirements, SecretVolumeSource,
    SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A Pod: metadata and spec (the status is not judged: the API server resets it on create
/// and keeps the stored one on update).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Pod {
    pub metadata: ObjectMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
}

/// A workload's pod template.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct PodTemplateSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
}

/// The fields of a pod spec that the checks and mutations read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_containers: Option<Vec<Container>>,
    #[serde(rename = "hostIPC", skip_serializing_if = "Option::is_none")]
    pub host_ipc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    #[serde(rename = "hostPID", skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_users: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    /// Pod-level requests and limits (`PodLevelResources`): a limit here bounds every
    /// container together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
}

/// The fields of a container that the checks and mutations read; one type for init, app and
/// ephemeral containers, which share them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Vec<EnvFromSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<ContainerPort>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// A volume: its name and the sources a check or mutation looks at. k8s-openapi's `Volume`
/// holds all thirty-odd sources by value (3,280 bytes), and a pod has several volumes.
///
/// A volume has exactly one source, so a volume a mutation changes is replaced whole in the
/// patch (`crate::engine::patch`), never edited field by field: a source this type leaves
/// out (an `emptyDir`, an `nfs`) can never end up beside the one the mutation wrote.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Volume {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csi: Option<CSIVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projected: Option<ProjectedVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
}

/// `null` reads as the empty value for the fields that are not optional, as k8s-openapi
/// reads them.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::{Value, json};

    /// A spec with every field the model holds and many it does not.
    fn full_spec() -> Value {
        let container = |name: &str| {
            json!({
                "name": name, "image": "openclaw", "command": ["node"], "args": ["a"],
                "env": [{"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "envFrom": [{"secretRef": {"name": "s"}}],
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "resources": {"limits": {"memory": "1Gi"}},
                "futureField": {"k": 1},
            })
        };
        let mut ephemeral = container("debug");
        ephemeral["targetContainerName"] = json!("agent");
        json!({
            "containers": [container("agent"), container("browser")],
            "initContainers": [container("setup")],
            "ephemeralContainers": [ephemeral],
            "serviceAccountName": "claw", "serviceAccount": "claw",
            "automountServiceAccountToken": false,
            "hostNetwork": true, "hostPID": true, "hostIPC": true, "hostUsers": false,
            "runtimeClassName": "gvisor",
            "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
            "securityContext": {"runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [
                {"name": "v", "hostPath": {"path": "/"}},
                {"name": "c", "csi": {"driver": "secrets-store.csi.k8s.io",
                    "volumeAttributes": {"secretProviderClass": "p"}}},
                {"name": "s", "secret": {"secretName": "s"}},
                {"name": "t", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3600, "path": "token"}}]}},
                {"name": "tmp", "emptyDir": {"medium": "Memory"}},
            ],
            "affinity": {"nodeAffinity": {}},
            "tolerations": [{"operator": "Exists"}],
        })
    }

    /// Every field the model holds reads as k8s-openapi reads it: the model's JSON is the
    /// full type's JSON without the fields the model leaves out.
    #[test]
    fn the_model_reads_its_fields_as_k8s_openapi_does() {
        let v = full_spec();
        let lean: PodSpec = serde_json::from_value(v.clone()).unwrap();
        let full: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(v).unwrap();
        let mut expected = serde_json::to_value(&full).unwrap();
        let spec = expected.as_object_mut().unwrap();
        spec.remove("affinity");
        spec.remove("tolerations");
        spec["volumes"][4]
            .as_object_mut()
            .unwrap()
            .remove("emptyDir");
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in spec[list].as_array_mut().unwrap() {
                let c = c.as_object_mut().unwrap();
                c.remove("livenessProbe");
                c.remove("targetContainerName");
            }
        }
        assert_eq!(serde_json::to_value(&lean).unwrap(), expected);
        assert_eq!(lean.host_pid, Some(true));
        assert_eq!(lean.host_ipc, Some(true));
        assert_eq!(lean.ephemeral_containers.unwrap()[0].name, "debug");
    }

    #[test]
    fn null_required_fields_read_as_empty_and_wrong_types_are_named() {
        let spec: PodSpec =
            serde_json::from_value(json!({"containers": null, "initContainers": [{"name": null}]}))
                .unwrap();
        assert!(spec.containers.is_empty());
        assert_eq!(spec.init_containers.unwrap()[0].name, "");
        let err = serde_json::from_value::<PodSpec>(json!({"containers": [{"name": 1}]}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a string"), "{err}");
        let err = serde_json::from_value::<PodSpec>(json!({"hostPID": "yes"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a boolean"), "{err}");
    }
}
