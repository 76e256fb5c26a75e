//! The bodies of the `/auth` routes: a few required strings, every problem named at once.

use serde_json::{Map, Value};
use shared_events::FieldError;

use crate::error::ApiError;

/// The `names` fields of `body`, each a string that is not blank, and no other field; or a 422
/// naming every field that is missing, not a string, or unknown.
pub fn required_strings<const N: usize>(
    body: &Map<String, Value>,
    names: [&str; N],
) -> Result<[String; N], ApiError> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: &str| {
        problems.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    };
    let values = names.map(|name| match body.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            problem(name, "is required");
            String::new()
        }
        Some(_) => {
            problem(name, "must be a string");
            String::new()
        }
    });
    for unknown in body.keys().filter(|k| !names.contains(&k.as_str())) {
        problem(unknown, "is not a field here");
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(ApiError::validation(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn every_missing_wrong_or_unknown_field_is_named() {
        let error = required_strings(&body(json!({"a": 7, "c": "x", "z": 1})), ["a", "b", "c"])
            .unwrap_err();
        let fields: Vec<(&str, &str)> = error
            .fields()
            .iter()
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("a", "must be a string"),
                ("b", "is required"),
                ("z", "is not a field here")
            ]
        );
        let [a, b] = required_strings(&body(json!({"a": " x ", "b": "y"})), ["a", "b"]).unwrap();
        assert_eq!((a.as_str(), b.as_str()), (" x ", "y"));
        assert!(required_strings(&body(json!({"a": "  "})), ["a"]).is_err());
    }
}
