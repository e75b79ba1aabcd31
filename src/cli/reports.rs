//! The policy reports `audit --write-reports` keeps up to date: OpenReports
//! (`openreports.io/v1alpha1` `Report` per namespace, `ClusterReport` summary) and the policy
//! working group's older API (`wgpolicyk8s.io/v1alpha2` `PolicyReport`,
//! `ClusterPolicyReport`), which report viewers (Policy Reporter, Kyverno's and Kubewarden's
//! UIs) read through discovery.
//!
//! Which API is written: OpenReports where it is served, else `wgpolicyk8s.io` where that is;
//! `--report-api` names one or both, and then an API that is not served is an error.
//!
//! Every report object stays under a byte bound (`--report-max-bytes`, 512 KiB by default,
//! about a third of etcd's 1.5 MiB request limit): a namespace whose results do not fit is
//! written in numbered parts (`openclaw-admission`, `openclaw-admission-2`, ...), its results
//! ordered by owning workload so that one workload's results stay together where they fit.
//! Each part's summary counts its own results, so the parts of a namespace add up to its
//! totals. Parts this run did not write (a namespace that shrank or has no agents left) are
//! deleted, found by the `app.kubernetes.io/managed-by` label.
//!
//! Results are serialized once, as they are made, and kept as raw JSON until their part is
//! sent: a namespace of 50,000 results holds their JSON text, not a tree of values.

use super::findings::{Finding, Report};
use crate::cluster::dynamic::OptionalApi;
use anyhow::{Context as _, bail};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Name of the first part of every report, the field manager, and the `source` of results.
pub const REPORT_NAME: &str = "openclaw-admission";
/// The label every report this command writes carries; stale parts are found by it.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Which part of how many an object is, as labels, for `kubectl get reports -l`.
const PART_LABEL: &str = "openclaw.io/report-part";
const PARTS_LABEL: &str = "openclaw.io/report-parts";
const CATEGORY: &str = "OpenClaw agent box";

/// The default bound of one report object, in bytes of JSON.
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024;
/// The smallest bound accepted: room for the object's own fields and a result or two.
pub const MIN_MAX_BYTES: usize = 2 * 1024;
/// Bytes kept free in every part for what is not known while packing: the summary's counts,
/// the part's name suffix and its labels (each bounded well below this).
const SLACK: usize = 256;

/// Which report API to write (`--report-api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportApi {
    /// `openreports.io/v1alpha1` Report and ClusterReport.
    Openreports,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
    Wgpolicyk8s,
    /// Both.
    Both,
}

/// One report API: its namespaced and cluster-scoped kinds.
#[derive(Debug)]
pub struct Flavour {
    pub namespaced: OptionalApi,
    pub cluster: OptionalApi,
    /// OpenReports names the source at the top level as well as in each result.
    top_level_source: bool,
}

const NOT_WRITTEN: fn() -> String = || "no reports of this API are written".to_string();

pub const OPENREPORTS: Flavour = Flavour {
    namespaced: OptionalApi {
        kind: "Report",
        group: "openreports.io",
        version: "v1alpha1",
        plural: "reports",
        unjudged: NOT_WRITTEN,
    },
    cluster: OptionalApi {
        kind: "ClusterReport",
        group: "openreports.io",
        version: "v1alpha1",
        plural: "clusterreports",
        unjudged: NOT_WRITTEN,
    },
    top_level_source: true,
};

pub const WGPOLICYK8S: Flavour = Flavour {
    namespaced: OptionalApi {
        kind: "PolicyReport",
        group: "wgpolicyk8s.io",
        version: "v1alpha2",
        plural: "policyreports",
        unjudged: NOT_WRITTEN,
    },
    cluster: OptionalApi {
        kind: "ClusterPolicyReport",
        group: "wgpolicyk8s.io",
        version: "v1alpha2",
        plural: "clusterpolicyreports",
        unjudged: NOT_WRITTEN,
    },
    top_level_source: false,
};

/// What one result says of its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Warn,
}

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub error: usize,
    pub skip: usize,
}

impl Summary {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Warn => self.warn += 1,
        }
    }
}

/// One report object as sent: the results are raw JSON made once.
#[derive(Debug, Serialize)]
pub struct ReportObject<'a> {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: &'static str,
    metadata: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    pub summary: Summary,
    results: Vec<&'a RawValue>,
}

