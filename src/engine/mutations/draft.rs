//! The parts of a Pod that mutations change, copied out of the original on first write, and
//! the JSON Patch built from them alone.
//!
//! A mutation reads the original pod for everything it does not change (labels, the
//! ServiceAccount, container names) and writes through the draft: the pod's annotations,
//! `automountServiceAccountToken`, its volumes, and each container's `env` and
//! `volumeMounts`. Nothing else is ever copied, and the patch compares only what was written:
//! a part equal to the original (typed comparison) costs nothing, a changed list is the only
//! thing serialized, and named lists are diffed by name (`crate::engine::patch`) so that
//! fields our types do not know survive in the API server's copy.

use crate::engine::patch;
use crate::engine::patch::{Json, Op};
use crate::engine::pod::{Container, Pod, PodSpec, Volume};
use json_patch::jsonptr::PointerBuf;
use k8s_openapi::api::core::v1::{EnvVar, VolumeMount};
use serde::Serialize;
use std::collections::BTreeMap;

/// One part: untouched (read from the original) or a copy that may have been changed.
#[derive(Debug, Clone, Default)]
struct Part<T>(Option<Option<T>>);

impl<T: Clone> Part<T> {
    fn get<'a>(&'a self, original: Option<&'a T>) -> Option<&'a T> {
        match &self.0 {
            None => original,
            Some(copy) => copy.as_ref(),
        }
    }

    fn get_mut(&mut self, original: Option<&T>) -> &mut Option<T> {
        self.0.get_or_insert_with(|| original.cloned())
    }

    fn written(&self) -> Option<Option<&T>> {
        self.0.as_ref().map(Option::as_ref)
    }
}

/// Which list of containers a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Init,
    App,
    Ephemeral,
}

impl Group {
    fn field(self) -> &'static str {
        match self {
            Group::Init => "initContainers",
            Group::App => "containers",
            Group::Ephemeral => "ephemeralContainers",
        }
    }
}

/// A container of the pod, by list and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerRef {
    pub group: Group,
    pub index: usize,
}

#[derive(Debug, Clone, Default)]
struct ContainerParts {
    env: Part<Vec<EnvVar>>,
    volume_mounts: Part<Vec<VolumeMount>>,
}

/// The pod under mutation: the original, and the copies of what was written.
#[derive(Debug, Clone)]
pub struct PodDraft<'p> {
    original: &'p Pod,
    annotations: Part<BTreeMap<String, String>>,
    automount: Part<bool>,
    volumes: Part<Vec<Volume>>,
    init: Vec<ContainerParts>,
    app: Vec<ContainerParts>,
    ephemeral: Vec<ContainerParts>,
}

impl<'p> PodDraft<'p> {
    pub fn new(original: &'p Pod) -> Self {
        let spec = original.spec.as_ref();
        let count = |n: usize| vec![ContainerParts::default(); n];
        PodDraft {
            original,
            annotations: Part::default(),
            automount: Part::default(),
            volumes: Part::default(),
            init: count(
                spec.and_then(|s| s.init_containers.as_ref())
                    .map_or(0, Vec::len),
            ),
            app: count(spec.map_or(0, |s| s.containers.len())),
            ephemeral: count(
                spec.and_then(|s| s.ephemeral_containers.as_ref())
                    .map_or(0, Vec::len),
            ),
        }
    }

