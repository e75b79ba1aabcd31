//! `check`: offline verdicts on manifests, from the same engine the webhook runs.
//!
//! Every input is read first, so the ServiceAccounts, bindings, roles, NetworkPolicies, Cilium
//! policies, SecretProviderClasses, Namespaces and Secrets found anywhere in them form one
//! `StaticView`; only then is each Pod
//! and workload judged, as a CREATE by a user with no groups (so no annotation exemption is
//! honoured). Every violation is shown whatever its action, because the point of running this
//! before `kubectl apply` is to see all of them. Exit codes: 0 nothing refused (clean, or
//! warnings only), 1 something enforce mode would refuse, 2 bad usage, unreadable input, nothing to read at all (an empty directory or render), or a report
//! that cannot be written. A reader that stops early (`| head`) changes none of them.

use crate::engine::policy::Policy;
use crate::engine::review::{Review, Subject, WORKLOAD_KINDS, sandbox_group_of};
use crate::engine::view::{
    CONFIG_MAP, SANDBOX_CLAIM, SANDBOX_TEMPLATE, SANDBOX_WARM_POOL, SERVICE, StaticView, VIEW_KINDS,
};
use crate::engine::{self, Decision, Judged, Skip};
use crate::yaml::{self, Marks};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The user the offline check judges as: no groups, so no approver-only exemption applies.
const CHECK_USER: &str = "openclaw-admission-check";
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest file or directory (searched recursively for *.yaml, *.yml, *.json); `-` reads
    /// stdin. Repeat to combine inputs: all of them form one cluster view.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// Policy file (YAML); the built-in defaults without one.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Namespace for objects whose metadata names none (as `kubectl apply -n`).
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Apply what OpenShift's restricted-v2 SCC sets on admission (non-root UID, drop ALL,
    /// no privilege escalation, RuntimeDefault seccomp) to Pods and templates before judging,
    /// so verdicts match an OpenShift cluster where they are admitted under restricted-v2.
    #[arg(long)]
    pub assume_openshift: bool,
}

/// One Kubernetes object read from the inputs, with where it came from.
pub struct Manifest {
    /// File it was read from (`<stdin>` for `-`).
    pub file: String,
    /// Human-readable place inside the file: `document 2`, `document 1, items[3]`.
    pub place: String,
    /// First line of its document, when known.
    pub line: Option<usize>,
    pub value: Value,
    /// Where each field sits in the source (YAML input), to name the line of a field that
    /// does not fit its type.
    pub marks: Option<Marks>,
}

impl Manifest {
    fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }
    fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    fn meta_str(&self, key: &str) -> Option<&str> {
        self.value
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
    fn name(&self) -> &str {
        self.meta_str("name")
            .or_else(|| self.meta_str("generateName"))
            .unwrap_or("<unnamed>")
    }
    /// `file: document N (line L)`, for messages about this object.
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}: {} (line {l})", self.file, self.place),
            None => format!("{}: {}", self.file, self.place),
        }
    }
}

#[derive(Serialize)]
struct Report {
    objects: Vec<Judgement>,
    skipped: Vec<Skipped>,
    summary: Summary,
}

#[derive(Serialize)]
struct Judgement {
    kind: String,
    namespace: String,
    name: String,
    file: String,
    /// `test` for a Helm test-hook Pod (`helm.sh/hook`), judged like any Pod but run only by
    /// `helm test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    helm_hook: Option<String>,
    /// What the webhook would answer under this policy.
    allowed: bool,
    mode: &'static str,
    violations: Vec<Located>,
    exempted: Vec<Exempted>,
    /// Policy exemptions that matched but had expired, so their checks were judged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expired_exemptions: Vec<String>,
}

/// A violation with the line of its path in the input (YAML input only; for a path the
/// manifest does not write, such as a missing `runAsNonRoot`, the line of the closest part
/// it does write).
#[derive(Serialize)]
struct Located {
    #[serde(flatten)]
    judged: Judged,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
}

#[derive(Serialize)]
struct Exempted {
    check: String,
    reason: String,
}

#[derive(Serialize)]
struct Skipped {
    kind: String,
    name: String,
    file: String,
    reason: &'static str,
}

#[derive(Serialize)]
struct Summary {
    judged: usize,
    violations: usize,
    refused: usize,
}

