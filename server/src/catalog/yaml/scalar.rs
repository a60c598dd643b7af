//! Scalar resolution for catalog YAML: the YAML 1.2 core schema, as Backstage's loader uses it.
//!
//! Plain scalars become nulls, booleans, integers or floats when they match the core schema's
//! patterns and strings otherwise; quoted and block scalars are always strings. Numbers JSON
//! cannot hold (`.inf`, `.nan`, overflowing floats) are errors rather than silent `null`s.

use serde_json::{Number, Value};
use serde_saphyr::granit_parser::ScalarStyle;

use super::shorten;

/// What a node's tag asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TagKind {
    /// No tag: plain scalars are resolved with the YAML 1.2 core schema.
    Implicit,
    /// The non-specific tag `!`: a string, a mapping or a sequence as written.
    NonSpecific,
    /// One of the YAML 1.2 core schema tags (`str`, `int`, `map` ...).
    Core(&'static str),
}

/// Converts one scalar according to its style and tag (YAML 1.2 core schema).
pub(super) fn scalar_value(text: &str, style: ScalarStyle, tag: TagKind) -> Result<Value, String> {
    let core = match tag {
        TagKind::NonSpecific | TagKind::Core("str") => return Ok(Value::String(text.to_owned())),
        TagKind::Implicit if style != ScalarStyle::Plain => {
            return Ok(Value::String(text.to_owned()));
        }
        TagKind::Implicit => None,
        TagKind::Core(core) => Some(core),
    };
    if matches!(core, None | Some("null")) && is_core_null(text) {
        return Ok(Value::Null);
    }
    if matches!(core, None | Some("bool")) {
        match text {
            "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
            "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
            _ => {}
        }
    }
    if matches!(core, None | Some("int" | "float"))
        && let Some(int) = core_int(text)?
    {
        return Ok(match (core, int) {
            (Some("float"), Value::Number(n)) => n
                .as_f64()
                .and_then(Number::from_f64)
                .map_or(Value::Number(n), Value::Number),
            (_, value) => value,
        });
    }
    if matches!(core, None | Some("float"))
        && let Some(float) = core_float(text)?
    {
        return Ok(float);
    }
    match core {
        None => Ok(Value::String(text.to_owned())),
        Some(core) => Err(format!("`{}` is not a valid !!{core} value", shorten(text))),
    }
}

fn is_core_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Core schema integers: decimal, `0o` octal and `0x` hexadecimal. Decimal integers too large for
/// 64 bits become floats, as they do in Backstage's JavaScript.
fn core_int(text: &str) -> Result<Option<Value>, String> {
    let radix = |digits: &str, radix: u32| -> Result<Option<Value>, String> {
        u64::from_str_radix(digits, radix)
            .map(|n| Some(Value::from(n)))
            .map_err(|_| format!("the integer `{}` does not fit in 64 bits", shorten(text)))
    };
    if let Some(digits) = text.strip_prefix("0o") {
        if !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return radix(digits, 8);
        }
        return Ok(None);
    }
    if let Some(digits) = text.strip_prefix("0x") {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return radix(digits, 16);
        }
        return Ok(None);
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Some(Value::from(n)));
    }
    if let Ok(n) = text.parse::<u64>() {
        return Ok(Some(Value::from(n)));
    }
    finite(text).map(Some)
}

/// Core schema floats, including `.inf` and `.nan`, which JSON cannot hold and are rejected.
fn core_float(text: &str) -> Result<Option<Value>, String> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Err(format!(
            "`{text}` is not a finite number and JSON cannot represent it; quote it if you \
             mean the text"
        ));
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole)
        && fraction.is_none_or(digits)
        && (!whole.is_empty() || fraction.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return Ok(None);
    }
    finite(text).map(Some)
}

fn finite(text: &str) -> Result<Value, String> {
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("the number `{}` is too large to represent", shorten(text)))
}
