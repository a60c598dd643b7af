//! Field paths as reported in violations: `spec.template.spec.containers[0].securityContext`,
//! with map keys that are not plain identifiers quoted: `metadata.annotations["a.b/c"]`.

use std::fmt;

/// A JSON-path-like location inside one manifest object. Cheap to extend: every step
/// returns a new path, so a parent path can be reused for several children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FieldPath(String);

impl FieldPath {
    /// The object itself (renders as the empty string).
    pub(super) fn root() -> Self {
        Self::default()
    }

    /// Builds a path from dot-separated plain field names, e.g. `"spec.template.spec"`.
    pub(super) fn parse_plain(dotted: &str) -> Self {
        dotted
            .split('.')
            .filter(|s| !s.is_empty())
            .fold(Self::root(), |p, f| p.field(f))
    }

    /// A struct field whose name is a plain identifier (`.name`).
    pub(super) fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// A list element (`[i]`).
    pub(super) fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// A map key: `.key` when it is a plain identifier, `["key"]` otherwise (dots, slashes, ...).
    pub(super) fn key(&self, key: &str) -> Self {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain {
            self.field(key)
        } else {
            // A JSON string literal escapes quotes and backslashes for us.
            let quoted = serde_json::Value::String(key.to_owned()).to_string();
            Self(format!("{}[{quoted}]", self.0))
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::FieldPath;

    #[test]
    fn renders_fields_indices_and_quoted_keys() {
        let p = FieldPath::parse_plain("spec.template.spec")
            .field("containers")
            .index(2)
            .field("securityContext");
        assert_eq!(
            p.to_string(),
            "spec.template.spec.containers[2].securityContext"
        );
        let a = FieldPath::parse_plain("metadata.annotations")
            .key("container.apparmor.security.beta.kubernetes.io/app");
        assert_eq!(
            a.to_string(),
            r#"metadata.annotations["container.apparmor.security.beta.kubernetes.io/app"]"#
        );
        assert_eq!(FieldPath::root().key("cpu").to_string(), "cpu");
        assert_eq!(FieldPath::root().key("a\"b").to_string(), r#"["a\"b"]"#);
        assert_eq!(FieldPath::root().to_string(), "");
    }
}