pub fn run(args: Args) -> ExitCode {
    let policy = match &args.policy {
        None => Policy::default(),
        Some(p) => match Policy::from_file(p) {
            Ok(p) => p,
            Err(e) => {
                note!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };

    let (objects, mut errors) = read_manifests(&args.files);
    if objects.is_empty() && errors.is_empty() {
        // Nothing judged is not a clean result: say so rather than exit 0.
        errors.push("no Kubernetes objects found in the inputs".into());
    }

    // The whole view first: a ServiceAccount may come after the pod that uses it. Kubernetes'
    // built-in ClusterRoles go in before the manifests, which may redefine one of them.
    let mut view = StaticView::new();
    match super::builtin_roles::cluster_roles() {
        Ok(roles) => {
            for r in &roles {
                if let Err(e) = view.add(r, &args.namespace) {
                    errors.push(format!("built-in ClusterRole: {e}"));
                }
            }
        }
        Err(e) => errors.push(e),
    }
    for o in objects.iter().filter(|o| VIEW_KINDS.contains(&o.kind())) {
        if let Err(e) = view.add(&o.value, &args.namespace) {
            errors.push(schema_error(o, &e));
        }
    }
    // agent-sandbox's templates, warm pools and claims are judged, and also feed the view: a
    // claim is judged by what its template lets it add, a reference to one the inputs do not
    // hold is reported, and a Sandbox a claim took is traced to its template for approvals. Their schema errors are reported once, when they are judged.
    for o in objects.iter().filter(|o| {
        matches!(
            o.kind(),
            SANDBOX_TEMPLATE | SANDBOX_WARM_POOL | SANDBOX_CLAIM
        ) && is_sandbox(o)
    }) {
        let _ = view.add(&o.value, &args.namespace);
    }

    let mut report = Report {
        objects: Vec::new(),
        skipped: Vec::new(),
        summary: Summary {
            judged: 0,
            violations: 0,
            refused: 0,
        },
    };
    let mut expired_said = std::collections::BTreeSet::new();
    for o in &objects {
        let kind = o.kind();
        if kind.is_empty() {
            note!("skipped: {} (no kind)", o.location());
            continue;
        }
        // ConfigMaps and Services feed the view (key names; type and external name) but are
        // ordinary objects of an app's manifests: still said to be skipped.
        if VIEW_KINDS.contains(&kind) && kind != CONFIG_MAP && kind != SERVICE {
            continue;
        }
        if kind != "Pod" && !WORKLOAD_KINDS.contains(&kind) && !is_sandbox(o) {
            note!("skipped: {kind} {} in {} (not judged)", o.name(), o.file);
            report.skipped.push(skipped(o, "not judged"));
            continue;
        }
        let review = match review_of(o, &args) {
            Ok(r) => r,
            Err(e) => {
                errors.push(schema_error(o, &e));
                continue;
            }
        };
        let decision = engine::evaluate(&review, &policy, &view);
        // What is not a violation but still worth knowing (a claim's warm pool that the
        // inputs do not hold): said on stderr, as the API server would print it.
        for w in &decision.notes {
            note!("warning: {w}");
        }
        if decision.skipped == Some(Skip::NotAnAgent) {
            note!(
                "skipped: {kind} {}/{} in {} (not an agent: no selector matches)",
                review.namespace,
                o.name(),
                o.file
            );
            report
                .skipped
                .push(skipped(o, "not an agent (no selector matches)"));
            continue;
        }
        // Each expired exemption is said once, however many objects it would have covered.
        for e in &decision.expired_exemptions {
            if expired_said.insert((e.index, e.expires.clone())) {
                note!(
                    "warning: {}; renew its expires date or remove it",
                    e.describe()
                );
            }
        }
        report.objects.push(judgement(o, &review, decision));
    }

    report.summary.judged = report.objects.len();
    report.summary.violations = report.objects.iter().map(|j| j.violations.len()).sum();
    report.summary.refused = report.objects.iter().filter(|j| !j.allowed).count();

    // A reader that stops early (`| head`) ends the report, not the verdict: the exit code
    // below is the same as if every line had been read.
    let written = super::output::report(|out| match args.output {
        Output::Table => out.write_all(table(&report).as_bytes()),
        Output::Json => super::output::json(out, &report),
    });
    if let Err(e) = written {
        errors.push(e);
    }
    for e in &errors {
        note!("error: {e}");
    }
    if !errors.is_empty() {
        ExitCode::from(2)
    } else if report
        .objects
        .iter()
        .flat_map(|o| &o.violations)
        .any(|v| v.judged.in_enforce == crate::engine::policy::Action::Deny)
    {
        // What enforce mode would refuse fails the run; warnings are printed and pass, as
        // `kubectl apply` lets them through.
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A document that parsed but does not fit its kind, named by the path of the field and
/// its line in the source (not a place in JSON re-serialized from it). serde quotes the
/// offending value (`invalid type: string "sk-...", expected ...`), which could be a
/// credential in a mistyped env entry, so the value is cut and only its type is kept.
fn schema_error(o: &Manifest, e: &serde_json::Error) -> String {
    let kind = o.kind();
    let detail = match misfit(o) {
        Some((path, line, message)) => {
            let line = line.map_or(String::new(), |l| format!(" (line {l})"));
            format!("{path}{line}: {}", redact(&message))
        }
        None => redact(&without_json_position(&e.to_string())),
    };
    format!(
        "{}: {kind} {} does not fit the {kind} schema: {detail}",
        o.location(),
        o.name(),
    )
}

/// The first field of `o` that does not fit its kind: its path, its line when the source
/// was YAML, and serde's message. Found again with the full Kubernetes type of the kind
/// (only on this error path, so reading stays one pass when all is well).
fn misfit(o: &Manifest) -> Option<(String, Option<usize>, String)> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    use k8s_openapi::api::{networking::v1 as net, rbac::v1 as rbac};
    fn probe<T: serde::de::DeserializeOwned>(
        v: &Value,
    ) -> Option<(Vec<yaml::Step>, String, String)> {
        serde_path_to_error::deserialize::<_, T>(v).err().map(|e| {
            (
                yaml::path_steps(e.path()),
                e.path().to_string(),
                e.into_inner().to_string(),
            )
        })
    }
    let mut value = o.value.clone();
    if o.kind() == "Secret"
        && let Some(m) = value.as_object_mut()
    {
        // As the view reads it: data never parsed, never quoted.
        m.remove("data");
        m.remove("stringData");
    }
    let v = &value;
    let (steps, path, message) = match o.kind() {
        "Pod" => probe::<core::Pod>(v),
        "Deployment" => probe::<apps::Deployment>(v),
        "StatefulSet" => probe::<apps::StatefulSet>(v),
        "DaemonSet" => probe::<apps::DaemonSet>(v),
        "ReplicaSet" => probe::<apps::ReplicaSet>(v),
        "ReplicationController" => probe::<core::ReplicationController>(v),
        "Job" => probe::<batch::Job>(v),
        "CronJob" => probe::<batch::CronJob>(v),
        "Namespace" => probe::<core::Namespace>(v),
        "ServiceAccount" => probe::<core::ServiceAccount>(v),
        "Secret" => probe::<core::Secret>(v),
        "NetworkPolicy" => probe::<net::NetworkPolicy>(v),
        "Role" => probe::<rbac::Role>(v),
        "ClusterRole" => probe::<rbac::ClusterRole>(v),
        "RoleBinding" => probe::<rbac::RoleBinding>(v),
        "ClusterRoleBinding" => probe::<rbac::ClusterRoleBinding>(v),
        _ => None,
    }?;
    let line = o.marks.as_ref().map(|m| m.locate(&steps).line);
    Some((path, line, message))
}

/// serde_json's ` at line 1 column 523` counts in JSON the tool wrote, not in the input.
fn without_json_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn redact(message: &str) -> String {
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = message.find(marker).map(|i| i + marker.len())
            && let Some(len) = message[start..].find(", expected")
        {
            let what = &message[start..start + len];
            // `string "..."`, `integer `7``: keep the type word(s) before the quoted value.
            let kept = what.split(['"', '`']).next().unwrap_or("").trim_end();
            return format!(
                "{}{kept} (value not shown){}",
                &message[..start],
                &message[start + len..]
            );
        }
    }
    message.to_string()
}

fn skipped(o: &Manifest, reason: &'static str) -> Skipped {
    Skipped {
        kind: o.kind().to_string(),
        name: o.name().to_string(),
        file: o.file.clone(),
        reason,
    }
}

fn judgement(o: &Manifest, review: &Review, d: Decision) -> Judgement {
    Judgement {
        expired_exemptions: d.expired_exemptions.iter().map(|e| e.describe()).collect(),
        kind: o.kind().to_string(),
        namespace: review.namespace.clone(),
        name: o.name().to_string(),
        file: o.file.clone(),
        helm_hook: o
            .value
            .pointer("/metadata/annotations/helm.sh~1hook")
            .and_then(Value::as_str)
            .map(str::to_string),
        allowed: d.allowed,
        mode: d.mode.unwrap_or_default().as_str(),
        violations: d
            .violations
            .into_iter()
            .map(|judged| Located {
                line: o
                    .marks
                    .as_ref()
                    .map(|m| m.locate_dotted(&judged.violation.path).line),
                judged,
            })
            .collect(),
        exempted: d
            .exempted
            .into_iter()
            .map(|(check, reason)| Exempted { check, reason })
            .collect(),
    }
}

/// The review the API server would send for `kubectl apply` of this object.
/// An agent-sandbox object: one of its kinds, in its API group (another CRD may well have a
/// kind named `Sandbox`).
fn is_sandbox(o: &Manifest) -> bool {
    sandbox_group_of(o.kind()).is_some_and(|g| {
        o.api_version()
            .split_once('/')
            .is_some_and(|(group, _)| group == g)
    })
}

fn review_of(o: &Manifest, args: &Args) -> Result<Review, serde_json::Error> {
    let kind = o.kind();
    let mut subject = Subject::from_value(kind, o.value.clone())?;
    if args.assume_openshift {
        // Manifests carry no `openshift.io/scc` (the SCC admission writes it at creation):
        // judge them as the default SCC will admit them.
        engine::openshift::fill_as_restricted_v2(&mut subject);
    }
    Ok(Review::dry_run_create(
        kind,
        o.api_version(),
        o.meta_str("namespace").unwrap_or(&args.namespace),
        o.meta_str("name").unwrap_or_default(),
        CHECK_USER,
        subject,
        crate::admission::unix_now(),
    ))
}

// --- reading inputs ---

/// Reads every object from files, directories (recursively: *.yaml, *.yml, *.json, sorted)
/// and `-` (stdin), expanding Lists. Returns what could be read and one message per input
/// that could not (with its file and, for parse errors, its line); one bad file does not
/// stop the others from being read.
pub fn read_manifests(paths: &[PathBuf]) -> (Vec<Manifest>, Vec<String>) {
    let mut errors = Vec::new();
    let mut objects = Vec::new();
    for source in collect_sources(paths, &mut errors) {
        read_source(&source, &mut objects, &mut errors);
    }
    (objects, errors)
}

enum Source {
    Stdin,
    File(PathBuf),
}

/// Expands the `-f` arguments into files: directories recursively, sorted, keeping only
/// manifest extensions; a named file is read whatever its extension.
fn collect_sources(args: &[PathBuf], errors: &mut Vec<String>) -> Vec<Source> {
    let mut out = Vec::new();
    for a in args {
        if a.as_os_str() == "-" {
            out.push(Source::Stdin);
            continue;
        }
        match std::fs::metadata(a) {
            Ok(m) if m.is_dir() => {
                let before = out.len();
                walk(a, &mut out, errors);
                if out.len() == before {
                    errors.push(format!(
                        "{}: no manifest files (*.yaml, *.yml, *.json) in this directory",
                        a.display()
                    ));
                }
            }
            Ok(_) => out.push(Source::File(a.clone())),
            Err(e) => errors.push(format!("{}: {}", a.display(), io_reason(&e))),
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<Source>, errors: &mut Vec<String>) {
    // A chart's templates are not manifests until Helm renders them.
    if dir.join("Chart.yaml").is_file() {
        note!(
            "skipped: {} is a Helm chart; render it first: helm template NAME {} | openclaw-admission check -f -",
            dir.display(),
            dir.display()
        );
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(format!("{}: {}", dir.display(), io_reason(&e)));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        // Hidden entries are skipped: `.git`, and the `..data` links of a mounted ConfigMap.
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        let is_link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        match std::fs::metadata(&p) {
            // Symlinked directories are not followed, so a link loop cannot recurse forever.
            Ok(m) if m.is_dir() && !is_link => walk(&p, out, errors),
            Ok(m) if m.is_file() && is_manifest(&p) => out.push(Source::File(p)),
            _ => {}
        }
    }
}

fn is_manifest(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

fn read_source(source: &Source, objects: &mut Vec<Manifest>, errors: &mut Vec<String>) {
    let (name, text, json) = match source {
        Source::Stdin => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                errors.push(format!("<stdin>: {e}"));
                return;
            }
            ("<stdin>".to_string(), s, false)
        }
        Source::File(p) => match std::fs::read_to_string(p) {
            Ok(s) => (
                p.display().to_string(),
                s,
                p.extension().is_some_and(|e| e == "json"),
            ),
            Err(e) => {
                errors.push(format!("{}: {}", p.display(), io_reason(&e)));
                return;
            }
        },
    };
    let docs = if json {
        parse_json(&text)
    } else {
        parse_yaml(&text)
    };
    match docs {
        Ok(docs) => {
            for (i, doc) in docs.into_iter().enumerate() {
                let place = format!("document {}", i + 1);
                expand(doc, &name, place, objects);
            }
        }
        Err(e) => errors.push(format!("{name}: {e}")),
    }
}

/// One document read from an input.
#[derive(Debug)]
struct Doc {
    line: Option<usize>,
    value: Value,
    marks: Option<Marks>,
}

/// A parse error with its place, without the parser's own `at line L column C` suffix.
fn located(kind: &str, line: usize, column: usize, message: &str) -> String {
    let message = message.replace(&format!(" at line {line} column {column}"), "");
    format!("line {line}, column {column}: invalid {kind}: {message}")
}

/// Every document of a YAML stream, read as kubectl reads it (YAML 1.1 scalars, see
/// [`crate::yaml`]), with the line it starts on; empty documents are dropped.
fn parse_yaml(text: &str) -> Result<Vec<Doc>, String> {
    let docs = yaml::read_stream(text, yaml::Duplicates::LastWins)
        .map_err(|e| located("YAML", e.line, e.column, &e.message))?;
    Ok(docs
        .into_iter()
        .filter(|d| !d.value.is_null())
        .map(|d| Doc {
            line: Some(d.marks.line),
            value: d.value,
            marks: Some(d.marks),
        })
        .collect())
}

/// A JSON file: one object, or several one after the other.
fn parse_json(text: &str) -> Result<Vec<Doc>, String> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return Ok(out),
            Some(Ok(v)) => {
                let line = text[..start].matches('\n').count() + 1;
                let skipped_ws = text[start..].len() - text[start..].trim_start().len();
                let extra = text[start..start + skipped_ws].matches('\n').count();
                out.push(Doc {
                    line: Some(line + extra),
                    value: v,
                    marks: None,
                });
            }
            Some(Err(e)) => return Err(located("JSON", e.line(), e.column(), &e.to_string())),
        }
    }
}

