//! Filters: Backstage's scaffolder filters (`parseRepoUrl`, `parseEntityRef`, `pick`,
//! `projectSlug`), the Nunjucks built-ins whose minijinja namesakes answer differently (`dump`,
//! `string`, `join`, `length`, `default`, `title`, `urlencode`), and the helpers the source
//! rewrites in [`super::scan`] call (`__js_length`, `__js_items`, `__js_iter`).

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::js;
use crate::catalog::model::{EntityRef, RefDefaults};

pub(crate) fn register(env: &mut Environment<'static>, cookiecutter: bool) {
    env.add_filter("parseRepoUrl", parse_repo_url);
    env.add_filter("projectSlug", project_slug);
    env.add_filter("parseEntityRef", parse_entity_ref);
    env.add_filter("pick", pick);
    env.add_filter("dump", dump);
    if cookiecutter {
        env.add_filter("jsonify", dump);
    }
    env.add_filter("string", string);
    env.add_filter("join", join);
    env.add_filter("length", length);
    env.add_filter("count", length);
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("title", title);
    env.add_filter("round", round);
    env.add_filter("truncate", truncate);
    env.add_filter("wordcount", wordcount);
    env.add_filter("center", center);
    env.add_filter("urlencode", urlencode);
    env.add_filter("__js_length", js_length);
    env.add_filter("__js_items", js_items);
    env.add_filter("__js_iter", js_iter);
}

