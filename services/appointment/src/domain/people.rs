//! Whether the people a booking names can be booked: the patient exists and is not deleted;
//! the doctor exists, is not deleted, and is a doctor. Decided on what the directory knows.

use kit::directory::{KnownPatient, KnownStaff};
use shared_events::FieldError;
use shared_events::staff::StaffRole;

/// What is wrong with the patient a booking names, if anything.
pub fn patient_problem(known: Option<&KnownPatient>) -> Option<FieldError> {
    let message = match known {
        None => "no such patient",
        Some(patient) if patient.deleted => "the patient has been deleted",
        Some(_) => return None,
    };
    Some(field_error("patient_id", message))
}

/// What is wrong with the doctor a booking names, if anything.
pub fn doctor_problem(known: Option<&KnownStaff>) -> Option<FieldError> {
    let message = match known {
        None => "no such doctor".to_owned(),
        Some(staff) if staff.deleted => "the doctor has been deleted".to_owned(),
        Some(staff) if staff.role != StaffRole::Doctor => {
            format!("is not a doctor ({})", staff.role.as_str())
        }
        Some(_) => return None,
    };
    Some(field_error("doctor_id", message))
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn references_are_checked_for_existence_deletion_and_role() {
        let patient = |deleted| KnownPatient {
            id: Uuid::from_u128(1),
            name: "Ada".into(),
            deleted,
            version: 1,
        };
        let staff = |role, deleted| KnownStaff {
            id: Uuid::from_u128(10),
            name: "Dr X".into(),
            role,
            deleted,
            version: 1,
        };
        let message = |e: Option<FieldError>| e.map(|e| format!("{}: {}", e.field, e.message));
        assert_eq!(
            message(patient_problem(None)).as_deref(),
            Some("patient_id: no such patient")
        );
        assert_eq!(
            message(patient_problem(Some(&patient(true)))).as_deref(),
            Some("patient_id: the patient has been deleted")
        );
        assert_eq!(message(patient_problem(Some(&patient(false)))), None);
        let cases = [
            (None, Some("doctor_id: no such doctor")),
            (
                Some(staff(StaffRole::Doctor, true)),
                Some("doctor_id: the doctor has been deleted"),
            ),
            (
                Some(staff(StaffRole::Nurse, false)),
                Some("doctor_id: is not a doctor (nurse)"),
            ),
            (
                Some(staff(StaffRole::Receptionist, false)),
                Some("doctor_id: is not a doctor (receptionist)"),
            ),
            (Some(staff(StaffRole::Doctor, false)), None),
        ];
        for (known, expected) in cases {
            assert_eq!(
                message(doctor_problem(known.as_ref())).as_deref(),
                expected,
                "{known:?}"
            );
        }
    }
}
