//! JSON Schemas (draft 2020-12) of what trawl writes, generated from the very
//! types that write it, so the schema and the output cannot drift apart.

use serde_json::Value;

use super::record::Record;
use super::summary::Summary;

/// The schema of one output line (`-o`, `--errors`, stdout).
pub fn record() -> Value {
    titled(schemars::schema_for!(Record), "trawl output record")
}

/// The schema of the `--summary` file.
pub fn summary() -> Value {
    titled(schemars::schema_for!(Summary), "trawl run summary")
}

fn titled(schema: schemars::Schema, title: &str) -> Value {
    let mut value = schema.to_value();
    if let Some(map) = value.as_object_mut() {
        map.insert("title".into(), Value::String(title.into()));
    }
    value
}
