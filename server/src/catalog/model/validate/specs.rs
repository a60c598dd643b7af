//! Spec rules of Backstage's kinds that a field table cannot express: nested objects (profiles,
//! template parameters, steps and outputs), API's and AiResource's per-type fields.

use serde_json::{Map, Value};

use super::FieldError;
use super::rules::{
    check_array, check_enum, check_object, check_string, check_string_list, check_string_or_bool,
    join, missing, wrong_type,
};
use super::shape::{Field, Shape, check_fields, opt, req};

/// Checks that each listed key, when present, is a non-empty string.
fn strings_if_present(
    path: &str,
    obj: &Map<String, Value>,
    keys: &[&str],
    errs: &mut Vec<FieldError>,
) {
    for key in keys {
        if let Some(v) = obj.get(*key) {
            check_string(&join(path, key), v, errs);
        }
    }
}

const PROFILE_KEYS: &[&str] = &["displayName", "email", "picture"];

/// `spec.profile` of a Group.
pub(super) fn group_profile(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    if let Some(p) = check_object(path, v, errs) {
        strings_if_present(path, p, PROFILE_KEYS, errs);
    }
}

/// `spec.profile` of a User: the Group fields plus the personal ones Backstage's schema lists.
pub(super) fn user_profile(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    let Some(p) = check_object(path, v, errs) else {
        return;
    };
    strings_if_present(path, p, PROFILE_KEYS, errs);
    let personal = [
        "pronouns",
        "jobTitle",
        "startDateISO",
        "manager",
        "timezoneISO",
        "location",
        "directMessageURL",
    ];
    strings_if_present(path, p, &personal, errs);
    if let Some(handles) = p.get("externalHandles") {
        let hp = join(path, "externalHandles");
        if let Some(h) = check_object(&hp, handles, errs) {
            for (k, v) in h {
                check_string(&join(&hp, k), v, errs);
            }
        }
    }
}

/// `spec.parameters` of a Template: one JSON Schema object, or a list of them (one per form page).
pub(super) fn template_parameters(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    match v {
        Value::Object(_) => {}
        Value::Array(pages) => {
            for (i, page) in pages.iter().enumerate() {
                check_object(&join(path, i), page, errs);
            }
        }
        _ => errs.push(wrong_type(path, "object or array of objects")),
    }
}

/// `spec.steps` of a Template: each step needs the action it runs.
pub(super) fn template_steps(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    check_array(path, v, errs, |sp, step, errs| {
        let Some(step) = check_object(sp, step, errs) else {
            return;
        };
        match step.get("action") {
            None => errs.push(missing(sp, "action")),
            Some(a) => {
                check_string(&join(sp, "action"), a, errs);
            }
        }
        for key in ["id", "name"] {
            if let Some(v) = step.get(key)
                && !v.is_string()
            {
                errs.push(wrong_type(&join(sp, key), "string"));
            }
        }
        if let Some(input) = step.get("input") {
            check_object(&join(sp, "input"), input, errs);
        }
        if let Some(cond) = step.get("if") {
            check_string_or_bool(&join(sp, "if"), cond, errs);
        }
    });
}

/// `spec.output` of a Template: `links` and `text` lists, every other key a (templated) string.
pub(super) fn template_output(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    let Some(out) = check_object(path, v, errs) else {
        return;
    };
    for (key, value) in out {
        let p = join(path, key);
        match key.as_str() {
            "links" => check_output_items(&p, value, &["url", "entityRef", "title", "icon"], errs),
            "text" => {
                check_output_items(&p, value, &["title", "icon"], errs);
                // `content` may be empty (a step may render nothing), so only its type is checked.
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(c) = item.get("content")
                            && !c.is_string()
                        {
                            errs.push(wrong_type(&join(&join(&p, i), "content"), "string"));
                        }
                    }
                }
            }
            _ => {
                if !value.is_string() {
                    errs.push(wrong_type(&p, "string"));
                }
            }
        }
    }
}

fn check_output_items(path: &str, v: &Value, string_keys: &[&str], errs: &mut Vec<FieldError>) {
    check_array(path, v, errs, |ip, item, errs| {
        if let Some(item) = check_object(ip, item, errs) {
            strings_if_present(ip, item, string_keys, errs);
            if let Some(cond) = item.get("if") {
                check_string_or_bool(&join(ip, "if"), cond, errs);
            }
        }
    });
}

