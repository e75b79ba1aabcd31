//! `make bench` (`cargo bench --bench webhook`): the targets of docs/performance.md#targets,
//! measured side by side in one run on 127.0.0.1 and printed as figures and ratios
//! (docs/performance.md says what each one means). The machine is shared and noisy, so the
//! figures that carry meaning are the ratios between targets measured in the same run, not the
//! absolute numbers.
//!
//! 1. Closed loop over TLS with keep-alive: an echo server on the same listener (the floor),
//!    `/validate` and `/mutate` on the real router, an ~11 KB agent pod review; the targets
//!    take turns in four rounds, so that the host's changing load falls on all of them.
//! 2. `/validate` at a fixed 5,000 reviews/s (and the echo at the same rate): p99.
//! 3. The same with 10,000 NetworkPolicies and 100,000 ServiceAccounts in the view.
//! 4. The engine alone (`admission::handle`), one thread, no HTTP, beside the scan floor:
//!    serde_json stepping over the same review without building anything; and the stages
//!    of a review apart (reading it, the checks, the mutations and their patch). All take
//!    turns in four rounds.
//! 5. Memory of the release binary (`serve --no-cluster`), idle and after load.
//! 6. `/validate` with one span per review exported over OTLP/HTTP to a local receiver,
//!    beside the same webhook with export off, taking turns in four rounds: the ratio is the
//!    price of export.
//!
//! Under `cargo test` (no `--bench` argument) it only starts everything and checks one answer
//! of each kind, so that the bench cannot rot unnoticed.
//!
//! Environment: `BENCH_SECONDS` (measuring time per target, default 10), `BENCH_WARMUP`
//! (default 3), `BENCH_CONNECTIONS` (default 16), `BENCH_RATE` (default 5000);
//! `BENCH_REVIEW=FILE` sends another review; `BENCH_ONLY=engine` runs part 4 alone, with
//! `BENCH_SECONDS` for each of its six figures (for a profiler); `BENCH_ONLY=patch` writes the
//! files of `make bench-jsonpatch`; `BENCH_ONLY=closed` runs part 1 alone (the ratios with
//! client authentication on and off).

mod load;
#[path = "../common/procfs.rs"]
mod procfs;
use procfs::thread_cpu_seconds;

#[path = "../common/otlp.rs"]
mod otlp;
mod setup;

use anyhow::{Context as _, bail, ensure};
use axum::body::Bytes;
use load::{Plan, Sample};
use openclaw_admission::admission::{self, Endpoint};
use openclaw_admission::engine::policy::Policy;
use openclaw_admission::engine::view::StaticView;
use setup::{Running, Tls};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio_rustls::TlsConnector;

struct Config {
    measure: Duration,
    warmup: Duration,
    connections: usize,
    rate: f64,
}

fn env_number(name: &str, default: f64) -> anyhow::Result<f64> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| *n > 0.0)
            .with_context(|| format!("{name}={v:?} is not a positive number")),
        Err(_) => Ok(default),
    }
}

/// Rounds of the closed loop (part 1): each target runs a quarter of its time in each.
const ROUNDS: u32 = 4;