/// `GET /v2/templating-extensions`: Backstage's own filters as its scaffolder lists them (name,
/// description, JSON Schemas of input, arguments and output, examples), so that template editors and
/// agents can see what expressions may call. The Nunjucks built-ins are not listed, as in Backstage;
/// Atrium registers no globals.
pub fn templating_extensions() -> serde_json::Value {
    let entity_ref = serde_json::json!({
        "type": "object",
        "required": ["kind", "namespace", "name"],
        "properties": {
            "kind": {"type": "string"}, "namespace": {"type": "string"}, "name": {"type": "string"}
        }
    });
    let repo_url = serde_json::json!({
        "type": "string",
        "description": "A RepoUrlPicker value: host?owner=...&repo=... (or organization, workspace, project)"
    });
    serde_json::json!({
        "filters": {
            "parseRepoUrl": {
                "description": "Splits a repository URL from the RepoUrlPicker into its parts.",
                "schema": {
                    "input": repo_url,
                    "output": {"type": "object", "required": ["host", "repo"], "properties": {
                        "host": {"type": "string"}, "owner": {"type": "string"},
                        "repo": {"type": "string"}, "organization": {"type": "string"},
                        "workspace": {"type": "string"}, "project": {"type": "string"}
                    }}
                },
                "examples": [{
                    "description": "The owner of the repository",
                    "example": "${{ parameters.repoUrl | parseRepoUrl | pick('owner') }}",
                    "notes": "github.com?owner=acme&repo=shop gives acme"
                }]
            },
            "projectSlug": {
                "description": "The owner/repo slug of a repository URL from the RepoUrlPicker.",
                "schema": {"input": repo_url, "output": {"type": "string"}},
                "examples": [{
                    "example": "${{ parameters.repoUrl | projectSlug }}",
                    "notes": "github.com?owner=acme&repo=shop gives acme/shop"
                }]
            },
            "parseEntityRef": {
                "description": "Splits an entity reference into kind, namespace and name, with optional defaults for the parts it leaves out.",
                "schema": {
                    "input": {"type": "string"},
                    "arguments": [{"type": "object", "properties": {
                        "defaultKind": {"type": "string"}, "defaultNamespace": {"type": "string"}
                    }}],
                    "output": entity_ref
                },
                "examples": [
                    {"example": "${{ parameters.owner | parseEntityRef }}",
                     "notes": "group:default/team-a gives {kind: group, namespace: default, name: team-a}"},
                    {"example": "${{ parameters.owner | parseEntityRef({ defaultKind: 'group' }) | pick('name') }}",
                     "notes": "team-a gives team-a"}
                ]
            },
            "pick": {
                "description": "One property of an object, by name or dotted path; undefined when it is missing.",
                "schema": {
                    "input": {"type": "object"},
                    "arguments": [{"type": "string"}],
                    "output": {}
                },
                "examples": [{"example": "${{ parameters.owner | parseEntityRef | pick('name') }}"}]
            }
        },
        "globals": {"functions": {}, "values": {}}
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn json_to_value(json: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(json))
}

/// Which kind of SCM a host is. Backstage asks its integrations config; Atrium's engine has none
/// and goes by the host name, which is right for the public hosts and the usual self-hosted names.
fn host_kind(host: &str) -> &'static str {
    if host.contains("bitbucket") {
        "bitbucket"
    } else if host == "dev.azure.com" || host.ends_with(".visualstudio.com") {
        "azure"
    } else if host.contains("gitlab") {
        "gitlab"
    } else if host.contains("gitea") {
        "gitea"
    } else if host.contains("gerrit") {
        "gerrit"
    } else {
        "github"
    }
}

/// Backstage's `parseRepoUrl`: `host?owner=o&repo=r` → `{host, owner, repo, organization,
/// workspace, project}` with the parts that are present, and the parts each kind of host needs.
pub(crate) fn parse_repo_url_json(repo_url: &str) -> Result<serde_json::Value, Error> {
    let parsed = url::Url::parse(&format!("https://{repo_url}")).map_err(|e| {
        invalid(format!(
            "Invalid repo URL passed to publisher, got {repo_url}, {e}"
        ))
    })?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => {
            return Err(invalid(format!(
                "Invalid repo URL passed to publisher, got {repo_url}, no host"
            )));
        }
    };
    let param = |name: &str| {
        parsed
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let required = |names: &[&str]| -> Result<(), Error> {
        for name in names {
            if param(name).is_none_or(|v| v.is_empty()) {
                return Err(invalid(format!(
                    "Invalid repo URL passed to publisher: {parsed}, missing {name}"
                )));
            }
        }
        Ok(())
    };
    let project = param("project");
    match host_kind(&host) {
        "bitbucket" => {
            if host == "www.bitbucket.org" {
                required(&["workspace"])?;
            }
            required(&["project", "repo"])?;
        }
        "azure" => required(&["project", "repo"])?,
        "gitlab" => {
            if project.is_none_or(|p| p.trim_matches('/').is_empty()) {
                required(&["owner", "repo"])?;
            }
        }
        "gitea" | "gerrit" => required(&["repo"])?,
        _ => required(&["repo", "owner"])?,
    }
    let mut out = serde_json::Map::new();
    out.insert("host".to_owned(), host.into());
    for name in ["owner", "repo", "organization", "workspace", "project"] {
        if let Some(v) = param(name) {
            out.insert(name.to_owned(), v.trim_matches('/').into());
        }
    }
    Ok(serde_json::Value::Object(out))
}

fn repo_url_arg(value: &Value) -> Result<String, Error> {
    match value.as_str() {
        Some(s) => Ok(s.to_owned()),
        None => js::to_js_string(value),
    }
}

fn parse_repo_url(value: Value) -> Result<Value, Error> {
    Ok(json_to_value(&parse_repo_url_json(&repo_url_arg(&value)?)?))
}

fn project_slug(value: Value) -> Result<Value, Error> {
    let parsed = parse_repo_url_json(&repo_url_arg(&value)?)?;
    let part = |name: &str| {
        parsed
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("undefined")
            .to_owned()
    };
    Ok(Value::from(format!("{}/{}", part("owner"), part("repo"))))
}

/// `parseEntityRef` from `@backstage/catalog-model`, with `{defaultKind, defaultNamespace}`.
fn parse_entity_ref(value: Value, context: Option<Value>) -> Result<Value, Error> {
    let option = |name: &str| -> Result<Option<String>, Error> {
        match &context {
            Some(c) if c.kind() == ValueKind::Map => {
                let v = c.get_attr(name)?;
                Ok(v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
            }
            _ => Ok(None),
        }
    };
    let default_kind = option("defaultKind")?;
    let default_namespace = option("defaultNamespace")?;
    let defaults = RefDefaults {
        kind: default_kind.as_deref(),
        namespace: default_namespace.as_deref().unwrap_or(""),
    };
    let parsed = match value.kind() {
        ValueKind::String => EntityRef::parse(value.as_str().unwrap_or_default(), defaults)
            .map_err(|e| invalid(e.to_string()))?,
        ValueKind::Map => {
            let part = |name: &str| -> Result<Option<String>, Error> {
                Ok(value.get_attr(name)?.as_str().map(str::to_owned))
            };
            let kind = part("kind")?.or(default_kind.clone()).unwrap_or_default();
            let namespace = part("namespace")?
                .or(default_namespace.clone())
                .unwrap_or_else(|| "default".to_owned());
            let name = part("name")?.unwrap_or_default();
            let shown =
                serde_json::to_string(&js::to_json(&value, &mut 10_000)?).unwrap_or_default();
            if kind.is_empty() {
                return Err(invalid(format!(
                    "Entity reference {shown} had missing or empty kind (e.g. did not start with \"component:\" or similar)"
                )));
            }
            if name.is_empty() {
                return Err(invalid(format!(
                    "Entity reference {shown} had missing or empty name"
                )));
            }
            EntityRef::new(kind, namespace, name)
        }
        _ => {
            return Err(invalid("Entity reference must not be empty"));
        }
    };
    Ok(json_to_value(&serde_json::json!({
        "kind": parsed.kind,
        "namespace": parsed.namespace,
        "name": parsed.name,
    })))
}

/// lodash `get(object, path)`: `a.b`, `a[0]`, `a["b"]`.
fn pick(value: Value, path: Value) -> Result<Value, Error> {
    let path = match path.kind() {
        ValueKind::Seq => path
            .try_iter()?
            .map(|p| js::to_js_string(&p))
            .collect::<Result<Vec<_>, _>>()?,
        _ => lodash_path(&js::to_js_string(&path)?),
    };
    let mut current = value;
    for key in path {
        if current.is_undefined() || current.is_none() {
            return Ok(Value::UNDEFINED);
        }
        current = match current.kind() {
            ValueKind::Seq => match key.parse::<usize>() {
                Ok(i) => current.get_item(&Value::from(i))?,
                Err(_) if key == "length" => Value::from(current.len().unwrap_or(0)),
                Err(_) => Value::UNDEFINED,
            },
            ValueKind::String if key == "length" => {
                Value::from(js::utf16(current.as_str().unwrap_or_default()).len())
            }
            ValueKind::Map => current.get_item(&Value::from(key))?,
            _ => Value::UNDEFINED,
        };
    }
    Ok(current)
}

fn lodash_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => parts.push(std::mem::take(&mut current)),
            '[' => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                let quote = chars.next_if(|&q| q == '"' || q == '\'');
                let mut key = String::new();
                while let Some(k) = chars.next() {
                    if Some(k) == quote && chars.peek() == Some(&']') {
                        chars.next();
                        break;
                    }
                    if quote.is_none() && k == ']' {
                        break;
                    }
                    key.push(k);
                }
                parts.push(key);
                // `a[0].b`: the dot after a bracket starts the next part.
                chars.next_if_eq(&'.');
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

/// Nunjucks `dump`: `JSON.stringify(value, null, indent)`.
fn dump(state: &State<'_, '_>, value: Value, indent: Option<Value>) -> Result<Value, Error> {
    let mut budget = 1_000_000;
    let Some(json) = js::to_json(&value, &mut budget)? else {
        return Ok(Value::UNDEFINED);
    };
    let indent = match indent.filter(|i| !i.is_undefined() && !i.is_none()) {
        Some(i) if i.kind() == ValueKind::Number => {
            let n = i.as_i64().unwrap_or(0).clamp(0, 10);
            " ".repeat(usize::try_from(n).unwrap_or(0))
        }
        Some(i) => i.as_str().unwrap_or("").chars().take(10).collect(),
        None => String::new(),
    };
    let text = if indent.is_empty() {
        serde_json::to_string(&json)
    } else {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(&json, &mut serializer)
            .map(|()| String::from_utf8_lossy(&out).into_owned())
    }
    .map_err(|e| invalid(format!("dump failed: {e}")))?;
    state.consume_fuel(text.len() as u64 / 64)?;
    Ok(Value::from(text))
}

fn string(value: Value) -> Result<Value, Error> {
    Ok(Value::from(js::to_js_string(&value)?))
}

/// Nunjucks `join(separator = "", attribute)`: items print as JavaScript prints them.
fn join(value: Value, separator: Option<Value>, attribute: Option<Value>) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(Value::from(""));
    }
    if value.kind() == ValueKind::String {
        return Ok(value);
    }
    let separator = match separator.filter(|s| !s.is_undefined()) {
        Some(s) => js::to_js_string(&s)?,
        None => String::new(),
    };
    let mut out = String::new();
    for (i, item) in value.try_iter()?.enumerate() {
        if i > 0 {
            out.push_str(&separator);
        }
        let item = match &attribute {
            Some(attr) if !attr.is_undefined() => item.get_item(attr)?,
            _ => item,
        };
        js::write_js_string(&item, &mut out, 1)?;
    }
    Ok(Value::from(out))
}

