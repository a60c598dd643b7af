//! Entity-level validation tests: a valid entity of every kind, then each envelope and metadata
//! rule failing with the field and message it should. The helpers are shared with `kind_tests`.

use serde_json::{Value, json};

use super::*;

pub(super) fn entity(api_version: &str, kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "my-entity"},
        "spec": spec,
    })
}

pub(super) fn v1(kind: &str, spec: Value) -> Value {
    entity("backstage.io/v1alpha1", kind, spec)
}

pub(super) fn component() -> Value {
    v1(
        "Component",
        json!({"type": "service", "lifecycle": "production", "owner": "team-a"}),
    )
}

pub(super) fn model() -> Value {
    entity(
        "atrium.dev/v1alpha1",
        "Model",
        json!({
            "type": "llm",
            "owner": "group:ml/ml-platform",
            "lifecycle": "production",
            "system": "chat",
            "provider": "meta",
            "license": "LicenseRef-llama-3-community",
            "tasks": ["text-generation", "summarization"],
            "format": "safetensors",
            "versions": [
                {"name": "v1", "uri": "hf://meta-llama/Llama-3-8B", "aliases": ["champion"],
                 "metrics": {"mmlu": 0.66, "ttft_ms": 180, "tokens_per_s": 95.5}},
                {"name": "v2", "uri": "oci://registry.example.com/models/llama3:v2"}
            ],
            "dependsOn": ["llama-3-base", "resource:datasets/the-pile"]
        }),
    )
}

