//! `atrium validate`: lints catalog files the way a catalog repository's CI needs it — every problem with
//! file, line and field, so a pull request can be fixed in one pass. `repo` lints a whole checkout
//! (`--repo DIR`).

mod repo;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::model::refs::EntityRef;
use super::model::validate::validate_entity_from_file;
use super::placeholder::{as_placeholder, check_operator, content_value};
use super::yaml::{ParsedDocument, YamlLimits, parse_documents};

pub use self::repo::{DEFAULT_CATALOG_FILE, RepoError, catalog_file_globs, lint_repo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Summary of one lint run.
#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub entities: usize,
    pub problems: Vec<Problem>,
}

pub fn lint_files(paths: &[PathBuf]) -> Report {
    let mut linter = Linter::default();
    for path in paths {
        linter.lint_file(path, path);
    }
    linter.report
}

/// Lints files one at a time, remembering every entity ref so that one defined twice across files is
/// reported.
#[derive(Default)]
struct Linter {
    report: Report,
    /// Entity key → (shown file, line) of its first definition.
    seen_refs: HashMap<String, (PathBuf, usize)>,
}

impl Linter {
    /// Lints the file at `path`; problems name it `shown` (the path the user knows it by). Returns its
    /// documents, with placeholders resolved, or nothing when it cannot be read or parsed.
    fn lint_file(&mut self, path: &Path, shown: &Path) -> Vec<ParsedDocument> {
        self.report.files += 1;
        let problem = |line, field: Option<&str>, message: String| Problem {
            file: shown.to_path_buf(),
            line,
            field: field.map(str::to_owned),
            message,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    self.report
                        .problems
                        .push(problem(None, None, "file is not UTF-8 text".into()));
                    return Vec::new();
                }
            },
            Err(e) => {
                self.report
                    .problems
                    .push(problem(None, None, format!("cannot read: {e}")));
                return Vec::new();
            }
        };
        let mut documents = match parse_documents(&text, &YamlLimits::default()) {
            Ok(documents) => documents,
            Err(e) => {
                self.report.problems.push(problem(
                    e.line,
                    None,
                    format!("invalid YAML: {}", e.message),
                ));
                return Vec::new();
            }
        };
        for document in &mut documents {
            self.report.entities += 1;
            let mut value = document.value.clone();
            for (field, message) in resolve_placeholders(path, shown, &mut value, "") {
                self.report.problems.push(problem(
                    Some(document.line_of(&field)),
                    Some(&field),
                    message,
                ));
            }
            for error in validate_entity_from_file(&value) {
                self.report.problems.push(problem(
                    Some(document.line_of(&error.field)),
                    Some(&error.field),
                    error.message,
                ));
            }
            if let Some(entity_ref) = EntityRef::of_entity(&value) {
                let key = entity_ref.key();
                if let Some((first_file, first_line)) = self.seen_refs.get(&key) {
                    self.report.problems.push(problem(
                        Some(document.line),
                        Some("metadata.name"),
                        format!(
                            "entity {key} is already defined at {}:{first_line}",
                            first_file.display()
                        ),
                    ));
                } else {
                    self.seen_refs
                        .insert(key, (shown.to_path_buf(), document.line));
                }
            }
            document.value = value;
        }
        documents
    }
}

/// Replaces `$text`/`$json`/`$yaml` placeholders by the referenced file's content (relative to `file`)
/// so that validation sees what ingestion will see. Returns (field, problem) pairs; problems name the
/// referenced file relative to `shown`, the path the user knows `file` by.
fn resolve_placeholders(
    file: &Path,
    shown: &Path,
    value: &mut Value,
    path: &str,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    match value {
        Value::Object(_) if as_placeholder(value).is_some() => {
            let Some((op, argument)) =
                as_placeholder(value).map(|(o, a)| (o.to_owned(), a.clone()))
            else {
                return problems;
            };
            let Some(relative) = argument.as_str() else {
                problems.push((
                    path.to_owned(),
                    format!("{op} placeholder needs a string path"),
                ));
                return problems;
            };
            if let Err(message) = check_operator(&op) {
                problems.push((path.to_owned(), message));
                return problems;
            }
            if relative.starts_with("http://") || relative.starts_with("https://") {
                // Remote content is checked when Atrium reads it; offline linting keeps the field a string.
                *value = Value::String(String::new());
                return problems;
            }
            let target = file.parent().unwrap_or(Path::new(".")).join(relative);
            let shown_target = shown.parent().unwrap_or(Path::new(".")).join(relative);
            let resolved = std::fs::read_to_string(&target)
                .map_err(|e| {
                    format!(
                        "{op} {relative}: cannot read {}: {e}",
                        shown_target.display()
                    )
                })
                .and_then(|text| {
                    content_value(&op, text, relative, YamlLimits::default().max_bytes)
                        .map_err(|e| format!("{op}: {e}"))
                });
            match resolved {
                Ok(content) => *value = content,
                // Keep the field a string so validation does not report the same problem again.
                Err(message) => {
                    problems.push((path.to_owned(), message));
                    *value = Value::String(String::new());
                }
            }
        }
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let child_path = crate::catalog::model::field_path(path, key);
                problems.extend(resolve_placeholders(file, shown, child, &child_path));
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                problems.extend(resolve_placeholders(
                    file,
                    shown,
                    child,
                    &format!("{path}.{i}"),
                ));
            }
        }
        _ => {}
    }
    problems
}
