//! The `[console]` settings: the operator console's language, its sessions
//! and where the people who may log in to it are kept.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// The language of a person who has not chosen one, and of the login
    /// form in a browser that has not (`zh` or `en`).
    pub language: Language,
    /// A session unused for this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// A session ends this long after its login however much it is used.
    #[serde(with = "humantime_serde")]
    pub session_absolute: Duration,
    /// The `Secure` flag of the session cookie: `auto` sets it when the
    /// request came over TLS to a proxy in front (`X-Forwarded-Proto:
    /// https`), since the gateway itself serves plain HTTP.
    pub secure_cookies: SecureCookies,
    /// The people who may log in (`lamp-gateway user add`); relative to
    /// `paths.data`.
    pub users_file: PathBuf,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            language: Language::Zh,
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            secure_cookies: SecureCookies::Auto,
            users_file: "users.json".into(),
        }
    }
}

impl ConsoleSettings {
    pub fn rebase(&mut self, data: &Path) {
        if self.users_file.is_relative() {
            self.users_file = data.join(&self.users_file);
        }
    }

    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.session_idle.is_zero() {
            out.push(("console.session_idle".into(), "must be above 0".into()));
        }
        if self.session_absolute < self.session_idle {
            out.push((
                "console.session_absolute".into(),
                "must not be shorter than console.session_idle".into(),
            ));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Zh,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "zh" => Some(Language::Zh),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookies {
    Auto,
    True,
    False,
}
