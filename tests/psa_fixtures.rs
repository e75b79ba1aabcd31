//! Kubernetes' own Pod Security fixtures against every check: the pods of
//! `k8s.io/pod-security-admission`'s `test/testdata/{baseline,restricted}/v1.37/{fail,pass}`,
//! at the version the control plane pins (fetched by tests/psa/fetch.sh, `make psa`), each
//! judged by every pod check as an agent would be.
//!
//! - Every `fail` fixture breaks one rule, named by its file (`restrictedvolumes3.yaml`:
//!   `restrictedVolumes`): some finding of the check that enforces the rule must carry the
//!   rule's tag, `(Pod Security restricted: restrictedVolumes)`. A rule Pod Security's
//!   `restricted` level puts in place of a `baseline` one (`capabilities_restricted` for
//!   `capabilities_baseline`, ...) counts for it, as it does in Pod Security.
//! - No `pass` fixture of a level gets a finding tagged with a rule of that level (for
//!   `restricted`, of either level). Findings beyond Pod Security carry no such tag.
//! - Every tag names a rule of the table below, at its level, from the check listed for it.
//!
//! It prints `psa <level> v1.37: N/N fail flagged, 0 findings on M pass` per level, with what
//! failed above it, and exits non-zero unless both are whole.

#[path = "common/prebuilt.rs"]
mod prebuilt;

use openclaw_admission::engine::checks::check::{Check, PodInput};
use openclaw_admission::engine::checks::{
    apparmor_profile, drop_all_capabilities, host_probes, no_host_access, no_privilege_escalation,
    proc_mount, run_as_non_root, run_pod_checks, safe_sysctls, seccomp_profile, selinux_options,
    volume_types,
};
use openclaw_admission::engine::pod::Pod;
use openclaw_admission::engine::policy::Policy;
use openclaw_admission::engine::review::Target;
use openclaw_admission::engine::view::StaticView;
use openclaw_admission::engine::violation::Violation;
use openclaw_admission::yaml::{Duplicates, from_document, read_stream};
use prebuilt::{Need, require};
use std::path::Path;
use std::process::ExitCode;

const BASELINE: &str = "baseline";
const RESTRICTED: &str = "restricted";

/// Every Pod Security rule of v1.37 (its id in pod-security-admission), its level, and the
/// check that enforces it (docs/policy-reference.md#pod-security).
static RULES: &[(&str, &str, &Check)] = &[
    ("hostProbesAndHostLifecycle", BASELINE, &host_probes::CHECK),
    ("appArmorProfile", BASELINE, &apparmor_profile::CHECK),
    (
        "capabilities_baseline",
        BASELINE,
        &drop_all_capabilities::CHECK,
    ),
    ("hostNamespaces", BASELINE, &no_host_access::CHECK),
    ("hostPathVolumes", BASELINE, &no_host_access::CHECK),
    ("hostPorts", BASELINE, &no_host_access::CHECK),
    ("privileged", BASELINE, &no_privilege_escalation::CHECK),
    ("procMount", BASELINE, &proc_mount::CHECK),
    ("seccompProfile_baseline", BASELINE, &seccomp_profile::CHECK),
    ("seLinuxOptions", BASELINE, &selinux_options::CHECK),
    ("sysctls", BASELINE, &safe_sysctls::CHECK),
    ("windowsHostProcess", BASELINE, &no_host_access::CHECK),
    (
        "allowPrivilegeEscalation",
        RESTRICTED,
        &no_privilege_escalation::CHECK,
    ),
    (
        "capabilities_restricted",
        RESTRICTED,
        &drop_all_capabilities::CHECK,
    ),
    ("procMount_restricted", RESTRICTED, &proc_mount::CHECK),
    ("restrictedVolumes", RESTRICTED, &volume_types::CHECK),
    ("runAsNonRoot", RESTRICTED, &run_as_non_root::CHECK),
    ("runAsUser", RESTRICTED, &run_as_non_root::CHECK),
    (
        "seccompProfile_restricted",
        RESTRICTED,
        &seccomp_profile::CHECK,
    ),
];

/// The `restricted` rules that replace a `baseline` one at that level (their
/// `OverrideCheckIDs`): a finding under either counts for both.
const OVERRIDES: &[(&str, &str)] = &[
    ("capabilities_restricted", "capabilities_baseline"),
    ("procMount_restricted", "procMount"),
    ("restrictedVolumes", "hostPathVolumes"),
    ("seccompProfile_restricted", "seccompProfile_baseline"),
];

/// The Pod Security tags in a finding: `(Pod Security <level>: <rule>)`, as (level, rule).
fn tags(v: &Violation) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for (at, _) in v.message.match_indices("(Pod Security ") {
        let rest = &v.message[at + "(Pod Security ".len()..];
        let Some(end) = rest.find(')') else { continue };
        if let Some((level, rule)) = rest[..end].split_once(": ")
            && (level == BASELINE || level == RESTRICTED)
            && !rule.is_empty()
            && rule.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            out.push((level, rule));
        }
    }
    out
}

