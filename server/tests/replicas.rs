//! Several `atrium serve` processes on one database, the way replicas run in production: no
//! coordinator, only row locks, leases and fencing tokens in Postgres (docs/ARCHITECTURE.md,
//! "Concurrency"). Each test starts the real binary as child processes against the fresh database that
//! `#[sqlx::test]` creates, left unmigrated so that the replicas migrate it themselves, and judges them
//! from outside: their HTTP API, their `/metrics`, the rows in Postgres, and the requests they make to
//! a catalog host the test runs.
//!
//! The children are killed when a test ends, however it ends; when it fails, their logs are printed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;

const ATRIUM: &str = env!("CARGO_BIN_EXE_atrium");
/// How long any awaited condition may take: generous, for a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(60);
/// Pause between two looks at a condition that is not true yet.
const POLL: Duration = Duration::from_millis(100);
/// So long that nothing is re-read on schedule during a test: every read is one the test caused.
const REFRESH_INTERVAL_SECONDS: u64 = 3600;
const LOCATIONS_PROCESSED: &str = "atrium_catalog_locations_processed_total";

/// Three replicas start together on an empty database with a few hundred configured locations. Between
/// them they read every location exactly once, the work is shared, and all of them serve the same
/// complete catalog, with relations stitched across locations that different replicas read.
#[sqlx::test(migrations = false)]
async fn three_replicas_read_every_location_exactly_once(pool: PgPool) {
    const SERVICES: usize = 300;
    let mut cluster = Cluster::new(&pool);
    let mut locations = Vec::new();
    for i in 0..SERVICES {
        // Each service depends on the previous one, whose location another replica may well read.
        let depends_on = i.checked_sub(1).map(|p| format!("svc-{p:03}"));
        let path = cluster.write(
            &format!("svc-{i:03}.yaml"),
            &component(&format!("svc-{i:03}"), "first", depends_on.as_deref()),
        );
        locations.push(json!({"type": "file", "target": path}));
    }
    cluster.configure(json!({"locations": locations}));
    let replicas = cluster.start(3).await;

    let (status, processed) = cluster
        .wait_until("the catalog to be loaded and stitched", async || {
            let status = cluster.get(replicas[0], "/api/atrium/processing").await?;
            let processed = cluster.processed_per_replica().await?;
            let done = status["entities"] == 2 * SERVICES
                && status["entitiesPending"] == 0
                && status["stitchQueue"] == 0
                && status["locationsDue"] == 0
                && processed.values().sum::<u64>() >= SERVICES as u64;
            if done {
                Ok((status, processed))
            } else {
                Err(format!("status {status}, processed {processed:?}"))
            }
        })
        .await;
    assert_eq!(status["locations"], SERVICES, "{status}");
    assert_eq!(status["locationsWithErrors"], 0, "{status}");
    assert_eq!(
        processed.values().sum::<u64>(),
        SERVICES as u64,
        "every location read exactly once across the replicas: {processed:?}"
    );
    // Work is shared: on two cores one replica may finish starting late, but never two of them.
    let busy = processed.values().filter(|n| **n > 0).count();
    assert!(busy >= 2, "replicas that read locations: {processed:?}");

    let expected: BTreeMap<String, BTreeSet<String>> = (0..SERVICES)
        .map(|i| {
            let mut relations = BTreeSet::from(["ownedBy group:default/team-a".to_owned()]);
            if i > 0 {
                relations.insert(format!("dependsOn component:default/svc-{:03}", i - 1));
            }
            if i + 1 < SERVICES {
                relations.insert(format!("dependencyOf component:default/svc-{:03}", i + 1));
            }
            (format!("svc-{i:03}"), relations)
        })
        .collect();
    for &replica in &replicas {
        let components = cluster
            .get_ok(
                replica,
                "/api/catalog/entities?filter=kind=component&fields=metadata.name,relations",
            )
            .await;
        let wrong = differences(&relations_by_name(&components), &expected);
        assert!(
            wrong.is_empty(),
            "{} of the components served by {} differ: {:#?}",
            wrong.len(),
            cluster.name(replica),
            &wrong[..wrong.len().min(5)]
        );
        // Each registered location has its generated Location entity.
        let locations = cluster
            .get_ok(
                replica,
                "/api/catalog/entities/by-query?filter=kind=location&limit=1",
            )
            .await;
        assert_eq!(locations["totalItems"], SERVICES, "{locations}");
    }
}