impl ReportObject<'_> {
    pub fn name(&self) -> &str {
        self.metadata["name"].as_str().unwrap_or(REPORT_NAME)
    }
}

fn severity(tier: crate::engine::violation::Tier) -> &'static str {
    use crate::engine::violation::Tier;
    match tier {
        Tier::High => "high",
        Tier::Medium => "medium",
        Tier::Low => "low",
    }
}

/// A result's properties, with the Sandbox and SandboxClaim of a Pod agent-sandbox made.
fn properties(f: &Finding, mut p: serde_json::Value) -> serde_json::Value {
    if let Some(s) = &f.sandbox {
        p["sandbox"] = s.as_str().into();
    }
    if let Some(c) = &f.sandbox_claim {
        p["sandboxClaim"] = c.as_str().into();
    }
    p
}

/// The results of one finding: one per violation, or one `pass`. `policy` and `rule` are the
/// check id (`agent-box` for an object that passes them all); `properties` carry the owning
/// workload, the path and the fix, for viewers that filter by them.
fn results_of(f: &Finding, now: i64) -> serde_json::Result<Vec<(Box<RawValue>, Outcome)>> {
    let resource = json!({"apiVersion": f.api_version, "kind": f.kind, "namespace": f.namespace,
        "name": f.name, "uid": f.uid});
    let timestamp = json!({"seconds": now, "nanos": 0});
    if f.violations.is_empty() {
        let r = json!({"source": REPORT_NAME, "policy": "agent-box", "rule": "agent-box",
            "category": CATEGORY, "result": "pass", "scored": true, "timestamp": timestamp,
            "message": "passes every check", "resources": [resource],
            "properties": properties(f, json!({"workload": f.workload, "mode": f.mode}))});
        return Ok(vec![(serde_json::value::to_raw_value(&r)?, Outcome::Pass)]);
    }
    let mut out = Vec::with_capacity(f.violations.len());
    for j in &f.violations {
        // A refusal now, or one under enforce, fails; what enforce would only warn about warns.
        let outcome = if j.action == crate::engine::policy::Action::Deny || f.refused_if_enforced {
            Outcome::Fail
        } else {
            Outcome::Warn
        };
        let r = json!({"source": REPORT_NAME, "policy": j.violation.check,
            "rule": j.violation.check, "category": CATEGORY,
            "severity": severity(j.violation.tier),
            "result": if outcome == Outcome::Fail { "fail" } else { "warn" },
            "scored": true, "timestamp": timestamp, "message": j.violation.message,
            "resources": [resource],
            "properties": properties(f, json!({"workload": f.workload, "path": j.violation.path,
                "fix": j.violation.fix, "mode": f.mode}))});
        out.push((serde_json::value::to_raw_value(&r)?, outcome));
    }
    Ok(out)
}

/// The name of part `n` (1-based) of a report.
fn part_name(n: usize) -> String {
    if n == 1 {
        REPORT_NAME.to_string()
    } else {
        format!("{REPORT_NAME}-{n}")
    }
}

/// Packs `results` into report objects of at most `max_bytes` of JSON each, in order.
/// `namespace` is `None` for the cluster-scoped kind. A single result larger than the bound
/// is an error naming its object.
fn pack<'a>(
    api: &OptionalApi,
    top_level_source: bool,
    namespace: Option<&str>,
    results: &'a [(Box<RawValue>, Outcome)],
    max_bytes: usize,
) -> anyhow::Result<Vec<ReportObject<'a>>> {
    let make = |n: usize, parts: usize, results: Vec<&'a RawValue>, summary: Summary| {
        let mut metadata = json!({"name": part_name(n), "labels": {MANAGED_BY: REPORT_NAME,
            PART_LABEL: n.to_string(), PARTS_LABEL: parts.to_string()}});
        if let Some(ns) = namespace {
            metadata["namespace"] = ns.into();
        }
        ReportObject {
            api_version: api.api_version(),
            kind: api.kind,
            metadata,
            source: top_level_source.then_some(REPORT_NAME),
            summary,
            results,
        }
    };
    // The object without results; SLACK covers the counts, the suffix and the labels.
    let base = serde_json::to_vec(&make(1, 1, Vec::new(), Summary::default()))?.len() + SLACK;
    let room = max_bytes.saturating_sub(base);
    let mut groups: Vec<(Vec<&'a RawValue>, Summary)> = Vec::new();
    let mut used = room; // forces a first group
    for (raw, outcome) in results {
        let size = raw.get().len() + 1; // and its comma
        if size > room {
            let v: Value = serde_json::from_str(raw.get())?;
            let o = &v["resources"][0];
            bail!(
                "the {} result of {} {}/{} is {size} bytes, more than a report of --report-max-bytes {max_bytes} holds beside its own fields",
                v["rule"].as_str().unwrap_or("?"),
                o["kind"].as_str().unwrap_or("?"),
                o["namespace"].as_str().unwrap_or(""),
                o["name"].as_str().unwrap_or("?"),
            );
        }
        if used + size > room {
            groups.push((Vec::new(), Summary::default()));
            used = 0;
        }
        used += size;
        if let Some((rs, summary)) = groups.last_mut() {
            rs.push(raw);
            summary.add(*outcome);
        }
    }
    let parts = groups.len();
    let objects: Vec<ReportObject<'a>> = groups
        .into_iter()
        .enumerate()
        .map(|(i, (rs, summary))| make(i + 1, parts, rs, summary))
        .collect();
    for o in &objects {
        let bytes = serde_json::to_vec(o)?.len();
        if bytes > max_bytes {
            // The slack is sized so that this cannot happen; if it does, say so rather than
            // send an object past the bound.
            bail!(
                "{} {} came to {bytes} bytes, past --report-max-bytes {max_bytes}",
                api.kind,
                o.name()
            );
        }
    }
    Ok(objects)
}

