//! `short-lived-token` (medium): a ServiceAccount token stolen from the agent stops working
//! soon. Four ways a pod gets a long-lived token, each reported where it is fixed:
//! - the ServiceAccount admission plugin mounts the default token (3607 s, which API servers
//!   may extend to a year) into every container that does not mount the token path itself,
//!   unless `automountServiceAccountToken` is false;
//! - a projected `serviceAccountToken` source asks for more than the maximum (or for 3607);
//! - a `secret` volume (or a projected volume's `secret` source) puts a file where the token
//!   is read (`.../serviceaccount/token`): whatever the Secret is, client libraries take that
//!   file for their token, and a token kept in a Secret (a legacy `*-token-*` Secret) never
//!   expires. Judged by the mount alone, the Secret is never read;
//! - when enabled, a volume or env var draws on a legacy token Secret, which never expires.
//!
//! The validating webhook sees pods after the mutating one, which has already replaced the
//! plugin's `kube-api-access-*` volume; when it has not (mutation off, or audit mode), that
//! volume is the plugin's work and is reported once, as the automount it comes from.
//!
//! What the Pod will be, not what the manifest says, decides:
//! - a workload's pod template that leaves automount on is fine while the token mutation is
//!   enabled, since every Pod made from it passes through that mutation first;
//! - a ServiceAccount with `automountServiceAccountToken: false` makes the plugin mount
//!   nothing into Pods that leave the field unset, so those Pods get no default token.

use super::check::{Check, Judge, PodInput, Read, always};
use crate::engine::containers::containers;
use crate::engine::policy::SA_TOKEN_MOUNT_PATH;
use crate::engine::violation::{Tier, Violation};
use k8s_openapi::api::core::v1::VolumeMount;

const ID: &str = "short-lived-token";
const TIER: Tier = Tier::Medium;

pub static CHECK: Check = Check {
    id: ID,
    tier: TIER,
    judge: Judge::Pod(check),
    reads: &[Read::ServiceAccounts, Read::LegacyTokenSecrets],
    applies: always,
};

/// The lifetime of the token the ServiceAccount plugin injects.
const DEFAULT_TOKEN_SECONDS: i64 = 3607;
/// `expirationSeconds` when absent, per the API.
const PROJECTED_DEFAULT_SECONDS: i64 = 3600;
const PLUGIN_VOLUME_PREFIX: &str = "kube-api-access-";

fn is_token_path(p: &str) -> bool {
    p.trim_end_matches('/') == SA_TOKEN_MOUNT_PATH
}

/// Whether `path` is the token file (`.../serviceaccount/token`).
fn is_token_file(path: &str) -> bool {
    path.trim_end_matches('/')
        .strip_prefix(SA_TOKEN_MOUNT_PATH)
        .is_some_and(|rest| rest == "/token")
}

/// Whether a mount of `volume` puts a file from a Secret where the token file is read: a
/// `secret` volume (or a projected volume's `secret` source) whose keys land on the token
/// file, by the volume mounted at the token directory (every key, `token` among them, unless
/// `items` says otherwise or, in a projected volume, a `serviceAccountToken` source writes
/// the token), by an `items` path leading there from a directory above, or by a `subPath`
/// mount of the file itself.
fn secret_at_token_file(volume: &crate::engine::pod::Volume, mount: &VolumeMount) -> bool {
    let projected_secrets = volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.secret.as_ref());
    if volume.secret.is_none() && projected_secrets.clone().next().is_none() {
        return false;
    }
    if mount.sub_path.as_deref().is_some_and(|p| !p.is_empty()) {
        return is_token_file(&mount.mount_path);
    }
    let base = mount.mount_path.trim_end_matches('/');
    let above_or_at = SA_TOKEN_MOUNT_PATH
        .strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !above_or_at {
        return false;
    }
    let lands = |rel: &str| is_token_file(&format!("{base}/{}", rel.trim_start_matches("./")));
    let lands_any =
        |items: Option<&Vec<k8s_openapi::api::core::v1::KeyToPath>>, all_keys: bool| match items {
            Some(items) => items.iter().any(|i| lands(&i.path)),
            None => all_keys && lands("token"),
        };
    if let Some(s) = &volume.secret {
        return lands_any(s.items.as_ref(), true);
    }
    let token_source = volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
        .any(|s| s.service_account_token.is_some());
    projected_secrets
        .clone()
        .any(|s| lands_any(s.items.as_ref(), !token_source))
}