/// The rules a fixture of `rule` is flagged under: itself and its override partner.
fn group(rule: &str) -> Vec<&'static str> {
    let mut g: Vec<&str> = RULES.iter().map(|r| r.0).filter(|r| *r == rule).collect();
    for (a, b) in OVERRIDES {
        if *a == rule {
            g.push(b);
        }
        if *b == rule {
            g.push(a);
        }
    }
    g
}

/// The rule a fixture file names: `restrictedvolumes12.yaml` -> `restrictedVolumes`.
fn rule_of(file: &str) -> Option<&'static str> {
    let stem = file
        .strip_suffix(".yaml")?
        .trim_end_matches(|c: char| c.is_ascii_digit());
    RULES
        .iter()
        .map(|r| r.0)
        .find(|r| r.eq_ignore_ascii_case(stem))
}

fn judge(pod: &Pod, policy: &Policy, view: &StaticView) -> Vec<Violation> {
    let target = Target::of_pod(pod, "default");
    run_pod_checks(&PodInput {
        target,
        policy,
        view,
    })
}

fn read_pods(dir: &Path) -> Result<Vec<(String, Pod)>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for name in files {
        let text = std::fs::read_to_string(dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        let docs = read_stream(&text, Duplicates::LastWins).map_err(|e| format!("{name}: {e}"))?;
        for doc in docs {
            let pod: Pod = from_document(&doc).map_err(|e| format!("{name}: {e}"))?;
            out.push((name.clone(), pod));
        }
    }
    Ok(out)
}

/// One level's fixtures: its summary line, and what failed.
fn level(root: &Path, level: &str, minor: &str) -> Result<(String, Vec<String>), String> {
    let policy = Policy::default();
    let view = StaticView::new();
    let dir = root.join(level).join(minor);
    let mut problems = Vec::new();
    let known = |v: &Violation, lvl: &str, rule: &str| {
        RULES
            .iter()
            .any(|(r, l, c)| *r == rule && *l == lvl && c.id == v.check)
    };

    let fail = read_pods(&dir.join("fail"))?;
    let mut flagged = 0;
    for (file, pod) in &fail {
        let found = judge(pod, &policy, &view);
        let Some(rule) = rule_of(file) else {
            problems.push(format!(
                "{level} fail/{file}: names no Pod Security rule this test knows"
            ));
            continue;
        };
        let g = group(rule);
        let hit = found
            .iter()
            .any(|v| tags(v).iter().any(|(l, r)| g.contains(r) && known(v, l, r)));
        if hit {
            flagged += 1;
        } else {
            problems.push(format!(
                "{level} fail/{file}: not flagged under {rule}; found: {}",
                found
                    .iter()
                    .map(|v| format!("{}@{}", v.check, v.path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for v in &found {
            for (l, r) in tags(v) {
                if !known(v, l, r) {
                    problems.push(format!("{level} fail/{file}: {v} carries an unknown tag"));
                }
            }
        }
    }

    let pass = read_pods(&dir.join("pass"))?;
    let mut findings = 0;
    for (file, pod) in &pass {
        for v in judge(pod, &policy, &view) {
            for (l, r) in tags(&v) {
                if !known(&v, l, r) {
                    problems.push(format!("{level} pass/{file}: {v} carries an unknown tag"));
                }
                if l == level || l == BASELINE {
                    findings += 1;
                    problems.push(format!("{level} pass/{file}: {v}"));
                }
            }
        }
    }
    if fail.is_empty() || pass.is_empty() {
        problems.push(format!("{level}: no fixtures under {}", dir.display()));
    }
    let line = format!(
        "psa {level} {minor}: {flagged}/{} fail flagged, {findings} findings on {} pass",
        fail.len(),
        pass.len()
    );
    Ok((line, problems))
}

fn main() -> ExitCode {
    let root = match require(&[Need::PsaFixtures]) {
        Ok(mut dirs) => dirs.remove(0),
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::FAILURE;
        }
    };
    let minor = match std::fs::read_to_string(root.join(".complete")) {
        Ok(m) if m.trim().starts_with("v1.") => m.trim().to_string(),
        _ => {
            eprintln!("{}: no Kubernetes minor in .complete", root.display());
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    for lvl in [RESTRICTED, BASELINE] {
        match level(&root, lvl, &minor) {
            Ok((line, problems)) => {
                for p in &problems {
                    println!("  {p}");
                }
                println!("{line}");
                ok &= problems.is_empty();
            }
            Err(e) => {
                println!("psa {lvl} {minor}: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
