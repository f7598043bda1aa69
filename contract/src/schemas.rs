//! The JSON Schemas of `schemas/`, compiled in and published whole.
//!
//! A field is defined once: `defs.json` holds the shared definitions (an
//! id, a quantity, money, a line of an order...) and the other files name
//! them, `{"$ref": "defs.json#/$defs/productId"}`, or name a whole document,
//! `{"$ref": "product.json"}`; keywords beside a `$ref` refine it (a
//! `description`, a `minimum`). What a service publishes, OpenAPI serves and
//! the handlers validate against is the bundled schema: every such `$ref`
//! replaced by what it names, so a client needs no resolver.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every file of `schemas/`, by name (listed by `build.rs`).
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// The bundled schema of `file` (a name in `schemas/`), as JSON text.
/// Panics on a name that is not there or a `$ref` that names nothing: both
/// are build defects, and every test that starts a handler finds them.
pub fn schema(file: &str) -> &'static str {
    static BUNDLED: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let bundled = BUNDLED.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, _)| {
                let text = serde_json::to_string(&bundle(&document(name), 0)).expect("JSON");
                (*name, &*Box::leak(text.into_boxed_str()))
            })
            .collect()
    });
    bundled
        .get(file)
        .unwrap_or_else(|| panic!("no schema {file} in schemas/"))
}

fn document(file: &str) -> Value {
    let (_, text) = FILES
        .iter()
        .find(|(name, _)| *name == file)
        .unwrap_or_else(|| panic!("$ref to {file}, which is not in schemas/"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("schemas/{file} is not JSON: {e}"))
}

/// What a `$ref` names: a whole document, or one of its `$defs`.
fn target(reference: &str) -> Value {
    let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
    let doc = document(file);
    let mut found = if pointer.is_empty() {
        doc
    } else {
        doc.pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {reference} names nothing"))
            .clone()
    };
    if let Value::Object(map) = &mut found {
        // A document inside another is no longer a root.
        map.remove("$schema");
        map.remove("$defs");
    }
    found
}

/// `value` with every `$ref` replaced; `refs` counts the `$ref`s followed
/// to get here, which a cycle would grow without end.
fn bundle(value: &Value, refs: usize) -> Value {
    assert!(refs < 16, "schemas/: $ref nested too deep (a cycle?)");
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            if let Some(Value::String(reference)) = map.get("$ref") {
                if let Value::Object(named) = bundle(&target(reference), refs + 1) {
                    out = named;
                }
            }
            for (key, item) in map {
                if key != "$ref" && key != "$defs" {
                    out.insert(key.clone(), bundle(item, refs));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| bundle(v, refs)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_bundles_without_a_ref_left() {
        for (name, _) in FILES {
            let text = schema(name);
            assert!(!text.contains("\"$ref\""), "{name} keeps a $ref");
        }
    }

    #[test]
    fn a_ref_takes_its_definition_and_the_keywords_beside_it() {
        let product: Value = serde_json::from_str(schema("product.json")).unwrap();
        let id = &product["properties"]["productId"];
        assert_eq!(id["pattern"], "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$");
        assert_eq!(product["properties"]["quantity"]["minimum"], 0);
        let page: Value = serde_json::from_str(schema("inventory.list.response.json")).unwrap();
        assert_eq!(page["properties"]["items"]["items"]["title"], "Product");
        assert!(page["properties"]["items"]["items"]
            .get("$schema")
            .is_none());
    }
}
