//! `--git`: the catalog spread over bare git repositories (one `catalog-info.yaml` each), read by the
//! server as a `file://` organisation. Measures what git sources add: time from a push webhook to the
//! change being visible, the cost of a refresh cycle in which nothing changed, and ingestion of a group
//! with very many members and an entity with very many dependents.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use git2::{Repository, Signature};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::generate::Generated;
use crate::load::ms;
use crate::psql;

/// The webhook secret the benchmark's server is started with.
pub const WEBHOOK_SECRET: &str = "atrium-bench-webhook-secret";
const BRANCH: &str = "main";
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);
/// For checks that cost the server real work (big entities, database scans).
const POLL_SLOW: Duration = Duration::from_millis(100);

/// Where the repositories are and the config file that makes the server read them.
pub struct GitSource {
    pub repos_dir: PathBuf,
    pub config_file: PathBuf,
    pub repositories: Vec<PathBuf>,
}

/// Puts each generated catalog file into a repository of its own, as `catalog-info.yaml`, and writes
/// an atrium.yaml naming the directory as a `file://` organisation.
pub fn prepare(dir: &Path, generated: &Generated) -> anyhow::Result<GitSource> {
    let repos_dir = dir.join("repos");
    std::fs::create_dir_all(&repos_dir)?;
    let mut repositories = Vec::new();
    for (i, file) in generated.files.iter().enumerate() {
        let content = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let path = repos_dir.join(format!("r{i:04}.git"));
        let repo = init(&path)?;
        commit(&repo, &[("catalog-info.yaml", content)], "catalog")?;
        repositories.push(path);
    }
    let config_file = dir.join("atrium-git.yaml");
    std::fs::write(
        &config_file,
        format!(
            "catalog:\n  locations: []\n  file_roots: [{dir}]\n  refresh_interval_seconds: 3600\n  git:\n    cache_dir: {cache}\n    repositories:\n      - organisation: file://{repos}\n        repositories: [\"r*.git\"]\n        branch: {BRANCH}\n",
            dir = dir.display(),
            cache = dir.join("git-cache").display(),
            repos = repos_dir.display(),
        ),
    )?;
    Ok(GitSource {
        repos_dir,
        config_file,
        repositories,
    })
}

fn init(path: &Path) -> anyhow::Result<Repository> {
    let repo =
        Repository::init_bare(path).with_context(|| format!("creating {}", path.display()))?;
    repo.set_head(&format!("refs/heads/{BRANCH}"))?;
    Ok(repo)
}

/// Commits the given files (path, content) on top of the branch's tree.
fn commit(repo: &Repository, files: &[(&str, Vec<u8>)], message: &str) -> anyhow::Result<String> {
    let refname = format!("refs/heads/{BRANCH}");
    let parent = repo
        .refname_to_id(&refname)
        .ok()
        .and_then(|id| repo.find_commit(id).ok());
    let base = parent.as_ref().map(git2::Commit::tree).transpose()?;
    // Files go into directories of their own; build each directory's tree, then the root.
    let mut by_dir: std::collections::BTreeMap<&str, Vec<(&str, &Vec<u8>)>> = Default::default();
    for (path, content) in files {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        by_dir.entry(dir).or_default().push((name, content));
    }
    let mut root = repo.treebuilder(base.as_ref())?;
    for (dir, entries) in by_dir {
        if dir.is_empty() {
            for (name, content) in entries {
                root.insert(name, repo.blob(content)?, 0o100644)?;
            }
            continue;
        }
        anyhow::ensure!(!dir.contains('/'), "one directory level only: {dir}");
        let existing = base
            .as_ref()
            .and_then(|t| t.get_name(dir))
            .and_then(|e| repo.find_tree(e.id()).ok());
        let mut sub = repo.treebuilder(existing.as_ref())?;
        for (name, content) in entries {
            sub.insert(name, repo.blob(content)?, 0o100644)?;
        }
        root.insert(dir, sub.write()?, 0o040000)?;
    }
    let tree = repo.find_tree(root.write()?)?;
    let signature = Signature::now("atrium-bench", "bench@atrium.invalid")?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo.commit(
        Some(&refname),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )?;
    Ok(id.to_string())
}

