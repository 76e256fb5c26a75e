//! The decisions about medical records. Pure functions: the handlers look the references up in
//! the read-model, decide here, store and publish.
//!
//! A record is never silently overwritten: a change is an amendment with a new version, and
//! "delete" marks it entered-in-error (kept, with its history). An entered-in-error record is
//! final: it can be neither amended nor marked again (409 Conflict, since GET still shows it).

use chrono::{DateTime, Utc};
use kit::directory::{KnownPatient, KnownStaff};
use shared_events::record::{MedicalRecord, RecordStatus};
use shared_events::{Actor, ErrorCode, FieldError, ServiceError};
use uuid::Uuid;

use crate::details::{RecordDetails, RecordRequest};
use crate::read_model::KnownAppointment;

/// What a new version of a record was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Amended,
    EnteredInError,
}

impl Change {
    /// As the version history names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Amended => "amended",
            Change::EnteredInError => "entered_in_error",
        }
    }

    /// The event's verb: `hospital.events.record.<id>.<verb>`.
    pub fn verb(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Amended => "amended",
            Change::EnteredInError => "deleted",
        }
    }
}

fn only_staff() -> ServiceError {
    ServiceError::new(
        ErrorCode::Forbidden,
        "only a staff member can write medical records",
    )
}

/// The caller's staff id, if it can be one; the gateway sets it from the verified token.
pub fn author_id(actor: &Actor) -> Result<Uuid, ServiceError> {
    actor.id.parse().map_err(|_| only_staff())
}

/// Only a known, current staff member writes medical records.
pub fn check_author(known: Option<&KnownStaff>) -> Result<(), ServiceError> {
    match known {
        Some(staff) if !staff.deleted => Ok(()),
        _ => Err(only_staff()),
    }
}

/// Why a new record may not name this patient, if it may not. Existing records of a deleted
/// patient are kept (and may still be amended); only new ones are refused.
pub fn patient_problem(known: Option<&KnownPatient>) -> Option<FieldError> {
    let message = match known {
        None => "no such patient",
        Some(patient) if patient.deleted => "the patient has been deleted",
        Some(_) => return None,
    };
    Some(FieldError {
        field: "patient_id".into(),
        message: message.into(),
    })
}

/// Why a record of `patient_id` may not name this appointment, if it may not. Any status will
/// do: a note on why a visit was cancelled belongs to that visit.
pub fn appointment_problem(
    known: Option<&KnownAppointment>,
    patient_id: Uuid,
) -> Option<FieldError> {
    let message = match known {
        None => "no such appointment",
        Some(appointment) if appointment.patient_id != patient_id => {
            "is an appointment of another patient"
        }
        Some(_) => return None,
    };
    Some(FieldError {
        field: "appointment_id".into(),
        message: message.into(),
    })
}

pub use kit::versions::check_version;

