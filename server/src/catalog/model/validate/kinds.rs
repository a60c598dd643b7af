//! The kinds Atrium accepts, with their apiVersions and spec rules.
//!
//! Backstage's built-in kinds follow its kind JSON schemas (packages/catalog-model/src/schema/
//! kinds, and scaffolder-common for Template) as of the current release: required fields, types,
//! and the entity-reference fields whose default kinds its BuiltinKindsEntityProcessor uses.
//! `AiResource` is Backstage's own kind for AI coding-tool resources (skills, rules, plugins,
//! marketplaces), and an `API` of type `mcp-server` the API shape its AI-model module adds. `Model` is Atrium's first-class kind for machine-learning models.
//!
//! Extra spec fields are allowed, as in Backstage (`additionalProperties` is not restricted), so
//! files written for plugins that read their own spec fields keep loading.

use serde_json::{Map, Value};

use super::FieldError;
use super::shape::{Field, Shape, check_fields, opt, req};
use super::{models, specs};

/// Checks that depend on more than one field, such as AiResource's per-type rules.
type ExtraCheck = fn(&Map<String, Value>, &str, &mut Vec<FieldError>);

pub(super) struct KindRule {
    pub kind: &'static str,
    pub api_versions: &'static [&'static str],
    pub fields: &'static [Field],
    pub extra: Option<ExtraCheck>,
}

const BACKSTAGE_V1: &[&str] = &["backstage.io/v1alpha1", "backstage.io/v1beta1"];

const GROUP: Option<&str> = Some("Group");
const SYSTEM: Option<&str> = Some("System");

