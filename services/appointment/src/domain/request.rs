//! Reading a booking or a change from a request body, naming every invalid field.

use chrono::{DateTime, Datelike, Utc};
use kit::events::{format_timestamp, parse_timestamp};
use kit::fields::FieldReader;
use serde_json::{Map, Value};
use shared_events::ServiceError;
use shared_events::appointment::AppointmentStatus;
use uuid::Uuid;

pub const DEFAULT_DURATION_MINUTES: i64 = 30;
pub const MIN_DURATION_MINUTES: i64 = 5;
pub const MAX_DURATION_MINUTES: i64 = 480;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_NOTES_CHARS: usize = 2000;
pub const MAX_CANCELLATION_REASON_CHARS: usize = 500;
/// Longer than any id, short enough that garbage is refused before it is parsed.
const MAX_ID_CHARS: usize = 64;
const MAX_TIME_CHARS: usize = 64;

/// The fields a client writes when booking.
pub const BOOKING_FIELDS: [&str; 7] = [
    "patient_id",
    "doctor_id",
    "start",
    "duration_minutes",
    "reason",
    "notes",
    "status",
];
/// Server-owned fields a client may echo back from a GET; ignored, never written.
pub const READ_ONLY_FIELDS: [&str; 5] = ["id", "end", "version", "created_at", "updated_at"];
/// Written only by a change that cancels; otherwise an echo, ignored.
pub const CANCELLATION_REASON: &str = "cancellation_reason";

/// A new booking, validated (the people it names are checked against the directory later).
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRequest {
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub start: DateTime<Utc>,
    pub duration_minutes: i64,
    pub reason: Option<String>,
    pub notes: Option<String>,
}

impl BookingRequest {
    /// Validates a create body; `now` refuses a start in the past.
    pub fn parse(fields: &Map<String, Value>, now: DateTime<Utc>) -> Result<Self, ServiceError> {
        let allowed = allowed_fields();
        let mut reader = FieldReader::new(fields, &allowed);
        let patient_id = required_id(&mut reader, "patient_id");
        let doctor_id = required_id(&mut reader, "doctor_id");
        let start = required_start(&mut reader).filter(|start| {
            *start >= now || {
                reader.reject("start", "must not be in the past");
                false
            }
        });
        let duration_minutes = duration(&mut reader, fields);
        let reason = reader.optional_text("reason", MAX_REASON_CHARS);
        let notes = reader.optional_text("notes", MAX_NOTES_CHARS);
        match optional_status(&mut reader) {
            None | Some(AppointmentStatus::Booked) => {}
            Some(_) => reader.reject("status", "must be booked: a new appointment is booked"),
        }
        reader.finish()?;
        match (patient_id, doctor_id, start, duration_minutes) {
            (Some(patient_id), Some(doctor_id), Some(start), Some(duration_minutes)) => {
                Ok(BookingRequest {
                    patient_id,
                    doctor_id,
                    start,
                    duration_minutes,
                    reason,
                    notes,
                })
            }
            // finish() has already reported whichever is missing.
            _ => Err(ServiceError::internal()),
        }
    }
}

/// A `PUT` body: a full replacement of the writable fields, validated. Whether the change is
/// allowed for the appointment as it stands is [`super::revise`]'s decision.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentChanges {
    /// Present only to be checked: an appointment never moves to another patient.
    pub patient_id: Option<Uuid>,
    pub doctor_id: Uuid,
    pub start: DateTime<Utc>,
    pub duration_minutes: i64,
    pub reason: Option<String>,
    pub notes: Option<String>,
    /// `None` keeps the current status.
    pub status: Option<AppointmentStatus>,
    /// Used only when this change cancels the appointment.
    pub cancellation_reason: Option<String>,
}

impl AppointmentChanges {
    pub fn parse(fields: &Map<String, Value>) -> Result<Self, ServiceError> {
        let allowed = allowed_fields();
        let mut reader = FieldReader::new(fields, &allowed);
        let patient_id = if reader.is_present("patient_id") {
            required_id(&mut reader, "patient_id")
        } else {
            None
        };
        let doctor_id = required_id(&mut reader, "doctor_id");
        let start = required_start(&mut reader);
        let duration_minutes = duration(&mut reader, fields);
        let reason = reader.optional_text("reason", MAX_REASON_CHARS);
        let notes = reader.optional_text("notes", MAX_NOTES_CHARS);
        let status = optional_status(&mut reader);
        let cancellation_reason =
            reader.optional_text(CANCELLATION_REASON, MAX_CANCELLATION_REASON_CHARS);
        reader.finish()?;
        match (doctor_id, start, duration_minutes) {
            (Some(doctor_id), Some(start), Some(duration_minutes)) => Ok(AppointmentChanges {
                patient_id,
                doctor_id,
                start,
                duration_minutes,
                reason,
                notes,
                status,
                cancellation_reason,
            }),
            _ => Err(ServiceError::internal()),
        }
    }
}

