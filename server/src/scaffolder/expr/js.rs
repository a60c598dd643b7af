//! JavaScript semantics that Backstage templates see because Nunjucks runs on JavaScript: how a
//! value prints (`String(value)`), how a number prints, JSON conversion, truthiness, and the
//! string, number and array methods that nunjitsu lets templates call (`name.toUpperCase()`).

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

/// Deepest nesting printed or converted; deeper values are cut off with an error (JSON contexts
/// cannot be deeper than serde_json's own limit of 128 anyway).
const MAX_DEPTH: usize = 128;

fn too_deep() -> Error {
    Error::new(ErrorKind::InvalidOperation, "value nested too deeply")
}

/// A JSON context as template values whose arrays and objects are true even when empty, as in
/// JavaScript (`{% if parameters.tags %}` is true for `[]` in Nunjucks, false in Jinja).
pub(crate) fn from_json(json: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, f) => Value::from(f.unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from_object(JsArray(items.iter().map(from_json).collect())),
        Json::Object(map) => Value::from_object(JsObject {
            keys: map.keys().map(|k| Value::from(k.as_str())).collect(),
            values: map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect(),
        }),
    }
}

/// An array from the context: a sequence that is true even when empty.
#[derive(Debug)]
struct JsArray(Vec<Value>);

impl Object for JsArray {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get(key.as_usize()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
}

/// An object from the context: a map in key order that is true even when empty.
#[derive(Debug)]
struct JsObject {
    keys: Vec<Value>,
    values: HashMap<String, Value>,
}

impl Object for JsObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.values.get(key.as_str()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Iter(Box::new(self.keys.clone().into_iter()))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.keys.len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
}

/// `String(value)` as JavaScript prints it: `true`, `1.5`, `a,b` for arrays (nested arrays are
/// flattened, null items are empty), `[object Object]` for objects, and nothing for null/undefined.
pub(crate) fn to_js_string(value: &Value) -> Result<String, Error> {
    let mut out = String::new();
    write_js_string(value, &mut out, 0)?;
    Ok(out)
}

pub(crate) fn write_js_string(value: &Value, out: &mut String, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => {}
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&number_to_js_string(value)),
        ValueKind::String => out.push_str(value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js_string(&item, out, depth + 1)?;
            }
        }
        ValueKind::Map => out.push_str("[object Object]"),
        _ => out.push_str(&value.to_string()),
    }
    Ok(())
}

/// A number as JavaScript prints it: integers without a fraction, `1e+21` and `1e-7` in
/// exponent form, `NaN` and `Infinity`.
pub(crate) fn number_to_js_string(value: &Value) -> String {
    if value.is_integer() {
        return value.to_string();
    }
    f64::try_from(value.clone()).map_or_else(|_| value.to_string(), js_number)
}

pub(crate) fn js_number(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    let magnitude = f.abs();
    if !(1e-6..1e21).contains(&magnitude) {
        let formatted = format!("{f:e}");
        return match formatted.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => formatted,
        };
    }
    if f.fract() == 0.0 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

/// Converts a template value to JSON the way `JSON.stringify` would see it. `None` is
/// JavaScript's `undefined` (a key that is left out); an undefined item of an array becomes
/// `null`, as JSON has no holes. Integral floats become integers (JavaScript has one number
/// type), and NaN/Infinity become `null`. `budget` bounds the number of values converted.
pub(crate) fn to_json(
    value: &Value,
    budget: &mut usize,
) -> Result<Option<serde_json::Value>, Error> {
    to_json_at(value, budget, 0)
}

fn to_json_at(
    value: &Value,
    budget: &mut usize,
    depth: usize,
) -> Result<Option<serde_json::Value>, Error> {
    use serde_json::Value as Json;
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    *budget = budget.checked_sub(1).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "value too large to convert to JSON",
        )
    })?;
    Ok(Some(match value.kind() {
        ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(value.is_true()),
        ValueKind::Number => number_to_json(value),
        ValueKind::String => Json::String(value.as_str().unwrap_or_default().to_owned()),
        ValueKind::Seq | ValueKind::Iterable => {
            let mut items = Vec::new();
            for item in value.try_iter()? {
                items.push(to_json_at(&item, budget, depth + 1)?.unwrap_or(Json::Null));
            }
            Json::Array(items)
        }
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                if let Some(item) = to_json_at(&item, budget, depth + 1)? {
                    map.insert(to_js_string(&key)?, item);
                }
            }
            Json::Object(map)
        }
        // Undefined, and callables such as macros: JSON has no such value.
        _ => return Ok(None),
    }))
}

