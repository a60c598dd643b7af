//! Tests for the catalog YAML parser: behaviour, every limit and error, and property tests that
//! no input panics or hangs.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{ParsedDocument, YamlError, YamlLimits, parse_documents};

fn parse(text: &str) -> Result<Vec<ParsedDocument>, YamlError> {
    parse_documents(text, &YamlLimits::default())
}

fn values(text: &str) -> Vec<Value> {
    parse(text)
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
        .into_iter()
        .map(|d| d.value)
        .collect()
}

fn error(text: &str) -> YamlError {
    match parse(text) {
        Ok(docs) => panic!("{text:?} should fail, got {docs:?}"),
        Err(e) => e,
    }
}

fn error_with(text: &str, limits: &YamlLimits) -> YamlError {
    match parse_documents(text, limits) {
        Ok(docs) => panic!("{text:?} should fail, got {docs:?}"),
        Err(e) => e,
    }
}

/// Fails the test if `f` takes a second or more; the bombs below take milliseconds even in a
/// debug build.
fn quickly<T>(f: impl FnOnce() -> T) -> T {
    within(Duration::from_secs(1), f)
}

/// Fails the test if `f` takes `bound` or longer.
fn within<T>(bound: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = f();
    let elapsed = start.elapsed();
    assert!(elapsed < bound, "took {elapsed:?}");
    result
}

const CATALOG: &str = "\
# Catalog for the payments team
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  annotations:
    backstage.io/techdocs-ref: dir:.
    github.com/project-slug: acme/payments
  tags: [java, payments]
spec:
  type: service
  owner: team-payments
  providesApis:
    - payments-openapi
---
---
apiVersion: atrium.dev/v1alpha1
kind: Model
metadata:
  name: fraud-scorer
  description: >
    Scores card transactions
    for fraud.
spec:
  type: classifier
  owner: team-payments
  versions:
    - name: v1
      uri: oci://registry.acme.dev/models/fraud:v1
    - name: v2
      uri: s3://models/fraud/v2
      aliases: [champion]
...
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-payments}
spec:
  type: team
  children: []
";

#[test]
fn realistic_catalog_parses_with_document_lines() {
    let docs = parse(CATALOG).expect("catalog parses");
    assert_eq!(docs.len(), 3, "the empty document is skipped");
    assert_eq!(
        docs.iter().map(|d| d.line).collect::<Vec<_>>(),
        vec![2, 16, 34]
    );
    assert_eq!(docs[0].value["metadata"]["name"], "payments-api");
    assert_eq!(
        docs[0].value["metadata"]["annotations"]["backstage.io/techdocs-ref"],
        "dir:."
    );
    assert_eq!(
        docs[1].value["metadata"]["description"],
        "Scores card transactions for fraud.\n"
    );
    assert_eq!(
        docs[1].value["spec"]["versions"][1]["aliases"],
        json!(["champion"])
    );
    assert_eq!(docs[2].value["spec"]["children"], json!([]));
}

#[test]
fn field_lines_in_a_realistic_catalog() {
    let docs = parse(CATALOG).expect("catalog parses");
    let cases: [(usize, &str, usize); 17] = [
        (0, "", 2),
        (0, "apiVersion", 2),
        (0, "kind", 3),
        (0, "metadata", 4),
        (0, "metadata.name", 5),
        (0, "metadata.annotations.backstage.io/techdocs-ref", 7),
        (0, "metadata.annotations.github.com/project-slug", 8),
        (0, "metadata.tags.1", 9),
        (0, "spec.providesApis.0", 14),
        // Unknown fields fall back to the nearest ancestor that exists.
        (0, "spec.lifecycle", 10),
        (0, "metadata.annotations.missing", 6),
        (1, "metadata.description", 21),
        (1, "spec.versions.0.uri", 29),
        (1, "spec.versions.1", 30),
        (1, "spec.versions.1.aliases.0", 32),
        (1, "spec.versions.7.uri", 27),
        (2, "metadata.name", 37),
    ];
    for (doc, path, line) in cases {
        assert_eq!(
            docs[doc].line_of(path),
            line,
            "document {doc}, path {path:?}"
        );
    }
    assert_eq!(docs[2].line_of("nothing.here"), 34);
}

