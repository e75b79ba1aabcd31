//! The scheduled scan's results, for `/metrics` and the chart's dashboard: `serve` lists the
//! reports `audit --write-reports` writes (OpenReports' `openreports.io/v1alpha1` Reports where
//! it wrote those, else `wgpolicyk8s.io/v1alpha2` PolicyReports), labelled
//! `app.kubernetes.io/managed-by: openclaw-admission`, every `--scan-reports-interval`, and
//! keeps each namespace's `summary` (pass, fail, warn, error, skip) and the time of the newest
//! result. A read of what the scan wrote, not a scan: the webhook judges nothing here.
//!
//! Bounded: at most [`MAX_NAMESPACES`] namespaces get series of their own, those with the most
//! `fail` results first; the rest are summed under [`OTHER_NAMESPACES`], a name no namespace
//! can have. Where the API is not served the figures are absent, and looked for again at the
//! next interval.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The results a report's `summary` counts, in the order of [`Counts`].
pub const RESULTS: [&str; 5] = ["pass", "fail", "warn", "error", "skip"];

/// Namespaces with series of their own at most (the last slot is [`OTHER_NAMESPACES`]).
pub const MAX_NAMESPACES: usize = 256;

/// Where the namespaces beyond [`MAX_NAMESPACES`] are counted: not a DNS label, so no
/// namespace is called that.
pub const OTHER_NAMESPACES: &str = "_other";

/// The label `audit --write-reports` puts on its reports.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=openclaw-admission";

/// Reports fetched per list call.
const PAGE: u32 = 100;

/// `summary` counts in the order of [`RESULTS`].
pub type Counts = [u64; 5];

/// What the latest list found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanFigures {
    /// Per namespace (capped, see the module docs), the summed `summary` of its reports.
    pub by_namespace: BTreeMap<String, Counts>,
    /// Unix seconds of the newest result in any report (`results[].timestamp.seconds`).
    pub last_run: Option<i64>,
}

/// Reports summed one at a time, so a list is never held whole.
#[derive(Debug, Default)]
pub struct Tally {
    by_namespace: BTreeMap<String, Counts>,
    last_run: Option<i64>,
}

impl Tally {
    /// Adds one report: its namespace and the rest of its object (`summary`, `results`).
    /// Fields that are missing or not counts count as 0; nothing in a report can fail this.
    pub fn add(&mut self, namespace: &str, report: &Value) {
        let counts = self.by_namespace.entry(namespace.to_string()).or_default();
        for (i, result) in RESULTS.iter().enumerate() {
            let n = report["summary"][*result].as_u64().unwrap_or(0);
            counts[i] = counts[i].saturating_add(n);
        }
        if let Some(results) = report["results"].as_array() {
            for r in results {
                if let Some(t) = r["timestamp"]["seconds"].as_i64() {
                    self.last_run = Some(self.last_run.map_or(t, |l| l.max(t)));
                }
            }
        }
    }

    /// The figures, namespaces beyond the cap summed under [`OTHER_NAMESPACES`].
    pub fn finish(self) -> ScanFigures {
        let mut by_namespace = self.by_namespace;
        if by_namespace.len() > MAX_NAMESPACES {
            let mut order: Vec<(String, Counts)> =
                std::mem::take(&mut by_namespace).into_iter().collect();
            // Most `fail` first, then by name: the namespaces to look at keep their series.
            order.sort_by(|(a, ca), (b, cb)| cb[1].cmp(&ca[1]).then_with(|| a.cmp(b)));
            let rest = order.split_off(MAX_NAMESPACES - 1);
            let mut other = Counts::default();
            for (_, c) in rest {
                for (o, n) in other.iter_mut().zip(c) {
                    *o = o.saturating_add(n);
                }
            }
            by_namespace = order.into_iter().collect();
            by_namespace.insert(OTHER_NAMESPACES.to_string(), other);
        }
        ScanFigures {
            by_namespace,
            last_run: self.last_run,
        }
    }
}

/// The latest figures, shared between the lister and `/metrics`.
#[derive(Debug, Default)]
pub struct ScanStats {
    latest: Mutex<Option<ScanFigures>>,
}

impl ScanStats {
    /// The figures of the latest successful list; `None` before one, or while the API is
    /// not served.
    pub fn latest(&self) -> Option<ScanFigures> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set(&self, figures: Option<ScanFigures>) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = figures;
    }
}