    /// The pod as it came: read everything mutations do not write from here.
    pub fn original(&self) -> &'p Pod {
        self.original
    }

    fn spec(&self) -> Option<&'p PodSpec> {
        self.original.spec.as_ref()
    }

    pub fn has_spec(&self) -> bool {
        self.original.spec.is_some()
    }

    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.annotations
            .get(self.original.metadata.annotations.as_ref())
    }

    pub fn annotations_mut(&mut self) -> &mut Option<BTreeMap<String, String>> {
        self.annotations
            .get_mut(self.original.metadata.annotations.as_ref())
    }

    pub fn automount(&self) -> Option<bool> {
        self.automount
            .get(
                self.spec()
                    .and_then(|s| s.automount_service_account_token.as_ref()),
            )
            .copied()
    }

    pub fn set_automount(&mut self, value: Option<bool>) {
        let original = self
            .spec()
            .and_then(|s| s.automount_service_account_token.as_ref());
        *self.automount.get_mut(original) = value;
    }

    /// The pod's volumes as they stand (empty when it has none).
    pub fn volumes(&self) -> &[Volume] {
        self.volumes
            .get(self.spec().and_then(|s| s.volumes.as_ref()))
            .map_or(&[], Vec::as_slice)
    }

    pub fn volumes_mut(&mut self) -> &mut Option<Vec<Volume>> {
        let original = self.spec().and_then(|s| s.volumes.as_ref());
        self.volumes.get_mut(original)
    }

    /// Init and regular containers: the ones that exist at Pod CREATE and so receive
    /// injected mounts and env. Ephemeral containers arrive later through their own
    /// subresource.
    pub fn app_containers(&self) -> impl Iterator<Item = ContainerRef> + use<> {
        let init = (0..self.init.len()).map(|index| ContainerRef {
            group: Group::Init,
            index,
        });
        let app = (0..self.app.len()).map(|index| ContainerRef {
            group: Group::App,
            index,
        });
        init.chain(app)
    }

    pub fn ephemeral_containers(&self) -> impl Iterator<Item = ContainerRef> + use<> {
        (0..self.ephemeral.len()).map(|index| ContainerRef {
            group: Group::Ephemeral,
            index,
        })
    }

    /// An init or regular container as it came (its name, image and everything not written
    /// here). Ephemeral containers are a type of their own: `None` for them.
    pub fn container(&self, at: ContainerRef) -> Option<&'p Container> {
        let spec = self.spec()?;
        match at.group {
            Group::Init => spec.init_containers.as_ref()?.get(at.index),
            Group::App => spec.containers.get(at.index),
            Group::Ephemeral => None,
        }
    }

    fn original_env(&self, at: ContainerRef) -> Option<&'p Vec<EnvVar>> {
        match at.group {
            Group::Ephemeral => self.ephemeral_original(at.index)?.0,
            _ => self.container(at)?.env.as_ref(),
        }
    }

    fn original_mounts(&self, at: ContainerRef) -> Option<&'p Vec<VolumeMount>> {
        match at.group {
            Group::Ephemeral => self.ephemeral_original(at.index)?.1,
            _ => self.container(at)?.volume_mounts.as_ref(),
        }
    }

    /// The env and mounts of an ephemeral container as it came.
    #[allow(clippy::type_complexity)]
    fn ephemeral_original(
        &self,
        index: usize,
    ) -> Option<(Option<&'p Vec<EnvVar>>, Option<&'p Vec<VolumeMount>>)> {
        let c = self.spec()?.ephemeral_containers.as_ref()?.get(index)?;
        Some((c.env.as_ref(), c.volume_mounts.as_ref()))
    }

    fn parts(&self, at: ContainerRef) -> Option<&ContainerParts> {
        match at.group {
            Group::Init => self.init.get(at.index),
            Group::App => self.app.get(at.index),
            Group::Ephemeral => self.ephemeral.get(at.index),
        }
    }

    fn parts_mut(&mut self, at: ContainerRef) -> Option<&mut ContainerParts> {
        match at.group {
            Group::Init => self.init.get_mut(at.index),
            Group::App => self.app.get_mut(at.index),
            Group::Ephemeral => self.ephemeral.get_mut(at.index),
        }
    }

    pub fn env(&self, at: ContainerRef) -> &[EnvVar] {
        self.parts(at)
            .and_then(|p| p.env.get(self.original_env(at)))
            .map_or(&[], Vec::as_slice)
    }

    /// The container's env to change; `None` for a container the pod does not have.
    pub fn env_mut(&mut self, at: ContainerRef) -> Option<&mut Option<Vec<EnvVar>>> {
        let original = self.original_env(at);
        Some(self.parts_mut(at)?.env.get_mut(original))
    }

    pub fn volume_mounts(&self, at: ContainerRef) -> &[VolumeMount] {
        self.parts(at)
            .and_then(|p| p.volume_mounts.get(self.original_mounts(at)))
            .map_or(&[], Vec::as_slice)
    }

    pub fn volume_mounts_mut(&mut self, at: ContainerRef) -> Option<&mut Option<Vec<VolumeMount>>> {
        let original = self.original_mounts(at);
        Some(self.parts_mut(at)?.volume_mounts.get_mut(original))
    }

    /// The JSON Patch from the original to the draft: only written parts that differ from
    /// the original are looked at, and only those are serialized.
    pub fn patch(&self) -> Result<Vec<Op>, serde_json::Error> {
        let mut ops = Vec::new();
        let meta = &self.original.metadata;
        if let Some(now) = self.annotations.written() {
            map_ops(
                meta.annotations.as_ref(),
                now,
                &["metadata", "annotations"],
                &mut ops,
            )?;
        }
        let Some(spec) = self.spec() else {
            return Ok(ops);
        };
        if let Some(now) = self.automount.written() {
            part_ops(
                spec.automount_service_account_token.as_ref(),
                now,
                &mut pointer(&["spec", "automountServiceAccountToken"]),
                &mut ops,
                |_, b, path, ops| {
                    ops.push(Op::Replace {
                        path: path.clone(),
                        value: Json::of(b)?,
                    });
                    Ok(())
                },
            )?;
        }
        if let Some(now) = self.volumes.written() {
            part_ops(
                spec.volumes.as_ref(),
                now,
                &mut pointer(&["spec", "volumes"]),
                &mut ops,
                |a, b, path, ops| patch::diff_list(a, b, path, ops),
            )?;
        }
        for (group, list) in [
            (Group::Init, &self.init),
            (Group::App, &self.app),
            (Group::Ephemeral, &self.ephemeral),
        ] {
            for (index, parts) in list.iter().enumerate() {
                let at = ContainerRef { group, index };
                let mut path = pointer(&["spec", group.field()]);
                path.push_back(index);
                if let Some(now) = parts.env.written() {
                    path.push_back("env");
                    part_ops(
                        self.original_env(at),
                        now,
                        &mut path,
                        &mut ops,
                        |a, b, p, o| patch::diff_list(a, b, p, o),
                    )?;
                    path.pop_back();
                }
                if let Some(now) = parts.volume_mounts.written() {
                    path.push_back("volumeMounts");
                    part_ops(
                        self.original_mounts(at),
                        now,
                        &mut path,
                        &mut ops,
                        |a, b, p, o| patch::diff_list(a, b, p, o),
                    )?;
                    path.pop_back();
                }
            }
        }
        Ok(ops)
    }

    /// The typed mutated pod: the original with the written parts put in. The webhook sends
    /// only [`PodDraft::patch`]; this is for tests, and for callers that want the result.
    pub fn to_pod(&self) -> Pod {
        let mut pod = self.original.clone();
        if let Some(now) = self.annotations.written() {
            pod.metadata.annotations = now.cloned();
        }
        let Some(spec) = pod.spec.as_mut() else {
            return pod;
        };
        if let Some(now) = self.automount.written() {
            spec.automount_service_account_token = now.copied();
        }
        if let Some(now) = self.volumes.written() {
            spec.volumes = now.cloned();
        }
        let put = |parts: &ContainerParts,
                   env: &mut Option<Vec<EnvVar>>,
                   mounts: &mut Option<Vec<VolumeMount>>| {
            if let Some(now) = parts.env.written() {
                *env = now.cloned();
            }
            if let Some(now) = parts.volume_mounts.written() {
                *mounts = now.cloned();
            }
        };
        for (c, parts) in spec.init_containers.iter_mut().flatten().zip(&self.init) {
            put(parts, &mut c.env, &mut c.volume_mounts);
        }
        for (c, parts) in spec.containers.iter_mut().zip(&self.app) {
            put(parts, &mut c.env, &mut c.volume_mounts);
        }
        for (c, parts) in spec
            .ephemeral_containers
            .iter_mut()
            .flatten()
            .zip(&self.ephemeral)
        {
            put(parts, &mut c.env, &mut c.volume_mounts);
        }
        pod
    }
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    let mut p = PointerBuf::new();
    for t in tokens {
        p.push_back(*t);
    }
    p
}