/// Files change and refreshes are requested through one replica or the other, round after round. Every
/// change becomes visible on every replica, relations included, and each refresh costs exactly one read.
#[sqlx::test(migrations = false)]
async fn refreshes_through_any_replica_are_never_lost(pool: PgPool) {
    const APPS: usize = 30;
    const REVISIONS: usize = 4;
    let mut cluster = Cluster::new(&pool);
    // In revision r, app-i depends on app-(i+r): every revision moves every relation.
    let write_revision = |cluster: &Cluster, revision: usize| {
        (0..APPS)
            .map(|i| {
                let target = format!("app-{:02}", (i + revision) % APPS);
                cluster.write(
                    &format!("app-{i:02}.yaml"),
                    &component(
                        &format!("app-{i:02}"),
                        &format!("revision {revision}"),
                        Some(&target),
                    ),
                )
            })
            .collect::<Vec<_>>()
    };
    let expected = |revision: usize| -> BTreeMap<String, (String, BTreeSet<String>)> {
        (0..APPS)
            .map(|i| {
                let relations = BTreeSet::from([
                    "ownedBy group:default/team-a".to_owned(),
                    format!(
                        "dependsOn component:default/app-{:02}",
                        (i + revision) % APPS
                    ),
                    format!(
                        "dependencyOf component:default/app-{:02}",
                        (i + APPS - revision) % APPS
                    ),
                ]);
                (
                    format!("app-{i:02}"),
                    (format!("revision {revision}"), relations),
                )
            })
            .collect()
    };
    let paths = write_revision(&cluster, 1);
    let locations: Vec<Value> = paths
        .iter()
        .map(|p| json!({"type": "file", "target": p}))
        .collect();
    cluster.configure(json!({"locations": locations}));
    let replicas = cluster.start(2).await;

    for revision in 1..=REVISIONS {
        if revision > 1 {
            write_revision(&cluster, revision);
            let requests = (0..APPS).map(|i| {
                let replica = replicas[i % replicas.len()];
                let body = json!({"entityRef": format!("component:default/app-{i:02}")});
                let cluster = &cluster;
                async move {
                    (
                        cluster.name(replica),
                        cluster.post(replica, "/api/catalog/refresh", body).await,
                    )
                }
            });
            for (replica, status) in futures::future::join_all(requests).await {
                assert_eq!(status, StatusCode::OK, "refresh through {replica}");
            }
        }
        let want = expected(revision);
        for &replica in &replicas {
            cluster
                .wait_until(
                    &format!("revision {revision} on {}", cluster.name(replica)),
                    async || {
                        let components = cluster
                            .get(
                                replica,
                                "/api/catalog/entities?filter=kind=component\
                                 &fields=metadata.name,metadata.description,relations",
                            )
                            .await?;
                        let wrong = differences(&descriptions_and_relations(&components), &want);
                        match wrong.first() {
                            None => Ok(()),
                            Some(first) => {
                                Err(format!("{} apps differ, first {first}", wrong.len()))
                            }
                        }
                    },
                )
                .await;
        }
    }

    // A refresh is one read: the first load plus one per refresh request, never a second claim.
    let reads = (APPS * REVISIONS) as u64;
    let processed = cluster
        .wait_until("the replicas to count their reads", async || {
            let processed = cluster.processed_per_replica().await?;
            if processed.values().sum::<u64>() >= reads {
                Ok(processed)
            } else {
                Err(format!("{processed:?}"))
            }
        })
        .await;
    assert_eq!(
        processed.values().sum::<u64>(),
        reads,
        "locations read: {processed:?}"
    );
}