/// `(field, message)` pairs, for exact assertions.
pub(super) fn errors(e: &Value) -> Vec<(String, String)> {
    validate_entity(e)
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

pub(super) fn fields(e: &Value) -> Vec<String> {
    validate_entity(e).into_iter().map(|e| e.field).collect()
}

pub(super) fn assert_valid(e: &Value) {
    let errs = validate_entity(e);
    assert!(errs.is_empty(), "{e}\n{errs:#?}");
}

#[test]
fn valid_entities_of_every_kind() {
    let all = [
        component(),
        entity(
            "backstage.io/v1beta1",
            "Component",
            json!({"type": "website", "lifecycle": "experimental", "owner": "user:jdoe",
                   "system": "shop", "subcomponentOf": "shop-backend", "providesApis": ["orders"],
                   "consumesApis": ["api:payments/charge"], "dependsOn": ["resource:db"],
                   "dependencyOf": ["component:frontend"], "custom": {"anything": true}}),
        ),
        v1(
            "API",
            json!({"type": "openapi", "lifecycle": "production", "owner": "team-a",
                   "definition": "openapi: 3.0.0", "system": "shop"}),
        ),
        v1(
            "Resource",
            json!({"type": "database", "owner": "team-a", "dependsOn": ["resource:vpc"],
                   "dependencyOf": ["component:svc"], "system": "shop"}),
        ),
        v1(
            "System",
            json!({"owner": "team-a", "domain": "commerce", "type": "product"}),
        ),
        v1(
            "Domain",
            json!({"owner": "team-a", "subdomainOf": "business", "type": "area"}),
        ),
        v1(
            "Group",
            json!({"type": "team", "profile": {"displayName": "Team A", "email": "a@example.com"},
                   "parent": "org", "children": [], "members": ["jdoe"]}),
        ),
        v1(
            "User",
            json!({"profile": {"displayName": "Jenny Doe"}, "memberOf": ["team-a"]}),
        ),
        v1("User", json!({})),
        v1(
            "Location",
            json!({"type": "url", "targets": ["./a.yaml", "./b.yaml"], "presence": "optional"}),
        ),
        v1("Location", json!({"target": "./catalog-info.yaml"})),
        entity(
            "scaffolder.backstage.io/v1beta3",
            "Template",
            json!({"type": "service", "owner": "platform",
                   "parameters": [{"title": "Name", "properties": {"name": {"type": "string"}}}],
                   "steps": [{"id": "fetch", "name": "Fetch", "action": "fetch:template",
                              "input": {"url": "./skeleton"}, "if": "${{ parameters.name }}"}],
                   "output": {"links": [{"title": "Repo", "url": "${{ steps.publish.output.remoteUrl }}"}]}}),
        ),
        v1(
            "AiResource",
            json!({"type": "skill", "lifecycle": "production", "owner": "ai-platform",
                   "system": "ai-tooling", "agents": ["claude-code"], "license": "Apache-2.0",
                   "dependsOn": ["base-skill"]}),
        ),
        v1(
            "AiResource",
            json!({"type": "rule", "lifecycle": "production", "owner": "frontend",
                   "category": "architecture", "rationale": "consistency",
                   "activation": [{"harness": "codex"}]}),
        ),
        v1(
            "AiResource",
            json!({"type": "plugin", "lifecycle": "production", "owner": "ai",
                   "skills": ["airesource:default/ts"], "version": "1.0.0"}),
        ),
        v1(
            "AiResource",
            json!({"type": "marketplace", "lifecycle": "production", "owner": "ai", "plugins": ["p"]}),
        ),
        v1(
            "AiResource",
            json!({"type": "prompt", "lifecycle": "experimental", "owner": "ai"}),
        ),
        model(),
    ];
    for e in &all {
        assert_valid(e);
    }
}

#[test]
fn stored_entities_with_server_fields_are_valid() {
    let mut e = component();
    e["metadata"]["uid"] = json!("e01199ab-08cc-44c2-8e19-5c29ded82521");
    e["metadata"]["etag"] = json!("abc");
    e["metadata"]["generation"] = json!(3);
    e["metadata"]["annotations"] = json!({
        "backstage.io/managed-by-location": "url:https://example.com/catalog-info.yaml",
        "backstage.io/managed-by-origin-location": "url:https://example.com/catalog-info.yaml",
        "backstage.io/orphan": "true",
        "atrium.dev/orphan": "true",
    });
    e["relations"] = json!([{"type": "ownedBy", "targetRef": "group:default/team-a",
                             "target": {"kind": "group", "namespace": "default", "name": "team-a"}}]);
    e["status"] = json!({"items": []});
    assert_valid(&e);
}

#[test]
fn from_file_rejects_each_server_owned_annotation() {
    for key in SERVER_OWNED_ANNOTATIONS {
        let mut e = component();
        e["metadata"]["annotations"] = json!({ *key: "x", "backstage.io/techdocs-ref": "dir:." });
        assert_valid(&e);
        let errs = validate_entity_from_file(&e);
        assert_eq!(errs.len(), 1, "{key}");
        assert_eq!(errs[0].field, format!("metadata.annotations.{key}"));
        assert_eq!(
            errs[0].message,
            format!(
                "\"metadata.annotations.{key}\" is set by the server and may not be set in a catalog file"
            )
        );
    }
    assert!(validate_entity_from_file(&model()).is_empty());
}

#[test]
fn envelope_errors() {
    assert_eq!(
        errors(&json!([])),
        [("".to_owned(), "entity must be object".to_owned())]
    );
    assert_eq!(
        errors(&json!({"extra": 1})),
        [
            ("extra", "Unknown field extra"),
            (
                "apiVersion",
                "entity must have required property 'apiVersion'"
            ),
            ("kind", "entity must have required property 'kind'"),
            ("metadata", "entity must have required property 'metadata'"),
        ]
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
    );
    let mut e = component();
    e["apiVersion"] = json!("a#b");
    e["kind"] = json!(7);
    e["metadata"] = json!("x");
    e["spec"] = json!([]);
    assert_eq!(
        errors(&e),
        [
            ("apiVersion", "\"apiVersion\" is not valid; expected a valid prefix and/or suffix but found \"a#b\""),
            ("kind", "\"kind\" is not valid; expected a string that is a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters in total but found \"7\""),
            ("metadata", "\"metadata\" must be object"),
            ("spec", "\"spec\" must be object"),
        ]
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
    );
    let mut e = component();
    e["relations"] = json!([{"targetRef": ""}]);
    e["status"] = json!([]);
    assert_eq!(
        fields(&e),
        ["relations.0.type", "relations.0.targetRef", "status"]
    );
}

#[test]
fn metadata_name_and_namespace() {
    let mut e = component();
    e["metadata"] = json!({"namespace": "Bad_NS"});
    assert_eq!(
        errors(&e),
        [
            ("metadata.name".to_owned(), "\"metadata\" must have required property 'name'".to_owned()),
            ("metadata.namespace".to_owned(), "\"metadata.namespace\" is not valid; expected a string that is sequences of [a-z0-9] separated by [-], at most 63 characters in total but found \"Bad_NS\"".to_owned()),
        ]
    );
    for bad in [
        json!("my service"),
        json!("-x"),
        json!(7),
        json!("a".repeat(64)),
    ] {
        e["metadata"] = json!({"name": bad});
        let got = errors(&e);
        assert_eq!(got.len(), 1, "{bad}");
        assert_eq!(got[0].0, "metadata.name");
        assert_eq!(
            got[0].1,
            format!(
                "\"metadata.name\" is not valid; expected a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total but found \"{}\"",
                rules::shown(&bad)
            )
        );
    }
}

#[test]
fn metadata_title_description_and_server_fields() {
    let mut e = component();
    e["metadata"]["title"] = json!("");
    e["metadata"]["description"] = json!(5);
    e["metadata"]["uid"] = json!(1);
    e["metadata"]["generation"] = json!(0);
    assert_eq!(
        fields(&e),
        [
            "metadata.title",
            "metadata.description",
            "metadata.uid",
            "metadata.generation"
        ]
    );
}

#[test]
fn labels_and_annotations() {
    let mut e = component();
    e["metadata"]["labels"] = json!({"backstage.io/custom": "ValueStuff", "empty": "", "a#b": "v", "k": "a#b", "n": null});
    e["metadata"]["annotations"] =
        json!({"example.com/bindings": "are-secret", "a#b": "v", "num": 7});
    assert_eq!(
        errors(&e),
        [
            ("metadata.labels.a#b", "\"metadata.labels.a#b\" is not valid; expected a valid prefix and/or suffix but found \"a#b\""),
            ("metadata.labels.k", "\"metadata.labels.k\" is not valid; expected a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total but found \"a#b\""),
            ("metadata.labels.n", "\"metadata.labels.n\" must have a value"),
            ("metadata.annotations.a#b", "\"metadata.annotations.a#b\" is not valid; expected a valid prefix and/or suffix but found \"a#b\""),
            ("metadata.annotations.num", "\"metadata.annotations.num\" is not valid; expected a string but found \"7\""),
        ]
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
    );
    e["metadata"]["labels"] = json!(["x"]);
    assert_eq!(fields(&e)[0], "metadata.labels");
}

#[test]
fn tags() {
    let mut e = component();
    e["metadata"]["tags"] = json!(["java", "c++", "lang:go", "Hello World", 3]);
    assert_eq!(
        errors(&e),
        [
            ("metadata.tags.3", "\"metadata.tags.3\" is not valid; expected a string that is sequences of [a-z0-9:+#] separated by [-], at most 63 characters in total but found \"Hello World\""),
            ("metadata.tags.4", "\"metadata.tags.4\" is not valid; expected a string that is sequences of [a-z0-9:+#] separated by [-], at most 63 characters in total but found \"3\""),
        ]
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
    );
    e["metadata"]["tags"] = json!("java");
    assert_eq!(fields(&e), ["metadata.tags"]);
}

#[test]
fn links() {
    let mut e = component();
    e["metadata"]["links"] = json!([
        {"url": "https://example.org", "title": "Website", "icon": "website", "type": "docs"},
        {"url": "mailto:team@example.com"},
        {"url": "javascript:alert(1)"},
        {},
        {"url": "http://x", "title": " ", "icon": "not good", "type": 3},
        "https://example.org"
    ]);
    assert_eq!(
        errors(&e),
        [
            ("metadata.links.2.url", "\"metadata.links.2.url\" is not valid; expected a string that is a valid url with scheme http, https or mailto but found \"javascript:alert(1)\""),
            ("metadata.links.3.url", "\"metadata.links.3\" must have required property 'url'"),
            ("metadata.links.4.title", "\"metadata.links.4.title\" is not valid; expected a non empty string but found \" \""),
            ("metadata.links.4.icon", "\"metadata.links.4.icon\" is not valid; expected a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total but found \"not good\""),
            ("metadata.links.4.type", "\"metadata.links.4.type\" must be string"),
            ("metadata.links.5", "\"metadata.links.5\" must be object"),
        ]
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
    );
}

#[test]
fn reports_every_problem_at_once() {
    let e = json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "bad name", "tags": ["UPPER"], "links": [{"url": "ftp://x"}]},
        "spec": {"type": "service", "owner": "user:"},
    });
    assert_eq!(
        fields(&e),
        [
            "metadata.name",
            "metadata.tags.0",
            "metadata.links.0.url",
            "spec.lifecycle",
            "spec.owner"
        ]
    );
}

#[test]
fn field_error_serializes_and_displays() {
    let err = FieldError::new("metadata.name", "\"metadata.name\" is bad");
    assert_eq!(
        serde_json::to_value(&err).expect("serializes"),
        json!({"field": "metadata.name", "message": "\"metadata.name\" is bad"})
    );
    assert_eq!(err.to_string(), "\"metadata.name\" is bad");
}
