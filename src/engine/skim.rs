//! Reading a pod spec without the parts no check or mutation reads.
//!
//! k8s-openapi builds every field of a `PodSpec`: probes, resources, affinity, tolerations,
//! each a tree of structs. Most of a real pod's spec is such fields, and the engine never
//! looks at them. [`spec`] reads a `PodSpec` through a deserializer adapter that skips the
//! fields named in [`SPEC_UNREAD`] and, inside each container, [`CONTAINER_UNREAD`]: their
//! JSON is stepped over unbuilt and the typed field stays `None`.
//!
//! It is safe because nothing downstream writes a whole spec or container back: a patch is
//! built from the parts a mutation wrote (env, volume mounts, volumes, annotations), so a
//! skipped field is never in it and the API server keeps the stored one. The mutation
//! property test holds that over generated pods that carry skipped fields, and
//! `no_engine_code_reads_a_skipped_field` fails if engine code starts reading one.
//!
//! The lists name what is skipped rather than what is kept: a field k8s-openapi adds later
//! is built until someone decides it is not needed. serde offers no "every field but these"
//! for a foreign type, hence this adapter, written out by hand.

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use std::fmt;

use k8s_openapi::api::core::v1::PodSpec;

/// `PodSpec` fields (JSON names) no check or mutation reads.
pub const SPEC_UNREAD: &[&str] = &[
    "activeDeadlineSeconds",
    "affinity",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "overhead",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "readinessGates",
    "resourceClaims",
    "resources",
    "schedulerName",
    "schedulingGates",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
];

/// Container fields (JSON names, the same for init, app and ephemeral containers) no check
/// or mutation reads.
pub const CONTAINER_UNREAD: &[&str] = &[
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "startupProbe",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "workingDir",
];

/// The three container lists of a pod spec.
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Reads an optional `PodSpec`, skipping the unread fields.
pub fn spec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PodSpec>, D::Error> {
    Option::<PodSpec>::deserialize(Skim {
        de: d,
        level: Level::Spec,
    })
}

/// Where in the spec a value sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The `PodSpec` object.
    Spec,
    /// One of its container lists.
    Containers,
    /// One container.
    Container,
}

impl Level {
    fn unread(self) -> &'static [&'static str] {
        match self {
            Level::Spec => SPEC_UNREAD,
            Level::Container => CONTAINER_UNREAD,
            Level::Containers => &[],
        }
    }

    /// The level of the value under `key` of an object at this level; `None` reads it as is.
    fn field(self, key: &str) -> Option<Level> {
        (self == Level::Spec && CONTAINER_LISTS.contains(&key)).then_some(Level::Containers)
    }

    /// The level of an element of an array at this level.
    fn element(self) -> Option<Level> {
        (self == Level::Containers).then_some(Level::Container)
    }
}

/// A deserializer that hands the type's visitor objects without the unread keys.
struct Skim<D> {
    de: D,
    level: Level,
}

