//! The catalog's entity model: what an entity is, how entities refer to each other, which
//! entities are valid, and which relations an entity's spec implies.
//!
//! Entities are kept as `serde_json::Value`s in Backstage's envelope (`apiVersion`, `kind`,
//! `metadata`, `spec`, plus the server's `relations` and `status`) rather than as typed structs:
//! catalog files routinely carry fields for plugins Atrium does not know, and those must survive
//! a round trip through the catalog and the Backstage-compatible API unchanged.
//!
//! Everything here is pure — no I/O, no database — so that every part of the server agrees on the
//! same rules:
//!
//! - ingestion parses a file (`catalog::yaml`), calls [`validate_entity_from_file`] and stores the
//!   errors with the entity, then adds the server-owned annotations and calls
//!   [`derive_relations`] before stitching;
//! - the REST API and the pages parse `kind:namespace/name` with [`EntityRef::parse`] and compare
//!   entities by [`EntityRef::key`];
//! - the scaffolder's `parseEntityRef` filter and `catalog:register` use the same parser and
//!   validator, so a template cannot produce an entity the catalog would refuse;
//! - `atrium validate` in CI runs the same validation a platform engineer will meet in production.
//!
//! Rules follow Backstage (`@backstage/catalog-model` and the catalog backend's built-in kinds
//! processor) so that existing `catalog-info.yaml` files load unchanged; where Atrium differs
//! (link URL schemes, collecting all errors rather than the first, the `Model` kind) the item's
//! documentation says so.

pub mod digest;
pub mod location;
pub mod processing;
pub mod refs;
pub mod relations;
pub mod validate;

pub use processing::ProcessingError;

pub use refs::{DEFAULT_NAMESPACE, EntityRef, RefDefaults, RefError};
pub use relations::{
    RELATION_API_CONSUMED_BY, RELATION_API_PROVIDED_BY, RELATION_CHILD_OF, RELATION_CONSUMES_API,
    RELATION_DEPENDENCY_OF, RELATION_DEPENDS_ON, RELATION_HAS_MEMBER, RELATION_HAS_PART,
    RELATION_MEMBER_OF, RELATION_OWNED_BY, RELATION_OWNER_OF, RELATION_PARENT_OF, RELATION_PART_OF,
    RELATION_PROVIDES_API, RELATION_TYPES, Relation, derive_relations,
};
pub use validate::{
    FieldError, SERVER_OWNED_ANNOTATIONS, accepted_api_versions, kind_schemas, validate_entity,
    validate_entity_from_file,
};

/// The dotted path of `key` inside the object at `parent` (`""` for the document itself), the form in
/// which every problem names its field: `metadata.annotations`, `spec.owner`.
pub fn field_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}
