//! The `[auth]` settings: the API tokens the gateway admits.
//!
//! Only SHA-256 hashes of the tokens are configured. A hash is not a secret
//! in the sense a password is: the tokens are 256 random bits, so the hash
//! cannot be turned back into a token that the API would accept. The hashes
//! stay plain strings, printable like any other setting.

use super::Role;
use serde::{Deserialize, Serialize};

/// API tokens (`lamp-gateway token new` prints one with its hash).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub tokens: Vec<TokenConfig>,
}

/// One configured token (`[[auth.tokens]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it; recorded as the actor of every command.
    pub name: String,
    /// `sha256:` followed by the hex digest of the token.
    pub hash: String,
    pub role: Role,
    /// Confines the holder to one district.
    #[serde(default)]
    pub district: Option<String>,
}