/// HMAC-SHA256 (RFC 2104), hex: GitHub's `X-Hub-Signature-256`.
fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut key = secret.to_vec();
    if key.len() > 64 {
        key = Sha256::digest(&key).to_vec();
    }
    key.resize(64, 0);
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::digest([pad(0x36), body.to_vec()].concat());
    let outer = Sha256::digest([pad(0x5c), inner.to_vec()].concat());
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends a signed GitHub push event for the repository at `path`.
async fn push_webhook(client: &reqwest::Client, base: &str, path: &Path) -> anyhow::Result<Value> {
    let body = json!({
        "ref": format!("refs/heads/{BRANCH}"),
        "repository": {
            "clone_url": format!("file://{}", path.display()),
            "default_branch": BRANCH,
        },
    })
    .to_string();
    let response = client
        .post(format!("{base}/api/catalog/webhooks/git"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header(
            "x-hub-signature-256",
            format!(
                "sha256={}",
                hmac_sha256_hex(WEBHOOK_SECRET.as_bytes(), body.as_bytes())
            ),
        )
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.as_u16() == 202,
        "webhook answered {status}: {answer}"
    );
    Ok(answer)
}

async fn description(
    client: &reqwest::Client,
    base: &str,
    kind: &str,
    name: &str,
) -> Option<String> {
    let url = format!("{base}/api/catalog/entities/by-name/{kind}/default/{name}");
    let entity: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    entity["metadata"]["description"]
        .as_str()
        .map(str::to_owned)
}

/// Polls until `check` holds; returns how long it took.
async fn until<F, Fut>(
    started: Instant,
    poll: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        if check().await {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < VISIBLE_TIMEOUT,
            "{what}: not done after {VISIBLE_TIMEOUT:?}"
        );
        tokio::time::sleep(poll).await;
    }
}

pub struct GitResults {
    pub push_to_visible: Vec<Duration>,
    pub idle_cycle: Duration,
    pub idle_repositories: usize,
    pub idle_writes: Vec<(String, i64)>,
    pub idle_stitched: i64,
    pub fanout: Vec<Fanout>,
}

pub struct Fanout {
    pub size: usize,
    pub ingest: Duration,
    pub group_fetch: Duration,
}

/// Rows inserted, updated and deleted per table of the benchmark database, from the statistics views.
fn table_writes(database_url: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let out = psql(
        database_url,
        "select relname || '=' || (n_tup_ins + n_tup_upd + n_tup_del) from pg_stat_user_tables order by relname",
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(t, n)| Some((t.to_owned(), n.trim().parse().ok()?)))
        .collect())
}