/// AiResource fields that depend on `spec.type`, per Backstage's per-type schemas. Types without
/// a schema of their own (e.g. `prompt`, `agent`) only have the common fields.
pub(super) fn ai_resource_by_type(
    spec: &Map<String, Value>,
    namespace: &str,
    errs: &mut Vec<FieldError>,
) {
    const AI: Option<&str> = Some("AiResource");
    const SKILL: &[Field] = &[
        opt("disciplines", Shape::StrList),
        opt("categories", Shape::StrList),
        opt("agents", Shape::StrList),
        opt("allowedTools", Shape::StrList),
        opt("license", Shape::Str),
        opt("compatibility", Shape::Str),
    ];
    const RULE: &[Field] = &[
        opt("disciplines", Shape::StrList),
        req("category", Shape::Str),
        req("rationale", Shape::Str),
        opt(
            "activation",
            Shape::Custom(
                rule_activation,
                "list of {harness: claude|cursor|codex, ...}",
            ),
        ),
    ];
    const PLUGIN: &[Field] = &[
        req("skills", Shape::RefList(AI)),
        opt("version", Shape::Str),
    ];
    const MARKETPLACE: &[Field] = &[
        req("plugins", Shape::RefList(AI)),
        opt("version", Shape::Str),
    ];

    let fields = match spec.get("type").and_then(Value::as_str) {
        Some("skill") => SKILL,
        Some("rule") => RULE,
        Some("plugin") => PLUGIN,
        Some("marketplace") => MARKETPLACE,
        _ => return,
    };
    check_fields(spec, "spec", fields, namespace, errs);
}

/// API fields that depend on `spec.type`. An `mcp-server` API (Backstage's AI-model module,
/// `API.v1alpha1.mcp-server` schema) lists its transports in `remotes` and needs no `definition`;
/// every other type needs a `definition`.
pub(super) fn api_by_type(spec: &Map<String, Value>, namespace: &str, errs: &mut Vec<FieldError>) {
    const DEFINITION: &[Field] = &[req("definition", Shape::Str)];
    const MCP_SERVER: &[Field] = &[req(
        "remotes",
        Shape::Custom(mcp_remotes, "list of {type, url} (at least one)"),
    )];
    let fields = match spec.get("type").and_then(Value::as_str) {
        Some("mcp-server") => MCP_SERVER,
        _ => DEFINITION,
    };
    check_fields(spec, "spec", fields, namespace, errs);
}

/// `spec.remotes` of an MCP server: at least one `{type, url}` transport.
fn mcp_remotes(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    const REMOTE: &[Field] = &[req("type", Shape::Str), req("url", Shape::Str)];
    if is_empty_array(path, v, errs) {
        return;
    }
    check_array(path, v, errs, |ip, item, errs| {
        if let Some(item) = check_object(ip, item, errs) {
            // No reference fields here, so the namespace does not matter.
            check_fields(item, ip, REMOTE, "", errs);
        }
    });
}

/// Reports an empty array where JSON Schema says `minItems: 1`.
fn is_empty_array(path: &str, v: &Value, errs: &mut Vec<FieldError>) -> bool {
    let empty = v.as_array().is_some_and(Vec::is_empty);
    if empty {
        errs.push(FieldError::new(
            path,
            format!("\"{path}\" must NOT have fewer than 1 items"),
        ));
    }
    empty
}