/// Adds an object, or each item of a `List` (`kind: List`, or a typed list such as
/// `PodList` whose items may omit their kind).
fn expand(doc: Doc, file: &str, place: String, objects: &mut Vec<Manifest>) {
    let Doc {
        line,
        mut value,
        marks,
    } = doc;
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let is_list = kind.ends_with("List") && value.get("items").is_some_and(Value::is_array);
    if !is_list {
        objects.push(Manifest {
            file: file.to_string(),
            place,
            line,
            value,
            marks,
        });
        return;
    }
    let item_kind = kind
        .strip_suffix("List")
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let api_version = value.get("apiVersion").cloned();
    let items = match value.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for (i, mut item) in items.into_iter().enumerate() {
        if let (Some(k), Some(m)) = (&item_kind, item.as_object_mut())
            && !m.contains_key("kind")
        {
            m.insert("kind".into(), Value::String(k.clone()));
            if let Some(av) = &api_version {
                m.entry("apiVersion").or_insert_with(|| av.clone());
            }
        }
        let marks = marks
            .as_ref()
            .and_then(|m| m.key("items"))
            .and_then(|m| m.index(i))
            .cloned();
        let doc = Doc {
            line: marks.as_ref().map(|m| m.line).or(line),
            value: item,
            marks,
        };
        expand(doc, file, format!("{place}, items[{i}]"), objects);
    }
}

