//! What a webhook's spool holds and what its receiver gets: one alarm change
//! with its delivery id, and the exact body bytes that are posted (and
//! signed).

use crate::alarm::model::AlarmChange;
use crate::queue::Record;
use serde::{Deserialize, Serialize};

/// One change on its way to one webhook. The delivery id is drawn when the
/// change is spooled, so every attempt — across restarts too — posts the
/// same id and the same body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Notification {
    /// A random UUID (version 4): unique per change and webhook, the same
    /// on every retry, for the receiver's de-duplication.
    pub(super) delivery: String,
    /// `gateway.id` when the change was spooled.
    pub(super) gateway: String,
    pub(super) change: AlarmChange,
}

impl Record for Notification {}

/// The body: the MQTT alarm event (`gateway`, `change`, `at`, `alarm`) with
/// the delivery id first.
#[derive(Serialize)]
struct Body<'a> {
    delivery: &'a str,
    gateway: &'a str,
    #[serde(flatten)]
    change: &'a AlarmChange,
}

impl Notification {
    pub(super) fn new(gateway: &str, change: AlarmChange) -> Notification {
        Notification {
            delivery: delivery_id(),
            gateway: gateway.to_string(),
            change,
        }
    }

    /// The JSON posted, the same bytes at every attempt.
    pub(super) fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            delivery: &self.delivery,
            gateway: &self.gateway,
            change: &self.change,
        })
        .expect("plain struct serialises")
    }
}

/// 122 random bits from the OS as a version-4 UUID; a generator of the
/// process's own if the OS cannot give any (uniqueness is what matters here,
/// not secrecy).
fn delivery_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        b = fastrand::u128(..).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::delivery_id;

    #[test]
    fn delivery_ids_are_version_4_uuids_and_differ() {
        let a = delivery_id();
        let b = delivery_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
        assert_eq!(a.matches('-').count(), 4);
    }
}