impl Config {
    fn from_env() -> anyhow::Result<Config> {
        Ok(Config {
            measure: Duration::from_secs_f64(env_number("BENCH_SECONDS", 10.0)?),
            warmup: Duration::from_secs_f64(env_number("BENCH_WARMUP", 3.0)?),
            connections: env_number("BENCH_CONNECTIONS", 16.0)? as usize,
            rate: env_number("BENCH_RATE", 5000.0)?,
        })
    }
    fn closed(&self) -> Plan {
        Plan {
            connections: self.connections,
            warmup: self.warmup,
            measure: self.measure,
        }
    }
    /// The fixed-rate runs need little warmup: the closed-loop runs came first.
    fn fixed(&self) -> Plan {
        Plan {
            warmup: self.warmup.min(Duration::from_secs(1)),
            ..self.closed()
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's log lines formatted as `serve` formats them (JSON, info), written nowhere:
/// the formatting cost is part of a review, the terminal is not.
fn init_logging() {
    openclaw_admission::server::log_format::init(
        tracing_subscriber::EnvFilter::new("info"),
        std::io::sink,
    );
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One worker per core, as `serve` builds it.
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The name of the bench's OTLP receiver thread (part 6).
const RECEIVER_THREAD: &str = "otlp-receiver";
/// The name the OpenTelemetry SDK gives its batch span processor's thread, as the kernel
/// keeps it (15 bytes).
const EXPORTER_THREAD: &str = "OpenTelemetry.T";

/// CPU seconds of the span exporter's thread and of the receiver's, so far.
struct SpanCpu {
    exporter: f64,
    receiver: f64,
}

impl SpanCpu {
    fn now() -> SpanCpu {
        SpanCpu {
            exporter: procfs::threads_cpu_seconds(EXPORTER_THREAD),
            receiver: procfs::threads_cpu_seconds(RECEIVER_THREAD),
        }
    }

    fn since(&self, start: &SpanCpu) -> SpanCpu {
        SpanCpu {
            exporter: (self.exporter - start.exporter).max(0.0),
            receiver: (self.receiver - start.receiver).max(0.0),
        }
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn row(name: &str, s: &Sample, floor: Option<f64>) {
    let ratio = floor.map_or("1.00 (floor)".to_string(), |f| {
        format!("{:.2}", s.per_second() / f)
    });
    println!(
        "  {name:<28} {:>9.0} {:>13} {:>9.3} {:>9.3} {:>9.3} {:>7}",
        s.per_second(),
        ratio,
        s.quantile_us(0.50) / 1000.0,
        s.quantile_us(0.99) / 1000.0,
        s.max_us() / 1000.0,
        s.errors,
    );
}

fn header() {
    println!(
        "  {:<28} {:>9} {:>13} {:>9} {:>9} {:>9} {:>7}",
        "target", "req/s", "vs echo", "p50 ms", "p99 ms", "max ms", "errors"
    );
}

fn rate_row(name: &str, s: &Sample) {
    println!(
        "  {name:<28} {:>9.0} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>7}",
        s.per_second(),
        s.quantile_us(0.50) / 1000.0,
        s.quantile_us(0.99) / 1000.0,
        s.max_us() / 1000.0,
        s.late,
        s.errors,
    );
}

/// Checks one answer of each kind so that the figures are about the intended path: the agent
/// pod allowed at `/validate`, patched at `/mutate`, on both views.
async fn sanity(
    tls: &TlsConnector,
    echo: SocketAddr,
    small: SocketAddr,
    large: SocketAddr,
    body: &Bytes,
) -> anyhow::Result<String> {
    let review = |addr: SocketAddr, path: &'static str| {
        let body = body.clone();
        async move {
            let mut s = load::connect(tls, addr).await?;
            let (status, answer) = load::post(&mut s, path, &body).await?;
            ensure!(status == 200, "{path} answered HTTP {status}");
            let v: serde_json::Value = serde_json::from_slice(&answer)?;
            if v.pointer("/response/allowed") != Some(&serde_json::Value::Bool(true)) {
                bail!("{path} did not allow the bench pod: {v}");
            }
            anyhow::Ok((v, answer.len()))
        }
    };
    review(echo, "/validate").await?;
    let (_, validate_len) = review(small, "/validate").await?;
    review(large, "/validate").await?;
    let (mutated, mutate_len) = review(small, "/mutate").await?;
    let patch_len = mutated
        .pointer("/response/patch")
        .and_then(|p| p.as_str())
        .map(str::len)
        .context("/mutate sent no patch for the agent pod")?;
    Ok(format!(
        "answers: /validate {validate_len} B (allowed), /mutate {mutate_len} B (allowed, base64 JSONPatch {patch_len} B)"
    ))
}

/// Part 4's figures, each one call's cost: `admission::handle` for `/validate` and
/// `/mutate`, the scan floor, and the three stages a review goes through (reading the body
/// into a review and dropping it, the checks alone, the mutations and their patch alone).
struct EngineRates {
    validate: EngineRate,
    mutate: EngineRate,
    floor: EngineRate,
    read: EngineRate,
    checks: EngineRate,
    mutations: EngineRate,
}

/// Part 4: the engine alone on this thread, beside the scan floor. All six take turns in
/// four rounds, each round giving each a quarter of `time`, and each one's rounds are added
/// up: the host's load moves within seconds, and the multiples of the floor are only worth
/// printing if all of them saw the same moments. Each figure is by the wall clock and by
/// this thread's own CPU time (what a call costs when the host's other work steals the core;
/// the ratio of the two says how much it did).
fn engine_rates(body: &[u8], view: &StaticView, time: Duration) -> anyhow::Result<EngineRates> {
    let policy = Policy::default();
    let handle = |endpoint: Endpoint| {
        let policy = &policy;
        move || {
            std::hint::black_box(admission::handle(
                std::hint::black_box(body),
                endpoint,
                policy,
                view,
            ));
        }
    };
    let mut validate = handle(Endpoint::Validate);
    let mut mutate = handle(Endpoint::Mutate);
    // What no serde_json reader of this body can go below: serde_json stepping over the
    // whole review (UTF-8 check included, as the engine does it) without building anything.
    // The engine's figures divided by this one say how much of them is the building, the
    // checks and the answer, on whatever host the bench runs.
    let mut floor = || {
        let text = std::str::from_utf8(std::hint::black_box(body));
        let ignored = text.map(serde_json::from_str::<serde::de::IgnoredAny>);
        assert!(matches!(ignored, Ok(Ok(_))), "the bench review is JSON");
    };
    let review = admission::read(body)
        .map_err(|o| anyhow::anyhow!("the bench review cannot be judged: {:?}", o.summary))?;
    let mut read = || {
        std::hint::black_box(admission::read(std::hint::black_box(body)).is_ok());
    };
    let mut checks = || {
        std::hint::black_box(openclaw_admission::engine::evaluate(
            std::hint::black_box(&review),
            &policy,
            view,
        ));
    };
    let mut mutations = || {
        std::hint::black_box(
            openclaw_admission::engine::mutate(std::hint::black_box(&review), &policy, view)
                .is_ok(),
        );
    };
    let mut sums: [Tally; 6] = Default::default();
    const ROUNDS: u32 = 4;
    for _ in 0..ROUNDS {
        let fs: [&mut dyn FnMut(); 6] = [
            &mut validate,
            &mut mutate,
            &mut floor,
            &mut read,
            &mut checks,
            &mut mutations,
        ];
        for (sum, f) in sums.iter_mut().zip(fs) {
            sum.add(run_for(time / ROUNDS, f));
        }
    }
    let [validate, mutate, floor, read, checks, mutations] = sums.map(|t| t.rate());
    Ok(EngineRates {
        validate,
        mutate,
        floor,
        read,
        checks,
        mutations,
    })
}

impl EngineRates {
    /// The stages line: each stage's thread CPU (or wall) per call, and as a multiple of
    /// the floor.
    fn stages(&self) -> String {
        let f = self.floor.us();
        format!(
            "read (and drop) {:.1} µs = {:.2}x the floor; checks {:.1} µs; mutations and patch {:.1} µs",
            self.read.us(),
            self.read.us() / f,
            self.checks.us(),
            self.mutations.us()
        )
    }
}

/// For `make bench-jsonpatch` (tests/bench/jsonpatch): the bench pod as the API server
/// hands it to its JSON Patch library, the engine's patch for it, and the same change in
/// other shapes, each checked here to give what it claims. Returns the files written.
fn patch_files(
    body: &[u8],
    view: &StaticView,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<String>> {
    use base64::Engine as _;
    use serde_json::{Value, json};
    let review: Value = serde_json::from_slice(body)?;
    let pod = review
        .pointer("/request/object")
        .context("the bench review has no object")?;
    let outcome = admission::handle(body, Endpoint::Mutate, &Policy::default(), view);
    let answer: Value = serde_json::from_slice(&outcome.body)?;
    let encoded = answer
        .pointer("/response/patch")
        .and_then(Value::as_str)
        .context("/mutate sent no patch for the bench pod")?;
    let patch = base64::engine::general_purpose::STANDARD.decode(encoded)?;
    let ops: Vec<Value> = serde_json::from_slice(&patch)?;
    let apply = |ops: &[Value]| -> anyhow::Result<Value> {
        let patch: json_patch::Patch = serde_json::from_value(Value::from(ops.to_vec()))?;
        let mut doc = pod.clone();
        json_patch::patch(&mut doc, &patch)?;
        Ok(doc)
    };
    let patched = apply(&ops)?;
    let path_of = |op: &Value| op["path"].as_str().unwrap_or_default().to_string();

    // Each changed env list written whole by one `add` (which replaces a member that is
    // there), instead of one `add` per new variable.
    let mut whole_env: Vec<Value> = ops
        .iter()
        .filter(|op| !path_of(op).contains("/env/"))
        .cloned()
        .collect();
    for list in ["initContainers", "containers"] {
        let after = patched["spec"][list]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        for (i, c) in after.iter().enumerate() {
            if c.get("env") != pod["spec"][list][i].get("env") {
                whole_env.push(json!({"op": "add", "path": format!("/spec/{list}/{i}/env"), "value": c["env"]}));
            }
        }
    }
    ensure!(
        apply(&whole_env)? == patched,
        "the whole-env patch does not give the engine's result"
    );
    // The same without the one operation under metadata (the openclaw.io/injected
    // annotation): a different result, for what touching metadata costs.
    let no_metadata: Vec<Value> = ops
        .iter()
        .filter(|op| !path_of(op).starts_with("/metadata/"))
        .cloned()
        .collect();
    ensure!(
        no_metadata.len() < ops.len(),
        "the patch has no metadata operation"
    );

    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("pod.json", serde_json::to_vec(pod)?),
        ("patch.json", patch),
        ("patch-whole-env.json", serde_json::to_vec(&whole_env)?),
        ("patch-no-metadata.json", serde_json::to_vec(&no_metadata)?),
        ("patch-empty.json", b"[]".to_vec()),
    ];
    let mut made = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        made.push(format!("{name} ({} B)", bytes.len()));
    }
    Ok(made)
}

/// Calls made, wall seconds and this thread's CPU seconds (`None` once the kernel did not
/// say for one of the runs added up).
struct Tally {
    calls: u64,
    wall: f64,
    cpu: Option<f64>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            calls: 0,
            wall: 0.0,
            cpu: Some(0.0),
        }
    }
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.calls += other.calls;
        self.wall += other.wall;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
    }

    fn rate(&self) -> EngineRate {
        let n = self.calls.max(1) as f64;
        EngineRate {
            per_second: n / self.wall.max(f64::MIN_POSITIVE),
            cpu_us: self.cpu.map(|c| c * 1e6 / n),
        }
    }
}

/// Calls `f` in batches of 64 until `time` has passed on the wall clock.
fn run_for(time: Duration, f: &mut dyn FnMut()) -> Tally {
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut calls = 0u64;
    while start.elapsed() < time {
        for _ in 0..64 {
            f();
        }
        calls += 64;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu_start, thread_cpu_seconds()) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };
    Tally { calls, wall, cpu }
}

