//! Relations derived from an entity's own spec fields, in both directions.
//!
//! A Component's `spec.owner: team-a` gives `component:default/x ownedBy group:default/team-a`
//! and `group:default/team-a ownerOf component:default/x`. Emitting the reverse edge from the
//! entity that states it is what lets the Group's page list what it owns without the Group's file
//! saying so; the stitcher collects each entity's relations from every entity that mentions it.
//! The fields, default kinds and relation pairs are Backstage's BuiltinKindsEntityProcessor's,
//! plus AiResource (Backstage's catalog model) and Atrium's Model kind.

use std::collections::HashSet;

use serde_json::Value;

use super::refs::{EntityRef, RefDefaults};

pub const RELATION_OWNED_BY: &str = "ownedBy";
pub const RELATION_OWNER_OF: &str = "ownerOf";
pub const RELATION_PART_OF: &str = "partOf";
pub const RELATION_HAS_PART: &str = "hasPart";
pub const RELATION_PROVIDES_API: &str = "providesApi";
pub const RELATION_API_PROVIDED_BY: &str = "apiProvidedBy";
pub const RELATION_CONSUMES_API: &str = "consumesApi";
pub const RELATION_API_CONSUMED_BY: &str = "apiConsumedBy";
pub const RELATION_DEPENDS_ON: &str = "dependsOn";
pub const RELATION_DEPENDENCY_OF: &str = "dependencyOf";
pub const RELATION_MEMBER_OF: &str = "memberOf";
pub const RELATION_HAS_MEMBER: &str = "hasMember";
pub const RELATION_CHILD_OF: &str = "childOf";
pub const RELATION_PARENT_OF: &str = "parentOf";

/// Every relation type, each followed by its reverse.
pub const RELATION_TYPES: &[&str] = &[
    RELATION_OWNED_BY,
    RELATION_OWNER_OF,
    RELATION_PART_OF,
    RELATION_HAS_PART,
    RELATION_PROVIDES_API,
    RELATION_API_PROVIDED_BY,
    RELATION_CONSUMES_API,
    RELATION_API_CONSUMED_BY,
    RELATION_DEPENDS_ON,
    RELATION_DEPENDENCY_OF,
    RELATION_MEMBER_OF,
    RELATION_HAS_MEMBER,
    RELATION_CHILD_OF,
    RELATION_PARENT_OF,
];

/// The reverse of a relation type (`ownedBy` ↔ `ownerOf`), or `None` for an unknown type.
pub fn inverse(relation_type: &str) -> Option<&'static str> {
    let i = RELATION_TYPES.iter().position(|t| *t == relation_type)?;
    RELATION_TYPES.get(i ^ 1).copied()
}

/// A directed edge between two entities.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    pub source: EntityRef,
    pub relation_type: &'static str,
    pub target: EntityRef,
}

/// A spec field that refers to other entities and the relations it gives.
pub(super) struct RefField {
    pub kind: &'static str,
    pub field: &'static str,
    /// Kind of a reference that does not name one; `None` makes naming it mandatory.
    pub default_kind: Option<&'static str>,
    /// From the entity to the referenced one.
    pub outgoing: &'static str,
    /// From the referenced entity back to this one.
    pub incoming: &'static str,
}

const fn rf(
    kind: &'static str,
    field: &'static str,
    default_kind: Option<&'static str>,
    outgoing: &'static str,
    incoming: &'static str,
) -> RefField {
    RefField {
        kind,
        field,
        default_kind,
        outgoing,
        incoming,
    }
}

const GROUP: Option<&str> = Some("Group");
const SYSTEM: Option<&str> = Some("System");
const API: Option<&str> = Some("API");