/// `spec.activation` of an AiResource rule: how each agent harness picks the rule up.
fn rule_activation(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    if is_empty_array(path, v, errs) {
        return;
    }
    check_array(path, v, errs, |ip, item, errs| {
        let Some(item) = check_object(ip, item, errs) else {
            return;
        };
        let allowed: &[&str] = match item.get("harness") {
            None => {
                errs.push(missing(ip, "harness"));
                return;
            }
            Some(h) => match h.as_str() {
                Some("claude") => &["harness", "paths", "description"],
                Some("cursor") => &["harness", "alwaysApply", "globs", "description"],
                Some("codex") => &["harness"],
                _ => {
                    check_enum(
                        &join(ip, "harness"),
                        h,
                        &["claude", "cursor", "codex"],
                        errs,
                    );
                    return;
                }
            },
        };
        for key in item.keys() {
            if !allowed.contains(&key.as_str()) {
                errs.push(FieldError::new(
                    join(ip, key),
                    format!("\"{ip}\" must NOT have additional property '{key}'"),
                ));
            }
        }
        for list in ["paths", "globs"] {
            if let Some(v) = item.get(list).filter(|_| allowed.contains(&list)) {
                check_string_list(&join(ip, list), v, errs);
            }
        }
        if let Some(d) = item
            .get("description")
            .filter(|_| allowed.contains(&"description"))
        {
            check_string(&join(ip, "description"), d, errs);
        }
        if let Some(a) = item
            .get("alwaysApply")
            .filter(|_| allowed.contains(&"alwaysApply"))
            && !a.is_boolean()
        {
            errs.push(wrong_type(&join(ip, "alwaysApply"), "boolean"));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(check: fn(&str, &Value, &mut Vec<FieldError>), v: Value) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        check("spec.x", &v, &mut errs);
        errs.into_iter().map(|e| (e.field, e.message)).collect()
    }

    fn fields(check: fn(&str, &Value, &mut Vec<FieldError>), v: Value) -> Vec<String> {
        run(check, v).into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn template_steps_rules() {
        assert!(
            run(
                template_steps,
                json!([{"id": "a", "action": "fetch:template", "input": {}, "if": true}])
            )
            .is_empty()
        );
        assert_eq!(
            fields(
                template_steps,
                json!([{"name": 1}, {"action": "", "input": [], "if": 1}, 7])
            ),
            [
                "spec.x.0.action",
                "spec.x.0.name",
                "spec.x.1.action",
                "spec.x.1.input",
                "spec.x.1.if",
                "spec.x.2"
            ]
        );
        assert_eq!(fields(template_steps, json!({"action": "x"})), ["spec.x"]);
    }

    #[test]
    fn template_parameters_rules() {
        assert!(run(template_parameters, json!({"properties": {}})).is_empty());
        assert!(run(template_parameters, json!([{"title": "a"}, {"title": "b"}])).is_empty());
        assert_eq!(fields(template_parameters, json!([{}, "x"])), ["spec.x.1"]);
        assert_eq!(
            run(template_parameters, json!("x"))[0].1,
            "\"spec.x\" must be object or array of objects"
        );
    }

    #[test]
    fn template_output_rules() {
        let ok = json!({
            "links": [{"title": "Repo", "url": "${{ steps.publish.output.remoteUrl }}"}, {"entityRef": "component:default/x", "if": "${{ x }}"}],
            "text": [{"title": "Done", "content": ""}],
            "catalogInfoUrl": "${{ steps.register.output.catalogInfoUrl }}"
        });
        assert!(run(template_output, ok).is_empty());
        assert_eq!(
            fields(
                template_output,
                json!({"links": [{"url": ""}, 3], "text": [{"content": 1}], "n": 5})
            ),
            [
                "spec.x.links.0.url",
                "spec.x.links.1",
                "spec.x.text.0.content",
                "spec.x.n"
            ]
        );
    }

    #[test]
    fn profiles() {
        assert!(
            run(
                group_profile,
                json!({"displayName": "Infra", "email": "i@x.org"})
            )
            .is_empty()
        );
        assert_eq!(
            fields(group_profile, json!({"displayName": ""})),
            ["spec.x.displayName"]
        );
        assert_eq!(fields(group_profile, json!("x")), ["spec.x"]);
        assert!(
            run(
                user_profile,
                json!({"jobTitle": "Eng", "externalHandles": {"github": "jd"}})
            )
            .is_empty()
        );
        assert_eq!(
            fields(
                user_profile,
                json!({"pronouns": 1, "externalHandles": {"github": ""}})
            ),
            ["spec.x.pronouns", "spec.x.externalHandles.github"]
        );
    }

    #[test]
    fn mcp_server_apis_need_remotes_instead_of_a_definition() {
        let check = |spec: Value| {
            let mut errs = Vec::new();
            api_by_type(spec.as_object().expect("spec"), "default", &mut errs);
            errs.into_iter()
                .map(|e| (e.field, e.message))
                .collect::<Vec<_>>()
        };
        let remote = json!({"type": "streamable-http", "url": "https://mcp.example.com/v1"});
        assert!(check(json!({"type": "mcp-server", "remotes": [remote]})).is_empty());
        assert!(check(json!({"type": "openapi", "definition": "openapi: 3.0.0"})).is_empty());
        assert_eq!(
            check(json!({"type": "mcp-server"})),
            [(
                "spec.remotes".to_owned(),
                "\"spec\" must have required property 'remotes'".to_owned()
            )]
        );
        assert_eq!(
            check(json!({"type": "openapi", "remotes": [remote]}))[0].0,
            "spec.definition"
        );
        assert_eq!(
            check(json!({"type": "mcp-server", "remotes": []}))[0].1,
            "\"spec.remotes\" must NOT have fewer than 1 items"
        );
        let fields: Vec<String> =
            check(json!({"type": "mcp-server", "remotes": [{"type": ""}, 3]}))
                .into_iter()
                .map(|(f, _)| f)
                .collect();
        assert_eq!(
            fields,
            [
                "spec.remotes.0.type",
                "spec.remotes.0.url",
                "spec.remotes.1"
            ]
        );
    }

    #[test]
    fn activation_rules() {
        let ok = json!([
            {"harness": "claude", "paths": ["src/**"], "description": "when editing src"},
            {"harness": "cursor", "alwaysApply": true, "globs": ["*.ts"]},
            {"harness": "codex"}
        ]);
        assert!(run(rule_activation, ok).is_empty());
        assert_eq!(
            run(rule_activation, json!([]))[0].1,
            "\"spec.x\" must NOT have fewer than 1 items"
        );
        let got = run(
            rule_activation,
            json!([{"harness": "vim"}, {}, {"harness": "codex", "paths": []}, {"harness": "cursor", "alwaysApply": "yes"}]),
        );
        let f: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            f,
            [
                "spec.x.0.harness",
                "spec.x.1.harness",
                "spec.x.2.paths",
                "spec.x.3.alwaysApply"
            ]
        );
        assert_eq!(
            got[2].1,
            "\"spec.x.2\" must NOT have additional property 'paths'"
        );
    }
}