fn allowed_fields() -> Vec<&'static str> {
    BOOKING_FIELDS
        .iter()
        .chain(READ_ONLY_FIELDS.iter())
        .chain([CANCELLATION_REASON].iter())
        .copied()
        .collect()
}

fn required_id(reader: &mut FieldReader, field: &str) -> Option<Uuid> {
    let text = reader.required_text(field, MAX_ID_CHARS)?;
    Uuid::try_parse(&text)
        .map_err(|_| reader.reject(field, "must be an id"))
        .ok()
}

fn required_start(reader: &mut FieldReader) -> Option<DateTime<Utc>> {
    let text = reader.required_text("start", MAX_TIME_CHARS)?;
    parse_start(&text)
        .map_err(|message| reader.reject("start", message))
        .ok()
}

/// An RFC 3339 date and time with its offset, as UTC, kept to the precision the store keeps.
pub fn parse_start(text: &str) -> Result<DateTime<Utc>, &'static str> {
    let start = parse_timestamp(text).map_err(
        |_| "must be a date and time in RFC 3339 with an offset, such as 2026-12-01T09:30:00+01:00",
    )?;
    // Stored times are fixed-width text; a year past 9998 would not sort (nor be plausible).
    if start.year() > 9998 {
        return Err("is too far in the future");
    }
    parse_timestamp(&format_timestamp(start)).map_err(|_| "is not a usable time")
}

/// `duration_minutes`: absent or `null` is the default; otherwise a whole number in bounds.
fn duration(reader: &mut FieldReader, fields: &Map<String, Value>) -> Option<i64> {
    let minutes = match fields.get("duration_minutes") {
        None | Some(Value::Null) => return Some(DEFAULT_DURATION_MINUTES),
        Some(Value::Number(number)) => number.as_i64(),
        Some(_) => None,
    };
    match minutes {
        Some(m) if (MIN_DURATION_MINUTES..=MAX_DURATION_MINUTES).contains(&m) => Some(m),
        Some(_) => {
            reader.reject(
                "duration_minutes",
                format!(
                    "must be between {MIN_DURATION_MINUTES} and {MAX_DURATION_MINUTES} minutes"
                ),
            );
            None
        }
        None => {
            reader.reject("duration_minutes", "must be a whole number of minutes");
            None
        }
    }
}

