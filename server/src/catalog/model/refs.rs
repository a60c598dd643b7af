//! Entity references: the `[kind:][namespace/]name` strings that catalog files use to point at
//! other entities (`spec.owner`, `spec.system`, `spec.dependsOn`, ...), and the triplet they
//! resolve to.
//!
//! Parsing follows Backstage's `parseEntityRef` to the letter, including which inputs it accepts
//! (`a/b/c` is namespace `a`, name `b/c`) and its error texts, because existing catalog files and
//! API clients rely on that behaviour. Identity is case-insensitive, as in Backstage: two
//! references are the same entity when their [`EntityRef::key`]s are equal.

use std::fmt;

/// The namespace an entity or a reference has when none is written.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A resolved reference to an entity. The parts keep the case they were written in, for display;
/// compare references with [`EntityRef::key`], not with `==`, when case must not matter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// What a reference means when it leaves out its kind or namespace: a spec field has a natural
/// kind (an owner is a Group) and references resolve within the referring entity's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefDefaults<'a> {
    /// Kind for references without `kind:`; `None` makes the kind mandatory.
    pub kind: Option<&'a str>,
    /// Namespace for references without `namespace/`; empty means [`DEFAULT_NAMESPACE`].
    pub namespace: &'a str,
}

impl Default for RefDefaults<'_> {
    fn default() -> Self {
        RefDefaults {
            kind: None,
            namespace: DEFAULT_NAMESPACE,
        }
    }
}

/// Why a reference string could not be resolved. The texts are Backstage's, so that users who
/// search for an error message find the same answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("Entity reference must not be empty")]
    Empty,
    #[error(
        "Entity reference {} was not on the form [<kind>:][<namespace>/]<name>",
        quoted(.0)
    )]
    Malformed(String),
    #[error(
        "Entity reference {} had missing or empty kind (e.g. did not start with \"component:\" or similar)",
        quoted(.0)
    )]
    MissingKind(String),
    #[error("Entity reference {} had missing or empty namespace", quoted(.0))]
    MissingNamespace(String),
    #[error("Entity reference {} had missing or empty name", quoted(.0))]
    MissingName(String),
}

/// Quotes a reference for an error message the way `JSON.stringify` does, which also keeps
/// control characters from a hostile file out of logs and pages.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl EntityRef {
    /// Builds a reference from its parts, as written.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        EntityRef {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses `[kind:][namespace/]name` (Backstage `parseEntityRef` semantics, including its errors).
    ///
    /// The first `:` ends the kind and the first `/` ends the namespace, unless the `/` comes
    /// first, in which case the colon belongs to the name. Everything after them is the name, so
    /// this does not check that the parts are valid names: validation does that for entities.
    pub fn parse(s: &str, defaults: RefDefaults<'_>) -> Result<EntityRef, RefError> {
        if s.is_empty() {
            return Err(RefError::Empty);
        }
        let slash = s.find('/');
        let colon = match (s.find(':'), slash) {
            (Some(c), Some(sl)) if sl < c => None,
            (c, _) => c,
        };
        let kind = colon.map(|c| &s[..c]);
        let namespace = slash.map(|sl| match colon {
            Some(c) => &s[c + 1..sl],
            None => &s[..sl],
        });
        let name_start = colon.map_or(0, |c| c + 1).max(slash.map_or(0, |sl| sl + 1));
        let name = &s[name_start..];

        if kind == Some("") || namespace == Some("") || name.is_empty() {
            return Err(RefError::Malformed(s.to_owned()));
        }

        let kind = match kind.or(defaults.kind) {
            Some(k) if !k.is_empty() => k,
            _ => return Err(RefError::MissingKind(s.to_owned())),
        };
        // Backstage treats an empty default namespace like an absent one.
        let namespace = match namespace {
            Some(ns) => ns,
            None if defaults.namespace.is_empty() => DEFAULT_NAMESPACE,
            None => defaults.namespace,
        };
        Ok(EntityRef::new(kind, namespace, name))
    }

    /// Reference of an entity JSON value (kind, metadata.namespace default "default", metadata.name).
    ///
    /// `None` when the entity has no usable kind or name, which validation reports separately.
    pub fn of_entity(entity: &serde_json::Value) -> Option<EntityRef> {
        let kind = entity.get("kind")?.as_str().filter(|k| !k.is_empty())?;
        let metadata = entity.get("metadata")?;
        let name = metadata.get("name")?.as_str().filter(|n| !n.is_empty())?;
        // A missing, null or empty namespace all mean the default one, as Backstage's
        // DefaultNamespaceEntityPolicy fills in; any other non-string is not an entity we can name.
        let namespace = match metadata.get("namespace") {
            None | Some(serde_json::Value::Null) => DEFAULT_NAMESPACE,
            Some(serde_json::Value::String(ns)) if ns.is_empty() => DEFAULT_NAMESPACE,
            Some(serde_json::Value::String(ns)) => ns.as_str(),
            Some(_) => return None,
        };
        Some(EntityRef::new(kind, namespace, name))
    }

    /// Canonical lower-cased key used for identity/comparison: "component:default/foo".
    pub fn key(&self) -> String {
        self.to_string()
    }
}