#[test]
fn keys_keep_their_order() {
    let docs = values("zeta: 1\nalpha: 2\nmid: {b: 1, a: 2}\n");
    let text = serde_json::to_string(&docs[0]).expect("serializes");
    assert_eq!(text, r#"{"zeta":1,"alpha":2,"mid":{"b":1,"a":2}}"#);
}

#[test]
fn empty_and_null_documents_are_skipped() {
    assert!(values("").is_empty());
    assert!(values("# only a comment\n").is_empty());
    assert!(values("---\n---\n~\n---\nnull\n...\n").is_empty());
    assert_eq!(values("---\n---\na: 1\n---\n"), vec![json!({"a": 1})]);
}

#[test]
fn scalars_follow_the_yaml_1_2_core_schema() {
    let cases = [
        ("1", json!(1)),
        ("-2", json!(-2)),
        ("+3", json!(3)),
        ("0o17", json!(15)),
        ("0x1F", json!(31)),
        ("017", json!(17)),
        ("1.5", json!(1.5)),
        (".5", json!(0.5)),
        ("1e3", json!(1000.0)),
        ("18446744073709551615", json!(u64::MAX)),
        ("99999999999999999999", json!(1e20)),
        ("true", json!(true)),
        ("False", json!(false)),
        // YAML 1.1 booleans are strings in 1.2, as in Backstage.
        ("yes", json!("yes")),
        ("on", json!("on")),
        ("~", json!(null)),
        ("null", json!(null)),
        ("", json!(null)),
        ("''", json!("")),
        ("'1'", json!("1")),
        ("\"true\"", json!("true")),
        ("1_000", json!("1_000")),
        ("0x", json!("0x")),
        ("2024-01-01", json!("2024-01-01")),
        ("!!str 12", json!("12")),
        ("!!int '7'", json!(7)),
        ("!!float 3", json!(3.0)),
        ("!!bool 'TRUE'", json!(true)),
        ("!!null ''", json!(null)),
        ("! 5", json!("5")),
        ("|\n  42", json!("42\n")),
    ];
    for (yaml, expected) in cases {
        let docs = values(&format!("v: {yaml}\n"));
        assert_eq!(docs[0]["v"], expected, "{yaml:?}");
    }
}

#[test]
fn non_string_keys_become_strings() {
    // Keys keep the text as written; an absent key is the empty string.
    let docs = values("1: one\ntrue: yes\n3.5: x\nnull: n\n0x1F: h\n: empty\n");
    assert_eq!(
        docs[0],
        json!({"1": "one", "true": "yes", "3.5": "x", "null": "n", "0x1F": "h", "": "empty"})
    );
}

#[test]
fn complex_keys_are_errors() {
    for text in [
        "? [a, b]\n: c\n",
        "{[1]: x}\n",
        "? {a: 1}\n: c\n",
        "a: &x [1]\n*x : 2\n",
    ] {
        let e = error(text);
        assert!(
            e.message.contains("cannot be a mapping key"),
            "{text:?}: {e}"
        );
        assert!(e.line.is_some());
    }
}

#[test]
fn duplicate_keys_are_errors_naming_key_and_line() {
    let e = error("apiVersion: v1\nmetadata:\n  name: a\n  title: t\n  name: b\n");
    assert_eq!((e.line, e.column), (Some(5), Some(3)));
    assert!(e.message.contains("`name`"), "{e}");
    assert!(e.message.contains("line 3"), "{e}");
    // Quoting does not make a different key.
    let e = error("{a: 1, \"a\": 2}");
    assert!(e.message.contains("duplicate key `a`"), "{e}");
    // The same key in different mappings or documents is fine.
    assert_eq!(values("a: {x: 1}\nb: {x: 2}\n---\na: 1\n").len(), 2);
}

#[test]
fn custom_tags_are_errors_naming_tag_and_line() {
    let cases = [
        ("a: 1\nb: !foo bar\n", "`!foo`", 2, 4),
        (
            "x: !!python/object:os.system [ls]\n",
            "`!!python/object:os.system`",
            1,
            4,
        ),
        ("--- !Ref\nname: x\n", "`!Ref`", 1, 5),
        ("a:\n  - !!binary aGVsbG8=\n", "`!!binary`", 2, 5),
        (
            "a: !<tag:example.com,2000:x> 1\n",
            "tag:example.com,2000:x",
            1,
            4,
        ),
        ("a: !!str [1]\n", "cannot be used on a sequence", 1, 4),
        ("a: !!map x\n", "cannot be used on a scalar", 1, 4),
        ("a: !!int abc\n", "not a valid !!int", 1, 10),
    ];
    for (text, needle, line, column) in cases {
        let e = error(text);
        assert!(e.message.contains(needle), "{text:?}: {e}");
        assert_eq!(
            (e.line, e.column),
            (Some(line), Some(column)),
            "{text:?}: {e}"
        );
    }
}

#[test]
fn standard_tags_are_accepted() {
    let docs = values("a: !!str 1\nb: !!map {c: !!seq [!!null null, !!bool true, !!float 1]}\n");
    assert_eq!(docs[0], json!({"a": "1", "b": {"c": [null, true, 1.0]}}));
}

#[test]
fn aliases_work_for_normal_use() {
    let docs = values(
        "defaults: &defaults {owner: team-a, lifecycle: production}\n\
         first: *defaults\nsecond: [*defaults]\nname: &n svc\nlabel: *n\n*n : by-alias\n",
    );
    let defaults = json!({"owner": "team-a", "lifecycle": "production"});
    assert_eq!(docs[0]["first"], defaults);
    assert_eq!(docs[0]["second"], json!([defaults]));
    assert_eq!(docs[0]["label"], "svc");
    assert_eq!(docs[0]["svc"], "by-alias");
}

#[test]
fn merge_keys_are_plain_keys_as_in_backstage() {
    // Backstage's YAML 1.2 loader does not merge `<<`, so neither do we.
    let docs = values("base: &b {a: 1}\nchild:\n  <<: *b\n  c: 2\n");
    assert_eq!(docs[0]["child"], json!({"<<": {"a": 1}, "c": 2}));
}

#[test]
fn unknown_anchor_is_an_error_with_line() {
    let e = error("a: 1\nb: *nope\n");
    assert_eq!(e.line, Some(2));
    // Anchors do not carry across documents.
    let e = error("a: &x 1\n---\nb: *x\n");
    assert_eq!(e.line, Some(3));
}

#[test]
fn recursive_alias_is_an_error() {
    let e = error("a: &x [1, *x]\n");
    assert!(e.message.contains("recursive alias"), "{e}");
    assert_eq!(e.line, Some(1));
}

#[test]
fn billion_laughs_is_rejected_quickly() {
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for pair in names.windows(2) {
        let (prev, name) = (pair[0], pair[1]);
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let e = quickly(|| error(&text));
    assert!(e.message.contains("alias bomb"), "{e}");
    assert!(e.line.is_some());
}

#[test]
fn aliasing_a_long_string_many_times_is_rejected() {
    // Few nodes, but each alias copies 100 KB of text.
    let text = format!(
        "a: &a \"{}\"\nb: [{}]\n",
        "x".repeat(100_000),
        vec!["*a"; 100].join(", ")
    );
    let e = quickly(|| error(&text));
    assert!(e.message.contains("bytes of text"), "{e}");
    assert_eq!(e.line, Some(2));
}

#[test]
fn alias_expansion_limit_counts_copied_nodes() {
    let limits = YamlLimits {
        max_alias_expansions: 10,
        ..YamlLimits::default()
    };
    let ok = "a: &a [1, 2, 3, 4]\nb: *a\nc: *a\n";
    assert!(parse_documents(ok, &limits).is_ok());
    let e = error_with("a: &a [1, 2, 3, 4]\nb: *a\nc: *a\nd: *a\n", &limits);
    assert!(e.message.contains("more than 10 nodes"), "{e}");
    assert_eq!((e.line, e.column), (Some(4), Some(4)));
}

#[test]
fn nested_anchors_are_charged_for_their_copies() {
    // Every level keeps a copy of everything below it: quadratic without a budget.
    let depth = 60;
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&format!("&a{level} ["));
    }
    text.push_str(&format!("\"{}\"", "x".repeat(100_000)));
    text.push_str(&"]".repeat(depth));
    let e = quickly(|| error(&text));
    assert!(e.message.contains("bytes of text"), "{e}");
}

