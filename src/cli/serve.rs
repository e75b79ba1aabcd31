//! `serve`: the webhook over TLS. Loads the policy, the serving certificate and the cluster
//! view, then runs until SIGTERM or SIGINT and drains.
//!
//! The view is built from `--manifests` for now (a static snapshot, ready at once). The live
//! view fed by the API server plugs in at [`serve_with`], which takes any view and a
//! readiness handle, so that a cluster sync can hold `/readyz` until it has caught up.

use crate::cluster::Confirm;
use crate::engine::policy::Policy;
use crate::engine::view::StaticView;
use crate::server::client_auth::ClientCa;
use crate::server::listen::ListenOptions;
use crate::server::live_policy::LivePolicy;
use crate::server::metrics::Metrics;
use crate::server::telemetry::Telemetry;
use crate::server::tls::ReloadingCert;
use crate::server::{self, AppState, Readiness};
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// PEM certificate chain to serve (re-read when its content changes).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// PEM private key of the certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,
    /// PEM CA bundle of the clients allowed to send reviews (the API server's client
    /// certificate): `/validate` and `/mutate` then answer only connections whose client
    /// certificate chains to it; `/healthz`, `/readyz` and `/metrics` still answer any TLS
    /// client. Re-read when its content changes. Without it, any TLS client may send reviews.
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// With --client-ca-file: a name (subject common name or DNS name) a client certificate
    /// must carry; repeat for more. Without it, any certificate the CA signed.
    #[arg(long = "client-name", value_name = "NAME", requires = "client_ca_file")]
    pub client_names: Vec<String>,
    /// Policy file (YAML); the built-in defaults without it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// How often the certificate files are compared with the pair being served, and the
    /// policy file with the policy in force (e.g. `10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub cert_reload_interval: Duration,
    /// How often an optional API found not served (Cilium's policies, SecretProviderClasses)
    /// is looked for again, so installing its CRD later needs no restart.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub discovery_interval: Duration,
    /// How often the PolicyReports of the scheduled scan (`audit --write-reports`) are listed
    /// for `/metrics` (`openclaw_admission_scan_results`; docs/observability.md).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub scan_reports_interval: Duration,
    /// After SIGTERM, how long reviews in flight get to finish.
    #[arg(long, default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Manifests (files or directories, YAML or JSON) whose ServiceAccounts, Namespaces,
    /// NetworkPolicies, Cilium policies, SecretProviderClasses, roles and bindings make the
    /// cluster view.
    /// Implies `--no-cluster`.
    #[arg(long, value_name = "FILE|DIR", num_args = 1..)]
    pub manifests: Vec<PathBuf>,
    /// Kubeconfig for the live cluster view; without it, $KUBECONFIG, ~/.kube/config or the
    /// in-cluster ServiceAccount.
    #[arg(long, value_name = "FILE", conflicts_with = "no_cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// Judge against `--manifests` only, with no API server (development, offline tests).
    #[arg(long)]
    pub no_cluster: bool,
    /// The key that signs approval stamps on workloads and verifies them on the Pods their
    /// controllers create (a Secret mounted as a file; at least 32 bytes). Without it,
    /// exemptions approved on a workload do not reach its Pods.
    #[arg(long, value_name = "FILE")]
    pub approval_key_file: Option<PathBuf>,
    /// The approval key before a rotation: stamps it signed are still honoured (and marked so
    /// in the `openclaw-approval` audit annotation) until `--previous-approval-key-until`;
    /// nothing new is signed with it. Leaving it out revokes every grant it signed.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["approval_key_file", "previous_approval_key_until"]
    )]
    pub previous_approval_key_file: Option<PathBuf>,
    /// When the rotation's overlap ends (`2027-01-31` or `2027-01-31T00:00:00Z`, UTC): from
    /// then on only the current key's stamps are honoured.
    #[arg(long, value_name = "DATE", requires = "previous_approval_key_file")]
    pub previous_approval_key_until: Option<String>,
}

