//! The processing loop: claim due locations from Postgres, process them, store the outcome, stitch.
//!
//! Claiming is `FOR UPDATE SKIP LOCKED` plus a lease: the claim moves `next_refresh_at` forward by
//! `processing_lease_seconds`, so a location whose worker died becomes due again by itself, and any number
//! of replicas share the work without coordination. A successful store sets the real next refresh time.

pub mod process;
pub mod stitch;
pub mod store;

use std::time::Duration;

use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::watch;

use self::process::process_location;
use crate::catalog::db::{self, LocationJob};
use crate::catalog::source::Reader;
use crate::config::CatalogConfig;

/// Queue entries a stitcher takes per transaction. Measured at 100k entities (ingestion until all
/// queryable, database size, server RSS): 2,000 took 68 s but left 1,085 MiB and 245 MiB; 500 took
/// 78–82 s, 1,005 MiB and 105 MiB; 300 took 72 s and 1,004 MiB; 150 took 74 s twice, 972–983 MiB
/// and 71–76 MiB. Smaller batches hold popular entities' rows for less time, so fewer are skipped
/// and stitched again, and keep less in memory.
const STITCH_BATCH: i64 = 150;
/// Stitchers per replica. A stitcher spends much of a batch waiting on round trips, so two left a
/// third of two cores idle. At 100k entities (benchmark data, 2-core EPYC, back to back; see
/// docs/performance.md): two stitchers 72 s, three 60 s, four 60 s with four processing workers;
/// with six processing workers, three stitchers 52 s and four 52 s at more CPU. (Earlier, slower code
/// measured two at 108 s and four at 110 s, when Postgres's own work was the bound.)
const STITCHERS: usize = 3;
/// How long an idle worker waits before looking for due work again (it is also woken on demand).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// What one round of work did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Round {
    pub locations: usize,
    pub entities_written: usize,
    pub stitched: usize,
}

impl Round {
    pub fn is_idle(&self) -> bool {
        self.locations == 0 && self.stitched == 0
    }
}

/// Processes one batch of due locations (concurrently, up to `processing_workers`): what a test or
/// `process_until_idle` runs round by round; the background workers use `process_claimed` directly.
pub async fn process_due_locations(
    pool: &PgPool,
    reader: &Reader,
    config: &CatalogConfig,
) -> anyhow::Result<Round> {
    let workers = config.processing_workers.max(1);
    process_claimed(pool, reader, config, workers * 2, workers, || {}).await
}

/// Claims up to `claim` due locations and processes them, `workers` at a time. `found_work` runs
/// when the claim found some, before they are read.
async fn process_claimed(
    pool: &PgPool,
    reader: &Reader,
    config: &CatalogConfig,
    claim: usize,
    workers: usize,
    found_work: impl FnOnce(),
) -> anyhow::Result<Round> {
    let jobs =
        db::claim_due_locations(pool, claim as i64, config.processing_lease_seconds as f64).await?;
    if !jobs.is_empty() {
        found_work();
    }
    let mut round = Round {
        locations: jobs.len(),
        ..Round::default()
    };
    let results: Vec<anyhow::Result<store::StoreStats>> = futures::stream::iter(jobs)
        .map(|job| async move {
            let started = std::time::Instant::now();
            let lease = config.processing_lease_seconds as f64;
            let output =
                while_holding_lease(pool, &job, lease, process_location(reader, &job)).await;
            let stats = store_with_retry(pool, &job, output, config).await?;
            metrics::histogram!("atrium_catalog_location_processing_seconds")
                .record(started.elapsed().as_secs_f64());
            tracing::debug!(location = %job.target, ?stats, "processed location");
            Ok(stats)
        })
        .buffer_unordered(workers)
        .collect()
        .await;
    for result in results {
        match result {
            Ok(stats) => round.entities_written += stats.entities_written,
            // The lease makes the location due again later; one bad location must not stop the others.
            Err(e) => tracing::error!(error = ?e, "storing a location failed"),
        }
    }
    metrics::counter!("atrium_catalog_locations_processed_total").increment(round.locations as u64);
    metrics::counter!("atrium_catalog_entities_written_total")
        .increment(round.entities_written as u64);
    Ok(round)
}

/// Runs `work` while renewing the claim on `job` every third of the lease, so that a read slower than the
/// lease (a slow host, a large repository) is not claimed again by another replica and then fenced off.
/// A renewal only applies while the claim token is still this worker's; storing clears the token, so a
/// renewal that arrives late never moves the stored schedule.
async fn while_holding_lease<T>(
    pool: &PgPool,
    job: &LocationJob,
    lease_seconds: f64,
    work: impl Future<Output = T>,
) -> T {
    let Some(token) = job.claim_token else {
        return work.await;
    };
    let every = Duration::from_secs_f64((lease_seconds / 3.0).max(0.2));
    let renew = async {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = db::claims::renew_lease(pool, job.id, token, lease_seconds).await {
                tracing::warn!(error = %e, location = %job.target, "renewing a lease failed");
            }
        }
    };
    tokio::select! {
        output = work => output,
        () = renew => unreachable!("renewing loops until the work is done"),
    }
}

