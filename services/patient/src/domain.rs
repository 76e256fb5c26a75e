//! What a valid patient is, and the decisions about changing one. Pure functions: the handlers
//! load, decide here, store and publish.

use chrono::{DateTime, NaiveDate, Utc};
use kit::fields::{FieldReader, is_plausible_email, is_plausible_phone};
use serde_json::{Map, Value};
use shared_events::ServiceError;
use shared_events::patient::{Patient, Sex};
use uuid::Uuid;

/// The writable fields, as a client sends them on create and update.
pub const WRITABLE_FIELDS: [&str; 6] = ["name", "birth_date", "sex", "phone", "email", "address"];
/// Server-owned fields a client may echo back from a GET; they are ignored, never written.
pub const READ_ONLY_FIELDS: [&str; 6] = [
    "id",
    "mrn",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
];

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ADDRESS_CHARS: usize = 500;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_PHONE_CHARS: usize = 40;
/// Nobody alive was born before this; a date before it is a typing error.
const EARLIEST_BIRTH_DATE: NaiveDate = NaiveDate::from_ymd_opt(1880, 1, 1).unwrap();

/// A patient's writable details, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientDetails {
    pub name: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
}

impl PatientDetails {
    /// Validates a request body, naming every invalid field. `today` bounds the birth date.
    pub fn parse(fields: &Map<String, Value>, today: NaiveDate) -> Result<Self, ServiceError> {
        let allowed: Vec<&str> = WRITABLE_FIELDS
            .iter()
            .chain(READ_ONLY_FIELDS.iter())
            .copied()
            .collect();
        let mut reader = FieldReader::new(fields, &allowed);
        let name = reader.required_text("name", MAX_NAME_CHARS);
        let birth_date = reader.required_text("birth_date", 10).and_then(|text| {
            parse_birth_date(&text, today)
                .map_err(|message| reader.reject("birth_date", message))
                .ok()
        });
        let sex = reader.required_text("sex", 10).and_then(|text| {
            Sex::parse(&text).or_else(|| {
                reader.reject("sex", "must be one of female, male, other, unknown");
                None
            })
        });
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
        let address = reader.optional_text("address", MAX_ADDRESS_CHARS);
        reader.finish()?;
        match (name, birth_date, sex) {
            (Some(name), Some(birth_date), Some(sex)) => Ok(PatientDetails {
                name,
                birth_date,
                sex,
                phone,
                email,
                address,
            }),
            // finish() has already reported whichever is missing.
            _ => Err(ServiceError::internal()),
        }
    }
}

/// `YYYY-MM-DD`, a real date, not in the future and not absurdly old.
pub fn parse_birth_date(text: &str, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    let well_formed = text.len() == 10
        && text.chars().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !well_formed {
        return Err("must be a date as YYYY-MM-DD");
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "is not a real date")?;
    if date > today {
        return Err("must not be in the future");
    }
    if date < EARLIEST_BIRTH_DATE {
        return Err("must not be before 1880-01-01");
    }
    Ok(date)
}

