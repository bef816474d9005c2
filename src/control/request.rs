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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    pub target: Option<Selector>,
    pub action: String,
    pub level: Option<f64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The caller's id for the request: repeats return the first command
    /// (like the `Idempotency-Key` header), and MQTT rejections are acked
    /// under it.
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