#[test]
fn depth_bombs_are_rejected() {
    let flow = "[".repeat(100_000);
    let e = quickly(|| error(&flow));
    assert!(e.message.contains("more than 64 levels"), "{e}");
    assert_eq!((e.line, e.column), (Some(1), Some(65)));

    let block: String = (0..100)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let e = quickly(|| error(&block));
    assert!(e.message.contains("more than 64 levels"), "{e}");
    assert_eq!(e.line, Some(65));

    let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert_eq!(values(&ok).len(), 1);
}

#[test]
fn too_many_documents_are_rejected() {
    let limits = YamlLimits {
        max_documents: 3,
        ..YamlLimits::default()
    };
    let three = "a: 1\n---\nb: 2\n---\nc: 3\n---\n";
    assert_eq!(parse_documents(three, &limits).map(|d| d.len()), Ok(3));
    let e = error_with(&format!("{three}d: 4\n"), &limits);
    assert!(e.message.contains("more than 3 YAML documents"), "{e}");
    assert_eq!(e.line, Some(6));

    let many = "a: 1\n---\n".repeat(1001);
    let e = quickly(|| error(&many));
    assert!(e.message.contains("more than 1000"), "{e}");
}

#[test]
fn oversized_input_is_rejected_with_size_and_limit() {
    let text = format!("a: \"{}\"\n", "x".repeat(1024 * 1024));
    let e = quickly(|| error(&text));
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains(&text.len().to_string()), "{e}");
    assert!(e.message.contains("1048576"), "{e}");
}