/// Operations for one part: add when the original lacked it, remove when the draft dropped
/// it, and otherwise the keyed diff of the two, serialized only when they differ.
fn part_ops<T: Serialize + PartialEq>(
    original: Option<&T>,
    now: Option<&T>,
    path: &mut PointerBuf,
    ops: &mut Vec<Op>,
    diff: impl FnOnce(&T, &T, &mut PointerBuf, &mut Vec<Op>) -> Result<(), serde_json::Error>,
) -> Result<(), serde_json::Error> {
    match (original, now) {
        (None, None) => {}
        (Some(_), None) => ops.push(Op::Remove { path: path.clone() }),
        (None, Some(b)) => ops.push(Op::Add {
            path: path.clone(),
            value: Json::of(b)?,
        }),
        (Some(a), Some(b)) if a == b => {}
        (Some(a), Some(b)) => diff(a, b, path, ops)?,
    }
    Ok(())
}

/// A string map (annotations) key by key, without building JSON values for the keys kept.
fn map_ops(
    original: Option<&BTreeMap<String, String>>,
    now: Option<&BTreeMap<String, String>>,
    at: &[&str],
    ops: &mut Vec<Op>,
) -> Result<(), serde_json::Error> {
    let mut path = pointer(at);
    match (original, now) {
        (None, None) => {}
        (Some(_), None) => ops.push(Op::Remove { path }),
        (None, Some(b)) => ops.push(Op::Add {
            path,
            value: Json::of(b)?,
        }),
        (Some(a), Some(b)) => {
            for (k, v) in b {
                let replace = match a.get(k) {
                    Some(old) if old == v => continue,
                    Some(_) => true,
                    None => false,
                };
                path.push_back(k.as_str());
                let (at, value) = (path.clone(), Json::of(v)?);
                path.pop_back();
                ops.push(if replace {
                    Op::Replace { path: at, value }
                } else {
                    Op::Add { path: at, value }
                });
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                path.push_back(k.as_str());
                ops.push(Op::Remove { path: path.clone() });
                path.pop_back();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn applied(doc: &Value, ops: &[Op]) -> Value {
        let mut doc = doc.clone();
        json_patch::patch(&mut doc, &crate::engine::patch::json_patch_of(ops)).unwrap();
        doc
    }

    #[test]
    fn an_untouched_draft_patches_nothing() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}}))
        .unwrap();
        let draft = PodDraft::new(&pod);
        assert!(draft.patch().unwrap().is_empty());
        assert_eq!(draft.to_pod(), pod);
    }

    #[test]
    fn a_part_written_back_to_what_it_was_patches_nothing() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v", "emptyDir": {}}]}}))
        .unwrap();
        let mut draft = PodDraft::new(&pod);
        let v = draft.volumes_mut().as_mut().unwrap().pop().unwrap();
        draft.volumes_mut().as_mut().unwrap().push(v);
        draft
            .annotations_mut()
            .as_mut()
            .unwrap()
            .insert("a".into(), "1".into());
        let c = draft.app_containers().next().unwrap();
        draft.volume_mounts_mut(c).unwrap();
        assert!(draft.patch().unwrap().is_empty());
    }

    #[test]
    fn fields_the_types_do_not_know_survive_in_the_raw_object() {
        let raw = json!({"metadata": {"name": "a"}, "spec": {"futureField": {"x": 1}, "containers": [
            {"name": "c", "futureContainerField": true, "env": [{"name": "A", "value": "1", "futureEnvField": 2}]}]}});
        let pod: Pod = serde_json::from_value(raw.clone()).unwrap();
        let mut draft = PodDraft::new(&pod);
        let c = draft.app_containers().next().unwrap();
        draft.env_mut(c).unwrap().as_mut().unwrap().push(EnvVar {
            name: "X".into(),
            value: Some("1".into()),
            value_from: None,
        });
        let ops = draft.patch().unwrap();
        assert_eq!(ops.len(), 1, "{ops:?}");
        let out = applied(&raw, &ops);
        assert_eq!(out["spec"]["futureField"], json!({"x": 1}));
        assert_eq!(out["spec"]["containers"][0]["futureContainerField"], true);
        assert_eq!(out["spec"]["containers"][0]["env"][0]["futureEnvField"], 2);
        assert_eq!(out["spec"]["containers"][0]["env"][1]["name"], "X");
    }

    #[test]
    fn annotations_are_patched_key_by_key_with_escaped_keys() {
        let raw = json!({"metadata": {"annotations": {"keep": "1", "change": "a", "drop": "x"}}});
        let pod: Pod = serde_json::from_value(raw.clone()).unwrap();
        let mut draft = PodDraft::new(&pod);
        let a = draft.annotations_mut().as_mut().unwrap();
        a.insert("change".into(), "b".into());
        a.remove("drop");
        a.insert("openclaw.io/injected".into(), "x~y".into());
        let ops = draft.patch().unwrap();
        assert_eq!(ops.len(), 3, "{ops:?}");
        let out = applied(&raw, &ops);
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"keep": "1", "change": "b", "openclaw.io/injected": "x~y"})
        );
        let text = serde_json::to_string(&ops).unwrap();
        assert!(
            text.contains("/metadata/annotations/openclaw.io~1injected"),
            "{text}"
        );
    }

    #[test]
    fn a_part_the_pod_lacked_is_added_whole() {
        let raw = json!({"spec": {"containers": [{"name": "c"}]}});
        let pod: Pod = serde_json::from_value(raw.clone()).unwrap();
        let mut draft = PodDraft::new(&pod);
        draft.set_automount(Some(false));
        draft
            .volumes_mut()
            .get_or_insert_with(Vec::new)
            .push(Volume {
                name: "v".into(),
                ..Default::default()
            });
        let ops = draft.patch().unwrap();
        assert_eq!(ops.len(), 2, "{ops:?}");
        let original = serde_json::to_value(&pod).unwrap();
        assert_eq!(
            applied(&original, &ops),
            serde_json::to_value(draft.to_pod()).unwrap()
        );
    }
}