/// Reads an approval key (`flag` names it in errors). Its content is never logged.
fn read_approval_key(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    let trimmed = key.trim_ascii();
    if trimmed.len() < 32 {
        return Err(format!(
            "{flag} {}: the key has {} bytes; at least 32 are needed (e.g. `head -c 48 /dev/urandom | base64`)",
            path.display(),
            trimmed.len()
        ));
    }
    Ok(trimmed.to_vec())
}

/// Reads the approval keys into the policy and sets the clock the legacy grace counts
/// from. A previous key whose overlap has already ended is left out with a warning rather
/// than an error: a pod restarted after the overlap must still start.
pub fn load_approval_keys(args: &Args, policy: &mut Policy, now: i64) -> Result<(), String> {
    policy.started = now;
    let Some(path) = &args.approval_key_file else {
        return Ok(());
    };
    let current = read_approval_key("--approval-key-file", path)?;
    if let (Some(prev_path), Some(until_text)) = (
        &args.previous_approval_key_file,
        &args.previous_approval_key_until,
    ) {
        let until = crate::engine::date::parse_utc(until_text)
            .map_err(|e| format!("--previous-approval-key-until: {e}"))?;
        let previous = read_approval_key("--previous-approval-key-file", prev_path)?;
        if previous == current {
            return Err(format!(
                "--previous-approval-key-file {} holds the same key as --approval-key-file; a rotation needs a new current key",
                prev_path.display()
            ));
        }
        if until <= now {
            tracing::warn!(
                until = %crate::engine::date::format_utc(until),
                "the previous approval key's overlap has ended; it is not loaded, and grants it signed are no longer honoured"
            );
        } else {
            tracing::info!(
                until = %crate::engine::date::format_utc(until),
                "approval key rotated: stamps of the previous key are honoured until the overlap ends"
            );
            policy.previous_approval_key = Some(Arc::new(crate::engine::policy::PreviousKey {
                key: previous,
                until,
            }));
        }
    }
    policy.approval_key = Some(Arc::new(crate::engine::policy::ApprovalKey::new(current)));
    let legacy_until = policy.approvals.legacy_until_secs(now);
    tracing::info!(
        legacy_until = %crate::engine::date::format_utc(legacy_until),
        max_lifetime = %policy.approvals.max_lifetime,
        "approval stamps without a content digest (from before this version) are honoured until legacy_until; re-approve them before then"
    );
    Ok(())
}

/// `10s`, `250ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 10s, 500ms, 1m)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if d.is_zero() {
        return Err("duration must be greater than zero".into());
    }
    Ok(d)
}

/// JSON lines on stdout, level from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    crate::server::log_format::init(filter, std::io::stdout);
}

/// Builds a static view from manifest files and directories (multi-document YAML or JSON,
/// read as `check` reads them). Kinds the view does not keep are skipped; any input that
/// cannot be read is an error naming the file and line.
pub fn load_view(paths: &[PathBuf]) -> anyhow::Result<StaticView> {
    let (objects, errors) = super::check::read_manifests(paths);
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("\n"));
    }
    let mut view = StaticView::new();
    for o in &objects {
        view.add(&o.value, "default").with_context(|| {
            let kind = o.value.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
            let name = o
                .value
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or("?");
            format!(
                "{} ({}): {kind} {name} does not fit its schema",
                o.file, o.place
            )
        })?;
    }
    Ok(view)
}

/// Waits for SIGTERM (what Kubernetes sends) or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// Everything `serve` needs, whatever the view.
pub struct ServeSetup<V> {
    pub listen: SocketAddr,
    pub policy: Arc<LivePolicy>,
    pub view: Arc<V>,
    pub readiness: Readiness,
    pub certs: Arc<ReloadingCert>,
    /// The client CA of `--client-ca-file`, if any.
    pub client_ca: Option<Arc<ClientCa>>,
    pub metrics: Arc<Metrics>,
    pub reload_interval: Duration,
    pub listen_options: ListenOptions,
    pub telemetry: Arc<Telemetry>,
}

