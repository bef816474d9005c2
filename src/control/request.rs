//! The JSON body of a command, shared by the HTTP API and MQTT `.../set`.

use super::{Action, Selector};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    /// Not JSON at all.
    #[error("{0}")]
    Malformed(String),
    /// JSON, but invalid; the message names the field.
    #[error("{0}")]
    Invalid(String),
}

/// The body of both command endpoints; `target` only on `/commands`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// What to act on: required on `/api/v1/commands`, refused on
    /// `/api/v1/lamps/{id}/commands` (the lamp is in the path).
    pub target: Option<Selector>,
    /// `on`, `off`, or `dim` with a `level`.
    #[schema(pattern = "^(on|off|dim)$", example = "dim")]
    pub action: String,
    /// Percent, 0 to 100: required with `dim`, refused otherwise; 0 switches
    /// the lamp off.
    #[schema(minimum = 0, maximum = 100)]
    pub level: Option<f64>,
    /// Makes the command an override until then (in the future): each lamp
    /// no newer command has touched then goes back to what it did before.
    pub expires_at: Option<DateTime<Utc>>,
    /// The caller's id for the request: repeats return the first command
    /// (like the `Idempotency-Key` header), and MQTT rejections are acked
    /// under it. 1 to 64 letters, digits or ` -_.:`.
    #[schema(min_length = 1, max_length = 64)]
    pub request_id: Option<String>,
}

impl CommandBody {
    /// Parses a JSON body, naming the offending field on a type error.
    pub fn parse(bytes: &[u8]) -> Result<CommandBody, RequestError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let body = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                RequestError::Malformed(format!("malformed JSON: {inner}"))
            } else {
                RequestError::Invalid(format!("{path}: {inner}"))
            }
        })?;
        // One JSON document and nothing after it (whitespace aside): MQTT
        // payloads come here unchecked by the HTTP body extractor.
        de.end().map_err(|e| {
            RequestError::Malformed(format!("malformed JSON: data after the body: {e}"))
        })?;
        Ok(body)
    }

    pub fn action(&self) -> Result<Action, RequestError> {
        let action = match (self.action.as_str(), self.level) {
            ("on", None) => Action::On,
            ("off", None) => Action::Off,
            ("dim", Some(level)) => Action::Dim { level },
            ("dim", None) => return Err(RequestError::Invalid("level: required for `dim`".into())),
            ("on" | "off", Some(_)) => {
                return Err(RequestError::Invalid(
                    "level: only `dim` takes a level".into(),
                ))
            }
            (other, _) => {
                return Err(RequestError::Invalid(format!(
                    "action: `{other}` is not `on`, `off` or `dim`"
                )))
            }
        };
        if let Some(at) = self.expires_at {
            if at <= Utc::now() {
                return Err(RequestError::Invalid(
                    "expires_at: must be in the future".into(),
                ));
            }
        }
        Ok(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_document_and_nothing_after_it() {
        assert!(CommandBody::parse(br#"{"action":"on"}"#).is_ok());
        assert!(CommandBody::parse(b"{\"action\":\"on\"} \n").is_ok());
        assert!(matches!(
            CommandBody::parse(br#"{"action":"on"}{"action":"off"}"#),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            CommandBody::parse(br#"{"action":"on"} x"#),
            Err(RequestError::Malformed(_))
        ));
    }
}
