//! Which publishes the MQTT client or broker refuses for good, so the
//! publisher drops them (counted) instead of retrying them forever; a full
//! client queue is not a refusal.

use super::config::MAX_PACKET;
use super::payload;

/// Why the client or the broker would refuse a QoS 1 publish of `payload_len`
/// bytes on `topic` on any connection, if it would: a name MQTT forbids (the
/// client refuses wildcards itself; U+0000 makes the broker end the
/// connection), or a packet past [`MAX_PACKET`] (the client's codec ends the
/// connection over it). Retrying either would block the queue for good.
pub(super) fn refusal(topic: &str, payload_len: usize) -> Option<&'static str> {
    // Fixed header (at most 5 bytes), topic length, packet id.
    let packet = 5 + 2 + topic.len() + 2 + payload_len;
    if !payload::valid_topic_name(topic) {
        Some("topic name is not valid MQTT (empty, a wildcard, U+0000 or over 65535 bytes)")
    } else if packet > MAX_PACKET {
        Some("larger than the MQTT packet size limit")
    } else {
        None
    }
}

/// rumqttc's error does not say why it would not take a request, only hands
/// it back: a publish it refuses for its content (its own topic check) comes
/// back here with the topic; `None` means its request queue would not take
/// it this time.
pub(super) fn refused_request(e: &rumqttc::ClientError) -> Option<(String, &'static str)> {
    let (rumqttc::ClientError::Request(r) | rumqttc::ClientError::TryRequest(r)) = e;
    match r {
        rumqttc::Request::Publish(p) if !rumqttc::valid_topic(&p.topic) => {
            Some((p.topic.clone(), "the MQTT client refuses the topic"))
        }
        rumqttc::Request::Publish(p) if refusal(&p.topic, p.payload.len()).is_some() => {
            Some((p.topic.clone(), "the MQTT client refuses the packet"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{AsyncClient, MqttOptions, QoS};

    #[test]
    fn a_full_client_queue_is_retried_a_refused_publish_is_not() {
        // An event loop nobody polls: its request queue of one fills up.
        let (client, _event_loop) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 1);
        client
            .try_publish("a/b", QoS::AtLeastOnce, false, "x")
            .unwrap();
        let full = client
            .try_publish("a/b", QoS::AtLeastOnce, false, "x")
            .unwrap_err();
        assert_eq!(refused_request(&full), None, "full: try again later");
        let wildcard = client
            .try_publish("a/commands/poison/#", QoS::AtLeastOnce, false, "x")
            .unwrap_err();
        assert_eq!(
            refused_request(&wildcard).map(|(t, _)| t).as_deref(),
            Some("a/commands/poison/#")
        );
    }

    #[test]
    fn refusals_are_names_and_sizes_the_client_or_broker_never_takes() {
        assert_eq!(refusal("a/b", 10), None);
        assert_eq!(refusal("a/b", MAX_PACKET - 20), None);
        assert!(refusal("a/b", MAX_PACKET).is_some());
        assert!(refusal("a/+/b", 1).is_some());
        assert!(refusal("a/\0", 1).is_some());
        assert!(refusal("", 1).is_some());
    }
}