/// Replica A claims a batch of url locations and is killed (SIGKILL) while it is reading them. Replica B
/// leaves the claims alone until A's lease runs out, then reads every one of them: no entity is lost and
/// no location stays stuck.
#[sqlx::test(migrations = false)]
async fn a_replica_killed_mid_batch_loses_nothing(pool: PgPool) {
    const TEAMS: usize = 4;
    const LEASE: Duration = Duration::from_secs(3);
    let host = CatalogHost::start().await;
    let mut targets = Vec::new();
    for team in 0..TEAMS {
        let file = format!("/team/{team}.yaml");
        let documents: Vec<String> = (0..3)
            .map(|n| component(&format!("team-{team}-c{n}"), "first", None))
            .collect();
        host.put(&file, &documents.join("---\n"));
        targets.push(format!(".{file}"));
    }
    host.put(
        "/catalog.yaml",
        &format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: teams\nspec:\n  targets: {}\n",
            json!(targets)
        ),
    );
    let mut cluster = Cluster::new(&pool);
    cluster.configure(json!({
        "url_allowlist": [host.authority()],
        "url_allow_private_addresses": true,
        "processing_lease_seconds": LEASE.as_secs(),
        // One worker per team file: A claims all four and is reading every one of them when it dies.
        "processing_workers": TEAMS,
    }));
    let a = cluster.start(1).await[0];

    host.hold("/team/");
    // Every claim below happens after this instant, so a lease honoured means no re-read before
    // `registered + LEASE`.
    let registered = Instant::now();
    let created = cluster
        .post(
            a,
            "/api/catalog/locations",
            json!({"type": "url", "target": host.url("/catalog.yaml")}),
        )
        .await;
    assert_eq!(created, StatusCode::CREATED);
    cluster
        .wait_until("replica A to be reading team files", async || {
            let seen = host.requests_under("/team/");
            if seen.len() >= TEAMS {
                Ok(())
            } else {
                Err(format!("{} requests", seen.len()))
            }
        })
        .await;
    let claimed: i64 = sqlx::query_scalar!(
        r#"select count(*) as "count!" from location
         where parent_id is not null and last_refreshed_at is null and next_refresh_at > now()"#,
    )
    .fetch_one(&pool)
    .await
    .expect("claimed locations");
    assert_eq!(
        claimed, TEAMS as i64,
        "A holds a lease on every team location"
    );

    cluster.kill(a);
    host.release();
    let reads_by_a = host.requests_under("/team/").len();
    let b = cluster.start(1).await[0];

    let entities = TEAMS * 3;
    cluster
        .wait_until("replica B to load every team", async || {
            let status = cluster.get(b, "/api/atrium/processing").await?;
            let components = cluster
                .get(
                    b,
                    "/api/catalog/entities/by-query?filter=kind=component&limit=1",
                )
                .await?;
            let done = components["totalItems"] == entities
                && status["entitiesPending"] == 0
                && status["stitchQueue"] == 0
                && status["locationsDue"] == 0;
            if done {
                Ok(())
            } else {
                Err(format!("status {status}, components {components}"))
            }
        })
        .await;

    let reads_by_b: Vec<Instant> = host.requests_under("/team/")[reads_by_a..].to_vec();
    assert_eq!(reads_by_b.len(), TEAMS, "B reads each team file once");
    let first = reads_by_b.iter().min().expect("B read");
    assert!(
        *first >= registered + LEASE,
        "B waited for A's lease: first read {:?} after registration, lease {LEASE:?}",
        first.duration_since(registered)
    );
    let processed = cluster
        .wait_until("B to count its reads", async || {
            let n = cluster.counter(b, LOCATIONS_PROCESSED).await?;
            if n >= TEAMS as u64 {
                Ok(n)
            } else {
                Err(format!("{n}"))
            }
        })
        .await;
    assert_eq!(
        processed, TEAMS as u64,
        "B read the team locations, and not the root A had finished"
    );
    // Not stuck: every location was stored and is scheduled for its next refresh, not held by a lease.
    let stuck: Vec<(String, Option<Value>)> = sqlx::query!(
        "select target, jsonb_build_object('last_refreshed_at', last_refreshed_at,
                'next_refresh_at', next_refresh_at, 'errors', errors) as state
         from location
         where last_refreshed_at is null or errors <> '[]'::jsonb
            or next_refresh_at < now() + make_interval(secs => $1)",
        (REFRESH_INTERVAL_SECONDS / 2) as f64
    )
    .fetch_all(&pool)
    .await
    .expect("locations")
    .into_iter()
    .map(|row| (row.target, row.state))
    .collect();
    assert!(stuck.is_empty(), "locations not properly stored: {stuck:?}");
    let locations: i64 = sqlx::query_scalar!(r#"select count(*) as "count!" from location"#)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(locations, TEAMS as i64 + 1);
}

