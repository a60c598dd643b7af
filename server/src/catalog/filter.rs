//! The Backstage filter language and its translation to SQL.
//!
//! Two inputs produce the same `Filter` tree:
//! - query strings, `filter=kind=component,spec.type=service&filter=kind=api` (conditions in one string are
//!   AND'ed, repeated `filter` parameters OR'ed, a bare key asserts existence);
//! - predicate JSON for `POST /entities/by-query`: `{"$all": [...]}`, `{"$any": [...]}`, `{"$not": ...}`,
//!   and field expressions `{"spec.type": "service"}`, `{"x": {"$exists": true}}`, `{"x": {"$in": [..]}}`,
//!   `{"x": {"$hasPrefix": "ab"}}`.
//!
//! Keys and values compare case-insensitively. `db::filter` turns a `Filter` into SQL.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    /// The key is present (with any value, even null).
    Exists(String),
    /// The key has one of these values (already lower-cased).
    In(String, Vec<String>),
    HasPrefix(String, String),
}

/// The kinds a filter lets through, when kind is all it tests (see [`Filter::kinds_only`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kinds {
    Every,
    Of(BTreeSet<String>),
}

impl Kinds {
    fn union(self, other: Kinds) -> Kinds {
        match (self, other) {
            (Kinds::Of(mut a), Kinds::Of(b)) => {
                a.extend(b);
                Kinds::Of(a)
            }
            _ => Kinds::Every,
        }
    }

    fn intersection(self, other: Kinds) -> Kinds {
        match (self, other) {
            (Kinds::Every, kinds) | (kinds, Kinds::Every) => kinds,
            (Kinds::Of(a), Kinds::Of(b)) => Kinds::Of(a.intersection(&b).cloned().collect()),
        }
    }
}

impl Filter {
    /// The kinds this filter selects when it tests nothing but `kind` (`kind=component`, repeated
    /// or OR'ed kinds, `$all` of such); `None` when it tests any other field, or negates. Such a
    /// filter's count is the sum of per-kind counts (`db::counts`), with no entity read.
    pub fn kinds_only(&self) -> Option<Kinds> {
        match self {
            Filter::In(key, values) if key == "kind" => {
                Some(Kinds::Of(values.iter().cloned().collect()))
            }
            // Every entity has a kind.
            Filter::Exists(key) if key == "kind" => Some(Kinds::Every),
            Filter::Any(items) => items.iter().try_fold(Kinds::Of(BTreeSet::new()), |acc, f| {
                Some(acc.union(f.kinds_only()?))
            }),
            Filter::All(items) => items.iter().try_fold(Kinds::Every, |acc, f| {
                Some(acc.intersection(f.kinds_only()?))
            }),
            _ => None,
        }
    }
}

/// Parses repeated `filter` query parameters. `None` when there is nothing to filter on.
pub fn parse_filter_params(params: &[String]) -> Result<Option<Filter>, AppError> {
    let mut any = Vec::new();
    for param in params {
        if let Some(all) = parse_filter_string(param)? {
            any.push(all);
        }
    }
    Ok(match any.len() {
        0 => None,
        1 => any.pop(),
        _ => Some(Filter::Any(any)),
    })
}

fn parse_filter_string(text: &str) -> Result<Option<Filter>, AppError> {
    // Per key, in first-seen order: whether existence was asked and which values.
    let mut by_key: Vec<(String, bool, Vec<String>)> = Vec::new();
    for statement in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = match statement.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (statement, None),
        };
        if key.is_empty() {
            return Err(AppError::input(format!(
                "Invalid filter, '{statement}' is not a valid statement (expected a string on the form a=b or a= or a)"
            )));
        }
        let key = key.to_lowercase();
        let slot = match by_key.iter().position(|(k, _, _)| *k == key) {
            Some(i) => &mut by_key[i],
            None => {
                by_key.push((key, false, Vec::new()));
                let last = by_key.len() - 1;
                &mut by_key[last]
            }
        };
        match value {
            Some(value) => slot.2.push(value.to_lowercase()),
            None => slot.1 = true,
        }
    }
    let conditions: Vec<Filter> = by_key
        .into_iter()
        .map(|(key, _exists, values)| {
            if values.is_empty() {
                Filter::Exists(key)
            } else {
                Filter::In(key, values)
            }
        })
        .collect();
    Ok(match conditions.len() {
        0 => None,
        1 => conditions.into_iter().next(),
        _ => Some(Filter::All(conditions)),
    })
}