#[test]
fn node_limit_is_enforced() {
    let limits = YamlLimits {
        max_nodes: 10,
        ..YamlLimits::default()
    };
    assert!(parse_documents("[1, 2, 3, 4, 5, 6, 7, 8, 9]", &limits).is_ok());
    let e = error_with("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", &limits);
    assert!(e.message.contains("more than 10 YAML nodes"), "{e}");
    assert_eq!((e.line, e.column), (Some(1), Some(29)));

    // This one really builds 250 000 nodes before failing, so it gets a looser bound.
    let wide = format!("[{}]", vec!["a"; 400_000].join(","));
    let e = within(Duration::from_secs(3), || error(&wide));
    assert!(e.message.contains("more than 250000"), "{e}");
}

#[test]
fn bad_indentation_reports_its_line() {
    let e = error("apiVersion: v1\nkind: Component\nmetadata:\n  name: foo\n owner: x\n");
    assert_eq!((e.line, e.column), (Some(5), Some(2)));
    assert!(e.message.starts_with("invalid YAML:"), "{e}");

    let e = error("spec:\n  type: service\n   owner: x\n");
    assert_eq!(e.line, Some(3));

    let e = error("metadata:\n  tags:\n    - a\n   - b\n");
    assert_eq!(e.line, Some(4));
}

#[test]
fn syntax_errors_have_line_and_column() {
    for (text, line) in [
        ("a: \"unclosed\nb: 1\n", 1),
        ("a: [1, 2\nb: 3\n", 2),
        ("a: b: c\n", 1),
        ("a:\n\t- tab\n", 2),
    ] {
        let e = error(text);
        assert_eq!(e.line, Some(line), "{text:?}: {e}");
        assert!(e.column.is_some(), "{text:?}: {e}");
    }
}

#[test]
fn non_finite_numbers_are_errors() {
    for text in [
        "a: .inf\n",
        "a: -.Inf\n",
        "a: .NaN\n",
        "a: 1e999\n",
        "a: !!float .nan\n",
    ] {
        let e = error(text);
        assert_eq!(e.line, Some(1), "{text:?}: {e}");
        assert!(
            e.message.contains("JSON") || e.message.contains("too large"),
            "{e}"
        );
    }
    assert_eq!(values("a: '.inf'\n")[0], json!({"a": ".inf"}));
}

#[test]
fn messages_quote_long_user_text_shortened() {
    // Simple keys may be up to 1024 characters long.
    let key = "k".repeat(1000);
    let e = error(&format!("{key}: 1\n{key}: 2\n"));
    assert!(e.message.len() < 200, "{}", e.message.len());
    assert!(e.message.contains('…'), "{e}");
    let e = error(&format!("a: !{} x\n", "t".repeat(10_000)));
    assert!(e.message.len() < 300, "{}", e.message.len());
}

#[test]
fn error_display_includes_position() {
    let e = error("a: 1\na: 2\n");
    assert_eq!(
        e.to_string(),
        "line 2, column 1: duplicate key `a` (first defined on line 1)"
    );
}

