//! Limits, error messages and the `render_value` type and drop rules. Comparisons with Backstage's
//! own renderer are in `server/tests/scaffolder_expressions.rs`.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn ctx() -> Json {
    json!({
        "parameters": {"name": "svc", "port": 8080, "enabled": true, "tags": ["a", "b"], "empty": ""},
        "steps": {"fetch": {"output": {"url": "https://x"}}},
    })
}

fn text(template: &str) -> Result<String, ExprError> {
    Expressions::default().render_text(template, &ctx())
}

#[test]
fn endless_loop_runs_out_of_fuel_quickly() {
    let started = Instant::now();
    let err =
        text("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")
            .err()
            .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("ran out of fuel (possible endless loop)")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn recursive_macro_is_stopped() {
    let err = text("{% macro f(n) %}${{ f(n + 1) }}{% endmacro %}${{ f(0) }}");
    assert!(err.is_err(), "{err:?}");
}

#[test]
fn huge_output_is_refused() {
    let small = Expressions::new(Limits {
        fuel: 5_000_000,
        max_output_bytes: 1000,
    });
    let err = small
        .render_text("{% for i in range(2000) %}x{% endfor %}", &ctx())
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("output larger than 1000 bytes")),
        "{err:?}"
    );
    // A value that is too large fails the same way in render_value.
    let err = small
        .render_value(&json!("${{ 'x' * 5000 }}"), &ctx())
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("output larger than 1000 bytes")),
        "{err:?}"
    );
}

#[test]
fn huge_string_repeat_is_refused_before_allocation() {
    let started = Instant::now();
    assert!(text("${{ 'x' * 100000000 }}").is_err());
    assert!(text("${{ 'xxxxxxxxxx' * 100000000000 }}").is_err());
    assert!(text("${{ range(1000000000) | length }}").is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn no_template_loading() {
    for t in [
        "{% include 'x.txt' %}",
        "{% import 'x.txt' as x %}",
        "{% extends 'x.txt' %}",
    ] {
        assert!(text(t).is_err(), "{t}");
    }
}

#[test]
fn syntax_errors_say_where() {
    let err = text("line one\n${{ parameters.name | }}").err();
    let Some(ExprError::Syntax { line, ref at, .. }) = err else {
        panic!("{err:?}");
    };
    assert_eq!(line, 2);
    assert!(at.contains("line one"), "{at}");

    let err = Expressions::default()
        .render_value(
            &json!({"values": {"name": "${{ parameters.name | }}"}}),
            &ctx(),
        )
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.starts_with(
            "input.values.name (template \"${{ parameters.name | }}\"): syntax error"
        )),
        "{err:?}"
    );
}

#[test]
fn render_errors_say_what() {
    let err = text("${{ parameters.name | nosuchfilter }}")
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("nosuchfilter")),
        "{err:?}"
    );
    let err = text("${{ nosuchfunction() }}").err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("nosuchfunction")),
        "{err:?}"
    );
}

#[test]
fn undefined_is_lenient_like_nunjucks() {
    assert_eq!(text("[${{ parameters.nme }}]").ok().as_deref(), Some("[]"));
    assert_eq!(text("[${{ a.b.c }}]").ok().as_deref(), Some("[]"));
}

#[test]
fn render_value_keeps_types_and_drops_undefined() {
    let engine = Expressions::default();
    let input = json!({
        "port": "${{ parameters.port }}",
        "enabled": "${{ parameters.enabled }}",
        "tags": "${{ parameters.tags }}",
        "label": "port ${{ parameters.port }}",
        "missing": "${{ parameters.missing }}",
        "emptyText": "${{ parameters.empty }}",
        "list": ["${{ parameters.missing }}", "${{ parameters.name }}", 3],
        "nested": {"url": "${{ steps.fetch.output.url }}", "plain": "no tags", "n": null},
    });
    let out = engine.render_value(&input, &ctx()).ok();
    assert_eq!(
        out,
        Some(json!({
            "port": 8080,
            "enabled": true,
            "tags": ["a", "b"],
            "label": "port 8080",
            "emptyText": "",
            "list": [null, "svc", 3],
            "nested": {"url": "https://x", "plain": "no tags", "n": null},
        }))
    );
    assert_eq!(
        engine
            .render_value_at("each", &json!("${{ parameters.missing }}"), &ctx())
            .ok(),
        Some(None)
    );
}

#[test]
fn conditions_follow_the_runner() {
    let engine = Expressions::default();
    let cond = |v: Json| engine.condition(&v, &ctx()).ok();
    assert_eq!(cond(json!(false)), Some(false));
    assert_eq!(cond(json!(true)), Some(true));
    assert_eq!(cond(json!(null)), Some(true));
    assert_eq!(cond(json!("${{ parameters.enabled }}")), Some(true));
    assert_eq!(cond(json!("${{ not parameters.enabled }}")), Some(false));
    assert_eq!(cond(json!("false")), Some(true));
    assert_eq!(cond(json!("")), Some(false));
    assert_eq!(cond(json!("${{ parameters.missing }}")), Some(false));
    assert_eq!(cond(json!("${{ [] }}")), Some(false));
    assert_eq!(cond(json!("${{ parameters.port === 8080 }}")), Some(true));
}

#[test]
fn renders_are_independent() {
    let engine = Expressions::default();
    assert!(
        engine
            .render_text("{% set secret = 'x' %}${{ secret }}", &ctx())
            .is_ok()
    );
    assert_eq!(
        engine
            .render_text("[${{ secret }}]", &ctx())
            .ok()
            .as_deref(),
        Some("[]")
    );
}

#[test]
fn cookiecutter_mode() {
    let engine = Expressions::default();
    let out = engine.render_text_cookiecutter(
        "{{ cookiecutter.name }} ${{ github.ref }} {{ cookiecutter | jsonify }}",
        &json!({"values": {"name": "n"}}),
    );
    assert_eq!(
        out.ok().as_deref(),
        // `${{ }}` is not a tag in this mode: `$` then an interpolation, as in nunjitsu.
        Some("n $ {\"name\":\"n\"}")
    );
}

#[test]
fn engine_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Expressions>();
}

/// Each listed filter's examples run, and give what their notes say.
#[test]
fn the_listed_filters_run_as_their_examples_say() {
    let listed = templating_extensions();
    let context = json!({"parameters": {
        "repoUrl": "github.com?owner=acme&repo=shop",
        "owner": "group:default/team-a",
    }});
    let render = |template: &str| {
        Expressions::default()
            .render_text(template, &context)
            .unwrap_or_else(|e| panic!("{template}: {e}"))
    };
    for (name, filter) in listed["filters"].as_object().expect("filters") {
        for example in filter["examples"].as_array().expect("examples") {
            let template = example["example"].as_str().expect("example");
            assert!(template.contains(name.as_str()), "{template}");
            render(template);
        }
    }
    assert_eq!(
        render("${{ parameters.repoUrl | parseRepoUrl | pick('owner') }}"),
        "acme"
    );
    assert_eq!(
        render("${{ parameters.repoUrl | projectSlug }}"),
        "acme/shop"
    );
    assert_eq!(
        render("${{ parameters.owner | parseEntityRef({ defaultKind: 'group' }) | pick('name') }}"),
        "team-a"
    );
}
