//! `atrium-bench --tasks`: the scaffolder's task engine with two replicas on one database — how many
//! trivial tasks per second they run, how long from `POST /v2/tasks` to the first event on the SSE
//! stream, and how fast `GET /v2/tasks` answers with a large history of finished tasks.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::load::{self, Plan, Stats, ms};
use crate::server::{CatalogSource, Server};
use crate::{POLL_INTERVAL, psql};

const TEMPLATE: &str = "apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: trivial
spec:
  owner: team-a
  type: service
  parameters:
    - properties:
        name: {type: string}
  steps:
    - id: hello
      action: debug:log
      input:
        message: hello ${{ parameters.name }}
  output:
    text:
      - title: done
        content: ${{ parameters.name }}
";

pub struct TaskSettings {
    pub tasks: usize,
    pub history: usize,
    pub concurrency: usize,
    pub seed: u64,
}

pub async fn run(
    atrium: &Path,
    database_url: &str,
    admin: &str,
    db_name: &str,
    dir: &Path,
    settings: &TaskSettings,
) -> anyhow::Result<()> {
    psql(
        admin,
        &format!("drop database if exists \"{db_name}\" with (force)"),
    )?;
    let root = dir.join("templates.yaml");
    std::fs::write(&root, TEMPLATE).context("writing the template")?;
    let source = CatalogSource::File(root);
    let a = Server::spawn_logging_to(atrium, database_url, dir, &source, "replica-a.log")?;
    let client = load::client(settings.concurrency)?;
    wait_for(
        &client,
        &format!(
            "{}/api/catalog/entities/by-name/template/default/trivial",
            a.base
        ),
    )
    .await?;
    // The second replica starts on the migrated database, so the two do not race to create it.
    let b = Server::spawn_logging_to(atrium, database_url, dir, &source, "replica-b.log")?;
    wait_for(&client, &format!("{}/readyz", b.base)).await?;
    println!(
        "== tasks: two replicas (pids {} and {}) on {db_name}",
        a.pid, b.pid
    );

    // 1. Throughput: post every task through both replicas, then wait until none is open or running.
    let bases = [a.base.clone(), b.base.clone()];
    let started = Instant::now();
    let mut posting = Vec::new();
    let per_client = settings.tasks.div_ceil(settings.concurrency.max(1));
    for worker in 0..settings.concurrency.max(1) {
        let client = client.clone();
        let base = bases[worker % 2].clone();
        let count = per_client.min(settings.tasks.saturating_sub(worker * per_client));
        posting.push(tokio::spawn(async move {
            for i in 0..count {
                create(&client, &base, &format!("t{worker}-{i}")).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in posting {
        task.await.context("a posting client")??;
    }
    let posted = started.elapsed();
    loop {
        let unfinished = total(
            &client,
            &format!(
                "{}/api/scaffolder/v2/tasks?status=open&status=processing&limit=1",
                a.base
            ),
        )
        .await?;
        if unfinished == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{unfinished} tasks still unfinished after 10 minutes"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let all = started.elapsed();
    let failed = total(
        &client,
        &format!(
            "{}/api/scaffolder/v2/tasks?status=failed&status=cancelled&limit=1",
            a.base
        ),
    )
    .await?;
    println!(
        "  throughput: {} trivial tasks posted in {} and all finished in {}: {:.0} tasks/s ({failed} not completed)",
        settings.tasks,
        ms(posted),
        ms(all),
        settings.tasks as f64 / all.as_secs_f64()
    );

    // 2. From POST to the first event on the SSE stream, one task at a time.
    let mut samples = Vec::new();
    for i in 0..100 {
        let base = &bases[i % 2];
        let started = Instant::now();
        let id = create(&client, base, &format!("sse-{i}")).await?;
        let mut response = client
            .get(format!("{base}/api/scaffolder/v2/tasks/{id}/eventstream"))
            .send()
            .await
            .context("opening the event stream")?;
        let mut seen = String::new();
        while !seen.contains("data:") {
            let Some(chunk) = response.chunk().await.context("reading the event stream")? else {
                anyhow::bail!("the stream of task {id} ended without an event");
            };
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        samples.push(started.elapsed());
    }
    let first_event = Stats::from_samples(samples, 0, Duration::ZERO, None);
    println!(
        "{}",
        first_event.line("POST /v2/tasks -> first SSE event (sequential)")
    );

    // 3. Listing with a large history: finished tasks written straight into the table (as a year of
    // use would leave them), then the task list under load, right away (no vacuum, no analyze).
    let db_url = database_url.to_owned();
    psql(
        &db_url,
        &format!(
            "insert into scaffolder_task (id, spec, status, created_by, created_at, finished_at, state)
             select gen_random_uuid(), '{{\"steps\": []}}'::jsonb,
                    case when i % 10 = 0 then 'failed' else 'completed' end,
                    'user:default/user-' || (i % 50), now() - i * interval '1 minute',
                    now() - i * interval '1 minute', '{{}}'::jsonb
             from generate_series(1, {}) i",
            settings.history
        ),
    )?;
    let rows = psql(&db_url, "select count(*) from scaffolder_task")?;
    println!("  history: {rows} tasks in the table");
    let plan = Plan {
        concurrency: settings.concurrency,
        total: 5000,
        budget: Duration::from_secs(60),
        seed: settings.seed,
    };
    let base = a.base.clone();
    let newest = load::run(&client, plan, move |_, _| {
        format!("{base}/api/scaffolder/v2/tasks?limit=20")
    })
    .await;
    println!("{}", newest.line("GET /v2/tasks?limit=20 (newest first)"));
    let base = a.base.clone();
    let mine = load::run(&client, plan, move |rng, _| {
        format!(
            "{base}/api/scaffolder/v2/tasks?createdBy=user:default/user-{}&limit=20",
            rng.below(50)
        )
    })
    .await;
    println!("{}", mine.line("GET /v2/tasks?createdBy=<user>&limit=20"));
    let base = a.base.clone();
    let failed_only = load::run(&client, plan, move |_, _| {
        format!("{base}/api/scaffolder/v2/tasks?status=failed&order=desc:created_at&limit=20")
    })
    .await;
    println!(
        "{}",
        failed_only.line("GET /v2/tasks?status=failed&limit=20")
    );

    for server in [a, b] {
        server.stop(Duration::from_secs(30)).await?;
    }
    Ok(())
}

async fn wait_for(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while load::get(client, url).await.is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "{url} did not answer within 2 minutes"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(())
}

async fn create(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/api/scaffolder/v2/tasks"))
        .json(&json!({"templateRef": "template:default/trivial", "values": {"name": name}}))
        .send()
        .await
        .context("POST /v2/tasks")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the created task")?;
    anyhow::ensure!(status.as_u16() == 201, "POST /v2/tasks: {status} {body}");
    body["id"].as_str().map(str::to_owned).context("no task id")
}

async fn total(client: &reqwest::Client, url: &str) -> anyhow::Result<i64> {
    let (_, body) = load::get(client, url).await.map_err(anyhow::Error::msg)?;
    let body: Value = serde_json::from_str(&body)?;
    body["totalTasks"].as_i64().context("no totalTasks")
}
