//! The building blocks of validation: Backstage's format predicates (names, namespaces, label
//! keys, tags, links), and small shape checks for spec fields that report in the wording of the
//! JSON Schema validator Backstage uses (ajv), so that messages read the same as in Backstage.
//!
//! Every message names its field in quotes, so a message is understandable on its own in a log
//! line or a page, without the separate `field` next to it.

use serde_json::{Map, Value};

use super::super::refs::{EntityRef, RefDefaults};
use super::FieldError;

// The expectations Backstage's FieldFormatEntityPolicy states for each predicate.
pub(super) const EXPECT_OBJECT_NAME: &str = "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total";
pub(super) const EXPECT_PREFIX_SUFFIX: &str = "a valid prefix and/or suffix";
pub(super) const EXPECT_DNS_LABEL: &str =
    "a string that is sequences of [a-z0-9] separated by [-], at most 63 characters in total";
pub(super) const EXPECT_TAG: &str =
    "a string that is sequences of [a-z0-9:+#] separated by [-], at most 63 characters in total";
pub(super) const EXPECT_STRING: &str = "a string";
pub(super) const EXPECT_KIND: &str =
    "a string that is a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters in total";
pub(super) const EXPECT_LINK_URL: &str =
    "a string that is a valid url with scheme http, https or mailto";
pub(super) const EXPECT_NON_EMPTY: &str = "a non empty string";

/// Kubernetes object name, as Backstage checks `metadata.name`. Like Backstage's regular
/// expression this lets separators repeat (`a--b`), which the wording does not say.
pub(super) fn is_valid_object_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// RFC 1123 label: `[a-z0-9]+(-[a-z0-9]+)*`, at most 63 characters.
pub(super) fn is_valid_dns_label(s: &str) -> bool {
    s.len() <= 63
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub(super) fn is_valid_dns_subdomain(s: &str) -> bool {
    (1..=253).contains(&s.len()) && s.split('.').all(is_valid_dns_label)
}

/// `[prefix/]suffix` where the prefix, when present, is a DNS subdomain.
fn is_valid_prefix_and_or_suffix(s: &str, suffix_ok: fn(&str) -> bool) -> bool {
    match s.split_once('/') {
        None => suffix_ok(s),
        Some((prefix, suffix)) => {
            !suffix.contains('/') && is_valid_dns_subdomain(prefix) && suffix_ok(suffix)
        }
    }
}

/// `apiVersion`: `[group/]version`, the version alphanumeric and at most 63 characters.
pub(super) fn is_valid_api_version(s: &str) -> bool {
    is_valid_prefix_and_or_suffix(s, |v| {
        (1..=63).contains(&v.len()) && v.bytes().all(|c| c.is_ascii_alphanumeric())
    })
}

/// `kind`: a letter followed by letters and digits, at most 63 characters.
pub(super) fn is_valid_kind(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter().all(u8::is_ascii_alphanumeric)
}

/// Label and annotation keys: `[dns-subdomain/]object-name`.
pub(super) fn is_valid_key(s: &str) -> bool {
    is_valid_prefix_and_or_suffix(s, is_valid_object_name)
}

/// Label values: empty, or an object name.
pub(super) fn is_valid_label_value(s: &str) -> bool {
    s.is_empty() || is_valid_object_name(s)
}

/// Tags: `[a-z0-9:+#]+(-[a-z0-9:+#]+)*`, at most 63 characters.
pub(super) fn is_valid_tag(s: &str) -> bool {
    s.len() <= 63
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b":+#".contains(&c))
        })
}

/// Link URLs. Backstage accepts anything `new URL()` parses, which includes `javascript:` and
/// `data:` URLs; links are rendered as `href`s in the portal, so Atrium only accepts web and mail
/// links. Whitespace and control characters are refused outright rather than silently
/// percent-encoded or trimmed as a browser would.
pub(super) fn is_valid_link_url(s: &str) -> bool {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => rest.strip_prefix("//").is_some_and(has_host),
        "mailto" => !rest.is_empty(),
        _ => false,
    }
}

/// Whether what follows `scheme://` starts with a non-empty host.
pub(super) fn has_host(after_slashes: &str) -> bool {
    let authority = after_slashes
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    // A bracketed IPv6 literal contains colons, so only strip a port after the closing bracket.
    let host = match host_port.rfind(']') {
        Some(end) => &host_port[..=end],
        None => host_port.split(':').next().unwrap_or_default(),
    };
    !host.is_empty()
}

/// How a value appears inside `found "..."`: strings as they are, anything else as JSON.
pub(super) fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Backstage's FieldFormatEntityPolicy message, without its trailing link to Backstage's docs.
pub(super) fn invalid(field: &str, expectation: &str, value: &Value) -> FieldError {
    FieldError::new(
        field,
        format!(
            "\"{field}\" is not valid; expected {expectation} but found \"{}\"",
            shown(value)
        ),
    )
}