/// Two workers can deadlock on a popular entity; Postgres aborts one, which simply tries again.
async fn store_with_retry(
    pool: &PgPool,
    job: &LocationJob,
    output: process::ProcessOutput,
    config: &CatalogConfig,
) -> anyhow::Result<store::StoreStats> {
    let interval = config.refresh_interval_seconds as f64;
    for attempt in 1..=3 {
        // The output is cheap to clone compared with re-reading the location.
        match store::store_output(
            pool,
            job,
            clone_output(&output),
            config.orphan_policy,
            interval,
        )
        .await
        {
            Ok(stats) => return Ok(stats),
            Err(e) if attempt < 3 && is_retryable(&e) => {
                tracing::debug!(error = %e, attempt, "retrying location store");
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}

fn clone_output(output: &process::ProcessOutput) -> process::ProcessOutput {
    process::ProcessOutput {
        entities: output.entities.clone(),
        rejected: output.rejected.clone(),
        location_errors: output.location_errors.clone(),
        read_failed: output.read_failed,
        git_snapshot: output.git_snapshot.clone(),
    }
}

pub fn is_retryable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if matches!(e.code().as_deref(), Some("40P01" | "40001")))
}

/// Queue entries consumed (by this process) between two vacuums of `stitch_queue`.
const VACUUM_QUEUE_EVERY: usize = 20_000;
static CONSUMED_SINCE_VACUUM: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Whether a maintenance task (`vacuum_queue_now_and_then`) is running in this process.
static MAINTAINING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tidies the stitch queue and the per-kind counts every `VACUUM_QUEUE_EVERY` entries consumed (see
/// `tidy_work_tables`), and brings the planner's statistics up to date while a large catalog streams
/// in. In a task of its own, one at a time: an ANALYZE of `entity` takes about a second at 100k
/// entities, and a stitcher that waited for it stitched nothing meanwhile (seven times during the 100k
/// benchmark's load).
fn vacuum_queue_now_and_then(pool: &PgPool, consumed: usize) {
    use std::sync::atomic::Ordering;
    let total = CONSUMED_SINCE_VACUUM.fetch_add(consumed, Ordering::Relaxed) + consumed;
    if total < VACUUM_QUEUE_EVERY || MAINTAINING.swap(true, Ordering::AcqRel) {
        return;
    }
    CONSUMED_SINCE_VACUUM.store(0, Ordering::Relaxed);
    let pool = pool.clone();
    tokio::spawn(async move {
        tidy_work_tables(&pool).await;
        refresh_statistics(&pool, AnalyzeWhen::Streaming).await;
        MAINTAINING.store(false, Ordering::Release);
    });
}

/// Folds the per-kind count rows that stitching added (`db::counts`), then vacuums them and the
/// stitch queue. A failure only costs speed, so it is logged, not returned.
async fn tidy_work_tables(pool: &PgPool) {
    if let Err(e) = db::counts::fold_kind_counts(pool).await {
        tracing::warn!(error = %e, "folding the per-kind counts failed");
    }
    if let Err(e) = db::stitch::vacuum_queue(pool).await {
        tracing::warn!(error = %e, "vacuuming the stitch queue failed");
    }
}

/// Queue entries this process consumed since it last analyzed the catalog's tables.
static CONSUMED_SINCE_ANALYZE: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// How much stitching, relative to the catalog's size, warrants an ANALYZE.
#[derive(Clone, Copy)]
enum AnalyzeWhen {
    /// The queue drained: after 50 + 10 % of the entities, autovacuum's own default threshold.
    Settled,
    /// While a load streams in: after 50 + 200 % of the entities the planner knows of. A load
    /// consumes about four queue entries per entity, and it is the only cost the rule counts, so
    /// the settled rule analyzed at every check of the 100k benchmark (20 times, 11 s of Postgres
    /// time); this one analyzes as the catalog grows by about half.
    Streaming,
}

/// Merges the GIN pending lists, and analyzes the catalog's tables (see `db::statistics`) when this
/// process stitched enough since it last did (see `AnalyzeWhen`), applied where autovacuum may be off
/// or behind. The count is kept here, not read from `pg_stat_user_tables`, which Postgres publishes
/// up to a second late: the check at the end of a bulk load would miss it.
/// A failure only costs plan quality, so it is logged, not returned.
async fn refresh_statistics(pool: &PgPool, when: AnalyzeWhen) {
    use std::sync::atomic::Ordering;
    match db::statistics::flush_gin_pending_lists(pool).await {
        Ok(pages) if pages > 0 => tracing::debug!(pages, "merged GIN pending lists"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "merging GIN pending lists failed"),
    }
    let consumed = CONSUMED_SINCE_ANALYZE.load(Ordering::Relaxed);
    let result = async {
        let entities = db::statistics::estimated_entities(pool).await?;
        let fraction = match when {
            AnalyzeWhen::Settled => 0.1,
            AnalyzeWhen::Streaming => 2.0,
        };
        if (consumed as f64) <= 50.0 + entities * fraction {
            return Ok(false);
        }
        CONSUMED_SINCE_ANALYZE.fetch_sub(consumed, Ordering::Relaxed);
        db::statistics::analyze_catalog_tables(pool).await?;
        Ok::<_, sqlx::Error>(true)
    }
    .await;
    match result {
        Ok(true) => tracing::debug!(consumed, "analyzed the catalog's tables"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "analyzing the catalog's tables failed"),
    }
}

/// Stitches until the queue is empty or `keep_going` says stop; returns the queue entries consumed.
pub async fn stitch_pending(pool: &PgPool, keep_going: impl Fn() -> bool) -> anyhow::Result<usize> {
    let mut total = 0;
    while keep_going() {
        let taken = match stitch::stitch_batch(pool, STITCH_BATCH).await {
            Ok(n) => n,
            Err(e) if is_retryable(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        if taken == 0 {
            // The queue drained: whatever changed is in, so the statistics should describe it, and
            // the queue's dead rows (23 MB after the 100k benchmark) are made reusable by the next
            // load. The file only shrinks when no other transaction can still see those rows, which
            // another stitcher finishing its last batch often prevents.
            if total > 0 {
                CONSUMED_SINCE_VACUUM.store(0, std::sync::atomic::Ordering::Relaxed);
                tidy_work_tables(pool).await;
                refresh_statistics(pool, AnalyzeWhen::Settled).await;
            }
            break;
        }
        total += taken;
        CONSUMED_SINCE_ANALYZE.fetch_add(taken, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("atrium_catalog_entities_stitched_total").increment(taken as u64);
        vacuum_queue_now_and_then(pool, taken);
    }
    Ok(total)
}

/// Runs processing and stitching until `shutdown` turns true. Two tasks, so that a slow location does not
/// hold up stitching and the other way round.
pub async fn run_workers(
    pool: PgPool,
    reader: Reader,
    config: std::sync::Arc<crate::config::Config>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    shutdown: watch::Receiver<bool>,
) {
    // `processing_workers` loops that each claim one location when they are free, rather than rounds
    // of several that wait for their slowest location before claiming more: at 100k entities in 1,000
    // files with six workers and three stitchers, rounds took 54–56 s and these loops 52 s.
    // Only the first loop polls when idle (work due by the clock, or registered at another replica);
    // the others sleep until a loop claims something (it wakes them before reading it), so an idle
    // replica claims twice a second, not twelve times.
    let processor = |index: usize, mut shutdown: watch::Receiver<bool>| {
        let (pool, reader, config, wake) =
            (pool.clone(), reader.clone(), config.clone(), wake.clone());
        let polls = index == 0;
        async move {
            while !*shutdown.borrow() {
                let round = process_claimed(&pool, &reader, &config.catalog, 1, 1, || {
                    wake.notify_waiters();
                })
                .await;
                match round {
                    Ok(round) if round.locations > 0 => {
                        wake.notify_waiters();
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = ?e, "catalog processing round failed"),
                }
                if polls {
                    wait_for_work(&wake, &mut shutdown).await;
                } else {
                    wait_to_be_woken(&wake, &mut shutdown).await;
                }
            }
        }
    };
    // Several stitchers: stitching is mostly round trips to Postgres, and stitchers never wait on one
    // another (queue entries and entity rows are both taken with SKIP LOCKED).
    let stitcher = |mut shutdown: watch::Receiver<bool>| {
        let (pool, wake) = (pool.clone(), wake.clone());
        async move {
            while !*shutdown.borrow() {
                // Checked between batches, so a shutdown never waits for a long queue to drain.
                let running = shutdown.clone();
                match stitch_pending(&pool, move || !*running.borrow()).await {
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = ?e, "stitching failed"),
                }
                wait_for_work(&wake, &mut shutdown).await;
            }
        }
    };
    let processors = futures::future::join_all(
        (0..config.catalog.processing_workers.max(1)).map(|i| processor(i, shutdown.clone())),
    );
    let stitchers = futures::future::join_all((0..STITCHERS).map(|_| stitcher(shutdown.clone())));
    tokio::join!(processors, stitchers);
}

/// An idle worker's pause: until this replica is woken (a registration or refresh), the poll interval
/// has passed (work found by other replicas' requests), or shutdown.
async fn wait_for_work(wake: &tokio::sync::Notify, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(IDLE_POLL) => {}
        _ = shutdown.changed() => {}
    }
}

/// An idle worker's pause without the poll: until this replica is woken, or shutdown.
async fn wait_to_be_woken(wake: &tokio::sync::Notify, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = shutdown.changed() => {}
    }
}