/// The results of one namespace's findings, ordered by owning workload, then kind and name.
pub fn namespace_results(
    findings: &[&Finding],
    now: i64,
) -> serde_json::Result<Vec<(Box<RawValue>, Outcome)>> {
    let mut sorted: Vec<&&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| (&a.workload, &a.kind, &a.name).cmp(&(&b.workload, &b.kind, &b.name)));
    let mut out = Vec::new();
    for f in sorted {
        out.extend(results_of(f, now)?);
    }
    Ok(out)
}

/// The namespaced report of one namespace, in as many parts as the bound needs.
pub fn namespace_parts<'a>(
    flavour: &Flavour,
    ns: &str,
    results: &'a [(Box<RawValue>, Outcome)],
    max_bytes: usize,
) -> anyhow::Result<Vec<ReportObject<'a>>> {
    pack(
        &flavour.namespaced,
        flavour.top_level_source,
        Some(ns),
        results,
        max_bytes,
    )
}

/// The cluster summary's results: one per namespace, failing where enforce would refuse.
pub fn cluster_results(r: &Report, now: i64) -> serde_json::Result<Vec<(Box<RawValue>, Outcome)>> {
    r.by_namespace
        .iter()
        .map(|(ns, c)| {
            let outcome = if c.refused_if_enforced > 0 {
                Outcome::Fail
            } else {
                Outcome::Pass
            };
            let v = json!({"source": REPORT_NAME, "policy": "namespace-summary",
                "rule": "namespace-summary", "category": CATEGORY,
                "result": if outcome == Outcome::Fail { "fail" } else { "pass" },
                "message": format!("namespace {ns}: {} agent object(s), {} violation(s), {} refused now, {} refused under enforce",
                    c.objects, c.violations, c.refused_now, c.refused_if_enforced),
                "scored": true, "timestamp": {"seconds": now, "nanos": 0},
                "resources": [{"apiVersion": "v1", "kind": "Namespace", "name": ns}],
                "properties": {"objects": c.objects.to_string(), "violations": c.violations.to_string(),
                    "refusedNow": c.refused_now.to_string(),
                    "refusedUnderEnforce": c.refused_if_enforced.to_string()}});
            Ok((serde_json::value::to_raw_value(&v)?, outcome))
        })
        .collect()
}

/// The cluster-scoped summary, in as many parts as the bound needs.
pub fn cluster_parts<'a>(
    flavour: &Flavour,
    results: &'a [(Box<RawValue>, Outcome)],
    max_bytes: usize,
) -> anyhow::Result<Vec<ReportObject<'a>>> {
    pack(
        &flavour.cluster,
        flavour.top_level_source,
        None,
        results,
        max_bytes,
    )
}

/// What one run wrote, per API.
#[derive(Debug, Default)]
pub struct Written {
    pub api: String,
    pub namespaced: usize,
    pub namespaces: usize,
    pub cluster: usize,
    pub deleted: usize,
    pub largest_bytes: usize,
}