fn open_reports() -> ApiResource {
    ApiResource {
        group: "openreports.io".into(),
        version: "v1alpha1".into(),
        api_version: "openreports.io/v1alpha1".into(),
        kind: "Report".into(),
        plural: "reports".into(),
    }
}

fn policy_reports() -> ApiResource {
    ApiResource {
        group: "wgpolicyk8s.io".into(),
        version: "v1alpha2".into(),
        api_version: "wgpolicyk8s.io/v1alpha2".into(),
        kind: "PolicyReport".into(),
        plural: "policyreports".into(),
    }
}

/// Lists the scan's reports in every namespace: OpenReports' Reports, which `audit` writes
/// where they are served, or else (none served, or none written there, as with
/// `--report-api wgpolicyk8s`) the PolicyReports. One API's only, so that a scan writing both
/// is not counted twice. `None` when neither API is served.
pub async fn list(client: &Client) -> Result<Option<ScanFigures>, kube::Error> {
    let open = list_of(client, &open_reports()).await?;
    if let Some((figures, reports)) = &open
        && *reports > 0
    {
        return Ok(Some(figures.clone()));
    }
    match list_of(client, &policy_reports()).await? {
        Some((figures, _)) => Ok(Some(figures)),
        None => Ok(open.map(|(figures, _)| figures)),
    }
}

/// The figures of one report API and how many reports it held; `None` when it is not served.
async fn list_of(
    client: &Client,
    resource: &ApiResource,
) -> Result<Option<(ScanFigures, usize)>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let mut params = ListParams::default().labels(MANAGED_BY).limit(PAGE);
    let mut tally = Tally::default();
    let mut reports = 0;
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        for report in &page.items {
            let ns = report.metadata.namespace.as_deref().unwrap_or("");
            tally.add(ns, &report.data);
            reports += 1;
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    Ok(Some((tally.finish(), reports)))
}

/// Lists the reports now and every `interval` after, for as long as the runtime runs.
pub fn start(client: Client, stats: Arc<ScanStats>, interval: Duration) {
    tokio::spawn(async move {
        // Logged on a change only, not at every interval.
        let mut was_served = None;
        let mut failing = false;
        loop {
            match list(&client).await {
                Ok(figures) => {
                    let served = figures.is_some();
                    if was_served != Some(served) {
                        if served {
                            tracing::info!(
                                "reading the scan's reports (openreports.io, else wgpolicyk8s.io) for /metrics"
                            );
                        } else {
                            tracing::info!(
                                "neither openreports.io Reports nor wgpolicyk8s.io PolicyReports are served; no scan figures in /metrics until they are"
                            );
                        }
                        was_served = Some(served);
                    }
                    failing = false;
                    stats.set(figures);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot list the scan's reports; /metrics keeps the last figures");
                        failing = true;
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sums_summaries_per_namespace_and_keeps_the_newest_result_time() {
        let mut t = Tally::default();
        t.add(
            "a",
            &json!({"summary": {"pass": 2, "fail": 1, "warn": 0, "error": 0, "skip": 0},
                "results": [{"timestamp": {"seconds": 100}}, {"timestamp": {"seconds": 300}}]}),
        );
        t.add("a", &json!({"summary": {"fail": 4}}));
        t.add(
            "b",
            &json!({"summary": {"pass": "x", "warn": -1, "skip": 7}, "results": "no"}),
        );
        t.add("c", &json!(null));
        let f = t.finish();
        assert_eq!(f.by_namespace["a"], [2, 5, 0, 0, 0]);
        assert_eq!(f.by_namespace["b"], [0, 0, 0, 0, 7]);
        assert_eq!(f.by_namespace["c"], [0; 5]);
        assert_eq!(f.last_run, Some(300));
    }

    #[test]
    fn namespaces_beyond_the_cap_are_summed_under_other_the_failing_ones_kept() {
        let mut t = Tally::default();
        for i in 0..(MAX_NAMESPACES + 10) {
            t.add(&format!("ns-{i:04}"), &json!({"summary": {"pass": 1}}));
        }
        t.add("zz-failing", &json!({"summary": {"fail": 3}}));
        let f = t.finish();
        assert_eq!(f.by_namespace.len(), MAX_NAMESPACES);
        assert_eq!(f.by_namespace["zz-failing"], [0, 3, 0, 0, 0]);
        let total: u64 = f.by_namespace.values().map(|c| c[0]).sum();
        assert_eq!(total, (MAX_NAMESPACES + 10) as u64, "nothing lost");
        assert_eq!(f.by_namespace[OTHER_NAMESPACES][0], 12);
        assert_eq!(f.last_run, None);
    }
}
