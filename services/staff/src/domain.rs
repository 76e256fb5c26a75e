//! What a valid staff member is, and the decisions about changing one. Pure functions.
//!
//! `PUT` replaces the descriptive fields (name, role, specialization, phone, email). The login
//! is different because the password is write-only: a body without `username` keeps the login
//! as it is, `"username": null` removes it, and a password is only needed when a login is new.

use chrono::{DateTime, Utc};
use kit::fields::{FieldReader, is_plausible_email, is_plausible_phone};
use serde_json::{Map, Value};
use shared_events::ServiceError;
use shared_events::staff::{Staff, StaffRole};
use uuid::Uuid;

use crate::passwords;

pub const WRITABLE_FIELDS: [&str; 7] = [
    "name",
    "role",
    "specialization",
    "phone",
    "email",
    "username",
    "password",
];
/// Server-owned fields a client may echo back from a GET; ignored.
pub const READ_ONLY_FIELDS: [&str; 4] = ["id", "version", "created_at", "updated_at"];

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_SPECIALIZATION_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_PHONE_CHARS: usize = 40;

/// What a request asks of the login.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginRequest {
    /// `username` absent: leave the login as it is (a new password may still be given).
    Keep { new_password: Option<String> },
    /// `username: null`: this staff member can no longer log in.
    Remove,
    /// A username, and maybe a new password.
    Set {
        username: String,
        password: Option<String>,
    },
}

/// A staff member's writable details, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffDetails {
    pub name: String,
    pub role: StaffRole,
    pub specialization: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub login: LoginRequest,
}

impl StaffDetails {
    pub fn parse(fields: &Map<String, Value>) -> Result<Self, ServiceError> {
        let allowed: Vec<&str> = WRITABLE_FIELDS
            .iter()
            .chain(READ_ONLY_FIELDS.iter())
            .copied()
            .collect();
        let mut reader = FieldReader::new(fields, &allowed);
        let name = reader.required_text("name", MAX_NAME_CHARS);
        let role = reader.required_text("role", 20).and_then(|text| {
            StaffRole::parse(&text).or_else(|| {
                reader.reject("role", "must be one of doctor, nurse, receptionist, admin");
                None
            })
        });
        let specialization = reader.optional_text("specialization", MAX_SPECIALIZATION_CHARS);
        let phone = reader
            .optional_text("phone", MAX_PHONE_CHARS)
            .filter(|phone| {
                is_plausible_phone(phone) || {
                    reader.reject(
                        "phone",
                        "must be a phone number (digits, spaces, + - ( ) .)",
                    );
                    false
                }
            });
        let email = reader
            .optional_text("email", MAX_EMAIL_CHARS)
            .filter(|email| {
                is_plausible_email(email) || {
                    reader.reject("email", "must be an e-mail address");
                    false
                }
            });
        let login = read_login(&mut reader);
        reader.finish()?;
        match (name, role) {
            (Some(name), Some(role)) => Ok(StaffDetails {
                name,
                role,
                specialization,
                phone,
                email,
                login,
            }),
            _ => Err(ServiceError::internal()),
        }
    }
}

fn read_login(reader: &mut FieldReader<'_>) -> LoginRequest {
    let username_given = reader.is_present("username");
    let username = reader.optional_text("username", 64).and_then(|name| {
        let name = name.to_lowercase();
        match username_problem(&name) {
            Some(problem) => {
                reader.reject("username", problem);
                None
            }
            None => Some(name),
        }
    });
    // Passwords are not trimmed: every character counts.
    let password = reader
        .optional_secret("password", passwords::MAX_PASSWORD_CHARS)
        .and_then(|p| match passwords::weakness(&p) {
            Some(problem) => {
                reader.reject("password", problem);
                None
            }
            None => Some(p),
        });
    match (username_given, username) {
        (false, _) => LoginRequest::Keep {
            new_password: password,
        },
        (true, None) => LoginRequest::Remove,
        (true, Some(username)) => LoginRequest::Set { username, password },
    }
}

/// 3 to 64 characters: lowercase letters, digits, `.`, `_`, `-`, starting with a letter.
pub fn username_problem(name: &str) -> Option<&'static str> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !(3..=64).contains(&name.len()) {
        Some("must be 3 to 64 characters")
    } else if !valid_chars || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a letter and use only letters, digits, '.', '_' and '-'")
    } else {
        None
    }
}

/// What happens to the stored password hash.
#[derive(Debug, Clone, PartialEq)]
pub enum PasswordChange {
    Keep,
    Clear,
    /// Hash and store this password.
    Set(String),
}

/// The login a new staff member gets: a username needs a password.
pub fn new_login(login: &LoginRequest) -> Result<(Option<String>, PasswordChange), ServiceError> {
    match login {
        LoginRequest::Keep { new_password: None } | LoginRequest::Remove => {
            Ok((None, PasswordChange::Keep))
        }
        LoginRequest::Keep {
            new_password: Some(_),
        } => Err(ServiceError::invalid_field(
            "username",
            "is required when a password is given",
        )),
        LoginRequest::Set { password: None, .. } => Err(ServiceError::invalid_field(
            "password",
            "is required when a username is given",
        )),
        LoginRequest::Set {
            username,
            password: Some(password),
        } => Ok((
            Some(username.clone()),
            PasswordChange::Set(password.clone()),
        )),
    }
}

