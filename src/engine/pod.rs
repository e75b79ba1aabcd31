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
    CSIVolumeSource, ContainerPort, EnvFromSource, EnvVar, ExecAction, HTTPHeader,
    HostPathVolumeSource, PodOS, PodSecurityContext, ProjectedVolumeSource, SecretVolumeSource,
    SecurityContext, VolumeMount,
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
/// reads into are held as they are, and every other one only as which it is
/// ([`VolumeSources`], for `volume-types`), its content stepped over unbuilt (an `emptyDir`
/// or a `configMap` built boxes and strings on every review that no check read).
///
/// A volume has exactly one source, so a volume a mutation changes is replaced whole in the
/// patch (`crate::engine::patch`), never edited field by field; the volumes written are the
/// mutations' own, which hold only sources read into. Another source is written back as its
/// name over an empty object, since its content was never kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Volume {
    pub name: String,
    pub csi: Option<CSIVolumeSource>,
    pub host_path: Option<HostPathVolumeSource>,
    pub projected: Option<ProjectedVolumeSource>,
    pub secret: Option<SecretVolumeSource>,
    /// The other sources the volume names (not `null`).
    pub sources: VolumeSources,
}

/// The variants of [`VolumeSource`], its list and each one's JSON name, from one table so
/// that the three cannot drift apart.
macro_rules! volume_sources {
    ($($variant:ident => $json:literal,)+) => {
        /// A volume source held only as which it is. The ones Pod Security `restricted`
        /// allows come first; the others (the sources the node mounts, or for `gitRepo` and
        /// `flexVolume` runs a program on the node to fill) follow in the order
        /// [`Volume::restricted_source`] names them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum VolumeSource {
            $($variant,)+
        }

        impl VolumeSource {
            /// Every one, in the order above.
            pub const ALL: &[VolumeSource] = &[$(VolumeSource::$variant,)+];

            /// Its key in a volume's JSON.
            pub fn json_name(self) -> &'static str {
                match self {
                    $(VolumeSource::$variant => $json,)+
                }
            }
        }
    };
}

volume_sources! {
    ConfigMap => "configMap",
    DownwardApi => "downwardAPI",
    EmptyDir => "emptyDir",
    Ephemeral => "ephemeral",
    Image => "image",
    PersistentVolumeClaim => "persistentVolumeClaim",
    GcePersistentDisk => "gcePersistentDisk",
    AwsElasticBlockStore => "awsElasticBlockStore",
    GitRepo => "gitRepo",
    Nfs => "nfs",
    Iscsi => "iscsi",
    Glusterfs => "glusterfs",
    Rbd => "rbd",
    FlexVolume => "flexVolume",
    Cinder => "cinder",
    Cephfs => "cephfs",
    Flocker => "flocker",
    Fc => "fc",
    AzureFile => "azureFile",
    VsphereVolume => "vsphereVolume",
    Quobyte => "quobyte",
    AzureDisk => "azureDisk",
    PhotonPersistentDisk => "photonPersistentDisk",
    PortworxVolume => "portworxVolume",
    ScaleIo => "scaleIO",
    Storageos => "storageos",
}

impl VolumeSource {
    /// Whether Pod Security `restricted` allows it (with `csi`, `projected` and `secret`).
    pub fn restricted_allows(self) -> bool {
        (self as u8) <= VolumeSource::PersistentVolumeClaim as u8
    }

    fn from_json_name(name: &str) -> Option<VolumeSource> {
        VolumeSource::ALL
            .iter()
            .copied()
            .find(|s| s.json_name() == name)
    }
}

/// A set of [`VolumeSource`]s, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeSources(u32);

impl VolumeSources {
    pub fn of(sources: &[VolumeSource]) -> VolumeSources {
        VolumeSources(sources.iter().fold(0, |bits, s| bits | 1 << *s as u32))
    }

    pub fn contains(self, source: VolumeSource) -> bool {
        self.0 & 1 << source as u32 != 0
    }

    pub fn insert(&mut self, source: VolumeSource) {
        self.0 |= 1 << source as u32;
    }

    /// The sources in the set, in [`VolumeSource::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = VolumeSource> {
        VolumeSource::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }
}

