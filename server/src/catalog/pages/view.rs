//! View models the catalog's pages (and the home page) share: an entity in a list, a link to an entity,
//! and the URLs of catalog pages. Every value put into a URL is encoded here, so templates only ever
//! print finished `href`s.

use serde_json::Value;

use crate::catalog::model::refs::{DEFAULT_NAMESPACE, EntityRef, RefDefaults};

/// The page of an entity, at Backstage's URL: `/catalog/{namespace}/{kind}/{name}` with namespace and
/// kind lower-cased, so links people share work in both portals.
pub fn entity_href(kind: &str, namespace: &str, name: &str) -> String {
    format!(
        "/catalog/{}/{}/{}",
        encode_segment(&namespace.to_lowercase()),
        encode_segment(&kind.to_lowercase()),
        encode_segment(name)
    )
}

/// The page of a referenced entity.
pub fn ref_href(entity_ref: &EntityRef) -> String {
    entity_href(&entity_ref.kind, &entity_ref.namespace, &entity_ref.name)
}

/// The catalog list with these query parameters (`[("tag", "c++")]` → `/catalog?tag=c%2B%2B`).
pub fn catalog_href(params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return "/catalog".to_owned();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/catalog?{query}")
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

/// `kind:name` in the default namespace, the full ref elsewhere (kind lower-cased, as Backstage
/// prints refs).
pub fn short_ref(entity_ref: &EntityRef) -> String {
    if entity_ref.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
        format!("{}:{}", entity_ref.kind.to_lowercase(), entity_ref.name)
    } else {
        format!(
            "{}:{}/{}",
            entity_ref.kind.to_lowercase(),
            entity_ref.namespace,
            entity_ref.name
        )
    }
}

/// A reference from `spec` resolved the way the catalog resolves it: a missing kind is `default_kind`,
/// a missing namespace is the referring entity's own.
pub fn resolve_ref(text: &str, default_kind: &str, namespace: &str) -> Option<EntityRef> {
    EntityRef::parse(
        text,
        RefDefaults {
            kind: Some(default_kind),
            namespace,
        },
    )
    .ok()
}

/// A link to another entity, with what is known about it.
#[derive(Debug, Clone)]
pub struct EntityLink {
    pub href: String,
    pub label: String,
    pub kind: String,
    /// Short ref for titles and tests.
    pub reference: String,
    pub description: String,
}

/// A tag and the list of the entities that carry it.
#[derive(Debug, Clone)]
pub struct TagLink {
    pub name: String,
    pub href: String,
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

/// The string at `path`, or `""`.
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
            "" => DEFAULT_NAMESPACE.to_owned(),
            ns => ns.to_owned(),
        };
        let name = str_at(entity, &["metadata", "name"]).to_owned();
        let title = match str_at(entity, &["metadata", "title"]) {
            "" => name.clone(),
            title => title.to_owned(),
        };
        let owner = str_at(entity, &["spec", "owner"]).to_owned();
        // `spec.owner: team-a` on an entity in namespace `ops` is `group:ops/team-a`.
        let owner_href = resolve_ref(&owner, "group", &namespace)
            .map(|r| ref_href(&r))
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

    /// Each tag with the link to the entities that carry it.
    pub fn tag_links(&self) -> Vec<TagLink> {
        self.tags
            .iter()
            .map(|tag| TagLink {
                href: catalog_href(&[("tag", tag)]),
                name: tag.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owners_resolve_in_the_entitys_namespace() {
        let entity = json!({"kind": "Component", "metadata": {"name": "svc", "namespace": "ops"},
            "spec": {"owner": "team-a"}});
        let summary = EntitySummary::from_entity(&entity);
        assert_eq!(summary.owner_href, "/catalog/ops/group/team-a");
        let explicit = json!({"kind": "Component", "metadata": {"name": "svc", "namespace": "ops"},
            "spec": {"owner": "user:default/alice"}});
        assert_eq!(
            EntitySummary::from_entity(&explicit).owner_href,
            "/catalog/default/user/alice"
        );
    }

    #[test]
    fn values_in_urls_are_encoded() {
        assert_eq!(catalog_href(&[("tag", "c++")]), "/catalog?tag=c%2B%2B");
        assert_eq!(
            catalog_href(&[("kind", "Component"), ("q", "a b&c")]),
            "/catalog?kind=Component&q=a+b%26c"
        );
        assert_eq!(
            entity_href("Component", "Default", "a/b?c"),
            "/catalog/default/component/a%2Fb%3Fc"
        );
    }
}
