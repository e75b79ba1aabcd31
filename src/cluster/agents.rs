//! Which agents run, for judging changes to what their verdicts rest on
//! (`engine::dependents`), without holding the cluster's Pods.
//!
//! - The signal: one metadata watch of Pods per agent selector (and, when every Sandbox is an
//!   agent, one of the Pods agent-sandbox's controller labels), filtered by the API server
//!   with the selector itself, keeps the namespace and name of each agent Pod and nothing else
//!   (a few dozen bytes an agent; the cluster's other Pods never reach the webhook). It says
//!   which namespaces may hold agents, so a change anywhere else is answered from memory.
//! - The lookup: for a change the engine says may expose agents, the agent Pods of each
//!   namespace it names are listed for that request alone (one LIST per agent selector,
//!   unfinished Pods only; with the catch-all, one LIST of every unfinished Pod), with the
//!   namespace (is it being deleted?) and the owners up each agent's controller chain, read
//!   once per workload (is it being deleted?), each namespace within the confirm step's
//!   timeout.
//!
//! Agents known only by their image (the catch-all) carry no agent label and so give no
//! signal: a change in a namespace holding only those is answered from memory.

use super::live::{LiveView, Readiness};
use crate::engine::policy::Policy;
use crate::engine::review::Subject;
use crate::engine::view::{Index, PodFacts, RunningAgents};
use crate::engine::{agent, review::Target};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// The readiness kind of the agent Pod watches (ready once every selector's has listed).
pub const KIND: &str = "AgentPod";

/// Starts one watch per agent selector. A selector the API server cannot take as a label
/// query is logged and given no watch (the policy loader refuses most of those earlier).
pub fn spawn(client: &Client, policy: &Policy, view: &LiveView, ready: &Readiness) {
    let selectors: Vec<String> = agent::signal_selectors(policy)
        .into_iter()
        .filter_map(|s| match kube::core::Selector::try_from(s) {
            Ok(sel) => Some(sel.to_string()),
            Err(e) => {
                tracing::error!(error = %e, "agent selector cannot be a label query; no agent signal for it");
                None
            }
        })
        .collect();
    let left = Arc::new(AtomicUsize::new(selectors.len()));
    if selectors.is_empty() {
        ready.state.synced(KIND);
    }
    for (i, query) in selectors.into_iter().enumerate() {
        let api: Api<PartialObjectMeta<Pod>> = Api::all(client.clone());
        let stream = watcher(
            api,
            watcher::Config::default().any_semantic().labels(&query),
        );
        let index = Arc::clone(&view.index);
        let state = Arc::clone(&ready.state);
        let left = Arc::clone(&left);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream.default_backoff());
            let mut relist: Option<Vec<(String, String)>> = None;
            let mut synced = false;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
                        if handle(i, &index, event, &mut relist) && !synced {
                            synced = true;
                            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                                state.synced(KIND);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(kind = KIND, selector = %query, error = %e, "watch failed; retrying after backoff")
                    }
                }
            }
            tracing::error!(
                kind = KIND,
                "watch stream ended; agent namespaces are no longer kept current"
            );
        });
    }
}