/// The reference fields of every kind; each may hold one reference or a list, as in Backstage,
/// though validation requires the shape the kind's schema gives. Validation checks that these same fields parse with these
/// same defaults (a test there keeps the two in step).
pub(super) const REF_FIELDS: &[RefField] = &[
    rf(
        "Component",
        "owner",
        GROUP,
        RELATION_OWNED_BY,
        RELATION_OWNER_OF,
    ),
    rf(
        "Component",
        "subcomponentOf",
        Some("Component"),
        RELATION_PART_OF,
        RELATION_HAS_PART,
    ),
    rf(
        "Component",
        "providesApis",
        API,
        RELATION_PROVIDES_API,
        RELATION_API_PROVIDED_BY,
    ),
    rf(
        "Component",
        "consumesApis",
        API,
        RELATION_CONSUMES_API,
        RELATION_API_CONSUMED_BY,
    ),
    rf(
        "Component",
        "dependsOn",
        None,
        RELATION_DEPENDS_ON,
        RELATION_DEPENDENCY_OF,
    ),
    rf(
        "Component",
        "dependencyOf",
        None,
        RELATION_DEPENDENCY_OF,
        RELATION_DEPENDS_ON,
    ),
    rf(
        "Component",
        "system",
        SYSTEM,
        RELATION_PART_OF,
        RELATION_HAS_PART,
    ),
    rf("API", "owner", GROUP, RELATION_OWNED_BY, RELATION_OWNER_OF),
    rf("API", "system", SYSTEM, RELATION_PART_OF, RELATION_HAS_PART),
    rf(
        "Resource",
        "owner",
        GROUP,
        RELATION_OWNED_BY,
        RELATION_OWNER_OF,
    ),
    rf(
        "Resource",
        "dependsOn",
        None,
        RELATION_DEPENDS_ON,
        RELATION_DEPENDENCY_OF,
    ),
    rf(
        "Resource",
        "dependencyOf",
        None,
        RELATION_DEPENDENCY_OF,
        RELATION_DEPENDS_ON,
    ),
    rf(
        "Resource",
        "system",
        SYSTEM,
        RELATION_PART_OF,
        RELATION_HAS_PART,
    ),
    rf(
        "User",
        "memberOf",
        GROUP,
        RELATION_MEMBER_OF,
        RELATION_HAS_MEMBER,
    ),
    rf(
        "Group",
        "parent",
        GROUP,
        RELATION_CHILD_OF,
        RELATION_PARENT_OF,
    ),
    rf(
        "Group",
        "children",
        GROUP,
        RELATION_PARENT_OF,
        RELATION_CHILD_OF,
    ),
    rf(
        "Group",
        "members",
        Some("User"),
        RELATION_HAS_MEMBER,
        RELATION_MEMBER_OF,
    ),
    rf(
        "System",
        "owner",
        GROUP,
        RELATION_OWNED_BY,
        RELATION_OWNER_OF,
    ),
    rf(
        "System",
        "domain",
        Some("Domain"),
        RELATION_PART_OF,
        RELATION_HAS_PART,
    ),
    rf(
        "Domain",
        "owner",
        GROUP,
        RELATION_OWNED_BY,
        RELATION_OWNER_OF,
    ),
    rf(
        "Domain",
        "subdomainOf",
        Some("Domain"),
        RELATION_PART_OF,
        RELATION_HAS_PART,
    ),
    rf(
        "Template",
        "owner",
        GROUP,
        RELATION_OWNED_BY,
        RELATION_OWNER_OF,
    ),
    rf(
        "AiResource",
        "owner",
        GROUP,
        RELATION_OWNED_BY,
        RELATION_OWNER_OF,
    ),
    rf(
        "AiResource",
        "system",
        SYSTEM,
        RELATION_PART_OF,
        RELATION_HAS_PART,
    ),
    rf(
        "AiResource",
        "dependsOn",
        Some("AiResource"),
        RELATION_DEPENDS_ON,
        RELATION_DEPENDENCY_OF,
    ),
    rf(
        "Model",
        "owner",
        GROUP,
        RELATION_OWNED_BY,
        RELATION_OWNER_OF,
    ),
    rf(
        "Model",
        "system",
        SYSTEM,
        RELATION_PART_OF,
        RELATION_HAS_PART,
    ),
    // A bare name is a base model (`dependsOn: [llama-3-base]`); datasets and other kinds are
    // written with their kind (`resource:imagenet`).
    rf(
        "Model",
        "dependsOn",
        Some("Model"),
        RELATION_DEPENDS_ON,
        RELATION_DEPENDENCY_OF,
    ),
];

