//! The NATS users' passwords of a run: `HOSPITAL_NATS_PASSWORD_<USER>` from the environment
//! where set, else the ones kept in `<data-dir>/nats-credentials` (mode 0600). With the embedded
//! nats-server the missing ones are generated there on the first run and reused afterwards;
//! with `--nats-url` they must be the ones that NATS was started with, so none is invented.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kit::nats_users::{self, Passwords, PasswordsError, USERS, password_var};

/// Where the passwords in use came from, for the start-up report.
#[derive(Debug, PartialEq, Eq)]
pub enum Origin {
    Generated(PathBuf),
    Kept(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Generated(path) => write!(f, "generated into {}", path.display()),
            Origin::Kept(path) => write!(f, "kept in {}", path.display()),
        }
    }
}

/// The passwords for the embedded nats-server and its components.
pub fn for_embedded(
    data_dir: &Path,
    from_environment: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(Passwords, Origin)> {
    let path = data_dir.join(nats_users::FILE_NAME);
    let (mut passwords, generated) = Passwords::load_or_generate(&path)
        .with_context(|| format!("cannot keep the NATS passwords in {}", path.display()))?;
    override_from(&mut passwords, &from_environment);
    let origin = if generated {
        Origin::Generated(path)
    } else {
        Origin::Kept(path)
    };
    Ok((passwords, origin))
}

/// The passwords for a NATS the operator runs (`--nats-url`): every component's must be given.
pub fn for_external(
    data_dir: &Path,
    from_environment: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Passwords> {
    let path = data_dir.join(nats_users::FILE_NAME);
    let mut passwords = match Passwords::load(&path) {
        Ok(passwords) => passwords,
        Err(PasswordsError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            Passwords::none()
        }
        Err(error) => return Err(error.into()),
    };
    override_from(&mut passwords, &from_environment);
    let missing: Vec<String> = USERS
        .iter()
        .filter(|user| **user != nats_users::OPERATOR && passwords.password(user).is_none())
        .map(|user| password_var(user))
        .collect();
    if !missing.is_empty() {
        bail!(
            "--nats-url: the components need their NATS users' passwords, as that NATS has them: \
             set {} (or keep them in {})",
            missing.join(", "),
            path.display()
        );
    }
    Ok(passwords)
}

fn override_from(passwords: &mut Passwords, from_environment: &impl Fn(&str) -> Option<String>) {
    for user in USERS {
        if let Some(password) = from_environment(&password_var(user)) {
            passwords.set(user, password);
        }
    }
}

/// `HOSPITAL_NATS_PASSWORD_<USER>` from this process's environment.
pub fn environment(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_first_run_generates_and_later_runs_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let (first, origin) = for_embedded(dir.path(), none).unwrap();
        assert!(matches!(origin, Origin::Generated(_)));
        let (second, origin) = for_embedded(dir.path(), none).unwrap();
        assert!(matches!(origin, Origin::Kept(_)));
        assert_eq!(first, second);
        for user in USERS {
            assert!(first.password(user).is_some(), "{user}");
        }
    }

    #[test]
    fn the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let chosen = |var: &str| {
            (var == "HOSPITAL_NATS_PASSWORD_STAFF").then(|| "OperatorsChoice42".to_owned())
        };
        let (passwords, _) = for_embedded(dir.path(), chosen).unwrap();
        assert_eq!(passwords.password("staff"), Some("OperatorsChoice42"));
    }

    #[test]
    fn an_external_nats_needs_every_components_password_and_names_the_missing() {
        let dir = tempfile::tempdir().unwrap();
        let only_gateway = |var: &str| {
            (var == "HOSPITAL_NATS_PASSWORD_GATEWAY").then(|| "GatewayPassword1".to_owned())
        };
        let error = for_external(dir.path(), only_gateway)
            .unwrap_err()
            .to_string();
        assert!(error.contains("HOSPITAL_NATS_PASSWORD_PATIENT"), "{error}");
        assert!(!error.contains("HOSPITAL_NATS_PASSWORD_GATEWAY"), "{error}");
        assert!(
            !dir.path().join(nats_users::FILE_NAME).exists(),
            "nothing invented"
        );

        // The data directory of an earlier embedded run has them all.
        for_embedded(dir.path(), none).unwrap();
        let passwords = for_external(dir.path(), only_gateway).unwrap();
        assert_eq!(passwords.password("gateway"), Some("GatewayPassword1"));
    }
}