/// Nunjucks `length`: characters (UTF-16 units) of a string, items of an array, keys of an
/// object, 0 for undefined.
fn length(value: Value) -> Result<Value, Error> {
    Ok(match value.kind() {
        ValueKind::String => Value::from(js::utf16(value.as_str().unwrap_or_default()).len()),
        ValueKind::Seq | ValueKind::Map => Value::from(value.len().unwrap_or(0)),
        ValueKind::Iterable => Value::from(value.try_iter()?.count()),
        ValueKind::Undefined | ValueKind::None => Value::from(0),
        _ => Value::UNDEFINED,
    })
}

/// JavaScript `x.length`: a string's or an array's length, or an object's `length` key.
fn js_length(value: Value) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String | ValueKind::Seq | ValueKind::Iterable => length(value),
        ValueKind::Map => value.get_attr("length"),
        _ => Ok(Value::UNDEFINED),
    }
}

/// Iterable of `{% for k, v in x %}`: an object's `[key, value]` entries, or the items of anything
/// else.
fn js_items(value: Value) -> Result<Value, Error> {
    if value.kind() != ValueKind::Map {
        return Ok(value);
    }
    let mut entries = Vec::new();
    for key in value.try_iter()? {
        let item = value.get_item(&key)?;
        entries.push(Value::from(vec![key, item]));
    }
    Ok(Value::from(entries))
}