struct EngineRate {
    per_second: f64,
    /// Microseconds of this thread's CPU per review, when the kernel says.
    cpu_us: Option<f64>,
}

impl EngineRate {
    /// Microseconds per call: thread CPU when the kernel says, else the wall clock.
    fn us(&self) -> f64 {
        self.cpu_us.unwrap_or(1e6 / self.per_second)
    }
}

impl std::fmt::Display for EngineRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0} reviews/s   {:>6.1} µs each (wall)",
            self.per_second,
            1e6 / self.per_second
        )?;
        match self.cpu_us {
            Some(c) => write!(f, "   {c:>6.1} µs each (thread CPU)"),
            None => Ok(()),
        }
    }
}

struct Memory {
    idle_kib: u64,
    peak_kib: u64,
    after_kib: u64,
    validate: Sample,
    mutate: Sample,
}

/// The release binary as deployed: RSS once it listens, then the peak after load.
fn memory(
    client: &tokio::runtime::Runtime,
    tls: &Tls,
    connector: &TlsConnector,
    body: &Bytes,
    cfg: &Config,
) -> anyhow::Result<Memory> {
    let mut serve = setup::spawn_serve(tls)?;
    setup::wait_listening(&mut serve)?;
    std::thread::sleep(Duration::from_millis(500));
    let pid = serve.child.id();
    let idle_kib = procfs::proc_status_kib(pid, "VmRSS")?;
    let plan = Plan {
        connections: cfg.connections,
        warmup: Duration::from_secs(1).min(cfg.warmup),
        measure: cfg.measure / 2,
    };
    let addr = serve.addr;
    let (validate, mutate) = client.block_on(async {
        let v = load::closed_loop(connector, addr, "/validate", body.clone(), plan).await?;
        let m = load::closed_loop(connector, addr, "/mutate", body.clone(), plan).await?;
        anyhow::Ok((v, m))
    })?;
    let peak_kib = procfs::proc_status_kib(pid, "VmHWM")?;
    let after_kib = procfs::proc_status_kib(pid, "VmRSS")?;
    Ok(Memory {
        idle_kib,
        peak_kib,
        after_kib,
        validate,
        mutate,
    })
}