fn key(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Applies one event of selector `i`'s watch; `true` when a list completed.
fn handle(
    i: usize,
    index: &RwLock<Index>,
    event: Event<PartialObjectMeta<Pod>>,
    relist: &mut Option<Vec<(String, String)>>,
) -> bool {
    let write = || index.write().unwrap_or_else(PoisonError::into_inner);
    match event {
        Event::Apply(p) => {
            let (ns, name) = key(p.meta());
            write().apply_agent_signal(i, &ns, &name);
        }
        Event::Delete(p) => {
            let (ns, name) = key(p.meta());
            write().delete_agent_signal(i, &ns, &name);
        }
        Event::Init => *relist = Some(Vec::new()),
        Event::InitApply(p) => relist.get_or_insert_with(Vec::new).push(key(p.meta())),
        Event::InitDone => {
            let listed = relist.take().unwrap_or_default();
            let mut idx = write();
            idx.clear_agent_signal(i);
            for (ns, name) in listed {
                idx.apply_agent_signal(i, &ns, &name);
            }
            return true;
        }
    }
    false
}

/// Looks up the Pods of each namespace for one request. A namespace whose lookup failed or
/// timed out is left out: the engine then cannot vouch for its agents.
pub async fn lookup(
    client: &Client,
    namespaces: &[String],
    policy: &Policy,
    timeout: std::time::Duration,
) -> Index {
    let found = futures::future::join_all(namespaces.iter().map(|ns| async move {
        match tokio::time::timeout(timeout, lookup_namespace(client, ns, policy)).await {
            Ok(Ok(running)) => Some((ns.clone(), running)),
            Ok(Err(e)) => {
                tracing::warn!(namespace = %ns, error = %e, "listing the agents of a namespace failed");
                None
            }
            Err(_) => {
                tracing::warn!(namespace = %ns, "listing the agents of a namespace timed out");
                None
            }
        }
    }))
    .await;
    let mut idx = Index::new();
    for (ns, running) in found.into_iter().flatten() {
        idx.apply_running_agents(&ns, running);
    }
    idx
}

async fn lookup_namespace(
    client: &Client,
    ns: &str,
    policy: &Policy,
) -> Result<RunningAgents, kube::Error> {
    let namespaces = Api::<Namespace>::all(client.clone());
    let (namespace, pods) = futures::join!(
        namespaces.get_metadata_opt(ns),
        list_candidates(client, ns, policy)
    );
    let deleting = namespace?.is_none_or(|n| n.metadata.deletion_timestamp.is_some());
    let mut running = RunningAgents {
        namespace_deleting: deleting,
        ..Default::default()
    };
    if deleting {
        return Ok(running);
    }
    // Pods of one workload share their owners: each chain is read once per lookup.
    let mut leaving_by_owner: HashMap<(String, String, String), bool> = HashMap::new();
    for pod in pods? {
        // Labels and images first: most Pods of a busy namespace are not agents, and only an
        // agent is worth turning into the engine's model.
        if agent::of_facts(policy, &PodFacts::of(&pod)).is_none() {
            continue;
        }
        let Ok(json) = serde_json::to_string(&pod) else {
            continue;
        };
        let Ok(Subject::Pod(p)) = Subject::parse("Pod", &json) else {
            continue;
        };
        if agent::of(policy, &Target::of_pod(&p, ns)).is_none() {
            continue;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        if p.metadata.deletion_timestamp.is_none() {
            let leaving = match controller(&pod.metadata) {
                None => false,
                Some(o) => {
                    let key = (o.kind.clone(), o.name.clone(), o.uid.clone());
                    match leaving_by_owner.get(&key) {
                        Some(known) => *known,
                        None => {
                            let l = workload_leaving(client, ns, &pod.metadata).await?;
                            leaving_by_owner.insert(key, l);
                            l
                        }
                    }
                }
            };
            if leaving {
                running.leaving.insert(name);
            }
        }
        running.pods.push(*p);
    }
    Ok(running)
}

/// The unfinished Pods of `ns` that may be agents. Without the catch-all, an agent carries
/// the labels of one of the policy's selectors, so the API server filters: one LIST per
/// selector, each answering with that selector's Pods alone, and a busy namespace's other
/// Pods are never sent (the bench `agent_signal` measured a LIST of a namespace of 500 Pods
/// at several times the cost of its 10 agents'). The catch-all knows agents by their image,
/// so then every unfinished Pod is listed.
async fn list_candidates(
    client: &Client,
    ns: &str,
    policy: &Policy,
) -> Result<Vec<Pod>, kube::Error> {
    const UNFINISHED: &str = "status.phase!=Succeeded,status.phase!=Failed";
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let queries = if policy.catch_all.enabled {
        None
    } else {
        label_queries(policy)
    };
    let Some(queries) = queries else {
        return Ok(api
            .list(&ListParams::default().fields(UNFINISHED))
            .await?
            .items);
    };
    let lists = futures::future::try_join_all(queries.iter().map(|q| {
        let api = api.clone();
        async move {
            api.list(&ListParams::default().fields(UNFINISHED).labels(q))
                .await
        }
    }))
    .await?;
    // A Pod two selectors match comes twice.
    let mut seen = BTreeSet::new();
    Ok(lists
        .into_iter()
        .flat_map(|l| l.items)
        .filter(|p| seen.insert(p.metadata.name.clone()))
        .collect())
}

/// The policy's agent selectors (and the label of Sandboxes' Pods) as label queries; `None` when one cannot be (the policy loader
/// refuses most of those; listing everything then keeps the lookup whole).
fn label_queries(policy: &Policy) -> Option<Vec<String>> {
    agent::signal_selectors(policy)
        .into_iter()
        .map(|s| {
            kube::core::Selector::try_from(s)
                .ok()
                .map(|sel| sel.to_string())
        })
        .collect()
}

/// The API resource of a controller kind an agent Pod may be owned by.
fn owner_resource(kind: &str) -> Option<ApiResource> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    Some(match kind {
        "ReplicaSet" => ApiResource::erase::<apps::ReplicaSet>(&()),
        "Deployment" => ApiResource::erase::<apps::Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<apps::StatefulSet>(&()),
        "DaemonSet" => ApiResource::erase::<apps::DaemonSet>(&()),
        "ReplicationController" => ApiResource::erase::<core::ReplicationController>(&()),
        "Job" => ApiResource::erase::<batch::Job>(&()),
        "CronJob" => ApiResource::erase::<batch::CronJob>(&()),
        _ => return None,
    })
}

fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// Whether an owner up the Pod's controller chain (ReplicaSet, then Deployment; Job, then
/// CronJob; ...) is gone, replaced (another uid) or being deleted: `helm uninstall` and
/// `kubectl delete` delete the workload and let the garbage collector take its Pods a moment
/// later. An owner of a kind not known here counts as staying.
async fn workload_leaving(
    client: &Client,
    ns: &str,
    pod: &ObjectMeta,
) -> Result<bool, kube::Error> {
    let mut owner = controller(pod).cloned();
    let mut seen = BTreeSet::new();
    while let Some(o) = owner {
        let Some(resource) = owner_resource(&o.kind) else {
            return Ok(false);
        };
        if !seen.insert((o.kind.clone(), o.name.clone())) {
            return Ok(false);
        }
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource);
        let Some(found) = api.get_metadata_opt(&o.name).await? else {
            return Ok(true);
        };
        if found.metadata.uid.as_deref() != Some(o.uid.as_str())
            || found.metadata.deletion_timestamp.is_some()
        {
            return Ok(true);
        }
        owner = controller(&found.metadata).cloned();
    }
    Ok(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::view::ClusterView;
    use serde_json::json;

    fn pod(ns: &str, name: &str) -> PartialObjectMeta<Pod> {
        serde_json::from_value(
            json!({"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata",
            "metadata":{"name":name,"namespace":ns}}),
        )
        .unwrap()
    }

    #[test]
    fn the_signal_follows_each_selectors_watch_and_its_relists() {
        let index = RwLock::new(Index::new());
        let mut relist = None;
        handle(0, &index, Event::Apply(pod("agents", "a")), &mut relist);
        handle(1, &index, Event::Apply(pod("agents", "a")), &mut relist);
        handle(1, &index, Event::Apply(pod("team", "b")), &mut relist);
        assert_eq!(
            index.read().unwrap().namespaces_with_agents(),
            ["agents", "team"]
        );
        // One selector's watch losing the pod leaves it known while the other still has it.
        handle(0, &index, Event::Delete(pod("agents", "a")), &mut relist);
        assert!(index.read().unwrap().may_hold_agents("agents"));
        // Selector 1 relists without the pod of `agents`: gone from the signal.
        handle(1, &index, Event::Init, &mut relist);
        handle(1, &index, Event::InitApply(pod("team", "b")), &mut relist);
        assert!(
            index.read().unwrap().may_hold_agents("agents"),
            "not before the list ends"
        );
        assert!(handle(1, &index, Event::InitDone, &mut relist));
        let idx = index.read().unwrap();
        assert!(!idx.may_hold_agents("agents"));
        assert!(idx.may_hold_agents("team"));
        assert!(!format!("{idx:?}").contains("spec"));
    }
}
