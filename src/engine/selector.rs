//! Label-selector matching as the Kubernetes API defines it, shared by agent selection,
//! NetworkPolicy pod and namespace selectors, and the policy's namespace rules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use std::collections::BTreeMap;

/// Labels of an object; an absent map behaves as an empty one.
pub type Labels = BTreeMap<String, String>;

static EMPTY: Labels = BTreeMap::new();

/// The labels of an object, or an empty map.
pub fn labels_of(labels: Option<&Labels>) -> &Labels {
    labels.unwrap_or(&EMPTY)
}

/// Whether `selector` selects an object with `labels`. An empty selector selects everything,
/// as in NetworkPolicy `podSelector: {}`. An operator the API does not know selects nothing,
/// which is the safe reading for a policy that is meant to restrict.
pub fn matches(selector: &LabelSelector, labels: &Labels) -> bool {
    if let Some(ml) = &selector.match_labels {
        for (k, v) in ml {
            if labels.get(k) != Some(v) {
                return false;
            }
        }
    }
    if let Some(exprs) = &selector.match_expressions {
        for e in exprs {
            if !requirement_matches(e, labels) {
                return false;
            }
        }
    }
    true
}

fn requirement_matches(req: &LabelSelectorRequirement, labels: &Labels) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Whether everything `narrow` selects is also selected by `wide`, judged from the two
/// selectors alone (no list of objects needed): each requirement of `wide` must follow from a
/// requirement of `narrow` on the same key. Sound but not complete: a `false` may be a
/// subset that this reasoning cannot see, never the other way round.
pub fn implies(narrow: &LabelSelector, wide: &LabelSelector) -> bool {
    let reqs = |s: &LabelSelector| -> Vec<(String, String, Vec<String>)> {
        let mut out: Vec<_> = s
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), "In".to_string(), vec![v.clone()]))
            .collect();
        out.extend(s.match_expressions.iter().flatten().map(|e| {
            (
                e.key.clone(),
                e.operator.clone(),
                e.values.clone().unwrap_or_default(),
            )
        }));
        out
    };
    let have = reqs(narrow);
    reqs(wide).iter().all(|(key, op, values)| {
        have.iter()
            .filter(|(k, _, _)| k == key)
            .any(|(_, hop, hvals)| {
                let subset = || !hvals.is_empty() && hvals.iter().all(|v| values.contains(v));
                let disjoint = || !hvals.is_empty() && hvals.iter().all(|v| !values.contains(v));
                match (op.as_str(), hop.as_str()) {
                    ("In", "In") => subset(),
                    ("NotIn", "In") => disjoint(),
                    ("NotIn", "NotIn") => values.iter().all(|v| hvals.contains(v)),
                    ("NotIn", "DoesNotExist") => true,
                    ("Exists", "In") => !hvals.is_empty(),
                    ("Exists", "Exists") => true,
                    ("DoesNotExist", "DoesNotExist") => true,
                    _ => false,
                }
            })
    })
}

/// Whether the selector is empty (selects everything).
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty())
}

/// A short human form of a selector, for messages: `app=openclaw,tier In (a,b)`.
pub fn describe(selector: &LabelSelector) -> String {
    let mut parts = Vec::new();
    if let Some(ml) = &selector.match_labels {
        parts.extend(ml.iter().map(|(k, v)| format!("{k}={v}")));
    }
    if let Some(exprs) = &selector.match_expressions {
        for e in exprs {
            match e.operator.as_str() {
                "Exists" => parts.push(e.key.clone()),
                "DoesNotExist" => parts.push(format!("!{}", e.key)),
                op => parts.push(format!(
                    "{} {} ({})",
                    e.key,
                    op,
                    e.values.as_deref().unwrap_or(&[]).join(",")
                )),
            }
        }
    }
    if parts.is_empty() {
        "<all>".to_string()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn empty_selector_selects_everything() {
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        assert!(matches(&LabelSelector::default(), &labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_need_every_pair() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "openclaw"), ("tier", "agent")])),
            ..Default::default()
        };
        assert!(matches(
            &sel,
            &labels(&[("app", "openclaw"), ("tier", "agent"), ("x", "y")])
        ));
        assert!(!matches(&sel, &labels(&[("app", "openclaw")])));
    }

    #[test]
    fn expressions_follow_api_semantics() {
        let l = labels(&[("app", "openclaw")]);
        let sel = |e| LabelSelector {
            match_expressions: Some(vec![e]),
            ..Default::default()
        };
        assert!(matches(&sel(expr("app", "In", &["openclaw", "x"])), &l));
        assert!(!matches(&sel(expr("app", "In", &["x"])), &l));
        assert!(matches(&sel(expr("app", "NotIn", &["x"])), &l));
        assert!(matches(&sel(expr("missing", "NotIn", &["x"])), &l));
        assert!(!matches(&sel(expr("app", "NotIn", &["openclaw"])), &l));
        assert!(matches(&sel(expr("app", "Exists", &[])), &l));
        assert!(!matches(&sel(expr("app", "DoesNotExist", &[])), &l));
        assert!(matches(&sel(expr("other", "DoesNotExist", &[])), &l));
        assert!(!matches(&sel(expr("app", "Bogus", &[])), &l));
    }

    #[test]
    fn implication_between_selectors() {
        let sel = |v: serde_json::Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        let team = sel(serde_json::json!({"matchLabels": {"team": "obs"}}));
        let team_and_env = sel(serde_json::json!({"matchLabels": {"team": "obs", "env": "prod"}}));
        assert!(implies(&team_and_env, &team));
        assert!(!implies(&team, &team_and_env));
        assert!(implies(&team, &LabelSelector::default()));
        assert!(!implies(&LabelSelector::default(), &team));
        let in_two = sel(
            serde_json::json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["obs", "ml"]}]}),
        );
        assert!(implies(&team, &in_two));
        assert!(!implies(&in_two, &team));
        let exists =
            sel(serde_json::json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]}));
        assert!(implies(&in_two, &exists));
        let not_dev = sel(
            serde_json::json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}),
        );
        assert!(implies(&team_and_env, &not_dev));
        assert!(!implies(&team, &not_dev));
    }
}