/// Parses a filter predicate (the `query` of `POST /entities/by-query`). `path` names where in the body
/// a problem is, for the error message.
pub fn parse_predicate(value: &Value, path: &str) -> Result<Filter, AppError> {
    let Value::Object(map) = value else {
        return Err(AppError::input(format!(
            "Invalid filter predicate at {path}: expected an object such as {{\"kind\": \"component\"}}, got {value}"
        )));
    };
    let logical = |op: &str| map.get(op).filter(|_| map.len() == 1);
    if let Some(items) = logical("$all").or_else(|| logical("$any")) {
        let op = if map.contains_key("$all") {
            "$all"
        } else {
            "$any"
        };
        let Value::Array(items) = items else {
            return Err(AppError::input(format!(
                "Invalid filter predicate at {path}.{op}: expected an array"
            )));
        };
        let parsed = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_predicate(item, &format!("{path}.{op}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if op == "$all" {
            Filter::All(parsed)
        } else {
            Filter::Any(parsed)
        });
    }
    if let Some(inner) = logical("$not") {
        return Ok(Filter::Not(Box::new(parse_predicate(
            inner,
            &format!("{path}.$not"),
        )?)));
    }
    let mut fields = Vec::new();
    for (key, expected) in map {
        if key.starts_with('$') {
            return Err(AppError::input(format!(
                "Invalid filter predicate at {path}: unknown operator {key} (expected $all, $any, $not, or a field)"
            )));
        }
        let key_lower = key.to_lowercase();
        let field_path = format!("{path}.{key}");
        let condition = match expected {
            Value::Object(op) if op.len() == 1 && op.contains_key("$exists") => {
                match &op["$exists"] {
                    Value::Bool(true) => Filter::Exists(key_lower),
                    Value::Bool(false) => Filter::Not(Box::new(Filter::Exists(key_lower))),
                    other => {
                        return Err(AppError::input(format!(
                            "{field_path}.$exists must be true or false, got {other}"
                        )));
                    }
                }
            }
            Value::Object(op) if op.len() == 1 && op.contains_key("$in") => {
                let Value::Array(items) = &op["$in"] else {
                    return Err(AppError::input(format!(
                        "{field_path}.$in must be an array of strings, numbers or booleans"
                    )));
                };
                let values = items
                    .iter()
                    .map(|v| {
                        primitive(v).ok_or_else(|| {
                            AppError::input(format!(
                                "{field_path}.$in holds {v}, expected strings, numbers or booleans"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Filter::In(key_lower, values)
            }
            Value::Object(op) if op.len() == 1 && op.contains_key("$hasPrefix") => {
                match &op["$hasPrefix"] {
                    Value::String(prefix) => Filter::HasPrefix(key_lower, prefix.to_lowercase()),
                    other => {
                        return Err(AppError::input(format!(
                            "{field_path}.$hasPrefix must be a string, got {other}"
                        )));
                    }
                }
            }
            other => match primitive(other) {
                Some(value) => Filter::In(key_lower, vec![value]),
                None => {
                    return Err(AppError::input(format!(
                        "Invalid filter predicate value for field \"{key}\": expected a primitive value, $exists, $in, or $hasPrefix operator, but got {other}"
                    )));
                }
            },
        };
        fields.push(condition);
    }
    Ok(if fields.len() == 1 {
        fields.remove(0)
    } else {
        Filter::All(fields)
    })
}

fn primitive(value: &Value) -> Option<String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            super::search::scalar_string(value).map(|s| s.to_lowercase())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn filter_strings_and_or() {
        let f = parse_filter_params(&s(&["Kind=Component,spec.type=service", "kind=api"]))
            .expect("parses");
        assert_eq!(
            f,
            Some(Filter::Any(vec![
                Filter::All(vec![
                    Filter::In("kind".into(), s(&["component"])),
                    Filter::In("spec.type".into(), s(&["service"])),
                ]),
                Filter::In("kind".into(), s(&["api"])),
            ]))
        );
    }

    #[test]
    fn repeated_key_in_one_string_is_any_of_its_values() {
        let f = parse_filter_params(&s(&["kind=a,kind=b,spec.owner"])).expect("parses");
        assert_eq!(
            f,
            Some(Filter::All(vec![
                Filter::In("kind".into(), s(&["a", "b"])),
                Filter::Exists("spec.owner".into())
            ]))
        );
    }

    #[test]
    fn empty_key_is_an_error_naming_the_statement() {
        let err = parse_filter_params(&s(&["=x"])).expect_err("bad");
        assert!(err.to_string().contains("'=x'"), "{err}");
        assert_eq!(
            parse_filter_params(&s(&["", " , "])).expect("empty ok"),
            None
        );
    }

    #[test]
    fn predicates_parse() {
        let f = parse_predicate(
            &json!({"$all": [{"kind": "Component"}, {"$not": {"spec.lifecycle": {"$in": ["experimental", 3]}}},
                              {"spec.owner": {"$exists": true}}, {"metadata.name": {"$hasPrefix": "Pay"}}]}),
            "query",
        )
        .expect("parses");
        assert_eq!(
            f,
            Filter::All(vec![
                Filter::In("kind".into(), s(&["component"])),
                Filter::Not(Box::new(Filter::In(
                    "spec.lifecycle".into(),
                    s(&["experimental", "3"])
                ))),
                Filter::Exists("spec.owner".into()),
                Filter::HasPrefix("metadata.name".into(), "pay".into()),
            ])
        );
    }

    #[test]
    fn bad_predicates_name_the_place() {
        let err = parse_predicate(&json!({"$all": [{"kind": {"$regex": "x"}}]}), "query")
            .expect_err("bad");
        assert!(err.to_string().contains("\"kind\""), "{err}");
        let err = parse_predicate(&json!({"$any": {"kind": "x"}}), "query").expect_err("bad");
        assert!(err.to_string().contains("query.$any"), "{err}");
        let err = parse_predicate(&json!("component"), "query").expect_err("bad");
        assert!(err.to_string().contains("at query"), "{err}");
    }

    #[test]
    fn kinds_only_filters_name_their_kinds_and_others_none() {
        let kinds = |text: &[&str]| {
            parse_filter_params(&s(text))
                .expect("parses")
                .expect("some")
                .kinds_only()
        };
        let of = |v: &[&str]| Some(Kinds::Of(v.iter().map(ToString::to_string).collect()));
        assert_eq!(kinds(&["kind=Component"]), of(&["component"]));
        assert_eq!(kinds(&["kind=a,kind=b", "kind=c"]), of(&["a", "b", "c"]));
        assert_eq!(kinds(&["kind"]), Some(Kinds::Every));
        assert_eq!(kinds(&["kind", "kind=a"]), Some(Kinds::Every));
        assert_eq!(kinds(&["kind=a,spec.type=service"]), None);
        assert_eq!(kinds(&["kind=a", "spec.type=service"]), None);
        let both = parse_predicate(
            &json!({"$all": [{"kind": {"$in": ["a", "b"]}}, {"kind": "b"}]}),
            "query",
        )
        .expect("parses");
        assert_eq!(both.kinds_only(), of(&["b"]));
        let negated = parse_predicate(&json!({"$not": {"kind": "a"}}), "query").expect("parses");
        assert_eq!(negated.kinds_only(), None);
        assert_eq!(Filter::Any(vec![]).kinds_only(), of(&[]));
        assert_eq!(Filter::All(vec![]).kinds_only(), Some(Kinds::Every));
    }
}
