//! A soak against a real `serve` process (the release build): 200,000 reviews over
//! concurrent keep-alive TLS connections, half at `/validate` and half at `/mutate`, with
//! zero errors; the resident set sampled from /proc while it runs and printed, and not
//! growing after warm-up. Halfway through, the serving certificate is rotated (a new
//! `..data` generation swapped in with one rename, as the kubelet updates a Secret volume):
//! no request fails, and a fresh handshake then gets the new certificate. Connections are
//! re-opened every few thousand reviews, so handshakes happen before, during and after the
//! rotation.

use super::support::{self, Certs, Serve, load};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const REVIEWS: u64 = 200_000;
const CONNECTIONS: usize = 16;
/// Reviews per connection before it is closed and opened again.
const PER_CONNECTION: u64 = 2_500;
/// How far the last quarter's resident set may rise above the first quarter's.
const GROWTH_BOUND_KIB: u64 = 4 * 1024;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[derive(Debug, Clone, Copy)]
struct RssSample {
    seconds: f64,
    reviews: u64,
    rss_kib: u64,
}

#[test]
fn two_hundred_thousand_reviews_with_a_certificate_rotation_and_a_flat_resident_set() {
    let _one = support::exclusive();
    let mut certs = Certs::new().unwrap();
    let serve = Serve::static_view(&certs, &["--cert-reload-interval", "200ms"]).unwrap();
    let rt = support::runtime();
    let addr = serve.addr;
    let review = support::agent_review();
    let uid = {
        let v: serde_json::Value = serde_json::from_slice(&review).unwrap();
        format!("\"uid\":\"{}\"", v["request"]["uid"].as_str().unwrap())
    };
    let tls = load::connector(certs.ca_pem()).unwrap();

    // Before: the first certificate is served.
    let first = rt
        .block_on(support::served_leaf(certs.ca_pem(), addr))
        .unwrap();
    assert_eq!(first, certs.leaves[0]);

    let claimed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let handshakes = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));

    // The resident set, four times a second, from a plain thread.
    let sampler = {
        let (done, finished) = (done.clone(), finished.clone());
        let pid = serve.pid();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !finished.load(Ordering::Relaxed) {
                if let Ok(rss_kib) = support::proc_status_kib(pid, "VmRSS") {
                    samples.push(RssSample {
                        seconds: start.elapsed().as_secs_f64(),
                        reviews: done.load(Ordering::Relaxed),
                        rss_kib,
                    });
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        })
    };

    let started = Instant::now();
    let rotation = rt.block_on(async {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (tls, review, uid) = (tls.clone(), review.clone(), uid.clone());
                let (claimed, done, errors, handshakes) = (
                    claimed.clone(),
                    done.clone(),
                    errors.clone(),
                    handshakes.clone(),
                );
                tokio::spawn(async move {
                    let mut sender: Option<load::Sender> = None;
                    let mut on_this = 0u64;
                    loop {
                        let i = claimed.fetch_add(1, Ordering::Relaxed);
                        if i >= REVIEWS {
                            return;
                        }
                        if sender.is_none() || on_this >= PER_CONNECTION {
                            match load::connect(&tls, addr).await {
                                Ok(s) => {
                                    sender = Some(s);
                                    on_this = 0;
                                    handshakes.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    eprintln!("connect failed: {e:#}");
                                    errors.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                        }
                        let path = if i % 2 == 0 { "/validate" } else { "/mutate" };
                        let Some(s) = sender.as_mut() else { continue };
                        on_this += 1;
                        match load::post(s, path, &review).await {
                            Ok((status, body))
                                if status == hyper::StatusCode::OK
                                    && contains(&body, uid.as_bytes()) => {}
                            Ok((status, body)) => {
                                eprintln!(
                                    "review {i}: {status}: {}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                );
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                eprintln!("review {i}: {e:#}");
                                errors.fetch_add(1, Ordering::Relaxed);
                                sender = None;
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();

        // Halfway, rotate, then look for the new certificate on fresh handshakes.
        while done.load(Ordering::Relaxed) < REVIEWS / 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at_review = done.load(Ordering::Relaxed);
        let at = started.elapsed();
        certs.rotate().unwrap();
        let rotated = Instant::now();
        let mut seen = None;
        while rotated.elapsed() < Duration::from_secs(15) {
            let leaf = support::served_leaf(certs.ca_pem(), addr).await.unwrap();
            if leaf == certs.leaves[1] {
                seen = Some(rotated.elapsed());
                break;
            }
            assert_eq!(
                leaf, certs.leaves[0],
                "a certificate that was never written"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for w in workers {
            w.await.unwrap();
        }
        (at_review, at, seen)
    });
    let seconds = started.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = (
        support::cpu_seconds(serve.pid()),
        support::cpu_seconds(std::process::id()),
    );
    finished.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();

    let (at_review, at, seen) = rotation;
    let done = done.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    println!(
        "soak: {done} reviews (half /validate, half /mutate) over {CONNECTIONS} keep-alive TLS \
         connections ({} handshakes) in {seconds:.1} s, {:.0} reviews/s, {errors} errors",
        handshakes.load(Ordering::Relaxed),
        done as f64 / seconds
    );
    println!(
        "CPU: serve {server_cpu:.1} s ({:.0} us a review), this test process (client, debug \
         build) {client_cpu:.1} s",
        server_cpu * 1e6 / done as f64
    );
    let serial = |der: &[u8]| {
        x509_parser::parse_x509_certificate(der)
            .map(|(_, c)| c.tbs_certificate.raw_serial_as_string())
            .unwrap_or_default()
    };
    println!(
        "certificate rotated at review {at_review} ({:.1} s), serial {} -> {}; the new one \
         served on a fresh handshake after {}",
        at.as_secs_f64(),
        serial(&certs.leaves[0]),
        serial(&certs.leaves[1]),
        seen.map_or("never".to_string(), |d| format!("{} ms", d.as_millis()))
    );
    // Every sample, a line each tenth of the run, and the quarters' peaks.
    let by_tenth: Vec<String> = (0..=10)
        .filter_map(|k| {
            samples
                .iter()
                .find(|s| s.reviews >= REVIEWS * k / 10)
                .map(|s| {
                    format!(
                        "{:.0}s/{}k: {:.1} MiB",
                        s.seconds,
                        s.reviews / 1000,
                        s.rss_kib as f64 / 1024.0
                    )
                })
        })
        .collect();
    println!(
        "resident set ({} samples): {}",
        samples.len(),
        by_tenth.join(", ")
    );
    let quarter_peak = |q: u64| {
        samples
            .iter()
            .filter(|s| s.reviews >= REVIEWS * q / 4 && s.reviews < REVIEWS * (q + 1) / 4)
            .map(|s| s.rss_kib)
            .max()
            .unwrap_or(0)
    };
    let (first, last) = (quarter_peak(0), quarter_peak(3));
    println!(
        "resident set peaks by quarter: {:.1} / {:.1} / {:.1} / {:.1} MiB; bound: last <= first + {} MiB",
        first as f64 / 1024.0,
        quarter_peak(1) as f64 / 1024.0,
        quarter_peak(2) as f64 / 1024.0,
        last as f64 / 1024.0,
        GROWTH_BOUND_KIB / 1024
    );

    assert_eq!(done, REVIEWS);
    assert_eq!(errors, 0, "failed requests in the soak; see stderr");
    assert!(
        seen.is_some(),
        "the rotated certificate was not served within 15 s"
    );
    assert!(
        first > 0 && last > 0,
        "too few resident-set samples: {samples:?}"
    );
    assert!(
        last <= first + GROWTH_BOUND_KIB,
        "the resident set grew from {first} KiB (first quarter's peak) to {last} KiB (last quarter's)"
    );
    assert!(
        serve.peak_kib() < support::chart_memory_limit_kib(),
        "peak resident set above the chart's limit"
    );
    assert!(
        serve.log_text().contains("serving certificate reloaded"),
        "serve did not log the reload:\n{}",
        serve.log_text()
    );
}
