//! The standard `process_*` metrics (CPU, memory, file descriptors, start time), read from
//! `/proc/self` at scrape time. Hand-written: the crates that provide them bring a registry
//! of their own, and these are six numbers from three files. Off Linux nothing is reported.

use std::fmt::Write as _;

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

/// Appends the `process_*` families in the text exposition format.
pub fn render(out: &mut String) -> std::fmt::Result {
    let Some(f) = read() else {
        return Ok(());
    };
    let mut one = |name: &str, kind: &str, help: &str, value: f64| {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} {kind}")?;
        writeln!(out, "{name} {value}")
    };
    one(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        f.cpu_seconds,
    )?;
    one(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        f.start_time,
    )?;
    one(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        f.resident_bytes,
    )?;
    one(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        f.virtual_bytes,
    )?;
    if let Some(n) = f.open_fds {
        one(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            n as f64,
        )?;
    }
    if let Some(n) = f.max_fds {
        one(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            n,
        )?;
    }
    Ok(())
}
