//! Generates a realistic catalog of N entities as YAML files: an organisation (groups with a
//! parent/children hierarchy, users, a few very large groups), domains, systems, components, APIs,
//! resources and AI models, with every reference pointing at a generated entity.
//!
//! Entities are spread round-robin over `files` files; `all.yaml` holds one `Location` entity whose
//! `spec.targets` lists them all. The generator is deterministic for a given seed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Small, fast, deterministic PRNG (SplitMix64): no dependency and the same catalog for the same seed.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "payments",
    "checkout",
    "search",
    "identity",
    "billing",
    "catalog",
    "orders",
    "inventory",
    "shipping",
    "pricing",
    "ledger",
    "fraud",
    "support",
    "notify",
    "profile",
    "reviews",
    "ads",
    "analytics",
    "gateway",
    "media",
    "booking",
    "loyalty",
    "tax",
    "risk",
];
const FIRST_NAMES: &[&str] = &[
    "ada",
    "alan",
    "grace",
    "linus",
    "barbara",
    "ken",
    "margaret",
    "dennis",
    "frances",
    "edsger",
    "radia",
    "tim",
    "hedy",
    "john",
    "katherine",
    "donald",
];
const LAST_NAMES: &[&str] = &[
    "lovelace",
    "turing",
    "hopper",
    "torvalds",
    "liskov",
    "thompson",
    "hamilton",
    "ritchie",
    "allen",
    "dijkstra",
    "perlman",
    "berners-lee",
    "lamarr",
    "backus",
    "johnson",
    "knuth",
];
const TAGS: &[&str] = &[
    "java",
    "go",
    "rust",
    "python",
    "typescript",
    "kotlin",
    "grpc",
    "rest",
    "kafka",
    "postgres",
    "critical",
    "pci",
];
const LIFECYCLES: &[&str] = &[
    "production",
    "production",
    "production",
    "experimental",
    "deprecated",
];
const RESOURCE_TYPES: &[&str] = &["database", "s3-bucket", "queue", "cache"];
const MODEL_TYPES: &[&str] = &["llm", "embedding", "classifier"];

/// What was generated: counts to check the server's answers against and names to query.
#[derive(Debug, Default)]
pub struct Generated {
    pub root_file: PathBuf,
    pub files: Vec<PathBuf>,
    pub total: usize,
    pub domains: usize,
    pub systems: usize,
    pub groups: usize,
    pub users: usize,
    pub components: usize,
    pub apis: usize,
    pub resources: usize,
    pub models: usize,
    /// Components per spec.type: service, website, library.
    pub component_types: [usize; 3],
    pub component_names: Vec<String>,
    pub largest_group_members: usize,
    pub bytes: usize,
}

pub const COMPONENT_TYPES: [&str; 3] = ["service", "website", "library"];

/// The entity names of each kind, decided before anything is written so refs can point anywhere.
struct Names {
    domains: Vec<String>,
    systems: Vec<String>,
    groups: Vec<String>,
    users: Vec<String>,
    components: Vec<String>,
    apis: Vec<String>,
    resources: Vec<String>,
    models: Vec<String>,
}

fn component_type(i: usize) -> usize {
    match i % 10 {
        0..=5 => 0,
        6 | 7 => 1,
        _ => 2,
    }
}

impl Names {
    fn new(total: usize) -> Self {
        let domains = (total / 500).max(1);
        let systems = (total / 50).max(2);
        let groups = (total / 50).max(3);
        let components = total / 3;
        let apis = total * 15 / 100;
        let resources = total / 10;
        let models = total / 20;
        let users = total - domains - systems - groups - components - apis - resources - models;
        let word = |i: usize| WORDS[i % WORDS.len()];
        Self {
            domains: (0..domains)
                .map(|i| format!("{}-domain-{i}", word(i)))
                .collect(),
            systems: (0..systems)
                .map(|i| format!("{}-system-{i}", word(i)))
                .collect(),
            groups: (0..groups)
                .map(|i| match i {
                    0 => "acme-org".to_owned(),
                    1..=8 => format!("{}-department-{i}", word(i)),
                    _ => format!("team-{}-{i}", word(i)),
                })
                .collect(),
            users: (0..users)
                .map(|i| {
                    format!(
                        "{}.{}-{i}",
                        FIRST_NAMES[i % FIRST_NAMES.len()],
                        LAST_NAMES[(i / FIRST_NAMES.len()) % LAST_NAMES.len()]
                    )
                })
                .collect(),
            components: (0..components)
                .map(|i| {
                    let suffix = ["svc", "web", "lib"][component_type(i)];
                    format!("{}-{suffix}-{i}", word(i / 7))
                })
                .collect(),
            apis: (0..apis)
                .map(|i| format!("{}-api-{i}", word(i / 3)))
                .collect(),
            resources: (0..resources)
                .map(|i| {
                    format!(
                        "{}-{}-{i}",
                        word(i / 5),
                        RESOURCE_TYPES[i % RESOURCE_TYPES.len()]
                    )
                })
                .collect(),
            models: (0..models)
                .map(|i| format!("{}-{}-{i}", word(i / 3), MODEL_TYPES[i % MODEL_TYPES.len()]))
                .collect(),
        }
    }
}