/// Backstage's `stringifyEntityRef`: `kind:namespace/name` with all three parts lower-cased, the
/// namespace always written out. That makes it the canonical key as well as the display form;
/// show the fields themselves where the original case matters.
impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name.to_lowercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str, kind: Option<&str>, ns: &str) -> Result<EntityRef, RefError> {
        EntityRef::parse(
            s,
            RefDefaults {
                kind,
                namespace: ns,
            },
        )
    }

    fn ok(s: &str, kind: Option<&str>, ns: &str) -> (String, String, String) {
        let r = parse(s, kind, ns).expect("reference should parse");
        (r.kind, r.namespace, r.name)
    }

    fn triple(k: &str, ns: &str, n: &str) -> (String, String, String) {
        (k.to_owned(), ns.to_owned(), n.to_owned())
    }

    #[test]
    fn parses_full_and_partial_forms() {
        assert_eq!(ok("a:b/c", None, "x"), triple("a", "b", "c"));
        assert_eq!(ok("a:c", None, "x"), triple("a", "x", "c"));
        assert_eq!(ok("b/c", Some("K"), "x"), triple("K", "b", "c"));
        assert_eq!(ok("c", Some("K"), "x"), triple("K", "x", "c"));
        assert_eq!(ok("a:b/c", Some("K"), "x"), triple("a", "b", "c"));
    }

    #[test]
    fn keeps_original_case() {
        assert_eq!(
            ok("Component:Default/MyService", None, "default"),
            triple("Component", "Default", "MyService")
        );
    }

    #[test]
    fn slash_before_colon_puts_colon_in_name() {
        assert_eq!(ok("ns/a:b", Some("K"), "x"), triple("K", "ns", "a:b"));
    }

    #[test]
    fn extra_separators_belong_to_name() {
        assert_eq!(ok("a/b/c", Some("K"), "x"), triple("K", "a", "b/c"));
        assert_eq!(ok("k:a:b", None, "x"), triple("k", "x", "a:b"));
        assert_eq!(ok("k:ns/a:b/c", None, "x"), triple("k", "ns", "a:b/c"));
    }

    #[test]
    fn empty_default_namespace_means_default() {
        assert_eq!(ok("c", Some("K"), ""), triple("K", "default", "c"));
    }

    #[test]
    fn empty_input_is_an_error() {
        let err = parse("", Some("K"), "default").expect_err("empty must fail");
        assert_eq!(err, RefError::Empty);
        assert_eq!(err.to_string(), "Entity reference must not be empty");
    }

    #[test]
    fn empty_parts_are_malformed() {
        for s in [":b/c", "a:/c", "a:b/", "/c", "a:", "b/"] {
            let err = parse(s, Some("K"), "default").expect_err(s);
            assert_eq!(err, RefError::Malformed(s.to_owned()), "{s}");
            assert_eq!(
                err.to_string(),
                format!(
                    "Entity reference \"{s}\" was not on the form [<kind>:][<namespace>/]<name>"
                )
            );
        }
    }

    #[test]
    fn missing_kind_without_default() {
        let err = parse("b/c", None, "default").expect_err("no kind");
        assert_eq!(err, RefError::MissingKind("b/c".to_owned()));
        assert_eq!(
            err.to_string(),
            "Entity reference \"b/c\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        );
        assert!(matches!(
            parse("c", Some(""), "default"),
            Err(RefError::MissingKind(_))
        ));
    }

    #[test]
    fn error_text_escapes_control_characters() {
        let err = parse("a\nb", None, "default").expect_err("no kind");
        assert!(err.to_string().contains("\"a\\nb\""), "{err}");
    }

    #[test]
    fn display_lowercases_every_part() {
        let r = EntityRef::new("Component", "Default", "MyService");
        assert_eq!(r.to_string(), "component:default/myservice");
        assert_eq!(r.key(), "component:default/myservice");
        let other = EntityRef::new("component", "default", "myservice");
        assert_ne!(r, other);
        assert_eq!(r.key(), other.key());
    }

    #[test]
    fn of_entity_reads_kind_namespace_name() {
        let e = json!({"kind": "Component", "metadata": {"name": "Foo", "namespace": "ops"}});
        assert_eq!(
            EntityRef::of_entity(&e),
            Some(EntityRef::new("Component", "ops", "Foo"))
        );
    }

    #[test]
    fn of_entity_defaults_namespace() {
        for md in [
            json!({"name": "foo"}),
            json!({"name": "foo", "namespace": null}),
            json!({"name": "foo", "namespace": ""}),
        ] {
            let e = json!({"kind": "API", "metadata": md});
            assert_eq!(
                EntityRef::of_entity(&e),
                Some(EntityRef::new("API", "default", "foo"))
            );
        }
    }

    #[test]
    fn of_entity_rejects_incomplete_entities() {
        for e in [
            json!({}),
            json!({"kind": "API"}),
            json!({"kind": "API", "metadata": {}}),
            json!({"kind": "", "metadata": {"name": "x"}}),
            json!({"kind": 1, "metadata": {"name": "x"}}),
            json!({"kind": "API", "metadata": {"name": ""}}),
            json!({"kind": "API", "metadata": {"name": "x", "namespace": 3}}),
        ] {
            assert_eq!(EntityRef::of_entity(&e), None, "{e}");
        }
    }

    #[test]
    fn default_defaults() {
        let d = RefDefaults::default();
        assert_eq!(d.kind, None);
        assert_eq!(d.namespace, DEFAULT_NAMESPACE);
    }
}