/// The APIs to write: the one asked for (an error when not served), or by discovery.
pub async fn choose(
    client: &Client,
    asked: Option<ReportApi>,
) -> anyhow::Result<Vec<&'static Flavour>> {
    let served = |f: &'static Flavour| async move {
        for api in [&f.namespaced, &f.cluster] {
            let yes = api
                .served(client)
                .await
                .with_context(|| format!("cannot ask whether {} is served", api.api_version()))?;
            if !yes {
                return Ok::<bool, anyhow::Error>(false);
            }
        }
        Ok(true)
    };
    let wanted: Vec<&'static Flavour> = match asked {
        Some(ReportApi::Openreports) => vec![&OPENREPORTS],
        Some(ReportApi::Wgpolicyk8s) => vec![&WGPOLICYK8S],
        Some(ReportApi::Both) => vec![&OPENREPORTS, &WGPOLICYK8S],
        None => {
            if served(&OPENREPORTS).await? {
                return Ok(vec![&OPENREPORTS]);
            }
            if served(&WGPOLICYK8S).await? {
                return Ok(vec![&WGPOLICYK8S]);
            }
            bail!(
                "neither openreports.io/v1alpha1 (Report, ClusterReport) nor wgpolicyk8s.io/v1alpha2 (PolicyReport, ClusterPolicyReport) is served: install one of their CRDs (docs/operations.md, \"Reports\")"
            );
        }
    };
    for f in &wanted {
        if !served(f).await? {
            bail!(
                "{} ({} and {}) is not served: install its CRDs (docs/operations.md, \"Reports\")",
                f.namespaced.api_version(),
                f.namespaced.kind,
                f.cluster.kind
            );
        }
    }
    Ok(wanted)
}

