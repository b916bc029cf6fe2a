//! JSON Schemas (draft 2020-12) of what trawl writes, generated from the very
//! types that write it, so the schema and the output cannot drift apart.

use serde_json::Value;

use super::record::Record;
use super::summary::Summary;

/// The schema of one output line (`-o`, `--errors`, stdout).
pub fn record() -> Value {
    let mut schema = titled(schemars::schema_for!(Record), "trawl output record");
    never_null(&mut schema);
    schema
}

/// The schema of the `--summary` file.
pub fn summary() -> Value {
    titled(schemars::schema_for!(Summary), "trawl run summary")
}

/// A record's absent values are left out, never `null` (an `Option` field is
/// skipped when `None`): the schema says so, where schemars would allow `null`.
fn never_null(schema: &mut Value) {
    let is_null = |v: &Value| v.as_str() == Some("null");
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| !is_null(t));
                if types.len() == 1 {
                    let only = types.pop().expect("one");
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any)) = map.get_mut("anyOf") {
                any.retain(|s| s.get("type").is_none_or(|t| !is_null(t)));
                if any.len() == 1 {
                    let only = any.pop().expect("one");
                    map.remove("anyOf");
                    if let Value::Object(only) = only {
                        map.extend(only);
                    }
                }
            }
            map.values_mut().for_each(never_null);
        }
        Value::Array(items) => items.iter_mut().for_each(never_null),
        _ => {}
    }
}

fn titled(schema: schemars::Schema, title: &str) -> Value {
    let mut value = schema.to_value();
    if let Some(map) = value.as_object_mut() {
        map.insert("title".into(), Value::String(title.into()));
    }
    value
}

#[cfg(test)]
mod tests {
    /// Regression: the schema allowed `null` where the README says a record's
    /// values are never `null`.
    #[test]
    fn the_record_schema_allows_no_null() {
        let text = super::record().to_string();
        assert!(!text.contains("\"null\""), "{text}");
        assert!(text.contains("\"final_url\""));
    }
}
