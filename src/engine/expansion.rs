//! `$(VAR)` references, expanded as the kubelet expands them, so that a check judges the text
//! the container will hold rather than the text the manifest shows.
//!
//! The kubelet's rules (its `expansion` package, which env values, `command` and `args` go
//! through):
//! - `$(NAME)` is replaced by the value of `NAME` when the mapping knows it, and left as
//!   written when it does not;
//! - `$$` is one literal `$` (so `$$(NAME)` is the literal text `$(NAME)`);
//! - a `$(` that never closes, and a `$` before any other character, stay as written;
//! - the name is everything between `$(` and the first `)` after it.
//!
//! An env value sees only the variables defined before it in the list, and those `envFrom`
//! defines; `command` and `args` see the whole list; a probe's `exec` command sees each env
//! var's value as written, unexpanded. The engine knows the values written in the pod; a
//! value drawn from a Secret, a ConfigMap, the downward API, `envFrom` or a Service link is
//! known only at run time. Each text is therefore read twice (see [`EnvValues`]): with the
//! unknown references left as written (what the kubelet gives when they are undefined), and
//! with them removed (what it gives when they are defined and empty, the shape of
//! `"$(EMPTY)ghp_..."`).
//!
//! Nothing here allocates for a text without a `$`.

use k8s_openapi::api::core::v1::EnvVar;
use std::borrow::Cow;

/// The most bytes one expanded text may have. Each variable may name earlier ones several
/// times, so a short list can describe an enormous value; one longer than this could not be
/// passed to a process anyway (Linux caps the environment and arguments together at a few
/// MiB), and is read only with its unknown references removed.
pub const MAX_EXPANDED: usize = 256 * 1024;

/// Whether `text` holds anything expansion could change (a `$` followed by `(` or `$`).
pub fn has_reference(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(at) = b[from..].iter().position(|&c| c == b'$') {
        let i = from + at;
        if matches!(b.get(i + 1), Some(b'(' | b'$')) {
            return true;
        }
        from = i + 1;
    }
    false
}

/// Expands `input` by the kubelet's rules, `mapping` answering the value of each name it
/// knows. `None` when the result would be longer than `max` bytes. Borrows `input` when
/// nothing changes.
pub fn expand<'i, 'm>(
    input: &'i str,
    max: usize,
    mut mapping: impl FnMut(&str) -> Option<&'m str>,
) -> Option<Cow<'i, str>> {
    let bytes = input.as_bytes();
    let Some(first) = bytes.iter().position(|&c| c == b'$') else {
        return Some(Cow::Borrowed(input));
    };
    let mut out = String::new();
    let mut changed = false;
    let mut checkpoint = 0;
    let mut cursor = first;
    while cursor < bytes.len() {
        if bytes[cursor] != b'$' || cursor + 1 == bytes.len() {
            cursor += 1;
            continue;
        }
        out.push_str(&input[checkpoint..cursor]);
        match bytes[cursor + 1] {
            b'$' => {
                out.push('$');
                changed = true;
                cursor += 2;
            }
            b'(' => {
                let after = &input[cursor + 2..];
                match after.find(')') {
                    Some(end) => {
                        let name = &after[..end];
                        match mapping(name) {
                            Some(value) => {
                                out.push_str(value);
                                changed = true;
                            }
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        cursor += 2 + end + 1;
                    }
                    None => {
                        out.push_str("$(");
                        cursor += 2;
                    }
                }
            }
            _ => {
                // `$` and the character after it, as written.
                let width = input[cursor + 1..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&input[cursor..cursor + 1 + width]);
                cursor += 1 + width;
            }
        }
        checkpoint = cursor;
        if out.len() > max {
            return None;
        }
    }
    if !changed {
        return Some(Cow::Borrowed(input));
    }
    out.push_str(&input[checkpoint..]);
    (out.len() <= max).then_some(Cow::Owned(out))
}

