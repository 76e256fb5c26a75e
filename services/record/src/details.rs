//! What a client writes on a medical record, validated: the request body of a new record or of
//! an amendment. Every bad field is named in one answer; references to patients and
//! appointments are checked afterwards against the read-model ([`crate::domain`]).

use std::borrow::Cow;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kit::events::{format_timestamp, parse_timestamp};
use kit::fields::FieldReader;
use serde_json::{Map, Value};
use shared_events::ServiceError;
use shared_events::record::{Diagnosis, RecordKind, Vitals};
use uuid::Uuid;

use crate::diagnoses::read_diagnoses;
use crate::vitals::read_vitals;

/// The writable fields, as a client sends them.
pub const WRITABLE_FIELDS: [&str; 8] = [
    "patient_id",
    "appointment_id",
    "kind",
    "title",
    "body",
    "diagnoses",
    "vitals",
    "recorded_at",
];
/// Server-owned fields a client may echo back from a GET; they are ignored, never written.
pub const READ_ONLY_FIELDS: [&str; 6] = [
    "id",
    "author_id",
    "status",
    "version",
    "created_at",
    "updated_at",
];

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 20_000;
/// Clocks drift; an observation a few minutes "in the future" is a skewed clock, not a typo.
const FUTURE_TOLERANCE: Duration = Duration::minutes(5);

/// Which request a body belongs to: a new record needs its patient; an amendment may repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    NewRecord,
    Amendment,
}

/// The clinical content of a record, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDetails {
    pub appointment_id: Option<Uuid>,
    pub kind: RecordKind,
    pub title: String,
    pub body: Option<String>,
    pub diagnoses: Vec<Diagnosis>,
    pub vitals: Option<Vitals>,
    /// `None` when the client did not say: now for a new record, unchanged for an amendment
    /// (correcting the text does not move the observation in time).
    pub recorded_at: Option<DateTime<Utc>>,
}

/// A validated request body.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRequest {
    /// Always present for [`Writing::NewRecord`].
    pub patient_id: Option<Uuid>,
    pub details: RecordDetails,
}

impl RecordRequest {
    /// Validates a body, naming every invalid field. `now` bounds `recorded_at`.
    pub fn parse(
        fields: &Map<String, Value>,
        writing: Writing,
        now: DateTime<Utc>,
    ) -> Result<Self, ServiceError> {
        let fields = with_plain_line_breaks(fields);
        let allowed: Vec<&str> = WRITABLE_FIELDS
            .iter()
            .chain(READ_ONLY_FIELDS.iter())
            .copied()
            .collect();
        let mut reader = FieldReader::new(&fields, &allowed);
        let patient_id = match writing {
            Writing::NewRecord => reader.required_text("patient_id", 36),
            Writing::Amendment => reader.optional_text("patient_id", 36),
        };
        let patient_id = patient_id.and_then(|text| uuid(&mut reader, "patient_id", &text));
        let appointment_id = reader
            .optional_text("appointment_id", 36)
            .and_then(|text| uuid(&mut reader, "appointment_id", &text));
        let kind = reader.required_text("kind", 20).and_then(|text| {
            RecordKind::parse(&text).or_else(|| {
                reader.reject(
                    "kind",
                    "must be one of note, diagnosis, vitals, prescription, allergy",
                );
                None
            })
        });
        let title = reader.required_text("title", MAX_TITLE_CHARS);
        let body = reader.optional_text("body", MAX_BODY_CHARS);
        let diagnoses = read_diagnoses(&mut reader, fields.get("diagnoses"));
        let vitals = read_vitals(&mut reader, fields.get("vitals"));
        let recorded_at = reader.optional_text("recorded_at", 40).and_then(|text| {
            match parse_recorded_at(&text, now) {
                Ok(at) => Some(at),
                Err(message) => {
                    reader.reject("recorded_at", message);
                    None
                }
            }
        });
        // The kind rules, once the parts they look at are known to be valid.
        if kind == Some(RecordKind::Diagnosis) && diagnoses.as_ref().is_some_and(Vec::is_empty) {
            reader.reject(
                "diagnoses",
                "a diagnosis record needs at least one diagnosis",
            );
        }
        if kind == Some(RecordKind::Vitals) && matches!(vitals, Some(None)) {
            reader.reject("vitals", "a vitals record needs at least one vital sign");
        }
        reader.finish()?;
        match (kind, title, diagnoses, vitals) {
            (Some(kind), Some(title), Some(diagnoses), Some(vitals)) => Ok(RecordRequest {
                patient_id,
                details: RecordDetails {
                    appointment_id,
                    kind,
                    title,
                    body,
                    diagnoses,
                    vitals,
                    recorded_at,
                },
            }),
            // finish() has already reported whichever is missing.
            _ => Err(ServiceError::internal()),
        }
    }
}