/// Every accepted kind, in the order they are listed in error messages.
pub(super) const KINDS: &[KindRule] = &[
    KindRule {
        kind: "Component",
        api_versions: BACKSTAGE_V1,
        fields: &[
            req("type", Shape::Str),
            req("lifecycle", Shape::Str),
            req("owner", Shape::Ref(GROUP)),
            opt("system", Shape::Ref(SYSTEM)),
            opt("subcomponentOf", Shape::Ref(Some("Component"))),
            opt("providesApis", Shape::RefList(Some("API"))),
            opt("consumesApis", Shape::RefList(Some("API"))),
            // No default kind, as in Backstage: a dependency must say what it is.
            opt("dependsOn", Shape::RefList(None)),
            opt("dependencyOf", Shape::RefList(None)),
        ],
        extra: None,
    },
    KindRule {
        kind: "API",
        api_versions: BACKSTAGE_V1,
        fields: &[
            req("type", Shape::Str),
            req("lifecycle", Shape::Str),
            req("owner", Shape::Ref(GROUP)),
            opt("system", Shape::Ref(SYSTEM)),
        ],
        // `definition`, or `remotes` for an MCP server.
        extra: Some(specs::api_by_type),
    },
    KindRule {
        kind: "Resource",
        api_versions: BACKSTAGE_V1,
        fields: &[
            req("type", Shape::Str),
            req("owner", Shape::Ref(GROUP)),
            opt("dependsOn", Shape::RefList(None)),
            opt("dependencyOf", Shape::RefList(None)),
            opt("system", Shape::Ref(SYSTEM)),
        ],
        extra: None,
    },
    KindRule {
        kind: "System",
        api_versions: BACKSTAGE_V1,
        fields: &[
            req("owner", Shape::Ref(GROUP)),
            opt("domain", Shape::Ref(Some("Domain"))),
            opt("type", Shape::Str),
        ],
        extra: None,
    },
    KindRule {
        kind: "Domain",
        api_versions: BACKSTAGE_V1,
        fields: &[
            req("owner", Shape::Ref(GROUP)),
            opt("subdomainOf", Shape::Ref(Some("Domain"))),
            opt("type", Shape::Str),
        ],
        extra: None,
    },
    KindRule {
        kind: "Group",
        api_versions: BACKSTAGE_V1,
        fields: &[
            req("type", Shape::Str),
            opt(
                "profile",
                Shape::Custom(specs::group_profile, "object {displayName, email, picture}"),
            ),
            opt("parent", Shape::Ref(GROUP)),
            // Required but may be empty: Backstage wants the hierarchy stated on both sides.
            req("children", Shape::RefList(GROUP)),
            opt("members", Shape::RefList(Some("User"))),
        ],
        extra: None,
    },
    KindRule {
        kind: "User",
        api_versions: BACKSTAGE_V1,
        fields: &[
            opt(
                "profile",
                Shape::Custom(specs::user_profile, "object {displayName, email, picture}"),
            ),
            opt("memberOf", Shape::RefList(GROUP)),
        ],
        extra: None,
    },
    KindRule {
        kind: "Location",
        api_versions: BACKSTAGE_V1,
        fields: &[
            opt("type", Shape::Str),
            opt("target", Shape::Str),
            opt("targets", Shape::StrList),
            opt("presence", Shape::Enum(&["required", "optional"])),
        ],
        extra: None,
    },
    KindRule {
        kind: "Template",
        api_versions: &["scaffolder.backstage.io/v1beta3"],
        fields: &[
            req("type", Shape::Str),
            opt("owner", Shape::Ref(GROUP)),
            opt("lifecycle", Shape::Str),
            opt(
                "parameters",
                Shape::Custom(
                    specs::template_parameters,
                    "JSON Schema object, or a list of them (one per form page)",
                ),
            ),
            opt("secrets", Shape::Object),
            opt("presentation", Shape::Object),
            req(
                "steps",
                Shape::Custom(
                    specs::template_steps,
                    "list of {id, name, action, input, if, each}",
                ),
            ),
            opt(
                "output",
                Shape::Custom(
                    specs::template_output,
                    "object {links: [{title, url, entityRef, icon}], text: [{title, content}], ...}",
                ),
            ),
        ],
        extra: None,
    },
    KindRule {
        kind: "AiResource",
        api_versions: &["backstage.io/v1alpha1"],
        fields: &[
            req("type", Shape::Str),
            req("lifecycle", Shape::Str),
            req("owner", Shape::Ref(GROUP)),
            opt("system", Shape::Ref(SYSTEM)),
            // Defined by Backstage for skills; accepted on every type, defaulting to AiResource.
            opt("dependsOn", Shape::RefList(Some("AiResource"))),
        ],
        extra: Some(specs::ai_resource_by_type),
    },
    KindRule {
        kind: "Model",
        api_versions: &["atrium.dev/v1alpha1"],
        fields: &[
            req("type", Shape::Str),
            req("owner", Shape::Ref(GROUP)),
            req("lifecycle", Shape::Str),
            opt("system", Shape::Ref(SYSTEM)),
            opt("provider", Shape::Str),
            opt(
                "license",
                Shape::Custom(
                    models::spdx_license,
                    "SPDX license expression (Apache-2.0, MIT OR Apache-2.0, ...)",
                ),
            ),
            opt("tasks", Shape::StrList),
            opt("format", Shape::Str),
            opt(
                "versions",
                Shape::Custom(
                    models::model_versions,
                    "list of {name, uri, aliases, metrics, ...}; name and uri required, names and aliases unique",
                ),
            ),
            // Defaults to Model so `dependsOn: [llama-3-base]` names a base model; datasets and
            // other kinds are written with their kind (`resource:imagenet`).
            opt("dependsOn", Shape::RefList(Some("Model"))),
        ],
        extra: None,
    },
];

/// What each accepted kind's `spec` holds, from the same table the checks use, for readers that
/// write or query entities without the docs at hand (the MCP `describe_catalog` tool): per kind its
/// apiVersions and each spec field with whether it is required and its shape. Extra spec fields are
/// allowed, as the module doc says.
pub fn kind_schemas() -> Vec<Value> {
    KINDS
        .iter()
        .map(|rule| {
            let fields: Map<String, Value> = rule
                .fields
                .iter()
                .map(|field| {
                    let mut shape = describe_shape(field.shape);
                    shape.insert("required".to_owned(), Value::Bool(field.required));
                    (field.name.to_owned(), Value::Object(shape))
                })
                .collect();
            serde_json::json!({
                "kind": rule.kind,
                "apiVersions": rule.api_versions,
                "spec": fields,
            })
        })
        .collect()
}

fn describe_shape(shape: Shape) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_owned(), value);
    };
    match shape {
        Shape::Str => put("type", "string".into()),
        Shape::StrList => put("type", "string[]".into()),
        Shape::Ref(kind) | Shape::RefList(kind) => {
            let list = matches!(shape, Shape::RefList(_));
            put(
                "type",
                if list { "entityRef[]" } else { "entityRef" }.into(),
            );
            // Without a default kind a reference must say its kind (`resource:db`).
            put("defaultKind", kind.map_or(Value::Null, Value::from));
        }
        Shape::Enum(values) => {
            put("type", "string".into());
            put("enum", values.to_vec().into());
        }
        Shape::Object => put("type", "object".into()),
        Shape::Custom(_, shape) => put("type", shape.into()),
    }
    out
}