/// Every reference removed (`$$` still one `$`): the text as it reads when every variable it
/// names is empty.
pub fn without_references(input: &str) -> Cow<'_, str> {
    expand(input, usize::MAX, |_| Some("")).unwrap_or(Cow::Borrowed(input))
}

/// The values a container's env vars take, as far as the pod tells them.
///
/// For each var, two readings: [`EnvValues::expanded`] substitutes the vars defined earlier
/// with a value written in the pod and leaves every other reference as written;
/// [`EnvValues::unknowns_removed`] also removes those others (as if each were empty). A var
/// whose value comes from `valueFrom` has neither. When no value holds a reference, both
/// are the values as written and nothing is allocated.
pub struct EnvValues<'a> {
    env: &'a [EnvVar],
    /// Entry `i` for `env[i]`; both empty when no value holds a reference.
    expanded: Vec<Option<Cow<'a, str>>>,
    removed: Vec<Option<Cow<'a, str>>>,
}

/// The value written in the pod for a var without `valueFrom` (`""` when absent, which the
/// kubelet defines as empty).
fn written(e: &EnvVar) -> Option<&str> {
    e.value_from
        .is_none()
        .then(|| e.value.as_deref().unwrap_or(""))
}

/// The last var named `name` in `env`, by index.
fn last_named(env: &[EnvVar], name: &str) -> Option<usize> {
    env.iter().rposition(|e| e.name == name)
}

impl<'a> EnvValues<'a> {
    pub fn new(env: &'a [EnvVar]) -> Self {
        let mut out = EnvValues {
            env,
            expanded: Vec::new(),
            removed: Vec::new(),
        };
        if !env.iter().any(|e| written(e).is_some_and(has_reference)) {
            return out;
        }
        out.expanded.reserve(env.len());
        out.removed.reserve(env.len());
        for (i, e) in env.iter().enumerate() {
            let (expanded, removed) = match written(e) {
                None => (None, None),
                Some(raw) => {
                    let earlier = &env[..i];
                    let known = |name: &str| {
                        let j = last_named(earlier, name)?;
                        out.expanded[j].as_deref()
                    };
                    let expanded = expand(raw, MAX_EXPANDED, known);
                    let removed = expand(raw, MAX_EXPANDED, |name: &str| {
                        match last_named(earlier, name) {
                            Some(j) => out.removed[j].as_deref().or(Some("")),
                            None => Some(""),
                        }
                    })
                    .or_else(|| Some(without_references(raw)));
                    (expanded, removed)
                }
            };
            out.expanded.push(expanded);
            out.removed.push(removed);
        }
        out
    }

    /// Whether some value holds a reference (only then do the two readings differ from the
    /// values as written).
    pub fn has_references(&self) -> bool {
        !self.expanded.is_empty()
    }

    /// `env[i]`'s value with the references to earlier vars of known value substituted;
    /// `None` for `valueFrom` (or a value that would be too long).
    pub fn expanded(&self, i: usize) -> Option<&str> {
        if self.expanded.is_empty() {
            return self.env.get(i).and_then(written);
        }
        self.expanded.get(i)?.as_deref()
    }

    /// `env[i]`'s value with every reference of unknown value removed.
    pub fn unknowns_removed(&self, i: usize) -> Option<&str> {
        if self.removed.is_empty() {
            return self.env.get(i).and_then(written);
        }
        self.removed.get(i)?.as_deref()
    }