#[test]
fn pathological_inputs_finish_quickly() {
    let megabyte = 1024 * 1024 - 16;
    let inputs = [
        "a".repeat(megabyte),
        "{".repeat(megabyte),
        "- ".repeat(megabyte / 2),
        "\"".repeat(megabyte),
        "? ".repeat(megabyte / 2),
        "&a ".repeat(megabyte / 3),
        "a: ".repeat(megabyte / 3),
        "x\n".repeat(megabyte / 2),
        "---\n".repeat(megabyte / 4),
        "#".repeat(megabyte),
        format!("a: |\n{}", "  x\n".repeat(megabyte / 4 - 2)),
        format!("key{}: v\n", "k".repeat(megabyte - 16)),
        format!("n: {}\n", "9".repeat(megabyte - 8)),
        format!("n: !!int {}\n", "7".repeat(megabyte - 16)),
        format!("[{}]", "&a a, *a, ".repeat(megabyte / 11)),
    ];
    for input in inputs {
        let start = Instant::now();
        let _ = parse(&input);
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_secs(3),
            "{:?}... took {elapsed:?}",
            &input[..20]
        );
    }
}

/// Writes a JSON value as block-style YAML, quoting every string, for the round-trip property.
fn to_block_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                out.push_str(&format!("{pad}{}:", json!(key)));
                to_block_child(child, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for child in items {
                out.push_str(&format!("{pad}-"));
                to_block_child(child, indent, out);
            }
        }
        other => out.push_str(&format!("{pad}{other}\n")),
    }
}

fn to_block_child(child: &Value, indent: usize, out: &mut String) {
    match child {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            to_block_yaml(child, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            to_block_yaml(child, indent + 2, out);
        }
        other => out.push_str(&format!(" {other}\n")),
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "true", "null", "~", "1", "0x1F", ".inf", "- a", "a: b", "#c"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("\\PC{0,8}", inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Lines built from YAML's structural characters, to reach deep into the parser's states.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "a",
        "b",
        "key",
        ":",
        ": ",
        "- ",
        "? ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&x ",
        "*x",
        "&y ",
        "*y",
        "!foo ",
        "!!str ",
        "!!int ",
        "! ",
        "'",
        "\"",
        "|",
        ">",
        "#",
        "---",
        "...",
        "%YAML 1.2",
        "%TAG ! tag:x,2000:",
        "~",
        "1",
        ".inf",
        "0x1",
        "\\",
        "\t",
        " ",
        "  ",
        "é",
        "<<: ",
    ]);
    let line = (0usize..8, prop::collection::vec(token, 0..8))
        .prop_map(|(indent, tokens)| format!("{}{}", " ".repeat(indent), tokens.concat()));
    prop::collection::vec(line, 0..24).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn yamlish_strings_never_panic(text in yamlish()) {
        if let Ok(docs) = parse(&text) {
            for doc in &docs {
                prop_assert!(doc.line >= 1);
                prop_assert!(doc.line_of("a.b.0") >= 1);
            }
        }
    }

    #[test]
    fn tight_limits_never_panic(text in yamlish(), depth in 0usize..4, nodes in 0usize..20) {
        let limits = YamlLimits {
            max_bytes: 200,
            max_depth: depth,
            max_documents: 2,
            max_alias_expansions: 3,
            max_nodes: nodes,
        };
        let _ = parse_documents(&text, &limits);
    }

    #[test]
    fn json_text_round_trips(values in prop::collection::vec(arb_json(), 1..4)) {
        let kept: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        let text: String = kept
            .iter()
            .map(|v| format!("---\n{v}\n"))
            .collect();
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        let parsed: Vec<Value> = parsed.into_iter().map(|d| d.value).collect();
        prop_assert_eq!(&parsed, &kept);
        // serde_json's map equality ignores order, so compare the text too.
        prop_assert_eq!(format!("{parsed:?}"), format!("{kept:?}"));
    }

    #[test]
    fn block_yaml_round_trips(value in arb_json()) {
        prop_assume!(!value.is_null());
        let mut text = String::new();
        to_block_yaml(&value, 0, &mut text);
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(parsed.len(), 1);
        prop_assert_eq!(format!("{:?}", parsed[0].value), format!("{value:?}"));
    }
}