/// A body written in a browser on Windows arrives with CRLF; keep the note, drop the `\r`
/// (which the text checks would refuse as a control character).
fn with_plain_line_breaks(fields: &Map<String, Value>) -> Cow<'_, Map<String, Value>> {
    match fields.get("body") {
        Some(Value::String(body)) if body.contains('\r') => {
            let mut fields = fields.clone();
            let plain = body.replace("\r\n", "\n").replace('\r', "\n");
            fields.insert("body".into(), Value::String(plain));
            Cow::Owned(fields)
        }
        _ => Cow::Borrowed(fields),
    }
}

fn uuid(reader: &mut FieldReader, field: &str, text: &str) -> Option<Uuid> {
    text.parse()
        .map_err(|_| reader.reject(field, "must be a UUID"))
        .ok()
}

/// An RFC 3339 time, at most [`FUTURE_TOLERANCE`] after `now` and not before 1900; kept to the
/// microsecond, as it is stored.
pub fn parse_recorded_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, &'static str> {
    let at = parse_timestamp(text)
        .map_err(|_| "must be a date and time in RFC 3339, such as 2026-11-25T09:30:00Z")?;
    let at = parse_timestamp(&format_timestamp(at)).unwrap_or(at);
    if at > now + FUTURE_TOLERANCE {
        return Err("must not be more than 5 minutes in the future");
    }
    if at < Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap() {
        return Err("must not be before 1900");
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap()
    }

    fn parse(value: Value, writing: Writing) -> Result<RecordRequest, ServiceError> {
        RecordRequest::parse(value.as_object().unwrap(), writing, now())
    }

    fn valid() -> Value {
        json!({"patient_id": Uuid::now_v7(), "kind": "note", "title": "Follow-up",
               "body": "Feeling better.", "recorded_at": "2026-11-25T09:00:00+01:00"})
    }

    fn invalid_fields(value: Value, writing: Writing) -> Vec<String> {
        let err = parse(value, writing).unwrap_err();
        assert_eq!(err.code.http_status(), 422);
        let mut fields: Vec<String> = err.fields.into_iter().map(|f| f.field).collect();
        fields.sort();
        fields
    }

    #[test]
    fn a_complete_note_is_accepted() {
        let request = parse(valid(), Writing::NewRecord).unwrap();
        assert!(request.patient_id.is_some());
        assert_eq!(request.details.kind, RecordKind::Note);
        assert_eq!(
            request.details.recorded_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap())
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let patient = Uuid::now_v7().to_string();
        let cases = [
            (json!({}), vec!["kind", "patient_id", "title"]),
            (
                json!({"patient_id": "nope", "kind": "gossip", "title": " "}),
                vec!["kind", "patient_id", "title"],
            ),
            (
                json!({"patient_id": patient, "kind": "note", "title": "t", "appointment_id": 5}),
                vec!["appointment_id"],
            ),
            (
                json!({"patient_id": patient, "kind": "note", "title": "x".repeat(201)}),
                vec!["title"],
            ),
            (
                json!({"patient_id": patient, "kind": "note", "title": "t", "body": "x".repeat(20_001)}),
                vec!["body"],
            ),
            (
                json!({"patient_id": patient, "kind": "note", "title": "t", "recorded_at": "yesterday"}),
                vec!["recorded_at"],
            ),
            (
                json!({"patient_id": patient, "kind": "note", "title": "t", "recorded_at": "2026-11-25T09:36:00Z"}),
                vec!["recorded_at"],
            ),
            (
                json!({"patient_id": patient, "kind": "note", "title": "t", "ward": "B"}),
                vec!["ward"],
            ),
            (
                json!({"patient_id": patient, "kind": "note", "title": "t",
                       "vitals": {"pulse_bpm": 900}, "diagnoses": [{"code": "?", "description": "d"}]}),
                vec!["diagnoses[0].code", "vitals.pulse_bpm"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                invalid_fields(input.clone(), Writing::NewRecord),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn kind_rules_require_the_matching_content() {
        let patient = Uuid::now_v7().to_string();
        let cases = [
            (json!({"kind": "diagnosis"}), Some("diagnoses")),
            (
                json!({"kind": "diagnosis", "diagnoses": []}),
                Some("diagnoses"),
            ),
            (
                json!({"kind": "diagnosis", "diagnoses": [{"code": "I10", "description": "Hypertension"}]}),
                None,
            ),
            (json!({"kind": "vitals"}), Some("vitals")),
            (json!({"kind": "vitals", "vitals": {}}), Some("vitals")),
            (
                json!({"kind": "vitals", "vitals": {"spo2_percent": 97}}),
                None,
            ),
            (json!({"kind": "prescription"}), None),
            (json!({"kind": "allergy"}), None),
        ];
        for (input, expected) in cases {
            let mut body = input.as_object().unwrap().clone();
            body.insert("patient_id".into(), json!(patient));
            body.insert("title".into(), json!("t"));
            let outcome = parse(Value::Object(body), Writing::NewRecord);
            match expected {
                None => assert!(outcome.is_ok(), "{input}: {outcome:?}"),
                Some(field) => assert_eq!(outcome.unwrap_err().fields[0].field, field, "{input}"),
            }
        }
    }

    #[test]
    fn a_kind_rule_is_not_repeated_over_an_invalid_part() {
        let body = json!({"patient_id": Uuid::now_v7(), "kind": "vitals", "title": "t",
                          "vitals": {"pulse_bpm": 1000}});
        assert_eq!(
            invalid_fields(body, Writing::NewRecord),
            ["vitals.pulse_bpm"]
        );
    }

    #[test]
    fn an_amendment_may_leave_out_the_patient() {
        let mut body = valid();
        body.as_object_mut().unwrap().remove("patient_id");
        assert_eq!(
            parse(body.clone(), Writing::Amendment).unwrap().patient_id,
            None
        );
        assert_eq!(invalid_fields(body, Writing::NewRecord), ["patient_id"]);
    }

    #[test]
    fn read_only_fields_echoed_back_are_ignored() {
        let mut body = valid();
        for (field, value) in [
            ("id", json!("x")),
            ("author_id", json!("y")),
            ("status", json!("entered_in_error")),
            ("version", json!(7)),
            ("created_at", json!(1)),
            ("updated_at", json!(null)),
        ] {
            body[field] = value;
        }
        assert!(parse(body, Writing::Amendment).is_ok());
    }

    #[test]
    fn windows_line_breaks_in_the_body_are_kept_as_plain_ones() {
        let mut body = valid();
        body["body"] = json!("line one\r\nline two");
        let request = parse(body, Writing::NewRecord).unwrap();
        assert_eq!(request.details.body.as_deref(), Some("line one\nline two"));
    }

    #[test]
    fn recorded_at_is_bounded() {
        assert!(parse_recorded_at("2026-11-25T09:35:00Z", now()).is_ok());
        assert!(parse_recorded_at("2026-11-25T09:35:01Z", now()).is_err());
        assert!(parse_recorded_at("1899-12-31T23:59:59Z", now()).is_err());
        assert!(parse_recorded_at("2026-11-25", now()).is_err());
    }
}