/// The apiVersions a kind accepts, or `None` for a kind Atrium does not know. Kind names are
/// case-sensitive, as in Backstage.
pub fn accepted_api_versions(kind: &str) -> Option<&'static [&'static str]> {
    KINDS
        .iter()
        .find(|k| k.kind == kind)
        .map(|k| k.api_versions)
}

/// Checks an entity against the rules of its kind. `spec` is `None` when absent and
/// `Some(None)` when present but not an object (already reported).
pub(super) fn check_kind(
    api_version: &str,
    kind: &str,
    spec: Option<Option<&Map<String, Value>>>,
    namespace: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(rule) = KINDS.iter().find(|k| k.kind == kind) else {
        errs.push(unknown_kind(kind));
        return;
    };
    if !rule.api_versions.contains(&api_version) {
        errs.push(FieldError::new(
            "kind",
            format!(
                "\"kind\" {kind} does not accept apiVersion \"{api_version}\"; accepted apiVersions: {}",
                rule.api_versions.join(", ")
            ),
        ));
        return;
    }
    match spec {
        None => errs.push(FieldError::new(
            "spec",
            "entity must have required property 'spec'",
        )),
        Some(None) => {}
        Some(Some(spec)) => {
            check_fields(spec, "spec", rule.fields, namespace, errs);
            if let Some(extra) = rule.extra {
                extra(spec, namespace, errs);
            }
        }
    }
}

fn unknown_kind(kind: &str) -> FieldError {
    let accepted: Vec<String> = KINDS
        .iter()
        .map(|k| format!("{} ({})", k.kind, k.api_versions.join(", ")))
        .collect();
    // Files written by hand often get the case wrong (`component`); say which kind was meant.
    let hint = KINDS
        .iter()
        .find(|k| k.kind.eq_ignore_ascii_case(kind))
        .map(|k| format!(" (kinds are case-sensitive: did you mean \"{}\"?)", k.kind))
        .unwrap_or_default();
    FieldError::new(
        "kind",
        format!(
            "\"kind\" {kind} is not a supported kind{hint}; accepted kinds and apiVersions: {}",
            accepted.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::super::relations::REF_FIELDS;
    use super::*;

    #[test]
    fn kinds_are_unique_and_valid() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(super::super::rules::is_valid_kind(k.kind), "{}", k.kind);
            assert!(!k.api_versions.is_empty());
            for v in k.api_versions {
                assert!(super::super::rules::is_valid_api_version(v), "{v}");
            }
            assert!(
                KINDS[i + 1..].iter().all(|o| o.kind != k.kind),
                "{}",
                k.kind
            );
        }
    }

    /// Validation and relation derivation must agree on which fields are references and what
    /// kind they default to, or a reference could validate and then point somewhere else.
    #[test]
    fn relation_fields_match_the_kind_rules() {
        for rf in REF_FIELDS {
            let rule = KINDS
                .iter()
                .find(|k| k.kind == rf.kind)
                .unwrap_or_else(|| panic!("no rule for kind {}", rf.kind));
            let field = rule
                .fields
                .iter()
                .find(|f| f.name == rf.field)
                .unwrap_or_else(|| panic!("{} has no field {}", rf.kind, rf.field));
            let (Shape::Ref(default_kind) | Shape::RefList(default_kind)) = field.shape else {
                panic!("{}.{} is not a reference field", rf.kind, rf.field);
            };
            assert_eq!(default_kind, rf.default_kind, "{}.{}", rf.kind, rf.field);
        }
    }

    #[test]
    fn accepted_api_versions_lookup() {
        assert_eq!(accepted_api_versions("Component"), Some(BACKSTAGE_V1));
        assert_eq!(
            accepted_api_versions("Model"),
            Some(&["atrium.dev/v1alpha1"][..])
        );
        assert_eq!(accepted_api_versions("component"), None);
        assert_eq!(accepted_api_versions("Widget"), None);
    }

    #[test]
    fn unknown_kind_lists_kinds_and_hints_case() {
        let e = unknown_kind("component");
        assert_eq!(e.field, "kind");
        assert!(
            e.message.contains("did you mean \"Component\""),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("Component (backstage.io/v1alpha1, backstage.io/v1beta1)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("Model (atrium.dev/v1alpha1)"));
        let e = unknown_kind("Widget");
        assert!(!e.message.contains("did you mean"));
    }
}
