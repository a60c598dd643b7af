//! Processing one location: read its target, parse every document, validate, resolve placeholders,
//! apply defaults and server annotations, derive relations, and collect child locations declared by
//! `Location` entities. Pure with respect to the database: `store.rs` writes the outcome.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::catalog::db::LocationJob;
use crate::catalog::model::ProcessingError;
use crate::catalog::model::digest::sha256_hex;
use crate::catalog::model::location::{
    ANNOTATION_LOCATION, ANNOTATION_ORIGIN_LOCATION, generated_location_entity,
};
use crate::catalog::model::refs::EntityRef;
use crate::catalog::model::relations::{Relation, derive_relations};
use crate::catalog::model::validate::validate_entity_from_file;
use crate::catalog::placeholder;
use crate::catalog::source::{ReadError, Reader, Target};
use crate::catalog::yaml::{ParsedDocument, YamlLimits, parse_documents};
use crate::git::GitFile;
use crate::git::cache::Snapshot;
use crate::git::web::source_annotations;

/// Placeholders resolved per entity at most; a file full of `$text` cannot make us read the disk forever.
const MAX_PLACEHOLDERS: usize = 50;

#[derive(Debug, Clone)]
pub struct EmittedEntity {
    pub entity_ref: EntityRef,
    pub key: String,
    pub processed: Value,
    pub content_hash: String,
    pub errors: Vec<ProcessingError>,
    pub relations: Vec<Relation>,
    /// Targets of a `Location` entity, resolved against this location.
    pub child_locations: Vec<Target>,
}

#[derive(Debug, Default)]
pub struct ProcessOutput {
    pub entities: Vec<EmittedEntity>,
    /// Documents that failed and name an entity: that entity (if stored here) keeps its last good body
    /// and shows the errors.
    pub rejected: Vec<(String, Vec<ProcessingError>)>,
    /// Problems that belong to no entity (shown on the Location entity pointing here).
    pub location_errors: Vec<ProcessingError>,
    /// The target could not be read or parsed at all: nothing stored may be orphaned.
    pub read_failed: bool,
    /// For a git repository: the commit fetched and the catalog files found in it.
    pub git_snapshot: Option<Snapshot>,
}

pub async fn process_location(reader: &Reader, job: &LocationJob) -> ProcessOutput {
    let mut output = ProcessOutput::default();
    let location_ref = format!("{}:{}", job.location_type, job.target);
    let origin_ref = format!("{}:{}", job.root_type, job.root_target);

    // The generated Location entity of a registered location exists even when its target cannot be read,
    // so the error has an entity to be shown on.
    let mut documents: Vec<(Value, String)> = Vec::new();
    if job.is_root() {
        documents.push((
            generated_location_entity(&job.location_type, &job.target),
            format!("registered location {location_ref}"),
        ));
    }

    let mut target = reader.resolve(&job.location_type, &job.target);
    if let Ok(Target::GitFile(file)) = &mut target {
        // Every file of a repository is read at the commit the repository's processing fetched.
        file.commit.clone_from(&job.root_version);
    }
    let parsed = match &target {
        Ok(Target::GitRepo(repo)) => match reader.git_snapshot(repo).await {
            Ok(snapshot) => {
                output.git_snapshot = Some(snapshot);
                Ok(Vec::new())
            }
            Err(e) => Err(ProcessingError::new(e.name(), e.to_string())),
        },
        Ok(target) => read_and_parse(reader, target).await,
        Err(e) => Err(ProcessingError::new(e.name(), e.to_string())),
    };
    match parsed {
        Ok(parsed) => {
            for doc in parsed {
                let place = format!("{} line {}", job.target, doc.line);
                documents.push((doc.value, place));
            }
        }
        Err(error) => {
            output.read_failed = true;
            output.location_errors.push(error);
        }
    }

    let mut seen_keys = HashSet::new();
    for (index, (document, place)) in documents.into_iter().enumerate() {
        let is_generated = job.is_root() && index == 0;
        let entity_ref = EntityRef::of_entity(&document);
        let key = entity_ref.as_ref().map(EntityRef::key);
        if let Some(key) = &key
            && !seen_keys.insert(key.clone())
        {
            output.location_errors.push(ProcessingError::new(
                "ConflictError",
                format!("{place}: entity {key} is defined more than once in this location; the first one is kept"),
            ));
            continue;
        }
        let mut document = document;
        let base = target.as_ref().ok();
        // Placeholders go first: `definition: {$text: ./api.yaml}` only becomes a valid string once read.
        if let (false, Some(base)) = (is_generated, base) {
            let mut budget = MAX_PLACEHOLDERS;
            if let Err(e) = resolve_placeholders(reader, base, &mut document, "", &mut budget).await
            {
                let error = ProcessingError::new(&e.name, format!("{place}: {}", e.message));
                match key {
                    Some(key) => output.rejected.push((key, vec![error])),
                    None => output.location_errors.push(error),
                }
                continue;
            }
        }
        let field_errors = if is_generated {
            Vec::new()
        } else {
            validate_entity_from_file(&document)
        };
        if !field_errors.is_empty() {
            let errors: Vec<ProcessingError> = field_errors
                .iter()
                .map(|e| {
                    ProcessingError::new(
                        "InputError",
                        format!("{place}: {}: {}", e.field, e.message),
                    )
                })
                .collect();
            match key {
                Some(key) => output.rejected.push((key, errors)),
                None => output.location_errors.extend(errors),
            }
            continue;
        }
        let (Some(entity_ref), Some(key)) = (entity_ref, key) else {
            continue; // validation guarantees a ref; nothing to do otherwise
        };
        if let (false, Some(Target::GitFile(file))) = (is_generated, base) {
            add_source_annotations(reader, file, &mut document);
        }
        // The generated entity stands for this very location; following its target would read it twice.
        let follow_targets = if is_generated { None } else { base };
        match finish_entity(
            reader,
            follow_targets,
            document,
            &location_ref,
            &origin_ref,
            &place,
        ) {
            Ok(emitted) => output.entities.push(EmittedEntity {
                entity_ref,
                key,
                ..emitted
            }),
            Err(errors) => output.rejected.push((key, errors)),
        }
    }
    // A repository's generated Location entity declares one child location per catalog file.
    if let (Some(snapshot), Ok(Target::GitRepo(repo))) = (&output.git_snapshot, &target)
        && let Some(generated) = output.entities.first_mut()
    {
        generated.child_locations = snapshot
            .files
            .iter()
            .map(|(path, _)| {
                Target::GitFile(GitFile {
                    repo: repo.clone(),
                    path: path.clone(),
                    commit: Some(snapshot.commit.clone()),
                })
            })
            .collect();
    }
    output
}

