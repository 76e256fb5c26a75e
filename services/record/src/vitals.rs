//! Vital signs checked at the door, each within a physiologically possible range: a value
//! outside it is a typing error (a pulse of 720, a temperature in Fahrenheit), not a finding.
//! Every bad value is named (`vitals.pulse_bpm`).

use kit::fields::FieldReader;
use serde_json::Value;
use shared_events::record::Vitals;

/// The accepted range of one vital sign, inclusive.
#[derive(Debug, Clone, Copy)]
pub struct VitalRange {
    pub name: &'static str,
    pub min: f64,
    pub max: f64,
    /// Counted rather than measured (beats, breaths, mmHg, %): a fraction is a typing error.
    pub whole: bool,
}

pub const VITAL_RANGES: [VitalRange; 8] = [
    VitalRange {
        name: "temperature_c",
        min: 25.0,
        max: 45.0,
        whole: false,
    },
    VitalRange {
        name: "pulse_bpm",
        min: 20.0,
        max: 250.0,
        whole: true,
    },
    VitalRange {
        name: "systolic_mmhg",
        min: 50.0,
        max: 260.0,
        whole: true,
    },
    VitalRange {
        name: "diastolic_mmhg",
        min: 20.0,
        max: 160.0,
        whole: true,
    },
    VitalRange {
        name: "respiratory_rate",
        min: 4.0,
        max: 60.0,
        whole: true,
    },
    VitalRange {
        name: "spo2_percent",
        min: 50.0,
        max: 100.0,
        whole: true,
    },
    VitalRange {
        name: "weight_kg",
        min: 0.2,
        max: 500.0,
        whole: false,
    },
    VitalRange {
        name: "height_cm",
        min: 20.0,
        max: 260.0,
        whole: false,
    },
];

/// Reads the `vitals` object. `Some(None)` when there are none (absent, `null` or `{}`),
/// `None` when something was rejected.
pub fn read_vitals(reader: &mut FieldReader, value: Option<&Value>) -> Option<Option<Vitals>> {
    let map = match value {
        None | Some(Value::Null) => return Some(None),
        Some(Value::Object(map)) => map,
        Some(_) => {
            reader.reject("vitals", "must be an object of vital signs");
            return None;
        }
    };
    let mut valid = true;
    let mut unknown: Vec<&String> = map
        .keys()
        .filter(|key| !VITAL_RANGES.iter().any(|range| range.name == key.as_str()))
        .collect();
    unknown.sort();
    for key in unknown {
        reader.reject(&format!("vitals.{key}"), "is not a known vital sign");
        valid = false;
    }
    let mut read = |name: &str| {
        let range = VITAL_RANGES.iter().find(|r| r.name == name)?;
        let outcome = vital(range, map.get(name)?);
        outcome.unwrap_or_else(|message| {
            reader.reject(&format!("vitals.{name}"), message);
            valid = false;
            None
        })
    };
    let whole = |value: Option<f64>| value.map(|v| v as u32);
    let vitals = Vitals {
        temperature_c: read("temperature_c"),
        pulse_bpm: whole(read("pulse_bpm")),
        systolic_mmhg: whole(read("systolic_mmhg")),
        diastolic_mmhg: whole(read("diastolic_mmhg")),
        respiratory_rate: whole(read("respiratory_rate")),
        spo2_percent: whole(read("spo2_percent")),
        weight_kg: read("weight_kg"),
        height_cm: read("height_cm"),
    };
    if let (Some(systolic), Some(diastolic)) = (vitals.systolic_mmhg, vitals.diastolic_mmhg)
        && diastolic >= systolic
    {
        reader.reject("vitals.diastolic_mmhg", "must be below systolic_mmhg");
        valid = false;
    }
    let none_taken = vitals == Vitals::default();
    valid.then_some((!none_taken).then_some(vitals))
}

/// One vital sign: `Ok(None)` for `null`, the value when it is in range.
fn vital(range: &VitalRange, value: &Value) -> Result<Option<f64>, String> {
    let number = match value {
        Value::Null => return Ok(None),
        Value::Number(number) => number.as_f64().ok_or("must be a number")?,
        _ => return Err("must be a number".into()),
    };
    if range.whole && number.fract() != 0.0 {
        return Err("must be a whole number".into());
    }
    if !(range.min..=range.max).contains(&number) {
        return Err(format!("must be between {} and {}", range.min, range.max));
    }
    Ok(Some(number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

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
    fn every_vital_sign_is_range_checked_at_both_ends() {
        for range in VITAL_RANGES {
            let step = if range.whole { 1.0 } else { 0.1 };
            for (value, ok) in [
                (range.min, true),
                (range.max, true),
                (range.min - step, false),
                (range.max + step, false),
            ] {
                let mut body = Map::new();
                body.insert(range.name.into(), json!(value));
                // Keep the blood pressure pair consistent so only the range is under test.
                if range.name == "diastolic_mmhg" {
                    body.insert("systolic_mmhg".into(), json!(260));
                }
                if range.name == "systolic_mmhg" {
                    body.insert("diastolic_mmhg".into(), json!(20));
                }
                let fields = rejected(Value::Object(body), read_vitals);
                let expected = if ok {
                    Vec::new()
                } else {
                    vec![format!("vitals.{}", range.name)]
                };
                assert_eq!(fields, expected, "{} = {value}", range.name);
            }
        }
    }

    #[test]
    fn vitals_name_each_bad_value() {
        let cases = [
            (json!({"pulse_bpm": 72.5}), vec!["vitals.pulse_bpm"]),
            (json!({"pulse_bpm": "72"}), vec!["vitals.pulse_bpm"]),
            (
                json!({"systolic_mmhg": 80, "diastolic_mmhg": 80}),
                vec!["vitals.diastolic_mmhg"],
            ),
            (
                json!({"bmi": 22, "mood": "ok"}),
                vec!["vitals.bmi", "vitals.mood"],
            ),
            (json!([1, 2]), vec!["vitals"]),
            (
                json!({"temperature_c": 37.2, "weight_kg": 70.5, "spo2_percent": 98}),
                vec![],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(rejected(input.clone(), read_vitals), expected, "{input}");
        }
    }

    #[test]
    fn an_empty_vitals_object_means_none_were_taken() {
        let empty = Map::new();
        let mut reader = FieldReader::new(&empty, &[]);
        assert_eq!(read_vitals(&mut reader, Some(&json!({}))), Some(None));
        assert_eq!(
            read_vitals(&mut reader, Some(&json!({"pulse_bpm": null}))),
            Some(None)
        );
        let read = read_vitals(
            &mut reader,
            Some(&json!({"pulse_bpm": 60, "height_cm": 172.5})),
        );
        let vitals = read.flatten().unwrap();
        assert_eq!(vitals.pulse_bpm, Some(60));
        assert_eq!(vitals.height_cm, Some(172.5));
    }
}