    /// `command` or `args` as the kubelet expands them with the whole env: each word with
    /// known references substituted, then with unknown ones removed too. Borrowed words
    /// (no allocation) where a word holds no reference.
    pub fn command_readings<'s>(&'s self, words: &'s [String]) -> [Vec<Cow<'s, str>>; 2] {
        let known = |name: &str| self.expanded(last_named(self.env, name)?);
        let removed = |name: &str| match last_named(self.env, name) {
            Some(j) => self.unknowns_removed(j).or(Some("")),
            None => Some(""),
        };
        let read = |w: &'s String, f: &dyn Fn(&str) -> Option<&'s str>| {
            expand(w, MAX_EXPANDED, f).unwrap_or_else(|| without_references(w))
        };
        [
            words.iter().map(|w| read(w, &known)).collect(),
            words.iter().map(|w| read(w, &removed)).collect(),
        ]
    }

    /// A probe's `exec` command as the kubelet expands it: with each env var's value as
    /// written (`""` for `valueFrom`), unexpanded; then with unknown references removed.
    pub fn static_command_readings<'s>(&'s self, words: &'s [String]) -> [Vec<Cow<'s, str>>; 2] {
        let raw = |name: &str| {
            let e = &self.env[last_named(self.env, name)?];
            Some(e.value.as_deref().unwrap_or(""))
        };
        let removed = |name: &str| raw(name).or(Some(""));
        let read = |w: &'s String, f: &dyn Fn(&str) -> Option<&'s str>| {
            expand(w, MAX_EXPANDED, f).unwrap_or_else(|| without_references(w))
        };
        [
            words.iter().map(|w| read(w, &raw)).collect(),
            words.iter().map(|w| read(w, &removed)).collect(),
        ]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The kubelet's rules as a table: input, then the expansion with `VAR=value`,
    /// `EMPTY=` and `NESTED=$(VAR)` (already expanded values are never expanded again)
    /// defined and nothing else.
    #[test]
    fn expands_as_the_kubelet_does() {
        let vars: HashMap<&str, &str> =
            HashMap::from([("VAR", "value"), ("EMPTY", ""), ("NESTED", "$(VAR)")]);
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("plain text", "plain text"),
            ("$(VAR)", "value"),
            ("a$(VAR)b", "avalueb"),
            ("$(VAR)$(VAR)", "valuevalue"),
            ("$(EMPTY)ghp_abc", "ghp_abc"),
            ("--key=$(EMPTY)sk-ant", "--key=sk-ant"),
            // Undefined: left as written.
            ("$(UNDEFINED)", "$(UNDEFINED)"),
            ("x$(UNDEFINED)y$(VAR)", "x$(UNDEFINED)yvalue"),
            // `$$` escapes the operator.
            ("$$(VAR)", "$(VAR)"),
            ("$$$(VAR)", "$value"),
            ("$$$$", "$$"),
            ("a$$b", "a$b"),
            // A `$` before anything else, or at the end, stays.
            ("$VAR", "$VAR"),
            ("${VAR}", "${VAR}"),
            ("cost: 5$", "cost: 5$"),
            ("$", "$"),
            ("$é", "$é"),
            // An opener that never closes stays, and what follows is read on.
            ("$(VAR", "$(VAR"),
            ("$($(VAR)", "$($(VAR)"),
            ("a$(b", "a$(b"),
            // The name runs to the first `)`.
            ("$($(VAR))", "$($(VAR))"),
            ("$()", "$()"),
            ("$(VAR))", "value)"),
            // Substituted text is not expanded again.
            ("$(NESTED)", "$(VAR)"),
            ("$(VA R)", "$(VA R)"),
        ];
        for (input, want) in cases {
            let got = expand(input, MAX_EXPANDED, |n| vars.get(n).copied()).unwrap();
            assert_eq!(got, *want, "expanding {input:?}");
        }
    }

    #[test]
    fn borrows_what_expansion_leaves_unchanged() {
        for input in ["no dollar", "$(UNDEFINED) only", "$x", "end$"] {
            assert!(matches!(
                expand(input, MAX_EXPANDED, |_| None),
                Some(Cow::Borrowed(_))
            ));
        }
        assert!(!has_reference("$HOME and ${X} and 5$"));
        assert!(has_reference("a$(B)") && has_reference("$$"));
    }

    #[test]
    fn a_result_past_the_limit_is_refused() {
        let big = "x".repeat(100);
        assert!(expand("$(B)$(B)", 150, |_| Some(big.as_str())).is_none());
        assert!(expand("$(B)", 150, |_| Some(big.as_str())).is_some());
        assert_eq!(without_references("$(A)ghp_$(B)x$$"), "ghp_x$");
    }

    fn env(pairs: &[(&str, Option<&str>)]) -> Vec<EnvVar> {
        pairs
            .iter()
            .map(|(n, v)| EnvVar {
                name: n.to_string(),
                value: v.map(str::to_string),
                value_from: v.is_none().then(Default::default),
            })
            .collect()
    }

    #[test]
    fn env_values_see_only_earlier_vars_and_read_unknowns_two_ways() {
        // `None`: valueFrom (known only at run time).
        let e = env(&[
            ("LATE_USE", Some("$(EMPTY)early")),
            ("EMPTY", Some("")),
            ("FROM_SECRET", None),
            ("TOKEN", Some("$(EMPTY)ghp_x")),
            ("MIXED", Some("$(FROM_SECRET)-$(UNDEFINED)-$(TOKEN)")),
            ("CHAIN", Some("$(MIXED)")),
        ]);
        let v = EnvValues::new(&e);
        assert!(v.has_references());
        // EMPTY is defined after LATE_USE: left as written.
        assert_eq!(v.expanded(0), Some("$(EMPTY)early"));
        assert_eq!(v.unknowns_removed(0), Some("early"));
        assert_eq!(v.expanded(2), None);
        assert_eq!(v.expanded(3), Some("ghp_x"));
        assert_eq!(v.expanded(4), Some("$(FROM_SECRET)-$(UNDEFINED)-ghp_x"));
        assert_eq!(v.unknowns_removed(4), Some("--ghp_x"));
        assert_eq!(v.expanded(5), Some("$(FROM_SECRET)-$(UNDEFINED)-ghp_x"));
        assert_eq!(v.unknowns_removed(5), Some("--ghp_x"));

        let args = vec!["--token=$(TOKEN)".to_string(), "$(LATE_USE)".to_string()];
        let [known, removed] = v.command_readings(&args);
        assert_eq!(known, ["--token=ghp_x", "$(EMPTY)early"]);
        assert_eq!(removed, ["--token=ghp_x", "early"]);
        // A probe sees the values as written.
        let [known, removed] = v.static_command_readings(&args);
        assert_eq!(known, ["--token=$(EMPTY)ghp_x", "$(EMPTY)early"]);
        assert_eq!(removed, known);
    }

    #[test]
    fn env_without_references_allocates_nothing() {
        let e = env(&[("A", Some("1")), ("B", None), ("C", Some("$HOME"))]);
        let v = EnvValues::new(&e);
        assert!(!v.has_references());
        assert_eq!(v.expanded(0), Some("1"));
        assert_eq!(v.expanded(1), None);
        assert_eq!(v.unknowns_removed(2), Some("$HOME"));
        let words = vec!["plain".to_string()];
        assert!(matches!(v.command_readings(&words)[0][0], Cow::Borrowed(_)));
    }

    #[test]
    fn a_doubling_chain_stays_bounded() {
        let mut pairs = vec![("V0".to_string(), "ghp_0123456789abcdef".to_string())];
        for i in 1..64 {
            pairs.push((format!("V{i}"), format!("$(V{})$(V{})", i - 1, i - 1)));
        }
        let e: Vec<EnvVar> = pairs
            .iter()
            .map(|(n, v)| EnvVar {
                name: n.clone(),
                value: Some(v.clone()),
                value_from: None,
            })
            .collect();
        let v = EnvValues::new(&e);
        // Past the limit a var reads as unknown: left as written where it is named.
        assert!((0..64).any(|i| v.expanded(i).is_none()));
        for i in 0..64 {
            assert!(
                v.expanded(i).is_none_or(|s| s.len() <= MAX_EXPANDED),
                "V{i}"
            );
            assert!(
                v.unknowns_removed(i)
                    .is_some_and(|s| s.len() <= MAX_EXPANDED)
            );
        }
    }
}
