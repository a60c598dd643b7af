//! Reading manifest files: multi-document YAML or a JSON document, `List` kinds flattened.

use serde_json::Value;

/// How deep `List`s may nest inside `List`s.
const MAX_LIST_NESTING: usize = 8;

/// A manifest file that could not be read, with the position of the problem when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {message}", location(*.line, *.column))]
pub struct ManifestError {
    /// Name of the file (or other source) the text came from.
    pub source_name: String,
    /// 1-based line of the problem, when known.
    pub line: Option<u64>,
    /// 1-based column of the problem, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
}

fn location(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// Parser options: duplicate keys are errors (the default), and alias expansion is bounded
/// well below the defaults so that an alias bomb fails fast.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_nodes: 250_000,
            max_documents: 1_024,
        },
    };
    options.alias_limits.max_total_replayed_events = 50_000;
    options.alias_limits.max_replay_stack_depth = 32;
    options
}

fn yaml_error(source: &str, err: &serde_saphyr::Error) -> ManifestError {
    let loc = err.location();
    let mut message = err.to_string();
    // The location is reported in its own fields; drop the parser's " at line ..." tail.
    if loc.is_some()
        && let Some(i) = message.find(" at line ")
    {
        message.truncate(i);
    }
    ManifestError {
        source_name: source.to_owned(),
        line: loc.map(|l| l.line()),
        column: loc.map(|l| l.column()),
        message,
    }
}

fn json_error(source: &str, err: &serde_json::Error) -> ManifestError {
    let mut message = format!("invalid JSON: {err}");
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    ManifestError {
        source_name: source.to_owned(),
        line: Some(err.line() as u64),
        column: Some(err.column() as u64),
        message,
    }
}

/// Appends `value` to `out`, replacing a `List` (`kind: List` or any `*List` kind with an
/// `items` list) by its items.
fn flatten(
    value: Value,
    depth: usize,
    source: &str,
    out: &mut Vec<Value>,
) -> Result<(), ManifestError> {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if !is_list {
        out.push(value);
        return Ok(());
    }
    if depth >= MAX_LIST_NESTING {
        return Err(ManifestError {
            source_name: source.to_owned(),
            line: None,
            column: None,
            message: format!("lists nested more than {MAX_LIST_NESTING} deep"),
        });
    }
    if let Value::Object(mut map) = value
        && let Some(Value::Array(items)) = map.remove("items")
    {
        for item in items {
            flatten(item, depth + 1, source, out)?;
        }
    }
    Ok(())
}

/// Parses the manifests in `text` (named `source` in errors): YAML documents separated by
/// `---`, or JSON objects (text starting with `{`, as kubectl decides). Empty documents are skipped and `List`s are flattened into
/// their items. Other non-object documents are kept, for [`super::check`] to report.
pub fn parse_manifests(text: &str, source: &str) -> Result<Vec<Value>, ManifestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Like kubectl: text starting with `{` is JSON (one or more concatenated objects),
    // anything else YAML.
    let docs = if text.trim_start().starts_with('{') {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| json_error(source, &e))?
    } else {
        serde_saphyr::from_multiple_with_options::<Value>(text, yaml_options())
            .map_err(|e| yaml_error(source, &e))?
    };
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        flatten(doc, 0, source, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse_manifests;

    #[test]
    fn multiple_documents_skipping_empty_ones() {
        let text = "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n...\n";
        let docs = parse_manifests(text, "m.yaml").expect("parses");
        let kinds: Vec<_> = docs
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(kinds, ["ConfigMap", "Secret"]);
        assert!(
            parse_manifests("", "empty.yaml")
                .expect("parses")
                .is_empty()
        );
    }

    #[test]
    fn lists_are_flattened() {
        let text = r#"
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
  - apiVersion: apps/v1
    kind: DeploymentList
    items:
      - {apiVersion: apps/v1, kind: Deployment, metadata: {name: b}}
      - {apiVersion: apps/v1, kind: Deployment, metadata: {name: c}}
---
{apiVersion: v1, kind: Service, metadata: {name: d}}
"#;
        let docs = parse_manifests(text, "list.yaml").expect("parses");
        let names: Vec<_> = docs.iter().map(|d| d["metadata"]["name"].clone()).collect();
        assert_eq!(names, [json!("a"), json!("b"), json!("c"), json!("d")]);
        // A *List kind without an items list is left alone.
        let docs = parse_manifests("kind: AllowList\nspec: {}\n", "x").expect("parses");
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn json_documents() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Pod"}, {"kind": "Service"}]}"#;
        let docs = parse_manifests(text, "list.json").expect("parses");
        assert_eq!(
            docs,
            vec![json!({"kind": "Pod"}), json!({"kind": "Service"})]
        );
        let two =
            parse_manifests("{\"kind\": \"A\"}\n{\"kind\": \"B\"}\n", "two.json").expect("parses");
        assert_eq!(two.len(), 2);
        let err = parse_manifests(
            "{\n  \"kind\": \"Pod\",\n  \"metadata\": {\"name\": }\n}\n",
            "bad.json",
        )
        .expect_err("invalid JSON");
        assert_eq!((err.source_name.as_str(), err.line), ("bad.json", Some(3)));
        assert!(err.to_string().starts_with("bad.json:3:"), "{err}");
    }

    #[test]
    fn yaml_errors_name_file_line_and_column() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: [x\n";
        let err = parse_manifests(text, "pod.yaml").expect_err("unclosed flow sequence");
        assert_eq!(err.source_name, "pod.yaml");
        assert!(err.line.is_some_and(|l| l >= 5), "{err:?}");
        assert!(err.to_string().starts_with("pod.yaml:"), "{err}");
        assert!(!err.message.contains(" at line "), "{err:?}");

        let dup = parse_manifests("kind: Pod\nmetadata: {name: a}\nkind: Secret\n", "dup.yaml")
            .expect_err("duplicate keys are refused");
        assert_eq!((dup.line, dup.column), (Some(3), Some(1)), "{dup}");
        assert_eq!(dup.to_string(), format!("dup.yaml:3:1: {}", dup.message));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            let row = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{row}]\n"));
        }
        let err = parse_manifests(&text, "bomb.yaml").expect_err("alias bomb");
        assert!(err.line.is_some(), "{err}");
    }

    #[test]
    fn yaml_1_1_booleans_are_booleans() {
        // `privileged: yes` must not slip through as a string.
        let docs = parse_manifests("privileged: yes\nhostNetwork: on\n", "b.yaml").expect("parses");
        assert_eq!(docs[0], json!({"privileged": true, "hostNetwork": true}));
    }
}
