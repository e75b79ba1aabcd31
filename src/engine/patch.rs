//! JSON diff for the parts a mutation wrote (`mutations::draft`). Both sides of a part come
//! from the same typed values, never raw request JSON against a typed round-trip (which
//! would invent `remove` ops for fields the types do not know).
//!
//! The API server applies the patch to the object it sent, which may carry fields our types
//! do not know. So lists of named things (containers, volumes, env, mounts) are diffed by
//! name: a removed volume is one `remove` of that element and an added one is one `add`,
//! where a positional diff (`json_patch::diff`) would rewrite every later element field by
//! field and turn the plugin's `kube-api-access-*` volume into ours.

use crate::engine::pod::Volume;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::{EnvVar, VolumeMount};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON value already written as text: an operation's value is serialized once, from the
/// typed element, and copied into the answer as it is (no `serde_json::Value` tree built and
/// walked again).
#[derive(Clone)]
pub struct Json(Box<RawValue>);

impl Json {
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Json, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Json)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value as a tree (tests, and `json_patch` to apply a patch). The text was written
    /// by serde_json, so it always reads back.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

/// Equal when the values are, whatever the order of their keys (typed elements write their
/// fields in declaration order, `serde_json::Value` in key order).
impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.get() == other.get() || self.to_value() == other.to_value()
    }
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// One JSON Patch operation: the four kinds the engine writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Add { path: PointerBuf, value: Json },
    Remove { path: PointerBuf },
    Replace { path: PointerBuf, value: Json },
    Move { from: PointerBuf, path: PointerBuf },
}

impl Op {
    pub fn path(&self) -> &PointerBuf {
        match self {
            Op::Add { path, .. }
            | Op::Remove { path }
            | Op::Replace { path, .. }
            | Op::Move { path, .. } => path,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
            Op::Replace { .. } => "replace",
            Op::Move { .. } => "move",
        }
    }

    /// The same operation as `json_patch` has it, to apply it to a document.
    pub fn to_json_patch(&self) -> PatchOperation {
        match self {
            Op::Add { path, value } => PatchOperation::Add(AddOperation {
                path: path.clone(),
                value: value.to_value(),
            }),
            Op::Remove { path } => PatchOperation::Remove(RemoveOperation { path: path.clone() }),
            Op::Replace { path, value } => PatchOperation::Replace(ReplaceOperation {
                path: path.clone(),
                value: value.to_value(),
            }),
            Op::Move { from, path } => PatchOperation::Move(MoveOperation {
                from: from.clone(),
                path: path.clone(),
            }),
        }
    }
}

/// `{"op": ..., "path": ..., "value": ...}`, as RFC 6902 writes an operation.
impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("op", self.kind())?;
        if let Op::Move { from, .. } = self {
            m.serialize_entry("from", from.as_str())?;
        }
        m.serialize_entry("path", self.path().as_str())?;
        if let Op::Add { value, .. } | Op::Replace { value, .. } = self {
            m.serialize_entry("value", value)?;
        }
        m.end()
    }
}

/// A JSON Patch: what a mutating answer carries, base64-encoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch(pub Vec<Op>);

impl Serialize for Patch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Patch {
    /// The operations as `json_patch` has them, to apply the patch to a document.
    pub fn to_json_patch(&self) -> Vec<PatchOperation> {
        json_patch_of(&self.0)
    }
}

/// `ops` as `json_patch` has them, to apply them to a document.
pub fn json_patch_of(ops: &[Op]) -> Vec<PatchOperation> {
    ops.iter().map(Op::to_json_patch).collect()
}

/// The JSON Patch turning one JSON document into another, diffing named lists by name.
pub fn diff_values(original: &Value, mutated: &Value) -> Result<Patch, serde_json::Error> {
    let mut ops = Vec::new();
    diff_value(original, mutated, &mut PointerBuf::new(), &mut ops)?;
    Ok(Patch(ops))
}