/// The relations an entity's spec states, each with its reverse, in spec order and without
/// duplicates. References resolve in the entity's own namespace. References that do not parse
/// are skipped here; validation reports them.
pub fn derive_relations(entity: &Value) -> Vec<Relation> {
    let Some(me) = EntityRef::of_entity(entity) else {
        return Vec::new();
    };
    let Some(spec) = entity.get("spec").and_then(Value::as_object) else {
        return Vec::new();
    };

    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // Kinds match exactly, as in Backstage; a mis-cased kind is a validation error anyway.
    for rf in REF_FIELDS.iter().filter(|rf| rf.kind == me.kind) {
        let targets: Vec<&str> = match spec.get(rf.field) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        let defaults = RefDefaults {
            kind: rf.default_kind,
            namespace: &me.namespace,
        };
        for target in targets {
            let Ok(target) = EntityRef::parse(target, defaults) else {
                continue;
            };
            let pair = [
                Relation {
                    source: me.clone(),
                    relation_type: rf.outgoing,
                    target: target.clone(),
                },
                Relation {
                    source: target,
                    relation_type: rf.incoming,
                    target: me.clone(),
                },
            ];
            for rel in pair {
                // Identity is case-insensitive, so `Team-A` and `team-a` are one edge.
                if seen.insert((rel.source.key(), rel.relation_type, rel.target.key())) {
                    out.push(rel);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(s: &str) -> EntityRef {
        EntityRef::parse(s, RefDefaults::default()).expect("test ref")
    }

    /// Relations as `source type target` strings with keys, for compact assertions.
    fn rels(entity: Value) -> Vec<String> {
        derive_relations(&entity)
            .into_iter()
            .map(|x| format!("{} {} {}", x.source.key(), x.relation_type, x.target.key()))
            .collect()
    }

    fn entity(kind: &str, ns: Option<&str>, spec: Value) -> Value {
        let mut md = json!({"name": "me"});
        if let Some(ns) = ns {
            md["namespace"] = json!(ns);
        }
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": md, "spec": spec})
    }

    #[test]
    fn component_all_fields_both_directions() {
        let got = rels(entity(
            "Component",
            None,
            json!({
                "type": "service", "lifecycle": "production",
                "owner": "team-a",
                "subcomponentOf": "parent-svc",
                "providesApis": ["orders-api"],
                "consumesApis": ["api:billing/invoices"],
                "dependsOn": ["resource:orders-db"],
                "dependencyOf": ["component:frontend"],
                "system": "shop"
            }),
        ));
        assert_eq!(
            got,
            [
                "component:default/me ownedBy group:default/team-a",
                "group:default/team-a ownerOf component:default/me",
                "component:default/me partOf component:default/parent-svc",
                "component:default/parent-svc hasPart component:default/me",
                "component:default/me providesApi api:default/orders-api",
                "api:default/orders-api apiProvidedBy component:default/me",
                "component:default/me consumesApi api:billing/invoices",
                "api:billing/invoices apiConsumedBy component:default/me",
                "component:default/me dependsOn resource:default/orders-db",
                "resource:default/orders-db dependencyOf component:default/me",
                "component:default/me dependencyOf component:default/frontend",
                "component:default/frontend dependsOn component:default/me",
                "component:default/me partOf system:default/shop",
                "system:default/shop hasPart component:default/me",
            ]
        );
    }

    #[test]
    fn defaults_to_own_namespace() {
        let got = rels(entity(
            "API",
            Some("payments"),
            json!({"owner": "user:jdoe", "system": "default/core"}),
        ));
        assert_eq!(
            got,
            [
                "api:payments/me ownedBy user:payments/jdoe",
                "user:payments/jdoe ownerOf api:payments/me",
                "api:payments/me partOf system:default/core",
                "system:default/core hasPart api:payments/me",
            ]
        );
    }

    #[test]
    fn resource_relations() {
        let got = rels(entity(
            "Resource",
            None,
            json!({"owner": "team-a", "dependsOn": ["resource:vpc"], "dependencyOf": ["component:svc"], "system": "shop"}),
        ));
        assert!(got.contains(&"resource:default/me dependsOn resource:default/vpc".to_owned()));
        assert!(got.contains(&"resource:default/vpc dependencyOf resource:default/me".to_owned()));
        assert!(got.contains(&"resource:default/me dependencyOf component:default/svc".to_owned()));
        assert!(got.contains(&"component:default/svc dependsOn resource:default/me".to_owned()));
        assert!(got.contains(&"system:default/shop hasPart resource:default/me".to_owned()));
        assert_eq!(got.len(), 8);
    }

    #[test]
    fn org_relations() {
        assert_eq!(
            rels(entity("User", None, json!({"memberOf": ["team-a"]}))),
            [
                "user:default/me memberOf group:default/team-a",
                "group:default/team-a hasMember user:default/me",
            ]
        );
        assert_eq!(
            rels(entity(
                "Group",
                None,
                json!({"type": "team", "parent": "org", "children": ["sub"], "members": ["jdoe"]})
            )),
            [
                "group:default/me childOf group:default/org",
                "group:default/org parentOf group:default/me",
                "group:default/me parentOf group:default/sub",
                "group:default/sub childOf group:default/me",
                "group:default/me hasMember user:default/jdoe",
                "user:default/jdoe memberOf group:default/me",
            ]
        );
    }

    #[test]
    fn system_domain_template_relations() {
        assert_eq!(
            rels(entity(
                "System",
                None,
                json!({"owner": "team-a", "domain": "commerce"})
            ))[2..],
            [
                "system:default/me partOf domain:default/commerce",
                "domain:default/commerce hasPart system:default/me",
            ]
        );
        assert_eq!(
            rels(entity(
                "Domain",
                None,
                json!({"owner": "team-a", "subdomainOf": "commerce"})
            ))[2..],
            [
                "domain:default/me partOf domain:default/commerce",
                "domain:default/commerce hasPart domain:default/me",
            ]
        );
        assert_eq!(
            rels(entity(
                "Template",
                None,
                json!({"owner": "platform", "type": "service", "steps": []})
            )),
            [
                "template:default/me ownedBy group:default/platform",
                "group:default/platform ownerOf template:default/me",
            ]
        );
    }

    #[test]
    fn ai_and_model_relations() {
        assert_eq!(
            rels(entity(
                "AiResource",
                None,
                json!({"type": "skill", "owner": "ai", "system": "tools", "dependsOn": ["base-skill"]})
            ))[4..],
            [
                "airesource:default/me dependsOn airesource:default/base-skill",
                "airesource:default/base-skill dependencyOf airesource:default/me",
            ]
        );
        assert_eq!(
            rels(entity(
                "Model",
                Some("ml"),
                json!({"type": "llm", "owner": "ml-team", "lifecycle": "production", "system": "chat",
                       "dependsOn": ["llama-3-base", "resource:default/imagenet"]})
            )),
            [
                "model:ml/me ownedBy group:ml/ml-team",
                "group:ml/ml-team ownerOf model:ml/me",
                "model:ml/me partOf system:ml/chat",
                "system:ml/chat hasPart model:ml/me",
                "model:ml/me dependsOn model:ml/llama-3-base",
                "model:ml/llama-3-base dependencyOf model:ml/me",
                "model:ml/me dependsOn resource:default/imagenet",
                "resource:default/imagenet dependencyOf model:ml/me",
            ]
        );
    }

    #[test]
    fn keeps_written_case_and_dedupes_case_insensitively() {
        let got = derive_relations(&entity(
            "User",
            None,
            json!({"memberOf": ["Team-A", "team-a", "group:default/TEAM-A"]}),
        ));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].target, EntityRef::new("Group", "default", "Team-A"));
        assert_eq!(got[1].source, EntityRef::new("Group", "default", "Team-A"));
        assert_eq!(got[0].source, EntityRef::new("User", "default", "me"));
        assert_eq!(got[0].source.key(), r("user:default/me").key());
    }

    #[test]
    fn skips_unparseable_and_mistyped_refs() {
        // dependsOn without a kind has no default on a Component, as in Backstage.
        let got = rels(entity(
            "Component",
            None,
            json!({"owner": "", "dependsOn": ["orders-db", 7, "resource:db"], "providesApis": "single-api", "system": 3}),
        ));
        assert_eq!(
            got,
            [
                "component:default/me providesApi api:default/single-api",
                "api:default/single-api apiProvidedBy component:default/me",
                "component:default/me dependsOn resource:default/db",
                "resource:default/db dependencyOf component:default/me",
            ]
        );
    }

    #[test]
    fn nothing_for_incomplete_or_relationless_entities() {
        assert!(rels(json!({"kind": "Component", "spec": {"owner": "a"}})).is_empty());
        assert!(rels(json!({"kind": "Component", "metadata": {"name": "x"}})).is_empty());
        assert!(rels(entity("Location", None, json!({"target": "./a.yaml"}))).is_empty());
        assert!(rels(entity("Widget", None, json!({"owner": "a"}))).is_empty());
        assert!(rels(entity("component", None, json!({"owner": "a"}))).is_empty());
        assert!(rels(json!("not an entity")).is_empty());
    }

    #[test]
    fn inverses() {
        for pair in RELATION_TYPES.chunks(2) {
            assert_eq!(inverse(pair[0]), Some(pair[1]));
            assert_eq!(inverse(pair[1]), Some(pair[0]));
        }
        assert_eq!(inverse("likes"), None);
        for rf in REF_FIELDS {
            assert_eq!(
                inverse(rf.outgoing),
                Some(rf.incoming),
                "{}.{}",
                rf.kind,
                rf.field
            );
        }
    }
}
