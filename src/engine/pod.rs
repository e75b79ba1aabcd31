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
    AWSElasticBlockStoreVolumeSource, AzureDiskVolumeSource, AzureFileVolumeSource,
    CSIVolumeSource, CephFSVolumeSource, CinderVolumeSource, ConfigMapVolumeSource, ContainerPort,
    DownwardAPIVolumeSource, EmptyDirVolumeSource, EnvFromSource, EnvVar, EphemeralVolumeSource,
    ExecAction, FCVolumeSource, FlexVolumeSource, FlockerVolumeSource,
    GCEPersistentDiskVolumeSource, GitRepoVolumeSource, GlusterfsVolumeSource, HTTPHeader,
    HostPathVolumeSource, ISCSIVolumeSource, ImageVolumeSource, NFSVolumeSource,
    PersistentVolumeClaimVolumeSource, PhotonPersistentDiskVolumeSource, PodOS, PodSecurityContext,
    PortworxVolumeSource, ProjectedVolumeSource, QuobyteVolumeSource, RBDVolumeSource,
    ScaleIOVolumeSource, SecretVolumeSource, SecurityContext, StorageOSVolumeSource, VolumeMount,
    VsphereVirtualDiskVolumeSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
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
    /// `windows` or `linux`: a Windows pod cannot set the Linux-only fields (the API server
    /// refuses them), so the checks that ask for them skip it, as Pod Security does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<PodOS>,
    /// Which pod-level limits are set (`PodLevelResources`): a limit here bounds every
    /// container together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Limits>,
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
    /// Probes and lifecycle hooks, as far as the checks read them (below); boxed, so that a
    /// container without them stays small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Box<Lifecycle>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Box<Probe>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<ContainerPort>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Box<Probe>>,
    /// Which limits the container sets (`resources.limits`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Box<Probe>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// The CPU and memory limits of a `resources` block, which `resource-limits` asks for; the
/// other limits, the requests and the claims are stepped over unbuilt (k8s-openapi's
/// `ResourceRequirements` built two maps of owned strings per container, the largest part of
/// what reading the isolated agent's pod added). Written back as `{"limits": {...}}` with the
/// two it holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
}

impl Limits {
    /// Limits of the given quantities.
    pub fn of(cpu: Option<&str>, memory: Option<&str>) -> Limits {
        let q = |v: Option<&str>| v.map(|v| Quantity(v.to_string()));
        Limits {
            cpu: q(cpu),
            memory: q(memory),
        }
    }

    /// Whether the limit named `resource` (`cpu` or `memory`) is set.
    pub fn has(&self, resource: &str) -> bool {
        match resource {
            "cpu" => self.cpu.is_some(),
            "memory" => self.memory.is_some(),
            _ => false,
        }
    }
}

impl Serialize for Limits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        /// The `limits` map: the two quantities that are set.
        struct Set<'a>(&'a Limits);
        impl Serialize for Set<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let l = self.0;
                let mut m = s.serialize_map(None)?;
                if let Some(q) = &l.cpu {
                    m.serialize_entry("cpu", q)?;
                }
                if let Some(q) = &l.memory {
                    m.serialize_entry("memory", q)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        if self.cpu.is_some() || self.memory.is_some() {
            m.serialize_entry("limits", &Set(self))?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Limits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};
        use std::fmt;

        /// A key of `resources` or of its `limits`, told apart without copying it (serde's
        /// `Cow<str>` would own every key).
        enum Key {
            Limits,
            Cpu,
            Memory,
            Other,
        }
        impl<'de> Deserialize<'de> for Key {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Name;
                impl Visitor<'_> for Name {
                    type Value = Key;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a field name")
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                        Ok(match v {
                            "limits" => Key::Limits,
                            "cpu" => Key::Cpu,
                            "memory" => Key::Memory,
                            _ => Key::Other,
                        })
                    }
                }
                d.deserialize_str(Name)
            }
        }
        /// `resources.limits`: CPU and memory read, the other resources stepped over.
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Limits;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of resource names to quantities")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Limits, A::Error> {
                let mut l = Limits::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Cpu => l.cpu = Some(map.next_value()?),
                        Key::Memory => l.memory = Some(map.next_value()?),
                        Key::Limits | Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(l)
            }
        }
        /// `resources.limits`, `null` read as no limits.
        struct LimitKeys(Limits);
        impl<'de> Deserialize<'de> for LimitKeys {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct OrNull;
                impl<'de> Visitor<'de> for OrNull {
                    type Value = Limits;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        Keys.expecting(f)
                    }
                    fn visit_none<E>(self) -> Result<Limits, E> {
                        Ok(Limits::default())
                    }
                    fn visit_unit<E>(self) -> Result<Limits, E> {
                        Ok(Limits::default())
                    }
                    fn visit_some<D: serde::Deserializer<'de>>(
                        self,
                        d: D,
                    ) -> Result<Limits, D::Error> {
                        d.deserialize_map(Keys)
                    }
                }
                d.deserialize_option(OrNull).map(LimitKeys)
            }
        }
        /// `resources`: `limits` read, every other field stepped over.
        struct Resources;
        impl<'de> Visitor<'de> for Resources {
            type Value = Limits;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a resources object (limits, requests, claims)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Limits, A::Error> {
                let mut out = Limits::default();
                while let Some(key) = map.next_key::<Key>()? {
                    if let Key::Limits = key {
                        out = map.next_value::<LimitKeys>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Resources)
    }
}

/// A probe, as far as the checks read it: what it runs (`exec`) or where it connects
/// (`httpGet`, `tcpSocket`). Its timings, `grpc`, and an action's port, path and scheme are
/// stepped over unbuilt: k8s-openapi's `Probe` built a string for each (three for a usual
/// `httpGet`), which was most of what reading the probes added to a review. Written back with
/// what it holds only; nothing downstream writes a container whole.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Probe {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HTTPGetAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TCPSocketAction>,
}

