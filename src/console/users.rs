//! The people who may log in to the console: a JSON file under `paths.data`
//! (`console.users_file`), written by `lamp-gateway user add|remove` and read
//! again by the running gateway whenever it changes, so a user added or
//! removed takes effect without a restart (and a removed user's sessions end
//! at their next request).
//!
//! A user's own choices travel with the user, not the browser: the
//! language the console speaks to them (`language`, set by the language
//! switch; none: `console.language`).
//!
//! Passwords are kept only as argon2id hashes in the PHC string format
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`): argon2id is memory-hard, so a
//! stolen file costs an attacker memory as well as time per guess, which
//! GPUs make cheap for SHA-2; the parameters and salt travel in the string,
//! so stronger parameters later still verify the old hashes.

use super::config::Language;
use crate::auth::{Principal, Role};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("users file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("users file {path}: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error("{0}")]
    Invalid(String),
}

/// One person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// argon2id, PHC string format.
    pub password_hash: String,
    /// The language the user chose in the console; none: the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

impl User {
    /// What this user may see and do: the same [`Principal`] a token
    /// gives, so the API's role and district rules apply as they are.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            role: self.role,
            district: self.district.clone(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<User>,
}

/// The users file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    pub users: Vec<User>,
}

/// The shortest password `user add` takes.
pub const MIN_PASSWORD: usize = 8;

impl Users {
    /// Reads the file; a file that does not exist holds no users.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(source) => {
                return Err(UsersError::Io {
                    path: path.into(),
                    source,
                })
            }
        };
        let file: UsersFile = serde_json::from_str(&text).map_err(|e| UsersError::Format {
            path: path.into(),
            detail: e.to_string(),
        })?;
        Ok(Users { users: file.users })
    }

    /// Writes the file whole through a temporary file and a rename, so a
    /// gateway reading it never sees half of it; readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let io = |source| UsersError::Io {
            path: path.into(),
            source,
        };
        let file = UsersFile {
            users: self.users.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("users serialise");
        crate::atomic_file::write_private(path, text.as_bytes()).map_err(io)
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Adds a user, or replaces the one of that name (a new password, role
    /// or district); a replaced user keeps the language they chose unless
    /// `user` names one.
    pub fn upsert(&mut self, mut user: User) {
        match self.users.iter_mut().find(|u| u.name == user.name) {
            Some(u) => {
                user.language = user.language.or(u.language);
                *u = user;
            }
            None => self.users.push(user),
        }
    }

    /// Reads the file, changes it with `change` and writes it whole, one
    /// change at a time in this process (two admins saving at once, or a
    /// person's language with an admin's edit, must not lose one of the
    /// two); nothing is written when `change` fails.
    pub async fn edit<R>(
        path: &Path,
        change: impl FnOnce(&mut Users) -> Result<R, UsersError>,
    ) -> Result<R, UsersError> {
        static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one = WRITES.lock().await;
        let mut all = Users::load(path)?;
        let out = change(&mut all)?;
        all.save(path)?;
        Ok(out)
    }

    /// Whether there was such a user.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        self.users.len() != before
    }
}

/// A user name: 1 to 64 letters, digits or `-_.@`; it is the actor of the
/// commands the user gives, so it must print plainly in the audit.
pub fn check_name(name: &str) -> Result<(), UsersError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(UsersError::Invalid(format!(
            "user name `{name}`: 1 to 64 letters, digits or -_.@"
        )))
    }
}

/// The argon2id hash of a password, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(UsersError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD} characters"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Invalid(format!("cannot hash the password: {e}")))
}

/// Whether `password` is the one `hash` was made from. Slow on purpose
/// (tens of milliseconds): call it off the async workers.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The users file as the running gateway sees it: read again when its
/// modification time or length changes, checked at most once per request.
#[derive(Debug)]
pub struct UserBook {
    path: PathBuf,
    slot: parking_lot::Mutex<(Option<Stamp>, std::sync::Arc<Users>)>,
}

/// What tells that the file changed: its modification time and length.
type Stamp = (SystemTime, u64);

impl UserBook {
    pub fn new(path: PathBuf) -> Self {
        let book = Self {
            path,
            slot: parking_lot::Mutex::new((None, Default::default())),
        };
        book.current();
        book
    }

    /// The users now. A file that cannot be read keeps the last good
    /// contents (logged): a half-edited file must not lock everyone out.
    pub fn current(&self) -> std::sync::Arc<Users> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let mut slot = self.slot.lock();
        if slot.0 != stamp {
            match Users::load(&self.path) {
                Ok(users) => *slot = (stamp, std::sync::Arc::new(users)),
                Err(e) => tracing::warn!(error = %e, "keeping the users read before"),
            }
        }
        slot.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct hors"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn the_file_round_trips_and_the_book_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/users.json");
        let book = UserBook::new(path.clone());
        assert!(book.current().users.is_empty());
        let mut users = Users::load(&path).unwrap();
        users.upsert(User {
            name: "li.wei".into(),
            role: Role::Operator,
            district: Some("D01".into()),
            password_hash: "$argon2id$x".into(),
            language: Some(Language::En),
        });
        users.save(&path).unwrap();
        assert_eq!(Users::load(&path).unwrap(), users);
        // A new password keeps the language chosen.
        users.upsert(User {
            name: "li.wei".into(),
            role: Role::Operator,
            district: Some("D01".into()),
            password_hash: "$argon2id$y".into(),
            language: None,
        });
        assert_eq!(users.get("li.wei").unwrap().language, Some(Language::En));
        assert_eq!(book.current().get("li.wei").unwrap().role, Role::Operator);
        assert!(users.remove("li.wei") && !users.remove("li.wei"));
        users.save(&path).unwrap();
        assert!(book.current().get("li.wei").is_none());
        assert!(check_name("li.wei").is_ok() && check_name("a b").is_err());
    }
}
