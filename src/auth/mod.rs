//! Bearer-token authorisation: every `/api/v1` path needs a token with a role
//! (`viewer` reads, `operator` also controls, `admin` also manages groups) and
//! optionally a district scope (scope.rs: what such a token may see). Tokens
//! are stored only as SHA-256 hashes.

mod config;
mod scope;

pub use config::{AuthSettings, TokenConfig};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            o => Err(format!("role `{o}` is not viewer, operator or admin")),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub district: Option<String>,
}

impl Principal {
    pub fn can_control(&self) -> bool {
        self.role >= Role::Operator
    }
}

pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// A new random token (256 bits from the OS).
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("lgw_{}", hex::encode(bytes)))
}

/// The configured tokens, looked up by hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<String, Principal>,
}

impl Tokens {
    pub fn new(tokens: &[TokenConfig]) -> Self {
        let by_hash = tokens
            .iter()
            .map(|t| {
                (
                    t.hash.to_ascii_lowercase(),
                    Principal {
                        name: t.name.clone(),
                        role: t.role,
                        district: t.district.clone(),
                    },
                )
            })
            .collect();
        Self { by_hash }
    }

    pub fn check(&self, token: &str) -> Option<&Principal> {
        self.by_hash.get(&hash_token(token))
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Problems with the configured tokens, by settings key.
pub fn problems(
    tokens: &[TokenConfig],
    known_district: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        let key = format!("auth.tokens[{i}] ({})", t.name);
        let hex_part = t.hash.strip_prefix("sha256:").unwrap_or("");
        if hex_part.len() != 64 || !hex_part.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push((
                key.clone(),
                "hash must be `sha256:` and 64 hex digits".into(),
            ));
        }
        if !seen.insert(t.hash.to_ascii_lowercase()) {
            out.push((
                key.clone(),
                "the same token hash is configured twice".into(),
            ));
        }
        if let Some(d) = &t.district {
            if !known_district(d) {
                out.push((key, format!("unknown district `{d}`")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash() {
        let token = new_token().unwrap();
        assert!(token.starts_with("lgw_") && token.len() == 68);
        let cfg = TokenConfig {
            name: "north".into(),
            hash: hash_token(&token),
            role: Role::Operator,
            district: Some("D01".into()),
        };
        let tokens = Tokens::new(std::slice::from_ref(&cfg));
        let p = tokens.check(&token).expect("known token");
        assert_eq!(p.role, Role::Operator);
        assert!(p.sees("D01") && !p.sees("D02"));
        assert!(tokens.check("lgw_wrong").is_none());
        assert!(problems(&[cfg], |d| d == "D01").is_empty());
    }

    #[test]
    fn bad_token_config_is_reported() {
        let bad = TokenConfig {
            name: "x".into(),
            hash: "md5:abc".into(),
            role: Role::Viewer,
            district: Some("D99".into()),
        };
        let p = problems(&[bad.clone(), bad], |_| false);
        let all = format!("{p:?}");
        assert!(
            all.contains("64 hex digits") && all.contains("twice") && all.contains("D99"),
            "{all}"
        );
    }
}
