//! Time arithmetic and the double-booking rule: a doctor never has two overlapping active
//! appointments, nor a patient.

use chrono::{DateTime, Duration, Utc};
use kit::events::format_timestamp;
use shared_events::ServiceError;
use shared_events::appointment::Appointment;

/// When an appointment of `minutes` starting at `start` ends.
pub fn end_of(start: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    start + Duration::minutes(minutes)
}

/// Whether two half-open intervals `[start, end)` share a moment: one that ends as the other
/// starts does not overlap it.
pub fn overlaps(a: (DateTime<Utc>, DateTime<Utc>), b: (DateTime<Utc>, DateTime<Utc>)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The 409 when `candidate` would double-book against `existing`, naming the existing
/// appointment; `None` when they can both stand.
pub fn double_booking(candidate: &Appointment, existing: &Appointment) -> Option<ServiceError> {
    if candidate.id == existing.id
        || !candidate.status.is_active()
        || !existing.status.is_active()
        || !overlaps(
            (candidate.start, candidate.end),
            (existing.start, existing.end),
        )
    {
        return None;
    }
    let who = if candidate.doctor_id == existing.doctor_id {
        "the doctor"
    } else if candidate.patient_id == existing.patient_id {
        "the patient"
    } else {
        return None;
    };
    Some(ServiceError::conflict(format!(
        "{who} already has appointment {} from {} to {}",
        existing.id,
        format_timestamp(existing.start),
        format_timestamp(existing.end)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared_events::appointment::AppointmentStatus;
    use uuid::Uuid;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0).unwrap()
    }

    fn appointment(patient: u128, doctor: u128, start: DateTime<Utc>, minutes: i64) -> Appointment {
        Appointment {
            id: Uuid::now_v7(),
            patient_id: Uuid::from_u128(patient),
            doctor_id: Uuid::from_u128(doctor),
            start,
            end: end_of(start, minutes),
            duration_minutes: minutes,
            reason: None,
            status: AppointmentStatus::Booked,
            notes: None,
            cancellation_reason: None,
            version: 1,
            created_at: at(0, 0),
            updated_at: at(0, 0),
        }
    }

    #[test]
    fn the_end_is_the_start_plus_the_duration() {
        assert_eq!(end_of(at(9, 30), 30), at(10, 0));
        assert_eq!(
            end_of(at(23, 0), 480).to_rfc3339(),
            "2026-12-02T07:00:00+00:00"
        );
    }

    #[test]
    fn intervals_overlap_only_when_they_share_a_moment() {
        let nine_to_ten = (at(9, 0), at(10, 0));
        let cases = [
            ((at(9, 0), at(10, 0)), true),    // the same slot
            ((at(9, 30), at(10, 30)), true),  // starts inside
            ((at(8, 30), at(9, 1)), true),    // ends inside
            ((at(9, 10), at(9, 20)), true),   // inside
            ((at(8, 0), at(11, 0)), true),    // around
            ((at(10, 0), at(10, 30)), false), // starts as it ends
            ((at(8, 0), at(9, 0)), false),    // ends as it starts
            ((at(11, 0), at(12, 0)), false),  // later
        ];
        for (other, expected) in cases {
            assert_eq!(overlaps(nine_to_ten, other), expected, "{other:?}");
            assert_eq!(
                overlaps(other, nine_to_ten),
                expected,
                "{other:?} (swapped)"
            );
        }
    }

    #[test]
    fn a_double_booking_names_the_existing_appointment_and_who_is_busy() {
        let existing = appointment(1, 10, at(9, 0), 30);
        let same_doctor = appointment(2, 10, at(9, 15), 30);
        let same_patient = appointment(1, 11, at(9, 15), 30);
        let both = appointment(1, 10, at(9, 15), 30);
        let strangers = appointment(2, 11, at(9, 15), 30);
        let back_to_back = appointment(1, 10, at(9, 30), 30);
        let expect = |candidate: &Appointment, who: Option<&str>| {
            let message = double_booking(candidate, &existing).map(|e| {
                assert_eq!(e.code.http_status(), 409);
                e.message
            });
            let expected = who.map(|who| {
                format!(
                    "{who} already has appointment {} from 2026-12-01T09:00:00.000000Z to 2026-12-01T09:30:00.000000Z",
                    existing.id
                )
            });
            assert_eq!(message, expected);
        };
        expect(&same_doctor, Some("the doctor"));
        expect(&same_patient, Some("the patient"));
        expect(&both, Some("the doctor"));
        expect(&strangers, None);
        expect(&back_to_back, None);
        expect(&existing, None); // an appointment never conflicts with itself
    }

    #[test]
    fn only_active_appointments_hold_their_slot() {
        let existing = appointment(1, 10, at(9, 0), 30);
        for status in AppointmentStatus::ALL {
            let mut other = appointment(2, 10, at(9, 0), 30);
            other.status = status;
            assert_eq!(
                double_booking(&other, &existing).is_some(),
                status.is_active(),
                "{status:?}"
            );
            assert_eq!(
                double_booking(&existing, &other).is_some(),
                status.is_active(),
                "{status:?} (existing)"
            );
        }
    }
}
