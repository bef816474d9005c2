//! Cycle marks and the figures computed from them, the same way for the
//! gateway and for the raw client.

use serde::Serialize;

/// The moment the slowest endpoint completed a poll cycle.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// Seconds since an arbitrary start.
    pub at: f64,
    /// Full poll cycles completed by every endpoint at that moment.
    pub cycles: u64,
    /// CPU seconds of the polling process.
    pub cpu: f64,
    pub reads: u64,
    pub device_samples: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub cycles: u64,
    pub seconds: f64,
    pub cycle_seconds_p50: f64,
    pub cycle_seconds_max: f64,
    pub cycle_seconds_mean: f64,
    pub lamps_per_second: f64,
    pub modbus_reads_per_second: f64,
    pub device_samples_per_second: f64,
    pub cpu_seconds: f64,
    pub cpu_seconds_per_cycle: f64,
    /// CPU seconds per 1,000 lamp samples = milliseconds per 1,000 = µs per sample.
    pub cpu_seconds_per_1000_lamp_samples: f64,
    pub cpu_us_per_lamp_sample: f64,
    pub peak_rss_mib: Option<f64>,
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// Figures over the marks (first mark = start of the window). Lamp samples are
/// `lamps × cycles`: every lamp is read once per full cycle.
pub fn figures(marks: &[Mark], lamps: u64, peak_rss_mib: Option<f64>) -> Option<Figures> {
    let (first, last) = (marks.first()?, marks.last()?);
    let cycles = last.cycles.checked_sub(first.cycles).filter(|c| *c > 0)?;
    let seconds = last.at - first.at;
    // A poll of the metrics may see two cycles completed at once: spread them.
    let mut per_cycle: Vec<f64> = marks
        .windows(2)
        .filter(|w| w[1].cycles > w[0].cycles)
        .flat_map(|w| {
            let n = w[1].cycles - w[0].cycles;
            std::iter::repeat_n((w[1].at - w[0].at) / n as f64, n as usize)
        })
        .collect();
    per_cycle.sort_by(f64::total_cmp);
    let p50 = per_cycle[(per_cycle.len() - 1) / 2];
    let max = *per_cycle.last()?;
    let cpu = last.cpu - first.cpu;
    let lamp_samples = (lamps * cycles) as f64;
    Some(Figures {
        cycles,
        seconds: round(seconds, 3),
        cycle_seconds_p50: round(p50, 4),
        cycle_seconds_max: round(max, 4),
        cycle_seconds_mean: round(seconds / cycles as f64, 4),
        lamps_per_second: round(lamp_samples / seconds, 0),
        modbus_reads_per_second: round((last.reads - first.reads) as f64 / seconds, 0),
        device_samples_per_second: round(
            (last.device_samples - first.device_samples) as f64 / seconds,
            0,
        ),
        cpu_seconds: round(cpu, 2),
        cpu_seconds_per_cycle: round(cpu / cycles as f64, 3),
        cpu_seconds_per_1000_lamp_samples: round(cpu / lamp_samples * 1000.0, 5),
        cpu_us_per_lamp_sample: round(cpu / lamp_samples * 1e6, 2),
        peak_rss_mib: peak_rss_mib.map(|m| round(m, 1)),
    })
}

pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}