fn number_to_json(value: &Value) -> serde_json::Value {
    if let Some(i) = value.as_i64() {
        return i.into();
    }
    if value.is_integer()
        && let Ok(u) = u64::try_from(value.clone())
    {
        return u.into();
    }
    let Ok(f) = f64::try_from(value.clone()) else {
        return serde_json::Value::Null;
    };
    // 2^53: beyond it JavaScript prints integral numbers in exponent form or inexactly.
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        // In range, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        return (f as i64).into();
    }
    serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// The scaffolder runner's `isTruthy`: arrays are true when not empty, everything else as
/// JavaScript's `!!value` (so the string `"false"` is true, `0` and `""` are false).
pub(crate) fn json_is_truthy(value: Option<&serde_json::Value>) -> bool {
    use serde_json::Value as Json;
    match value {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Json::String(s)) => !s.is_empty(),
        Some(Json::Array(items)) => !items.is_empty(),
        Some(Json::Object(_)) => true,
    }
}

/// JavaScript truthiness of a template value (`[]` and `{}` are true, unlike in Jinja).
pub(crate) fn is_truthy(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => true,
        ValueKind::Number => f64::try_from(value.clone())
            .map_or_else(|_| value.is_true(), |f| f != 0.0 && !f.is_nan()),
        _ => value.is_true(),
    }
}

pub(crate) fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn from_utf16(units: &[u16]) -> String {
    String::from_utf16_lossy(units)
}

/// JavaScript's ToIntegerOrInfinity for an optional position argument, clamped to `0..=len`
/// after counting negative values from the end when `relative` is set (as `slice` does).
fn position(arg: Option<&Value>, default: usize, len: usize, relative: bool) -> usize {
    let Some(arg) = arg.filter(|a| !a.is_undefined()) else {
        return default;
    };
    let f = f64::try_from(arg.clone()).unwrap_or(0.0);
    let f = if f.is_nan() { 0.0 } else { f.trunc() };
    // Clamped into 0..=len before the cast, so it is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let clamp = |x: f64| x.clamp(0.0, len as f64) as usize;
    if relative && f < 0.0 {
        clamp(len as f64 + f)
    } else {
        clamp(f)
    }
}

fn find_units(haystack: &[u16], needle: &[u16], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from.min(haystack.len()));
    }
    (from..=haystack.len().saturating_sub(needle.len()))
        .find(|&i| haystack[i..].starts_with(needle))
}

fn rfind_units(haystack: &[u16], needle: &[u16], from: usize) -> Option<usize> {
    let last = haystack.len().checked_sub(needle.len())?;
    (0..=from.min(last))
        .rev()
        .find(|&i| haystack[i..].starts_with(needle))
}

fn arg_string(args: &[Value], i: usize) -> Result<String, Error> {
    match args.get(i) {
        // `String(undefined)`: JavaScript searches for the text "undefined".
        None => Ok("undefined".to_owned()),
        Some(v) if v.is_undefined() => Ok("undefined".to_owned()),
        Some(v) if v.is_none() => Ok("null".to_owned()),
        Some(v) => to_js_string(v),
    }
}

fn index_value(found: Option<usize>) -> Value {
    found.map_or(Value::from(-1), Value::from)
}

/// The methods nunjitsu allows on strings, numbers and arrays (and, in cookiecutter mode, the
/// Jinja methods on objects and lists), for minijinja's unknown-method callback. Methods that
/// mutate their receiver (`push`, `sort`, ...) are not offered: template values are immutable.
pub(crate) fn call_method(
    state: &State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
    cookiecutter: bool,
) -> Result<Value, Error> {
    let unknown = || {
        Error::new(
            ErrorKind::UnknownMethod,
            format!("{} has no method named {method}", value.kind()),
        )
    };
    match value.kind() {
        ValueKind::String => string_method(value.as_str().unwrap_or_default(), method, args)
            .and_then(|v| v.ok_or_else(unknown)),
        ValueKind::Number => number_method(value, method, args).and_then(|v| v.ok_or_else(unknown)),
        ValueKind::Seq | ValueKind::Iterable => {
            array_method(state, value, method, args, cookiecutter)
                .and_then(|v| v.ok_or_else(unknown))
        }
        ValueKind::Map if cookiecutter => {
            record_method(value, method, args).and_then(|v| v.ok_or_else(unknown))
        }
        _ => Err(unknown()),
    }
}

