//! Spec rules of Atrium's `Model` kind that a field table cannot express: the license expression
//! and the list of versions with their artifact URIs, aliases and metrics.

use std::collections::HashMap;

use serde_json::Value;

use super::FieldError;
use super::rules::{
    check_array, check_object, check_string, has_host, invalid, join, missing, wrong_type,
};

const EXPECT_SPDX: &str = "an SPDX license identifier or expression (e.g. \"Apache-2.0\", \"MIT OR Apache-2.0\", \"LicenseRef-my-license\")";

/// `spec.license` of a Model: an SPDX license expression. The identifiers are not checked
/// against the SPDX list, which changes and which `LicenseRef-` ids extend; what is checked is
/// that the value reads as an expression, so free text such as "Llama 3 Community License" is
/// caught and written as `LicenseRef-llama-3-community` instead.
pub(super) fn spdx_license(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    if let Some(s) = check_string(path, v, errs)
        && !is_spdx_expression(s)
    {
        errs.push(invalid(path, EXPECT_SPDX, v));
    }
}

/// Parses `expr := term ((AND|OR) term)*`, `term := "(" expr ")" | id ["+"] [WITH id]`.
fn is_spdx_expression(s: &str) -> bool {
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut pos = 0;
    spdx_expr(&tokens, &mut pos, 0) && pos == tokens.len()
}

/// Bounds nesting so that a hostile value cannot exhaust the stack.
const SPDX_MAX_DEPTH: usize = 16;

fn spdx_expr(t: &[&str], pos: &mut usize, depth: usize) -> bool {
    if depth > SPDX_MAX_DEPTH || !spdx_term(t, pos, depth) {
        return false;
    }
    while t
        .get(*pos)
        .is_some_and(|op| is_op(op, "AND") || is_op(op, "OR"))
    {
        *pos += 1;
        if !spdx_term(t, pos, depth) {
            return false;
        }
    }
    true
}

fn spdx_term(t: &[&str], pos: &mut usize, depth: usize) -> bool {
    match t.get(*pos) {
        Some(&"(") => {
            *pos += 1;
            if !spdx_expr(t, pos, depth + 1) || t.get(*pos) != Some(&")") {
                return false;
            }
            *pos += 1;
            true
        }
        Some(id) if is_spdx_id(id.strip_suffix('+').unwrap_or(id)) => {
            *pos += 1;
            if t.get(*pos).is_some_and(|op| is_op(op, "WITH")) {
                *pos += 1;
                if !t.get(*pos).is_some_and(|id| is_spdx_id(id)) {
                    return false;
                }
                *pos += 1;
            }
            true
        }
        _ => false,
    }
}

/// SPDX operators are upper case; lower case is accepted as well, as SPDX tools do.
fn is_op(token: &str, op: &str) -> bool {
    token == op || token == op.to_ascii_lowercase()
}

/// An SPDX idstring (letters, digits, `.`, `-`), optionally `DocumentRef-x:LicenseRef-y`.
fn is_spdx_id(s: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    };
    !["AND", "OR", "WITH", "and", "or", "with"].contains(&s)
        && s.split(':').count() <= 2
        && s.split(':').all(ok)
}

/// Schemes a model version's artifact may live under: an OCI registry, S3, the Hugging Face hub,
/// or plain HTTPS. Plain HTTP is left out because a model pulled over it can be swapped in transit.
const MODEL_URI_SCHEMES: &[&str] = &["oci", "s3", "hf", "https"];
const EXPECT_MODEL_URI: &str = "a URI with scheme oci://, s3://, hf:// or https://";

fn is_valid_model_uri(s: &str) -> bool {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    MODEL_URI_SCHEMES.contains(&scheme.as_str())
        && if scheme == "https" {
            has_host(rest)
        } else {
            !rest.is_empty()
        }
}

