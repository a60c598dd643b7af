//! `atrium-bench`: generates a large catalog, ingests it with a fresh Atrium server and database,
//! measures query latencies over loopback and the server's memory, and prints them next to the
//! targets and Backstage's figures. See bench/README.md.

mod generate;
mod git;
mod load;
mod server;
mod tasks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;
use serde_json::Value;

use crate::generate::{COMPONENT_TYPES, Generated, Rng};
use crate::load::{Stats, ms, truncate};
use crate::server::{CatalogSource, Memory, Server};

const POLL_INTERVAL: Duration = Duration::from_millis(200);
const INGEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(60);
/// Nothing due, nothing queued, yet not done, and no change for this long: ingestion is stuck.
const STALL_LIMIT: Duration = Duration::from_secs(60);

#[derive(Parser, Debug)]
#[command(
    name = "atrium-bench",
    about = "Benchmark Atrium's catalog: ingestion, query latency, memory"
)]
struct Args {
    /// Entities to generate (besides the two Location entities).
    #[arg(long, default_value_t = 100_000)]
    entities: usize,
    /// Catalog files to spread them over (each listed by the root all.yaml).
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// Concurrent clients for the latency runs.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Requests per latency run (by-name and by-query).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests per facet and count run.
    #[arg(long, default_value_t = 200)]
    facet_requests: usize,
    /// Concurrent clients for facet and count runs.
    #[arg(long, default_value_t = 4)]
    facet_concurrency: usize,
    /// Sequential requests following nextCursor.
    #[arg(long, default_value_t = 300)]
    cursor_pages: usize,
    /// The benchmark database: dropped and recreated.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/atrium_bench"
    )]
    database_url: String,
    /// The atrium binary to benchmark (build it with --release).
    #[arg(long, default_value = "target/release/atrium")]
    atrium: PathBuf,
    /// Seed of the catalog generator and the random request picks.
    #[arg(long, default_value_t = 7007)]
    seed: u64,
    /// Time budget of each latency run, in seconds: no new request is sent after it.
    #[arg(long, default_value_t = 120)]
    run_seconds: u64,
    /// Keep the generated catalog and the server log even when everything went well.
    #[arg(long)]
    keep: bool,
    /// Put each catalog file into a git repository of its own (--files repositories) and measure
    /// push-to-visible, an unchanged refresh cycle and large fan-outs too.
    #[arg(long)]
    git: bool,
    /// Measure the scaffolder's task engine instead of the catalog: two replicas, --task-count trivial
    /// tasks, POST-to-first-event latency, and the task list over --task-history finished tasks.
    #[arg(long)]
    tasks: bool,
    /// With --tasks: how many trivial tasks the throughput run posts.
    #[arg(long, default_value_t = 2000)]
    task_count: usize,
    /// With --tasks: finished tasks in the table while the task list is measured.
    #[arg(long, default_value_t = 100_000)]
    task_history: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Processing {
    entities: i64,
    entities_pending: i64,
    locations: i64,
    locations_due: i64,
    stitch_queue: i64,
    locations_with_errors: i64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // When built in one go with the server, reqwest carries its provider-less TLS feature; install one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("atrium-bench: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("atrium-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The benchmark database's name and a URL of the `postgres` database on the same server.
fn admin_url(database_url: &str) -> anyhow::Result<(String, String)> {
    let (base, query) = match database_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (database_url, String::new()),
    };
    let scheme_end = base
        .find("://")
        .context("--database-url must be a postgres:// URL")?
        + 3;
    let slash = base[scheme_end..]
        .rfind('/')
        .map(|i| i + scheme_end)
        .context("--database-url must name a database")?;
    let name = &base[slash + 1..];
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "the database name {name:?} must be letters, digits and underscores"
    );
    anyhow::ensure!(
        name != "postgres",
        "refusing to drop the `postgres` database"
    );
    Ok((
        name.to_owned(),
        format!("{}/postgres{query}", &base[..slash]),
    ))
}

fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-w",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    anyhow::ensure!(
        out.status.success(),
        "psql -c {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn duration(d: Duration) -> String {
    // Round to tenths first, so 119.97 s prints as 2m00.0s rather than 1m60.0s.
    let tenths = (d.as_secs_f64() * 10.0).round() as u64;
    if tenths >= 600 {
        format!(
            "{}m{:02}.{}s",
            tenths / 600,
            (tenths % 600) / 10,
            tenths % 10
        )
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every latency figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn make_dir() -> anyhow::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let dir = std::env::temp_dir().join(format!("atrium-bench-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Canonical, so the file roots match the paths the server resolves.
    Ok(dir.canonicalize()?)
}

/// Lints a sample of the generated files with `atrium validate`.
fn validate_sample(atrium: &Path, generated: &Generated) -> anyhow::Result<()> {
    let step = (generated.files.len() / 10).max(1);
    let mut sample: Vec<&Path> = generated
        .files
        .iter()
        .step_by(step)
        .map(PathBuf::as_path)
        .collect();
    sample.push(&generated.root_file);
    let out = std::process::Command::new(atrium)
        .arg("validate")
        .args(&sample)
        .output()
        .with_context(|| format!("running {} validate", atrium.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        out.status.success(),
        "atrium validate found problems in the generated catalog:\n{}\n{}",
        truncate(&stdout, 4000),
        stderr.trim()
    );
    println!(
        "  validate: {} sampled file(s): {}",
        sample.len(),
        stderr.trim()
    );
    Ok(())
}

async fn processing(client: &reqwest::Client, base: &str) -> Option<Processing> {
    let body = load::get(client, &format!("{base}/api/atrium/processing"))
        .await
        .ok()?
        .1;
    serde_json::from_str(&body).ok()
}

/// Whether the benchmark saw problems worth keeping the files for.
struct Outcome {
    problems: Vec<String>,
}

struct Results {
    ingest: Duration,
    ingest_stalled: bool,
    by_name: Stats,
    by_query: Stats,
    by_query_two: Stats,
    full_text: Stats,
    cursor: Stats,
    facets: Stats,
    facets_filtered: Stats,
    total_items: Stats,
    mem_ingested: Memory,
    mem_loaded: Memory,
    git: Option<git::GitResults>,
}

async fn run(args: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.concurrency > 0 && args.facet_concurrency > 0,
        "concurrency must be positive"
    );
    let atrium = args.atrium.canonicalize().with_context(|| {
        format!(
            "{} not found; build it with cargo build --release -p atrium",
            args.atrium.display()
        )
    })?;
    let (db_name, admin) = admin_url(&args.database_url)?;
    if args.tasks {
        let dir = make_dir()?;
        let settings = tasks::TaskSettings {
            tasks: args.task_count,
            history: args.task_history,
            concurrency: args.concurrency,
            seed: args.seed,
        };
        tasks::run(
            &atrium,
            &args.database_url,
            &admin,
            &db_name,
            &dir,
            &settings,
        )
        .await?;
        if !args.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Ok(true);
    }
    // A file holds at most 1000 YAML documents (the server's limit); keep well under it.
    let files = args.files.max(args.entities.div_ceil(500)).max(1);
    if files != args.files {
        println!("note: using {files} files so that no file holds more than 500 entities");
    }

    let dir = make_dir()?;
    println!(
        "== atrium-bench: {} entities in {files} files, {}",
        args.entities,
        dir.display()
    );
    let started = Instant::now();
    let generated = generate::generate(&dir, args.entities, files, args.seed)?;
    println!(
        "  generated in {}: {} components ({} service, {} website, {} library), {} APIs, {} resources, \
         {} models, {} systems, {} domains, {} groups, {} users (largest group: {} direct members); {:.1} MiB of YAML",
        duration(started.elapsed()),
        generated.components,
        generated.component_types[0],
        generated.component_types[1],
        generated.component_types[2],
        generated.apis,
        generated.resources,
        generated.models,
        generated.systems,
        generated.domains,
        generated.groups,
        generated.users,
        generated.largest_group_members,
        generated.bytes as f64 / (1024.0 * 1024.0)
    );
    validate_sample(&atrium, &generated)?;

    psql(
        &admin,
        &format!("drop database if exists \"{db_name}\" with (force)"),
    )?;
    println!("  dropped database {db_name}; the server creates it");

    let mut outcome = Outcome {
        problems: Vec::new(),
    };
    let git_source = if args.git {
        let started = Instant::now();
        let source = git::prepare(&dir, &generated)?;
        println!(
            "  {} git repositories written in {}",
            source.repositories.len(),
            duration(started.elapsed())
        );
        Some(source)
    } else {
        None
    };
    let catalog = match &git_source {
        Some(source) => CatalogSource::Git(source.config_file.clone()),
        None => CatalogSource::File(generated.root_file.clone()),
    };
    let mut server = Server::spawn(&atrium, &args.database_url, &dir, &catalog)?;
    println!(
        "== ingestion: server pid {} at {}, log {}",
        server.pid,
        server.base,
        server.log.display()
    );
    let result = tokio::select! {
        result = bench(&args, &generated, git_source.as_ref(), &dir, &mut server, &mut outcome) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };

    let (shutdown, how) = server_stop(server).await;
    let problems_in_log = {
        let (_, lines, count) = server::log_digest(&dir.join("atrium.log"), 0, 8);
        if count > 0 {
            println!("\nserver log has {count} WARN/ERROR line(s); the first:");
            for line in &lines {
                println!("  {}", truncate(line, 400));
            }
        }
        count
    };
    let results = match result {
        Ok(results) => results,
        Err(e) => {
            if let Some(d) = shutdown {
                println!("graceful shutdown took {}", ms(d));
            }
            println!("files and server log kept in {}", dir.display());
            return Err(e);
        }
    };
    if let Ok(errors) = psql(
        &args.database_url,
        "select count(*) filter (where errors <> '[]'), count(*) filter (where final is null) from entity",
    ) {
        let mut parts = errors.split('|');
        let with_errors = parts.next().unwrap_or("?");
        let unstitched = parts.next().unwrap_or("?");
        if with_errors != "0" || unstitched != "0" {
            outcome.problems.push(format!(
                "{with_errors} entities have processing errors, {unstitched} are not stitched"
            ));
        }
    }

    summary(&args, &generated, &results);
    match shutdown {
        Some(d) => println!("\ngraceful shutdown (SIGTERM to exit): {} ({how})", ms(d)),
        None => {
            println!("\ngraceful shutdown: {how}");
            outcome
                .problems
                .push("the server did not stop on SIGTERM".into());
        }
    }
    if problems_in_log > 0 {
        outcome.problems.push(format!(
            "{problems_in_log} WARN/ERROR lines in the server log"
        ));
    }
    if outcome.problems.is_empty() && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        for p in &outcome.problems {
            println!("problem: {p}");
        }
        println!("files and server log kept in {}", dir.display());
    }
    Ok(outcome.problems.is_empty())
}

async fn server_stop(server: Server) -> (Option<Duration>, String) {
    match server.stop(SHUTDOWN_LIMIT).await {
        Ok(r) => r,
        Err(e) => (None, format!("{e:#}")),
    }
}

/// Waits for ingestion to finish; returns its duration from spawn and whether it stalled. When ingestion stalls (nothing left
/// to do but entities missing or unstitched), reports it with evidence and returns the time of the last
/// progress, so the query measurements still run.
async fn wait_for_ingestion(
    client: &reqwest::Client,
    server: &mut Server,
    database_url: &str,
    expected: i64,
    outcome: &mut Outcome,
) -> anyhow::Result<(Duration, bool)> {
    let mut last_change = Duration::ZERO;
    let deadline = server.spawned_at + INGEST_TIMEOUT;
    let mut last: Option<Processing> = None;
    let mut up_at: Option<Duration> = None;
    let mut all_present_at: Option<Duration> = None;
    let mut polls = 0u64;
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        polls += 1;
        let elapsed = server.spawned_at.elapsed();
        if let Some(status) = server.exited() {
            let (tail, _, _) = server::log_digest(&server.log, 30, 0);
            anyhow::bail!(
                "the server exited during ingestion ({status}); last log lines:\n{}",
                tail.join("\n")
            );
        }
        if Instant::now() >= deadline {
            let (tail, _, _) = server::log_digest(&server.log, 20, 0);
            anyhow::bail!(
                "ingestion did not finish within {} (expected {expected} entities); last status: {last:?}\n\
                 last log lines:\n{}",
                duration(INGEST_TIMEOUT),
                tail.join("\n")
            );
        }
        let Some(p) = processing(client, &server.base).await else {
            continue;
        };
        if up_at.is_none() {
            up_at = Some(elapsed);
            println!("  {:>7} server answering", duration(elapsed));
        }
        if all_present_at.is_none() && p.entities >= expected {
            all_present_at = Some(elapsed);
        }
        if polls.is_multiple_of(25) {
            println!(
                "  {:>7} entities {:>7}/{expected}  pending {:>7}  stitch queue {:>7}  locations {:>5} (due {:>5})",
                duration(elapsed),
                p.entities,
                p.entities_pending,
                p.stitch_queue,
                p.locations,
                p.locations_due
            );
        }
        if last != Some(p) {
            last_change = elapsed;
        }
        last = Some(p);
        let idle = p.entities_pending == 0 && p.stitch_queue == 0 && p.locations_due == 0;
        if p.stitch_queue == 0 && p.locations_due == 0 && elapsed - last_change >= STALL_LIMIT {
            let msg = format!(
                "ingestion stalled: {} of {expected} entities, {} not stitched, nothing queued or due, \
                 no change for {}",
                p.entities,
                p.entities_pending,
                duration(STALL_LIMIT)
            );
            println!("  WARNING: {msg}");
            if let Ok(rows) = psql(
                database_url,
                "select entity_key || '  updated ' || updated_at || '  errors ' || errors from entity \
                 where final is null order by updated_at limit 10",
            ) {
                println!(
                    "  entities with final = null (first 10):\n    {}",
                    rows.replace('\n', "\n    ")
                );
            }
            outcome.problems.push(msg);
            return Ok((last_change, true));
        }
        if idle && p.entities >= expected {
            if p.entities > expected {
                outcome
                    .problems
                    .push(format!("{} entities, {expected} expected", p.entities));
            }
            println!(
                "  done: {} entities, {} locations, {} location(s) with errors; all entities present after {}",
                p.entities,
                p.locations,
                p.locations_with_errors,
                all_present_at.map(duration).unwrap_or_default()
            );
            if p.locations_with_errors > 0 {
                outcome.problems.push(format!(
                    "{} location(s) with errors",
                    p.locations_with_errors
                ));
                let url = format!(
                    "{}/api/catalog/entities?filter=kind=location&fields=metadata.name,status",
                    server.base
                );
                let body = match load::get(client, &url).await {
                    Ok((_, body)) => body,
                    Err(e) => e,
                };
                println!(
                    "  WARNING: locations with errors; {url}:\n{}",
                    truncate(&body, 4000)
                );
            }
            return Ok((elapsed, false));
        }
    }
}

