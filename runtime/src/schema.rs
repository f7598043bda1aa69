//! JSON Schema validation, compiled once at start and reused for every request.
//!
//! Errors are turned into `FieldError`s whose pointer names the bad field
//! itself: for a missing or unknown property that is the property, not the
//! object that holds it.

use crate::problem::FieldError;
use serde_json::Value;

pub struct Schema {
    /// The schema as published in endpoint metadata and OpenAPI.
    pub text: &'static str,
    validator: jsonschema::Validator,
}

impl Schema {
    /// Panics on an invalid schema: schemas are compiled into the binary and a
    /// broken one is a build defect that the test suite catches at once.
    pub fn compile(text: &'static str) -> Self {
        let value: Value = serde_json::from_str(text).expect("schema is JSON");
        let validator = jsonschema::draft202012::new(&value).expect("schema compiles");
        Schema { text, validator }
    }

    pub fn check(&self, instance: &Value) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for error in self.validator.iter_errors(instance) {
            let at = error.instance_path().to_string();
            let message = error.to_string();
            match error.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    errors.push(FieldError {
                        pointer: child(&at, name),
                        message: format!("{name} is required"),
                    });
                }
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for name in unexpected {
                        errors.push(FieldError {
                            pointer: child(&at, name),
                            message: format!("unknown field {name}"),
                        });
                    }
                }
                _ => errors.push(FieldError {
                    pointer: at,
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// JSON Pointer of `name` under `parent` (RFC 6901 escaping).
pub fn child(parent: &str, name: &str) -> String {
    format!("{parent}/{}", name.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PRICE: &str = r#"{"type":"object","properties":{"price":{"type":"number","minimum":0,"multipleOf":0.01}},"additionalProperties":false,"required":["price"]}"#;

    #[test]
    fn two_decimal_prices_pass_and_three_fail() {
        let schema = Schema::compile(PRICE);
        for ok in [
            0.0,
            0.01,
            0.07,
            0.1,
            0.3,
            1.1,
            19.99,
            123.45,
            999_999_999.99,
            5.0,
        ] {
            assert!(schema.check(&json!({ "price": ok })).is_ok(), "{ok}");
        }
        for bad in [0.001, 0.125, 19.999, 1.005, 2.0001] {
            let errors = schema.check(&json!({ "price": bad })).unwrap_err();
            assert_eq!(errors[0].pointer, "/price", "{bad}");
        }
    }

    #[test]
    fn missing_and_unknown_fields_point_at_the_field() {
        let schema = Schema::compile(PRICE);
        let errors = schema.check(&json!({ "extra/x": 1 })).unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/price"), "{pointers:?}");
        assert!(pointers.contains(&"/extra~1x"), "{pointers:?}");
    }
}