/// A new patient from validated details.
pub fn register(details: PatientDetails, mrn: String, now: DateTime<Utc>) -> Patient {
    Patient {
        id: Uuid::now_v7(),
        mrn,
        name: details.name,
        birth_date: details.birth_date,
        sex: details.sex,
        phone: details.phone,
        email: details.email,
        address: details.address,
        version: 1,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

pub use kit::versions::check_version;

/// The patient after an update, or `None` when the details are unchanged (no new version, no
/// event).
pub fn update(
    current: &Patient,
    expected_version: Option<i64>,
    details: PatientDetails,
    now: DateTime<Utc>,
) -> Result<Option<Patient>, ServiceError> {
    check_version(current.version, expected_version)?;
    let unchanged = current.name == details.name
        && current.birth_date == details.birth_date
        && current.sex == details.sex
        && current.phone == details.phone
        && current.email == details.email
        && current.address == details.address;
    if unchanged {
        return Ok(None);
    }
    Ok(Some(Patient {
        name: details.name,
        birth_date: details.birth_date,
        sex: details.sex,
        phone: details.phone,
        email: details.email,
        address: details.address,
        version: current.version + 1,
        updated_at: now,
        ..current.clone()
    }))
}

/// The patient after a soft delete: the row stays, marked deleted, one version newer.
pub fn delete(
    current: &Patient,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Patient, ServiceError> {
    check_version(current.version, expected_version)?;
    Ok(Patient {
        version: current.version + 1,
        updated_at: now,
        deleted_at: Some(now),
        ..current.clone()
    })
}

/// A new medical record number: nine random digits and a Luhn check digit, so a mistyped MRN is
/// caught before it finds the wrong patient.
pub fn new_mrn() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source");
    let number = u64::from_le_bytes(bytes) % 1_000_000_000;
    let digits = format!("{number:09}");
    format!("{digits}{}", luhn_check_digit(&digits))
}

/// The Luhn check digit of a string of ASCII digits.
pub fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn valid() -> Value {
        json!({"name": "Ada Lovelace", "birth_date": "1990-12-10", "sex": "female",
               "phone": "+44 20 7946 0958", "email": "ada@example.org", "address": "12 St James's Sq"})
    }

    fn invalid_fields(value: Value) -> Vec<String> {
        let err = PatientDetails::parse(&body(value), today()).unwrap_err();
        assert_eq!(err.code.http_status(), 422);
        err.fields.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_complete_patient_is_accepted() {
        let details = PatientDetails::parse(&body(valid()), today()).unwrap();
        assert_eq!(details.name, "Ada Lovelace");
        assert_eq!(details.sex, Sex::Female);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (json!({}), vec!["name", "birth_date", "sex"]),
            (
                json!({"name": "", "birth_date": "2030-01-01", "sex": "f"}),
                vec!["name", "birth_date", "sex"],
            ),
            (
                json!({"name": "A", "birth_date": "1990-02-30", "sex": "male"}),
                vec!["birth_date"],
            ),
            (
                json!({"name": "A", "birth_date": "1990-1-5", "sex": "male"}),
                vec!["birth_date"],
            ),
            (
                json!({"name": "A", "birth_date": "1990-01-05", "sex": "male", "email": "nope"}),
                vec!["email"],
            ),
            (
                json!({"name": "A", "birth_date": "1990-01-05", "sex": "male", "phone": "ring me"}),
                vec!["phone"],
            ),
            (
                json!({"name": "x".repeat(201), "birth_date": "1990-01-05", "sex": "male"}),
                vec!["name"],
            ),
            (
                json!({"name": "A", "birth_date": "1990-01-05", "sex": "male", "blood": "O+"}),
                vec!["blood"],
            ),
            (
                json!({"name": 7, "birth_date": "1990-01-05", "sex": "male"}),
                vec!["name"],
            ),
        ];
        for (input, expected) in cases {
            let mut fields = invalid_fields(input.clone());
            fields.sort();
            let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
            expected.sort();
            assert_eq!(fields, expected, "for {input}");
        }
    }

    #[test]
    fn birth_dates_are_bounded_by_today() {
        assert!(parse_birth_date("2026-11-25", today()).is_ok());
        assert_eq!(
            parse_birth_date("2026-11-26", today()),
            Err("must not be in the future")
        );
        assert!(parse_birth_date("1879-12-31", today()).is_err());
    }

    #[test]
    fn read_only_fields_echoed_back_are_ignored() {
        let mut input = valid();
        input["id"] = json!("whatever");
        input["version"] = json!(9);
        assert!(PatientDetails::parse(&body(input), today()).is_ok());
    }

    #[test]
    fn an_update_bumps_the_version_unless_nothing_changed() {
        let details = PatientDetails::parse(&body(valid()), today()).unwrap();
        let patient = register(details.clone(), new_mrn(), Utc::now());
        assert_eq!(
            update(&patient, Some(1), details.clone(), Utc::now()).unwrap(),
            None
        );
        let moved = PatientDetails {
            name: "Ada King".into(),
            ..details
        };
        let updated = update(&patient, None, moved.clone(), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!((updated.version, updated.name.as_str()), (2, "Ada King"));
        assert_eq!(updated.mrn, patient.mrn);
        let stale = update(&updated, Some(1), moved, Utc::now()).unwrap_err();
        assert_eq!(stale.code.http_status(), 412);
    }

    #[test]
    fn a_delete_keeps_the_patient_and_marks_it() {
        let details = PatientDetails::parse(&body(valid()), today()).unwrap();
        let patient = register(details, new_mrn(), Utc::now());
        let deleted = delete(&patient, Some(1), Utc::now()).unwrap();
        assert_eq!(deleted.version, 2);
        assert!(deleted.deleted_at.is_some());
        assert_eq!(
            delete(&patient, Some(7), Utc::now())
                .unwrap_err()
                .code
                .http_status(),
            412
        );
    }

    #[test]
    fn mrns_are_ten_digits_with_a_valid_check_digit() {
        for _ in 0..100 {
            let mrn = new_mrn();
            assert_eq!(mrn.len(), 10);
            assert_eq!(
                luhn_check_digit(&mrn[..9]),
                mrn[9..].parse::<u32>().unwrap()
            );
        }
        assert_eq!(luhn_check_digit("7992739871"), 3); // the textbook example
    }
}
