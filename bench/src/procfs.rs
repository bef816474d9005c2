//! What the kernel knows about a process: CPU time and peak memory.

use std::path::Path;

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux ABI we run on; `getconf CLK_TCK` agrees.
    100.0
}

/// User + system CPU seconds of a process (`/proc/PID/stat` utime + stime).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

pub fn self_cpu_seconds() -> Option<f64> {
    stat_cpu(Path::new("/proc/self/stat"))
}

fn stat_cpu(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Peak resident set size in MiB (`VmHWM` in `/proc/PID/status`).
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_kib(
        &Path::new("/proc").join(pid.to_string()).join("status"),
        "VmHWM:",
    )
    .map(|k| k / 1024.0)
}

/// Resident set size now in MiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_kib(
        &Path::new("/proc").join(pid.to_string()).join("status"),
        "VmRSS:",
    )
    .map(|k| k / 1024.0)
}

pub fn self_peak_rss_mib() -> Option<f64> {
    status_kib(Path::new("/proc/self/status"), "VmHWM:").map(|k| k / 1024.0)
}

/// Resets this process's peak RSS (VmHWM) to its current RSS, so the next
/// `self_peak_rss_mib` is the peak of what runs in between (Linux ≥ 4.0).
pub fn reset_self_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_kib(path: &Path, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// A one-line description of the machine: CPU model and count, memory, kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = status_kib(Path::new("/proc/meminfo"), "MemTotal:").map(|k| k / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    serde_json::json!({
        "cpu_model": model,
        "cpus": cpus,
        "memory_gib": mem_gib.map(|m| (m * 10.0).round() / 10.0),
        "kernel": kernel,
        "load_average_at_start": load,
    })
}
