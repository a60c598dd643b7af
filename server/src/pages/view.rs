//! View models shared by the pages: what a template needs to show an entity or a reference to one.

use serde_json::Value;

/// An entity reference split into its parts, as relations and specs name them (`kind:namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefParts {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl RefParts {
    /// Parses `kind:namespace/name`, `kind:name` or `name` (with the given default kind).
    pub fn parse(text: &str, default_kind: &str) -> Option<Self> {
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (kind, rest),
            None => (default_kind, text),
        };
        let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
        if kind.is_empty() || name.is_empty() || namespace.is_empty() {
            return None;
        }
        Some(Self {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The lower-cased key entities are stored under.
    pub fn key(&self) -> String {
        format!("{}:{}/{}", self.kind, self.namespace, self.name).to_lowercase()
    }

    pub fn href(&self) -> String {
        entity_href(&self.kind, &self.namespace, &self.name)
    }

    /// `kind:name` in the default namespace, the full ref elsewhere.
    pub fn short(&self) -> String {
        if self.namespace.eq_ignore_ascii_case("default") {
            format!("{}:{}", self.kind.to_lowercase(), self.name)
        } else {
            format!(
                "{}:{}/{}",
                self.kind.to_lowercase(),
                self.namespace,
                self.name
            )
        }
    }
}

/// The page of an entity.
pub fn entity_href(kind: &str, namespace: &str, name: &str) -> String {
    format!(
        "/catalog/{}/{}/{}",
        encode_segment(&kind.to_lowercase()),
        encode_segment(namespace),
        encode_segment(name)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A link to show for a URL from catalog data: only web and mail URLs become `href`s, so a catalog file
/// cannot plant a `javascript:` link.
pub fn safe_url(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:"))
        .then(|| url.trim().to_owned())
}

/// A link to another entity, with what is known about it.
#[derive(Debug, Clone)]
pub struct EntityLink {
    pub href: String,
    pub label: String,
    pub kind: String,
    /// Full ref for titles and tests.
    pub reference: String,
    pub description: String,
}

/// One entity in a list or table.
#[derive(Debug, Clone, Default)]
pub struct EntitySummary {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub title: String,
    pub description: String,
    pub href: String,
    pub entity_type: String,
    pub owner: String,
    pub owner_href: String,
    pub lifecycle: String,
    pub tags: Vec<String>,
}

pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut current = value;
    for part in path {
        match current.get(part) {
            Some(next) => current = next,
            None => return "",
        }
    }
    current.as_str().unwrap_or("")
}

impl EntitySummary {
    pub fn from_entity(entity: &Value) -> Self {
        let kind = str_at(entity, &["kind"]).to_owned();
        let namespace = match str_at(entity, &["metadata", "namespace"]) {
            "" => "default".to_owned(),
            ns => ns.to_owned(),
        };
        let name = str_at(entity, &["metadata", "name"]).to_owned();
        let title = match str_at(entity, &["metadata", "title"]) {
            "" => name.clone(),
            title => title.to_owned(),
        };
        let owner = str_at(entity, &["spec", "owner"]).to_owned();
        let owner_href = RefParts::parse(&owner, "group")
            .map(|r| r.href())
            .unwrap_or_default();
        Self {
            href: entity_href(&kind, &namespace, &name),
            description: str_at(entity, &["metadata", "description"]).to_owned(),
            entity_type: str_at(entity, &["spec", "type"]).to_owned(),
            lifecycle: str_at(entity, &["spec", "lifecycle"]).to_owned(),
            tags: entity["metadata"]["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            owner,
            owner_href,
            kind,
            namespace,
            name,
            title,
        }
    }
}