pub(super) fn join(path: &str, key: impl std::fmt::Display) -> String {
    format!("{path}.{key}")
}

/// ajv's `required` error, reported on the missing field itself so callers can point at it.
pub(super) fn missing(parent: &str, key: &str) -> FieldError {
    FieldError::new(
        join(parent, key),
        format!("\"{parent}\" must have required property '{key}'"),
    )
}

/// ajv's `type` error.
pub(super) fn wrong_type(path: &str, expected: &str) -> FieldError {
    FieldError::new(path, format!("\"{path}\" must be {expected}"))
}

/// A non-empty string (`type: string, minLength: 1`).
pub(super) fn check_string<'v>(
    path: &str,
    v: &'v Value,
    errs: &mut Vec<FieldError>,
) -> Option<&'v str> {
    match v.as_str() {
        None => {
            errs.push(wrong_type(path, "string"));
            None
        }
        Some("") => {
            errs.push(FieldError::new(
                path,
                format!("\"{path}\" must NOT have fewer than 1 characters"),
            ));
            None
        }
        Some(s) => Some(s),
    }
}

/// An array, each item checked by `item` under `path.<index>`.
pub(super) fn check_array<'v>(
    path: &str,
    v: &'v Value,
    errs: &mut Vec<FieldError>,
    mut item: impl FnMut(&str, &'v Value, &mut Vec<FieldError>),
) {
    match v.as_array() {
        None => errs.push(wrong_type(path, "array")),
        Some(items) => {
            for (i, it) in items.iter().enumerate() {
                item(&join(path, i), it, errs);
            }
        }
    }
}

pub(super) fn check_string_list(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    check_array(path, v, errs, |p, it, errs| {
        check_string(p, it, errs);
    });
}

pub(super) fn check_object<'v>(
    path: &str,
    v: &'v Value,
    errs: &mut Vec<FieldError>,
) -> Option<&'v Map<String, Value>> {
    let obj = v.as_object();
    if obj.is_none() {
        errs.push(wrong_type(path, "object"));
    }
    obj
}

/// A string that resolves as an entity reference in the entity's namespace.
pub(super) fn check_ref(
    path: &str,
    v: &Value,
    default_kind: Option<&str>,
    namespace: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(s) = check_string(path, v, errs) {
        let defaults = RefDefaults {
            kind: default_kind,
            namespace,
        };
        if let Err(e) = EntityRef::parse(s, defaults) {
            errs.push(FieldError::new(
                path,
                format!("\"{path}\" is not a valid entity reference: {e}"),
            ));
        }
    }
}

pub(super) fn check_ref_list(
    path: &str,
    v: &Value,
    default_kind: Option<&str>,
    namespace: &str,
    errs: &mut Vec<FieldError>,
) {
    check_array(path, v, errs, |p, it, errs| {
        check_ref(p, it, default_kind, namespace, errs);
    });
}

/// ajv's `enum` error, listing the allowed values so the fix is in the message.
pub(super) fn check_enum(path: &str, v: &Value, allowed: &[&str], errs: &mut Vec<FieldError>) {
    if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
        errs.push(FieldError::new(
            path,
            format!(
                "\"{path}\" must be equal to one of the allowed values: {}",
                allowed.join(", ")
            ),
        ));
    }
}