fn check(input: &PodInput<'_>) -> Vec<Violation> {
    let t = &input.target;
    let max = input.policy.checks.token.max_expiration_seconds;
    let volumes = t.spec.volumes.as_deref().unwrap_or(&[]);
    let all = containers(t.spec, t.spec_path);
    let mut out = Vec::new();

    // (a) The plugin's default token, for containers that do not mount the path themselves.
    let account_opted_out = t.spec.automount_service_account_token.is_none()
        && input
            .view
            .service_account_automount(t.namespace, t.service_account().unwrap_or("default"))
            == Some(false);
    let mutation_replaces_it = t.template && input.policy.mutations.token.enabled;
    let automount = t.spec.automount_service_account_token != Some(false)
        && !account_opted_out
        && !mutation_replaces_it;
    // Listed only when the default token is mounted at all (most agents turn it off).
    let exposed: Vec<&str> = if automount {
        all.clone()
            .filter(|c| {
                !c.volume_mounts().iter().any(|m| {
                    is_token_path(&m.mount_path) && !m.name.starts_with(PLUGIN_VOLUME_PREFIX)
                })
            })
            .map(|c| c.name())
            .collect()
    } else {
        Vec::new()
    };
    let default_token = !exposed.is_empty();
    if default_token {
        out.push(Violation::new(
            ID,
            TIER,
            t.path("automountServiceAccountToken"),
            format!(
                "automountServiceAccountToken is not false: container(s) {} get the default token ({DEFAULT_TOKEN_SECONDS} s, which API servers may extend to a year)",
                exposed.join(", ")
            ),
            format!(
                "set automountServiceAccountToken: false and mount a projected token with expirationSeconds <= {max} (the mutating webhook does this)"
            ),
        ));
    }

    // (b) Projected tokens asking for too long a life.
    for (i, v) in volumes.iter().enumerate() {
        if default_token && v.name.starts_with(PLUGIN_VOLUME_PREFIX) {
            continue;
        }
        let sources = v
            .projected
            .as_ref()
            .and_then(|p| p.sources.as_deref())
            .unwrap_or(&[]);
        for (j, src) in sources.iter().enumerate() {
            let Some(tok) = &src.service_account_token else {
                continue;
            };
            let secs = tok.expiration_seconds.unwrap_or(PROJECTED_DEFAULT_SECONDS);
            let why = if secs == DEFAULT_TOKEN_SECONDS {
                format!(
                    "lives {secs} s, the default-token lifetime that API servers may extend to a year"
                )
            } else if secs > max {
                format!("lives {secs} s, longer than the {max} s maximum")
            } else {
                continue;
            };
            out.push(Violation::new(
                ID,
                TIER,
                t.path(&format!(
                    "volumes[{i}].projected.sources[{j}].serviceAccountToken.expirationSeconds"
                )),
                format!("the ServiceAccount token in volume {} {why}", v.name),
                format!("set expirationSeconds to at most {max} (and never 3607)"),
            ));
        }
    }

    // (c) Secrets mounted where the token is read from, whatever their type.
    for c in all.clone() {
        for (k, m) in c.volume_mounts().iter().enumerate() {
            let Some(v) = volumes.iter().find(|v| v.name == m.name) else {
                continue;
            };
            if !secret_at_token_file(v, m) {
                continue;
            }
            let source = match v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) {
                Some(secret) => format!("Secret {secret}"),
                None => "a Secret".to_string(),
            };
            out.push(Violation::new(
                ID,
                TIER,
                format!("{}.volumeMounts[{k}]", c.path),
                format!(
                    "container {} reads its ServiceAccount token from volume {} ({source}): a token kept in a Secret (a legacy ServiceAccount token) never expires",
                    c.name(), v.name
                ),
                format!(
                    "mount a projected serviceAccountToken volume with expirationSeconds <= {max} at {SA_TOKEN_MOUNT_PATH} instead (or set automountServiceAccountToken: false and let the mutating webhook do it)"
                ),
            ));
        }
    }

    // (d) Legacy token Secrets, known by type only.
    if input.policy.checks.token.legacy_secret_check {
        let legacy = |name: &str| input.view.is_legacy_token_secret(t.namespace, name);
        let fix = format!(
            "use a projected serviceAccountToken volume with expirationSeconds <= {max} instead of a legacy token Secret"
        );
        let mut flag = |path: String, what: String, secret: &str| {
            out.push(Violation::new(
                ID,
                TIER,
                path,
                format!("{what} draws on Secret {secret}, a legacy ServiceAccount token that never expires"),
                fix.clone(),
            ));
        };
        for (i, v) in volumes.iter().enumerate() {
            if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.as_deref())
                && legacy(name)
            {
                flag(
                    t.path(&format!("volumes[{i}].secret.secretName")),
                    format!("volume {}", v.name),
                    name,
                );
            }
            let sources = v
                .projected
                .as_ref()
                .and_then(|p| p.sources.as_deref())
                .unwrap_or(&[]);
            for (j, src) in sources.iter().enumerate() {
                if let Some(s) = &src.secret
                    && legacy(&s.name)
                {
                    flag(
                        t.path(&format!("volumes[{i}].projected.sources[{j}].secret.name")),
                        format!("volume {}", v.name),
                        &s.name,
                    );
                }
            }
        }
        for c in all.clone() {
            for (k, e) in c.env().iter().enumerate() {
                if let Some(r) = e
                    .value_from
                    .as_ref()
                    .and_then(|f| f.secret_key_ref.as_ref())
                    && legacy(&r.name)
                {
                    flag(
                        format!("{}.env[{k}].valueFrom.secretKeyRef.name", c.path),
                        format!("env var {} of container {}", e.name, c.name()),
                        &r.name,
                    );
                }
            }
            for (k, e) in c.env_from().iter().enumerate() {
                if let Some(r) = &e.secret_ref
                    && legacy(&r.name)
                {
                    flag(
                        format!("{}.envFrom[{k}].secretRef.name", c.path),
                        format!("container {}", c.name()),
                        &r.name,
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::checks::fixtures::*;
    use crate::engine::policy::Policy;
    use serde_json::json;

    fn legacy_policy() -> Policy {
        let mut p = Policy::default();
        p.checks.token.legacy_secret_check = true;
        p
    }

    fn legacy_view() -> crate::engine::view::StaticView {
        let mut v = hardened_view();
        v.add(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "old-token", "namespace": NS},
                "type": "kubernetes.io/service-account-token"}),
            NS,
        )
        .unwrap();
        v
    }

    /// What the ServiceAccount admission plugin adds when automount is on.
    fn with_plugin_volume(b: PodBuilder) -> PodBuilder {
        b.volume(token_volume("kube-api-access-x7k2p", Some(3607)))
            .with_container("agent")
            .mount("kube-api-access-x7k2p", SA_TOKEN_MOUNT_PATH)
    }

    #[test]
    fn passes_hardened_pod() {
        assert!(run_default(&CHECK, &hardened_pod()).is_empty());
        assert!(run(&CHECK, &hardened_pod(), &legacy_policy(), &legacy_view()).is_empty());
    }

    #[test]
    fn rejects_pod_that_leaves_automount_on() {
        let p = pod("a").container("agent").build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.automountServiceAccountToken"]);
        assert_eq!(v[0].tier, Tier::Medium);
        assert!(v[0].message.contains("agent") && v[0].message.contains("3607"));
        assert!(v[0].fix.contains("automountServiceAccountToken: false"));
    }

    #[test]
    fn automount_on_is_fine_when_every_container_mounts_its_own_short_token() {
        let p = hardened()
            .spec(|s| s.automount_service_account_token = None)
            .build();
        assert!(run_default(&CHECK, &p).is_empty());
    }

    #[test]
    fn automount_on_names_the_init_container_that_would_get_the_default_token() {
        let p = hardened()
            .spec(|s| s.automount_service_account_token = None)
            .init_container("setup")
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.automountServiceAccountToken"]);
        assert!(
            v[0].message.contains("setup") && !v[0].message.contains("agent"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn plugin_volume_under_automount_is_reported_once_as_the_automount() {
        let p = with_plugin_volume(pod("a").container("agent")).build();
        let v = run_default(&CHECK, &p);
        assert_eq!(paths(&v), ["spec.automountServiceAccountToken"]);
    }

    #[test]
    fn plugin_volume_left_behind_with_automount_off_counts_as_long_lived() {
        let p = with_plugin_volume(
            pod("a")
                .automount_service_account_token(false)
                .container("agent"),
        )
        .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"]
        );
        assert!(v[0].message.contains("3607"));
    }

    #[test]
    fn rejects_projected_token_longer_than_maximum() {
        let p = hardened()
            .projected_token_volume("long", Some(86400))
            .build();
        let v = run_default(&CHECK, &p);
        assert_eq!(
            paths(&v),
            ["spec.volumes[2].projected.sources[0].serviceAccountToken.expirationSeconds"]
        );
        assert!(v[0].message.contains("86400"));
    }

    #[test]
    fn absent_expiration_means_3600_which_the_default_maximum_allows() {
        let p = hardened().projected_token_volume("plain", None).build();
        assert!(run_default(&CHECK, &p).is_empty());
        let mut strict = Policy::default();
        strict.checks.token.max_expiration_seconds = 1800;
        strict.mutations.token.expiration_seconds = 1800;
        let v = run(&CHECK, &p, &strict, &hardened_view());
        // Both the hardened pod's 3600 s token and the defaulted one are now too long.
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn legacy_token_secrets_fail_only_when_the_check_is_enabled() {
        let p = hardened()
            .secret_volume("legacy", "old-token")
            .secret_volume("config", "app-config")
            .with_container("agent")
            .env_secret("KUBE_TOKEN", "old-token", "token")
            .env_from_secret("old-token")
            .build();
        assert!(run(&CHECK, &p, &Policy::default(), &legacy_view()).is_empty());
        let v = run(&CHECK, &p, &legacy_policy(), &legacy_view());
        assert_eq!(
            paths(&v),
            [
                "spec.volumes[2].secret.secretName",
                "spec.containers[0].env[1].valueFrom.secretKeyRef.name",
                "spec.containers[0].envFrom[0].secretRef.name"
            ]
        );
        assert!(v[0].message.contains("old-token"));
    }

    #[test]
    fn legacy_token_in_projected_secret_source_fails() {
        let mut vol = token_volume("mixed", Some(600));
        let sources = vol.projected.as_mut().unwrap().sources.as_mut().unwrap();
        sources.push(k8s_openapi::api::core::v1::VolumeProjection {
            secret: Some(k8s_openapi::api::core::v1::SecretProjection {
                name: "old-token".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let p = hardened().volume(vol).build();
        let v = run(&CHECK, &p, &legacy_policy(), &legacy_view());
        assert_eq!(
            paths(&v),
            ["spec.volumes[2].projected.sources[1].secret.name"]
        );
    }

    #[test]
    fn a_secret_mounted_at_the_token_path_fails_without_the_secret_being_read() {
        // The view knows no Secret at all, and the legacy check is off.
        let p = pod("a")
            .automount_service_account_token(false)
            .secret_volume("legacy", "openclaw-agent-token-x7k2p")
            .container("agent")
            .mount("legacy", SA_TOKEN_MOUNT_PATH)
            .container("sidecar")
            .mount("legacy", &format!("{SA_TOKEN_MOUNT_PATH}/"))
            .build();
        let v = run(&CHECK, &p, &Policy::default(), &hardened_view());
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].volumeMounts[0]",
                "spec.containers[1].volumeMounts[0]"
            ],
            "{v:?}"
        );
        assert!(
            v[0].message.contains("openclaw-agent-token-x7k2p")
                && v[0].message.contains("never expires"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn a_secret_reaches_the_token_file_by_sub_path_items_or_projection() {
        let volume = |v: serde_json::Value| -> crate::engine::pod::Volume {
            serde_json::from_value(v).unwrap()
        };
        let p = pod("a")
            .automount_service_account_token(false)
            .secret_volume("file", "t")
            .volume(volume(
                json!({"name": "items", "secret": {"secretName": "t",
                "items": [{"key": "token", "path": "kubernetes.io/serviceaccount/token"}]}}),
            ))
            .volume(volume(
                json!({"name": "mixed", "projected": {"sources": [{"secret": {"name": "t"}}]}}),
            ))
            .volume(volume(json!({"name": "beside", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},
                {"secret": {"name": "tls", "items": [{"key": "a", "path": "a"}]}}]}})))
            .volume(volume(json!({"name": "ca", "secret": {"secretName": "t",
                "items": [{"key": "ca.crt", "path": "ca.crt"}]}})))
            .container("agent")
            .mount("file", &format!("{SA_TOKEN_MOUNT_PATH}/token"))
            .edit(|c| c.volume_mounts.as_mut().unwrap()[0].sub_path = Some("token".into()))
            .mount("items", "/var/run/secrets")
            .mount("mixed", SA_TOKEN_MOUNT_PATH)
            // A Secret beside a projected token, a CA file, a Secret elsewhere: no token.
            .container("other")
            .mount("beside", SA_TOKEN_MOUNT_PATH)
            .container("third")
            .mount("ca", SA_TOKEN_MOUNT_PATH)
            .mount("file", "/etc/app")
            .build();
        let v = run(&CHECK, &p, &Policy::default(), &hardened_view());
        assert_eq!(
            paths(&v),
            [
                "spec.containers[0].volumeMounts[0]",
                "spec.containers[0].volumeMounts[1]",
                "spec.containers[0].volumeMounts[2]"
            ],
            "{v:?}"
        );
    }

    #[test]
    fn template_leaving_automount_on_passes_while_the_mutation_replaces_the_token() {
        let p = pod("a").container("agent").build();
        let v = run_on_deployment(&CHECK, &p, &Policy::default(), &hardened_view());
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn template_leaving_automount_on_is_refused_at_the_template_path_without_the_mutation() {
        let p = pod("a").container("agent").build();
        let mut policy = Policy::default();
        policy.mutations.token.enabled = false;
        let v = run_on_deployment(&CHECK, &p, &policy, &hardened_view());
        assert_eq!(
            paths(&v),
            ["spec.template.spec.automountServiceAccountToken"]
        );
    }

    #[test]
    fn a_template_still_answers_for_a_long_projected_token() {
        let p = hardened()
            .projected_token_volume("long", Some(86400))
            .build();
        let v = run_on_deployment(&CHECK, &p, &Policy::default(), &hardened_view());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].path.starts_with("spec.template.spec.volumes["),
            "{}",
            v[0].path
        );
    }

    #[test]
    fn service_account_with_automount_off_gives_pods_that_leave_it_unset_no_token() {
        let mut view = hardened_view();
        view.add(
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": false,
                "metadata": {"name": "quiet", "namespace": NS}}),
            NS,
        )
        .unwrap();
        let p = pod("a").service_account("quiet").container("agent").build();
        assert!(run(&CHECK, &p, &Policy::default(), &view).is_empty());
        // The pod's own setting wins over the ServiceAccount's.
        let p = pod("a")
            .service_account("quiet")
            .automount_service_account_token(true)
            .container("agent")
            .build();
        assert_eq!(
            paths(&run(&CHECK, &p, &Policy::default(), &view)),
            ["spec.automountServiceAccountToken"]
        );
    }
}
