//! The standard `process_*` metrics (CPU, memory, file descriptors, start time), read from
//! `/proc/self` at scrape time and written by a collector of the metrics registry. The reading
//! is hand-written: `prometheus-client` has no process collector, and the crates that do bring
//! a registry of their own, for six numbers from three files. Off Linux nothing is reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux reports CPU times in `/proc` in USER_HZ, which is 100 on every architecture.
const USER_HZ: f64 = 100.0;

struct Figures {
    cpu_seconds: f64,
    start_time: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    open_fds: Option<usize>,
    max_fds: Option<f64>,
}

fn read() -> Option<Figures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let field = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok());
    let (utime, stime, start_ticks) = (field(11)?, field(12)?, field(19)?);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| {
        status.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.trim().strip_suffix("kB")?;
            v.trim().parse::<f64>().ok().map(|k| k * 1024.0)
        })
    };
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("Max open files")?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
        });
    Some(Figures {
        cpu_seconds: (utime + stime) / USER_HZ,
        start_time: boot + start_ticks / USER_HZ,
        resident_bytes: kib("VmRSS:")?,
        virtual_bytes: kib("VmSize:")?,
        open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count()),
        max_fds,
    })
}

/// Writes the `process_*` families when Prometheus scrapes.
#[derive(Debug)]
pub struct ProcessCollector;

fn one<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: M,
) -> std::fmt::Result {
    let e = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(e)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(f) = read() else {
            return Ok(());
        };
        let e = &mut encoder;
        // The counter's name goes without `_total`: the encoder adds it.
        one(
            e,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            ConstCounter::new(f.cpu_seconds),
        )?;
        one(
            e,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            ConstGauge::new(f.start_time),
        )?;
        one(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            ConstGauge::new(f.resident_bytes),
        )?;
        one(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            ConstGauge::new(f.virtual_bytes),
        )?;
        if let Some(n) = f.open_fds {
            one(
                e,
                "process_open_fds",
                "Number of open file descriptors.",
                ConstGauge::new(n as f64),
            )?;
        }
        if let Some(n) = f.max_fds {
            one(
                e,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                ConstGauge::new(n),
            )?;
        }
        Ok(())
    }
}
