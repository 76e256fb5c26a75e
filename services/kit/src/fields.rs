//! Reading a request body's fields while collecting every problem, so that a client learns about
//! all its invalid fields in one answer rather than one at a time.

use serde_json::{Map, Value};
use shared_events::{FieldError, ServiceError};

/// Walks the fields of a JSON object body. Domain parsing stays in each service; this only
/// knows about presence, type, length and unknown names.
pub struct FieldReader<'a> {
    fields: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> FieldReader<'a> {
    /// Starts reading; any field not in `allowed` is reported as unknown.
    pub fn new(fields: &'a Map<String, Value>, allowed: &[&str]) -> Self {
        let mut reader = FieldReader {
            fields,
            errors: Vec::new(),
        };
        let mut unknown: Vec<&String> = fields
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for name in unknown {
            reader.reject(name, "is not a known field");
        }
        reader
    }

    /// Records a problem with `field`.
    pub fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Whether the body names this field at all (even as `null`).
    pub fn is_present(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// A required text field: trimmed, not empty, at most `max_chars` characters.
    pub fn required_text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        match self.optional_text(field, max_chars) {
            Some(text) => Some(text),
            None => {
                if !self.errors.iter().any(|e| e.field == field) {
                    self.reject(field, "is required");
                }
                None
            }
        }
    }

    /// An optional text field: absent, `null` and blank all mean "none".
    pub fn optional_text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => {
                let text = raw.trim();
                if text.is_empty() {
                    None
                } else if text.chars().count() > max_chars {
                    self.reject(field, format!("must be at most {max_chars} characters"));
                    None
                } else if text
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t')
                {
                    self.reject(field, "must not contain control characters");
                    None
                } else {
                    Some(text.to_owned())
                }
            }
            Some(_) => {
                self.reject(field, "must be a string");
                None
            }
        }
    }

    /// A secret (a password): taken exactly as sent, never trimmed; absent or `null` is `None`.
    pub fn optional_secret(&mut self, field: &str, max_chars: usize) -> Option<String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(secret)) if secret.chars().count() > max_chars => {
                self.reject(field, format!("must be at most {max_chars} characters"));
                None
            }
            Some(Value::String(secret)) => Some(secret.clone()),
            Some(_) => {
                self.reject(field, "must be a string");
                None
            }
        }
    }

    /// Ends reading: `Ok` when no field was rejected, otherwise one validation error naming them all.
    pub fn finish(self) -> Result<(), ServiceError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::validation(self.errors))
        }
    }
}

/// A plausible e-mail address: one `@`, something before it, a dot in the domain, no spaces.
pub fn is_plausible_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
}

/// A plausible phone number: digits with the usual separators, 5 to 20 digits.
pub fn is_plausible_phone(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    (5..=20).contains(&digits)
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let body = object(json!({"name": "  ", "phone": 12, "extra": true}));
        let mut reader = FieldReader::new(&body, &["name", "phone"]);
        assert_eq!(reader.required_text("name", 10), None);
        assert_eq!(reader.optional_text("phone", 10), None);
        let err = reader.finish().unwrap_err();
        let fields: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["extra", "name", "phone"]);
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        let body = object(json!({"name": "  Ada  ", "long": "abcdef"}));
        let mut reader = FieldReader::new(&body, &["name", "long"]);
        assert_eq!(reader.required_text("name", 10).as_deref(), Some("Ada"));
        assert_eq!(reader.optional_text("long", 5), None);
        assert_eq!(
            reader.finish().unwrap_err().fields[0].message,
            "must be at most 5 characters"
        );
    }

    #[test]
    fn emails_and_phones_are_checked_for_plausibility() {
        assert!(is_plausible_email("ada@example.org"));
        assert!(!is_plausible_email("ada@example"));
        assert!(!is_plausible_email("ada example@x.org"));
        assert!(is_plausible_phone("+44 (20) 7946-0958"));
        assert!(!is_plausible_phone("call me"));
    }
}