/// The parent of group `i` in a tree with 8 children per node (group 0 is the root).
fn group_parent(i: usize) -> Option<usize> {
    (i > 0).then(|| (i - 1) / 8)
}

/// The groups a user is a direct member of: one team, plus the two very large groups for some users
/// (the organisation itself has every fourth user, the first department every tenth).
fn user_groups(i: usize, groups: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(3);
    let team = if groups > 9 {
        9 + i % (groups - 9)
    } else {
        i % groups
    };
    out.push(team);
    for (every, group) in [(4, 0), (10, 1)] {
        if i.is_multiple_of(every) && group < groups && !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

fn metadata(out: &mut String, name: &str, title: &str, description: &str, tags: &[&str]) {
    let _ = write!(
        out,
        "metadata:\n  name: {name}\n  title: \"{title}\"\n  description: \"{description}\"\n"
    );
    if !tags.is_empty() {
        out.push_str("  tags:\n");
        for tag in tags {
            let _ = writeln!(out, "    - {tag}");
        }
    }
}

fn annotations_and_links(out: &mut String, name: &str) {
    let _ = write!(
        out,
        "  annotations:\n    github.com/project-slug: acme/{name}\n    backstage.io/techdocs-ref: dir:.\n  \
         links:\n    - url: https://github.com/acme/{name}\n      title: Repository\n"
    );
}

fn ref_list(out: &mut String, field: &str, refs: &[String]) {
    if refs.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {field}:");
    for r in refs {
        let _ = writeln!(out, "    - {r}");
    }
}

/// Up to `max` distinct indexes below `n`, none equal to `skip`.
fn distinct(rng: &mut Rng, n: usize, max: usize, skip: Option<usize>) -> Vec<usize> {
    let want = rng.below(max + 1);
    let mut out = Vec::with_capacity(want);
    for _ in 0..want * 2 {
        if out.len() == want {
            break;
        }
        let i = rng.below(n);
        if Some(i) != skip && !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn tags(rng: &mut Rng) -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let tag = *rng.pick(TAGS);
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// Builds every entity document, in an order that mixes kinds within each file.
fn documents(names: &Names, rng: &mut Rng, generated: &mut Generated) -> Vec<String> {
    let mut docs = Vec::with_capacity(generated.total);
    let group_ref = |rng: &mut Rng| format!("group:default/{}", rng.pick(&names.groups));
    let system_ref = |rng: &mut Rng| format!("system:default/{}", rng.pick(&names.systems));

    for (i, name) in names.domains.iter().enumerate() {
        let mut d = String::from("apiVersion: backstage.io/v1alpha1\nkind: Domain\n");
        metadata(
            &mut d,
            name,
            &format!("Domain {i}"),
            "A business domain of Acme.",
            &[],
        );
        let _ = write!(
            d,
            "spec:\n  owner: {}\n  type: product-area\n",
            group_ref(rng)
        );
        docs.push(d);
    }
    for (i, name) in names.systems.iter().enumerate() {
        let mut d = String::from("apiVersion: backstage.io/v1alpha1\nkind: System\n");
        metadata(
            &mut d,
            name,
            &format!("System {i}"),
            "A set of services that work together.",
            &[],
        );
        let _ = write!(
            d,
            "spec:\n  owner: {}\n  domain: domain:default/{}\n",
            group_ref(rng),
            names.domains[i % names.domains.len()]
        );
        docs.push(d);
    }
    let group_count = names.groups.len();
    let mut members = vec![0usize; group_count];
    for u in 0..names.users.len() {
        for g in user_groups(u, group_count) {
            members[g] += 1;
        }
    }
    generated.largest_group_members = members.iter().copied().max().unwrap_or(0);
    for (i, name) in names.groups.iter().enumerate() {
        let mut d = String::from("apiVersion: backstage.io/v1alpha1\nkind: Group\n");
        metadata(
            &mut d,
            name,
            &format!("Group {i}"),
            "A team of engineers.",
            &[],
        );
        let kind = match i {
            0 => "organization",
            1..=8 => "department",
            _ => "team",
        };
        let _ = write!(
            d,
            "spec:\n  type: {kind}\n  profile:\n    displayName: \"Group {i}\"\n    email: \"{name}@acme.example.com\"\n"
        );
        if let Some(parent) = group_parent(i) {
            let _ = writeln!(d, "  parent: group:default/{}", names.groups[parent]);
        }
        let children: Vec<String> = (8 * i + 1..(8 * i + 9).min(group_count))
            .map(|c| format!("group:default/{}", names.groups[c]))
            .collect();
        if children.is_empty() {
            d.push_str("  children: []\n");
        } else {
            ref_list(&mut d, "children", &children);
        }
        docs.push(d);
    }
    for (i, name) in names.users.iter().enumerate() {
        let mut d = String::from("apiVersion: backstage.io/v1alpha1\nkind: User\n");
        metadata(
            &mut d,
            name,
            &format!("User {i}"),
            "An engineer at Acme.",
            &[],
        );
        let _ = write!(
            d,
            "spec:\n  profile:\n    displayName: \"User {i}\"\n    email: \"{name}@acme.example.com\"\n"
        );
        let groups: Vec<String> = user_groups(i, group_count)
            .into_iter()
            .map(|g| format!("group:default/{}", names.groups[g]))
            .collect();
        ref_list(&mut d, "memberOf", &groups);
        docs.push(d);
    }
    for (i, name) in names.components.iter().enumerate() {
        let t = component_type(i);
        generated.component_types[t] += 1;
        let mut d = String::from("apiVersion: backstage.io/v1alpha1\nkind: Component\n");
        metadata(
            &mut d,
            name,
            &format!("Component {i}"),
            "Handles part of the business; see the repository for details.",
            &tags(rng),
        );
        annotations_and_links(&mut d, name);
        let _ = write!(
            d,
            "spec:\n  type: {}\n  lifecycle: {}\n  owner: {}\n  system: {}\n",
            COMPONENT_TYPES[t],
            rng.pick(LIFECYCLES),
            group_ref(rng),
            system_ref(rng)
        );
        let api = |j: usize| format!("api:default/{}", names.apis[j]);
        if !names.apis.is_empty() {
            let provides: Vec<String> = distinct(rng, names.apis.len(), 2, None)
                .into_iter()
                .map(api)
                .collect();
            ref_list(&mut d, "providesApis", &provides);
            let consumes: Vec<String> = distinct(rng, names.apis.len(), 3, None)
                .into_iter()
                .map(api)
                .collect();
            ref_list(&mut d, "consumesApis", &consumes);
        }
        let mut depends: Vec<String> = distinct(rng, names.components.len(), 2, Some(i))
            .into_iter()
            .map(|j| format!("component:default/{}", names.components[j]))
            .collect();
        if !names.resources.is_empty() && rng.below(2) == 0 {
            depends.push(format!("resource:default/{}", rng.pick(&names.resources)));
        }
        ref_list(&mut d, "dependsOn", &depends);
        docs.push(d);
    }
    for (i, name) in names.apis.iter().enumerate() {
        let mut d = String::from("apiVersion: backstage.io/v1alpha1\nkind: API\n");
        metadata(&mut d, name, &format!("API {i}"), "A REST API.", &tags(rng));
        let _ = write!(
            d,
            "spec:\n  type: openapi\n  lifecycle: {}\n  owner: {}\n  system: {}\n  definition: |\n    \
             openapi: 3.0.0\n    info:\n      title: {name}\n      version: 1.0.{i}\n    paths:\n      \
             /items:\n        get:\n          summary: List items\n          responses:\n            \
             \"200\":\n              description: OK\n",
            rng.pick(LIFECYCLES),
            group_ref(rng),
            system_ref(rng)
        );
        docs.push(d);
    }
    for (i, name) in names.resources.iter().enumerate() {
        let mut d = String::from("apiVersion: backstage.io/v1alpha1\nkind: Resource\n");
        metadata(
            &mut d,
            name,
            &format!("Resource {i}"),
            "Infrastructure a service needs.",
            &[],
        );
        let _ = write!(
            d,
            "spec:\n  type: {}\n  owner: {}\n  system: {}\n",
            RESOURCE_TYPES[i % RESOURCE_TYPES.len()],
            group_ref(rng),
            system_ref(rng)
        );
        docs.push(d);
    }
    for (i, name) in names.models.iter().enumerate() {
        let mut d = String::from("apiVersion: atrium.dev/v1alpha1\nkind: Model\n");
        metadata(
            &mut d,
            name,
            &format!("Model {i}"),
            "A machine-learning model.",
            &["ml"],
        );
        let model_type = MODEL_TYPES[i % MODEL_TYPES.len()];
        let _ = write!(
            d,
            "spec:\n  type: {model_type}\n  owner: {}\n  lifecycle: {}\n  system: {}\n  provider: Acme\n  \
             license: Apache-2.0\n  format: safetensors\n  tasks:\n    - {}\n  versions:\n",
            group_ref(rng),
            rng.pick(LIFECYCLES),
            system_ref(rng),
            match model_type {
                "llm" => "text-generation",
                "embedding" => "feature-extraction",
                _ => "text-classification",
            }
        );
        let versions = 1 + rng.below(3);
        for v in 1..=versions {
            let alias = if v == versions {
                "champion"
            } else if v + 1 == versions {
                "challenger"
            } else {
                ""
            };
            let _ = write!(
                d,
                "    - name: v{v}\n      uri: \"hf://acme/{name}@v{v}\"\n"
            );
            if !alias.is_empty() {
                let _ = write!(d, "      aliases:\n        - {alias}\n");
            }
            let _ = write!(
                d,
                "      metrics:\n        accuracy: 0.9{}\n        latency_ms: {}\n",
                rng.below(10),
                20 + rng.below(200)
            );
        }
        let mut depends = Vec::new();
        if i > 0 && i % 3 == 0 {
            depends.push(format!("model:default/{}", names.models[rng.below(i)]));
        }
        if !names.resources.is_empty() {
            depends.push(format!("resource:default/{}", rng.pick(&names.resources)));
        }
        ref_list(&mut d, "dependsOn", &depends);
        docs.push(d);
    }
    docs
}

/// Writes the catalog under `dir` (which must exist and be empty).
pub fn generate(dir: &Path, total: usize, files: usize, seed: u64) -> anyhow::Result<Generated> {
    anyhow::ensure!(total >= 100, "--entities must be at least 100");
    anyhow::ensure!(files >= 1, "--files must be at least 1");
    let names = Names::new(total);
    let mut generated = Generated {
        total,
        domains: names.domains.len(),
        systems: names.systems.len(),
        groups: names.groups.len(),
        users: names.users.len(),
        components: names.components.len(),
        apis: names.apis.len(),
        resources: names.resources.len(),
        models: names.models.len(),
        component_names: names.components.clone(),
        ..Generated::default()
    };
    anyhow::ensure!(generated.users > 0, "too few entities to generate users");
    let mut rng = Rng::new(seed);
    let docs = documents(&names, &mut rng, &mut generated);
    anyhow::ensure!(
        docs.len() == total,
        "generated {} documents, expected {total}",
        docs.len()
    );

    // Round-robin: every file gets a mix of kinds, as a monorepo's catalog files would.
    let mut contents = vec![String::new(); files];
    for (i, doc) in docs.iter().enumerate() {
        let file = &mut contents[i % files];
        if !file.is_empty() {
            file.push_str("---\n");
        }
        file.push_str(doc);
    }
    let mut root = String::from(
        "# Generated by atrium-bench.\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  \
         name: atrium-bench\n  description: \"Benchmark catalog\"\nspec:\n  targets:\n",
    );
    for (i, text) in contents.iter().enumerate() {
        if text.is_empty() {
            continue;
        }
        let name = format!("f{i:04}.yaml");
        let path = dir.join(&name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        generated.bytes += text.len();
        generated.files.push(path);
        let _ = writeln!(root, "    - ./{name}");
    }
    let root_file = dir.join("all.yaml");
    std::fs::write(&root_file, &root)
        .with_context(|| format!("writing {}", root_file.display()))?;
    generated.bytes += root.len();
    generated.root_file = root_file;
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_backstage_rules_and_are_unique() {
        let names = Names::new(100_000);
        let all = [
            &names.domains,
            &names.systems,
            &names.groups,
            &names.users,
            &names.components,
            &names.apis,
            &names.resources,
            &names.models,
        ];
        for list in all {
            let mut seen = std::collections::HashSet::new();
            for name in list {
                assert!(name.len() <= 63, "{name}");
                assert!(
                    name.split(['-', '_', '.'])
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric())),
                    "{name}"
                );
                assert!(seen.insert(name), "duplicate {name}");
            }
        }
        assert_eq!(all.iter().map(|l| l.len()).sum::<usize>(), 100_000);
    }

    #[test]
    fn group_tree_is_consistent() {
        for i in 1..100 {
            let parent = group_parent(i).expect("non-root");
            assert!((8 * parent + 1..8 * parent + 9).contains(&i));
        }
    }
}