pub fn register(details: &StaffDetails, username: Option<String>, now: DateTime<Utc>) -> Staff {
    Staff {
        id: Uuid::now_v7(),
        name: details.name.clone(),
        role: details.role,
        specialization: details.specialization.clone(),
        phone: details.phone.clone(),
        email: details.email.clone(),
        username,
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

pub use kit::versions::check_version;

/// The staff member after an update and what happens to the password hash, or `None` when
/// nothing changes.
pub fn update(
    current: &Staff,
    expected_version: Option<i64>,
    details: &StaffDetails,
    now: DateTime<Utc>,
) -> Result<Option<(Staff, PasswordChange)>, ServiceError> {
    check_version(current.version, expected_version)?;
    let (username, password) = match &details.login {
        LoginRequest::Keep { new_password } => match (&current.username, new_password) {
            (_, None) => (current.username.clone(), PasswordChange::Keep),
            (Some(_), Some(p)) => (current.username.clone(), PasswordChange::Set(p.clone())),
            (None, Some(_)) => {
                return Err(ServiceError::invalid_field(
                    "username",
                    "is required when a password is given",
                ));
            }
        },
        LoginRequest::Remove => (
            None,
            if current.username.is_some() {
                PasswordChange::Clear
            } else {
                PasswordChange::Keep
            },
        ),
        LoginRequest::Set { username, password } => match (&current.username, password) {
            (_, Some(p)) => (Some(username.clone()), PasswordChange::Set(p.clone())),
            (Some(_), None) => (Some(username.clone()), PasswordChange::Keep),
            (None, None) => {
                return Err(ServiceError::invalid_field(
                    "password",
                    "is required when a username is given",
                ));
            }
        },
    };
    let next = Staff {
        name: details.name.clone(),
        role: details.role,
        specialization: details.specialization.clone(),
        phone: details.phone.clone(),
        email: details.email.clone(),
        username,
        ..current.clone()
    };
    if next == *current && password == PasswordChange::Keep {
        return Ok(None);
    }
    Ok(Some((
        Staff {
            version: current.version + 1,
            updated_at: now,
            ..next
        },
        password,
    )))
}

/// A soft delete: the row stays (clinical history refers to it); the login stops working.
pub fn delete(
    current: &Staff,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(Staff, PasswordChange), ServiceError> {
    check_version(current.version, expected_version)?;
    Ok((
        Staff {
            version: current.version + 1,
            updated_at: now,
            deleted_at: Some(now),
            ..current.clone()
        },
        PasswordChange::Keep,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<StaffDetails, ServiceError> {
        StaffDetails::parse(value.as_object().unwrap())
    }

    fn doctor() -> Staff {
        let details = parse(json!({"name": "Dr Grey", "role": "doctor"})).unwrap();
        register(&details, Some("grey".into()), Utc::now())
    }

    #[test]
    fn bad_fields_are_all_named() {
        let err = parse(json!({"name": "", "role": "surgeon", "email": "x", "username": "A b"}))
            .unwrap_err();
        let mut fields: Vec<_> = err.fields.iter().map(|f| f.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["email", "name", "role", "username"]);
        let err =
            parse(json!({"name": "N", "role": "nurse", "username": "nurse1", "password": "short"}))
                .unwrap_err();
        assert_eq!(err.fields[0].field, "password");
    }

    #[test]
    fn usernames_are_lowercased_and_checked() {
        let details = parse(json!({"name": "N", "role": "nurse", "username": "Nurse.Joy", "password": "twelve chars"})).unwrap();
        assert_eq!(
            details.login,
            LoginRequest::Set {
                username: "nurse.joy".into(),
                password: Some("twelve chars".into())
            }
        );
        assert!(username_problem("ab").is_some());
        assert!(username_problem("1abc").is_some());
        assert!(username_problem("abc_1-x.y").is_none());
    }

    #[test]
    fn a_new_login_needs_both_username_and_password() {
        let only_user = parse(json!({"name": "N", "role": "nurse", "username": "joy"})).unwrap();
        assert_eq!(
            new_login(&only_user.login).unwrap_err().fields[0].field,
            "password"
        );
        let none = parse(json!({"name": "N", "role": "nurse"})).unwrap();
        assert_eq!(
            new_login(&none.login).unwrap(),
            (None, PasswordChange::Keep)
        );
    }

    #[test]
    fn login_changes_on_update() {
        let current = doctor();
        let cases = [
            (json!({"name": "Dr Grey", "role": "doctor"}), None),
            (
                json!({"name": "Dr Grey", "role": "doctor", "password": "a new password"}),
                Some((Some("grey"), PasswordChange::Set("a new password".into()))),
            ),
            (
                json!({"name": "Dr Grey", "role": "doctor", "username": null}),
                Some((None, PasswordChange::Clear)),
            ),
            (
                json!({"name": "Dr Grey", "role": "doctor", "username": "mgrey"}),
                Some((Some("mgrey"), PasswordChange::Keep)),
            ),
        ];
        for (body, expected) in cases {
            let details = parse(body.clone()).unwrap();
            let outcome = update(&current, Some(1), &details, Utc::now()).unwrap();
            let outcome = outcome.map(|(staff, pw)| (staff.username, pw));
            let expected = expected.map(|(u, pw)| (u.map(String::from), pw));
            assert_eq!(outcome, expected, "for {body}");
        }
    }

    #[test]
    fn a_stale_version_is_refused() {
        let details = parse(json!({"name": "Dr Grey", "role": "nurse"})).unwrap();
        assert_eq!(
            update(&doctor(), Some(3), &details, Utc::now())
                .unwrap_err()
                .code
                .http_status(),
            412
        );
        assert_eq!(
            delete(&doctor(), Some(3), Utc::now())
                .unwrap_err()
                .code
                .http_status(),
            412
        );
    }
}