/// Writes one API's reports for `r` and deletes its stale parts: in `only_ns` when the audit
/// was limited to one namespace, else in every namespace.
pub async fn write(
    client: &Client,
    flavour: &Flavour,
    r: &Report,
    only_ns: Option<&str>,
    max_bytes: usize,
) -> anyhow::Result<Written> {
    let now = crate::admission::unix_now();
    let pp = PatchParams::apply(REPORT_NAME).force();
    let nsr: ApiResource = flavour.namespaced.resource();
    let mut written = Written {
        api: flavour.namespaced.api_version(),
        ..Written::default()
    };
    let mut by_ns: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &r.findings {
        by_ns.entry(f.namespace.as_str()).or_default().push(f);
    }
    let mut kept: BTreeSet<(String, String)> = BTreeSet::new();
    for (ns, findings) in &by_ns {
        let results = namespace_results(findings, now)?;
        let parts = namespace_parts(flavour, ns, &results, max_bytes)?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &nsr);
        for part in &parts {
            let bytes = serde_json::to_vec(part)?.len();
            written.largest_bytes = written.largest_bytes.max(bytes);
            api.patch(part.name(), &pp, &Patch::Apply(part))
                .await
                .with_context(|| {
                    format!(
                        "cannot write {} {ns}/{}",
                        flavour.namespaced.kind,
                        part.name()
                    )
                })?;
            kept.insert((ns.to_string(), part.name().to_string()));
        }
        written.namespaced += parts.len();
        written.namespaces += 1;
    }
    let lp = ListParams::default().labels(&format!("{MANAGED_BY}={REPORT_NAME}"));
    let existing: Api<DynamicObject> = match only_ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &nsr),
        None => Api::all_with(client.clone(), &nsr),
    };
    for o in existing.list_metadata(&lp).await.with_context(|| {
        format!(
            "cannot list {}s to delete stale parts",
            flavour.namespaced.kind
        )
    })? {
        let (ns, name) = (
            o.metadata.namespace.unwrap_or_default(),
            o.metadata.name.unwrap_or_default(),
        );
        if kept.contains(&(ns.clone(), name.clone())) {
            continue;
        }
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &nsr)
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| {
                format!(
                    "cannot delete stale {} {ns}/{name}",
                    flavour.namespaced.kind
                )
            })?;
        written.deleted += 1;
    }

    let cr = flavour.cluster.resource();
    let cluster_api: Api<DynamicObject> = Api::all_with(client.clone(), &cr);
    let results = cluster_results(r, now)?;
    let parts = cluster_parts(flavour, &results, max_bytes)?;
    let mut kept: BTreeSet<String> = BTreeSet::new();
    for part in &parts {
        let bytes = serde_json::to_vec(part)?.len();
        written.largest_bytes = written.largest_bytes.max(bytes);
        cluster_api
            .patch(part.name(), &pp, &Patch::Apply(part))
            .await
            .with_context(|| format!("cannot write {} {}", flavour.cluster.kind, part.name()))?;
        kept.insert(part.name().to_string());
    }
    written.cluster = parts.len();
    for o in cluster_api.list_metadata(&lp).await.with_context(|| {
        format!(
            "cannot list {}s to delete stale parts",
            flavour.cluster.kind
        )
    })? {
        let name = o.metadata.name.unwrap_or_default();
        if kept.contains(&name) {
            continue;
        }
        cluster_api
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("cannot delete stale {} {name}", flavour.cluster.kind))?;
        written.deleted += 1;
    }
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::Judged;
    use crate::engine::policy::Action;
    use crate::engine::violation::{Tier, Violation};

    /// `count` agent Pods in `agents`, `per` to a Deployment `app-<k>`, each with two
    /// violations as `audit` finds them: one refused under enforce, one that only warns.
    fn report(count: usize, per: usize) -> Report {
        let judged = |check, tier, path: &str, action| Judged {
            violation: Violation::new(
                check,
                tier,
                path,
                format!("{check} is not met at {path}"),
                format!("set {path} as the policy reference says"),
            ),
            action,
            in_enforce: action,
        };
        let mut r = Report::default();
        for i in 0..count {
            let f = Finding {
                kind: "Pod".into(),
                api_version: "v1".into(),
                namespace: "agents".into(),
                name: format!("agent-{i}"),
                uid: format!("uid-{i}"),
                workload: format!("Deployment/app-{}", i / per),
                sandbox: None,
                sandbox_claim: None,
                mode: "audit",
                unlabelled: false,
                refused_now: false,
                refused_if_enforced: true,
                violations: vec![
                    judged(
                        "run-as-non-root",
                        Tier::High,
                        "spec.securityContext.runAsNonRoot",
                        Action::Deny,
                    ),
                    judged("user-namespace", Tier::Low, "spec.hostUsers", Action::Warn),
                ],
            };
            r.total.add(&f);
            r.by_namespace
                .entry(f.namespace.clone())
                .or_default()
                .add(&f);
            r.findings.push(f);
        }
        r
    }

    fn parsed(part: &ReportObject<'_>) -> Value {
        serde_json::from_slice(&serde_json::to_vec(part).unwrap()).unwrap()
    }

    #[test]
    fn five_thousand_violating_pods_are_split_into_parts_under_the_bound_whose_summaries_add_up() {
        let r = report(5000, 50);
        let refs: Vec<&Finding> = r.findings.iter().collect();
        let results = namespace_results(&refs, 1_700_000_000).unwrap();
        assert_eq!(results.len(), r.total.violations);
        let parts = namespace_parts(&OPENREPORTS, "agents", &results, DEFAULT_MAX_BYTES).unwrap();
        let whole: usize = results.iter().map(|(raw, _)| raw.get().len()).sum();
        assert!(whole > 4 * DEFAULT_MAX_BYTES, "{whole} bytes of results");
        assert!(parts.len() >= 5, "{} parts", parts.len());
        let (mut total, mut names) = (Summary::default(), Vec::new());
        for (i, part) in parts.iter().enumerate() {
            let bytes = serde_json::to_vec(part).unwrap().len();
            assert!(
                bytes <= DEFAULT_MAX_BYTES,
                "part {} is {bytes} bytes",
                i + 1
            );
            let v = parsed(part);
            assert_eq!(v["apiVersion"], "openreports.io/v1alpha1");
            assert_eq!(v["kind"], "Report");
            assert_eq!(v["source"], REPORT_NAME);
            assert_eq!(v["metadata"]["namespace"], "agents");
            assert_eq!(v["metadata"]["labels"][PART_LABEL], (i + 1).to_string());
            assert_eq!(
                v["metadata"]["labels"][PARTS_LABEL],
                parts.len().to_string()
            );
            // Each part's summary counts its own results.
            let counted = |what: &str| {
                v["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["result"] == what)
                    .count()
            };
            assert_eq!(part.summary.fail, counted("fail"));
            assert_eq!(part.summary.warn, counted("warn"));
            assert_eq!(part.summary.pass, counted("pass"));
            total.fail += part.summary.fail;
            total.warn += part.summary.warn;
            total.pass += part.summary.pass;
            names.push(v["metadata"]["name"].as_str().unwrap().to_string());
        }
        assert_eq!(total.fail + total.warn, r.total.violations);
        assert_eq!(total.pass, 0);
        assert_eq!(names[0], "openclaw-admission");
        assert_eq!(names[1], "openclaw-admission-2");
        // Ordered by workload: a Deployment's results are in one part, or in two neighbours
        // where a part boundary falls inside it.
        let mut seen: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for (i, part) in parts.iter().enumerate() {
            for x in parsed(part)["results"].as_array().unwrap() {
                seen.entry(x["properties"]["workload"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(i);
            }
        }
        assert_eq!(seen.len(), 100);
        for (w, in_parts) in &seen {
            assert!(w.starts_with("Deployment/app-"), "{w}");
            let (lo, hi) = (in_parts.first().unwrap(), in_parts.last().unwrap());
            assert!(
                hi - lo <= 1 && in_parts.len() <= 2,
                "{w} in parts {in_parts:?}"
            );
        }
    }

    #[test]
    fn a_result_carries_the_check_the_tier_the_workload_the_path_and_the_fix() {
        let r = report(1, 1);
        let refs: Vec<&Finding> = r.findings.iter().collect();
        let results = namespace_results(&refs, 42).unwrap();
        let parts = namespace_parts(&WGPOLICYK8S, "agents", &results, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(parts.len(), 1);
        let v = parsed(&parts[0]);
        assert_eq!(v["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(v["kind"], "PolicyReport");
        assert!(v.get("source").is_none(), "{v}");
        let j = &r.findings[0].violations[0];
        let x = &v["results"][0];
        assert_eq!(x["source"], REPORT_NAME);
        assert_eq!(x["policy"], j.violation.check);
        assert_eq!(x["rule"], j.violation.check);
        assert_eq!(x["category"], CATEGORY);
        assert_eq!(x["severity"], severity(j.violation.tier));
        assert_eq!(x["result"], "fail");
        assert_eq!(x["message"], j.violation.message.as_str());
        assert_eq!(x["timestamp"], json!({"seconds": 42, "nanos": 0}));
        assert_eq!(
            x["resources"],
            json!([{"apiVersion": "v1", "kind": "Pod", "namespace": "agents", "name": "agent-0", "uid": "uid-0"}])
        );
        assert_eq!(x["properties"]["workload"], "Deployment/app-0");
        assert_eq!(x["properties"]["path"], j.violation.path.as_str());
        assert_eq!(x["properties"]["fix"], j.violation.fix.as_str());
        assert!(x["properties"].get("sandbox").is_none(), "{x}");

        // A Pod agent-sandbox made names its Sandbox and the claim holding it.
        let mut r = report(1, 1);
        r.findings[0].workload = "SandboxClaim/my-claim".into();
        r.findings[0].sandbox = Some("my-claim".into());
        r.findings[0].sandbox_claim = Some("my-claim".into());
        let refs: Vec<&Finding> = r.findings.iter().collect();
        let results = namespace_results(&refs, 42).unwrap();
        let parts = namespace_parts(&OPENREPORTS, "agents", &results, DEFAULT_MAX_BYTES).unwrap();
        let x = &parsed(&parts[0])["results"][0];
        assert_eq!(x["properties"]["sandbox"], "my-claim");
        assert_eq!(x["properties"]["sandboxClaim"], "my-claim");
        assert_eq!(x["properties"]["workload"], "SandboxClaim/my-claim");
    }

    #[test]
    fn a_bound_too_small_for_one_result_is_an_error_that_names_it() {
        let r = report(1, 1);
        let refs: Vec<&Finding> = r.findings.iter().collect();
        let results = namespace_results(&refs, 42).unwrap();
        let err = namespace_parts(&OPENREPORTS, "agents", &results, 600)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("more than a report of --report-max-bytes 600"),
            "{err}"
        );
        assert!(err.contains("agent-0"), "{err}");
    }

    #[test]
    fn the_cluster_summary_counts_every_namespace_once() {
        let r = report(30, 10);
        let results = cluster_results(&r, 1).unwrap();
        let parts = cluster_parts(&OPENREPORTS, &results, DEFAULT_MAX_BYTES).unwrap();
        let v = parsed(&parts[0]);
        assert_eq!(v["kind"], "ClusterReport");
        assert!(v["metadata"].get("namespace").is_none());
        assert_eq!(v["summary"]["fail"], 1);
        assert_eq!(v["results"][0]["properties"]["objects"], "30");
    }
}