// --- table output ---

/// Per object with violations: a heading, then one aligned row per violation (check, tier,
/// action, path) with what is wrong and the fix on the lines below. Clean objects get one
/// line each; the summary closes.
fn table(report: &Report) -> String {
    let mut out = String::new();
    // One CHECK width for the whole report, so every block lines up the same way.
    let w_check = report
        .objects
        .iter()
        .flat_map(|o| o.violations.iter())
        .map(|j| j.judged.violation.check.len())
        .max()
        .unwrap_or(0)
        .max("CHECK".len());
    let indent = " ".repeat(2 + w_check + 2);
    for o in report.objects.iter().filter(|o| !o.violations.is_empty()) {
        let n = o.violations.len();
        let verdict = if o.allowed {
            "would be allowed"
        } else {
            "would be refused"
        };
        out.push_str(&format!(
            "{} {}/{}{} ({}): {n} violation{}, {verdict} in {} mode\n",
            o.kind,
            o.namespace,
            o.name,
            hook_note(o),
            o.file,
            plural(n),
            o.mode
        ));
        out.push_str(&format!(
            "  {:<w_check$}  {:<6}  {:<6}  PATH\n",
            "CHECK", "TIER", "ACTION"
        ));
        for l in &o.violations {
            let (j, v) = (&l.judged, &l.judged.violation);
            let line = l.line.map_or(String::new(), |n| format!(" (line {n})"));
            out.push_str(&format!(
                "  {:<w_check$}  {:<6}  {:<6}  {}{line}\n",
                v.check,
                v.tier.as_str(),
                j.action.as_str(),
                v.path
            ));
            out.push_str(&format!("{indent}{}\n{indent}fix: {}\n", v.message, v.fix));
        }
        for e in &o.exempted {
            out.push_str(&format!("  exempted {}: {}\n", e.check, e.reason));
        }
        for e in &o.expired_exemptions {
            out.push_str(&format!("  not exempted: {e}\n"));
        }
        out.push('\n');
    }
    for o in report.objects.iter().filter(|o| o.violations.is_empty()) {
        out.push_str(&format!(
            "passed: {} {}/{}{} ({})\n",
            o.kind,
            o.namespace,
            o.name,
            hook_note(o),
            o.file
        ));
        for e in &o.exempted {
            out.push_str(&format!("  exempted {}: {}\n", e.check, e.reason));
        }
    }
    let s = &report.summary;
    out.push_str(&format!(
        "{} object{} judged, {} violation{}",
        s.judged,
        plural(s.judged),
        s.violations,
        plural(s.violations)
    ));
    if s.refused > 0 {
        out.push_str(&format!(
            ", {} object{} would be refused",
            s.refused,
            plural(s.refused)
        ));
    }
    out.push('\n');
    out
}