/// Everything between "the server is started" and "stop it".
async fn bench(
    args: &Args,
    generated: &Generated,
    git_source: Option<&git::GitSource>,
    dir: &Path,
    server: &mut Server,
    outcome: &mut Outcome,
) -> anyhow::Result<Results> {
    let client = load::client(args.concurrency.max(args.facet_concurrency))?;
    // Besides the generated entities: the root file's two Location entities, or one generated Location
    // entity per repository.
    let expected =
        generated.total as i64 + git_source.map_or(2, |source| source.repositories.len() as i64);
    let (ingest, ingest_stalled) =
        wait_for_ingestion(&client, server, &args.database_url, expected, outcome).await?;
    println!(
        "  ingestion: {} for {expected} entities = {:.0} entities/s",
        duration(ingest),
        expected as f64 / ingest.as_secs_f64()
    );
    let mem_ingested = server.memory()?;
    // No VACUUM or ANALYZE here: the figures are what a user meets right after ingestion, whatever
    // the server's autovacuum does (it is often off or behind after a bulk load).
    println!(
        "  autovacuum: {} (the benchmark never vacuums or analyzes for the server)",
        psql(&args.database_url, "show autovacuum").unwrap_or_else(|e| format!("unknown ({e:#})"))
    );
    println!(
        "  memory after ingestion: RSS {:.1} MiB, peak (VmHWM) {:.1} MiB",
        mem_ingested.rss_mib, mem_ingested.hwm_mib
    );

    check_answers(&client, &server.base, generated, outcome).await?;

    let base = server.base.clone();
    let warm = (args.requests / 10).clamp(1, 1000);
    let names = std::sync::Arc::new(generated.component_names.clone());
    let budget = Duration::from_secs(args.run_seconds);
    let main = load::Plan {
        concurrency: args.concurrency,
        total: args.requests,
        budget,
        seed: args.seed,
    };
    let warm_plan = load::Plan {
        total: warm,
        budget: budget / 4,
        ..main
    };
    let small = load::Plan {
        concurrency: args.facet_concurrency,
        total: args.facet_requests,
        ..main
    };
    let small_warm = load::Plan {
        total: (args.facet_requests / 10).max(1),
        budget: budget / 4,
        ..small
    };

    println!(
        "\n== latency over loopback ({} clients, {} requests per run after {warm} warm-up requests, at most {}s per run)",
        main.concurrency, main.total, args.run_seconds
    );
    println!(
        "  {} CPU(s), load average {} (anything else running skews the figures)",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    let by_name_url = {
        let base = base.clone();
        let names = names.clone();
        move |rng: &mut Rng, _: usize| {
            format!(
                "{base}/api/catalog/entities/by-name/component/default/{}",
                rng.pick(&names)
            )
        }
    };
    load::run(&client, warm_plan, by_name_url.clone()).await;
    let by_name = load::run(&client, main, by_name_url).await;
    println!("{}", by_name.line("GET by-name/component/default/<random>"));

    let fixed = |path: &str| {
        let url = format!("{base}{path}");
        move |_: &mut Rng, _: usize| url.clone()
    };
    let q1 = fixed("/api/catalog/entities/by-query?filter=kind=component&limit=20");
    load::run(&client, warm_plan, q1.clone()).await;
    let by_query = load::run(&client, main, q1).await;
    println!("{}", by_query.line("GET by-query kind=component limit=20"));

    let q2 =
        fixed("/api/catalog/entities/by-query?filter=kind=component,spec.type=service&limit=20");
    load::run(&client, warm_plan, q2.clone()).await;
    let by_query_two = load::run(&client, main, q2).await;
    println!(
        "{}",
        by_query_two.line("GET by-query kind=component,spec.type=service")
    );

    // Full text as the portal's search box sends it: a word from the generated names, in name and
    // title, among the service components.
    let words: std::sync::Arc<Vec<String>> = {
        let mut words: Vec<String> = names
            .iter()
            .flat_map(|name| name.split('-').map(str::to_owned).collect::<Vec<_>>())
            .filter(|word| word.len() >= 3 && !word.chars().all(|c| c.is_ascii_digit()))
            .collect();
        words.sort();
        words.dedup();
        std::sync::Arc::new(words)
    };
    let full_text_url = {
        let (base, words) = (base.clone(), words.clone());
        move |rng: &mut Rng, _: usize| {
            format!(
                "{base}/api/catalog/entities/by-query?filter=kind=component,spec.type=service&fullTextFilterTerm={}&fullTextFilterFields=metadata.name,metadata.title&limit=20",
                rng.pick(&words)
            )
        }
    };
    load::run(&client, warm_plan, full_text_url.clone()).await;
    let full_text = load::run(&client, main, full_text_url).await;
    println!(
        "{}",
        full_text.line(&format!(
            "GET by-query full text <one of {} words> in name,title",
            words.len()
        ))
    );

    let cursor = follow_cursor(&client, &base, args.cursor_pages, generated, outcome).await?;
    println!(
        "{}",
        cursor.line("GET by-query?cursor=<nextCursor> (sequential)")
    );

    println!(
        "\n== facets and counts ({} clients, {} requests per run)",
        small.concurrency, small.total
    );
    let f1 = fixed("/api/catalog/entity-facets?facet=spec.type");
    load::run(&client, small_warm, f1.clone()).await;
    let facets = load::run(&client, small, f1).await;
    println!("{}", facets.line("GET entity-facets?facet=spec.type"));
    let f2 = fixed("/api/catalog/entity-facets?facet=spec.type&filter=kind=component");
    load::run(&client, small_warm, f2.clone()).await;
    let facets_filtered = load::run(&client, small, f2).await;
    println!(
        "{}",
        facets_filtered.line("GET entity-facets?facet=spec.type&filter=kind=...")
    );
    let t = fixed("/api/catalog/entities/by-query?filter=kind=component&limit=1");
    load::run(&client, small_warm, t.clone()).await;
    let total_items = load::run(&client, small, t).await;
    println!(
        "{}",
        total_items.line("totalItems of by-query kind=component limit=1")
    );

    for (label, stats) in [
        ("by-name", &by_name),
        ("by-query", &by_query),
        ("by-query two filters", &by_query_two),
        ("full text", &full_text),
        ("cursor", &cursor),
        ("facets", &facets),
        ("facets filtered", &facets_filtered),
        ("totalItems", &total_items),
    ] {
        if stats.errors > 0 {
            outcome
                .problems
                .push(format!("{label}: {} failed request(s)", stats.errors));
        }
    }

    println!("\n  load average after the runs: {}", load_average());
    let mem_loaded = server.memory()?;
    println!(
        "  memory after the load: RSS {:.1} MiB, peak (VmHWM) {:.1} MiB",
        mem_loaded.rss_mib, mem_loaded.hwm_mib
    );
    let git = match git_source {
        Some(source) => {
            Some(git::measure(&client, &server.base, &args.database_url, dir, source).await?)
        }
        None => None,
    };
    Ok(Results {
        ingest,
        ingest_stalled,
        by_name,
        by_query,
        by_query_two,
        full_text,
        cursor,
        facets,
        facets_filtered,
        total_items,
        mem_ingested,
        mem_loaded,
        git,
    })
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let (_, body) = load::get(client, url)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    serde_json::from_str(&body)
        .with_context(|| format!("GET {url}: not JSON: {}", truncate(&body, 300)))
}

/// Checks that the server's answers agree with what was generated.
async fn check_answers(
    client: &reqwest::Client,
    base: &str,
    generated: &Generated,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let before = outcome.problems.len();
    let mut check = |label: &str, got: Option<i64>, want: usize| {
        if got != Some(want as i64) {
            let msg = format!("{label}: got {got:?}, expected {want}");
            println!("  MISMATCH {msg}");
            outcome.problems.push(msg);
        }
    };
    let total = |v: &Value| v.get("totalItems").and_then(Value::as_i64);
    let v = get_json(
        client,
        &format!("{base}/api/catalog/entities/by-query?filter=kind=component&limit=1"),
    )
    .await?;
    check("totalItems kind=component", total(&v), generated.components);
    let v = get_json(
        client,
        &format!(
            "{base}/api/catalog/entities/by-query?filter=kind=component,spec.type=service&limit=1"
        ),
    )
    .await?;
    check(
        "totalItems kind=component,spec.type=service",
        total(&v),
        generated.component_types[0],
    );
    let v = get_json(
        client,
        &format!("{base}/api/catalog/entities/by-query?filter=kind=user&limit=1"),
    )
    .await?;
    check("totalItems kind=user", total(&v), generated.users);
    let v = get_json(
        client,
        &format!("{base}/api/catalog/entities/by-query?filter=kind=model&limit=1"),
    )
    .await?;
    check("totalItems kind=model", total(&v), generated.models);
    let v = get_json(
        client,
        &format!("{base}/api/catalog/entity-facets?facet=spec.type&filter=kind=component"),
    )
    .await?;
    let facet = v
        .pointer("/facets/spec.type")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, t) in COMPONENT_TYPES.iter().enumerate() {
        let count = facet
            .iter()
            .find(|f| f.get("value").and_then(Value::as_str) == Some(t))
            .and_then(|f| f.get("count"))
            .and_then(Value::as_i64);
        check(
            &format!("facet spec.type={t} of components"),
            count,
            generated.component_types[i],
        );
    }
    let name = &generated.component_names[generated.component_names.len() / 2];
    let v = get_json(
        client,
        &format!("{base}/api/catalog/entities/by-name/component/default/{name}"),
    )
    .await?;
    let relations = v
        .get("relations")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if v.pointer("/metadata/name").and_then(Value::as_str) != Some(name) || relations == 0 {
        outcome
            .problems
            .push(format!("by-name {name}: unexpected answer"));
        println!(
            "  MISMATCH by-name {name}: {}",
            truncate(&v.to_string(), 600)
        );
    }
    if outcome.problems.len() == before {
        println!(
            "  answers checked: counts, facets and a by-name entity ({relations} relations) match the catalog"
        );
    }
    Ok(())
}