/// Iterable of `{% for x in y %}`: Nunjucks loops over nothing when `y` is an object.
fn js_iter(value: Value) -> Result<Value, Error> {
    Ok(if value.kind() == ValueKind::Map {
        Value::from(Vec::<Value>::new())
    } else {
        value
    })
}

/// Nunjucks `default(value, default, boolean = false)`: the default replaces an undefined value,
/// or any falsy value when `boolean` is true.
fn default(value: Value, fallback: Option<Value>, boolean: Option<Value>) -> Value {
    let replace = if boolean.is_some_and(|b| b.is_true()) {
        !js::is_truthy(&value)
    } else {
        value.is_undefined()
    };
    if replace {
        fallback.unwrap_or(Value::UNDEFINED)
    } else {
        value
    }
}

/// Nunjucks `round(value, precision = 0, method = "common")`: `common` rounds halves up, like
/// JavaScript's `Math.round` (2.5 → 3, -2.5 → -2); `ceil` and `floor` round one way.
fn round(value: Value, precision: Option<Value>, method: Option<Value>) -> Result<Value, Error> {
    let x = f64::try_from(value)?;
    let precision = precision.and_then(|p| p.as_i64()).unwrap_or(0).clamp(0, 15);
    let factor = 10f64.powi(i32::try_from(precision).unwrap_or(0));
    let scaled = x * factor;
    let rounded = match method.as_ref().and_then(|m| m.as_str()) {
        Some("ceil") => scaled.ceil(),
        Some("floor") => scaled.floor(),
        _ => (scaled + 0.5).floor(),
    };
    Ok(Value::from(rounded / factor))
}

