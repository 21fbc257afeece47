//! Checks a summary's text against the schema that was sent: the model is asked for strict structured
//! output, but what is stored must not depend on the service having kept its word (a proxy, another
//! model, or a bug could break it).

use serde_json::{Map, Value};

use super::config::{FieldKind, FieldSpec};

/// A summary that follows the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSummary {
    pub summary: String,
    pub disposition: String,
    /// Every user field, by name (`null` where the call did not say).
    pub fields: Map<String, Value>,
}

/// Why the text does not follow the schema (a short reason, never the whole text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the summary does not follow the schema: {0}")]
pub struct InvalidSummary(pub String);

fn invalid(why: impl Into<String>) -> InvalidSummary {
    InvalidSummary(why.into())
}

/// Parses `text` as JSON and checks it against what [`super::request::answer_schema`] described.
pub fn validate(
    text: &str,
    dispositions: &[String],
    fields: &[FieldSpec],
) -> Result<ValidSummary, InvalidSummary> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("not JSON ({e})")))?;
    let Value::Object(mut top) = value else {
        return Err(invalid("not a JSON object"));
    };
    only_keys(&top, &["summary", "disposition", "fields"], "the answer")?;
    let summary = match top.remove("summary") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(invalid("summary is not a string")),
        None => return Err(invalid("summary is missing")),
    };
    let disposition = match top.remove("disposition") {
        Some(Value::String(d)) if dispositions.contains(&d) => d,
        Some(Value::String(d)) => {
            return Err(invalid(format!(
                "disposition {:?} is not one of the list",
                shorten(&d)
            )))
        }
        Some(_) => return Err(invalid("disposition is not a string")),
        None => return Err(invalid("disposition is missing")),
    };
    let values = match top.remove("fields") {
        Some(Value::Object(f)) => f,
        Some(_) => return Err(invalid("fields is not an object")),
        None => return Err(invalid("fields is missing")),
    };
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    only_keys(&values, &names, "fields")?;
    for field in fields {
        let value = values
            .get(&field.name)
            .ok_or_else(|| invalid(format!("field {:?} is missing", field.name)))?;
        check_field(field, value)?;
    }
    Ok(ValidSummary {
        summary,
        disposition,
        fields: values,
    })
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), InvalidSummary> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(invalid(format!(
            "{what} has a key {:?} the schema does not have",
            shorten(extra)
        ))),
        None => Ok(()),
    }
}

fn check_field(field: &FieldSpec, value: &Value) -> Result<(), InvalidSummary> {
    let wrong = || {
        invalid(format!(
            "field {:?} is not {}{}",
            field.name,
            field.kind.as_str(),
            if field.nullable { " or null" } else { "" }
        ))
    };
    let fits = match (field.kind, value) {
        (_, Value::Null) => field.nullable,
        (FieldKind::String, Value::String(s)) => {
            if let Some(choices) = &field.choices {
                if !choices.contains(s) {
                    return Err(invalid(format!(
                        "field {:?} is {:?}, not one of its choices",
                        field.name,
                        shorten(s)
                    )));
                }
            }
            true
        }
        (FieldKind::Number, Value::Number(_)) => true,
        (FieldKind::Integer, Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (FieldKind::Boolean, Value::Bool(_)) => true,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(wrong())
    }
}

/// At most 60 characters of model text in an error.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::config::SummaryConfig;
    use serde_json::json;

    fn setup() -> (Vec<String>, Vec<FieldSpec>) {
        let config = SummaryConfig {
            fields_schema: json!({
                "type": "object",
                "properties": {
                    "order_number": {"type": "string"},
                    "items": {"type": "integer"},
                    "total": {"type": "number"},
                    "urgent": {"type": "boolean"},
                    "mood": {"type": "string", "enum": ["happy", "angry"]}
                },
                "required": ["order_number", "items", "total", "urgent", "mood"]
            }),
            ..SummaryConfig::default()
        };
        (config.dispositions.clone(), config.fields().unwrap())
    }

    fn answer(fields: Value) -> String {
        json!({"summary": "Asked about an order.", "disposition": "resolved", "fields": fields})
            .to_string()
    }

    #[test]
    fn a_valid_answer_is_accepted() {
        let (d, f) = setup();
        let text = answer(json!({"order_number": "A-1", "items": 3, "total": 9.5,
            "urgent": false, "mood": "happy"}));
        let ok = validate(&text, &d, &f).unwrap();
        assert_eq!(ok.disposition, "resolved");
        assert_eq!(ok.fields["order_number"], "A-1");
    }

    #[test]
    fn every_break_of_the_schema_is_named() {
        let (d, f) = setup();
        let good = json!({"order_number": "A-1", "items": 3, "total": 9.5, "urgent": false, "mood": "happy"});
        let with = |key: &str, v: Value| {
            let mut g = good.clone();
            g[key] = v;
            answer(g)
        };
        let cases = [
            ("not json".to_string(), "not JSON"),
            ("[1]".to_string(), "not a JSON object"),
            (
                json!({"summary": "s", "disposition": "won", "fields": good}).to_string(),
                "not one of the list",
            ),
            (
                json!({"summary": 1, "disposition": "resolved", "fields": good}).to_string(),
                "summary is not",
            ),
            (
                json!({"summary": "s", "disposition": "resolved"}).to_string(),
                "fields is missing",
            ),
            (
                json!({"summary": "s", "disposition": "resolved", "fields": good, "x": 1})
                    .to_string(),
                "key \"x\"",
            ),
            (with("items", json!("3")), "\"items\" is not integer"),
            (with("items", json!(2.5)), "\"items\" is not integer"),
            (with("total", json!(null)), "\"total\" is not number"),
            (with("urgent", json!("yes")), "\"urgent\" is not boolean"),
            (with("mood", json!("sad")), "not one of its choices"),
            (with("extra", json!(1)), "key \"extra\""),
        ];
        for (text, why) in cases {
            let err = validate(&text, &d, &f).unwrap_err();
            assert!(err.0.contains(why), "{text}: {err}");
        }
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("mood");
        assert!(validate(&answer(missing), &d, &f)
            .unwrap_err()
            .0
            .contains("\"mood\" is missing"));
    }

    #[test]
    fn nullable_fields_take_null() {
        let config = SummaryConfig {
            fields_schema: json!({"type": "object", "properties": {"callback_at": {"type": "string"}}}),
            ..SummaryConfig::default()
        };
        let f = config.fields().unwrap();
        let ok = validate(
            &answer(json!({"callback_at": null})),
            &config.dispositions,
            &f,
        )
        .unwrap();
        assert_eq!(ok.fields["callback_at"], Value::Null);
    }
}