/// Follows nextCursor from the first page of components; checks no entity is seen twice.
async fn follow_cursor(
    client: &reqwest::Client,
    base: &str,
    pages: usize,
    generated: &Generated,
    outcome: &mut Outcome,
) -> anyhow::Result<Stats> {
    let first = get_json(
        client,
        &format!("{base}/api/catalog/entities/by-query?filter=kind=component&limit=20"),
    )
    .await?;
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0;
    let mut record = |page: &Value| {
        for item in page
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(uid) = item.pointer("/metadata/uid").and_then(Value::as_str)
                && !seen.insert(uid.to_owned())
            {
                duplicates += 1;
            }
        }
        page.pointer("/pageInfo/nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let visible = first
        .get("totalItems")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0) as usize;
    if visible != generated.components {
        println!(
            "  note: following cursors over {visible} visible components ({} generated)",
            generated.components
        );
    }
    let mut next = record(&first);
    let mut samples = Vec::with_capacity(pages);
    let mut errors = 0;
    let mut first_error = None;
    let started = Instant::now();
    for _ in 0..pages {
        let Some(cursor) = next.take() else { break };
        let url = format!(
            "{base}/api/catalog/entities/by-query?cursor={}&limit=20",
            load::encode(&cursor)
        );
        match load::get(client, &url).await {
            Ok((elapsed, body)) => {
                samples.push(elapsed);
                let page: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                next = record(&page);
            }
            Err(e) => {
                errors += 1;
                first_error = Some(e);
                break;
            }
        }
    }
    let wall = started.elapsed();
    let expected_seen = ((samples.len() + 1) * 20).min(visible);
    if duplicates > 0 || seen.len() != expected_seen {
        let msg = format!(
            "cursor pages: {} distinct entities, {duplicates} repeated, expected {expected_seen}",
            seen.len()
        );
        println!("  MISMATCH {msg}");
        outcome.problems.push(msg);
    }
    Ok(Stats::from_samples(samples, errors, wall, first_error))
}