/// Links back to the file in its repository. An annotation the file sets itself is kept.
fn add_source_annotations(reader: &Reader, file: &GitFile, document: &mut Value) {
    let settings = reader.git_settings(&file.repo);
    let Some(metadata) = document.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(annotations) = annotations {
        for (key, value) in source_annotations(file, &settings) {
            annotations
                .entry(key.to_owned())
                .or_insert(Value::String(value));
        }
    }
}

async fn read_and_parse(
    reader: &Reader,
    target: &Target,
) -> Result<Vec<ParsedDocument>, ProcessingError> {
    let text = reader
        .read(target)
        .await
        .map_err(|e| ProcessingError::new(e.name(), e.to_string()))?;
    let limits = YamlLimits {
        max_bytes: reader.max_bytes(),
        ..YamlLimits::default()
    };
    parse_documents(&text, &limits).map_err(|e| {
        let line = e.line.map(|l| format!(" line {l}")).unwrap_or_default();
        ProcessingError::new(
            "InputError",
            format!(
                "{}{line}: invalid YAML: {}",
                target.target_string(),
                e.message
            ),
        )
    })
}

/// Defaults, server annotations, relations and child locations of a valid entity. `base` is where a
/// Location entity's relative targets are resolved; `None` means its targets are not followed.
fn finish_entity(
    reader: &Reader,
    base: Option<&Target>,
    mut entity: Value,
    location_ref: &str,
    origin_ref: &str,
    place: &str,
) -> Result<EmittedEntity, Vec<ProcessingError>> {
    // Relations, status, uid and etag are the server's to compute; whatever a file says is dropped.
    if let Value::Object(map) = &mut entity {
        map.remove("relations");
        map.remove("status");
        if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
            metadata.remove("uid");
            metadata.remove("etag");
        }
    }
    let metadata = entity
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            vec![ProcessingError::new(
                "InputError",
                format!("{place}: metadata must be an object"),
            )]
        })?;
    metadata
        .entry("namespace")
        .or_insert_with(|| Value::String("default".to_owned()));
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(annotations) = annotations {
        annotations.insert(
            ANNOTATION_LOCATION.to_owned(),
            Value::String(location_ref.to_owned()),
        );
        annotations.insert(
            ANNOTATION_ORIGIN_LOCATION.to_owned(),
            Value::String(origin_ref.to_owned()),
        );
    }

    let mut errors = Vec::new();
    let mut child_locations = Vec::new();
    if base.is_some()
        && entity
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.eq_ignore_ascii_case("location"))
    {
        let (targets, target_errors) = location_targets(reader, base, &entity);
        child_locations = targets;
        errors.extend(
            target_errors
                .into_iter()
                .map(|m| ProcessingError::new("InputError", format!("{place}: {m}"))),
        );
    }

    let relations = derive_relations(&entity);
    let content_hash = sha256_hex(entity.to_string().as_bytes());
    Ok(EmittedEntity {
        entity_ref: EntityRef {
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
        },
        key: String::new(),
        processed: entity,
        content_hash,
        errors,
        relations,
        child_locations,
    })
}