/// A file changes while a replica is reading its old content, and a refresh is requested after the
/// change. The refresh must lead to a read of the new content; the read already in flight must not
/// swallow it until the next scheduled refresh. One replica, so that the outcome does not depend on
/// another replica happening to poll during the read.
#[sqlx::test(migrations = false)]
async fn a_refresh_requested_during_a_read_is_not_lost(pool: PgPool) {
    let host = CatalogHost::start().await;
    host.put("/svc.yaml", &component("svc", "first", None));
    let mut cluster = Cluster::new(&pool);
    cluster.configure(json!({
        "url_allowlist": [host.authority()],
        "url_allow_private_addresses": true,
        "locations": [{"type": "url", "target": host.url("/svc.yaml")}],
    }));
    let replica = cluster.start(1).await[0];
    let description = async || -> Result<String, String> {
        let entity = cluster
            .get(
                replica,
                "/api/catalog/entities/by-name/component/default/svc",
            )
            .await?;
        entity["metadata"]["description"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| entity.to_string())
    };
    cluster
        .wait_until("the first content", async || {
            description()
                .await
                .and_then(|d| if d == "first" { Ok(()) } else { Err(d) })
        })
        .await;

    host.hold("/svc.yaml");
    let refresh = json!({"entityRef": "component:default/svc"});
    let status = cluster
        .post(replica, "/api/catalog/refresh", refresh.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    cluster
        .wait_until(
            "the replica to be reading the old content",
            async || match host.requests_under("/svc.yaml").len() {
                2.. => Ok(()),
                n => Err(format!("{n} requests")),
            },
        )
        .await;
    host.put("/svc.yaml", &component("svc", "second", None));
    let status = cluster.post(replica, "/api/catalog/refresh", refresh).await;
    assert_eq!(status, StatusCode::OK);
    host.release();

    cluster
        .wait_until("the second content after the second refresh", async || {
            description().await.and_then(|d| {
                if d == "second" {
                    Ok(())
                } else {
                    Err(format!(
                        "description {d:?}; reads of the file: {}",
                        host.requests_under("/svc.yaml").len()
                    ))
                }
            })
        })
        .await;
}

/// Reads that take longer than the lease, with two replicas: each replica re-claims the location when
/// the other's lease runs out, so every store is fenced off by the newer claim. The location must still
/// be stored eventually.
#[sqlx::test(migrations = false)]
async fn a_read_longer_than_the_lease_is_still_stored(pool: PgPool) {
    let host = CatalogHost::start().await;
    host.put("/svc.yaml", &component("svc", "first", None));
    host.slow_down(Duration::from_secs(3));
    let mut cluster = Cluster::new(&pool);
    cluster.configure(json!({
        "url_allowlist": [host.authority()],
        "url_allow_private_addresses": true,
        "processing_lease_seconds": 2,
        "locations": [{"type": "url", "target": host.url("/svc.yaml")}],
    }));
    let replicas = cluster.start(2).await;
    cluster
        .wait_until("the slow location to be stored", async || {
            cluster
                .get(
                    replicas[0],
                    "/api/catalog/entities/by-name/component/default/svc",
                )
                .await
                .map_err(|e| format!("{e}; reads so far: {}", host.requests_under("/").len()))
        })
        .await;
}

/// A golden path run by one replica that is killed with SIGKILL in the middle of a step is taken over
/// by another once the lease runs out, and finished there: the step with a side effect that was done
/// (registering a location) is not done again, the interrupted one runs again, and the task completes.
#[sqlx::test(migrations = false)]
async fn a_task_whose_replica_is_killed_mid_step_is_finished_by_another(pool: PgPool) {
    let mut cluster = Cluster::new(&pool);
    let registered = cluster.write("made.yaml", &component("made-by-template", "made", None));
    let template = cluster.write(
        "template.yaml",
        &format!(
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: slow\nspec:\n  owner: team-a\n  type: service\n  steps:\n    - id: register\n      action: catalog:register\n      input:\n        catalogInfoUrl: file:{}\n    - id: wait\n      action: debug:wait\n      input:\n        milliseconds: 8000\n    - id: last\n      action: debug:log\n      input:\n        message: last step ran\n",
            registered.display()
        ),
    );
    let workspaces = cluster.dir.path().join("workspaces");
    cluster.configure_with(
        json!({"locations": [{"type": "file", "target": template}]}),
        json!({"scaffolder": {"lease_seconds": 3, "workspace_dir": workspaces}}),
    );
    let replicas = cluster.start(2).await;
    cluster
        .wait_until("the template to be served", async || {
            cluster
                .get(
                    replicas[0],
                    "/api/catalog/entities/by-name/template/default/slow",
                )
                .await
                .map(|_| ())
        })
        .await;
    let created: Value = cluster
        .http
        .post(cluster.url(replicas[0], "/api/scaffolder/v2/tasks"))
        .json(&json!({"templateRef": "template:default/slow", "values": {}}))
        .send()
        .await
        .expect("create task")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("task id").to_owned();
    let events = format!("/api/scaffolder/v2/tasks/{id}/events");

    // Whoever claimed it is in the wait step: kill that replica. The step waits 8 s so that a poll
    // on a loaded machine still finds it running (with 2 s, a slow poll once saw it already done).
    let owner = cluster
        .wait_until("the task to be in its wait step", async || {
            let all = cluster.get(replicas[0], &events).await?;
            let waiting = all
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["body"]["message"] == "Beginning step debug:wait");
            let owner: Option<String> =
                sqlx::query_scalar("select lease_owner from scaffolder_task where id = $1::uuid")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
            match (waiting, owner) {
                (true, Some(owner)) => Ok(owner),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    let victim = replicas
        .iter()
        .copied()
        .find(|&r| owner.starts_with(&format!("{}-", cluster.name(r))))
        .unwrap_or_else(|| panic!("no replica owns {owner}"));
    let survivor = replicas
        .iter()
        .copied()
        .find(|&r| r != victim)
        .expect("two replicas");
    cluster.kill(victim);

    let task = cluster
        .wait_until("the survivor to finish the task", async || {
            let task = cluster
                .get(survivor, &format!("/api/scaffolder/v2/tasks/{id}"))
                .await?;
            if task["status"] == "completed" {
                Ok(task)
            } else {
                Err(task["status"].to_string())
            }
        })
        .await;
    let all = cluster.get_ok(survivor, &events).await;
    let messages: Vec<String> = all
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap_or(""),
                e["body"]["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    let count = |m: &str| messages.iter().filter(|x| x.as_str() == m).count();
    assert_eq!(
        count("log Beginning step catalog:register"),
        1,
        "{messages:#?}"
    );
    assert_eq!(count("log Beginning step debug:wait"), 2, "{messages:#?}");
    assert_eq!(count("recovered Task recovered"), 1, "{messages:#?}");
    assert_eq!(count("log last step ran"), 1, "{messages:#?}");
    assert_eq!(
        task["state"]["steps"]["register"]["output"]["entityRef"],
        "component:default/made-by-template"
    );
    let token: i64 =
        sqlx::query_scalar("select lease_token from scaffolder_task where id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .expect("token");
    assert_eq!(
        token, 2,
        "claimed twice: by the victim, then by the survivor"
    );
}

fn component(name: &str, description: &str, depends_on: Option<&str>) -> String {
    let depends_on = depends_on
        .map(|d| format!("  dependsOn: [component:{d}]\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n{depends_on}"
    )
}

/// "type targetRef" of an entity's relations.
fn relation_set(entity: &Value) -> BTreeSet<String> {
    entity["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{} {}", r["type"], r["targetRef"]).replace('"', ""))
        .collect()
}

fn relations_by_name(entities: &Value) -> BTreeMap<String, BTreeSet<String>> {
    entities
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (name_of(e), relation_set(e)))
        .collect()
}

fn descriptions_and_relations(entities: &Value) -> BTreeMap<String, (String, BTreeSet<String>)> {
    entities
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let description = e["metadata"]["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (name_of(e), (description, relation_set(e)))
        })
        .collect()
}

/// One line per name whose value differs, so that a failure message fits on a screen.
fn differences<V: PartialEq + std::fmt::Debug>(
    seen: &BTreeMap<String, V>,
    expected: &BTreeMap<String, V>,
) -> Vec<String> {
    let names: BTreeSet<&String> = seen.keys().chain(expected.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (seen.get(name), expected.get(name)) {
            (seen, expected) if seen == expected => None,
            (seen, expected) => Some(format!("{name}: expected {expected:?}, got {seen:?}")),
        })
        .collect()
}

fn name_of(entity: &Value) -> String {
    entity["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `atrium serve` processes sharing one database, with their config, catalog files and logs in a
/// temporary directory.
struct Cluster {
    dir: tempfile::TempDir,
    database_url: String,
    http: reqwest::Client,
    replicas: Vec<Replica>,
}

struct Replica {
    name: String,
    base_url: String,
    log: PathBuf,
    /// `None` once the test killed it on purpose.
    child: Mutex<Option<Child>>,
}

impl Cluster {
    fn new(pool: &PgPool) -> Self {
        atrium::tls::install_crypto_provider();
        let database = pool
            .connect_options()
            .get_database()
            .expect("sqlx::test names its database")
            .to_owned();
        let server = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut url = url::Url::parse(&server).expect("DATABASE_URL");
        url.set_path(&database);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("catalog")).expect("catalog dir");
        Self {
            dir,
            database_url: url.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            replicas: Vec::new(),
        }
    }

    /// Writes a file under the catalog root; returns its absolute path.
    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join("catalog").join(name);
        std::fs::write(&path, content).expect("write catalog file");
        path
    }

    /// Writes `atrium.yaml` for the replicas started afterwards: `catalog` fields over test defaults. The
    /// file is JSON, which is YAML.
    fn configure(&self, catalog: Value) {
        self.configure_with(catalog, json!({}));
    }

    /// `configure`, plus other top-level sections (`scaffolder`) as given.
    fn configure_with(&self, catalog: Value, sections: Value) {
        let mut settings = json!({
            "file_roots": [self.dir.path().join("catalog")],
            "locations": [],
            "refresh_interval_seconds": REFRESH_INTERVAL_SECONDS,
            "processing_workers": 4,
        });
        for (key, value) in catalog.as_object().expect("catalog settings") {
            settings[key] = value.clone();
        }
        // Three replicas per test and two tests at once must stay well below Postgres' 100 connections.
        // The replicas serve loopback in guest mode: requests carry no credentials.
        let mut config = json!({"database": {"max_connections": 6}, "catalog": settings, "auth": {"guest": true}});
        for (key, value) in sections.as_object().expect("sections") {
            config[key] = value.clone();
        }
        std::fs::write(self.config_path(), config.to_string()).expect("write config");
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("atrium.yaml")
    }

    /// Starts `count` replicas at once and waits until each serves; returns their indexes.
    async fn start(&mut self, count: usize) -> Vec<usize> {
        let started: Vec<usize> = (0..count).map(|_| self.spawn()).collect();
        for &replica in &started {
            self.wait_until(&format!("{} to be ready", self.name(replica)), async || {
                let response = self
                    .http
                    .get(self.url(replica, "/readyz"))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                match response.status() {
                    StatusCode::OK => Ok(()),
                    status => Err(status.to_string()),
                }
            })
            .await;
        }
        started
    }

    fn spawn(&mut self) -> usize {
        let index = self.replicas.len();
        let name = format!("replica-{}", (b'a' + index as u8) as char);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let log = self.dir.path().join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut command = Command::new(ATRIUM);
        // Only this test's settings: nothing from the developer's shell.
        for (key, _) in std::env::vars() {
            if key.starts_with("ATRIUM_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .env("DATABASE_URL", &self.database_url)
            .env("ATRIUM_LISTEN", format!("127.0.0.1:{port}"))
            // Names the replica in the task leases it takes (`lease_owner`).
            .env("HOSTNAME", &name)
            .env("RUST_LOG", "info,atrium=debug,sqlx=warn,tower_http=warn")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn atrium serve");
        self.replicas.push(Replica {
            name,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
            child: Mutex::new(Some(child)),
        });
        index
    }

    /// SIGKILL: no graceful shutdown, no chance to finish or release anything.
    fn kill(&self, replica: usize) {
        let child = self.replicas[replica]
            .child
            .lock()
            .expect("lock")
            .take()
            .map(|mut child| {
                child.kill().expect("kill");
                child.wait().expect("reap")
            });
        assert!(child.is_some(), "{} was running", self.name(replica));
    }

    fn name(&self, replica: usize) -> &str {
        &self.replicas[replica].name
    }

    fn url(&self, replica: usize, path: &str) -> String {
        format!("{}{path}", self.replicas[replica].base_url)
    }

    /// Panics if a replica the test did not kill has exited: waiting longer would only hide why.
    fn assert_running(&self) {
        for replica in &self.replicas {
            if let Some(child) = replica.child.lock().expect("lock").as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited: {status}", replica.name);
            }
        }
    }

    /// Polls `check` until it succeeds and returns its value; panics with its last error after `WAIT`.
    async fn wait_until<T>(
        &self,
        what: &str,
        mut check: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            self.assert_running();
            match check().await {
                Ok(value) => return value,
                Err(last) if Instant::now() >= deadline => {
                    panic!("waited {WAIT:?} for {what}; last seen: {last}")
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// A JSON answer, or what went wrong as text (for `wait_until`).
    async fn get(&self, replica: usize, path: &str) -> Result<Value, String> {
        let response = self
            .http
            .get(self.url(replica, path))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Err(format!("GET {path}: {status} {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))
    }

    async fn get_ok(&self, replica: usize, path: &str) -> Value {
        self.get(replica, path)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.name(replica)))
    }

    async fn post(&self, replica: usize, path: &str, body: Value) -> StatusCode {
        self.http
            .post(self.url(replica, path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} to {}: {e}", self.name(replica)))
            .status()
    }

    /// A counter from the replica's `/metrics` (summed over its labels; 0 before its first increment).
    async fn counter(&self, replica: usize, name: &str) -> Result<u64, String> {
        let text = self
            .http
            .get(self.url(replica, "/metrics"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let mut total = 0;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if rest.starts_with(' ') || rest.starts_with('{') {
                let value = rest.rsplit(' ').next().unwrap_or_default();
                total += value.parse::<u64>().map_err(|e| format!("{line:?}: {e}"))?;
            }
        }
        Ok(total)
    }

    /// Locations each running replica has read, by replica name.
    async fn processed_per_replica(&self) -> Result<BTreeMap<String, u64>, String> {
        let mut processed = BTreeMap::new();
        for (index, replica) in self.replicas.iter().enumerate() {
            if replica.child.lock().expect("lock").is_some() {
                let count = self.counter(index, LOCATIONS_PROCESSED).await?;
                processed.insert(replica.name.clone(), count);
            }
        }
        Ok(processed)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for replica in &self.replicas {
            let child = replica
                .child
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(mut child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for replica in &self.replicas {
                let log = std::fs::read_to_string(&replica.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(300)..];
                eprintln!(
                    "----- {} ({}), last {} log lines -----\n{}",
                    replica.name,
                    replica.base_url,
                    tail.len(),
                    tail.join("\n")
                );
            }
        }
    }
}

/// A stand-in for a git host serving catalog files to `url` locations, on 127.0.0.1. The test can hold
/// answers back to catch a replica in the middle of a read.
#[derive(Clone)]
struct CatalogHost {
    port: u16,
    files: Arc<Mutex<HashMap<String, String>>>,
    /// Requests for paths under this prefix are answered only once it is cleared.
    hold: Arc<watch::Sender<Option<String>>>,
    /// Every request, in arrival order.
    requests: Arc<Mutex<Vec<(String, Instant)>>>,
    /// How long every answer takes at least: a slow host.
    delay: Arc<Mutex<Duration>>,
}

impl CatalogHost {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let host = Self {
            port: listener.local_addr().expect("addr").port(),
            files: Arc::default(),
            hold: Arc::new(watch::Sender::new(None)),
            requests: Arc::default(),
            delay: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(host.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        host
    }

    /// The `catalog.url_allowlist` entry for this host.
    fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn put(&self, path: &str, content: &str) {
        self.files
            .lock()
            .expect("lock")
            .insert(path.to_owned(), content.to_owned());
    }

    fn slow_down(&self, delay: Duration) {
        *self.delay.lock().expect("lock") = delay;
    }

    fn hold(&self, prefix: &str) {
        self.hold.send_replace(Some(prefix.to_owned()));
    }

    fn release(&self) {
        self.hold.send_replace(None);
    }

    /// Arrival times of the requests for paths under `prefix`.
    fn requests_under(&self, prefix: &str) -> Vec<Instant> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(_, at)| *at)
            .collect()
    }
}

async fn answer(State(host): State<CatalogHost>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    // The content as it was when the request arrived, even if answered later: a slow read of a file that
    // changes meanwhile returns the old content.
    let content = host.files.lock().expect("lock").get(&path).cloned();
    host.requests
        .lock()
        .expect("lock")
        .push((path.clone(), Instant::now()));
    let delay = *host.delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    let mut hold = host.hold.subscribe();
    let _ = hold
        .wait_for(|prefix| !prefix.as_deref().is_some_and(|p| path.starts_with(p)))
        .await;
    match content {
        Some(content) => content.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