fn optional_status(reader: &mut FieldReader) -> Option<AppointmentStatus> {
    let text = reader.optional_text("status", 20)?;
    AppointmentStatus::parse(&text).or_else(|| {
        reader.reject(
            "status",
            "must be one of booked, checked_in, fulfilled, cancelled, noshow",
        );
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const PATIENT: &str = "0190f0c4-0000-7000-8000-000000000001";
    const DOCTOR: &str = "0190f0c4-0000-7000-8000-000000000002";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn booking(extra: Value) -> Map<String, Value> {
        let mut fields = body(json!({"patient_id": PATIENT, "doctor_id": DOCTOR,
                                     "start": "2026-12-01T09:30:00+01:00"}));
        fields.extend(body(extra));
        fields
    }

    fn invalid_fields(fields: Map<String, Value>) -> Vec<String> {
        let err = BookingRequest::parse(&fields, now()).unwrap_err();
        assert_eq!(err.code.http_status(), 422);
        let mut names: Vec<String> = err.fields.into_iter().map(|f| f.field).collect();
        names.sort();
        names
    }

    #[test]
    fn a_booking_is_read_with_its_defaults_and_in_utc() {
        let request = BookingRequest::parse(&booking(json!({})), now()).unwrap();
        assert_eq!(request.duration_minutes, 30);
        assert_eq!(
            request.start,
            Utc.with_ymd_and_hms(2026, 12, 1, 8, 30, 0).unwrap()
        );
        assert_eq!(request.patient_id.to_string(), PATIENT);
        assert_eq!((request.reason, request.notes), (None, None));
    }

    #[test]
    fn each_bad_booking_field_is_named() {
        let cases = [
            (
                json!({"patient_id": null, "doctor_id": "", "start": null}),
                vec!["doctor_id", "patient_id", "start"],
            ),
            (
                json!({"patient_id": "42", "doctor_id": 7}),
                vec!["doctor_id", "patient_id"],
            ),
            (json!({"start": "2026-12-01 09:30"}), vec!["start"]),
            (json!({"start": "2026-12-01T09:30:00"}), vec!["start"]),
            (json!({"start": "2026-02-30T09:30:00Z"}), vec!["start"]),
            (json!({"reason": "x".repeat(501)}), vec!["reason"]),
            (json!({"notes": "x".repeat(2001)}), vec!["notes"]),
            (json!({"status": "checked_in"}), vec!["status"]),
            (json!({"status": "confirmed"}), vec!["status"]),
            (json!({"room": "4B"}), vec!["room"]),
            (
                json!({"start": "2026-11-25T11:59:59Z", "duration_minutes": "30"}),
                vec!["duration_minutes", "start"],
            ),
        ];
        for (extra, expected) in cases {
            assert_eq!(
                invalid_fields(booking(extra.clone())),
                expected,
                "for {extra}"
            );
        }
    }

    #[test]
    fn durations_are_whole_minutes_from_5_to_480() {
        let cases = [
            (json!(5), Some(5)),
            (json!(480), Some(480)),
            (json!(null), Some(30)),
            (json!(4), None),
            (json!(481), None),
            (json!(0), None),
            (json!(-30), None),
            (json!(30.5), None),
            (json!("45"), None),
        ];
        for (minutes, expected) in cases {
            let fields = booking(json!({"duration_minutes": minutes}));
            let got = BookingRequest::parse(&fields, now())
                .ok()
                .map(|r| r.duration_minutes);
            assert_eq!(got, expected, "for {minutes}");
        }
    }

    #[test]
    fn a_booking_may_not_start_in_the_past() {
        let cases = [
            ("2026-11-25T12:00:00Z", true),
            ("2026-11-25T13:00:00+01:00", true), // the same instant
            ("2026-11-25T11:59:59Z", false),
            ("2026-11-25T12:59:00+01:00", false),
            ("2027-01-01T00:00:00Z", true),
        ];
        for (start, accepted) in cases {
            let result = BookingRequest::parse(&booking(json!({"start": start})), now());
            assert_eq!(result.is_ok(), accepted, "for {start}");
            if let Err(err) = result {
                assert_eq!(err.fields[0].message, "must not be in the past");
            }
        }
    }

    #[test]
    fn echoed_read_only_fields_and_booked_status_are_accepted() {
        let fields = booking(
            json!({"id": "x", "end": "y", "version": 3, "status": "booked",
                                    "cancellation_reason": null, "created_at": "z"}),
        );
        assert!(BookingRequest::parse(&fields, now()).is_ok());
    }

    #[test]
    fn a_change_keeps_the_status_when_none_is_given_and_checks_the_patient_id_shape() {
        let changes = AppointmentChanges::parse(&booking(json!({}))).unwrap();
        assert_eq!(changes.status, None);
        assert_eq!(
            changes.patient_id.map(|id| id.to_string()).as_deref(),
            Some(PATIENT)
        );
        let without_patient = body(json!({"doctor_id": DOCTOR, "start": "2026-12-01T09:30:00Z",
                                          "status": "cancelled", "cancellation_reason": "ill"}));
        let changes = AppointmentChanges::parse(&without_patient).unwrap();
        assert_eq!(changes.patient_id, None);
        assert_eq!(changes.status, Some(AppointmentStatus::Cancelled));
        assert_eq!(changes.cancellation_reason.as_deref(), Some("ill"));
        let err = AppointmentChanges::parse(&booking(json!({"patient_id": "nobody",
                                                            "status": "gone"})))
        .unwrap_err();
        let names: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["patient_id", "status"]);
    }

    #[test]
    fn a_change_may_name_a_start_in_the_past_since_only_a_move_is_checked() {
        let fields = booking(json!({"start": "2020-01-01T08:00:00Z"}));
        assert!(AppointmentChanges::parse(&fields).is_ok());
    }
}
