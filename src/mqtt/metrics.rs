//! Prometheus families of the MQTT link: connection, publishes, the event
//! outbox, states pending, messages dropped.

use super::LinkStatus;
use crate::exposition::{counter, counters, gauge, gauges, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::Arc;

#[derive(Debug)]
pub struct MqttMetrics(pub Arc<LinkStatus>);

impl Collector for MqttMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = self.0.snapshot();
        gauge(
            &mut enc,
            "lampgw_mqtt_connected",
            "1 while the MQTT broker link is up",
            u64::from(m.connected),
        )?;
        counter(
            &mut enc,
            "lampgw_mqtt_connects",
            "MQTT connections established",
            m.connects,
        )?;
        counter(
            &mut enc,
            "lampgw_mqtt_connection_errors",
            "MQTT connections lost or refused",
            m.connection_errors,
        )?;
        counters(
            &mut enc,
            "lampgw_mqtt_published",
            "Publishes acknowledged by the broker, by kind",
            [
                (label("kind", "state"), m.states_published),
                (label("kind", "event"), m.events_published),
            ],
        )?;
        counter(
            &mut enc,
            "lampgw_mqtt_events_raised",
            "Events queued for the broker",
            m.events_raised,
        )?;
        gauges(
            &mut enc,
            "lampgw_mqtt_events_queued",
            "Events waiting for the broker, by place",
            [
                (label("place", "memory"), m.events_queued),
                (label("place", "disk"), m.events_spilled),
            ],
        )?;
        counter(
            &mut enc,
            "lampgw_mqtt_events_spilled",
            "Events written to the spill folder",
            m.events_spilled_total,
        )?;
        gauge(
            &mut enc,
            "lampgw_mqtt_states_pending",
            "Devices whose state waits to be published",
            m.states_pending,
        )?;
        gauge(
            &mut enc,
            "lampgw_mqtt_in_flight",
            "Publishes handed to the client without PUBACK yet",
            m.in_flight,
        )?;
        counter(
            &mut enc,
            "lampgw_mqtt_messages_dropped",
            "Messages given up on because the client or broker refuses them for good (bad topic name, too large)",
            m.messages_dropped,
        )?;
        counter(
            &mut enc,
            "lampgw_mqtt_samples_skipped",
            "Samples left out because the MQTT task was behind (state rescanned instead)",
            m.samples_skipped,
        )
    }
}
