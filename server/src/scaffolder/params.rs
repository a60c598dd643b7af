//! Template parameters checked on the server against each form page's JSON Schema, as Backstage does:
//! every page is validated against the whole values object, and each error names its field.
//!
//! The `ui:*` keys of a page are form hints; JSON Schema ignores unknown keywords, so pages are used as
//! written. Remote `$ref`s are not fetched (the crate is built without its HTTP resolver): a page that
//! needs one fails with an error naming the page.

use serde::Serialize;
use serde_json::Value;

/// One invalid value, in the shape of the `jsonschema` npm package's `ValidationError` that Backstage
/// answers with (`{errors: [...]}`), so clients that show them keep working.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParameterError {
    /// Path of the value in the values object: `["owner"]`, `["tags", 2]`.
    pub path: Vec<Value>,
    /// `instance.owner`: the path as Backstage's validator writes it.
    pub property: String,
    pub message: String,
    /// The JSON Schema keyword that failed (`required`, `pattern`, ...).
    pub name: String,
    /// `instance.owner is required`: property and message.
    pub stack: String,
    /// The form page (0-based) whose schema the value failed.
    pub page: usize,
}

/// Fills in the `default` of each top-level property a page declares and `values` leaves out, as
/// Backstage's form does before it submits: a caller of the API (a script, an agent) gets the same
/// values a person using the form would. Nested objects are left as given.
pub fn apply_defaults(pages: &[Value], values: &mut Value) {
    let Some(values) = values.as_object_mut() else {
        return;
    };
    for page in pages {
        let Some(properties) = page["properties"].as_object() else {
            continue;
        };
        for (name, schema) in properties {
            if let Some(default) = schema.get("default")
                && !values.contains_key(name)
            {
                values.insert(name.clone(), default.clone());
            }
        }
    }
}

/// Checks `values` against every page; all errors, in page order.
pub fn validate(pages: &[Value], values: &Value) -> Vec<ParameterError> {
    let mut errors = Vec::new();
    for (page, schema) in pages.iter().enumerate() {
        let validator = match jsonschema::validator_for(schema) {
            Ok(validator) => validator,
            Err(error) => {
                errors.push(ParameterError {
                    path: Vec::new(),
                    property: "instance".to_owned(),
                    message: format!(
                        "the template's parameter page {page} is not a valid JSON Schema: {error}"
                    ),
                    name: "schema".to_owned(),
                    stack: format!(
                        "instance: the template's parameter page {page} is not a valid JSON Schema"
                    ),
                    page,
                });
                continue;
            }
        };
        for error in validator.iter_errors(values) {
            push_error(&error, page, &mut errors);
        }
    }
    errors
}

/// One validation error as a [`ParameterError`]. A `oneOf` that no alternative satisfies (the usual
/// `dependencies` shape: one alternative per value of a select) is reported as the errors of the one
/// alternative the values chose, when exactly one fails only on other things than `enum`/`const`: "port
/// is required", next to the port, rather than "not valid under any of the schemas" on the whole form.
fn push_error(
    error: &jsonschema::ValidationError<'_>,
    page: usize,
    errors: &mut Vec<ParameterError>,
) {
    use jsonschema::error::ValidationErrorKind;
    if let ValidationErrorKind::OneOfNotValid { context } = error.kind() {
        let chosen: Vec<&Vec<jsonschema::ValidationError<'static>>> = context
            .iter()
            .filter(|alternative| {
                !alternative.is_empty()
                    && alternative.iter().all(|e| {
                        !matches!(
                            e.kind(),
                            ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. }
                        )
                    })
            })
            .collect();
        if let [alternative] = chosen.as_slice() {
            for inner in alternative.iter() {
                push_error(inner, page, errors);
            }
            return;
        }
    }
    let mut path: Vec<Value> = error
        .instance_path()
        .segments()
        .map(|segment| match segment.to_string().parse::<u64>() {
            Ok(index) => Value::from(index),
            Err(_) => Value::String(segment.to_string()),
        })
        .collect();
    let message = match error.kind() {
        ValidationErrorKind::Required { property } => {
            // The error sits on the object; a form shows it next to the missing field.
            if let Some(name) = property.as_str() {
                path.push(Value::String(name.to_owned()));
            }
            "is required".to_owned()
        }
        _ => error.to_string(),
    };
    let property = path.iter().fold("instance".to_owned(), |mut acc, segment| {
        match segment {
            Value::String(s) => {
                acc.push('.');
                acc.push_str(s);
            }
            other => acc.push_str(&format!("[{other}]")),
        }
        acc
    });
    errors.push(ParameterError {
        stack: format!("{property} {message}"),
        path,
        property,
        message,
        name: error.kind().keyword().to_owned(),
        page,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_page_checks_the_whole_values_object() {
        let pages = [
            json!({"required": ["name"], "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}}}),
            json!({"required": ["repoUrl"], "properties": {"repoUrl": {"type": "string"}}}),
        ];
        let errors = validate(&pages, &json!({"name": "Bad Name"}));
        let summary: Vec<_> = errors
            .iter()
            .map(|e| (e.page, e.property.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (0, "instance.name", "pattern"),
                (1, "instance.repoUrl", "required")
            ]
        );
        assert_eq!(errors[1].stack, "instance.repoUrl is required");
        assert!(
            validate(
                &pages,
                &json!({"name": "ok", "repoUrl": "h?owner=o&repo=r"})
            )
            .is_empty()
        );
    }

    #[test]
    fn missing_values_take_their_defaults() {
        let pages = [
            json!({"properties": {"port": {"type": "integer", "default": 8080}, "name": {"type": "string"}}}),
        ];
        let mut values = json!({"name": "x"});
        apply_defaults(&pages, &mut values);
        assert_eq!(values, json!({"name": "x", "port": 8080}));
        let mut given = json!({"port": 9000});
        apply_defaults(&pages, &mut given);
        assert_eq!(given, json!({"port": 9000}), "a given value is kept");
    }

    #[test]
    fn ui_keys_and_conditionals_are_honoured() {
        let page = json!({
            "properties": {"kind": {"enum": ["a", "b"], "ui:widget": "radio"}},
            "if": {"properties": {"kind": {"const": "b"}}},
            "then": {"required": ["extra"]},
        });
        assert!(validate(std::slice::from_ref(&page), &json!({"kind": "a"})).is_empty());
        let errors = validate(&[page], &json!({"kind": "b"}));
        assert_eq!(errors[0].path, [json!("extra")]);
    }

    #[test]
    fn a_dependency_alternative_reports_its_own_field() {
        let page = json!({
            "properties": {"kind": {"enum": ["library", "service"]}},
            "dependencies": {"kind": {"oneOf": [
                {"properties": {"kind": {"enum": ["library"]}}},
                {"properties": {"kind": {"enum": ["service"]}, "port": {"type": "integer"}}, "required": ["port"]}
            ]}}
        });
        let errors = validate(std::slice::from_ref(&page), &json!({"kind": "service"}));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].stack, "instance.port is required");
        assert!(validate(std::slice::from_ref(&page), &json!({"kind": "library"})).is_empty());
        let wrong_type = validate(&[page], &json!({"kind": "service", "port": "eighty"}));
        assert_eq!(wrong_type[0].path, [json!("port")]);
    }
}
