//! What a valid appointment is, and the decisions about one: booking, the status lifecycle,
//! rescheduling, cancelling, double-booking. Pure functions: the handlers load, decide here,
//! store and publish.
//!
//! - [`request`]: reading a booking or a change from a request body.
//! - [`lifecycle`]: which status may follow which.
//! - [`people`]: whether the patient and the doctor can be booked.
//! - [`schedule`]: time arithmetic and the double-booking rule.

mod lifecycle;
mod people;
mod request;
mod schedule;

use chrono::{DateTime, Utc};
use shared_events::ServiceError;
use shared_events::appointment::{Appointment, AppointmentStatus};
use uuid::Uuid;

pub use lifecycle::{can_become, check_transition};
pub use people::{doctor_problem, patient_problem};
pub use request::{
    AppointmentChanges, BOOKING_FIELDS, BookingRequest, DEFAULT_DURATION_MINUTES,
    MAX_CANCELLATION_REASON_CHARS, MAX_DURATION_MINUTES, MAX_NOTES_CHARS, MAX_REASON_CHARS,
    MIN_DURATION_MINUTES, READ_ONLY_FIELDS, parse_start,
};
pub use schedule::{double_booking, end_of, overlaps};

/// The event verbs of an appointment: `hospital.events.appointment.<id>.<verb>`.
pub const CREATED: &str = "created";
pub const UPDATED: &str = "updated";
pub const CANCELLED: &str = "cancelled";

/// Why the system cancelled a booking when it saw a delete event.
pub const PATIENT_DELETED: &str = "the patient was deleted";
pub const DOCTOR_DELETED: &str = "the doctor was deleted";

pub use kit::versions::check_version;