fn summary(args: &Args, generated: &Generated, r: &Results) {
    let expected = generated.total + 2;
    let rate = expected as f64 / r.ingest.as_secs_f64();
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let under = |d: Duration, limit_ms: f64| verdict(d.as_secs_f64() * 1000.0 < limit_ms);
    let mib = |m: f64, limit: f64| verdict(m < limit);
    let mut rows: Vec<[String; 5]> = vec![
        [
            format!("ingest {expected} entities"),
            format!("{} ({rate:.0}/s)", duration(r.ingest)),
            "-".into(),
            "17 min (100k)".into(),
            if r.ingest_stalled {
                "INCOMPLETE".into()
            } else {
                String::new()
            },
        ],
        [
            "by-name p99".into(),
            ms(r.by_name.p99),
            "< 5 ms".into(),
            "-".into(),
            under(r.by_name.p99, 5.0).into(),
        ],
        [
            "by-query kind=component p99".into(),
            ms(r.by_query.p99),
            "< 25 ms".into(),
            "~2 s".into(),
            under(r.by_query.p99, 25.0).into(),
        ],
        [
            "by-query + spec.type=service p99".into(),
            ms(r.by_query_two.p99),
            "< 25 ms".into(),
            "~2 s".into(),
            under(r.by_query_two.p99, 25.0).into(),
        ],
        [
            "full text (name, title) p50 / p99".into(),
            format!("{} / {}", ms(r.full_text.p50), ms(r.full_text.p99)),
            "< 50 ms".into(),
            "~3 s".into(),
            under(r.full_text.p99, 50.0).into(),
        ],
        [
            "cursor page p50 / p99".into(),
            format!("{} / {}", ms(r.cursor.p50), ms(r.cursor.p99)),
            "< 25 ms".into(),
            "~2 s".into(),
            under(r.cursor.p99, 25.0).into(),
        ],
        [
            "facets spec.type p50 / p99".into(),
            format!("{} / {}", ms(r.facets.p50), ms(r.facets.p99)),
            "< 50 ms".into(),
            "~0.45 s".into(),
            under(r.facets.p99, 50.0).into(),
        ],
        [
            "facets spec.type, kind=component p50/p99".into(),
            format!(
                "{} / {}",
                ms(r.facets_filtered.p50),
                ms(r.facets_filtered.p99)
            ),
            "< 50 ms".into(),
            "~0.45 s".into(),
            under(r.facets_filtered.p99, 50.0).into(),
        ],
        [
            "totalItems (limit=1) p50 / p99".into(),
            format!("{} / {}", ms(r.total_items.p50), ms(r.total_items.p99)),
            "< 50 ms".into(),
            "~2 s".into(),
            under(r.total_items.p99, 50.0).into(),
        ],
        [
            "RSS after ingestion (peak)".into(),
            format!(
                "{:.0} MiB ({:.0})",
                r.mem_ingested.rss_mib, r.mem_ingested.hwm_mib
            ),
            "< 150 MiB".into(),
            "430 MiB".into(),
            mib(r.mem_ingested.hwm_mib, 150.0).into(),
        ],
        [
            "RSS after load (peak)".into(),
            format!(
                "{:.0} MiB ({:.0})",
                r.mem_loaded.rss_mib, r.mem_loaded.hwm_mib
            ),
            "< 150 MiB".into(),
            "430 MiB".into(),
            mib(r.mem_loaded.hwm_mib, 150.0).into(),
        ],
    ];
    if let Some(g) = &r.git {
        let worst = g.push_to_visible.iter().max().copied().unwrap_or_default();
        rows.push([
            format!(
                "push webhook -> visible (worst of {})",
                g.push_to_visible.len()
            ),
            ms(worst),
            "< 2 s".into(),
            "-".into(),
            under(worst, 2000.0).into(),
        ]);
        let entity_writes: i64 = g
            .idle_writes
            .iter()
            .filter(|(t, _)| t != "location")
            .map(|(_, n)| n)
            .sum();
        rows.push([
            format!("unchanged refresh of {} repositories", g.idle_repositories),
            format!(
                "{} ; {entity_writes} rows outside `location`, {} stitched",
                ms(g.idle_cycle),
                g.idle_stitched
            ),
            "no re-stitching".into(),
            "-".into(),
            if g.idle_stitched == 0 && entity_writes == 0 {
                "met"
            } else {
                "MISSED"
            }
            .into(),
        ]);
        for f in &g.fanout {
            rows.push([
                format!("group of {} members + {} dependents", f.size, f.size),
                format!("{} ingest, {} GET", ms(f.ingest), ms(f.group_fetch)),
                "linear".into(),
                "-".into(),
                String::new(),
            ]);
        }
    }
    let header = ["figure", "atrium", "target", "backstage", ""];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    println!(
        "\n== summary: {} entities, {} files, {} clients x {} requests",
        generated.total,
        generated.files.len(),
        args.concurrency,
        args.requests
    );
    let print_row = |row: &[&str]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", cells.join(" | ").trim_end());
    };
    print_row(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("  {}", rule.join("-|-"));
    for row in &rows {
        print_row(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_before_splitting_minutes() {
        assert_eq!(duration(Duration::from_secs_f64(119.97)), "2m00.0s");
        assert_eq!(duration(Duration::from_secs_f64(108.64)), "1m48.6s");
        assert_eq!(duration(Duration::from_secs_f64(3.04)), "3.0s");
    }

    #[test]
    fn admin_url_swaps_the_database() {
        let (name, admin) =
            admin_url("postgres://postgres@127.0.0.1:5432/atrium_bench?sslmode=disable")
                .expect("ok");
        assert_eq!(name, "atrium_bench");
        assert_eq!(
            admin,
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
        );
        assert!(admin_url("postgres://h/postgres").is_err());
        assert!(admin_url("postgres://h/x;drop").is_err());
    }
}