/// ` (Helm test hook)`: such a Pod runs only under `helm test`, but runs with the same
/// ServiceAccount and network as the release, so it is judged like any other.
fn hook_note(o: &Judgement) -> String {
    match o.helm_hook.as_deref() {
        None => String::new(),
        Some(h) if h.split(',').any(|h| h.trim().starts_with("test")) => {
            format!(" (Helm test hook {h:?})")
        }
        Some(h) => format!(" (Helm hook {h:?})"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn documents_start_at_their_first_node() {
        let lines = |t: &str| {
            parse_yaml(t)
                .unwrap()
                .iter()
                .map(|d| d.line)
                .collect::<Vec<_>>()
        };
        assert_eq!(lines("a: 1\n---\nb: 2\n"), vec![Some(1), Some(3)]);
        assert_eq!(
            lines("# c\n---\na: 1\n---\n\n# x\nb: 2\n"),
            vec![Some(3), Some(7)]
        );
        assert_eq!(lines("\n\nkind: Pod\n"), vec![Some(3)]);
    }

    #[test]
    fn yaml_error_names_line_and_column_once() {
        let err = parse_yaml("a: 1\nb: [\n").unwrap_err();
        assert!(err.starts_with("line 3, column 1: invalid YAML: "), "{err}");
        assert!(!err.contains(" at line "), "{err}");
    }

    #[test]
    fn schema_errors_never_quote_the_value() {
        let err = serde_json::from_value::<k8s_openapi::api::core::v1::EnvVar>(
            serde_json::json!({"name": "OPENAI_API_KEY", "value": 123456789}),
        )
        .unwrap_err();
        let shown = redact(&err.to_string());
        assert!(!shown.contains("123456789"), "{shown}");
        assert!(
            shown.contains("invalid type: integer (value not shown), expected"),
            "{shown}"
        );
    }

    #[test]
    fn typed_list_items_get_their_kind() {
        let mut objects = Vec::new();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "PodList", "items": [{"metadata": {"name": "a"}}]});
        let doc = Doc {
            line: Some(1),
            value: list,
            marks: None,
        };
        expand(doc, "f.json", "document 1".into(), &mut objects);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].kind(), "Pod");
        assert_eq!(objects[0].place, "document 1, items[0]");
    }

    #[test]
    fn json_stream_reports_the_line_of_each_object() {
        let docs = parse_json("{\"a\": 1}\n\n{\"b\": 2}\n").unwrap();
        assert_eq!(
            docs.iter().map(|d| d.line).collect::<Vec<_>>(),
            vec![Some(1), Some(3)]
        );
    }
}