/// The targets of a Location entity (`spec.target` and `spec.targets`), resolved against where the entity
/// was read. `spec.type` defaults to the reading location's type.
fn location_targets(
    reader: &Reader,
    base: Option<&Target>,
    entity: &Value,
) -> (Vec<Target>, Vec<String>) {
    let spec = entity.get("spec");
    let declared_type = spec.and_then(|s| s.get("type")).and_then(Value::as_str);
    let mut raw: Vec<&str> = Vec::new();
    if let Some(target) = spec.and_then(|s| s.get("target")).and_then(Value::as_str) {
        raw.push(target);
    }
    for target in spec
        .and_then(|s| s.get("targets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(target) = target.as_str() {
            raw.push(target);
        }
    }
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for target in raw {
        // Inside a repository a relative target is another file of it, whatever type is declared:
        // Backstage catalogs in git say `type: url` with relative targets.
        let in_repository = matches!(base, Some(Target::GitFile(_))) && !target.contains("://");
        let resolved = match (declared_type, base) {
            (Some(kind), Some(base)) if kind == base.location_type() || in_repository => {
                reader.resolve_relative(base, target)
            }
            (Some(kind), _) => reader.resolve(kind, target),
            (None, Some(base)) => reader.resolve_relative(base, target),
            (None, None) => Err(ReadError::NotAllowed(format!(
                "cannot resolve target {target:?} without a base"
            ))),
        };
        match resolved {
            Ok(resolved) if !targets.contains(&resolved) => targets.push(resolved),
            Ok(_) => {}
            Err(e) => errors.push(format!("spec.targets: {e}")),
        }
    }
    (targets, errors)
}

struct PlaceholderError {
    name: String,
    message: String,
}

/// Replaces `{$text: path}`, `{$json: path}` and `{$yaml: path}` objects by the content of `path`, read
/// relative to the entity's own location under the same rules as the location itself.
fn resolve_placeholders<'a>(
    reader: &'a Reader,
    base: &'a Target,
    value: &'a mut Value,
    path: &'a str,
    budget: &'a mut usize,
) -> futures::future::BoxFuture<'a, Result<(), PlaceholderError>> {
    Box::pin(async move {
        match value {
            Value::Object(_) if placeholder::as_placeholder(value).is_some() => {
                let Some((op, argument)) = placeholder::as_placeholder(value) else {
                    return Ok(());
                };
                let op = op.to_owned();
                let field = if path.is_empty() {
                    op.clone()
                } else {
                    format!("{path}.{op}")
                };
                let input_error = |message: String| PlaceholderError {
                    name: "InputError".into(),
                    message: format!("{field}: {message}"),
                };
                let Value::String(relative) = argument.clone() else {
                    return Err(input_error(format!(
                        "placeholder value must be a string, got {argument}"
                    )));
                };
                placeholder::check_operator(&op).map_err(input_error)?;
                if *budget == 0 {
                    return Err(input_error(format!(
                        "more than {MAX_PLACEHOLDERS} placeholders in one entity"
                    )));
                }
                *budget -= 1;
                let fail = |e: ReadError| PlaceholderError {
                    name: e.name().to_owned(),
                    message: format!("{field}: {e}"),
                };
                let target = reader.resolve_relative(base, &relative).map_err(fail)?;
                let text = reader.read(&target).await.map_err(fail)?;
                *value = placeholder::content_value(
                    &op,
                    text,
                    &target.target_string(),
                    reader.max_bytes(),
                )
                .map_err(input_error)?;
                Ok(())
            }
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let child_path = crate::catalog::model::field_path(path, key);
                    resolve_placeholders(reader, base, child, &child_path, budget).await?;
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    resolve_placeholders(reader, base, child, &format!("{path}.{i}"), budget)
                        .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    })
}
