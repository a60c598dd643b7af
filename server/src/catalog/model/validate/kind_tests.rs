//! Entity-level tests of the kind rules: apiVersion combinations, required spec fields, field
//! types and references, and each kind's own rules.

use serde_json::json;

use super::kinds;
use super::tests::{assert_valid, entity, errors, fields, model, v1};

#[test]
fn kind_and_api_version_combinations() {
    let e = entity("backstage.io/v2", "Component", json!({}));
    assert_eq!(
        errors(&e),
        [("kind".to_owned(), "\"kind\" Component does not accept apiVersion \"backstage.io/v2\"; accepted apiVersions: backstage.io/v1alpha1, backstage.io/v1beta1".to_owned())]
    );
    // Backstage's old catalog-model apiVersion for templates is not the scaffolder's.
    let e = entity(
        "backstage.io/v1beta3",
        "Template",
        json!({"type": "x", "steps": []}),
    );
    assert!(
        errors(&e)[0]
            .1
            .contains("accepted apiVersions: scaffolder.backstage.io/v1beta3")
    );
    let e = entity("backstage.io/v1alpha1", "Model", json!({}));
    assert!(
        errors(&e)[0]
            .1
            .contains("accepted apiVersions: atrium.dev/v1alpha1")
    );
    let e = entity("backstage.io/v1beta1", "AiResource", json!({}));
    assert!(
        errors(&e)[0]
            .1
            .contains("accepted apiVersions: backstage.io/v1alpha1")
    );

    let e = v1("Widget", json!({}));
    let got = errors(&e);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "kind");
    assert!(got[0].1.starts_with("\"kind\" Widget is not a supported kind; accepted kinds and apiVersions: Component (backstage.io/v1alpha1, backstage.io/v1beta1); API"));
}

#[test]
fn spec_required_for_every_kind() {
    for rule in kinds::KINDS {
        let mut e = entity(rule.api_versions[0], rule.kind, json!({}));
        e.as_object_mut().map(|o| o.remove("spec"));
        assert_eq!(
            errors(&e),
            [(
                "spec".to_owned(),
                "entity must have required property 'spec'".to_owned()
            )],
            "{}",
            rule.kind
        );
    }
}

#[test]
fn required_spec_fields_per_kind() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "backstage.io/v1alpha1",
            "Component",
            &["type", "lifecycle", "owner"],
        ),
        (
            "backstage.io/v1alpha1",
            "API",
            &["type", "lifecycle", "owner", "definition"],
        ),
        ("backstage.io/v1alpha1", "Resource", &["type", "owner"]),
        ("backstage.io/v1alpha1", "System", &["owner"]),
        ("backstage.io/v1alpha1", "Domain", &["owner"]),
        ("backstage.io/v1alpha1", "Group", &["type", "children"]),
        ("backstage.io/v1alpha1", "User", &[]),
        ("backstage.io/v1alpha1", "Location", &[]),
        (
            "scaffolder.backstage.io/v1beta3",
            "Template",
            &["type", "steps"],
        ),
        (
            "backstage.io/v1alpha1",
            "AiResource",
            &["type", "lifecycle", "owner"],
        ),
        (
            "atrium.dev/v1alpha1",
            "Model",
            &["type", "owner", "lifecycle"],
        ),
    ];
    for (api_version, kind, required) in cases {
        let got = errors(&entity(api_version, kind, json!({})));
        let want: Vec<(String, String)> = required
            .iter()
            .map(|f| {
                (
                    format!("spec.{f}"),
                    format!("\"spec\" must have required property '{f}'"),
                )
            })
            .collect();
        assert_eq!(got, want, "{kind}");
    }
}

#[test]
fn spec_field_types() {
    let e = v1(
        "Component",
        json!({"type": "", "lifecycle": 1, "owner": ["team-a"], "providesApis": "x",
               "consumesApis": [""], "system": null}),
    );
    assert_eq!(
        errors(&e),
        [
            (
                "spec.type",
                "\"spec.type\" must NOT have fewer than 1 characters"
            ),
            ("spec.lifecycle", "\"spec.lifecycle\" must be string"),
            ("spec.owner", "\"spec.owner\" must be string"),
            ("spec.system", "\"spec.system\" must be string"),
            ("spec.providesApis", "\"spec.providesApis\" must be array"),
            (
                "spec.consumesApis.0",
                "\"spec.consumesApis.0\" must NOT have fewer than 1 characters"
            ),
        ]
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
    );
}

