//! Where entities come from, as the entities themselves show it: the Location entity generated for a
//! registered location, and the annotations that name an entity's location.

use serde_json::{Value, json};
use sha1::Digest;

use super::digest::hex;

/// The location an entity was read from, `type:target`.
pub const ANNOTATION_LOCATION: &str = "backstage.io/managed-by-location";
/// The registered location at the top of the tree the entity came through, `type:target`.
pub const ANNOTATION_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";
/// Set to `"true"` on an entity its location no longer emits, under the `keep` orphan policy.
pub const ANNOTATION_ORPHAN: &str = "backstage.io/orphan";

/// Name of the Location entity generated for a registered location: `generated-<sha1 of type:target>`,
/// exactly as Backstage names it, so refs survive a move from Backstage to Atrium.
pub fn generated_location_name(location_type: &str, target: &str) -> String {
    let digest = sha1::Sha1::digest(format!("{location_type}:{target}").as_bytes());
    format!("generated-{}", hex(&digest))
}

/// The Location entity generated for a registered location: the root of its entity tree, which exists
/// even when the target cannot be read, so that the error has an entity to be shown on.
pub fn generated_location_entity(location_type: &str, target: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {
            "name": generated_location_name(location_type, target),
            "namespace": "default",
        },
        "spec": { "type": location_type, "target": target },
    })
}

/// Whether an entity is the generated Location entity of a registration (an artefact of registering,
/// not a file's content).
pub fn is_generated_location(entity: &Value) -> bool {
    entity["metadata"]["name"]
        .as_str()
        .is_some_and(|name| name.starts_with("generated-"))
}