impl Volume {
    /// A volume of one source held only as which it is.
    pub fn of_source(name: &str, source: VolumeSource) -> Volume {
        Volume {
            name: name.to_string(),
            sources: VolumeSources::of(&[source]),
            ..Default::default()
        }
    }

    /// The JSON name of the volume's source outside Pod Security `restricted`'s allow-list
    /// (`nfs`, `hostPath`, ...), if it has one. A volume with no source at all is an
    /// `emptyDir` (the API server fills that in).
    pub fn restricted_source(&self) -> Option<&'static str> {
        if self.csi.is_some()
            || self.projected.is_some()
            || self.secret.is_some()
            || self.sources.iter().any(VolumeSource::restricted_allows)
        {
            return None;
        }
        if self.host_path.is_some() {
            return Some("hostPath");
        }
        self.sources.iter().next().map(VolumeSource::json_name)
    }
}

impl Serialize for Volume {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        if let Some(v) = &self.csi {
            m.serialize_entry("csi", v)?;
        }
        if let Some(v) = &self.host_path {
            m.serialize_entry("hostPath", v)?;
        }
        if let Some(v) = &self.projected {
            m.serialize_entry("projected", v)?;
        }
        if let Some(v) = &self.secret {
            m.serialize_entry("secret", v)?;
        }
        for source in self.sources.iter() {
            m.serialize_entry(source.json_name(), &serde_json::Map::new())?;
        }
        m.end()
    }
}

// Written by hand: serde's derive would either build every source (what this type exists to
// avoid) or, with `flatten`, buffer the whole volume as generic content first.
impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};
        use std::fmt;

        /// A key of a volume, told apart without copying it.
        enum Key {
            Name,
            Csi,
            HostPath,
            Projected,
            Secret,
            Source(VolumeSource),
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
                            "name" => Key::Name,
                            "csi" => Key::Csi,
                            "hostPath" => Key::HostPath,
                            "projected" => Key::Projected,
                            "secret" => Key::Secret,
                            _ => VolumeSource::from_json_name(v).map_or(Key::Other, Key::Source),
                        })
                    }
                }
                d.deserialize_str(Name)
            }
        }
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Volume;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a volume")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Volume, A::Error> {
                let mut v = Volume::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Name => {
                            v.name = map.next_value::<Option<String>>()?.unwrap_or_default();
                        }
                        Key::Csi => v.csi = map.next_value()?,
                        Key::HostPath => v.host_path = map.next_value()?,
                        Key::Projected => v.projected = map.next_value()?,
                        Key::Secret => v.secret = map.next_value()?,
                        Key::Source(source) => {
                            if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                                v.sources.insert(source);
                            }
                        }
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(v)
            }
        }
        d.deserialize_map(Fields)
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

    /// A source held as which it is: present when set, not when `null`; a key no volume
    /// has is stepped over; each source's JSON name reads back to it.
    #[test]
    fn volume_sources_are_read_as_which_they_are() {
        let v: Volume = serde_json::from_value(json!({
            "name": null, "emptyDir": {"sizeLimit": "1Gi"}, "nfs": null, "futureSource": {"a": 1}
        }))
        .unwrap();
        assert_eq!(v, Volume::of_source("", VolumeSource::EmptyDir));
        assert_eq!(v.restricted_source(), None);
        let nfs: Volume =
            serde_json::from_value(json!({"name": "n", "nfs": {"server": "s"}})).unwrap();
        assert_eq!(nfs.restricted_source(), Some("nfs"));
        assert_eq!(
            serde_json::to_value(&nfs).unwrap(),
            json!({"name": "n", "nfs": {}})
        );
        for &s in VolumeSource::ALL {
            assert_eq!(VolumeSource::from_json_name(s.json_name()), Some(s));
        }
        assert!(serde_json::from_value::<Volume>(json!("a string")).is_err());
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
        // Of the volume sources no check reads into, which one it is.
        for v in spec["volumes"].as_array_mut().unwrap() {
            for (key, value) in v.as_object_mut().unwrap() {
                if !["name", "csi", "hostPath", "projected", "secret"].contains(&key.as_str()) {
                    *value = json!({});
                }
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
