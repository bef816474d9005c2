//! Prometheus families of the alarms: standing alarms by kind, severity and
//! district, overdue ones by district, changes since start.

use super::Alarms;
use crate::exposition::{counter, gauges, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Reads the engine's standing alarms at each scrape.
pub struct AlarmMetrics(pub Arc<Alarms>);

impl std::fmt::Debug for AlarmMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlarmMetrics")
    }
}

impl Collector for AlarmMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let standing = self.0.standing(chrono::Utc::now());
        let mut active: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
        let mut overdue: BTreeMap<&str, u64> = BTreeMap::new();
        let districts = self.0.layout_districts();
        for d in &districts {
            overdue.insert(d.as_str(), 0);
        }
        for a in &standing {
            let d = districts
                .iter()
                .find(|d| **d == a.district)
                .map_or("", String::as_str);
            *active
                .entry((a.kind.as_str(), a.severity.as_str(), d))
                .or_default() += 1;
            if a.overdue {
                *overdue.entry(d).or_default() += 1;
            }
        }
        gauges(
            &mut enc,
            "lampgw_alarms_active",
            "Standing alarms (active or acknowledged) by kind, severity and district",
            active.into_iter().map(|((kind, severity, district), n)| {
                (
                    [
                        label("kind", kind)[0],
                        label("severity", severity)[0],
                        label("district", district)[0],
                    ],
                    n,
                )
            }),
        )?;
        gauges(
            &mut enc,
            "lampgw_alarms_overdue",
            "Standing alarms past their repair deadline, by district",
            overdue.into_iter().map(|(d, n)| (label("district", d), n)),
        )?;
        counter(
            &mut enc,
            "lampgw_alarm_changes",
            "Alarm changes (raised, reopened, acknowledged, cleared, closed) since start",
            self.0.changes_total.load(Ordering::Relaxed),
        )
    }
}