/// Appends to `ops` what turns `a` into `b` at `path`: objects key by key, named lists by
/// name, anything else replaced whole.
pub(crate) fn diff_value(
    a: &Value,
    b: &Value,
    path: &mut PointerBuf,
    ops: &mut Vec<Op>,
) -> Result<(), serde_json::Error> {
    match (a, b) {
        // An object that loses a field was replaced, not edited (a mutation's own volume
        // over a user's one of the same name): one `replace` of the whole, never a
        // `remove` of its old fields.
        (Value::Object(a), Value::Object(_)) if a.keys().any(|k| b.get(k).is_none()) => {
            ops.push(Op::Replace {
                path: path.clone(),
                value: Json::of(b)?,
            });
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, bv) in b {
                path.push_back(k);
                let done = match a.get(k) {
                    Some(av) => diff_value(av, bv, path, ops),
                    None => Json::of(bv).map(|value| {
                        ops.push(Op::Add {
                            path: path.clone(),
                            value,
                        })
                    }),
                };
                path.pop_back();
                done?;
            }
        }
        (Value::Array(a), Value::Array(b)) if a != b => match list_key(a, b) {
            Some(key) => diff_keyed(a, b, key, path, ops)?,
            None => diff_positional(a, b, path, ops)?,
        },
        _ if a == b => {}
        _ => ops.push(Op::Replace {
            path: path.clone(),
            value: Json::of(b)?,
        }),
    }
    Ok(())
}

/// The field that identifies the elements of both lists, if there is one: every element an
/// object with a distinct string under it (`name` for containers, volumes and env;
/// `mountPath` for mounts, where one volume may be mounted twice).
fn list_key<T: Named>(a: &[T], b: &[T]) -> Option<&'static str> {
    let unique = |list: &[T], key: &str| {
        let mut keys = Vec::with_capacity(list.len());
        for v in list {
            match v.field(key) {
                Some(k) => keys.push(k),
                None => return false,
            }
        }
        keys.sort_unstable();
        keys.windows(2).all(|w| w[0] != w[1])
    };
    ["name", "mountPath"]
        .into_iter()
        .find(|key| unique(a, key) && unique(b, key))
}

fn diff_keyed(
    a: &[Value],
    b: &[Value],
    key: &str,
    path: &mut PointerBuf,
    ops: &mut Vec<Op>,
) -> Result<(), serde_json::Error> {
    diff_keyed_by(
        a,
        b,
        |v| v.field(key).unwrap_or_default(),
        diff_value,
        path,
        ops,
    )
}

/// A list element the patch can key by name: its string under each field [`list_key`]
/// tries, as its JSON form has it. Typed elements answer without being serialized.
pub(crate) trait Named: Serialize + PartialEq {
    fn field(&self, key: &str) -> Option<&str>;
    /// A changed element is replaced whole rather than edited field by field.
    const WHOLE: bool = false;
}

