//! The NATS users of `nats.conf` and their passwords.
//!
//! `nats.conf` defines one user per component with least-privilege permissions and reads each
//! password from nats-server's environment (`HOSPITAL_NATS_PASSWORD_<USER>`), so no password is
//! in the repository. `hospital up` and the tests generate them ([`Passwords::generate`]) and keep
//! them in a file readable by its owner only ([`Passwords::load_or_generate`]), in the same
//! `NAME=value` form nats-server's environment takes.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::nats::Credentials;

/// The gateway's user.
pub const GATEWAY: &str = "gateway";
/// The user of the `hospital` operator commands and the `nats` tool: reads, changes nothing.
pub const OPERATOR: &str = "operator";
/// Every user `nats.conf` defines: the gateway, the four services, the operator.
pub const USERS: [&str; 6] = [
    GATEWAY,
    "patient",
    "staff",
    "appointment",
    "record",
    OPERATOR,
];

/// The file in a data directory that keeps the generated passwords.
pub const FILE_NAME: &str = "nats-credentials";

/// Generated passwords: letters and digits only (nats-server parses a variable's value like a
/// configuration value, so a password must not look like a number or hold a delimiter), starting
/// with a letter; 32 of 62 symbols is about 190 bits.
const PASSWORD_LEN: usize = 32;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The environment variable nats-server reads `user`'s password from.
pub fn password_var(user: &str) -> String {
    format!("HOSPITAL_NATS_PASSWORD_{}", user.to_ascii_uppercase())
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordsError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: line {line} is not NAME=value", path.display())]
    Malformed { path: PathBuf, line: usize },
    #[error("cannot generate a password: {0}")]
    Random(getrandom::Error),
}

/// One password per user of [`USERS`].
#[derive(Clone, PartialEq, Eq)]
pub struct Passwords(BTreeMap<String, String>);

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Passwords {
    /// No password at all (to be filled with [`Self::set`]).
    pub fn none() -> Self {
        Passwords(BTreeMap::new())
    }

    /// A new random password for every user.
    pub fn generate() -> Result<Self, PasswordsError> {
        let mut passwords = Passwords(BTreeMap::new());
        passwords.fill_missing()?;
        Ok(passwords)
    }

    /// The passwords kept in `path`, those missing there generated and the file rewritten; a new
    /// file (mode 0600) when there is none. The boolean says whether anything was generated.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), PasswordsError> {
        let mut passwords = match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                Self::parse(path, &text)?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Passwords(BTreeMap::new())
            }
            Err(error) => {
                return Err(PasswordsError::Io {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        let generated = passwords.fill_missing()?;
        if generated {
            passwords.save(path)?;
        }
        Ok((passwords, generated))
    }

    /// Reads a file written by [`Self::save`], without generating anything.
    pub fn load(path: &Path) -> Result<Self, PasswordsError> {
        let text = std::fs::read_to_string(path).map_err(|error| PasswordsError::Io {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Self, PasswordsError> {
        let mut passwords = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = || PasswordsError::Malformed {
                path: path.to_owned(),
                line: index + 1,
            };
            let (name, value) = line.split_once('=').ok_or_else(malformed)?;
            let user = USERS
                .iter()
                .find(|user| password_var(user) == name.trim())
                .ok_or_else(malformed)?;
            let value = value.trim();
            if !value.is_empty() {
                passwords.insert((*user).to_owned(), value.to_owned());
            }
        }
        Ok(Passwords(passwords))
    }

    /// Generates a password for each user that has none; whether any was generated.
    fn fill_missing(&mut self) -> Result<bool, PasswordsError> {
        let mut generated = false;
        for user in USERS {
            if !self.0.contains_key(user) {
                let password = random_password().map_err(PasswordsError::Random)?;
                self.0.insert(user.to_owned(), password);
                generated = true;
            }
        }
        Ok(generated)
    }

    /// Replaces a user's password (one the operator chose, from the environment).
    pub fn set(&mut self, user: &str, password: String) {
        self.0.insert(user.to_owned(), password);
    }

    /// Writes the passwords to `path` (replacing it), readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), PasswordsError> {
        let io = |error| PasswordsError::Io {
            path: path.to_owned(),
            error,
        };
        // Written beside and renamed, so a crash never leaves half a file.
        let partial = path.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io)?;
        let mut text = String::from(
            "# NATS passwords of this data directory's system, one per nats.conf user.\n\
             # nats-server reads them from its environment; keep this file private (mode 0600).\n",
        );
        for (name, value) in self.server_env() {
            text.push_str(&format!("{name}={value}\n"));
        }
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)
    }

    /// `user`'s password, if known.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(String::as_str)
    }

    /// How `user` connects.
    pub fn credentials(&self, user: &str) -> Option<Credentials> {
        self.password(user)
            .map(|password| Credentials::new(user, password))
    }

    /// The environment nats-server needs: `HOSPITAL_NATS_PASSWORD_<USER>` for every user.
    pub fn server_env(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|(user, password)| (password_var(user), password.clone()))
            .collect()
    }
}

fn random_password() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; PASSWORD_LEN];
    getrandom::fill(&mut bytes)?;
    let letters = 52;
    Ok(bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            // The first symbol is a letter; the modulo bias (256 over 62) is negligible here.
            let range = if i == 0 { letters } else { ALPHABET.len() };
            ALPHABET[usize::from(*b) % range] as char
        })
        .collect())
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} is readable by others (mode {:o}); `chmod 600` it",
                path.display(),
                mode & 0o777
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_gets_a_distinct_password_that_nats_server_reads_as_a_string() {
        let passwords = Passwords::generate().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for user in USERS {
            let password = passwords.password(user).unwrap();
            assert_eq!(password.len(), PASSWORD_LEN);
            assert!(password.starts_with(|c: char| c.is_ascii_alphabetic()));
            assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(seen.insert(password.to_owned()));
        }
        assert_eq!(
            password_var("appointment"),
            "HOSPITAL_NATS_PASSWORD_APPOINTMENT"
        );
    }

    #[test]
    fn the_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (first, generated) = Passwords::load_or_generate(&path).unwrap();
        assert!(generated);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, generated) = Passwords::load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(first, second);
        assert_eq!(Passwords::load(&path).unwrap(), first);
        assert!(!format!("{first:?}").contains(first.password("gateway").unwrap()));
    }

    #[test]
    fn a_user_missing_from_the_file_is_added() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "HOSPITAL_NATS_PASSWORD_GATEWAY=Kept123\n").unwrap();
        let (passwords, generated) = Passwords::load_or_generate(&path).unwrap();
        assert!(generated);
        assert_eq!(passwords.password("gateway"), Some("Kept123"));
        assert!(passwords.password("operator").is_some());
        assert_eq!(Passwords::load(&path).unwrap(), passwords);
    }

    #[test]
    fn a_malformed_line_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "HOSPITAL_NATS_PASSWORD_NOBODY=x\n").unwrap();
        let error = Passwords::load(&path).unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
    }
}
