//! What the kernel says about a process or thread (`/proc`), for the bench and the resilience
//! tests: resident set figures and CPU time.

#![allow(dead_code)]

use anyhow::Context;

/// A kernel figure of a process, in KiB (`VmRSS`, `VmHWM`, ...).
pub fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{path} has no {field}"))
}

/// User + system CPU seconds from a `stat` file (`/proc/PID/stat`, `/proc/thread-self/stat`),
/// in clock ticks of 1/100 s (USER_HZ on every Linux this runs on).
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: utime is
    // the 12th and stime the 13th counted from `state`.
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds a process has used (0 when the kernel does not say).
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat")).unwrap_or(0.0)
}

/// CPU seconds the calling thread has used.
pub fn thread_cpu_seconds() -> Option<f64> {
    stat_cpu_seconds("/proc/thread-self/stat")
}

/// CPU seconds used by this process's threads whose name (`comm`, cut by the kernel to 15
/// bytes) starts with `prefix`: what one kind of thread (an exporter, a runtime's workers)
/// costs, apart from the rest of the process.
pub fn threads_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|name| name.trim_end().starts_with(prefix))
        })
        .filter_map(|t| stat_cpu_seconds(&t.path().join("stat").to_string_lossy()))
        .sum()
}