fn string_method(text: &str, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    let units = utf16(text);
    let len = units.len();
    let arg = |i: usize| args.get(i);
    Ok(Some(match method {
        "toUpperCase" => Value::from(text.to_uppercase()),
        "toLowerCase" => Value::from(text.to_lowercase()),
        "trim" => Value::from(text.trim_matches(is_js_space)),
        "trimStart" => Value::from(text.trim_start_matches(is_js_space)),
        "trimEnd" => Value::from(text.trim_end_matches(is_js_space)),
        "includes" => {
            let needle = utf16(&arg_string(args, 0)?);
            Value::from(find_units(&units, &needle, position(arg(1), 0, len, false)).is_some())
        }
        "startsWith" => {
            let needle = utf16(&arg_string(args, 0)?);
            Value::from(units[position(arg(1), 0, len, false)..].starts_with(&needle))
        }
        "endsWith" => {
            let needle = utf16(&arg_string(args, 0)?);
            Value::from(units[..position(arg(1), len, len, false)].ends_with(&needle))
        }
        "indexOf" => {
            let needle = utf16(&arg_string(args, 0)?);
            index_value(find_units(&units, &needle, position(arg(1), 0, len, false)))
        }
        "lastIndexOf" => {
            let needle = utf16(&arg_string(args, 0)?);
            index_value(rfind_units(
                &units,
                &needle,
                position(arg(1), len, len, false),
            ))
        }
        "slice" => {
            let start = position(arg(0), 0, len, true);
            let end = position(arg(1), len, len, true);
            Value::from(from_utf16(&units[start..end.max(start)]))
        }
        "substring" => {
            let a = position(arg(0), 0, len, false);
            let b = position(arg(1), len, len, false);
            Value::from(from_utf16(&units[a.min(b)..a.max(b)]))
        }
        "charAt" => {
            let i = position(arg(0), 0, len, false);
            Value::from(units.get(i).map_or_else(String::new, |u| from_utf16(&[*u])))
        }
        "charCodeAt" => {
            let i = position(arg(0), 0, len, false);
            units
                .get(i)
                .map_or(Value::from(f64::NAN), |u| Value::from(*u))
        }
        "concat" => {
            let mut out = text.to_owned();
            for a in args {
                write_js_string(a, &mut out, 0)?;
            }
            Value::from(out)
        }
        "replace" => {
            let pattern = arg_string(args, 0)?;
            let replacement = arg_string(args, 1)?;
            Value::from(replace_first(text, &pattern, &replacement))
        }
        "split" => split(text, args)?,
        _ => return Ok(None),
    }))
}

fn is_js_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// `String.prototype.replace` with a string pattern: the first match only, with the `$$`, `$&`,
/// `` $` `` and `$'` replacement patterns.
fn replace_first(text: &str, pattern: &str, replacement: &str) -> String {
    let Some(at) = text.find(pattern) else {
        return text.to_owned();
    };
    let (before, after) = (&text[..at], &text[at + pattern.len()..]);
    let mut expanded = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            expanded.push(c);
            continue;
        }
        match chars.peek() {
            Some('$') => expanded.push('$'),
            Some('&') => expanded.push_str(pattern),
            Some('`') => expanded.push_str(before),
            Some('\'') => expanded.push_str(after),
            _ => {
                expanded.push('$');
                continue;
            }
        }
        chars.next();
    }
    format!("{before}{expanded}{after}")
}

fn split(text: &str, args: &[Value]) -> Result<Value, Error> {
    let limit = match args.get(1).filter(|v| !v.is_undefined()) {
        // ToUint32, close enough for the limits templates use.
        Some(v) => f64::try_from(v.clone()).map_or(usize::MAX, |f| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = f.max(0.0) as usize;
            n
        }),
        None => usize::MAX,
    };
    let Some(separator) = args.first().filter(|v| !v.is_undefined()) else {
        return Ok(if limit == 0 {
            Value::from(Vec::<Value>::new())
        } else {
            Value::from(vec![Value::from(text)])
        });
    };
    let separator = to_js_string(separator)?;
    let parts: Vec<Value> = if separator.is_empty() {
        text.encode_utf16()
            .take(limit)
            .map(|u| Value::from(from_utf16(&[u])))
            .collect()
    } else {
        text.split(separator.as_str())
            .take(limit)
            .map(Value::from)
            .collect()
    };
    Ok(Value::from(parts))
}

fn number_method(value: &Value, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    let f = f64::try_from(value.clone())?;
    let digits = |default: usize| -> Result<usize, Error> {
        match args.first().filter(|v| !v.is_undefined()) {
            None => Ok(default),
            Some(v) => {
                let d = f64::try_from(v.clone()).unwrap_or(0.0).trunc();
                if (0.0..=100.0).contains(&d) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Ok(d as usize)
                } else {
                    Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "toFixed() digits argument must be between 0 and 100",
                    ))
                }
            }
        }
    };
    Ok(Some(match method {
        "toFixed" => {
            let d = digits(0)?;
            if !f.is_finite() || f.abs() >= 1e21 {
                Value::from(js_number(f))
            } else {
                Value::from(format!("{f:.d$}"))
            }
        }
        "toString" => Value::from(number_to_js_string(value)),
        _ => return Ok(None),
    }))
}