/// JSON Schema `type: [string, boolean]`, used by templates' `if` conditions.
pub(super) fn check_string_or_bool(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    if !(v.is_string() || v.is_boolean()) {
        errs.push(wrong_type(path, "string,boolean"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_names() {
        for ok in [
            "a",
            "A1",
            "my-component_yay.v2",
            "a--b",
            "a..b",
            &"a".repeat(63),
        ] {
            assert!(is_valid_object_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            ".a",
            "a_",
            "a b",
            "a/b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_object_name(bad), "{bad}");
        }
    }

    #[test]
    fn dns_labels_and_subdomains() {
        for ok in ["a", "default", "team-a", "x1-2-3", &"a".repeat(63)] {
            assert!(is_valid_dns_label(ok), "{ok}");
        }
        for bad in ["", "A", "a--b", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_valid_dns_label(bad), "{bad}");
        }
        assert!(is_valid_dns_subdomain("backstage.io"));
        assert!(is_valid_dns_subdomain("a.b-c.d"));
        assert!(!is_valid_dns_subdomain("a..b"));
        assert!(!is_valid_dns_subdomain("Backstage.io"));
        assert!(!is_valid_dns_subdomain(""));
    }

    #[test]
    fn api_versions() {
        for ok in [
            "backstage.io/v1alpha1",
            "v1",
            "1",
            "atrium.dev/v1alpha1",
            "a/B2",
        ] {
            assert!(is_valid_api_version(ok), "{ok}");
        }
        for bad in [
            "",
            "a#b",
            "a/b/c",
            "/v1",
            "backstage.io/",
            "Backstage.io/v1",
            "a/v-1",
        ] {
            assert!(!is_valid_api_version(bad), "{bad}");
        }
    }

    #[test]
    fn kinds() {
        assert!(is_valid_kind("Component"));
        assert!(is_valid_kind("API"));
        assert!(is_valid_kind("AiResource2"));
        assert!(!is_valid_kind("2Component"));
        assert!(!is_valid_kind("a#b"));
        assert!(!is_valid_kind("my-kind"));
        assert!(!is_valid_kind(""));
    }

    #[test]
    fn keys_and_label_values() {
        for ok in ["a", "backstage.io/custom", "example.com/x_y.z", "a.b/C"] {
            assert!(is_valid_key(ok), "{ok}");
        }
        for bad in ["", "a#b", "a/b/c", "/a", "a/", "Example.com/x", "a b"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
        assert!(is_valid_label_value(""));
        assert!(is_valid_label_value("ValueStuff"));
        assert!(!is_valid_label_value("a#b"));
    }

    #[test]
    fn tags() {
        for ok in [
            "java",
            "data-service",
            "c++",
            "c#",
            "lang:go",
            "a-b-c",
            &"a".repeat(63),
        ] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in [
            "",
            "Java",
            "a--b",
            "-a",
            "a-",
            "a_b",
            "a.b",
            "Hello World",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn link_urls() {
        for ok in [
            "http://foo",
            "https://example.org/a?b#c",
            "HTTPS://example.org",
            "https://user@host:8080/x",
            "http://[::1]:8080/",
            "mailto:team@example.com",
        ] {
            assert!(is_valid_link_url(ok), "{ok}");
        }
        for bad in [
            "",
            "invalid",
            "javascript:alert(1)",
            "data:text/html,x",
            "ftp://example.org",
            "https:example.org",
            "https://",
            "http:///path",
            "https://exa mple.org",
            " https://example.org",
            "https://example.org/\n",
            "mailto:",
        ] {
            assert!(!is_valid_link_url(bad), "{bad}");
        }
    }

    #[test]
    fn invalid_message_wording() {
        let e = invalid("metadata.name", EXPECT_OBJECT_NAME, &json!("a b"));
        assert_eq!(e.field, "metadata.name");
        assert_eq!(
            e.message,
            "\"metadata.name\" is not valid; expected a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total but found \"a b\""
        );
        assert!(
            invalid("x", EXPECT_STRING, &json!(7))
                .message
                .ends_with("found \"7\"")
        );
    }

    #[test]
    fn shape_checks() {
        let mut errs = Vec::new();
        assert_eq!(check_string("spec.a", &json!("x"), &mut errs), Some("x"));
        assert!(errs.is_empty());
        check_string("spec.a", &json!(""), &mut errs);
        check_string("spec.b", &json!(1), &mut errs);
        check_string_list("spec.c", &json!(["ok", 2]), &mut errs);
        check_string_list("spec.d", &json!("no"), &mut errs);
        check_enum("spec.e", &json!("maybe"), &["yes", "no"], &mut errs);
        check_string_or_bool("spec.f", &json!(3), &mut errs);
        check_object("spec.g", &json!([]), &mut errs);
        let got: Vec<_> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("spec.a", "\"spec.a\" must NOT have fewer than 1 characters"),
                ("spec.b", "\"spec.b\" must be string"),
                ("spec.c.1", "\"spec.c.1\" must be string"),
                ("spec.d", "\"spec.d\" must be array"),
                (
                    "spec.e",
                    "\"spec.e\" must be equal to one of the allowed values: yes, no"
                ),
                ("spec.f", "\"spec.f\" must be string,boolean"),
                ("spec.g", "\"spec.g\" must be object"),
            ]
        );
    }

    #[test]
    fn ref_checks() {
        let mut errs = Vec::new();
        check_ref(
            "spec.owner",
            &json!("team-a"),
            Some("Group"),
            "default",
            &mut errs,
        );
        check_ref_list(
            "spec.dependsOn",
            &json!(["resource:db", "db"]),
            None,
            "default",
            &mut errs,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.dependsOn.1");
        assert!(errs[0].message.starts_with(
            "\"spec.dependsOn.1\" is not a valid entity reference: Entity reference \"db\" had missing or empty kind"
        ));
    }

    #[test]
    fn missing_names_the_field() {
        let e = missing("spec", "owner");
        assert_eq!(e.field, "spec.owner");
        assert_eq!(e.message, "\"spec\" must have required property 'owner'");
    }
}
