//! Diagnoses checked at the door: ICD-10 codes (format-checked, stored upper-case) with their
//! descriptions. Every bad item is named down to its index (`diagnoses[1].code`).

use kit::fields::FieldReader;
use serde_json::{Map, Value};
use shared_events::record::Diagnosis;

/// More diagnoses than this on one record is a pasted list, not a clinical note.
pub const MAX_DIAGNOSES: usize = 50;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// The ICD-10 shape `^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$`, after trimming and
/// upper-casing. `U` is left out: WHO reserves it for provisional codes.
pub fn normalize_icd10(text: &str) -> Option<String> {
    let code = text.trim().to_ascii_uppercase();
    let letter = |c: u8| c.is_ascii_uppercase() && c != b'U';
    let well_formed = match code.as_bytes() {
        [first, second, third, rest @ ..] => {
            let category = letter(*first)
                && second.is_ascii_digit()
                && (third.is_ascii_digit() || *third == b'A' || *third == b'B');
            let subcategory = match rest {
                [] => true,
                [b'.', sub @ ..] => {
                    (1..=4).contains(&sub.len())
                        && sub.iter().all(|&c| c.is_ascii_digit() || letter(c))
                }
                _ => false,
            };
            category && subcategory
        }
        _ => false,
    };
    well_formed.then_some(code)
}
/// Reads the `diagnoses` array. Empty when absent or `null`; `None` when something was rejected.
pub fn read_diagnoses(reader: &mut FieldReader, value: Option<&Value>) -> Option<Vec<Diagnosis>> {
    let items = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            reader.reject("diagnoses", "must be an array of {code, description}");
            return None;
        }
    };
    if items.len() > MAX_DIAGNOSES {
        reader.reject(
            "diagnoses",
            format!("must hold at most {MAX_DIAGNOSES} diagnoses"),
        );
        return None;
    }
    let mut valid = true;
    let mut diagnoses: Vec<Diagnosis> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(item) = item else {
            reader.reject(
                &format!("diagnoses[{index}]"),
                "must be an object with code and description",
            );
            valid = false;
            continue;
        };
        match diagnosis(reader, index, item) {
            Some(found) if diagnoses.iter().any(|d| d.code == found.code) => {
                reader.reject(&format!("diagnoses[{index}].code"), "is listed twice");
                valid = false;
            }
            Some(found) => diagnoses.push(found),
            None => valid = false,
        }
    }
    valid.then_some(diagnoses)
}

fn diagnosis(
    reader: &mut FieldReader,
    index: usize,
    item: &Map<String, Value>,
) -> Option<Diagnosis> {
    let field = |name: &str| format!("diagnoses[{index}].{name}");
    let mut unknown: Vec<&String> = item
        .keys()
        .filter(|key| !["code", "description"].contains(&key.as_str()))
        .collect();
    unknown.sort();
    let known_fields_only = unknown.is_empty();
    for key in unknown {
        reader.reject(&field(key), "is not a known field");
    }
    let code = match item.get("code") {
        None | Some(Value::Null) => Err("is required"),
        Some(Value::String(text)) => {
            normalize_icd10(text).ok_or("must be an ICD-10 code, such as J45.909 or E11.9")
        }
        Some(_) => Err("must be a string"),
    };
    let description = match item.get("description") {
        None | Some(Value::Null) => Err("is required".to_owned()),
        Some(Value::String(text)) => description(text),
        Some(_) => Err("must be a string".to_owned()),
    };
    let code = code
        .map_err(|message| reader.reject(&field("code"), message))
        .ok();
    let description = description
        .map_err(|message| reader.reject(&field("description"), message))
        .ok();
    match (code, description) {
        (Some(code), Some(description)) if known_fields_only => {
            Some(Diagnosis { code, description })
        }
        _ => None,
    }
}

fn description(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        Err("is required".into())
    } else if text.chars().count() > MAX_DESCRIPTION_CHARS {
        Err(format!(
            "must be at most {MAX_DESCRIPTION_CHARS} characters"
        ))
    } else if text.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The fields named by the errors of reading `value` with `read`.
    fn rejected<T>(
        value: Value,
        read: impl Fn(&mut FieldReader, Option<&Value>) -> T,
    ) -> Vec<String> {
        let empty = Map::new();
        let mut reader = FieldReader::new(&empty, &[]);
        read(&mut reader, Some(&value));
        match reader.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.fields.into_iter().map(|f| f.field).collect(),
        }
    }

    #[test]
    fn icd10_codes_are_checked_for_shape() {
        let valid = [
            ("J45.909", "J45.909"),
            ("e11.9", "E11.9"),
            (" I10 ", "I10"),
            ("C4A.0", "C4A.0"),
            ("S72.001A", "S72.001A"),
            ("Z00.00", "Z00.00"),
            ("D3B", "D3B"),
        ];
        for (input, expected) in valid {
            assert_eq!(normalize_icd10(input).as_deref(), Some(expected), "{input}");
        }
        let invalid = [
            "",
            "J4",
            "J4.5",
            "U07.1",
            "545.0",
            "JJ5",
            "J4C",
            "J45.",
            "J45.12345",
            "J45-9",
            "J45.9.1",
            "J45 .9",
            "É11",
            "J45.U",
        ];
        for input in invalid {
            assert_eq!(normalize_icd10(input), None, "{input}");
        }
    }

    #[test]
    fn diagnoses_name_each_bad_item() {
        let cases = [
            (
                json!([{"code": "J45.909", "description": "Asthma"}]),
                vec![],
            ),
            (
                json!([{"code": "J45.909", "description": "Asthma"}, {"code": "X", "description": ""}]),
                vec!["diagnoses[1].code", "diagnoses[1].description"],
            ),
            (json!([{"code": "I10"}]), vec!["diagnoses[0].description"]),
            (json!(["I10"]), vec!["diagnoses[0]"]),
            (
                json!([{"code": "I10", "description": "Hypertension", "severity": "mild"}]),
                vec!["diagnoses[0].severity"],
            ),
            (
                json!([{"code": "i10", "description": "a"}, {"code": "I10", "description": "b"}]),
                vec!["diagnoses[1].code"],
            ),
            (json!({"code": "I10"}), vec!["diagnoses"]),
            (
                json!([{"code": "I10", "description": "x".repeat(501)}]),
                vec!["diagnoses[0].description"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(rejected(input.clone(), read_diagnoses), expected, "{input}");
        }
        let too_many: Vec<Value> = (0..=MAX_DIAGNOSES)
            .map(|i| json!({"code": format!("A{:02}", i), "description": "d"}))
            .collect();
        assert_eq!(rejected(json!(too_many), read_diagnoses), ["diagnoses"]);
    }

    #[test]
    fn diagnosis_codes_are_stored_upper_case() {
        let empty = Map::new();
        let mut reader = FieldReader::new(&empty, &[]);
        let read = read_diagnoses(
            &mut reader,
            Some(&json!([{"code": "e11.9", "description": " Type 2 diabetes "}])),
        );
        assert_eq!(
            read.unwrap(),
            [Diagnosis {
                code: "E11.9".into(),
                description: "Type 2 diabetes".into()
            }]
        );
    }
}