/// A lifecycle hook's handler: the same three actions as a probe (and `sleep`, not read).
pub type LifecycleHandler = Probe;

/// `postStart` and `preStop`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Lifecycle {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_start: Option<LifecycleHandler>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<LifecycleHandler>,
}

/// An `httpGet` action: the host the kubelet connects to and the headers it sends.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HTTPGetAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_headers: Option<Vec<HTTPHeader>>,
}

/// A `tcpSocket` action: the host the kubelet connects to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TCPSocketAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl PodSpec {
    /// `spec.os.name: windows`.
    pub fn is_windows(&self) -> bool {
        self.os.as_ref().is_some_and(|os| os.name == "windows")
    }
}

/// A volume: its name and its source. k8s-openapi's `Volume` holds all thirty-odd sources by
/// value (3,280 bytes), and a pod has several volumes: here the sources a check or mutation
/// reads into are held as they are, every other one boxed (8 bytes while absent), read only
/// for which source the volume has (`volume-types`).
///
/// A volume has exactly one source, so a volume a mutation changes is replaced whole in the
/// patch (`crate::engine::patch`), never edited field by field.
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
    // The sources no check reads into, each boxed: the rest of Pod Security `restricted`'s
    // allow-list first, then the sources the node mounts (or, for `gitRepo` and
    // `flexVolume`, runs a program on the node to fill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<Box<ConfigMapVolumeSource>>,
    #[serde(rename = "downwardAPI", skip_serializing_if = "Option::is_none")]
    pub downward_api: Option<Box<DownwardAPIVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<Box<EmptyDirVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<Box<EphemeralVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Box<ImageVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<Box<PersistentVolumeClaimVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_elastic_block_store: Option<Box<AWSElasticBlockStoreVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_disk: Option<Box<AzureDiskVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_file: Option<Box<AzureFileVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cephfs: Option<Box<CephFSVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cinder: Option<Box<CinderVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fc: Option<Box<FCVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flex_volume: Option<Box<FlexVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flocker: Option<Box<FlockerVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gce_persistent_disk: Option<Box<GCEPersistentDiskVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_repo: Option<Box<GitRepoVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glusterfs: Option<Box<GlusterfsVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iscsi: Option<Box<ISCSIVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfs: Option<Box<NFSVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photon_persistent_disk: Option<Box<PhotonPersistentDiskVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portworx_volume: Option<Box<PortworxVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quobyte: Option<Box<QuobyteVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbd: Option<Box<RBDVolumeSource>>,
    #[serde(rename = "scaleIO", skip_serializing_if = "Option::is_none")]
    pub scale_io: Option<Box<ScaleIOVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storageos: Option<Box<StorageOSVolumeSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vsphere_volume: Option<Box<VsphereVirtualDiskVolumeSource>>,
}