/// A new record, version 1, written by `author_id`.
pub fn write(
    patient_id: Uuid,
    details: RecordDetails,
    author_id: Uuid,
    now: DateTime<Utc>,
) -> MedicalRecord {
    MedicalRecord {
        id: Uuid::now_v7(),
        patient_id,
        author_id,
        appointment_id: details.appointment_id,
        kind: details.kind,
        title: details.title,
        body: details.body,
        diagnoses: details.diagnoses,
        vitals: details.vitals,
        recorded_at: details.recorded_at.unwrap_or(now),
        status: RecordStatus::Active,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The record after an amendment, or `None` when nothing changed (no new version, no event).
/// The author stays the first author; who amended it goes into the version history.
pub fn amend(
    current: &MedicalRecord,
    expected_version: Option<i64>,
    request: RecordRequest,
    now: DateTime<Utc>,
) -> Result<Option<MedicalRecord>, ServiceError> {
    check_version(current.version, expected_version)?;
    if current.status == RecordStatus::EnteredInError {
        return Err(ServiceError::conflict(
            "the record was entered in error and cannot be amended",
        ));
    }
    if request
        .patient_id
        .is_some_and(|id| id != current.patient_id)
    {
        return Err(ServiceError::invalid_field(
            "patient_id",
            "cannot be changed",
        ));
    }
    let details = request.details;
    let next = MedicalRecord {
        appointment_id: details.appointment_id,
        kind: details.kind,
        title: details.title,
        body: details.body,
        diagnoses: details.diagnoses,
        vitals: details.vitals,
        recorded_at: details.recorded_at.unwrap_or(current.recorded_at),
        ..current.clone()
    };
    if next == *current {
        return Ok(None);
    }
    Ok(Some(MedicalRecord {
        version: current.version + 1,
        updated_at: now,
        ..next
    }))
}

/// The record marked entered-in-error: kept, one version newer, out of the default lists.
pub fn enter_in_error(
    current: &MedicalRecord,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<MedicalRecord, ServiceError> {
    check_version(current.version, expected_version)?;
    // 409 rather than 404: GET still answers the record, so it is there, only final.
    if current.status == RecordStatus::EnteredInError {
        return Err(ServiceError::conflict(
            "the record is already marked entered in error",
        ));
    }
    Ok(MedicalRecord {
        status: RecordStatus::EnteredInError,
        version: current.version + 1,
        updated_at: now,
        ..current.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared_events::record::{Diagnosis, RecordKind, Vitals};
    use shared_events::staff::StaffRole;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, hour, 0, 0).unwrap()
    }

    fn details() -> RecordDetails {
        RecordDetails {
            appointment_id: None,
            kind: RecordKind::Diagnosis,
            title: "Asthma review".into(),
            body: Some("Wheeze at night.".into()),
            diagnoses: vec![Diagnosis {
                code: "J45.909".into(),
                description: "Asthma".into(),
            }],
            vitals: Some(Vitals {
                spo2_percent: Some(96),
                ..Vitals::default()
            }),
            recorded_at: Some(at(8)),
        }
    }

    fn record() -> MedicalRecord {
        write(Uuid::now_v7(), details(), Uuid::now_v7(), at(9))
    }

    fn amendment(details: RecordDetails) -> RecordRequest {
        RecordRequest {
            patient_id: None,
            details,
        }
    }

    fn status(error: ServiceError) -> u16 {
        error.code.http_status()
    }

    #[test]
    fn a_new_record_is_active_at_version_one_by_its_author() {
        let author = Uuid::now_v7();
        let record = write(Uuid::now_v7(), details(), author, at(9));
        assert_eq!((record.version, record.status), (1, RecordStatus::Active));
        assert_eq!(record.author_id, author);
        assert_eq!(record.recorded_at, at(8));
        let undated = RecordDetails {
            recorded_at: None,
            ..details()
        };
        assert_eq!(
            write(Uuid::nil(), undated, author, at(9)).recorded_at,
            at(9)
        );
    }

    #[test]
    fn an_amendment_is_a_new_version_that_keeps_author_and_creation() {
        let current = record();
        let changed = RecordDetails {
            title: "Asthma review, corrected".into(),
            ..details()
        };
        let next = amend(&current, Some(1), amendment(changed), at(10))
            .unwrap()
            .unwrap();
        assert_eq!(next.version, 2);
        assert_eq!(next.title, "Asthma review, corrected");
        assert_eq!(
            (next.author_id, next.created_at),
            (current.author_id, current.created_at)
        );
        assert_eq!(next.updated_at, at(10));
    }

    #[test]
    fn an_amendment_without_a_time_keeps_the_recorded_time() {
        let current = record();
        let undated = RecordDetails {
            recorded_at: None,
            ..details()
        };
        assert_eq!(amend(&current, None, amendment(undated), at(10)), Ok(None));
    }

    #[test]
    fn an_amendment_that_changes_nothing_is_no_change() {
        let current = record();
        assert_eq!(
            amend(&current, None, amendment(details()), at(10)),
            Ok(None)
        );
    }

    #[test]
    fn amendments_are_refused_when_they_cannot_apply() {
        let current = record();
        let stale = amend(&current, Some(7), amendment(details()), at(10)).unwrap_err();
        assert_eq!(status(stale), 412);
        let other_patient = RecordRequest {
            patient_id: Some(Uuid::now_v7()),
            details: details(),
        };
        let moved = amend(&current, None, other_patient, at(10)).unwrap_err();
        assert_eq!(
            (status(moved.clone()), moved.fields[0].field.as_str()),
            (422, "patient_id")
        );
        let same_patient = RecordRequest {
            patient_id: Some(current.patient_id),
            details: details(),
        };
        assert_eq!(amend(&current, None, same_patient, at(10)), Ok(None));
    }

    #[test]
    fn an_entered_in_error_record_is_final() {
        let current = record();
        let marked = enter_in_error(&current, Some(1), at(10)).unwrap();
        assert_eq!(marked.status, RecordStatus::EnteredInError);
        assert_eq!(marked.version, 2);
        assert_eq!(marked.title, current.title);
        let changed = RecordDetails {
            title: "Too late".into(),
            ..details()
        };
        assert_eq!(
            status(amend(&marked, None, amendment(changed), at(11)).unwrap_err()),
            409
        );
        assert_eq!(
            status(enter_in_error(&marked, None, at(11)).unwrap_err()),
            409
        );
        assert_eq!(
            status(enter_in_error(&current, Some(2), at(11)).unwrap_err()),
            412
        );
    }

    #[test]
    fn each_change_has_its_history_name_and_event_verb() {
        let names = [Change::Created, Change::Amended, Change::EnteredInError]
            .map(|c| (c.as_str(), c.verb()));
        assert_eq!(
            names,
            [
                ("created", "created"),
                ("amended", "amended"),
                ("entered_in_error", "deleted")
            ]
        );
    }

    #[test]
    fn only_a_known_current_staff_member_writes() {
        let staff = |deleted| KnownStaff {
            id: Uuid::now_v7(),
            name: "Dr Who".into(),
            role: StaffRole::Doctor,
            deleted,
            version: 1,
        };
        assert!(check_author(Some(&staff(false))).is_ok());
        assert_eq!(status(check_author(Some(&staff(true))).unwrap_err()), 403);
        assert_eq!(status(check_author(None).unwrap_err()), 403);
        assert_eq!(status(author_id(&Actor::system()).unwrap_err()), 403);
    }

    #[test]
    fn references_are_checked_against_what_the_read_model_knows() {
        let patient = |deleted| KnownPatient {
            id: Uuid::now_v7(),
            name: "Ada".into(),
            deleted,
            version: 1,
        };
        assert_eq!(patient_problem(Some(&patient(false))), None);
        let cases = [
            (None, "no such patient"),
            (Some(patient(true)), "the patient has been deleted"),
        ];
        for (known, message) in cases {
            let problem = patient_problem(known.as_ref()).unwrap();
            assert_eq!(
                (problem.field.as_str(), problem.message.as_str()),
                ("patient_id", message)
            );
        }
        let owner = Uuid::now_v7();
        let appointment = KnownAppointment {
            id: Uuid::now_v7(),
            patient_id: owner,
            status: "cancelled".into(),
            version: 2,
        };
        assert_eq!(appointment_problem(Some(&appointment), owner), None);
        let other = appointment_problem(Some(&appointment), Uuid::now_v7()).unwrap();
        assert_eq!(other.field, "appointment_id");
        assert!(appointment_problem(None, owner).is_some());
    }
}
