//! The layering rule of docs/ARCHITECTURE.md, checked on the source: dependencies between modules point
//! one way only. A module here is a top-level module (`ui`, `git`, `error`, ...) or, inside `catalog`,
//! one of its parts (`catalog::api`, `catalog::db`, ...). Every `crate::` and `super::` path in a file
//! is an import of the module it names; the test fails on any cycle and names it.
//!
//! Run alone: `cargo nextest run -p atrium --test layering`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The source files with the module path each one defines.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).expect("under src");
                let mut segments: Vec<String> = relative
                    .iter()
                    .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_owned())
                    .collect();
                if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
                    segments.pop();
                }
                if segments != ["main"] {
                    found.insert(segments, path);
                }
            }
        }
    }
    found
}

/// Feature modules, whose parts are told apart.
const FEATURES: [&str; 4] = ["catalog", "scaffolder", "deploy", "auth"];

/// The part of the house a module belongs to: `catalog::x` or `scaffolder::x` inside a feature, else
/// the top module. (A feature's handlers sit above `state`, its service below it.)
fn part_of(module: &[String]) -> String {
    match module {
        [] => "crate".to_owned(),
        [first, second, ..] if FEATURES.contains(&first.as_str()) => format!("{first}::{second}"),
        [first, ..] => first.clone(),
    }
}

/// Every module path a file names, written as `crate::...` or `super::...`, with `use` groups
/// (`crate::{a::b, c}`) expanded one level, which is as deep as the code nests them. Inside the
/// file's inline test module (`#[cfg(test)] mod tests {`), `super` is the file's own module.
fn named_paths(source: &str, module: &[String]) -> Vec<Vec<String>> {
    let tests_start = source
        .find("#[cfg(test)]\nmod ")
        .filter(|at| {
            source[*at..]
                .lines()
                .nth(1)
                .is_some_and(|l| l.ends_with('{'))
        })
        .unwrap_or(source.len());
    let mut paths = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !source.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &source[i..];
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let start = if at_word_start && rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if at_word_start && rest.starts_with("super::") {
            // `super` of a `mod.rs` or of a file module is its parent module.
            let mut base = module.to_vec();
            let mut len = 0;
            let mut first = i >= tests_start;
            while source[i + len..].starts_with("super::") {
                if !std::mem::take(&mut first) {
                    base.pop();
                }
                len += "super::".len();
            }
            Some((base, len))
        } else {
            None
        };
        let Some((base, len)) = start else {
            i += 1;
            continue;
        };
        let tail = &source[i + len..];
        if let Some(group) = tail.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                paths.push(extend(&base, item.trim()));
            }
        } else {
            paths.push(extend(&base, tail));
        }
        i += len;
    }
    paths
}

fn extend(base: &[String], tail: &str) -> Vec<String> {
    let end = tail
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(tail.len());
    let mut path = base.to_vec();
    path.extend(
        tail[..end]
            .split("::")
            .take_while(|s| !s.is_empty())
            .map(str::to_owned),
    );
    path
}

#[test]
fn modules_depend_one_way_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    assert!(modules.len() > 20, "found the source files");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        // Comments name modules without importing them.
        let source: String = std::fs::read_to_string(file)
            .expect("read source")
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .flat_map(|line| [line, "\n"])
            .collect();
        let from = part_of(module);
        for path in named_paths(&source, module) {
            // The longest prefix that is a module is the module imported.
            let target = (0..=path.len())
                .rev()
                .map(|n| &path[..n])
                .find(|prefix| modules.contains_key(*prefix))
                .unwrap_or(&[]);
            let to = part_of(target);
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    assert!(
        edges
            .get("catalog::api")
            .is_some_and(|e| e.contains("catalog::db") || e.contains("catalog")),
        "the scan sees imports: {edges:#?}"
    );
    assert!(
        !edges.values().any(|to| to.contains("crate")),
        "nothing imports the crate root (it assembles the modules): {edges:#?}"
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!(
            "modules import each other: {}\nall imports: {edges:#?}",
            cycle.join(" -> ")
        );
    }
}

/// A cycle in the graph, as the list of its parts with the first repeated at the end.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn a_cycle_is_found_and_named() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        find_cycle(&edges).expect("cycle"),
        ["a", "b", "c", "a"].map(str::to_owned)
    );
    let acyclic: BTreeMap<String, BTreeSet<String>> =
        [("a".to_owned(), BTreeSet::from(["b".to_owned()]))].into();
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn paths_are_read_from_uses_groups_and_super() {
    let module = ["catalog", "db", "entities"].map(str::to_owned);
    let paths = named_paths(
        "use crate::{error::AppError, catalog::model};\nlet x = super::stitch::f();\n// no_crate::x\n\
         #[cfg(test)]\nmod tests {\n    use super::Row;\n}",
        &module,
    );
    assert_eq!(
        paths,
        vec![
            vec!["error", "AppError"],
            vec!["catalog", "model"],
            vec!["catalog", "db", "stitch", "f"],
            vec!["catalog", "db", "entities", "Row"],
        ]
    );
}