fn stitched_total(metrics: &str) -> i64 {
    metrics
        .lines()
        .find(|l| l.starts_with("atrium_catalog_entities_stitched_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as i64)
}

pub async fn measure(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
    dir: &Path,
    source: &GitSource,
) -> anyhow::Result<GitResults> {
    println!(
        "\n== git: {} repositories under {}",
        source.repositories.len(),
        source.repos_dir.display()
    );

    // 1. Push to a repository, send its webhook, wait until the API shows the change.
    let mut push_to_visible = Vec::new();
    for round in 0..5 {
        let index = (round * 197) % source.repositories.len();
        let path = &source.repositories[index];
        let repo = Repository::open_bare(path)?;
        let name = format!("bench-push-{round}");
        let marker = format!("pushed in round {round}");
        let doc = format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {marker}\nspec:\n  type: service\n  lifecycle: experimental\n  owner: bench\n"
        );
        let tip = repo.revparse_single(&format!("refs/heads/{BRANCH}:catalog-info.yaml"))?;
        let mut content = tip.peel_to_blob()?.content().to_vec();
        content.extend_from_slice(format!("---\n{doc}").as_bytes());
        commit(&repo, &[("catalog-info.yaml", content)], "add a component")?;
        let started = Instant::now();
        let answer = push_webhook(client, base, path).await?;
        anyhow::ensure!(
            answer["refreshed"].as_array().is_some_and(|r| r.len() == 1),
            "the webhook refreshed {answer}"
        );
        let took = until(started, POLL, "push to visible", || async {
            description(client, base, "component", &name)
                .await
                .as_deref()
                == Some(marker.as_str())
        })
        .await?;
        println!(
            "  push -> webhook -> visible in the API, repository {index}: {}",
            ms(took)
        );
        push_to_visible.push(took);
    }

    // 2. A refresh cycle over every repository with nothing changed.
    let settle = Duration::from_secs(12);
    // Table statistics reach the views within about a second of a commit, or after 10 s idle.
    tokio::time::sleep(settle).await;
    let metrics_before = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let writes_before = table_writes(database_url)?;
    let cycle_start = psql(database_url, "select now()")?.trim().to_owned();
    let started = Instant::now();
    let due = psql(
        database_url,
        "with d as (update location set next_refresh_at = now() where type = 'git' returning 1) select count(*) from d",
    )?;
    let repositories: usize = due.trim().parse().unwrap_or(0);
    let pending = format!(
        "select count(*) from location where (type = 'git' and (last_refreshed_at is null or last_refreshed_at < '{cycle_start}'))
            or (type in ('git', 'git-file') and next_refresh_at <= now())"
    );
    let idle_cycle = until(started, POLL_SLOW, "idle refresh cycle", || async {
        psql(database_url, &pending).is_ok_and(|n| n.trim() == "0")
    })
    .await?;
    println!(
        "  refresh cycle of {repositories} unchanged repositories (fetch + list + compare): {}",
        ms(idle_cycle)
    );
    tokio::time::sleep(settle).await;
    let writes_after = table_writes(database_url)?;
    let metrics_after = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let idle_stitched = stitched_total(&metrics_after) - stitched_total(&metrics_before);
    let idle_writes: Vec<(String, i64)> = writes_after
        .iter()
        .map(|(table, after)| {
            let before = writes_before
                .iter()
                .find(|(t, _)| t == table)
                .map_or(0, |(_, n)| *n);
            (table.clone(), after - before)
        })
        .filter(|(_, n)| *n != 0)
        .collect();
    println!(
        "  rows written in that cycle (inserted + updated + deleted, from pg_stat_user_tables): {} ; entities stitched: {idle_stitched}",
        if idle_writes.is_empty() {
            "none".to_owned()
        } else {
            idle_writes
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "    (the location updates include the {repositories} made by the benchmark to start the cycle)"
    );

    // 3. A group with many members and a component with many dependents, 1k then 10k.
    let mut fanout = Vec::new();
    for size in [1_000, 10_000] {
        let result = fanout_repository(client, base, database_url, dir, size).await?;
        println!(
            "  group of {size} members + component with {size} dependents ({} entities): ingested and stitched in {}; GET the group: {}",
            2 * size + 2,
            ms(result.ingest),
            ms(result.group_fetch)
        );
        fanout.push(result);
    }
    Ok(GitResults {
        push_to_visible,
        idle_cycle,
        idle_repositories: repositories,
        idle_writes,
        idle_stitched,
        fanout,
    })
}

/// A repository holding a group with `size` members and a component `size` others depend on, split in
/// files of 500 documents; registered through the API, timed until both hubs show every relation.
async fn fanout_repository(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
    dir: &Path,
    size: usize,
) -> anyhow::Result<Fanout> {
    let group = format!("fanout-team-{size}");
    let hub = format!("fanout-core-{size}");
    let mut docs = vec![
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {group}\nspec:\n  type: team\n  children: []\n"
        ),
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {hub}\nspec:\n  type: library\n  lifecycle: production\n  owner: {group}\n"
        ),
    ];
    for i in 0..size {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: fanout-{size}-user-{i}\nspec:\n  memberOf: [{group}]\n"
        ));
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: fanout-{size}-svc-{i}\nspec:\n  type: service\n  lifecycle: production\n  owner: {group}\n  dependsOn: [component:{hub}]\n"
        ));
    }
    let files: Vec<(String, Vec<u8>)> = docs
        .chunks(500)
        .enumerate()
        .map(|(i, chunk)| {
            let mut text = String::new();
            for doc in chunk {
                let _ = write!(text, "---\n{doc}");
            }
            (format!("part{i:03}/catalog-info.yaml"), text.into_bytes())
        })
        .collect();
    let path = dir.join(format!("fanout-{size}.git"));
    let repo = init(&path)?;
    let borrowed: Vec<(&str, Vec<u8>)> =
        files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    commit(&repo, &borrowed, "fanout")?;

    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/catalog/locations"))
        .json(&json!({"type": "git", "target": format!("file://{}#{BRANCH}", path.display())}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 201,
        "registering the fanout repository: {}",
        response.text().await.unwrap_or_default()
    );
    let relations = |entity: &Value, kind: &str| {
        entity["relations"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r["type"] == kind).count())
    };
    let group_url = format!("{base}/api/catalog/entities/by-name/group/default/{group}");
    let hub_url = format!("{base}/api/catalog/entities/by-name/component/default/{hub}");
    // Done when every entity of the repository is stitched and nothing is queued any more.
    let done = format!(
        "select (select count(*) from entity where name like 'fanout-{size}-%' and final is not null) = {}
            and not exists (select 1 from stitch_queue)
            and not exists (select 1 from entity where final is null)",
        2 * size
    );
    let ingest = until(started, POLL_SLOW, "fanout ingestion", || async {
        psql(database_url, &done).is_ok_and(|t| t.trim() == "t")
    })
    .await?;
    let get = |url: String| async move { client.get(url).send().await?.json::<Value>().await };
    let (g, h) = (get(group_url.clone()).await?, get(hub_url).await?);
    anyhow::ensure!(
        relations(&g, "hasMember") == size && relations(&h, "dependencyOf") == size,
        "the hubs show {} members and {} dependents, expected {size}",
        relations(&g, "hasMember"),
        relations(&h, "dependencyOf")
    );
    let fetch_started = Instant::now();
    let body = client.get(&group_url).send().await?.bytes().await?;
    let group_fetch = fetch_started.elapsed();
    anyhow::ensure!(!body.is_empty(), "empty group");
    Ok(Fanout {
        size,
        ingest,
        group_fetch,
    })
}