fn run() -> anyhow::Result<()> {
    let bench = std::env::args().any(|a| a == "--bench");
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging();
    let cfg = Config::from_env()?;
    let body = setup::agent_review()?;
    if bench && std::env::var("BENCH_ONLY").is_ok_and(|v| v == "patch") {
        let dir = setup::manifest_path("target/jsonpatch");
        let made = patch_files(&body, &setup::small_view()?, &dir)?;
        println!("{}: {}", dir.display(), made.join(", "));
        return Ok(());
    }
    if bench && std::env::var("BENCH_ONLY").is_ok_and(|v| v == "engine") {
        // For a profiler: the engine alone, nothing else in the process.
        let view = setup::small_view()?;
        let r = engine_rates(&body, &view, cfg.measure)?;
        println!("{:<10} {}", "validate", r.validate);
        println!("{:<10} {}", "mutate", r.mutate);
        println!("{:<10} {}", "floor", r.floor);
        println!("stages: {}", r.stages());
        return Ok(());
    }
    let tls = Tls::generate()?;
    let server_rt = runtime()?;
    let client_rt = runtime()?;
    let connector = load::connector(&tls.ca_pem)?;

    let rss_before = procfs::proc_status_kib(std::process::id(), "VmRSS")?;
    let built = Instant::now();
    let large = if bench {
        setup::large_view()?
    } else {
        setup::small_view()?
    };
    let build_time = built.elapsed();
    let index_kib =
        procfs::proc_status_kib(std::process::id(), "VmRSS")?.saturating_sub(rss_before);
    let counts = large.index.counts();

    let mut servers: Vec<Running> = Vec::new();
    let echo = setup::start_echo(&server_rt, &tls)?;
    let small_hook = setup::start_webhook(&server_rt, &tls, setup::small_view()?)?;
    // The same webhook with client authentication on (`serve --client-ca-file`), and a client
    // presenting the API server's certificate.
    let mtls_hook = setup::start_webhook_client_auth(&server_rt, &tls, setup::small_view()?)?;
    let mtls_connector =
        load::connector_with_client_cert(&tls.ca_pem, &tls.client_cert_pem, &tls.client_key_pem)?;
    let large_hook = setup::start_webhook(&server_rt, &tls, large)?;
    // The receiver gets its own runtime and thread, so that part 6 can say what it costs
    // apart from the webhook (in a cluster the collector is elsewhere).
    let receiver_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(RECEIVER_THREAD)
        .enable_all()
        .build()?;
    let receiver = receiver_rt.block_on(otlp::Receiver::start_discarding());
    let (otel_hook, otel_metrics) = setup::start_webhook_exporting(
        &server_rt,
        &tls,
        setup::small_view()?,
        Some(receiver.traces_url()),
    )?;
    let (echo_addr, small_addr, large_addr) = (echo.addr, small_hook.addr, large_hook.addr);
    let otel_addr = otel_hook.addr;
    let mtls_addr = mtls_hook.addr;
    servers.extend([echo, small_hook, large_hook, otel_hook, mtls_hook]);

    let answers =
        client_rt.block_on(sanity(&connector, echo_addr, small_addr, large_addr, &body))?;
    client_rt.block_on(sanity(&connector, echo_addr, otel_addr, large_addr, &body))?;
    client_rt.block_on(sanity(
        &mtls_connector,
        echo_addr,
        mtls_addr,
        large_addr,
        &body,
    ))?;
    // Without the client certificate, the client-auth webhook answers no review.
    let refused = client_rt.block_on(async {
        let mut sender = load::connect(&connector, mtls_addr).await?;
        load::post(&mut sender, "/validate", &body).await
    })?;
    anyhow::ensure!(
        refused.0 == hyper::StatusCode::FORBIDDEN,
        "the client-auth webhook answered a client without a certificate: {}",
        refused.0
    );
    if !bench {
        // Part 4's loops too, for a moment each: this fails if the bench review can no
        // longer be read into a review or is not JSON (what its loops assume).
        engine_rates(&body, &setup::small_view()?, Duration::from_millis(40))?;
        println!("bench smoke: servers up, {answers}; run `make bench` for figures");
        return Ok(());
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let started = Instant::now();
    println!("openclaw-admission webhook bench");
    println!(
        "  {cores} cores visible, {} keep-alive TLS connections, {:.0} s warmup + {:.0} s per target, loopback only",
        cfg.connections,
        cfg.warmup.as_secs_f64(),
        cfg.measure.as_secs_f64()
    );
    println!(
        "  request: AdmissionReview of an agent pod CREATE, {} bytes (1 init + 2 containers, env, volumes, managedFields)",
        body.len()
    );
    println!("  {answers}");
    println!();

    println!(
        "1. Closed loop over TLS, keep-alive, {} connections (server and load generator share the cores), the six targets interleaved in {ROUNDS} rounds",
        cfg.connections
    );
    header();
    // The host's other load moves by tens of percent within a minute: one target after the
    // other, the ratios said as much about the moment as about the code. Each target runs a
    // slice of its time in every round, so all four see the same moments.
    let slice = Plan {
        warmup: cfg.warmup / ROUNDS,
        measure: cfg.measure / ROUNDS,
        ..cfg.closed()
    };
    // Client authentication on and off in the same run: the last two targets are the small
    // view's webhook with `--client-ca-file`, loaded by a client presenting its certificate.
    let targets = [
        (echo_addr, "/validate", &connector),
        (small_addr, "/validate", &connector),
        (small_addr, "/mutate", &connector),
        (large_addr, "/validate", &connector),
        (mtls_addr, "/validate", &mtls_connector),
        (mtls_addr, "/mutate", &mtls_connector),
    ];
    let mut runs: [Vec<load::Sample>; 6] = Default::default();
    for _ in 0..ROUNDS {
        for ((addr, path, tls), samples) in targets.iter().zip(runs.iter_mut()) {
            samples.push(client_rt.block_on(load::closed_loop(
                tls,
                *addr,
                path,
                body.clone(),
                slice,
            ))?);
        }
    }
    let [
        echo,
        validate,
        mutate,
        validate_large,
        validate_mtls,
        mutate_mtls,
    ] = runs.map(load::Sample::combine);
    row("echo (same stack, no work)", &echo, None);
    let floor = echo.per_second();
    row("/validate", &validate, Some(floor));
    row("/mutate", &mutate, Some(floor));
    row("/validate, large view", &validate_large, Some(floor));
    row("/validate, client auth", &validate_mtls, Some(floor));
    row("/mutate, client auth", &mutate_mtls, Some(floor));
    println!();
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "closed") {
        // Part 1 alone: the ratios with client authentication on and off.
        for (what, s) in [
            ("/validate", &validate),
            ("/mutate", &mutate),
            ("/validate, client auth", &validate_mtls),
            ("/mutate, client auth", &mutate_mtls),
        ] {
            println!(
                "  {what:<28} {:.2} of the echo floor",
                s.per_second() / floor
            );
        }
        for s in &mut servers {
            s.stop();
        }
        server_rt.shutdown_timeout(Duration::from_secs(2));
        return Ok(());
    }

    println!(
        "2./3. /validate at a fixed {:.0} reviews/s (open loop): echo, small view, large view",
        cfg.rate
    );
    println!(
        "  {:<28} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "target", "sent/s", "p50 ms", "p99 ms", "max ms", "late", "errors"
    );
    let fixed = |addr| {
        client_rt.block_on(load::fixed_rate(
            &connector,
            addr,
            "/validate",
            body.clone(),
            cfg.rate,
            cfg.fixed(),
        ))
    };
    let rate_echo = fixed(echo_addr)?;
    rate_row("echo (floor)", &rate_echo);
    let rate_small = fixed(small_addr)?;
    rate_row("/validate, small view", &rate_small);
    let rate_large = fixed(large_addr)?;
    rate_row("/validate, large view", &rate_large);
    println!(
        "  large view: {} NetworkPolicies, {} ServiceAccounts, {} Namespaces; built in {:.2} s, about {:.1} MiB of this process",
        counts.get("networkpolicies").copied().unwrap_or(0),
        counts.get("serviceaccounts").copied().unwrap_or(0),
        counts.get("namespaces").copied().unwrap_or(0),
        build_time.as_secs_f64(),
        mib(index_kib)
    );
    println!();

    println!(
        "6. /validate with span export on (OTLP/HTTP to a local receiver) beside export off, interleaved off/on in {ROUNDS} rounds"
    );
    header();
    let mut off_runs = Vec::new();
    let mut on_runs = Vec::new();
    let cpu_at_start = SpanCpu::now();
    for _ in 0..ROUNDS {
        for (addr, runs) in [(small_addr, &mut off_runs), (otel_addr, &mut on_runs)] {
            runs.push(client_rt.block_on(load::closed_loop(
                &connector,
                addr,
                "/validate",
                body.clone(),
                slice,
            ))?);
        }
    }
    let (off, on) = (
        load::Sample::combine(off_runs),
        load::Sample::combine(on_runs),
    );
    row("/validate, export off", &off, Some(floor));
    row("/validate, export on", &on, Some(floor));
    let (export_off, export_on) = (off.per_second(), on.per_second());
    let export_ratio = export_on / export_off;
    let export_errors = off.errors + on.errors;
    // Let the last batch leave before reading the counters.
    std::thread::sleep(Duration::from_secs(1));
    let span_cpu = SpanCpu::now().since(&cpu_at_start);
    let exported = otel_metrics.spans_exported_total();
    println!(
        "  export on/off {export_ratio:.3} ({export_on:.0} vs {export_off:.0} req/s over {ROUNDS} slices each); spans exported {}, dropped {}, in {} exports",
        exported,
        otel_metrics.spans_dropped_total(),
        receiver.exports()
    );
    // Each review's share of the cores with export off (server and load generator): the
    // scale against which the export's own CPU per span reads.
    let review_us = cores.max(1) as f64 * 1e6 / export_off;
    println!(
        "  CPU per exported span: export thread {:.2} µs, receiver {:.2} µs; a review with export off costs {review_us:.1} µs of the {} cores",
        span_cpu.exporter * 1e6 / exported.max(1) as f64,
        span_cpu.receiver * 1e6 / exported.max(1) as f64,
        cores.max(1)
    );
    println!();

    for s in &mut servers {
        s.stop();
    }
    server_rt.shutdown_timeout(Duration::from_secs(2));

    println!("4. Engine alone: admission::handle in a loop, one thread, small view, no HTTP");
    let view = setup::small_view()?;
    let engine_time = Duration::from_secs(2).min(cfg.measure);
    let rates = engine_rates(&body, &view, engine_time)?;
    let floor_read = &rates.floor;
    for (name, r) in [("validate", &rates.validate), ("mutate", &rates.mutate)] {
        println!(
            "  {name:<10} {r}   {:.2}x the scan floor",
            r.us() / floor_read.us()
        );
    }
    println!(
        "  {:<10} {floor_read}   serde_json stepping over the review, building nothing",
        "floor"
    );
    println!("  stages: {}", rates.stages());
    println!();

    println!(
        "5. Memory of the release binary: serve --no-cluster --manifests <fixture view>, logs to /dev/null"
    );
    let mem = memory(&client_rt, &tls, &connector, &body, &cfg)?;
    println!(
        "  idle RSS after start {:>6.1} MiB;  peak (VmHWM) after load {:>6.1} MiB;  RSS after load {:>6.1} MiB",
        mib(mem.idle_kib),
        mib(mem.peak_kib),
        mib(mem.after_kib)
    );
    println!(
        "  load: /validate {:.0} req/s (p99 {:.3} ms), /mutate {:.0} req/s (p99 {:.3} ms), {} errors",
        mem.validate.per_second(),
        mem.validate.quantile_us(0.99) / 1000.0,
        mem.mutate.per_second(),
        mem.mutate.quantile_us(0.99) / 1000.0,
        mem.validate.errors + mem.mutate.errors
    );
    println!();

    let v_ratio = validate.per_second() / floor;
    let m_ratio = mutate.per_second() / floor;
    let p99_small = rate_small.quantile_us(0.99) / 1000.0;
    let p99_large = rate_large.quantile_us(0.99) / 1000.0;
    let p99_ratio = p99_large / p99_small;
    let rps_ratio = validate_large.per_second() / validate.per_second();
    let errors = export_errors
        + echo.errors
        + validate.errors
        + mutate.errors
        + validate_large.errors
        + validate_mtls.errors
        + mutate_mtls.errors
        + rate_echo.errors
        + rate_small.errors
        + rate_large.errors
        + mem.validate.errors
        + mem.mutate.errors;
    println!("Summary (ratios first; targets: docs/performance.md#targets)");
    let line = |what: &str, figure: String, target: &str, met: bool| {
        println!("  {what:<40} {figure:>12}   {target:<18} {}", verdict(met));
    };
    line(
        "/validate req/s vs echo floor",
        format!("{v_ratio:.2}"),
        ">= 0.50",
        v_ratio >= 0.5,
    );
    line(
        "/mutate req/s vs echo floor",
        format!("{m_ratio:.2}"),
        // 0.4 for /mutate, below /validate's 0.5: issue 12 set it (docs/performance.md#targets).
        ">= 0.40",
        m_ratio >= 0.4,
    );
    let v_mtls = validate_mtls.per_second() / floor;
    let m_mtls = mutate_mtls.per_second() / floor;
    line(
        "/validate, client auth, vs echo floor",
        format!("{v_mtls:.2}"),
        ">= 0.50",
        v_mtls >= 0.5,
    );
    line(
        "/mutate, client auth, vs echo floor",
        format!("{m_mtls:.2}"),
        ">= 0.40",
        m_mtls >= 0.4,
    );
    line(
        "p99 large / small view at fixed rate",
        format!("{p99_ratio:.2}x"),
        "< 2x",
        p99_ratio < 2.0,
    );
    line(
        "req/s large / small view (closed loop)",
        format!("{rps_ratio:.2}x"),
        "(no target)",
        true,
    );
    line(
        &format!("/validate p99 at {:.0}/s", cfg.rate),
        format!("{p99_small:.3} ms"),
        "< 2 ms",
        p99_small < 2.0,
    );
    line(
        "RSS idle",
        format!("{:.1} MiB", mib(mem.idle_kib)),
        "< 32 MiB",
        mem.idle_kib < 32 * 1024,
    );
    line(
        "RSS peak under load (VmHWM)",
        format!("{:.1} MiB", mib(mem.peak_kib)),
        "< 64 MiB",
        mem.peak_kib < 64 * 1024,
    );
    line(
        "/validate req/s, span export on / off",
        format!("{export_ratio:.2}"),
        ">= 0.95",
        export_ratio >= 0.95,
    );
    for (name, r, target) in [
        ("engine alone, validate", &rates.validate, 20.0),
        ("engine alone, mutate", &rates.mutate, 40.0),
    ] {
        let us = r.us();
        line(
            name,
            format!("{us:.1} µs"),
            &format!("<= {target:.0} µs"),
            us <= target,
        );
    }
    line("failed requests", errors.to_string(), "0", errors == 0);
    println!(
        "  scan floor (serde_json stepping over the review, building nothing): {:.1} µs; engine validate {:.2}x it, mutate {:.2}x",
        floor_read.us(),
        rates.validate.us() / floor_read.us(),
        rates.mutate.us() / floor_read.us()
    );
    println!(
        "  echo at {:.0}/s: p99 {:.3} ms (the share of the load generator and the TLS stack)",
        cfg.rate,
        rate_echo.quantile_us(0.99) / 1000.0
    );
    println!(
        "  echo floor {floor:.0} req/s; engine alone {:.0} validate/s, {:.0} mutate/s; measured in {:.0} s",
        rates.validate.per_second,
        rates.mutate.per_second,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