impl Volume {
    /// The JSON name of the volume's source outside Pod Security `restricted`'s allow-list
    /// (`nfs`, `hostPath`, ...), if it has one. A volume with no source at all is an
    /// `emptyDir` (the API server fills that in).
    pub fn restricted_source(&self) -> Option<&'static str> {
        let o = self;
        if self.csi.is_some()
            || self.projected.is_some()
            || self.secret.is_some()
            || o.config_map.is_some()
            || o.downward_api.is_some()
            || o.empty_dir.is_some()
            || o.ephemeral.is_some()
            || o.image.is_some()
            || o.persistent_volume_claim.is_some()
        {
            return None;
        }
        let named = [
            ("hostPath", self.host_path.is_some()),
            ("gcePersistentDisk", o.gce_persistent_disk.is_some()),
            ("awsElasticBlockStore", o.aws_elastic_block_store.is_some()),
            ("gitRepo", o.git_repo.is_some()),
            ("nfs", o.nfs.is_some()),
            ("iscsi", o.iscsi.is_some()),
            ("glusterfs", o.glusterfs.is_some()),
            ("rbd", o.rbd.is_some()),
            ("flexVolume", o.flex_volume.is_some()),
            ("cinder", o.cinder.is_some()),
            ("cephfs", o.cephfs.is_some()),
            ("flocker", o.flocker.is_some()),
            ("fc", o.fc.is_some()),
            ("azureFile", o.azure_file.is_some()),
            ("vsphereVolume", o.vsphere_volume.is_some()),
            ("quobyte", o.quobyte.is_some()),
            ("azureDisk", o.azure_disk.is_some()),
            ("photonPersistentDisk", o.photon_persistent_disk.is_some()),
            ("portworxVolume", o.portworx_volume.is_some()),
            ("scaleIO", o.scale_io.is_some()),
            ("storageos", o.storageos.is_some()),
        ];
        named.into_iter().find(|(_, set)| *set).map(|(n, _)| n)
    }
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
                "livenessProbe": {"httpGet": {"path": "/", "port": "http", "host": "10.0.0.1",
                                              "httpHeaders": [{"name": "X", "value": "y"}]}},
                "readinessProbe": {"tcpSocket": {"port": 8080, "host": "node"}},
                "startupProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5},
                "lifecycle": {"postStart": {"httpGet": {"port": 80, "host": "h"}},
                              "preStop": {"tcpSocket": {"port": 81}}},
                "terminationMessagePath": "/dev/termination-log",
                "resources": {"limits": {"memory": "1Gi", "nvidia.com/gpu": "1"},
                              "requests": {"cpu": "1"}},
                "futureField": {"k": 1},
            })
        };
        let volumes: Vec<Value> = vec![
            json!({"name": "v", "hostPath": {"path": "/"}}),
            json!({"name": "c", "csi": {"driver": "secrets-store.csi.k8s.io", "volumeAttributes": {"secretProviderClass": "p"}}}),
            json!({"name": "s", "secret": {"secretName": "s"}}),
            json!({"name": "t", "projected": {"sources": [ {"serviceAccountToken": {"expirationSeconds": 3600, "path": "token"}}]}}),
            json!({"name": "tmp", "emptyDir": {"medium": "Memory"}}),
            json!({"name": "cm", "configMap": {"name": "c"}}),
            json!({"name": "d", "downwardAPI": {"items": []}}),
            json!({"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}),
            json!({"name": "i", "image": {"reference": "r"}}),
            json!({"name": "pvc", "persistentVolumeClaim": {"claimName": "c"}}),
            json!({"name": "n", "nfs": {"server": "s", "path": "/"}}),
            json!({"name": "g", "gitRepo": {"repository": "r"}}),
            json!({"name": "sio", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {"name": "s"}}}),
            json!({"name": "aws", "awsElasticBlockStore": {"volumeID": "v"}}),
            json!({"name": "az", "azureDisk": {"diskName": "d", "diskURI": "u"}}),
            json!({"name": "azf", "azureFile": {"secretName": "s", "shareName": "s"}}),
            json!({"name": "ceph", "cephfs": {"monitors": ["m"]}}),
            json!({"name": "cin", "cinder": {"volumeID": "v"}}),
            json!({"name": "fc", "fc": {"wwids": ["w"]}}),
            json!({"name": "flex", "flexVolume": {"driver": "d"}}),
            json!({"name": "flo", "flocker": {"datasetName": "d"}}),
            json!({"name": "gce", "gcePersistentDisk": {"pdName": "p"}}),
            json!({"name": "glu", "glusterfs": {"endpoints": "e", "path": "p"}}),
            json!({"name": "isc", "iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0}}),
            json!({"name": "ph", "photonPersistentDisk": {"pdID": "p"}}),
            json!({"name": "px", "portworxVolume": {"volumeID": "v"}}),
            json!({"name": "q", "quobyte": {"registry": "r", "volume": "v"}}),
            json!({"name": "rbd", "rbd": {"monitors": ["m"], "image": "i"}}),
            json!({"name": "sos", "storageos": {"volumeName": "v"}}),
            json!({"name": "vs", "vsphereVolume": {"volumePath": "p"}}),
        ];
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
            "os": {"name": "linux"},
            "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
            "securityContext": {"runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": volumes,
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
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in spec[list].as_array_mut().unwrap() {
                let c = c.as_object_mut().unwrap();
                c.remove("terminationMessagePath");
                c.remove("targetContainerName");
                // Of the resources, only the CPU and memory limits are held; of probes and
                // hooks, what they run, the host and the headers.
                c["resources"] = json!({"limits": {"memory": "1Gi"}});
                c["livenessProbe"] = json!({"httpGet": {"host": "10.0.0.1",
                                            "httpHeaders": [{"name": "X", "value": "y"}]}});
                c["readinessProbe"] = json!({"tcpSocket": {"host": "node"}});
                c["startupProbe"] = json!({"exec": {"command": ["true"]}});
                c["lifecycle"] = json!({"postStart": {"httpGet": {"host": "h"}},
                                        "preStop": {"tcpSocket": {}}});
            }
        }
        assert_eq!(serde_json::to_value(&lean).unwrap(), expected);
        assert_eq!(lean.resources, Some(Limits::of(Some("2"), Some("4Gi"))));
        assert_eq!(
            lean.containers[0].resources,
            Some(Limits::of(None, Some("1Gi")))
        );
        assert_eq!(lean.host_pid, Some(true));
        assert_eq!(lean.host_ipc, Some(true));
        assert_eq!(lean.ephemeral_containers.unwrap()[0].name, "debug");
        // Every source the model holds is told apart from no source at all.
        let vols = lean.volumes.unwrap();
        let restricted: Vec<_> = vols.iter().filter_map(Volume::restricted_source).collect();
        assert_eq!(restricted.len(), 21, "{restricted:?}");
        assert_eq!(vols.len() - restricted.len(), 9);
        assert_eq!(
            Volume::default().restricted_source(),
            None,
            "no source: an emptyDir"
        );
    }

    #[test]
    fn limits_read_cpu_and_memory_alone_and_write_them_back() {
        // From text, as the engine reads a review: escapes are undone by the reader.
        let read = |r: &str| {
            serde_json::from_str::<Container>(&format!(r#"{{"name": "a", "resources": {r}}}"#))
                .map(|c| c.resources)
                .map_err(|e| e.to_string())
        };
        let both = Some(Limits::of(Some("1"), Some("1Gi")));
        let memory = Some(Limits::of(None, Some("1Gi")));
        let none = Some(Limits::default());
        for (resources, expected) in [
            (r#"{"limits": {"cpu": "1", "memory": "1Gi"}}"#, both.clone()),
            (r#"{"limits": {"c\u0070u": "1", "memory": "1Gi"}}"#, both),
            (
                r#"{"requests": {"cpu": "1", "memory": "1Gi"}, "claims": [{"name": "gpu"}]}"#,
                none.clone(),
            ),
            (
                r#"{"limits": {"nvidia.com/gpu": "1", "memory": "1Gi"}}"#,
                memory.clone(),
            ),
            (
                r#"{"limits": {"cpu ": "1", "CPU": "1", "memory": "1Gi"}}"#,
                memory.clone(),
            ),
            // A number is a quantity too, as the API server reads it.
            (
                r#"{"limits": {"cpu": 1}}"#,
                Some(Limits::of(Some("1"), None)),
            ),
            (r#"{"limits": null}"#, none.clone()),
            ("{}", none),
            ("null", None),
        ] {
            assert_eq!(read(resources), Ok(expected), "{resources}");
        }
        for bad in [
            r#"{"limits": ["cpu"]}"#,
            r#""2 cpus""#,
            r#"{"limits": 1}"#,
            r#"{"limits": {"cpu": true}}"#,
        ] {
            let e = read(bad).unwrap_err();
            assert!(e.contains("invalid type"), "{bad}: {e}");
        }
        let written = serde_json::to_value(Limits::of(None, Some("1Gi"))).unwrap();
        assert_eq!(written, json!({"limits": {"memory": "1Gi"}}));
        let written = serde_json::to_value(Limits::default()).unwrap();
        assert_eq!(written, json!({}));
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