/// `spec.versions` of a Model. Version names and aliases must be unique across the list: an
/// alias such as `champion` is how deployments pick a version, so it has to name exactly one.
pub(super) fn model_versions(path: &str, v: &Value, errs: &mut Vec<FieldError>) {
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut aliases: HashMap<&str, String> = HashMap::new();
    check_array(path, v, errs, |vp, version, errs| {
        let Some(version) = check_object(vp, version, errs) else {
            return;
        };
        let name = match version.get("name") {
            None => {
                errs.push(missing(vp, "name"));
                None
            }
            Some(n) => check_string(&join(vp, "name"), n, errs),
        };
        if let Some(name) = name {
            let np = join(vp, "name");
            if let Some(first) = names.get(name) {
                errs.push(FieldError::new(
                    np.as_str(),
                    format!(
                        "\"{np}\" must be unique; version \"{name}\" is already listed at {first}"
                    ),
                ));
            } else {
                names.insert(name, np);
            }
        }
        match version.get("uri") {
            None => errs.push(missing(vp, "uri")),
            Some(u) => {
                let up = join(vp, "uri");
                if check_string(&up, u, errs).is_some_and(|s| !is_valid_model_uri(s)) {
                    errs.push(invalid(&up, EXPECT_MODEL_URI, u));
                }
            }
        }
        if let Some(list) = version.get("aliases") {
            let ap = join(vp, "aliases");
            check_array(&ap, list, errs, |ip, alias, errs| {
                if let Some(alias) = check_string(ip, alias, errs) {
                    if let Some(first) = aliases.get(alias) {
                        errs.push(FieldError::new(
                            ip,
                            format!("\"{ip}\" must be unique; alias \"{alias}\" is already used at {first}"),
                        ));
                    } else {
                        aliases.insert(alias, ip.to_owned());
                    }
                }
            });
        }
        if let Some(metrics) = version.get("metrics") {
            let mp = join(vp, "metrics");
            if let Some(m) = check_object(&mp, metrics, errs) {
                for (k, val) in m {
                    if !val.is_number() {
                        errs.push(wrong_type(&join(&mp, k), "number"));
                    }
                }
            }
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
    fn spdx_expressions() {
        for ok in [
            "MIT",
            "Apache-2.0",
            "GPL-2.0+",
            "MIT OR Apache-2.0",
            "(MIT OR Apache-2.0) AND BSD-3-Clause",
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
            "LicenseRef-llama-3-community",
            "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2",
            "mit or apache-2.0",
            "((MIT))",
        ] {
            assert!(is_spdx_expression(ok), "{ok}");
        }
        for bad in [
            "",
            "Llama 3 Community License",
            "MIT OR",
            "AND MIT",
            "(MIT",
            "MIT)",
            "MIT WITH",
            "MIT/Apache",
            "a:b:c",
            &"(".repeat(40),
        ] {
            assert!(!is_spdx_expression(bad), "{bad}");
        }
    }

    #[test]
    fn license_message() {
        let got = run(spdx_license, json!("Some License"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "spec.x");
        assert!(
            got[0]
                .1
                .starts_with("\"spec.x\" is not valid; expected an SPDX license")
        );
        assert!(got[0].1.ends_with("but found \"Some License\""));
        assert_eq!(fields(spdx_license, json!(3)), ["spec.x"]);
    }

    #[test]
    fn model_uris() {
        for ok in [
            "oci://ghcr.io/acme/m:1",
            "s3://bucket/key",
            "hf://meta/llama",
            "https://x.org/m.gguf",
            "HF://a",
        ] {
            assert!(is_valid_model_uri(ok), "{ok}");
        }
        for bad in [
            "http://x.org/m",
            "file:///m",
            "s3://",
            "https://",
            "hf:meta",
            "oci://a b",
            "ftp://x",
        ] {
            assert!(!is_valid_model_uri(bad), "{bad}");
        }
    }

    #[test]
    fn versions_ok() {
        let v = json!([
            {"name": "v1", "uri": "hf://acme/m", "aliases": ["champion"], "metrics": {"accuracy": 0.91, "ttft_ms": 120}},
            {"name": "v2", "uri": "s3://models/m/v2", "aliases": ["challenger"]}
        ]);
        assert!(run(model_versions, v).is_empty());
    }

    #[test]
    fn versions_errors() {
        let v = json!([
            {"uri": "http://insecure/m", "aliases": "champion", "metrics": {"accuracy": "high"}},
            {"name": "v1", "aliases": ["champion", 3]},
            {"name": "v1", "uri": "oci://r/m", "aliases": ["champion"]},
            "v3"
        ]);
        let got = run(model_versions, v);
        let f: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            f,
            [
                "spec.x.0.name",
                "spec.x.0.uri",
                "spec.x.0.aliases",
                "spec.x.0.metrics.accuracy",
                "spec.x.1.uri",
                "spec.x.1.aliases.1",
                "spec.x.2.name",
                "spec.x.2.aliases.0",
                "spec.x.3",
            ]
        );
        assert_eq!(got[0].1, "\"spec.x.0\" must have required property 'name'");
        assert_eq!(
            got[1].1,
            "\"spec.x.0.uri\" is not valid; expected a URI with scheme oci://, s3://, hf:// or https:// but found \"http://insecure/m\""
        );
        assert_eq!(got[3].1, "\"spec.x.0.metrics.accuracy\" must be number");
        assert_eq!(
            got[6].1,
            "\"spec.x.2.name\" must be unique; version \"v1\" is already listed at spec.x.1.name"
        );
        assert_eq!(
            got[7].1,
            "\"spec.x.2.aliases.0\" must be unique; alias \"champion\" is already used at spec.x.1.aliases.0"
        );
        assert_eq!(fields(model_versions, json!({})), ["spec.x"]);
    }
}