impl Named for Value {
    fn field(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

impl Named for EnvVar {
    fn field(&self, key: &str) -> Option<&str> {
        (key == "name").then_some(self.name.as_str())
    }
}

/// A volume has exactly one source, and the engine's `Volume` does not hold every kind: a
/// changed volume is always a mutation's own over a user's of the same name, and is replaced
/// whole, so that no source of the old one is left beside the new one.
impl Named for Volume {
    fn field(&self, key: &str) -> Option<&str> {
        (key == "name").then_some(self.name.as_str())
    }
    const WHOLE: bool = true;
}

impl Named for VolumeMount {
    fn field(&self, key: &str) -> Option<&str> {
        match key {
            "name" => Some(self.name.as_str()),
            "mountPath" => Some(self.mount_path.as_str()),
            _ => None,
        }
    }
}

/// What [`diff_value`] gives for the two lists' JSON, computed on the typed elements: only
/// elements that differ (typed comparison) or are new are serialized. Lists without a key
/// take the JSON path whole.
pub(crate) fn diff_list<T: Named>(
    a: &[T],
    b: &[T],
    path: &mut PointerBuf,
    ops: &mut Vec<Op>,
) -> Result<(), serde_json::Error> {
    if a == b {
        return Ok(());
    }
    // What a mutation that only appends leaves (the OTel env, a token mount): the original
    // elements untouched at the front. The new ones are added at their indices, as the keyed
    // diff would add them, without sorting and searching keys for the elements kept.
    if let Some(head) = b.get(..a.len())
        && head == a
    {
        for (j, bv) in b.iter().enumerate().skip(a.len()) {
            let value = Json::of(bv)?;
            push_op(ops, path, j, |path| Op::Add { path, value });
        }
        return Ok(());
    }
    let Some(key) = list_key(a, b) else {
        return diff_value(
            &serde_json::to_value(a)?,
            &serde_json::to_value(b)?,
            path,
            ops,
        );
    };
    diff_keyed_by(
        a,
        b,
        |v| v.field(key).unwrap_or_default(),
        |x, y, path, ops| {
            if x != y && T::WHOLE {
                ops.push(Op::Replace {
                    path: path.clone(),
                    value: Json::of(y)?,
                });
            } else if x != y {
                diff_value(
                    &serde_json::to_value(x)?,
                    &serde_json::to_value(y)?,
                    path,
                    ops,
                )?;
            }
            Ok(())
        },
        path,
        ops,
    )
}

/// Three steps, each keeping the indices of the next valid: remove the elements of `a` that
/// `b` lacks (highest index first); `move` the fewest of the rest into `b`'s order (those off
/// the longest run already in order), so that a reordered element is moved, never removed
/// and re-added; then walk `b`, diffing each kept element in place and adding the new ones.
/// Generic over the element, so that typed lists ([`diff_list`]) serialize only what the
/// patch carries.
fn diff_keyed_by<T: PartialEq + Serialize>(
    a: &[T],
    b: &[T],
    key_of: impl Fn(&T) -> &str,
    mut diff_element: impl FnMut(&T, &T, &mut PointerBuf, &mut Vec<Op>) -> Result<(), serde_json::Error>,
    path: &mut PointerBuf,
    ops: &mut Vec<Op>,
) -> Result<(), serde_json::Error> {
    // `b`'s keys (distinct, as `list_key` found) sorted with their indices: a few short
    // lists per review, where sorting and binary search beat hashing each key.
    let mut keys: Vec<(&str, usize)> = b.iter().enumerate().map(|(j, v)| (key_of(v), j)).collect();
    keys.sort_unstable();
    let in_b = |key: &str| {
        keys.binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|at| keys[at].1)
    };
    let mut from_a: Vec<Option<usize>> = vec![None; b.len()];
    for (i, v) in a.iter().enumerate().rev() {
        match in_b(key_of(v)) {
            Some(j) => from_a[j] = Some(i),
            None => push_op(ops, path, i, |p| Op::Remove { path: p }),
        }
    }
    // What is left, as indices into `b`, in its current order.
    let mut order: Vec<usize> = a.iter().filter_map(|v| in_b(key_of(v))).collect();
    let mut settled = vec![false; b.len()];
    for j in longest_increasing(&order) {
        settled[j] = true;
    }
    let unsettled: Vec<usize> = order.iter().copied().filter(|&j| !settled[j]).collect();
    for j in unsettled {
        let Some(from) = order.iter().position(|&x| x == j) else {
            continue;
        };
        order.remove(from);
        // Right after the settled element that comes last before it in `b`.
        let to = order
            .iter()
            .rposition(|&x| settled[x] && x < j)
            .map_or(0, |p| p + 1);
        order.insert(to, j);
        settled[j] = true;
        if from != to {
            let mut from_path = path.clone();
            from_path.push_back(from);
            push_op(ops, path, to, |p| Op::Move {
                from: from_path,
                path: p,
            });
        }
    }
    for (j, bv) in b.iter().enumerate() {
        if from_a[j].is_some_and(|i| a[i] == *bv) {
            continue; // kept as it was: nothing to say, not even its path
        }
        path.push_back(j);
        let done = match from_a[j] {
            Some(i) => diff_element(&a[i], bv, path, ops),
            None => Json::of(bv).map(|value| {
                ops.push(Op::Add {
                    path: path.clone(),
                    value,
                })
            }),
        };
        path.pop_back();
        done?;
    }
    Ok(())
}

fn push_op(
    ops: &mut Vec<Op>,
    path: &mut PointerBuf,
    index: usize,
    op: impl FnOnce(PointerBuf) -> Op,
) {
    path.push_back(index);
    ops.push(op(path.clone()));
    path.pop_back();
}

/// The longest increasing subsequence of `seq`: the elements that can stay where they are.
fn longest_increasing(seq: &[usize]) -> Vec<usize> {
    // Already in order is the usual case (a list that only gained or lost elements).
    if seq.windows(2).all(|w| w[0] < w[1]) {
        return seq.to_vec();
    }
    // Patience sorting: tails[k] is the position in `seq` ending the best run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; seq.len()];
    for (n, &x) in seq.iter().enumerate() {
        let k = tails.partition_point(|&t| seq[t] < x);
        prev[n] = k.checked_sub(1).map(|p| tails[p]);
        if k == tails.len() {
            tails.push(n);
        } else {
            tails[k] = n;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied();
    while let Some(n) = at {
        out.push(seq[n]);
        at = prev[n];
    }
    out.reverse();
    out
}

/// Index by index, as `json_patch::diff` does: for lists without a key.
fn diff_positional(
    a: &[Value],
    b: &[Value],
    path: &mut PointerBuf,
    ops: &mut Vec<Op>,
) -> Result<(), serde_json::Error> {
    for (i, (av, bv)) in a.iter().zip(b).enumerate() {
        path.push_back(i);
        let done = diff_value(av, bv, path, ops);
        path.pop_back();
        done?;
    }
    // Surplus elements go from the end backwards; missing ones are appended in order.
    for i in (b.len()..a.len()).rev() {
        push_op(ops, path, i, |path| Op::Remove { path });
    }
    for (i, bv) in b.iter().enumerate().skip(a.len()) {
        let value = Json::of(bv)?;
        push_op(ops, path, i, |path| Op::Add { path, value });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn applied(a: &Value, p: &Patch) -> Value {
        let mut doc = a.clone();
        json_patch::patch(&mut doc, &p.to_json_patch()).unwrap();
        doc
    }

    fn paths(p: &Patch, op: &str) -> Vec<String> {
        let v = serde_json::to_value(p).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == op)
            .map(|o| o["path"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_removed_named_element_is_one_remove_and_the_rest_stay_put() {
        let a = json!({"volumes": [{"name": "data", "emptyDir": {}}, {"name": "kube-api-access-x", "projected": {}},
            {"name": "cfg", "configMap": {"name": "c"}}]});
        let b = json!({"volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "ours", "projected": {}}]});
        let p = diff_values(&a, &b).unwrap();
        assert_eq!(paths(&p, "remove"), ["/volumes/1"]);
        assert_eq!(paths(&p, "add"), ["/volumes/2"]);
        assert_eq!(paths(&p, "replace"), Vec::<String>::new());
        assert_eq!(applied(&a, &p), b);
    }

    #[test]
    fn a_reordered_element_is_moved_not_removed() {
        let a = json!({"env": [{"name": "ATTRS", "value": "x=1"}, {"name": "A"}, {"name": "B"}, {"name": "C"}]});
        let b = json!({"env": [{"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "NEW"},
            {"name": "ATTRS", "value": "x=1,y=2"}]});
        let p = diff_values(&a, &b).unwrap();
        assert_eq!(applied(&a, &p), b);
        assert!(paths(&p, "remove").is_empty());
        assert_eq!(paths(&p, "move"), ["/env/3"]);
    }

    #[test]
    fn lists_without_a_key_are_diffed_by_index() {
        let a = json!({"args": ["a", "b", "c"], "m": [{"name": "x"}, {"name": "x"}]});
        let b =
            json!({"args": ["a", "c"], "m": [{"name": "x"}, {"name": "x", "v": 1}, {"name": "y"}]});
        assert_eq!(applied(&a, &diff_values(&a, &b).unwrap()), b);
    }

    #[test]
    fn reordered_lists_round_trip() {
        let names = |v: &[&str]| json!(v.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
        let cases: [(&[&str], &[&str]); 5] = [
            (&["a", "b", "c", "d"], &["d", "c", "b", "a"]),
            (&["a", "b", "c"], &["c", "a", "x", "b"]),
            (&["a"], &[]),
            (&[], &["a", "b"]),
            (&["a", "b", "c", "d", "e"], &["b", "e", "a", "c", "f"]),
        ];
        let cases = cases.into_iter().chain([
            (
                &["e", "d", "x", "a", "c", "b"][..],
                &["a", "b", "y", "c", "d", "e"][..],
            ),
            (
                &["a", "b", "c", "d", "e", "f"],
                &["f", "a", "e", "b", "d", "c"],
            ),
        ]);
        for (x, y) in cases {
            let (a, b) = (names(x), names(y));
            assert_eq!(
                applied(&a, &diff_values(&a, &b).unwrap()),
                b,
                "{x:?} -> {y:?}"
            );
        }
    }

    /// A list before and after, as (name, value or path) pairs.
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
    );

    fn assert_typed_diff_is_json_diff<T: Named + std::fmt::Debug>(a: &[T], b: &[T]) {
        let mut typed = Vec::new();
        diff_list(a, b, &mut PointerBuf::new(), &mut typed).unwrap();
        let json = diff_values(
            &serde_json::to_value(a).unwrap(),
            &serde_json::to_value(b).unwrap(),
        )
        .unwrap();
        assert_eq!(typed, json.0, "{a:?} -> {b:?}");
    }

    #[test]
    fn a_changed_volume_is_replaced_whole_never_beside_its_old_source() {
        // As `upsert_volume` does: the mutation's volume takes the old one's place whole.
        let raw = json!([{"name": "keep", "emptyDir": {}},
                         {"name": "token", "emptyDir": {"medium": "Memory"}}]);
        let a: Vec<Volume> = serde_json::from_value(raw.clone()).unwrap();
        let mut b = a.clone();
        b[1] = Volume {
            name: "token".into(),
            secret: Some(k8s_openapi::api::core::v1::SecretVolumeSource {
                secret_name: Some("s".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut ops = Vec::new();
        diff_list(&a, &b, &mut PointerBuf::new(), &mut ops).unwrap();
        assert_eq!(paths(&Patch(ops.clone()), "replace"), ["/1"]);
        assert_eq!(ops.len(), 1);
        let mut doc = raw;
        json_patch::patch(&mut doc, &json_patch_of(&ops)).unwrap();
        assert_eq!(
            doc,
            json!([{"name": "keep", "emptyDir": {}}, {"name": "token", "secret": {"secretName": "s"}}])
        );
    }

    #[test]
    fn typed_lists_give_the_same_operations_as_their_json() {
        let env = |v: &[(&str, &str)]| -> Vec<EnvVar> {
            v.iter()
                .map(|(n, x)| EnvVar {
                    name: n.to_string(),
                    value: Some(x.to_string()),
                    ..Default::default()
                })
                .collect()
        };
        let cases: [Case; 7] = [
            (
                &[("a", "1"), ("b", "2")],
                &[("a", "1"), ("b", "3"), ("c", "4")],
            ),
            // Appends, with unique and with repeated names.
            (&[("a", "1")], &[("a", "1"), ("b", "2"), ("c", "3")]),
            (
                &[("a", "1"), ("a", "2")],
                &[("a", "1"), ("a", "2"), ("b", "0")],
            ),
            (
                &[("a", "1"), ("b", "2"), ("c", "3")],
                &[("c", "3"), ("a", "9")],
            ),
            (
                &[("a", "1"), ("a", "2")],
                &[("a", "1"), ("a", "3"), ("b", "0")],
            ),
            (&[], &[("x", "1")]),
            (&[("x", "1")], &[]),
        ];
        for (x, y) in cases {
            assert_typed_diff_is_json_diff(&env(x), &env(y));
        }
        // Mounts: by name while names are unique, by mountPath when one volume is mounted
        // twice, by index when neither is unique.
        let mounts = |v: &[(&str, &str)]| -> Vec<VolumeMount> {
            v.iter()
                .map(|(n, p)| VolumeMount {
                    name: n.to_string(),
                    mount_path: p.to_string(),
                    ..Default::default()
                })
                .collect()
        };
        let cases: [Case; 3] = [
            (&[("v", "/a"), ("w", "/b")], &[("w", "/b"), ("v", "/c")]),
            (
                &[("v", "/a"), ("v", "/b")],
                &[("v", "/b"), ("v", "/a"), ("w", "/c")],
            ),
            (&[("v", "/a"), ("v", "/a")], &[("v", "/a"), ("w", "/a")]),
        ];
        for (x, y) in cases {
            assert_typed_diff_is_json_diff(&mounts(x), &mounts(y));
        }
    }
}