/// A new appointment, always booked.
pub fn book(request: BookingRequest, now: DateTime<Utc>) -> Appointment {
    Appointment {
        id: Uuid::now_v7(),
        patient_id: request.patient_id,
        doctor_id: request.doctor_id,
        start: request.start,
        end: end_of(request.start, request.duration_minutes),
        duration_minutes: request.duration_minutes,
        reason: request.reason,
        status: AppointmentStatus::Booked,
        notes: request.notes,
        cancellation_reason: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// A decided change: the next state, its event verb, and whether it claims a (new) slot, so
/// the store must check for double-booking and for the people still being there.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub appointment: Appointment,
    pub verb: &'static str,
    pub claims_slot: bool,
}

/// The appointment after a `PUT`, or `None` when nothing changes (no new version, no event).
pub fn revise(
    current: &Appointment,
    expected_version: Option<i64>,
    changes: &AppointmentChanges,
    now: DateTime<Utc>,
) -> Result<Option<Revision>, ServiceError> {
    check_version(current.version, expected_version)?;
    if changes
        .patient_id
        .is_some_and(|id| id != current.patient_id)
    {
        return Err(ServiceError::invalid_field(
            "patient_id",
            "cannot be changed; book a new appointment for the other patient",
        ));
    }
    let status = changes.status.unwrap_or(current.status);
    if status != current.status {
        check_transition(current.status, status)?;
    }
    let moved = changes.start != current.start
        || changes.duration_minutes != current.duration_minutes
        || changes.doctor_id != current.doctor_id;
    if moved && !current.status.is_active() {
        return Err(ServiceError::conflict(format!(
            "an appointment that is {} cannot be rescheduled or given another doctor",
            current.status.as_str()
        )));
    }
    if changes.start != current.start && changes.start < now {
        return Err(ServiceError::invalid_field(
            "start",
            "must not be in the past",
        ));
    }
    let cancels = status == AppointmentStatus::Cancelled && current.status != status;
    let next = Appointment {
        doctor_id: changes.doctor_id,
        start: changes.start,
        end: end_of(changes.start, changes.duration_minutes),
        duration_minutes: changes.duration_minutes,
        reason: changes.reason.clone(),
        notes: changes.notes.clone(),
        status,
        cancellation_reason: if cancels {
            changes.cancellation_reason.clone()
        } else {
            current.cancellation_reason.clone()
        },
        ..current.clone()
    };
    if next == *current {
        return Ok(None);
    }
    Ok(Some(Revision {
        claims_slot: moved && next.status.is_active(),
        verb: if cancels { CANCELLED } else { UPDATED },
        appointment: Appointment {
            version: current.version + 1,
            updated_at: now,
            ..next
        },
    }))
}

/// The appointment after a cancellation (a `DELETE`, or the system after a delete event), or
/// `None` when it is already cancelled.
pub fn cancel(
    current: &Appointment,
    expected_version: Option<i64>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Revision>, ServiceError> {
    check_version(current.version, expected_version)?;
    if current.status == AppointmentStatus::Cancelled {
        return Ok(None);
    }
    check_transition(current.status, AppointmentStatus::Cancelled)?;
    Ok(Some(Revision {
        appointment: Appointment {
            status: AppointmentStatus::Cancelled,
            cancellation_reason: reason.map(str::to_owned),
            version: current.version + 1,
            updated_at: now,
            ..current.clone()
        },
        verb: CANCELLED,
        claims_slot: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppointmentStatus::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn tomorrow(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, hour, 0, 0).unwrap()
    }

    fn booked() -> Appointment {
        let request = BookingRequest {
            patient_id: Uuid::from_u128(1),
            doctor_id: Uuid::from_u128(10),
            start: tomorrow(9),
            duration_minutes: 30,
            reason: Some("check-up".into()),
            notes: None,
        };
        book(request, now())
    }

    fn in_status(status: AppointmentStatus) -> Appointment {
        Appointment { status, ..booked() }
    }

    /// The changes that leave `a` exactly as it is.
    fn same(a: &Appointment) -> AppointmentChanges {
        AppointmentChanges {
            patient_id: Some(a.patient_id),
            doctor_id: a.doctor_id,
            start: a.start,
            duration_minutes: a.duration_minutes,
            reason: a.reason.clone(),
            notes: a.notes.clone(),
            status: Some(a.status),
            cancellation_reason: None,
        }
    }

    fn status_of(result: Result<Option<Revision>, ServiceError>) -> Result<u16, u16> {
        result
            .map(|r| r.map_or(0, |r| r.appointment.version as u16))
            .map_err(|e| e.code.http_status())
    }

    #[test]
    fn a_put_changes_status_exactly_where_the_lifecycle_allows() {
        for from in AppointmentStatus::ALL {
            for to in AppointmentStatus::ALL.into_iter().filter(|to| *to != from) {
                let current = in_status(from);
                let changes = AppointmentChanges {
                    status: Some(to),
                    ..same(&current)
                };
                let result = revise(&current, None, &changes, now());
                let expected = if can_become(from, to) {
                    Ok(2)
                } else {
                    Err(409)
                };
                if let Ok(Some(revision)) = &result {
                    assert_eq!(revision.appointment.status, to);
                    assert!(!revision.claims_slot);
                }
                assert_eq!(status_of(result), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_booking_starts_booked_at_version_1_and_ends_after_its_duration() {
        let a = booked();
        assert_eq!(
            (a.status, a.version, a.end),
            (Booked, 1, tomorrow(9) + chrono::Duration::minutes(30))
        );
        assert_eq!(a.id.get_version_num(), 7);
    }

    /// The changes that leave `a` as it is but for `edit`.
    fn with(a: &Appointment, edit: impl FnOnce(&mut AppointmentChanges)) -> AppointmentChanges {
        let mut changes = same(a);
        edit(&mut changes);
        changes
    }

    type Decided = Option<(&'static str, bool)>;

    #[test]
    fn revisions_are_decided_by_what_changes() {
        let a = booked();
        let cases: [(&str, AppointmentChanges, Decided); 6] = [
            ("nothing", same(&a), None),
            (
                "later",
                with(&a, |c| c.start = tomorrow(11)),
                Some((UPDATED, true)),
            ),
            (
                "longer",
                with(&a, |c| c.duration_minutes = 60),
                Some((UPDATED, true)),
            ),
            (
                "doctor",
                with(&a, |c| c.doctor_id = Uuid::from_u128(11)),
                Some((UPDATED, true)),
            ),
            (
                "notes",
                with(&a, |c| c.notes = Some("x-rays".into())),
                Some((UPDATED, false)),
            ),
            (
                "cancel",
                with(&a, |c| c.status = Some(Cancelled)),
                Some((CANCELLED, false)),
            ),
        ];
        for (name, changes, expected) in cases {
            let revision = revise(&a, Some(1), &changes, now()).unwrap();
            assert_eq!(
                revision.as_ref().map(|r| (r.verb, r.claims_slot)),
                expected,
                "{name}"
            );
            if let Some(Revision {
                appointment: next, ..
            }) = revision
            {
                assert_eq!((next.version, next.updated_at), (2, now()), "{name}");
                assert_eq!(
                    next.end,
                    end_of(next.start, next.duration_minutes),
                    "{name}"
                );
            }
        }
        let cancel = with(&a, |c| {
            c.status = Some(Cancelled);
            c.cancellation_reason = Some("ill".into());
        });
        let cancelled = revise(&a, None, &cancel, now())
            .unwrap()
            .unwrap()
            .appointment;
        assert_eq!(cancelled.cancellation_reason.as_deref(), Some("ill"));
    }

    #[test]
    fn revisions_are_refused_by_the_rules() {
        let (b, f) = (booked(), in_status(Fulfilled));
        let past = now() - chrono::Duration::minutes(1);
        let cases = [
            ("stale If-Match", &b, Some(7), same(&b), 412),
            (
                "another patient",
                &b,
                None,
                with(&b, |c| c.patient_id = Some(Uuid::from_u128(2))),
                422,
            ),
            (
                "moved into the past",
                &b,
                None,
                with(&b, |c| c.start = past),
                422,
            ),
            (
                "fulfilled moved",
                &f,
                None,
                with(&f, |c| c.start = tomorrow(11)),
                409,
            ),
            (
                "fulfilled lengthened",
                &f,
                None,
                with(&f, |c| c.duration_minutes = 45),
                409,
            ),
            (
                "fulfilled reassigned",
                &f,
                None,
                with(&f, |c| c.doctor_id = Uuid::from_u128(11)),
                409,
            ),
            (
                "fulfilled rebooked",
                &f,
                None,
                with(&f, |c| c.status = Some(Booked)),
                409,
            ),
        ];
        for (name, current, expected_version, changes, status) in cases {
            let result = revise(current, expected_version, &changes, now());
            assert_eq!(status_of(result), Err(status), "{name}");
        }
        // Notes may still be written on a finished appointment, without echoing the patient.
        let notes = with(&f, |c| {
            c.notes = Some("all well".into());
            c.patient_id = None;
        });
        assert_eq!(status_of(revise(&f, Some(1), &notes, now())), Ok(2));
        // A start already in the past may stay where it is (a checked-in patient's notes).
        let earlier = Appointment {
            start: past,
            status: CheckedIn,
            ..b
        };
        let notes = with(&earlier, |c| c.notes = Some("seen".into()));
        assert_eq!(status_of(revise(&earlier, None, &notes, now())), Ok(2));
    }

    #[test]
    fn cancelling_follows_the_lifecycle_and_is_idempotent() {
        let cases = [
            (Booked, Ok(2)),
            (CheckedIn, Ok(2)),
            (Cancelled, Ok(0)),
            (Fulfilled, Err(409)),
            (NoShow, Err(409)),
        ];
        for (status, expected) in cases {
            let result = cancel(&in_status(status), None, Some(PATIENT_DELETED), now());
            if let Ok(Some(revision)) = &result {
                assert_eq!(revision.verb, CANCELLED);
                assert_eq!(
                    revision.appointment.cancellation_reason.as_deref(),
                    Some(PATIENT_DELETED)
                );
            }
            assert_eq!(status_of(result), expected, "{status:?}");
        }
        assert_eq!(status_of(cancel(&booked(), Some(2), None, now())), Err(412));
    }
}
