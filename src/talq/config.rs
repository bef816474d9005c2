//! The `[talq]` settings: whether the TALQ gateway API is served, where,
//! under which TALQ addresses, and which API tokens a CMS may use.

use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TalqSettings {
    /// Off by default: a city turns the TALQ API on when it has a CMS.
    pub enabled: bool,
    /// Where the TALQ routes are served (`/talq/devices`, …); one or more
    /// path segments, no trailing `/`.
    pub base_path: String,
    /// This gateway's TALQ address (`GatewayFunction.gatewayAddress`), the
    /// namespace of every device address. Unset: derived from `gateway.id`
    /// (a name-based UUID), so it is the same at every start.
    pub gateway_address: Option<Uuid>,
    /// The CMS's TALQ address (`GatewayFunction.cmsAddress`). Set: every
    /// request's `clientAddress` must be this one. Unset: any UUID.
    pub cms_address: Option<Uuid>,
    /// The CMS's base URI (`GatewayFunction.cmsUri`), as the CMS is reached.
    pub cms_uri: Option<String>,
    /// The gateway's TALQ base URI as the CMS reaches it
    /// (`GatewayFunction.gatewayUri`): the reverse proxy's `https://…/talq`
    /// in a deployment. Unset: `http://{api.listen}{base_path}`.
    pub gateway_uri: Option<String>,
    /// Where the CMS keeps its certificate revocation list
    /// (`GatewayFunction.crlUrn`), reported as configured.
    pub crl_urn: Option<String>,
    /// `GatewayFunction.retryPeriod`: how long the gateway waits for a
    /// CMS's answer before it sends again.
    #[serde(with = "humantime_serde")]
    pub retry_period: Duration,
    /// The names of the `[[auth.tokens]]` a CMS may call the TALQ API
    /// with; empty: any configured token. The token's role and district
    /// apply as on `/api/v1` (viewer reads, operator overrides, a district
    /// token sees its district's devices only), and its name is the actor
    /// of the commands it gives.
    pub cms_tokens: Vec<String>,
}

impl Default for TalqSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            base_path: "/talq".into(),
            gateway_address: None,
            cms_address: None,
            cms_uri: None,
            gateway_uri: None,
            crl_urn: None,
            retry_period: Duration::from_secs(30),
            cms_tokens: Vec::new(),
        }
    }
}

impl TalqSettings {
    /// Values that parse but make no sense, by key; the token names are
    /// checked against `[[auth.tokens]]` by `known_token`.
    pub fn problems(&self, known_token: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let p = &self.base_path;
        let segments_ok = p
            .strip_prefix('/')
            .is_some_and(|rest| !rest.is_empty() && rest.split('/').all(segment_ok));
        if !segments_ok {
            out.push((
                "talq.base_path".into(),
                format!(
                    "must be `/` and one or more segments of letters, digits, `-`, `_` or `.` \
                     without a trailing `/` (e.g. `/talq`), got `{p}`"
                ),
            ));
        } else if p == "/api"
            || p.starts_with("/api/")
            || p == "/console"
            || p.starts_with("/console/")
        {
            out.push((
                "talq.base_path".into(),
                format!("`{p}` is the API's or the console's; choose another (e.g. `/talq`)"),
            ));
        }
        for (key, uri) in [
            ("talq.cms_uri", &self.cms_uri),
            ("talq.gateway_uri", &self.gateway_uri),
            ("talq.crl_urn", &self.crl_urn),
        ] {
            if let Some(u) = uri {
                if !absolute_uri(u) {
                    out.push((
                        key.into(),
                        format!("must be an absolute URI (`scheme:…`), got `{u}`"),
                    ));
                }
            }
        }
        if self.retry_period.is_zero() {
            out.push(("talq.retry_period".into(), "must be above 0".into()));
        }
        for (i, name) in self.cms_tokens.iter().enumerate() {
            if !known_token(name) {
                out.push((
                    format!("talq.cms_tokens[{i}]"),
                    format!("no `[[auth.tokens]]` is named `{name}`"),
                ));
            }
        }
        out
    }
}

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// RFC 3986's `scheme ":" …`: a letter, then letters, digits, `+`, `-`, `.`.
fn absolute_uri(u: &str) -> bool {
    u.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    }) && !u.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_loads_and_refuses_unknown_keys() {
        let s = crate::settings::tests::load(
            "[talq]\nenabled = true\nbase_path = \"/city/talq\"\n\
             cms_address = \"0b5a6f8e-3c1d-4e2f-9a7b-5c6d7e8f9a0b\"\nretry_period = \"10s\"\n",
        )
        .unwrap();
        assert!(s.talq.enabled);
        assert_eq!(s.talq.base_path, "/city/talq");
        assert_eq!(s.talq.retry_period, Duration::from_secs(10));
        assert!(s.talq.cms_address.is_some());
        for file in [
            "[talq]\nenable = true\n",
            "[talq]\ncms_address = \"cms-1\"\n",
        ] {
            let err = crate::settings::tests::load(file).expect_err(file);
            assert!(err.contains("talq"), "{file}: {err}");
        }
    }

    #[test]
    fn defaults_are_sound_and_bad_values_are_named() {
        assert!(TalqSettings::default().problems(|_| true).is_empty());
        let bad = TalqSettings {
            base_path: "/talq/".into(),
            cms_uri: Some("cms.city/talq".into()),
            retry_period: Duration::ZERO,
            cms_tokens: vec!["nobody".into()],
            ..TalqSettings::default()
        };
        let keys: Vec<String> = bad.problems(|_| false).into_iter().map(|p| p.0).collect();
        assert_eq!(
            keys,
            [
                "talq.base_path",
                "talq.cms_uri",
                "talq.retry_period",
                "talq.cms_tokens[0]"
            ]
        );
        for p in ["talq", "/", "/api/v1", "/a b", "/console"] {
            let s = TalqSettings {
                base_path: p.into(),
                ..TalqSettings::default()
            };
            assert_eq!(s.problems(|_| true).len(), 1, "{p}");
        }
        let ok = TalqSettings {
            base_path: "/city/talq-2.7".into(),
            cms_uri: Some("https://cms.city/talq".into()),
            ..TalqSettings::default()
        };
        assert!(ok.problems(|_| true).is_empty());
    }
}
