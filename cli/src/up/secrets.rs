//! The JWT signing secret of an embedded run: from `JWT_SECRET_KEY`, or kept in
//! `<data-dir>/jwt-secret` (generated once, mode 0600) so tokens stay valid across restarts.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The variable an operator sets to choose the secret.
pub const VAR: &str = "JWT_SECRET_KEY";
/// The gateway refuses shorter secrets (HS256 wants at least the hash's size).
pub const MIN_BYTES: usize = 32;
/// The file in the data directory that keeps a generated secret.
pub const FILE_NAME: &str = "jwt-secret";

/// Where the secret in use came from, for the start-up report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Environment,
    Kept(PathBuf),
    Generated(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Environment => write!(f, "from {VAR}"),
            Origin::Kept(path) => write!(f, "kept in {}", path.display()),
            Origin::Generated(path) => write!(f, "generated into {}", path.display()),
        }
    }
}

#[derive(Debug)]
pub enum SecretError {
    /// `JWT_SECRET_KEY` is set but too short to sign with.
    TooShortInEnvironment {
        len: usize,
    },
    /// The kept file holds something too short (edited by hand, or truncated).
    TooShortInFile {
        path: PathBuf,
        len: usize,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Random(getrandom::Error),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::TooShortInEnvironment { len } => write!(
                f,
                "{VAR} is too short: {len} bytes, at least {MIN_BYTES} are needed \
                 (or unset it and `hospital up` keeps a generated secret in the data directory)"
            ),
            SecretError::TooShortInFile { path, len } => write!(
                f,
                "{} holds a JWT secret of {len} bytes, at least {MIN_BYTES} are needed; \
                 delete the file to generate a new one (signed-in users must log in again)",
                path.display()
            ),
            SecretError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            SecretError::Random(error) => write!(f, "cannot generate a JWT secret: {error}"),
        }
    }
}

impl std::error::Error for SecretError {}

/// The secret to sign tokens with: `from_environment` (the value of `JWT_SECRET_KEY`, if set),
/// else the one kept in `data_dir`, else a new random one written there.
pub fn jwt_secret(
    from_environment: Option<String>,
    data_dir: &Path,
) -> Result<(String, Origin), SecretError> {
    if let Some(secret) = from_environment {
        if secret.len() < MIN_BYTES {
            return Err(SecretError::TooShortInEnvironment { len: secret.len() });
        }
        return Ok((secret, Origin::Environment));
    }
    let path = data_dir.join(FILE_NAME);
    match read_kept(&path)? {
        Some(secret) => Ok((secret, Origin::Kept(path))),
        None => match write_new(&path)? {
            Some(secret) => Ok((secret, Origin::Generated(path))),
            // Another process created it between our read and our write: use theirs.
            None => read_kept(&path)?
                .map(|secret| (secret, Origin::Kept(path.clone())))
                .ok_or_else(|| SecretError::Io {
                    path,
                    error: std::io::ErrorKind::NotFound.into(),
                }),
        },
    }
}

fn read_kept(path: &Path) -> Result<Option<String>, SecretError> {
    let io = |error| SecretError::Io {
        path: path.to_owned(),
        error,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io(error)),
    };
    let secret = text.trim().to_owned();
    if secret.len() < MIN_BYTES {
        return Err(SecretError::TooShortInFile {
            path: path.to_owned(),
            len: secret.len(),
        });
    }
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        eprintln!(
            "hospital: warning: {} is readable by others (mode {:o}); `chmod 600` it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(Some(secret))
}

/// Writes a new secret, readable by the owner only. `None` when the file already exists.
fn write_new(path: &Path) -> Result<Option<String>, SecretError> {
    let mut bytes = [0u8; MIN_BYTES];
    getrandom::fill(&mut bytes).map_err(SecretError::Random)?;
    let secret = hex(&bytes);
    let io = |error| SecretError::Io {
        path: path.to_owned(),
        error,
    };
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(error) => return Err(io(error)),
    };
    writeln!(file, "{secret}")
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    Ok(Some(secret))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_kept_in_a_file_only_the_owner_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, origin) = jwt_secret(None, dir.path()).unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(origin, Origin::Generated(path.clone()));
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_restart_reuses_the_kept_secret() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = jwt_secret(None, dir.path()).unwrap();
        let (second, origin) = jwt_secret(None, dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(origin, Origin::Kept(dir.path().join(FILE_NAME)));
    }

    #[test]
    fn the_environment_wins_over_the_kept_file() {
        let dir = tempfile::tempdir().unwrap();
        jwt_secret(None, dir.path()).unwrap();
        let chosen = "an operator's own secret, 32 bytes or more".to_owned();
        let (secret, origin) = jwt_secret(Some(chosen.clone()), dir.path()).unwrap();
        assert_eq!((secret, origin), (chosen, Origin::Environment));
    }

    #[test]
    fn a_short_jwt_secret_key_is_refused_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let error = jwt_secret(Some("too short".into()), dir.path()).unwrap_err();
        assert!(matches!(
            error,
            SecretError::TooShortInEnvironment { len: 9 }
        ));
        assert!(error.to_string().contains("JWT_SECRET_KEY"), "{error}");
        assert!(!dir.path().join(FILE_NAME).exists());
    }

    #[test]
    fn a_truncated_secret_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "abc\n").unwrap();
        let error = jwt_secret(None, dir.path()).unwrap_err();
        assert!(matches!(error, SecretError::TooShortInFile { len: 3, .. }));
        assert!(error.to_string().contains(FILE_NAME), "{error}");
    }
}