/// Nunjucks `truncate(length = 255, killwords = false, end = "...")`: cut at the last space
/// before `length` unless `killwords`.
fn truncate(
    value: Value,
    length: Option<usize>,
    killwords: Option<Value>,
    end: Option<Value>,
) -> Result<Value, Error> {
    let text = js::to_js_string(&value)?;
    let units = js::utf16(&text);
    let length = length.filter(|&l| l > 0).unwrap_or(255);
    if units.len() <= length {
        return Ok(Value::from(text));
    }
    let cut = if killwords.is_some_and(|k| k.is_true()) {
        length
    } else {
        (0..=length.min(units.len() - 1))
            .rev()
            .find(|&i| units[i] == u16::from(b' '))
            .unwrap_or(length)
    };
    let mut out = String::from_utf16_lossy(&units[..cut]);
    match end.filter(|e| !e.is_undefined() && !e.is_none()) {
        Some(end) => out.push_str(&js::to_js_string(&end)?),
        None => out.push_str("..."),
    }
    Ok(Value::from(out))
}

/// Nunjucks `wordcount`: runs of `\w` characters.
fn wordcount(value: Value) -> Result<Value, Error> {
    let text = js::to_js_string(&value)?;
    let count = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .count();
    Ok(if count == 0 {
        Value::from(())
    } else {
        Value::from(count)
    })
}

/// Nunjucks `center(width = 80)`: odd padding goes to the right.
fn center(value: Value, width: Option<usize>) -> Result<Value, Error> {
    let text = js::to_js_string(&value)?;
    let width = width.unwrap_or(80).min(10_000);
    let len = js::utf16(&text).len();
    if len >= width {
        return Ok(Value::from(text));
    }
    let spaces = width - len;
    let (left, right) = (spaces / 2, spaces.div_ceil(2));
    Ok(Value::from(format!(
        "{}{text}{}",
        " ".repeat(left),
        " ".repeat(right)
    )))
}

/// Nunjucks `title`: every space-separated word capitalized, the rest lower-cased.
fn title(value: Value) -> Result<Value, Error> {
    let text = js::to_js_string(&value)?;
    let words: Vec<String> = text
        .split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect();
    Ok(Value::from(words.join(" ")))
}

/// Nunjucks `urlencode`: `encodeURIComponent` for strings; objects and lists of pairs become a
/// query string.
fn urlencode(value: Value) -> Result<Value, Error> {
    let encode = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    Ok(Value::from(match value.kind() {
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                pairs.push(format!(
                    "{}={}",
                    encode(&js::to_js_string(&key)?),
                    encode(&js::to_js_string(&item)?)
                ));
            }
            pairs.join("&")
        }
        _ => encode(&js::to_js_string(&value)?),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repo_urls() {
        let parsed = parse_repo_url_json("github.com?owner=o&repo=r").ok();
        assert_eq!(
            parsed,
            Some(serde_json::json!({"host": "github.com", "owner": "o", "repo": "r"}))
        );
        let missing = parse_repo_url_json("github.com?repo=r")
            .err()
            .map(|e| e.to_string());
        assert!(missing.is_some_and(|m| m.contains("missing owner")));
        let gitlab = parse_repo_url_json("gitlab.com?project=42").ok();
        assert_eq!(
            gitlab,
            Some(serde_json::json!({"host": "gitlab.com", "project": "42"}))
        );
    }

    #[test]
    fn lodash_paths() {
        assert_eq!(lodash_path("a.b"), ["a", "b"]);
        assert_eq!(lodash_path("a[0].b"), ["a", "0", "b"]);
        assert_eq!(lodash_path("a['x.y']"), ["a", "x.y"]);
        assert_eq!(lodash_path("name"), ["name"]);
    }
}