#[test]
fn spec_refs_must_parse() {
    let e = v1(
        "Component",
        json!({"type": "service", "lifecycle": "production", "owner": "group:",
               "dependsOn": ["orders-db", "resource:orders-db"], "subcomponentOf": "a:/b"}),
    );
    assert_eq!(
        errors(&e),
        [
            ("spec.owner", "\"spec.owner\" is not a valid entity reference: Entity reference \"group:\" was not on the form [<kind>:][<namespace>/]<name>"),
            ("spec.subcomponentOf", "\"spec.subcomponentOf\" is not a valid entity reference: Entity reference \"a:/b\" was not on the form [<kind>:][<namespace>/]<name>"),
            ("spec.dependsOn.0", "\"spec.dependsOn.0\" is not a valid entity reference: Entity reference \"orders-db\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"),
        ]
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
    );
    let e = v1(
        "Group",
        json!({"type": "team", "children": ["ok", ":x"], "members": ["/u"], "parent": 3}),
    );
    assert_eq!(
        fields(&e),
        ["spec.parent", "spec.children.1", "spec.members.0"]
    );
    let e = v1("User", json!({"memberOf": "team-a"}));
    assert_eq!(fields(&e), ["spec.memberOf"]);
}

#[test]
fn location_rules() {
    let e = v1(
        "Location",
        json!({"type": "", "target": 1, "targets": [""], "presence": "maybe"}),
    );
    let got = errors(&e);
    assert_eq!(
        got.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        [
            "spec.type",
            "spec.target",
            "spec.targets.0",
            "spec.presence"
        ]
    );
    assert_eq!(
        got[3].1,
        "\"spec.presence\" must be equal to one of the allowed values: required, optional"
    );
}

#[test]
fn template_rules() {
    let e = entity(
        "scaffolder.backstage.io/v1beta3",
        "Template",
        json!({"type": "service", "owner": "", "parameters": 3, "steps": [{"input": "x"}], "output": []}),
    );
    assert_eq!(
        fields(&e),
        [
            "spec.owner",
            "spec.parameters",
            "spec.steps.0.action",
            "spec.steps.0.input",
            "spec.output"
        ]
    );
}

#[test]
fn ai_resource_rules() {
    let rule = v1(
        "AiResource",
        json!({"type": "rule", "lifecycle": "production", "owner": "x", "activation": []}),
    );
    assert_eq!(
        fields(&rule),
        ["spec.category", "spec.rationale", "spec.activation"]
    );
    let plugin = v1(
        "AiResource",
        json!({"type": "plugin", "lifecycle": "production", "owner": "x", "version": 1}),
    );
    assert_eq!(fields(&plugin), ["spec.skills", "spec.version"]);
    let market = v1(
        "AiResource",
        json!({"type": "marketplace", "lifecycle": "production", "owner": "x", "plugins": [""]}),
    );
    assert_eq!(fields(&market), ["spec.plugins.0"]);
    let skill = v1(
        "AiResource",
        json!({"type": "skill", "lifecycle": "production", "owner": "x", "agents": "claude", "dependsOn": ["a:"]}),
    );
    assert_eq!(fields(&skill), ["spec.dependsOn.0", "spec.agents"]);
    let untyped = v1(
        "AiResource",
        json!({"type": 3, "lifecycle": "p", "owner": "x", "category": 1}),
    );
    assert_eq!(fields(&untyped), ["spec.type"]);
}

#[test]
fn model_rules() {
    let mut e = model();
    e["spec"]["license"] = json!("Llama 3 Community License");
    e["spec"]["tasks"] = json!(["ok", 1]);
    e["spec"]["format"] = json!("");
    e["spec"]["provider"] = json!(["meta"]);
    e["spec"]["system"] = json!("system:");
    e["spec"]["versions"] =
        json!([{"name": "v1", "uri": "ftp://x/m", "aliases": ["a"], "metrics": {"acc": "high"}}]);
    e["spec"]["dependsOn"] = json!(["", "model:ns/"]);
    assert_eq!(
        fields(&e),
        [
            "spec.system",
            "spec.provider",
            "spec.license",
            "spec.tasks.1",
            "spec.format",
            "spec.versions.0.uri",
            "spec.versions.0.metrics.acc",
            "spec.dependsOn.0",
            "spec.dependsOn.1",
        ]
    );
    let got = errors(&e);
    assert!(
        got[2]
            .1
            .ends_with("but found \"Llama 3 Community License\"")
    );
    e["spec"]["versions"] = json!({"v1": "hf://a"});
    assert!(fields(&e).contains(&"spec.versions".to_owned()));
}

#[test]
fn refs_resolve_in_the_entitys_namespace_without_errors() {
    let mut e = model();
    e["metadata"]["namespace"] = json!("ml");
    assert_valid(&e);
}