fn array_method(
    state: &State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
    cookiecutter: bool,
) -> Result<Option<Value>, Error> {
    let items: Vec<Value> = value.try_iter()?.collect();
    state.consume_fuel(items.len() as u64)?;
    let len = items.len();
    let arg = |i: usize| args.get(i);
    let first = arg(0).cloned().unwrap_or(Value::UNDEFINED);
    Ok(Some(match method {
        "at" => {
            let f = f64::try_from(first).unwrap_or(0.0).trunc();
            let i = if f < 0.0 { len as f64 + f } else { f };
            if (0.0..len as f64).contains(&i) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                items[i as usize].clone()
            } else {
                Value::UNDEFINED
            }
        }
        "includes" => Value::from(items[position(arg(1), 0, len, true)..].contains(&first)),
        "indexOf" => {
            let from = position(arg(1), 0, len, true);
            index_value(
                items[from..]
                    .iter()
                    .position(|v| *v == first)
                    .map(|i| i + from),
            )
        }
        "lastIndexOf" => index_value(items.iter().rposition(|v| *v == first)),
        "join" => {
            let separator = match arg(0).filter(|v| !v.is_undefined()) {
                Some(s) => to_js_string(s)?,
                None => ",".to_owned(),
            };
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&separator);
                }
                write_js_string(item, &mut out, 1)?;
            }
            Value::from(out)
        }
        "slice" => {
            let start = position(arg(0), 0, len, true);
            let end = position(arg(1), len, len, true);
            Value::from(items[start..end.max(start)].to_vec())
        }
        "concat" => {
            let mut out = items;
            for a in args {
                match a.kind() {
                    ValueKind::Seq | ValueKind::Iterable => out.extend(a.try_iter()?),
                    _ => out.push(a.clone()),
                }
            }
            Value::from(out)
        }
        "flat" => {
            let depth = arg(0).map_or(1, |d| d.as_i64().unwrap_or(1).clamp(0, 64));
            let mut out = Vec::new();
            flatten(&items, depth, &mut out)?;
            Value::from(out)
        }
        "count" if cookiecutter => Value::from(items.iter().filter(|v| **v == first).count()),
        "index" | "find" if cookiecutter => index_value(items.iter().position(|v| *v == first)),
        _ => return Ok(None),
    }))
}

fn flatten(items: &[Value], depth: i64, out: &mut Vec<Value>) -> Result<(), Error> {
    for item in items {
        if depth > 0 && matches!(item.kind(), ValueKind::Seq | ValueKind::Iterable) {
            let inner: Vec<Value> = item.try_iter()?.collect();
            flatten(&inner, depth - 1, out)?;
        } else {
            out.push(item.clone());
        }
    }
    Ok(())
}

/// `installJinjaCompat`'s object methods (cookiecutter mode). A key of the same name wins.
fn record_method(value: &Value, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    let keys = || value.try_iter();
    Ok(Some(match method {
        "keys" => Value::from(keys()?.collect::<Vec<_>>()),
        "values" => Value::from(
            keys()?
                .map(|k| value.get_item(&k))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        "items" => Value::from(
            keys()?
                .map(|k| Ok(Value::from(vec![k.clone(), value.get_item(&k)?])))
                .collect::<Result<Vec<_>, Error>>()?,
        ),
        "get" => {
            let key = args.first().cloned().unwrap_or(Value::UNDEFINED);
            let found = value.get_item(&key)?;
            if found.is_undefined() {
                args.get(1).cloned().unwrap_or(Value::UNDEFINED)
            } else {
                found
            }
        }
        "has_key" => {
            let key = args.first().cloned().unwrap_or(Value::UNDEFINED);
            Value::from(!value.get_item(&key)?.is_undefined())
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(js_number(1.0), "1");
        assert_eq!(js_number(1.5), "1.5");
        assert_eq!(js_number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(js_number(1e21), "1e+21");
        assert_eq!(js_number(1.5e-7), "1.5e-7");
        assert_eq!(js_number(-0.0), "0");
        assert_eq!(js_number(f64::NAN), "NaN");
        assert_eq!(js_number(123_456_789.0), "123456789");
    }

    #[test]
    fn values_print_like_javascript() {
        let v = Value::from(minijinja::value::Serde(
            serde_json::json!([1, [2, null, true], {"a": 1}, "x"]),
        ));
        assert_eq!(
            to_js_string(&v).ok().as_deref(),
            Some("1,2,,true,[object Object],x")
        );
        assert_eq!(to_js_string(&Value::from(())).ok().as_deref(), Some(""));
    }

    #[test]
    fn replace_patterns() {
        assert_eq!(replace_first("a-b-c", "-", "+"), "a+b-c");
        assert_eq!(replace_first("abc", "b", "[$&$$]"), "a[b$]c");
    }
}