/// Binds and serves until a signal; the part shared by every kind of view.
pub async fn serve_with<V: Confirm>(setup: ServeSetup<V>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(setup.listen)
        .await
        .with_context(|| format!("cannot listen on {}", setup.listen))?;
    tracing::info!(listen = %setup.listen, "serving /validate, /mutate, /healthz, /readyz, /metrics over TLS");
    // The policy file is looked at as often as the certificate; the task ends with the runtime.
    tokio::spawn(
        setup
            .policy
            .clone()
            .watch(setup.reload_interval, std::future::pending()),
    );
    let state = AppState {
        policy: setup.policy,
        view: setup.view,
        metrics: setup.metrics,
        readiness: setup.readiness,
        telemetry: setup.telemetry,
        body_budget: server::body_budget(server::BODY_BUDGET),
        large_bodies: Arc::new(tokio::sync::Semaphore::new(server::LARGE_BODIES_AT_ONCE)),
        max_reviews: server::MAX_REVIEWS_IN_FLIGHT,
        require_client_cert: setup.client_ca.is_some(),
        body_idle_timeout: server::BODY_IDLE_TIMEOUT,
        expired_log: Arc::new(server::expired_log::ExpiredLog::new()),
    };
    server::run(
        listener,
        state,
        setup.certs,
        setup.client_ca,
        setup.reload_interval,
        setup.listen_options,
        shutdown_signal(),
    )
    .await
    .context("cannot build the TLS configuration")?;
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    // Before anything touches rustls: one provider for the process, ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging();

    // The bytes parsed at start are kept, so the reloader knows when the file changes.
    let (policy, policy_source) = match &args.policy {
        Some(p) => {
            let content = match std::fs::read(p) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: cannot read the policy file {}: {e}", p.display());
                    return ExitCode::from(2);
                }
            };
            match Policy::from_yaml(&String::from_utf8_lossy(&content), &p.display().to_string()) {
                Ok(policy) => (policy, Some((p.clone(), content))),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => (Policy::default(), None),
    };
    let mut policy = policy;
    if let Err(e) = load_approval_keys(&args, &mut policy, crate::admission::unix_now()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let static_view = if args.no_cluster || !args.manifests.is_empty() {
        match load_view(&args.manifests) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let metrics = Arc::new(Metrics::new());
    let cluster_policy = policy.clone();
    let policy = Arc::new(match policy_source {
        Some((path, content)) => LivePolicy::from_file(policy, path, content, metrics.clone()),
        None => LivePolicy::fixed(Arc::new(policy), metrics.clone()),
    });
    let certs = match ReloadingCert::load(&args.tls_cert, &args.tls_key, metrics.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let client_ca = match &args.client_ca_file {
        Some(path) => match ClientCa::load(path, args.client_names.clone(), metrics.clone()) {
            Ok(ca) => Some(ca),
            Err(e) => {
                eprintln!("error: --client-ca-file: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    // Telemetry is set up once at start; a policy reload does not move the exporter.
    let telemetry = match Telemetry::start(&cluster_policy.telemetry, metrics.clone()) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("error: policy file: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(endpoint) = telemetry.endpoint() {
        tracing::info!(endpoint, "exporting one span per review over OTLP/HTTP");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let listen_options = ListenOptions {
        shutdown_grace: args.shutdown_grace,
        ..ListenOptions::default()
    };
    let flush_at_exit = telemetry.clone();
    let result = runtime.block_on(async move {
        match static_view {
            Some(view) => {
                serve_with(ServeSetup {
                    listen: args.listen,
                    policy,
                    view: Arc::new(view),
                    // A static view is complete from the start.
                    readiness: Readiness::new(true),
                    certs,
                    client_ca,
                    metrics,
                    reload_interval: args.cert_reload_interval,
                    listen_options,
                    telemetry: telemetry.clone(),
                })
                .await
            }
            None => {
                let client = crate::cluster::client(args.kubeconfig.as_deref())
                    .await
                    .context("cannot configure the Kubernetes client (use --kubeconfig, or --no-cluster with --manifests)")?;
                let scan = Arc::new(crate::cluster::reports::ScanStats::default());
                crate::cluster::reports::start(client.clone(), scan.clone(), args.scan_reports_interval);
                metrics.watch_scan(scan);
                let (view, ready) = crate::cluster::start(client, &cluster_policy, args.discovery_interval);
                metrics.watch_cache(view.stats());
                tracing::info!("watching the cluster; /readyz turns ready after the first list of every kind");
                serve_with(ServeSetup {
                    listen: args.listen,
                    policy,
                    view,
                    readiness: Readiness::from_fn(move || ready.is_ready()),
                    certs,
                    client_ca,
                    metrics,
                    reload_interval: args.cert_reload_interval,
                    listen_options,
                    telemetry: telemetry.clone(),
                })
                .await
            }
        }
    });
    // Outside the runtime: the flush waits on the export thread.
    drop(runtime);
    flush_at_exit.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "serve failed");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::view::ClusterView;

    #[test]
    fn durations_accept_milliseconds_seconds_and_minutes() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(extra: &[&str]) -> Result<Args, clap::Error> {
        use clap::Parser as _;
        let mut argv = vec!["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_rotation_loads_the_previous_key_until_its_overlap_ends() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current");
        let previous = dir.path().join("previous");
        std::fs::write(&current, "c".repeat(40)).unwrap();
        std::fs::write(&previous, "p".repeat(40)).unwrap();
        let (c, p) = (current.to_str().unwrap(), previous.to_str().unwrap());
        let flags = |until: &'static str| {
            args(&[
                "--approval-key-file",
                c,
                "--previous-approval-key-file",
                p,
                "--previous-approval-key-until",
                until,
            ])
            .unwrap()
        };

        let mut policy = Policy::default();
        load_approval_keys(&flags("2027-01-31"), &mut policy, NOW).unwrap();
        let prev = policy.previous_approval_key.as_deref().unwrap();
        assert_eq!(
            (prev.key.as_slice(), prev.until),
            ("p".repeat(40).as_bytes(), 1_801_353_600)
        );
        assert_eq!(
            policy.approval_key.as_deref().unwrap().bytes(),
            &b"c".repeat(40)[..]
        );
        assert_eq!(policy.started, NOW);
        assert!(
            !format!("{policy:?}").contains(&"p".repeat(40)),
            "the previous key never shows in a debug print"
        );

        // An overlap already over: started without it, not refused.
        let mut policy = Policy::default();
        load_approval_keys(&flags("2020-01-01"), &mut policy, NOW).unwrap();
        assert!(policy.previous_approval_key.is_none());
        assert!(policy.approval_key.is_some());

        // Bad configurations say what is wrong.
        let e = load_approval_keys(&flags("2027-02-31"), &mut Policy::default(), NOW).unwrap_err();
        assert!(
            e.contains("--previous-approval-key-until") && e.contains("2027-02-31"),
            "{e}"
        );
        let same = args(&[
            "--approval-key-file",
            c,
            "--previous-approval-key-file",
            c,
            "--previous-approval-key-until",
            "2027-01-31",
        ])
        .unwrap();
        let e = load_approval_keys(&same, &mut Policy::default(), NOW).unwrap_err();
        assert!(e.contains("same key"), "{e}");
        std::fs::write(&previous, "short").unwrap();
        let e = load_approval_keys(&flags("2027-01-31"), &mut Policy::default(), NOW).unwrap_err();
        assert!(
            e.contains("--previous-approval-key-file") && e.contains("at least 32"),
            "{e}"
        );
        // The flags go together.
        assert!(args(&["--approval-key-file", c, "--previous-approval-key-file", p]).is_err());
        assert!(
            args(&[
                "--previous-approval-key-file",
                p,
                "--previous-approval-key-until",
                "2027-01-31"
            ])
            .is_err()
        );
        assert!(
            args(&[
                "--approval-key-file",
                c,
                "--previous-approval-key-until",
                "2027-01-31"
            ])
            .is_err()
        );
    }

    #[test]
    fn view_takes_service_accounts_from_multi_document_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: claw, namespace: agents}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        )
        .unwrap();
        let view = load_view(&[dir.path().to_path_buf()]).unwrap();
        assert!(view.service_account_exists("agents", "claw"));
    }
}
