//! Secrets taken out of everything a task writes: log lines, event bodies, outputs, error messages.
//!
//! A step can echo a secret as given, base64-encoded (an `Authorization: Basic` header, a
//! Kubernetes Secret) or URL-encoded (a remote URL with a token in it); every one of those forms is
//! replaced with `***`.

use base64::Engine;
use serde_json::Value;

pub const MASK: &str = "***";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first so that a secret containing another is masked whole.
    needles: Vec<String>,
}

impl Redactor {
    /// From a task's `secrets` object: every string value (and string inside arrays/objects).
    pub fn new(secrets: Option<&Value>) -> Self {
        let mut plain = Vec::new();
        if let Some(secrets) = secrets {
            collect_strings(secrets, &mut plain);
        }
        let mut needles = Vec::new();
        for secret in plain {
            // Very short values ("1", "a") would mask unrelated text everywhere and hide nothing.
            if secret.chars().count() < 3 {
                continue;
            }
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            for engine in engines {
                needles.push(engine.encode(secret.as_bytes()));
            }
            needles.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
            needles.push(percent_encode_all(&secret));
            needles.push(secret);
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    pub fn text(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), MASK);
            }
        }
        text
    }

    pub fn value(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn collect_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) => into.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, into)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, into)),
        _ => {}
    }
}

/// `encodeURIComponent`-style: everything but unreserved characters percent-encoded.
fn percent_encode_all(secret: &str) -> String {
    let mut out = String::new();
    for byte in secret.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_form_of_a_secret_is_masked() {
        let r = Redactor::new(Some(&json!({"token": "s3cr3t/tok+en=", "short": "ab"})));
        let b64 = base64::engine::general_purpose::STANDARD.encode("s3cr3t/tok+en=");
        let line = format!(
            "plain s3cr3t/tok+en= b64 {b64} url s3cr3t%2Ftok%2Ben%3D form s3cr3t%2Ftok%2Ben%3D ab"
        );
        assert_eq!(r.text(&line), "plain *** b64 *** url *** form *** ab");
        assert_eq!(
            r.value(&json!({"out": ["x s3cr3t/tok+en="]})),
            json!({"out": ["x ***"]})
        );
    }
}