/// Everything but options, objects and arrays goes straight through.
macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.de.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Skim<D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_option(Wrap {
            inner: visitor,
            level: self.level,
        })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_map(Wrap {
            inner: visitor,
            level: self.level,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_struct(
            name,
            fields,
            Wrap {
                inner: visitor,
                level: self.level,
            },
        )
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_seq(Wrap {
            inner: visitor,
            level: self.level,
        })
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// The type's own visitor, handed a filtered object or array. Whatever else arrives goes to
/// it unchanged through the default methods, whose errors name what the type expected.
struct Wrap<V> {
    inner: V,
    level: Level,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Skim {
            de: d,
            level: self.level,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Entries {
            map,
            level: self.level,
            value: None,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        match self.level.element() {
            Some(level) => self.inner.visit_seq(Elements { seq, level }),
            None => self.inner.visit_seq(seq),
        }
    }
}

/// An object's entries without the unread keys.
struct Entries<A> {
    map: A,
    level: Level,
    /// The level of the value whose key was handed out last.
    value: Option<Level>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let unread = self.level.unread();
        loop {
            let Some(key) = self.map.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            let name = key.as_str();
            if unread.contains(&name) {
                self.map.next_value::<IgnoredAny>()?;
                continue;
            }
            self.value = self.level.field(name);
            return match key {
                Key::Borrowed(s) => seed.deserialize(s.into_deserializer()),
                Key::Owned(s) => seed.deserialize(s.into_deserializer()),
            }
            .map(Some);
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        match self.value.take() {
            Some(level) => self.map.next_value_seed(Seed { seed, level }),
            None => self.map.next_value_seed(seed),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// An array's elements, each read at the array's element level.
struct Elements<A> {
    seq: A,
    level: Level,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Elements<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.seq.next_element_seed(Seed {
            seed,
            level: self.level,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

/// A seed whose deserializer skims at `level`.
struct Seed<S> {
    seed: S,
    level: Level,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Skim {
            de: d,
            level: self.level,
        })
    }
}

/// An object key: borrowed from the body unless it holds an escape.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::{Value, json};

    fn full_spec() -> Value {
        let container = |name: &str| {
            json!({
                "name": name, "image": "openclaw", "command": ["node"], "args": ["a"],
                "env": [{"name": "A", "value": "1"}], "envFrom": [{"secretRef": {"name": "s"}}],
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                "volumeDevices": [{"name": "d", "devicePath": "/dev/d"}],
                "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
                "restartPolicy": "Always",
                "imagePullPolicy": "Always",
                "lifecycle": {"preStop": {"exec": {"command": ["x"]}}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "readinessProbe": {"exec": {"command": ["true"]}},
                "startupProbe": {"tcpSocket": {"port": 80}},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "resources": {"limits": {"memory": "1Gi"}},
                "stdin": true, "stdinOnce": true, "tty": true,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "workingDir": "/w",
            })
        };
        let mut ephemeral = container("debug");
        ephemeral["targetContainerName"] = json!("agent");
        json!({
            "containers": [container("agent"), container("browser")],
            "initContainers": [container("setup")],
            "ephemeralContainers": [ephemeral],
            "serviceAccountName": "claw", "automountServiceAccountToken": false,
            "hostNetwork": true, "hostPID": true, "hostIPC": true, "hostAliases": [{"ip": "1.2.3.4"}],
            "nodeName": "n1", "nodeSelector": {"k": "v"},
            "securityContext": {"runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "v", "hostPath": {"path": "/"}}],
            "restartPolicy": "Always",
            "activeDeadlineSeconds": 5,
            "affinity": {"nodeAffinity": {}},
            "dnsConfig": {"nameservers": ["1.1.1.1"]},
            "dnsPolicy": "None",
            "enableServiceLinks": false,
            "overhead": {"cpu": "1"},
            "preemptionPolicy": "Never",
            "priority": 7,
            "priorityClassName": "high",
            "readinessGates": [{"conditionType": "x"}],
            "resourceClaims": [{"name": "gpu"}],
            "resources": {"limits": {"cpu": "2"}},
            "schedulerName": "s",
            "schedulingGates": [{"name": "g"}],
            "terminationGracePeriodSeconds": 30,
            "tolerations": [{"operator": "Exists"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}],
        })
    }

    fn without(mut v: Value, spec_fields: &[&str], container_fields: &[&str]) -> Value {
        let spec = v.as_object_mut().unwrap();
        for f in spec_fields {
            spec.remove(*f);
        }
        for list in CONTAINER_LISTS {
            for c in spec[*list].as_array_mut().unwrap() {
                for f in container_fields {
                    c.as_object_mut().unwrap().remove(*f);
                }
            }
        }
        v
    }

    fn skimmed(v: &Value) -> Option<PodSpec> {
        spec(&mut serde_json::Deserializer::from_str(&v.to_string())).unwrap()
    }

    #[test]
    fn a_skimmed_spec_is_the_full_spec_without_the_unread_fields() {
        let v = full_spec();
        let full: PodSpec =
            serde_json::from_value(without(v.clone(), SPEC_UNREAD, CONTAINER_UNREAD)).unwrap();
        let got = skimmed(&v).unwrap();
        assert_eq!(got, full);
        // Every field kept is there: the skim drops exactly the listed ones.
        assert_eq!(got.containers[0].volume_devices.as_ref().unwrap().len(), 1);
        assert_eq!(got.node_selector.as_ref().unwrap()["k"], "v");
        assert!(got.containers[0].liveness_probe.is_none() && got.tolerations.is_none());
        // And the lists name fields that exist: without the skim they would be built.
        let unskimmed: PodSpec = serde_json::from_value(v).unwrap();
        assert!(unskimmed.tolerations.is_some() && unskimmed.affinity.is_some());
        let c = &unskimmed.ephemeral_containers.as_ref().unwrap()[0];
        assert!(c.liveness_probe.is_some() && c.resources.is_some() && c.tty == Some(true));
    }

    #[test]
    fn null_and_absent_specs_read_as_none_and_errors_name_the_type() {
        assert_eq!(skimmed(&Value::Null), None);
        assert_eq!(skimmed(&json!({})), Some(PodSpec::default()));
        let err = spec(&mut serde_json::Deserializer::from_str(
            r#"{"containers": 3}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("invalid type: integer `3`, expected a sequence"),
            "{err}"
        );
        let err = spec(&mut serde_json::Deserializer::from_str(
            r#"{"containers": [{"name": 1}]}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected a string"), "{err}");
        // A malformed skipped field is stepped over like any unknown one.
        let ok = spec(&mut serde_json::Deserializer::from_str(
            r#"{"tolerations": 3, "containers": [{"name": "a", "resources": [1]}]}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(ok.containers[0].name, "a");
    }

    #[test]
    fn escaped_keys_are_read_too() {
        let got = spec(&mut serde_json::Deserializer::from_str(
            r#"{"containers": [{"na\u006de": "a", "tt\u0079": true}], "hostNetwor\u006b": true}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(got.containers[0].name, "a");
        assert_eq!(got.containers[0].tty, None);
        assert_eq!(got.host_network, Some(true));
    }

    /// The Rust name of a JSON field name (`hostPID` -> `host_pid`, as k8s-openapi names it).
    fn snake(camel: &str) -> String {
        let mut out = String::new();
        let chars: Vec<char> = camel.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if c.is_uppercase() && i > 0 && (chars[i - 1].is_lowercase() || next_lower) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// A skipped field reads as `None`: a check or mutation that started reading one would
    /// silently see nothing. This fails first. It looks for the field's Rust name as a field
    /// access (`.liveness_probe`) in the code that sees a reviewed object (the engine, the
    /// admission layer, the wire, the CLI); PolicyRule's own `resources` (`rule.resources`)
    /// is a different type and allowed.
    #[test]
    fn no_engine_code_reads_a_skipped_field() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join("admission.rs"), src.join("wire.rs")];
        rust_files(&src.join("engine"), &mut files);
        rust_files(&src.join("cli"), &mut files);
        let mut names: Vec<String> = SPEC_UNREAD
            .iter()
            .chain(CONTAINER_UNREAD)
            .map(|f| format!(".{}", snake(f)))
            .collect();
        names.sort();
        names.dedup();
        assert!(names.contains(&".liveness_probe".to_string()));
        assert!(names.contains(&".termination_grace_period_seconds".to_string()));
        let mut found = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("skim.rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            for (n, line) in text.lines().enumerate() {
                for name in &names {
                    let allowed = name == ".resources" && line.contains("rule.resources");
                    let at_end = |i: usize| {
                        !line[i + name.len()..]
                            .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    };
                    if !allowed && line.match_indices(name.as_str()).any(|(i, _)| at_end(i)) {
                        found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(files.len() > 20, "read {} files", files.len());
        assert!(found.is_empty(), "skipped fields read: {found:#?}");
    }
}
